//! `/healthz`, `/readyz` and `/metrics`, on the public address and on the
//! operators' listener (`SESSIOND_METRICS_BIND`).

use std::time::Duration;

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db;
use crate::error::Error;
use crate::state::AppState;
use crate::store::session_counters;
use crate::telemetry::metrics::{Snapshot, CONTENT_TYPE};

/// The longest `/readyz` waits for the store.
const READY_BUDGET: Duration = Duration::from_secs(1);

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<String>,
}

/// The process is up.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Up", body = Health)))]
#[get("/healthz")]
pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        message: None,
    })
}

/// The store answers.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "The store answers", body = Health),
        (status = 503, description = "The store cannot be reached", body = Health),
    )
)]
#[get("/readyz")]
pub(super) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // Probes time out in a second or two: answer well within that, from the
    // breaker at once while the store is known to be down.
    let budget = READY_BUDGET.min(state.settings.db_timeout());
    let result: Result<(), Error> = state
        .db
        .run_within(budget, |conn| Ok(db::ping(conn)?))
        .await;
    match result {
        Ok(()) => HttpResponse::Ok().json(Health {
            status: "ready".into(),
            message: None,
        }),
        Err(error) => {
            // The outage itself is logged once by the pool's health tracker.
            tracing::debug!(%error, "not ready");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(Health {
                    status: "unavailable".into(),
                    message: Some("the session store cannot be reached".into()),
                })
        }
    }
}

/// Prometheus metrics: requests and latency by route and status, sessions
/// started and ended, logins, second-factor checks, throttling, the store
/// pool, password hashing, the process and the build.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 404, description = "SESSIOND_METRICS_BIND is set: metrics are served on that address instead", body = Health),
    )
)]
#[get("/metrics")]
pub(super) async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if state.settings.metrics_bind.is_some() {
        return HttpResponse::NotFound().json(serde_json::json!({
            "success": false,
            "error": format!("No route for {} {}", req.method(), req.path()),
        }));
    }
    exposition(&state).await
}

/// `/metrics` on the operators' listener.
pub(super) async fn management_metrics(state: web::Data<AppState>) -> HttpResponse {
    exposition(&state).await
}

/// What the operators' listener answers for any other path.
pub(super) async fn not_on_management(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "success": false,
        "error": format!(
            "No route for {} {}: this address serves /metrics, /healthz and /readyz",
            req.method(),
            req.path()
        ),
    }))
}

async fn exposition(state: &AppState) -> HttpResponse {
    let (pool_connections, pool_idle) = state.db.state();
    let (hashes_running, hashes_peak, hash_slots) = state.hashing.gauges();
    let store_up = state.db.is_up();
    // Read from the counter table, within the probes' budget, and left out
    // of the store-call counters so a scrape does not change them.
    let active_sessions = if store_up {
        let budget = READY_BUDGET.min(state.settings.db_timeout());
        let read: Result<i64, Error> = state
            .db
            .run_uncounted(budget, |conn| {
                Ok(session_counters::active_sessions(
                    conn,
                    crate::domain::clock::now(),
                )?)
            })
            .await;
        read.ok()
    } else {
        None
    };
    let text = state.metrics.render(&Snapshot {
        pool_connections,
        pool_idle,
        pool_max: state.settings.db_pool_size,
        hashes_running,
        hashes_peak,
        hash_slots,
        store_up,
        active_sessions,
        event_streams: state.event_streams.open(),
    });
    HttpResponse::Ok().content_type(CONTENT_TYPE).body(text)
}
