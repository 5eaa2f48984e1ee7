//! Plain types with parse-time validation. Nothing here touches HTTP or SQL.

pub mod clock;
pub mod device;
pub mod ended_by;
pub mod event;
pub mod filter;
pub mod listing;
pub mod paging;
pub mod password;
pub mod secret_box;
pub mod token;
pub mod totp;
pub mod username;
