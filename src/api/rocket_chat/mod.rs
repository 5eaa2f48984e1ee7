//! The Rocket.Chat surface: accounts (`/api/v1/login`, `logout`, `me`, TOTP
//! enrollment), device management (`/api/v1/sessions/*`), and the event
//! log's live stream and audit trail.

pub mod accounts;
pub mod error;
pub mod events;
pub mod sessions;
pub mod wire;
