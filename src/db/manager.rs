//! Opening connections: where they go, how each is prepared, and the r2d2
//! manager that opens them for the pool and tells it which ones to drop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2;

use super::health::{self, Health};
use super::{collate, filter_budget, regex_imatch_utils, AnyConnection};
use crate::config::{DatabaseUrl, Settings};

/// How each connection is prepared when it opens.
#[derive(Clone, Debug)]
pub(super) struct ConnectionSetup {
    /// SQLite waits this long for another writer's lock.
    busy_timeout: Duration,
    /// Postgres cancels any statement that runs longer (`None`: no limit,
    /// for migrations and the CLI's bulk work).
    statement_timeout: Option<Duration>,
}

impl ConnectionSetup {
    pub(super) fn for_requests(settings: &Settings) -> Self {
        ConnectionSetup {
            busy_timeout: settings.db_timeout(),
            statement_timeout: Some(settings.statement_timeout()),
        }
    }

    pub(super) fn unbounded(settings: &Settings) -> Self {
        ConnectionSetup {
            busy_timeout: settings.db_timeout(),
            statement_timeout: None,
        }
    }

    /// Opens one connection, with the driver's own error on failure (on one
    /// line), not `MultiConnection`'s generic "invalid connection url".
    pub(super) fn open(&self, target: &Target) -> Result<AnyConnection, String> {
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
