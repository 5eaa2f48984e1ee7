//! Logs, request ids, traces and Prometheus metrics.
//!
//! Request logs carry the request id, the method, the path (never the query
//! string), the route, the status, the latency, the client's address (after
//! the trusted proxies), the `X-User-Id` the request carried and its
//! `User-Agent`; no other header and no body, so no token, password or code
//! can reach a log line through them. Health probes and scrapes are logged
//! at DEBUG.

pub mod metrics;
pub mod otel;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry};

use crate::config::LogFormat;
use metrics::Metrics;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Installs the global subscriber. Logs go to stderr; stdout is left for
/// what the CLI prints. With an OTLP endpoint in the environment, spans are
/// exported too (see [`otel`]); the returned guard flushes them when
/// dropped. A bad OpenTelemetry setting is returned as an error, after the
/// logs are set up to report it.
pub fn init(format: LogFormat, filter: &str) -> Result<Guard, String> {
    let filter = quiet_broken_connections(
        filter,
        EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")),
    );
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, never into a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let var = |name: &str| std::env::var(name).ok();
    let provider = if otel::wanted(var) {
        otel::protocol(var).and_then(otel::provider).map(Some)
    } else {
        Ok(None)
    };
    let (provider, error) = match provider {
        Ok(provider) => (provider, None),
        Err(error) => (None, Some(error)),
    };
    // The service's own spans, whatever their level: the log filter
    // decides what is logged, not what is traced.
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(otel::tracer(provider))
            .with_filter(filter_fn(|meta| {
                meta.is_span() && meta.target().starts_with("sessiond")
            }))
    });
    let _ = Registry::default()
        .with(fmt.with_filter(filter))
        .with(traces)
        .try_init();
    match error {
        Some(error) => Err(error),
        None => Ok(Guard(provider)),
    }
}

/// actix-http logs each connection a client broke at ERROR: a malformed
/// request (which it answers 400), a reset, a client that stopped reading.
/// None is the service's fault, and any caller could fill the error log
/// with them, so they are not logged unless the filter names `actix_http`
/// itself (`RUST_LOG=info,actix_http=debug`).
fn quiet_broken_connections(asked: &str, filter: EnvFilter) -> EnvFilter {
    if asked.contains("actix_http") {
        filter
    } else {
        filter.add_directive(
            "actix_http::h1::dispatcher=off"
                .parse()
                .expect("a valid directive"),
        )
    }
}

/// Flushes and stops the span export, if any, when dropped.
pub struct Guard(Option<opentelemetry_sdk::trace::SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "could not flush the last spans");
            }
        }
    }
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
        otel.kind = "server",
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    otel::continue_trace(&span, req.headers());
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
        metrics.observe_request(&route, &method, status, elapsed);
    }
    otel::rename(&span, || format!("{method} {route}"));
    // With traces exported, the access log names the request's span, so a
    // log line leads to its trace. Absent fields are not written.
    let (trace_id, span_id) = otel::ids(&span).unzip();
    span.record("http.route", route.as_str());
    span.record("http.response.status_code", status);
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
                trace_id = trace_id.as_deref(),
                span_id = span_id.as_deref(),
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

/// A client may pass its own request id if it is short and plain.
fn is_safe_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

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
