//! One typed `Settings`, read from the environment (or flags) with defaults,
//! and the validated value types its fields use.

mod cors;
mod database_url;
mod secret;
mod settings;

pub use cors::CorsOrigin;
pub use database_url::{DatabaseUrl, NO_POSTGRES};
pub use secret::SecretString;
pub use settings::{DbPooler, LimitPolicy, LogFormat, PurgeArgs, Settings, StoreArgs};
