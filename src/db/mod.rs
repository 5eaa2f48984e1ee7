//! The store: one connection enum over Postgres and SQLite, its pool, and
//! the embedded migrations for each backend.
//!
//! Postgres is the cargo feature `postgres` (on by default). Without it the
//! enum has the SQLite variant only, and every `match` on it loses its
//! Postgres arm: each such arm (or Postgres-only helper) carries the one
//! `#[cfg(feature = "postgres")]`, and the code around it is the same in
//! both builds. Imports and fields only those arms use are then unused:
//! the default build lints them.
#![cfg_attr(not(feature = "postgres"), allow(unused_imports, dead_code))]

mod collate;
mod error;
mod filter_budget;
mod health;
mod manager;
mod pool;
pub mod schema;

pub use collate::collate_c;
pub use error::{DbError, DbResult, IntoDbResult};
pub use filter_budget::with_filter_budget;
pub use manager::{ConnectError, StoreConn};
pub use pool::{DbPool, PooledConn};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::{DbPooler, Settings};
use manager::{ConnectionSetup, Target};

/// One connection type for both stores; every query in `store/` is written
/// once against it.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    #[cfg(feature = "postgres")]
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type Conn = AnyConnection;

impl AnyConnection {
    /// The database's name in OpenTelemetry's `db.system.name`.
    pub fn system_name(&self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            AnyConnection::Postgresql(_) => "postgresql",
            AnyConnection::Sqlite(_) => "sqlite",
        }
    }
}

diesel::define_sql_function! {
    /// `text ~* pattern`: case-insensitive, unanchored regex match. A SQL
    /// function over `~*` on Postgres (see its migration), the `regex`
    /// crate on SQLite (registered on every connection).
    fn regex_imatch(text: diesel::sql_types::Text, pattern: diesel::sql_types::Text) -> diesel::sql_types::Bool;
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection outside the pool, without a statement deadline: for the
/// CLI and for migrations, whose bulk work may rightly take long.
pub fn establish(settings: &Settings) -> DbResult<AnyConnection> {
    ConnectionSetup::unbounded(settings)
        .open(&Target::of(settings))
        .map_err(DbError::Unavailable)
}

/// Brings the schema up to date. On Postgres an advisory lock keeps
/// instances that start together from migrating at once: held by the
/// session while each migration runs in a transaction of its own; behind a
/// transaction-mode pooler, where a session lock would stay on whichever
/// server session took it (and its unlock could reach another), held by one
/// transaction that runs them all (each migration then in a savepoint, so
/// every migration must be able to run inside a transaction).
pub fn run_migrations(conn: &mut AnyConnection, pooler: DbPooler) -> DbResult<()> {
    match (conn, pooler) {
        #[cfg(feature = "postgres")]
        (AnyConnection::Postgresql(pg), pooler) => migrate_postgres(pg, pooler),
        (AnyConnection::Sqlite(sqlite), _) => {
            // WAL is a property of the file: set once here, kept by every connection.
            sqlite.batch_execute("PRAGMA journal_mode = WAL").db()?;
            sqlite
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| DbError::Migration(e.to_string()))
        }
    }
}

/// [`run_migrations`] on Postgres, under the advisory lock.
#[cfg(feature = "postgres")]
fn migrate_postgres(pg: &mut diesel::PgConnection, pooler: DbPooler) -> DbResult<()> {
    const MIGRATION_LOCK: i64 = 0x5e55_10d0;
    match pooler {
        DbPooler::None => {
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
        DbPooler::Transaction => pg.transaction(|pg| {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .execute(pg)
                .db()?;
            pg.run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| DbError::Migration(e.to_string()))
        }),
    }
}

/// How many of this binary's migrations the store has not had yet: 0 when
/// its schema is the one this binary reads.
pub fn pending_migrations(conn: &mut AnyConnection) -> DbResult<usize> {
    let pending = match conn {
        #[cfg(feature = "postgres")]
        AnyConnection::Postgresql(pg) => pg
            .pending_migrations(POSTGRES_MIGRATIONS)
            .map(|migrations| migrations.len()),
        AnyConnection::Sqlite(sqlite) => sqlite
            .pending_migrations(SQLITE_MIGRATIONS)
            .map(|migrations| migrations.len()),
    };
    pending.map_err(|e| DbError::Migration(e.to_string()))
}

/// The tables in the store's schema (Postgres: the current schema), by
/// name; whatever created them. Read before migrating, to see whose store
/// this is.
pub fn table_names(conn: &mut AnyConnection) -> DbResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let tables: Vec<Table> = match conn {
        #[cfg(feature = "postgres")]
        AnyConnection::Postgresql(pg) => diesel::sql_query(
            "SELECT tablename::text AS name FROM pg_catalog.pg_tables \
             WHERE schemaname = current_schema() ORDER BY tablename",
        )
        .load(pg)
        .db()?,
        AnyConnection::Sqlite(sqlite) => diesel::sql_query(
            "SELECT name FROM sqlite_master \
             WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .load(sqlite)
        .db()?,
    };
    Ok(tables.into_iter().map(|t| t.name).collect())
}

/// `SELECT 1`, for readiness.
pub fn ping(conn: &mut AnyConnection) -> DbResult<()> {
    conn.batch_execute("SELECT 1").db()
}

/// A transaction for work that reads, then writes. On SQLite it begins
/// `IMMEDIATE`, taking the write lock first: a deferred transaction that
/// read before another connection committed could not write at all
/// (`SQLITE_BUSY_SNAPSHOT`, reported as "database is locked"), where an
/// immediate one waits its turn within the busy timeout. Inside another
/// transaction, and on Postgres, it is an ordinary (nested) transaction.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match conn {
        AnyConnection::Sqlite(sqlite) => {
            let outermost = AnsiTransactionManager::transaction_manager_status_mut(sqlite)
                .transaction_depth()?
                .is_none();
            if !outermost {
                return conn.transaction(f);
            }
            AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
        }
        #[cfg(feature = "postgres")]
        AnyConnection::Postgresql(_) => return conn.transaction(f),
    }
    match f(conn) {
        Ok(value) => {
            <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            // A failed rollback leaves the connection broken; diesel marks it so.
            let _ = <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn);
            Err(error)
        }
    }
}
