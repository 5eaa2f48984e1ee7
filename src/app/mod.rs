//! The application: how it is built and started, the state its handlers
//! share, and the background sweep.

mod build;
mod state;
mod sweeper;

pub use build::Application;
pub use state::AppState;
pub use sweeper::sweep;
