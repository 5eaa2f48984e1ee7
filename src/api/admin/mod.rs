//! The admin surface: `/api/admin/v1/authenticated-sessions/*`.

pub mod error;
pub mod link;
pub mod sessions;
pub mod wire;
