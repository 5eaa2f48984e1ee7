//! Logs, request ids and Prometheus metrics.
//!
//! Request logs carry the request id, the method, the path (never the query
//! string), the route, the status, the latency, the client's address (after
//! the trusted proxies), the `X-User-Id` the request carried and its
//! `User-Agent`; no other header and no body, so no token, password or code
//! can reach a log line through them. Health probes and scrapes are logged
//! at DEBUG.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Installs the global subscriber. Logs go to stderr; stdout is left for
/// what the CLI prints.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, never into a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Request id, span, access log and metrics for every request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_safe_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let client = Client::of(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;

    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(response.request().method());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    if let Some(metrics) = metrics {
        metrics.observe(&route, &method, status, elapsed);
    }
    span.in_scope(|| {
        let Client {
            ip,
            user_id,
            user_agent,
        } = &client;
        if PROBES.contains(&route.as_str()) {
            tracing::debug!(status, latency_ms = elapsed * 1000.0, route = %route, client_ip = %ip, "request finished");
        } else {
            tracing::info!(
                status,
                latency_ms = elapsed * 1000.0,
                route = %route,
                client_ip = %ip,
                user_id = user_id.as_deref().unwrap_or(""),
                user_agent = ?user_agent,
                "request finished"
            );
        }
    });
    Ok(response)
}

/// Routes that load balancers and scrapers call all the time: logged at
/// DEBUG, so the access log at INFO shows what people and programs did.
const PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Who sent a request, for the access log.
struct Client {
    /// After the trusted proxies (`SESSIOND_TRUSTED_PROXIES`).
    ip: String,
    /// The `X-User-Id` the request carried, when it is a user id's shape
    /// (it is what the caller claimed; a 401 says it was not proven).
    user_id: Option<String>,
    /// At most 256 characters; written quoted and escaped.
    user_agent: String,
}

impl Client {
    fn of(req: &ServiceRequest) -> Self {
        let trusted = req
            .app_data::<web::Data<crate::state::AppState>>()
            .map(|state| state.settings.trusted_proxies.clone())
            .unwrap_or_default();
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let user_id = header(crate::auth::caller::USER_ID_HEADER);
        Client {
            ip: crate::api::extract::client_ip(req.request(), &trusted),
            user_id: uuid::Uuid::parse_str(user_id)
                .is_ok()
                .then(|| user_id.to_owned()),
            user_agent: header("user-agent").chars().take(256).collect(),
        }
    }
}

/// The method as a metrics label: the standard ones by name, anything else
/// as `other`, so clients cannot mint series by inventing methods.
fn method_label(method: &actix_web::http::Method) -> String {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    let name = method.as_str();
    if KNOWN.contains(&name) {
        name.to_owned()
    } else {
        "other".to_owned()
    }
}

/// Gauges of the password-hashing cap, in exposition format.
pub fn hashing_gauges(running: usize, peak: usize, slots: usize) -> String {
    format!(
        "# HELP sessiond_password_hashes_running Password hashes being computed now.\n\
         # TYPE sessiond_password_hashes_running gauge\n\
         sessiond_password_hashes_running {running}\n\
         # HELP sessiond_password_hashes_peak The most password hashes computed at once since start.\n\
         # TYPE sessiond_password_hashes_peak gauge\n\
         sessiond_password_hashes_peak {peak}\n\
         # HELP sessiond_password_hash_slots Password hashes allowed at once (SESSIOND_HASH_CONCURRENCY).\n\
         # TYPE sessiond_password_hash_slots gauge\n\
         sessiond_password_hash_slots {slots}\n"
    )
}

/// Store calls and statements for `/metrics`: statements per call is the
/// number of round trips a request costs the store.
pub fn store_calls(calls: u64, statements: u64) -> String {
    format!(
        "# HELP sessiond_db_calls_total Units of store work run for requests and the sweep, each on one pooled connection.\n\
         # TYPE sessiond_db_calls_total counter\n\
         sessiond_db_calls_total {calls}\n\
         # HELP sessiond_db_statements_total Statements those calls sent to the store, transaction control included.\n\
         # TYPE sessiond_db_statements_total counter\n\
         sessiond_db_statements_total {statements}\n"
    )
}

/// A client may pass its own request id if it is short and plain.
fn is_safe_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Up to 10 s, past the store timeout's default (5 s), so a request that
/// waited the whole timeout still lands in a bucket of its own.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Which build is running, as Prometheus's `*_build_info` convention has it.
pub fn build_info() -> String {
    format!(
        "# HELP sessiond_build_info The running build: its version; always 1.\n\
         # TYPE sessiond_build_info gauge\n\
         sessiond_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    /// Per bucket, not cumulative; summed when rendered.
    buckets: [u64; BUCKETS.len()],
}

/// (route pattern, method, status)
type SeriesKey = (String, String, u16);

/// Request counts and latency histograms by route, method and status.
#[derive(Clone, Default)]
pub struct Metrics {
    series: Arc<Mutex<BTreeMap<SeriesKey, Series>>>,
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        let entry = series
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default();
        entry.count += 1;
        entry.sum += seconds;
        if let Some(i) = BUCKETS.iter().position(|upper| seconds <= *upper) {
            entry.buckets[i] += 1;
        }
    }

    /// Prometheus text exposition, with the pool gauges appended.
    pub fn render(&self, pool_connections: u32, pool_idle: u32, pool_max: u32) -> String {
        let mut out = String::new();
        let Ok(series) = self.series.lock() else {
            return out;
        };
        out.push_str(
            "# HELP sessiond_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE sessiond_http_requests_total counter\n");
        for ((route, method, status), s) in series.iter() {
            let _ = writeln!(
                out,
                "sessiond_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {}",
                escape(route),
                s.count
            );
        }
        out.push_str("# HELP sessiond_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE sessiond_http_request_duration_seconds histogram\n");
        for ((route, method, status), s) in series.iter() {
            let labels = format!(
                "route=\"{}\",method=\"{method}\",status=\"{status}\"",
                escape(route)
            );
            let mut cumulative = 0;
            for (upper, n) in BUCKETS.iter().zip(s.buckets.iter()) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "sessiond_http_request_duration_seconds_bucket{{{labels},le=\"{upper}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "sessiond_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "sessiond_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "sessiond_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out.push_str(
            "# HELP sessiond_db_pool_connections Open connections in the database pool.\n",
        );
        out.push_str("# TYPE sessiond_db_pool_connections gauge\n");
        let _ = writeln!(out, "sessiond_db_pool_connections {pool_connections}");
        out.push_str(
            "# HELP sessiond_db_pool_idle_connections Idle connections in the database pool.\n",
        );
        out.push_str("# TYPE sessiond_db_pool_idle_connections gauge\n");
        let _ = writeln!(out, "sessiond_db_pool_idle_connections {pool_idle}");
        out.push_str(
            "# HELP sessiond_db_pool_max_connections Configured size of the database pool.\n",
        );
        out.push_str("# TYPE sessiond_db_pool_max_connections gauge\n");
        let _ = writeln!(out, "sessiond_db_pool_max_connections {pool_max}");
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counts_add_up() {
        let metrics = Metrics::default();
        metrics.observe("/healthz", "GET", 200, 0.0001);
        metrics.observe("/healthz", "GET", 200, 0.2);
        let text = metrics.render(2, 1, 16);
        assert!(text.contains(
            "sessiond_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.0005\"} 1"));
        assert!(text.contains("le=\"0.25\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("sessiond_db_pool_idle_connections 1"));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"FOO").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }

    #[test]
    fn only_plain_request_ids_are_taken_from_clients() {
        assert!(is_safe_request_id("abc-123_x.y"));
        assert!(!is_safe_request_id(""));
        assert!(!is_safe_request_id("a b"));
        assert!(!is_safe_request_id(&"a".repeat(65)));
    }
}
