//! The Rocket.Chat surface: accounts (`/api/v1/login`, `logout`, `me`, TOTP
//! enrollment) and device management (`/api/v1/sessions/*`).

pub mod accounts;
pub mod error;
pub mod sessions;
pub mod wire;
