//! Prometheus metrics: one registry per running service, rendered by
//! `GET /metrics` on the public address or on `SESSIOND_METRICS_BIND`.
//!
//! Label values come from closed sets (route patterns, known methods,
//! surfaces, results), so no client can mint new series.

use prometheus::core::Collector;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::domain::ended_by::EndReason;
use crate::error::{Error, TwoFactorError};
use crate::service::Surface;

/// The content type of the text exposition.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Up to 10 s, past the store timeout's default (5 s), so a request that
/// waited the whole timeout still lands in a bucket of its own.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What the store costs and how long requests wait for it, kept by the
/// connection pool.
#[derive(Clone)]
pub struct StoreMetrics {
    /// Units of store work, each on one pooled connection.
    pub calls: IntCounter,
    /// Statements those calls sent, transaction control included.
    pub statements: IntCounter,
    /// From asking for the store to holding a connection.
    pub wait: Histogram,
    /// No blocking thread or connection came free within the budget.
    pub pool_timeouts: IntCounter,
    /// Statements the database cancelled (`by="database"`) or that the
    /// request stopped waiting for (`by="deadline"`).
    pub statement_timeouts: IntCounterVec,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        let metrics = StoreMetrics {
            calls: counter(
                "sessiond_db_calls_total",
                "Units of store work run for requests, the sweep and webhook delivery, each on one pooled connection.",
            ),
            statements: counter(
                "sessiond_db_statements_total",
                "Statements those calls sent to the store, transaction control included.",
            ),
            wait: Histogram::with_opts(
                HistogramOpts::new(
                    "sessiond_db_pool_wait_seconds",
                    "Time store calls waited for a blocking thread and a pooled connection.",
                )
                .buckets(BUCKETS.to_vec()),
            )
            .expect("valid histogram"),
            pool_timeouts: counter(
                "sessiond_db_pool_timeouts_total",
                "Store calls refused (503) because no blocking thread or connection came free within the store timeout.",
            ),
            statement_timeouts: counter_vec(
                "sessiond_db_statement_timeouts_total",
                "Statements cancelled by the database's statement timeout (by=database) or answered 503 at the request's deadline while still running (by=deadline).",
                &["by"],
            ),
        };
        zeroed(&metrics.statement_timeouts, &["database", "deadline"]);
        metrics
    }
}

/// Starts each of `values` at 0, so alerts on a rate see the series from
/// the start rather than from its first event.
fn zeroed(counters: &IntCounterVec, values: &[&str]) {
    for value in values {
        counters.with_label_values(&[value]);
    }
}

/// The surfaces that open sessions.
const OPENING_SURFACES: [&str; 2] = ["rocket_chat", "json_action"];

/// The (surface, method) pairs a login can come through.
const LOGIN_WAYS: [(&str, &str); 3] = [
    ("rocket_chat", "password"),
    ("rocket_chat", "resume"),
    ("json_action", "password"),
];

/// Every `result` of `sessiond_logins_total` (see [`Metrics::login`]).
const LOGIN_RESULTS: [&str; 9] = [
    "success",
    "failed",
    "throttled",
    "two_factor_required",
    "two_factor_invalid",
    "two_factor_locked",
    "unavailable",
    "session_limit",
    "error",
];

/// The (surface, reason) pairs the server ends sessions with: users log
/// out on both user surfaces, administrators revoke on the Rocket.Chat and
/// admin surfaces, logins past the limit evict, and the sweep expires. The
/// command line's endings are not served (see [`Metrics::unexported`]).
const ENDINGS: [(&str, &str); 9] = [
    ("rocket_chat", "logout"),
    ("rocket_chat", "logout_others"),
    ("rocket_chat", "admin_revoke"),
    ("rocket_chat", "evicted"),
    ("admin", "admin_revoke"),
    ("admin", "admin_revoke_user"),
    ("json_action", "logout"),
    ("json_action", "evicted"),
    ("sweep", "expired"),
];

impl StoreMetrics {
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.calls.clone()),
            Box::new(self.statements.clone()),
            Box::new(self.wait.clone()),
            Box::new(self.pool_timeouts.clone()),
            Box::new(self.statement_timeouts.clone()),
        ]
    }
}

/// What the scrape reads at the moment it is asked.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    pub pool_connections: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
    pub hashes_running: usize,
    pub hashes_peak: usize,
    pub hash_slots: usize,
    /// Whether the store answers (no outage known).
    pub store_up: bool,
    /// Every active session; `None` when the store could not say.
    pub active_sessions: Option<i64>,
    /// Event streams open on this instance.
    pub event_streams: usize,
}

/// Every metric the service exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    sessions_started: IntCounterVec,
    sessions_ended: IntCounterVec,
    logins: IntCounterVec,
    two_factor_checks: IntCounterVec,
    throttled: IntCounterVec,
    sessions_active: IntGauge,
    gauges: Gauges,
    webhooks: WebhookMetrics,
}

/// Webhook delivery, by endpoint (its id, never its URL).
#[derive(Clone)]
struct WebhookMetrics {
    deliveries: IntCounterVec,
    lag: GaugeVec,
    pending: IntGaugeVec,
}

/// The results of one webhook delivery attempt.
pub const WEBHOOK_RESULTS: [&str; 3] = ["delivered", "rejected", "unreachable"];

#[derive(Clone)]
struct Gauges {
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    hashes_running: IntGauge,
    hashes_peak: IntGauge,
    hash_slots: IntGauge,
    store_up: IntGauge,
    event_streams: IntGauge,
}

impl Metrics {
    /// A registry with the process metrics, the build, the store's
    /// `store` metrics and the service's own.
    pub fn new(store: &StoreMetrics) -> Self {
        let labels = ["route", "method", "status"];
        let metrics = Metrics {
            registry: Registry::new(),
            http_requests: counter_vec(
                "sessiond_http_requests_total",
                "HTTP requests by route, method and status.",
                &labels,
            ),
            http_duration: HistogramVec::new(
                HistogramOpts::new(
                    "sessiond_http_request_duration_seconds",
                    "HTTP request latency by route, method and status.",
                )
                .buckets(BUCKETS.to_vec()),
                &labels,
            )
            .expect("valid histogram"),
            sessions_started: counter_vec(
                "sessiond_sessions_started_total",
                "Sessions opened, by the surface that opened them.",
                &["surface"],
            ),
            sessions_ended: counter_vec(
                "sessiond_sessions_ended_total",
                "Sessions ended, by the surface that ended them and why.",
                &["surface", "reason"],
            ),
            logins: counter_vec(
                "sessiond_logins_total",
                "Login attempts by surface, method (password or resume) and result.",
                &["surface", "method", "result"],
            ),
            two_factor_checks: counter_vec(
                "sessiond_two_factor_checks_total",
                "Second-factor codes checked, by result (success, invalid, locked).",
                &["result"],
            ),
            throttled: counter_vec(
                "sessiond_throttled_total",
                "Attempts refused because a failure limit was full, by limit (login_user, login_ip, two_factor).",
                &["limit"],
            ),
            sessions_active: gauge(
                "sessiond_sessions_active",
                "Active sessions in the store (all instances), read at scrape time; absent while the store cannot be read.",
            ),
            gauges: Gauges {
                pool_connections: gauge(
                    "sessiond_db_pool_connections",
                    "Open connections in the database pool.",
                ),
                pool_idle: gauge(
                    "sessiond_db_pool_idle_connections",
                    "Idle connections in the database pool.",
                ),
                pool_max: gauge(
                    "sessiond_db_pool_max_connections",
                    "Configured size of the database pool.",
                ),
                hashes_running: gauge(
                    "sessiond_password_hashes_running",
                    "Password hashes being computed now.",
                ),
                hashes_peak: gauge(
                    "sessiond_password_hashes_peak",
                    "The most password hashes computed at once since start.",
                ),
                hash_slots: gauge(
                    "sessiond_password_hash_slots",
                    "Password hashes allowed at once (SESSIOND_HASH_CONCURRENCY).",
                ),
                store_up: gauge(
                    "sessiond_db_up",
                    "1 while the store answers, 0 during an outage the pool has seen.",
                ),
                event_streams: gauge(
                    "sessiond_event_streams_open",
                    "Event streams (sessions/events, events.me) open on this instance.",
                ),
            },
            webhooks: WebhookMetrics {
                deliveries: counter_vec(
                    "sessiond_webhook_deliveries_total",
                    "Webhook delivery attempts by endpoint id and result: delivered (2xx), rejected (any other status) or unreachable (no answer within the timeout, or a connection error).",
                    &["endpoint", "result"],
                ),
                lag: GaugeVec::new(
                    Opts::new(
                        "sessiond_webhook_lag_seconds",
                        "Age of the oldest event not yet delivered to the endpoint; 0 when caught up. Set by the instance holding the endpoint's lease (0 on the others).",
                    ),
                    &["endpoint"],
                )
                .expect("valid gauge"),
                pending: IntGaugeVec::new(
                    Opts::new(
                        "sessiond_webhook_pending_events",
                        "Events the endpoint wants that are not yet delivered. Set by the instance holding the endpoint's lease (0 on the others).",
                    ),
                    &["endpoint"],
                )
                .expect("valid gauge"),
            },
        };
        let build = IntGauge::with_opts(
            Opts::new(
                "sessiond_build_info",
                "The running build: its version; always 1.",
            )
            .const_label("version", env!("CARGO_PKG_VERSION")),
        )
        .expect("valid gauge");
        build.set(1);
        zeroed(
            &metrics.two_factor_checks,
            &["success", "invalid", "locked"],
        );
        zeroed(&metrics.sessions_started, &OPENING_SURFACES);
        for (surface, reason) in ENDINGS {
            metrics.sessions_ended.with_label_values(&[surface, reason]);
        }
        for (surface, method) in LOGIN_WAYS {
            for result in LOGIN_RESULTS {
                metrics.logins.with_label_values(&[surface, method, result]);
            }
        }
        zeroed(
            &metrics.throttled,
            &["login_user", "login_ip", "two_factor"],
        );
        let mut collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(metrics.http_requests.clone()),
            Box::new(metrics.http_duration.clone()),
            Box::new(metrics.sessions_started.clone()),
            Box::new(metrics.sessions_ended.clone()),
            Box::new(metrics.logins.clone()),
            Box::new(metrics.two_factor_checks.clone()),
            Box::new(metrics.throttled.clone()),
            Box::new(metrics.webhooks.deliveries.clone()),
            Box::new(metrics.webhooks.lag.clone()),
            Box::new(metrics.webhooks.pending.clone()),
            Box::new(build),
        ];
        let g = &metrics.gauges;
        for gauge in [
            &g.pool_connections,
            &g.pool_idle,
            &g.pool_max,
            &g.hashes_running,
            &g.hashes_peak,
            &g.hash_slots,
            &g.store_up,
            &g.event_streams,
        ] {
            collectors.push(Box::new(gauge.clone()));
        }
        collectors.extend(store.collectors());
        #[cfg(target_os = "linux")]
        collectors.push(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }

    /// Metrics that nothing reads: for the command line, which changes
    /// sessions but serves no `/metrics`.
    pub fn unexported() -> Self {
        Metrics::new(&StoreMetrics::default())
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [route, method, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    pub fn session_started(&self, surface: Surface) {
        self.sessions_started
            .with_label_values(&[surface.label()])
            .inc();
    }

    pub fn sessions_ended(&self, surface: Surface, reason: EndReason, count: usize) {
        if count > 0 {
            self.sessions_ended
                .with_label_values(&[surface.label(), reason.label()])
                .inc_by(count as u64);
        }
    }

    /// One login attempt's outcome; `method` is `password` or `resume`.
    pub fn login<T>(&self, surface: Surface, method: &str, outcome: &Result<T, Error>) {
        let result = match outcome {
            Ok(_) => "success",
            Err(Error::LoginFailed) => "failed",
            Err(Error::Throttled { .. }) => "throttled",
            Err(Error::TwoFactor(TwoFactorError::Required { .. })) => "two_factor_required",
            Err(Error::TwoFactor(TwoFactorError::Invalid)) => "two_factor_invalid",
            Err(Error::TwoFactor(TwoFactorError::MaxAttempts { .. })) => "two_factor_locked",
            Err(Error::Unavailable(_) | Error::Busy(_)) => "unavailable",
            Err(Error::SessionLimit { .. }) => "session_limit",
            Err(_) => "error",
        };
        self.logins
            .with_label_values(&[surface.label(), method, result])
            .inc();
    }

    /// One second-factor code checked: `success`, `invalid` or `locked`
    /// (refused unchecked, the limit being full).
    pub fn two_factor_check(&self, result: &str) {
        self.two_factor_checks.with_label_values(&[result]).inc();
    }

    /// An attempt refused by a full failure limit.
    pub fn throttled(&self, limit: &str) {
        self.throttled.with_label_values(&[limit]).inc();
    }

    /// Starts a webhook endpoint's series: its counters at 0, caught up.
    pub fn webhook_endpoint(&self, endpoint: &str) {
        for result in WEBHOOK_RESULTS {
            self.webhooks
                .deliveries
                .with_label_values(&[endpoint, result]);
        }
        self.webhook_backlog(endpoint, 0.0, 0);
    }

    /// One webhook delivery attempt; `result` is one of [`WEBHOOK_RESULTS`].
    pub fn webhook_delivery(&self, endpoint: &str, result: &str) {
        self.webhooks
            .deliveries
            .with_label_values(&[endpoint, result])
            .inc();
    }

    /// How far behind an endpoint is: the age of its oldest undelivered
    /// event and how many events it has yet to get.
    pub fn webhook_backlog(&self, endpoint: &str, lag_seconds: f64, pending: i64) {
        self.webhooks
            .lag
            .with_label_values(&[endpoint])
            .set(lag_seconds.max(0.0));
        self.webhooks
            .pending
            .with_label_values(&[endpoint])
            .set(pending.max(0));
    }

    /// The text exposition, with the scrape-time gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        let g = &self.gauges;
        g.pool_connections.set(now.pool_connections.into());
        g.pool_idle.set(now.pool_idle.into());
        g.pool_max.set(now.pool_max.into());
        g.hashes_running.set(now.hashes_running as i64);
        g.hashes_peak.set(now.hashes_peak as i64);
        g.hash_slots.set(now.hash_slots as i64);
        g.store_up.set(now.store_up.into());
        g.event_streams.set(now.event_streams as i64);
        let mut families = self.registry.gather();
        if let Some(active) = now.active_sessions {
            self.sessions_active.set(active);
            families.extend(self.sessions_active.collect());
        }
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&families, &mut text) {
            tracing::warn!(%error, "could not encode the metrics");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid counter")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid gauge")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> (Metrics, String) {
        let metrics = Metrics::unexported();
        metrics.observe_request("/healthz", "GET", 200, 0.0001);
        metrics.observe_request("/healthz", "GET", 200, 0.2);
        let text = metrics.render(&Snapshot {
            pool_max: 16,
            pool_idle: 1,
            ..Snapshot::default()
        });
        (metrics, text)
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_counts_add_up() {
        let (_, text) = rendered();
        assert!(text.contains(
            "sessiond_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.0005\"} 1"), "{text}");
        assert!(text.contains("le=\"0.25\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("sessiond_db_pool_idle_connections 1"));
    }

    #[test]
    fn the_active_gauge_is_absent_when_the_store_could_not_say() {
        let (metrics, text) = rendered();
        assert!(!text.contains("sessiond_sessions_active "), "{text}");
        let text = metrics.render(&Snapshot {
            active_sessions: Some(7),
            ..Snapshot::default()
        });
        assert!(text.contains("sessiond_sessions_active 7"), "{text}");
    }

    #[test]
    fn the_session_and_login_series_start_at_zero_with_labels_the_service_uses() {
        let surfaces = [
            Surface::RocketChat,
            Surface::Admin,
            Surface::JsonAction,
            Surface::Sweep,
        ]
        .map(Surface::label);
        let reasons = [
            EndReason::Logout,
            EndReason::LogoutOthers,
            EndReason::AdminRevoke,
            EndReason::AdminRevokeUser,
            EndReason::Expired,
            EndReason::Evicted,
        ]
        .map(EndReason::label);
        for (surface, reason) in ENDINGS {
            assert!(surfaces.contains(&surface) && reasons.contains(&reason));
        }
        for surface in OPENING_SURFACES
            .iter()
            .chain(LOGIN_WAYS.iter().map(|(s, _)| s))
        {
            assert!(surfaces.contains(surface), "{surface}");
        }
        let (_, text) = rendered();
        for series in [
            "sessiond_sessions_started_total{surface=\"json_action\"} 0",
            "sessiond_sessions_ended_total{reason=\"expired\",surface=\"sweep\"} 0",
            "sessiond_sessions_ended_total{reason=\"evicted\",surface=\"rocket_chat\"} 0",
            "sessiond_logins_total{method=\"password\",result=\"failed\",surface=\"rocket_chat\"} 0",
            "sessiond_logins_total{method=\"resume\",result=\"success\",surface=\"rocket_chat\"} 0",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }

    #[test]
    fn login_outcomes_have_their_own_results() {
        let metrics = Metrics::unexported();
        metrics.login::<()>(Surface::RocketChat, "password", &Err(Error::LoginFailed));
        metrics.login(Surface::JsonAction, "password", &Ok(()));
        let text = metrics.render(&Snapshot::default());
        assert!(text.contains(
            "sessiond_logins_total{method=\"password\",result=\"failed\",surface=\"rocket_chat\"} 1"
        ), "{text}");
        assert!(text.contains(
            "sessiond_logins_total{method=\"password\",result=\"success\",surface=\"json_action\"} 1"
        ));
    }
}
