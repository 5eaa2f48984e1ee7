//! Who is calling: the authenticated caller, their permissions, and the
//! two-factor guard.

pub mod caller;
pub mod permissions;
pub mod two_factor;

pub use caller::{Caller, Credentials};
pub use permissions::Permission;
