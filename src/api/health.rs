//! `/healthz`, `/readyz` and `/metrics`.

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db;
use crate::error::Error;
use crate::state::AppState;
use crate::telemetry::{self, Metrics};

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

/// Prometheus metrics: requests and latency by route and status, pool gauges.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
pub(super) async fn metrics(
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> HttpResponse {
    let (connections, idle) = state.db.state();
    let mut text = metrics.render(connections, idle, state.settings.db_pool_size);
    let (running, peak, slots) = state.hashing.gauges();
    text.push_str(&telemetry::hashing_gauges(running, peak, slots));
    let (calls, statements) = state.db.calls();
    text.push_str(&telemetry::store_calls(calls, statements));
    text.push_str(&telemetry::build_info());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(text)
}
