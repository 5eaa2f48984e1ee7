//! The application: how it is built and started, and the background sweep.
//! Nothing else in the crate depends on this module; the state handlers
//! share is `crate::state`.

mod build;
mod sweeper;

pub use build::Application;
pub use sweeper::sweep;
