//! Opening connections: where they go, how each is prepared, and the r2d2
//! manager that opens them for the pool and tells it which ones to drop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{
    AnsiTransactionManager, CacheSize, InstrumentationEvent, SimpleConnection, TransactionManager,
};
use diesel::prelude::*;
use diesel::r2d2;

use super::error::connection_lost;
use super::health::{self, Health};
use super::{collate, filter_budget, regex_imatch_utils, AnyConnection, DbError};
use crate::config::{DatabaseUrl, DbPooler, Settings};

/// How each connection is prepared when it opens.
#[derive(Clone, Debug)]
pub(super) struct ConnectionSetup {
    /// SQLite waits this long for another writer's lock.
    busy_timeout: Duration,
    /// Postgres cancels any statement that runs longer (`None`: no limit,
    /// for migrations and the CLI's bulk work).
    statement_timeout: Option<Duration>,
    /// Whether a server session outlives a transaction (see [`DbPooler`]).
    pooler: DbPooler,
}

impl ConnectionSetup {
    pub(super) fn for_requests(settings: &Settings) -> Self {
        ConnectionSetup {
            busy_timeout: settings.db_timeout(),
            statement_timeout: Some(settings.statement_timeout()),
            pooler: settings.db_pooler,
        }
    }

    pub(super) fn unbounded(settings: &Settings) -> Self {
        ConnectionSetup {
            busy_timeout: settings.db_timeout(),
            statement_timeout: None,
            pooler: settings.db_pooler,
        }
    }

    /// Opens one connection, with the driver's own error on failure (on one
    /// line), not `MultiConnection`'s generic "invalid connection url".
    pub(super) fn open(&self, target: &Target) -> Result<AnyConnection, String> {
        let mut conn = match target {
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => diesel::PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                .map_err(|e| health::one_line(&e.to_string()))?,
            #[cfg(not(feature = "postgres"))]
            Target::Postgres(_) => return Err(crate::config::NO_POSTGRES.to_owned()),
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
    ///
    /// Behind a transaction-mode pooler a connection's server session
    /// changes from one transaction to the next, so nothing is set on it
    /// here: a `SET` would land on whichever server session served it (and
    /// stay there for other clients), and a statement diesel keeps prepared
    /// by name would be missing on the next server session, or collide with
    /// another client's of the same name. Diesel then sends every statement
    /// unnamed, parsed and run in one round trip, and the deadline is set
    /// per transaction by [`ConnectionSetup::scoped`]. (The time zone and
    /// client encoding diesel sets on connect are reported parameters,
    /// which the pooler itself restores on every server session it hands
    /// over; PgBouncer does.)
    fn prepare(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        match conn {
            #[cfg(feature = "postgres")]
            AnyConnection::Postgresql(pg) => match self.pooler {
                DbPooler::None => {
                    let millis = self.statement_timeout.map_or(0, |t| t.as_millis().max(1));
                    pg.batch_execute(&format!("SET statement_timeout = {millis}"))
                }
                DbPooler::Transaction => {
                    pg.set_prepared_statement_cache_size(CacheSize::Disabled);
                    Ok(())
                }
            },
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

    /// Runs one request's store work. Directly connected, as it is: the
    /// session's statement timeout covers it. Behind a transaction-mode
    /// pooler, inside one transaction that begins with `SET LOCAL
    /// statement_timeout` (in the same round trip as `BEGIN`), so the
    /// deadline holds on whichever server session runs the work, and ends
    /// with it. The transaction is committed even when `f` fails, so what
    /// the work wrote before it failed is kept as it would be statement by
    /// statement (a charged login or 2FA failure above all); after a
    /// statement error Postgres turns that `COMMIT` into a rollback. Row
    /// locks are held until the work ends, not each statement: the price
    /// of a deadline that survives the pooler.
    pub(super) fn scoped<T, E, F>(&self, conn: &mut AnyConnection, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E>,
        E: From<DbError>,
    {
        #[cfg(feature = "postgres")]
        if let (DbPooler::Transaction, Some(timeout)) = (self.pooler, self.statement_timeout) {
            return in_deadline_transaction(conn, timeout, f);
        }
        f(conn)
    }
}

/// [`ConnectionSetup::scoped`] behind a transaction-mode pooler.
#[cfg(feature = "postgres")]
fn in_deadline_transaction<T, E, F>(
    conn: &mut AnyConnection,
    timeout: Duration,
    f: F,
) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<DbError>,
{
    let AnyConnection::Postgresql(pg) = conn else {
        return f(conn);
    };
    let begin = format!(
        "BEGIN; SET LOCAL statement_timeout = {}",
        timeout.as_millis().max(1)
    );
    if let Err(error) = AnsiTransactionManager::begin_transaction_sql(pg, &begin) {
        // Perhaps half begun: not a connection to hand out again.
        connection_lost::mark();
        return Err(DbError::from_diesel(error).into());
    }
    let result = f(conn);
    let committed = <AnyConnection as Connection>::TransactionManager::commit_transaction(conn);
    if committed.is_err() {
        // Neither surely committed nor surely rolled back: drop it.
        connection_lost::mark();
    }
    match (result, committed) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(error)) => Err(DbError::from_diesel(error).into()),
        // The work's own error says more than a failed commit after it.
        (Err(error), _) => Err(error),
    }
}

/// Where connections go.
#[derive(Clone, Debug)]
pub(super) enum Target {
    Postgres(String),
    Sqlite(String),
}

impl Target {
    pub(super) fn of(settings: &Settings) -> Self {
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
    pub(super) conn: AnyConnection,
    /// Statements sent on this connection since it opened, transaction
    /// control included: what a request cost in round trips.
    pub(super) statements: Arc<AtomicU64>,
    /// When it last answered; one idle longer is checked before reuse.
    pub(super) last_used: Instant,
    /// A statement found it gone: the pool drops it on return.
    pub(super) broken: bool,
}

/// Connections idle longer than this are checked with `SELECT 1` before a
/// request gets them, so one that died with a database restart costs no
/// failed request. Busy connections skip the check.
const CHECK_IDLE_AFTER: Duration = Duration::from_millis(500);

/// Opens connections for r2d2 and tells it which ones to drop.
#[derive(Debug)]
pub(super) struct StoreManager {
    pub(super) target: Target,
    pub(super) setup: ConnectionSetup,
    pub(super) health: Arc<Health>,
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
            Ok(mut conn) => {
                self.health.answered();
                let statements = Arc::new(AtomicU64::new(0));
                let counter = Arc::clone(&statements);
                conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                    if let InstrumentationEvent::StartQuery { .. } = event {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                });
                Ok(StoreConn {
                    conn,
                    statements,
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
