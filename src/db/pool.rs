//! The connection pool: how requests get a connection and run their
//! diesel work on the blocking thread pool within the store timeout.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use diesel::r2d2;
use scheduled_thread_pool::{OnPoolDropBehavior, ScheduledThreadPool};

use super::error::{connection_lost, statement_timed_out};
use super::health::{self, Health};
use super::manager::{ConnectionSetup, StoreManager, Target};
use super::{AnyConnection, DbError, DbResult};
use crate::config::Settings;
use crate::telemetry::metrics::StoreMetrics;

/// A connection checked out for synchronous callers (start-up, tests).
pub struct PooledConn(r2d2::PooledConnection<StoreManager>);

impl std::ops::Deref for PooledConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.0.conn
    }
}

impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.0.conn
    }
}

/// The connection pool, shared by every worker.
#[derive(Clone)]
pub struct DbPool {
    pool: r2d2::Pool<StoreManager>,
    health: Arc<Health>,
    /// How each request's work is run on its connection.
    setup: ConnectionSetup,
    /// The longest a request waits for the store, queueing included.
    timeout: Duration,
    /// Store calls, their statements, waits and timeouts, for `/metrics`.
    metrics: StoreMetrics,
}

/// Whether a store call counts in `sessiond_db_calls_total`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Count {
    Yes,
    /// The scrape's own read, so scrapes do not change what they report.
    No,
}

impl DbPool {
    /// Builds the pool without connecting: a store that is down at start-up
    /// makes `readyz` fail rather than the process.
    pub fn new(settings: &Settings) -> Self {
        let target = Target::of(settings);
        let setup = ConnectionSetup::for_requests(settings);
        let health = Arc::new(Health::default());
        let pool = r2d2::Pool::builder()
            .max_size(settings.db_pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(settings.db_timeout())
            .test_on_check_out(true)
            // Failures are logged by `Health`, once per outage, not by r2d2
            // once per attempt.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .thread_pool(Arc::new(
                // r2d2's own default keeps its threads alive after the pool
                // is dropped (the reaper reschedules itself forever).
                ScheduledThreadPool::builder()
                    .num_threads(3)
                    .thread_name_pattern("r2d2-worker-{}")
                    .on_drop_behavior(OnPoolDropBehavior::DiscardPendingScheduled)
                    .build(),
            ))
            .build_unchecked(StoreManager {
                target,
                setup: setup.clone(),
                health: health.clone(),
            });
        DbPool {
            pool,
            health,
            setup,
            timeout: settings.db_timeout(),
            metrics: StoreMetrics::default(),
        }
    }

    /// A connection for synchronous callers (tests). Its statements run one
    /// by one, outside [`DbPool::run`]'s transaction: behind a
    /// transaction-mode pooler they have no statement timeout.
    pub fn get(&self) -> DbResult<PooledConn> {
        self.checkout(self.timeout).map(PooledConn)
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, carrying
    /// the caller's tracing span. All diesel work of a request goes through
    /// here, and none of it outlasts the store timeout.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_within(self.timeout, f).await
    }

    /// [`DbPool::run`] with a budget of its own (readiness checks use a short one).
    ///
    /// The budget covers everything: queueing for a blocking thread, waiting
    /// for a connection, and the statements. A database that stops answering
    /// mid-statement (frozen, or a network that drops packets) cannot hold the
    /// request past it: the request is answered 503 at the deadline while the
    /// blocking thread waits on for the database's own statement timeout.
    pub async fn run_within<T, E, F>(&self, budget: Duration, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_counted(budget, Count::Yes, f).await
    }

    /// [`DbPool::run_within`] left out of `sessiond_db_calls_total` and
    /// `sessiond_db_statements_total`: for `/metrics`' own read.
    pub async fn run_uncounted<T, E, F>(&self, budget: Duration, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_counted(budget, Count::No, f).await
    }

    async fn run_counted<T, E, F>(&self, budget: Duration, count: Count, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.clone();
        let asked = Instant::now();
        let span = tracing::Span::current();
        let deadline = Instant::now() + budget;
        let work = web::block(move || {
            // A store call is traced within the work it serves: a request,
            // a sweep, a batch of webhook deliveries. The polls that run
            // outside any (the dispatcher's look for new events, each event
            // stream's read, lease renewals, several a second) are not: each
            // would be a trace of one span.
            let call = if span.is_none() {
                tracing::Span::none()
            } else {
                tracing::debug_span!(
                    parent: &span,
                    "store call",
                    db.system.name = tracing::field::Empty,
                    db.statements = tracing::field::Empty,
                )
            };
            let _entered = span.enter();
            let _call = call.enter();
            // Under overload work queues for a blocking thread; what waited
            // out its budget there is refused (503, retry) instead of run
            // for a client that has likely given up.
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
            else {
                pool.metrics.pool_timeouts.inc();
                return Err(DbError::Unavailable("timed out waiting for a worker".into()).into());
            };
            let mut conn = match pool.checkout(left) {
                Ok(conn) => conn,
                Err(error) => {
                    if pool.health.outage().is_none() {
                        pool.metrics.pool_timeouts.inc();
                    }
                    return Err(error.into());
                }
            };
            pool.metrics.wait.observe(asked.elapsed().as_secs_f64());
            connection_lost::take();
            statement_timed_out::take();
            let sent_before = conn.statements.load(Ordering::Relaxed);
            let result = pool.setup.scoped(&mut conn.conn, f);
            let sent = conn.statements.load(Ordering::Relaxed) - sent_before;
            call.record("db.system.name", conn.conn.system_name());
            call.record("db.statements", sent);
            if count == Count::Yes {
                pool.metrics.calls.inc();
                pool.metrics.statements.inc_by(sent);
            }
            if statement_timed_out::take() {
                pool.metrics
                    .statement_timeouts
                    .with_label_values(&["database"])
                    .inc();
            }
            if connection_lost::take() {
                conn.broken = true;
            } else {
                conn.last_used = Instant::now();
                pool.health.answered();
            }
            result
        });
        match tokio::time::timeout_at(deadline.into(), work).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(E::from(DbError::Unavailable(
                "blocking pool shut down".into(),
            ))),
            Err(_) => {
                self.metrics
                    .statement_timeouts
                    .with_label_values(&["deadline"])
                    .inc();
                self.health.unresponsive(budget);
                Err(E::from(DbError::Unavailable(format!(
                    "no answer from the database within {} ms",
                    budget.as_millis()
                ))))
            }
        }
    }

    /// A connection within `left`. While the database is known to be down it
    /// answers at once: an idle connection if one is still good, else the
    /// outage's cause, rather than every request waiting out its timeout.
    fn checkout(&self, left: Duration) -> DbResult<r2d2::PooledConnection<StoreManager>> {
        if let Some(cause) = self.health.outage() {
            return self.pool.try_get().ok_or(DbError::Unavailable(cause));
        }
        let until = Instant::now() + left;
        loop {
            let now = Instant::now();
            let slice = until.saturating_duration_since(now).min(CHECKOUT_SLICE);
            match self.pool.get_timeout(slice) {
                Ok(conn) => return Ok(conn),
                Err(error) => {
                    if let Some(cause) = self.health.outage() {
                        return Err(DbError::Unavailable(cause));
                    }
                    if Instant::now() >= until {
                        let cause = error.to_string();
                        return Err(DbError::Unavailable(if cause.is_empty() {
                            format!(
                                "no database connection came free within {} ms",
                                left.as_millis()
                            )
                        } else {
                            health::one_line(&cause)
                        }));
                    }
                }
            }
        }
    }

    /// Pool gauges for `/metrics`.
    pub fn state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Whether the store answers, as far as the pool knows.
    pub fn is_up(&self) -> bool {
        self.health.outage().is_none()
    }

    /// Store calls made through [`DbPool::run`] since start, the
    /// statements they sent (the connection checks before them not
    /// included), waits and timeouts, for `/metrics`.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }
}

/// A request waiting for a connection looks at the breaker this often, so
/// an outage found meanwhile ends its wait.
const CHECKOUT_SLICE: Duration = Duration::from_millis(100);
