//! The store: one connection enum over Postgres and SQLite, its pool, and
//! the embedded migrations for each backend.

mod collate;
pub mod schema;

pub use collate::collate_c;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ConnectionManager, CustomizeConnection, PooledConnection};
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
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
}

impl DbError {
    /// Classifies a diesel error: a dropped connection is an outage, not a bug.
    pub fn from_diesel(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &error {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                DbError::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => {
                DbError::Unavailable(info.message().to_owned())
            }
            Error::BrokenTransactionManager => DbError::Unavailable(error.to_string()),
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

/// Per-connection setup: SQLite gets a busy timeout, foreign keys and the
/// SQL functions the queries use.
#[derive(Debug)]
struct ConnectionSetup {
    busy_timeout: Duration,
}

impl CustomizeConnection<AnyConnection, r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), r2d2::Error> {
        if let AnyConnection::Sqlite(sqlite) = conn {
            let pragmas = format!(
                "PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                self.busy_timeout.as_millis()
            );
            sqlite
                .batch_execute(&pragmas)
                .map_err(r2d2::Error::QueryError)?;
            regex_imatch_utils::register_impl(sqlite, |text: String, pattern: String| {
                crate::domain::filter::is_match(&text, &pattern)
            })
            .map_err(r2d2::Error::QueryError)?;
            sqlite
                .register_collation("C", collate::compare_bytes)
                .map_err(r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// The connection pool, shared by every worker.
#[derive(Clone)]
pub struct DbPool {
    pool: r2d2::Pool<ConnectionManager<AnyConnection>>,
    backend: Backend,
    /// The longest a request waits for a connection, queueing included.
    timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl DbPool {
    /// Builds the pool without connecting: a store that is down at start-up
    /// makes `readyz` fail rather than the process.
    pub fn new(settings: &Settings) -> Self {
        let (url, backend) = match &settings.database_url {
            DatabaseUrl::Postgres(url) => (url.expose().to_owned(), Backend::Postgres),
            DatabaseUrl::Sqlite(path) => (path.to_string_lossy().into_owned(), Backend::Sqlite),
        };
        let pool = r2d2::Pool::builder()
            .max_size(settings.db_pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(settings.db_timeout())
            .test_on_check_out(false)
            .thread_pool(Arc::new(
                // r2d2's own default keeps its threads alive after the pool
                // is dropped (the reaper reschedules itself forever).
                ScheduledThreadPool::builder()
                    .num_threads(3)
                    .thread_name_pattern("r2d2-worker-{}")
                    .on_drop_behavior(OnPoolDropBehavior::DiscardPendingScheduled)
                    .build(),
            ))
            .connection_customizer(Box::new(ConnectionSetup {
                busy_timeout: settings.db_timeout(),
            }))
            .build_unchecked(ConnectionManager::new(url));
        DbPool {
            pool,
            backend,
            timeout: settings.db_timeout(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection for synchronous callers (the CLI, start-up, the sweep).
    pub fn get(&self) -> DbResult<PooledConnection<ConnectionManager<AnyConnection>>> {
        self.pool
            .get()
            .map_err(|error| DbError::Unavailable(error.to_string()))
    }

    /// Runs `f` with a pooled connection on the blocking thread pool, carrying
    /// the caller's tracing span. All diesel work of a request goes through here.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.clone();
        let span = tracing::Span::current();
        let queued = Instant::now();
        web::block(move || {
            let _entered = span.enter();
            // Under overload work queues for a blocking thread; what waited
            // out the store timeout there is refused (503, retry) instead of
            // run for a client that has likely given up.
            let left = pool
                .timeout
                .checked_sub(queued.elapsed())
                .filter(|left| !left.is_zero())
                .ok_or_else(|| DbError::Unavailable("timed out waiting for a connection".into()))?;
            let mut conn = pool
                .pool
                .get_timeout(left)
                .map_err(|error| DbError::Unavailable(error.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|_| E::from(DbError::Unavailable("blocking pool shut down".into())))?
    }

    /// Pool gauges for `/metrics`.
    pub fn state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }
}

/// One connection outside the pool, for the CLI: a short-lived process
/// should not leave pool threads connecting while it exits.
pub fn establish(settings: &Settings) -> DbResult<AnyConnection> {
    let mut conn = match &settings.database_url {
        DatabaseUrl::Postgres(url) => {
            diesel::PgConnection::establish(url.expose()).map(AnyConnection::Postgresql)
        }
        DatabaseUrl::Sqlite(path) => {
            diesel::SqliteConnection::establish(&path.to_string_lossy()).map(AnyConnection::Sqlite)
        }
    }
    .map_err(|e| DbError::Unavailable(e.to_string()))?;
    ConnectionSetup {
        busy_timeout: settings.db_timeout(),
    }
    .on_acquire(&mut conn)
    .map_err(|e| DbError::Unavailable(e.to_string()))?;
    Ok(conn)
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

/// Runs `f` in a transaction in which Postgres plans each statement for its
/// values. diesel keeps statements prepared, and after five runs Postgres
/// may switch to a generic plan, which cannot see a regex filter's pattern
/// and so cannot use the trigram indexes. Hot lookups keep their cached
/// plans; only the queries that need it pay for planning.
pub fn with_custom_plans<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|conn| {
        if let AnyConnection::Postgresql(pg) = conn {
            pg.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")?;
        }
        f(conn)
    })
}

/// `SELECT 1`, for readiness.
pub fn ping(conn: &mut AnyConnection) -> DbResult<()> {
    conn.batch_execute("SELECT 1").db()
}
