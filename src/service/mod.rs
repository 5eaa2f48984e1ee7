//! The operations every surface calls. A session starts in
//! [`sessions::open`] (reached through [`login::login`]) and ends in
//! [`sessions::end`], [`sessions::end_all`] or [`sessions::expire`],
//! whichever surface, the CLI or the sweep asked. No HTTP here.

pub mod login;
pub mod sessions;
pub mod totp;
