//! `AppState`: what every handler can reach.

use std::sync::Arc;

use crate::api::rocket_chat::events::StreamSlots;
use crate::config::Settings;
use crate::db::DbPool;
use crate::domain::secret_box::SecretBox;
use crate::limits::{Bulkhead, Hashing};
use crate::store::sessions::Lifetime;
use crate::telemetry::metrics::Metrics;

/// What every handler can reach.
pub struct AppState {
    pub db: DbPool,
    pub settings: Arc<Settings>,
    pub secrets: SecretBox,
    pub lifetime: Lifetime,
    pub two_factor_limits: TwoFactorLimits,
    pub instance_id: String,
    /// Slots for expensive list queries, so they cannot starve authentication.
    pub bulkhead: Bulkhead,
    /// The cap on concurrent password hashing.
    pub hashing: Hashing,
    pub metrics: Metrics,
    /// The cap on open event streams (`/api/v1/sessions/events`, `events.me`).
    pub event_streams: StreamSlots,
}

/// How many wrong second-factor codes a user may send in a window, from
/// the settings.
#[derive(Clone, Copy, Debug)]
pub struct TwoFactorLimits {
    pub max_failures: i64,
    pub window_seconds: i64,
}
