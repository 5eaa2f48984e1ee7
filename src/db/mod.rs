//! The store: one connection enum over Postgres and SQLite, its pool, and
//! the embedded migrations for each backend.

mod collate;
mod health;
pub mod schema;

pub use collate::collate_c;
use health::Health;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use scheduled_thread_pool::{OnPoolDropBehavior, ScheduledThreadPool};

use crate::config::{DatabaseUrl, Settings};

/// One connection type for both stores; every query in `store/` is written
/// once against it.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type Conn = AnyConnection;

diesel::define_sql_function! {
    /// `text ~* pattern`: case-insensitive, unanchored regex match. A SQL
    /// function over `~*` on Postgres (see its migration), the `regex`
    /// crate on SQLite (registered on every connection).
    fn regex_imatch(text: diesel::sql_types::Text, pattern: diesel::sql_types::Text) -> diesel::sql_types::Bool;
}

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Anything that went wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (pool timeout, lost connection): retryable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database cancelled a statement (its deadline passed, or an
    /// operator cancelled it): retryable.
    #[error("statement cancelled: {0}")]
    Cancelled(String),
    /// A list filter ran out of its work budget.
    #[error("the filter ran out of its {budget_ms} ms budget")]
    FilterTooExpensive { budget_ms: u64 },
    /// The database refused a filter pattern that validation let through.
    #[error("the database refused the filter: {0}")]
    InvalidFilter(String),
    #[error(transparent)]
    Query(diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<diesel::result::Error> for DbError {
    fn from(error: diesel::result::Error) -> Self {
        DbError::from_diesel(error)
    }
}

impl DbError {
    /// Classifies a diesel error: a dropped connection is an outage, a
    /// cancelled statement a timeout, neither is a bug.
    pub fn from_diesel(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &error {
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => {
                connection_lost::mark();
                DbError::Unavailable(health::one_line(info.message()))
            }
            Error::DatabaseError(_, info) => {
                let message = info.message();
                if message.starts_with("canceling statement due to") {
                    DbError::Cancelled(health::one_line(message))
                } else if message.starts_with("invalid regular expression") {
                    DbError::InvalidFilter(health::one_line(message))
                } else if message.starts_with("terminating connection")
                    || message.contains("server closed the connection unexpectedly")
                {
                    connection_lost::mark();
                    DbError::Unavailable(health::one_line(message))
                } else if message == "database is locked" || message == "database is busy" {
                    // SQLite's busy timeout passed while another writer held the file.
                    DbError::Unavailable(message.to_owned())
                } else {
                    DbError::Query(error)
                }
            }
            Error::BrokenTransactionManager => {
                connection_lost::mark();
                DbError::Unavailable(error.to_string())
            }
            _ => DbError::Query(error),
        }
    }
}

/// What a store function returns.
pub type DbResult<T> = Result<T, DbError>;

/// Lets `?` in store functions classify diesel errors.
pub trait IntoDbResult<T> {
    fn db(self) -> DbResult<T>;
}

impl<T> IntoDbResult<T> for Result<T, diesel::result::Error> {
    fn db(self) -> DbResult<T> {
        self.map_err(DbError::from_diesel)
    }
}

/// Set on the blocking thread when a statement finds its connection gone,
/// so the pool drops that connection instead of handing it out again.
mod connection_lost {
    use std::cell::Cell;

    thread_local! {
        static LOST: Cell<bool> = const { Cell::new(false) };
    }

    pub fn mark() {
        LOST.with(|lost| lost.set(true));
    }

    /// Whether a connection was lost since the last call.
    pub fn take() -> bool {
        LOST.with(|lost| lost.replace(false))
    }
}

/// How each connection is prepared when it opens.
#[derive(Clone, Debug)]
struct ConnectionSetup {
    /// SQLite waits this long for another writer's lock.
    busy_timeout: Duration,
    /// Postgres cancels any statement that runs longer (`None`: no limit,
    /// for migrations and the CLI's bulk work).
    statement_timeout: Option<Duration>,
}

impl ConnectionSetup {
    fn for_requests(settings: &Settings) -> Self {
        ConnectionSetup {
            busy_timeout: settings.db_timeout(),
            statement_timeout: Some(settings.statement_timeout()),
        }
    }

    fn unbounded(settings: &Settings) -> Self {
        ConnectionSetup {
            busy_timeout: settings.db_timeout(),
            statement_timeout: None,
        }
    }

    /// Opens one connection, with the driver's own error on failure (on one
    /// line), not `MultiConnection`'s generic "invalid connection url".
    fn open(&self, target: &Target) -> Result<AnyConnection, String> {
        let mut conn = match target {
            Target::Postgres(url) => diesel::PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                .map_err(|e| health::one_line(&e.to_string()))?,
            Target::Sqlite(path) => diesel::SqliteConnection::establish(path)
                .map(AnyConnection::Sqlite)
                .map_err(|e| health::one_line(&e.to_string()))?,
        };
        self.prepare(&mut conn)
            .map_err(|e| health::one_line(&e.to_string()))?;
        Ok(conn)
    }

    /// Postgres gets its statement deadline; SQLite a busy timeout, foreign
    /// keys and the SQL functions the queries use.
    fn prepare(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        match conn {
            AnyConnection::Postgresql(pg) => {
                let millis = self.statement_timeout.map_or(0, |t| t.as_millis().max(1));
                pg.batch_execute(&format!("SET statement_timeout = {millis}"))
            }
            AnyConnection::Sqlite(sqlite) => {
                let pragmas = format!(
                    "PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    self.busy_timeout.as_millis()
                );
                sqlite.batch_execute(&pragmas)?;
                regex_imatch_utils::register_impl(sqlite, |text: String, pattern: String| {
                    filter_budget::is_match_within_budget(&text, &pattern)
                })?;
                sqlite.register_collation("C", collate::compare_bytes)
            }
        }
    }
}

/// Where connections go.
#[derive(Clone, Debug)]
enum Target {
    Postgres(String),
    Sqlite(String),
}

impl Target {
    fn of(settings: &Settings) -> Self {
        match &settings.database_url {
            DatabaseUrl::Postgres(url) => Target::Postgres(with_connect_timeout(
                url.expose(),
                settings.db_connect_timeout_seconds,
            )),
            DatabaseUrl::Sqlite(path) => Target::Sqlite(path.to_string_lossy().into_owned()),
        }
    }
}

/// Adds libpq's `connect_timeout` to a URL that does not set its own, so a
/// database that accepts TCP but never answers cannot hold a connect forever.
fn with_connect_timeout(url: &str, seconds: u64) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout={}", seconds.max(1))
}

/// A pooled connection and what the pool knows about it.
pub struct StoreConn {
    conn: AnyConnection,
    /// When it last answered; one idle longer is checked before reuse.
    last_used: Instant,
    /// A statement found it gone: the pool drops it on return.
    broken: bool,
}

/// Connections idle longer than this are checked with `SELECT 1` before a
/// request gets them, so one that died with a database restart costs no
/// failed request. Busy connections skip the check.
const CHECK_IDLE_AFTER: Duration = Duration::from_millis(500);

/// Opens connections for r2d2 and tells it which ones to drop.
#[derive(Debug)]
struct StoreManager {
    target: Target,
    setup: ConnectionSetup,
    health: Arc<Health>,
}

/// Why a connection could not be opened or kept.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

impl r2d2::ManageConnection for StoreManager {
    type Connection = StoreConn;
    type Error = ConnectError;

    fn connect(&self) -> Result<StoreConn, ConnectError> {
        match self.setup.open(&self.target) {
            Ok(conn) => {
                self.health.answered();
                Ok(StoreConn {
                    conn,
                    last_used: Instant::now(),
                    broken: false,
                })
            }
            Err(cause) => {
                self.health.connect_failed(&cause);
                Err(ConnectError(cause))
            }
        }
    }

    fn is_valid(&self, conn: &mut StoreConn) -> Result<(), ConnectError> {
        if matches!(conn.conn, AnyConnection::Sqlite(_))
            || conn.last_used.elapsed() < CHECK_IDLE_AFTER
        {
            return Ok(());
        }
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(|e| ConnectError(health::one_line(&e.to_string())))?;
        conn.last_used = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut StoreConn) -> bool {
        conn.broken
    }
}

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
    /// The longest a request waits for the store, queueing included.
    timeout: Duration,
}

impl DbPool {
    /// Builds the pool without connecting: a store that is down at start-up
    /// makes `readyz` fail rather than the process.
    pub fn new(settings: &Settings) -> Self {
        let target = Target::of(settings);
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
                setup: ConnectionSetup::for_requests(settings),
                health: health.clone(),
            });
        DbPool {
            pool,
            health,
            timeout: settings.db_timeout(),
        }
    }

    /// A connection for synchronous callers (start-up, the sweep, tests).
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
        let pool = self.clone();
        let span = tracing::Span::current();
        let deadline = Instant::now() + budget;
        let work = web::block(move || {
            let _entered = span.enter();
            // Under overload work queues for a blocking thread; what waited
            // out its budget there is refused (503, retry) instead of run
            // for a client that has likely given up.
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| DbError::Unavailable("timed out waiting for a worker".into()))?;
            let mut conn = pool.checkout(left)?;
            connection_lost::take();
            let result = f(&mut conn.conn);
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
}

/// A request waiting for a connection looks at the breaker this often, so
/// an outage found meanwhile ends its wait.
const CHECKOUT_SLICE: Duration = Duration::from_millis(100);

/// One connection outside the pool, without a statement deadline: for the
/// CLI and for migrations, whose bulk work may rightly take long.
pub fn establish(settings: &Settings) -> DbResult<AnyConnection> {
    ConnectionSetup::unbounded(settings)
        .open(&Target::of(settings))
        .map_err(DbError::Unavailable)
}

/// Brings the schema up to date. On Postgres an advisory lock keeps
/// instances that start together from migrating at once.
pub fn run_migrations(conn: &mut AnyConnection) -> DbResult<()> {
    match conn {
        AnyConnection::Postgresql(pg) => {
            const MIGRATION_LOCK: i64 = 0x5e55_10d0;
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                .execute(pg)
                .db()?;
            let result = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| DbError::Migration(e.to_string()));
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                .execute(pg)
                .db()?;
            result
        }
        AnyConnection::Sqlite(sqlite) => {
            // WAL is a property of the file: set once here, kept by every connection.
            sqlite.batch_execute("PRAGMA journal_mode = WAL").db()?;
            sqlite
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| DbError::Migration(e.to_string()))
        }
    }
}

/// Runs a filtered list's statements within the filter work budget.
///
/// On Postgres: in a transaction whose statements are each cancelled by the
/// database once they run past the budget, and planned for their values
/// (diesel keeps statements prepared, and after five runs Postgres may
/// switch to a generic plan, which cannot see a regex filter's pattern and
/// so cannot use the trigram indexes). On SQLite the regex function itself
/// watches the clock: past the budget it stops matching, so the statement
/// ends at once, and the run is reported as over budget.
pub fn with_filter_budget<T, F>(conn: &mut AnyConnection, budget: Duration, f: F) -> DbResult<T>
where
    F: FnOnce(&mut AnyConnection) -> DbResult<T>,
{
    let budget_ms = budget.as_millis().clamp(1, u64::MAX as u128) as u64;
    let outcome = match conn {
        AnyConnection::Postgresql(_) => conn.transaction(|conn| {
            if let AnyConnection::Postgresql(pg) = conn {
                pg.batch_execute(&format!(
                    "SET LOCAL plan_cache_mode = force_custom_plan; \
                     SET LOCAL statement_timeout = {budget_ms}"
                ))?;
            }
            f(conn)
        }),
        AnyConnection::Sqlite(_) => filter_budget::within(budget, || f(conn)),
    };
    match outcome {
        // Over budget; a cancellation for another reason stays a 503.
        Err(DbError::Cancelled(cause)) if cause.contains("timeout") || cause.contains("budget") => {
            Err(DbError::FilterTooExpensive { budget_ms })
        }
        other => other,
    }
}

/// The filter budget on SQLite, where the regex is ours: a deadline per
/// blocking thread, read by `regex_imatch` on every row.
mod filter_budget {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::DbError;

    thread_local! {
        static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
        static RAN_OUT: Cell<bool> = const { Cell::new(false) };
    }

    pub fn within<T>(
        budget: Duration,
        f: impl FnOnce() -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        DEADLINE.with(|deadline| deadline.set(Some(Instant::now() + budget)));
        RAN_OUT.with(|ran_out| ran_out.set(false));
        let result = f();
        DEADLINE.with(|deadline| deadline.set(None));
        if RAN_OUT.with(|ran_out| ran_out.replace(false)) {
            return Err(DbError::Cancelled("the filter budget ran out".into()));
        }
        result
    }

    /// `regex_imatch` for SQLite: no row matches once the budget is spent.
    pub fn is_match_within_budget(text: &str, pattern: &str) -> bool {
        let spent = DEADLINE.with(|deadline| deadline.get().is_some_and(|d| Instant::now() >= d));
        if spent {
            RAN_OUT.with(|ran_out| ran_out.set(true));
            return false;
        }
        crate::domain::filter::is_match(text, pattern)
    }
}

/// `SELECT 1`, for readiness.
pub fn ping(conn: &mut AnyConnection) -> DbResult<()> {
    conn.batch_execute("SELECT 1").db()
}
