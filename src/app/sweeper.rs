//! The background sweep: ends expired sessions and purges old rows.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument as _;

use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::domain::clock;
use crate::error::Error;
use crate::service;
use crate::store::{events, failures, sessions};
use crate::telemetry::metrics::Metrics;

/// Ends expired sessions and purges old rows, forever, every sweep interval.
pub fn spawn_sweeper(pool: DbPool, settings: Arc<Settings>, metrics: Metrics) {
    let interval = Duration::from_secs(settings.sweep_interval_seconds.max(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            let (settings, metrics) = (settings.clone(), metrics.clone());
            // Each sweep is a trace of its own, its store call within it.
            let outcome = pool
                .run(move |conn| sweep(conn, &settings, &metrics))
                .instrument(tracing::info_span!("sweep"))
                .await;
            match outcome {
                Ok((ended, purged)) if ended + purged > 0 => {
                    tracing::info!(ended, purged, "session sweep");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "session sweep failed"),
            }
        }
    });
}

/// One sweep: returns (sessions ended, sessions purged).
pub fn sweep(
    conn: &mut db::Conn,
    settings: &Settings,
    metrics: &Metrics,
) -> Result<(usize, usize), Error> {
    let now = clock::now();
    let ended = service::sessions::expire(conn, metrics, now)?;
    let purged =
        sessions::purge_ended(conn, clock::plus_seconds(now, -settings.retention_seconds))?;
    let longest_window = settings
        .login_failure_window_seconds
        .max(settings.two_factor_failure_window_seconds);
    failures::purge(conn, clock::plus_seconds(now, -longest_window))?;
    events::purge(
        conn,
        clock::plus_seconds(now, -settings.audit_retention_seconds),
    )?;
    Ok((ended, purged))
}
