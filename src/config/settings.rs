//! The `Settings` struct: every setting is a clap argument with an `env`
//! name and a default, so `sessiond serve --help` documents them all in one
//! place. The other commands read only a few of them ([`StoreArgs`], and
//! [`PurgeArgs`] for `sessions purge`): their `--help` lists those, and
//! they run with the defaults for the rest.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{CorsOrigin, DatabaseUrl, SecretString, NO_POSTGRES};

#[derive(Clone, Debug, Args)]
pub struct Settings {
    /// Store to use: `postgres://user@host/db` or `sqlite://PATH`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://sessiond.db",
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Address the HTTP server listens on (port 0 picks a free port).
    #[arg(long, env = "SESSIOND_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// A second address, for operators only, that serves `/metrics`,
    /// `/healthz` and `/readyz`; when set, `/metrics` leaves the public
    /// address [default: unset, `/metrics` is on the public address].
    #[arg(long, env = "SESSIOND_METRICS_BIND")]
    pub metrics_bind: Option<String>,

    /// HTTP worker threads; 0 means one per core.
    #[arg(long, env = "SESSIOND_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Maximum connections in the database pool; also caps each worker's
    /// blocking threads (at least 4), which could only wait for more.
    #[arg(long, env = "SESSIOND_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,

    /// Seconds a request may wait for the store (queueing for a blocking
    /// thread included) before answering 503.
    #[arg(long, env = "SESSIOND_DB_TIMEOUT_SECONDS", default_value_t = 5)]
    pub db_timeout_seconds: u64,

    /// Milliseconds any one statement may run on Postgres before the
    /// database cancels it (the request gets 503). Kept under the store
    /// timeout so no statement outlives the request that sent it.
    #[arg(long, env = "SESSIOND_STATEMENT_TIMEOUT_MS", default_value_t = 3_000)]
    pub statement_timeout_ms: u64,

    /// Milliseconds of database work one list filter may cost (each
    /// statement on Postgres; the whole list on SQLite). A filter that needs
    /// more gets 400 `error-invalid-filter` saying it is too expensive.
    #[arg(long, env = "SESSIOND_FILTER_TIMEOUT_MS", default_value_t = 2_000)]
    pub filter_timeout_ms: u64,

    /// What sits between sessiond and Postgres: `none` (a direct
    /// connection, or a pooler in session mode), or `transaction` (a pooler
    /// such as PgBouncer with `pool_mode = transaction`, which hands the
    /// server connection to another client after every transaction). With
    /// `transaction`, nothing is left on a server connection between
    /// transactions: statements are not kept prepared, the statement
    /// timeout is set per transaction (`SET LOCAL`), and the migration lock
    /// is transaction-scoped.
    #[arg(
        long,
        env = "SESSIOND_DB_POOLER",
        value_enum,
        default_value_t = DbPooler::None
    )]
    pub db_pooler: DbPooler,

    /// Seconds to wait for a new Postgres connection (libpq `connect_timeout`,
    /// unless DATABASE_URL sets its own).
    #[arg(long, env = "SESSIOND_DB_CONNECT_TIMEOUT_SECONDS", default_value_t = 2)]
    pub db_connect_timeout_seconds: u64,

    /// Seconds `serve` keeps retrying a store it cannot reach at start-up
    /// before it gives up; 0 retries for as long as it takes.
    #[arg(long, env = "SESSIOND_DB_STARTUP_TIMEOUT_SECONDS", default_value_t = 0)]
    pub db_startup_timeout_seconds: u64,

    /// Expensive list queries (filtered lists, everyone's sessions, the
    /// admin lists) that may run at once on this instance; 0 means a quarter
    /// of the pool. The rest of the pool stays free for logins and
    /// authentication.
    #[arg(long, env = "SESSIOND_EXPENSIVE_QUERIES", default_value_t = 0)]
    pub expensive_queries: usize,

    /// Expensive list queries one user may have running at once; more get 429.
    #[arg(long, env = "SESSIOND_EXPENSIVE_QUERIES_PER_USER", default_value_t = 2)]
    pub expensive_queries_per_user: usize,

    /// Password hashes (argon2id, 19 MiB each) computed at once; 0 means one
    /// per core. Logins beyond it wait their turn, within the store timeout.
    #[arg(long, env = "SESSIOND_HASH_CONCURRENCY", default_value_t = 0)]
    pub hash_concurrency: usize,

    /// Logins that may wait for a hashing slot; more get 503 at once.
    #[arg(long, env = "SESSIOND_HASH_QUEUE", default_value_t = 256)]
    pub hash_queue: usize,

    /// Seconds a client has to send a request body once its headers are in;
    /// a body that does not arrive in time gets 408 and the connection is closed.
    #[arg(long, env = "SESSIOND_BODY_TIMEOUT_SECONDS", default_value_t = 10)]
    pub body_timeout_seconds: u64,

    /// A session ends after this many seconds without a request.
    #[arg(long, env = "SESSIOND_IDLE_TIMEOUT_SECONDS", default_value_t = 86_400)]
    pub idle_timeout_seconds: i64,

    /// A session ends this many seconds after login, however active it is.
    #[arg(
        long,
        env = "SESSIOND_MAX_LIFETIME_SECONDS",
        default_value_t = 2_592_000
    )]
    pub max_lifetime_seconds: i64,

    /// `last_activity_at` is written at most once per this many seconds per session.
    #[arg(long, env = "SESSIOND_ACTIVITY_INTERVAL_SECONDS", default_value_t = 60)]
    pub activity_interval_seconds: i64,

    /// After a good 2FA code, the session stays 2FA-authorized this long.
    #[arg(long, env = "SESSIOND_2FA_WINDOW_SECONDS", default_value_t = 1_800)]
    pub two_factor_window_seconds: i64,

    /// Wrong 2FA codes allowed per user within the 2FA failure window.
    #[arg(long, env = "SESSIOND_2FA_MAX_FAILURES", default_value_t = 5)]
    pub two_factor_max_failures: i64,

    /// The window, in seconds, over which wrong 2FA codes are counted.
    #[arg(
        long,
        env = "SESSIOND_2FA_FAILURE_WINDOW_SECONDS",
        default_value_t = 600
    )]
    pub two_factor_failure_window_seconds: i64,

    /// Failed logins allowed per username within the login failure window.
    #[arg(
        long,
        env = "SESSIOND_LOGIN_MAX_FAILURES_PER_USER",
        default_value_t = 5
    )]
    pub login_max_failures_per_user: i64,

    /// Failed logins allowed per client IP within the login failure window.
    #[arg(long, env = "SESSIOND_LOGIN_MAX_FAILURES_PER_IP", default_value_t = 20)]
    pub login_max_failures_per_ip: i64,

    /// The window, in seconds, over which failed logins are counted.
    #[arg(
        long,
        env = "SESSIOND_LOGIN_FAILURE_WINDOW_SECONDS",
        default_value_t = 900
    )]
    pub login_failure_window_seconds: i64,

    /// Comma-separated proxy IPs whose `X-Forwarded-For` is believed.
    #[arg(long, env = "SESSIOND_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// Comma-separated origins (`https://admin.example.com`, exact: scheme,
    /// host and port) whose pages may call the API from a browser. Empty:
    /// no cross-origin access. There is no wildcard.
    #[arg(long, env = "SESSIOND_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<CorsOrigin>,

    /// Key that encrypts TOTP secrets at rest: 32 bytes, base64. Overrides the key file.
    #[arg(long, env = "SESSIOND_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<SecretString>,

    /// Where the generated key is kept when SESSIOND_SECRET_KEY is unset
    /// [default: beside the SQLite file as `<file>.key`, or `./sessiond.key` on Postgres].
    #[arg(long, env = "SESSIOND_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// Seconds between sweeps that end expired sessions and purge old ones.
    #[arg(long, env = "SESSIOND_SWEEP_INTERVAL_SECONDS", default_value_t = 300)]
    pub sweep_interval_seconds: u64,

    /// Ended sessions are deleted this many seconds after they end.
    #[arg(long, env = "SESSIOND_RETENTION_SECONDS", default_value_t = 2_592_000)]
    pub retention_seconds: i64,

    /// Events (the audit trail) are deleted this many seconds after they
    /// happened.
    #[arg(
        long,
        env = "SESSIOND_AUDIT_RETENTION_SECONDS",
        default_value_t = 7_776_000
    )]
    pub audit_retention_seconds: i64,

    /// The most active sessions one user may have; 0 means no limit.
    #[arg(long, env = "SESSIOND_MAX_SESSIONS_PER_USER", default_value_t = 0)]
    pub max_sessions_per_user: i64,

    /// The limit for administrators; 0 means no limit [default: as
    /// SESSIOND_MAX_SESSIONS_PER_USER].
    #[arg(long, env = "SESSIOND_MAX_SESSIONS_PER_ADMIN")]
    pub max_sessions_per_admin: Option<i64>,

    /// What a login past the limit does: `evict-oldest` ends the user's
    /// least recently active session, `refuse` refuses the login.
    #[arg(
        long,
        env = "SESSIOND_SESSION_LIMIT_POLICY",
        value_enum,
        default_value_t = LimitPolicy::EvictOldest
    )]
    pub session_limit_policy: LimitPolicy,

    /// A login from a device (browser, OS and network) the user has not
    /// logged in from within this many days is marked `newDevice`; 0 turns
    /// the detection off.
    #[arg(long, env = "SESSIOND_NEW_DEVICE_DAYS", default_value_t = 30)]
    pub new_device_days: i64,

    /// Live event streams (`sessions/events` and `events.me`) this instance
    /// serves at once; more get 503. Each holds a connection open and at
    /// most one batch of events in memory.
    #[arg(long, env = "SESSIOND_EVENT_STREAMS", default_value_t = 128)]
    pub event_streams: usize,

    /// Live event streams one user may hold open on this instance; more
    /// get 429.
    #[arg(long, env = "SESSIOND_EVENT_STREAMS_PER_USER", default_value_t = 8)]
    pub event_streams_per_user: usize,

    /// Webhook endpoints, separated by `;`: each a URL, optionally followed
    /// by the event types it wants (space-separated; `two_factor.*` matches
    /// a family) [default: none].
    #[arg(long, env = "SESSIOND_WEBHOOK_URLS", default_value = "")]
    pub webhook_urls: String,

    /// The key webhook deliveries are signed with, as `whsec_<base64>`
    /// (Standard Webhooks); required when SESSIOND_WEBHOOK_URLS is set.
    #[arg(long, env = "SESSIOND_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<SecretString>,

    /// Largest accepted request body in bytes; larger ones get 413.
    #[arg(long, env = "SESSIOND_MAX_BODY_BYTES", default_value_t = 65_536)]
    pub max_body_bytes: usize,

    /// This instance's id, recorded on the sessions it creates [default: random].
    #[arg(long, env = "SESSIOND_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Log format.
    #[arg(long, env = "SESSIOND_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, in tracing's `EnvFilter` syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
}

impl Settings {
    /// The defaults, ignoring the environment: the base for tests and tools.
    pub fn defaults() -> Self {
        use clap::{CommandFactory, FromArgMatches, Parser};

        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        // The same declarations as the command line, with the environment cut off.
        let command = Only::command().mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command
            .try_get_matches_from(["sessiond"])
            .expect("every setting has a default");
        Only::from_arg_matches(&matches)
            .expect("defaults parse")
            .settings
    }

    /// Every numeric setting with the range it must be in: (variable,
    /// value, lowest, highest). Outside it the service would not work as
    /// asked (0 failures allowed refuses every login; a body limit of 0
    /// refuses every body), so `validate` refuses to start.
    pub fn ranges(&self) -> [(&'static str, i128, i128, i128); 30] {
        const DAY: i128 = 86_400;
        const TEN_YEARS: i128 = 3_650 * DAY;
        [
            ("SESSIOND_WORKERS", self.workers as i128, 0, 1_024),
            ("SESSIOND_DB_POOL_SIZE", self.db_pool_size.into(), 1, 1_000),
            (
                "SESSIOND_DB_TIMEOUT_SECONDS",
                self.db_timeout_seconds.into(),
                1,
                3_600,
            ),
            (
                "SESSIOND_STATEMENT_TIMEOUT_MS",
                self.statement_timeout_ms.into(),
                1,
                3_600_000,
            ),
            (
                "SESSIOND_FILTER_TIMEOUT_MS",
                self.filter_timeout_ms.into(),
                1,
                3_600_000,
            ),
            (
                "SESSIOND_DB_CONNECT_TIMEOUT_SECONDS",
                self.db_connect_timeout_seconds.into(),
                1,
                300,
            ),
            (
                "SESSIOND_DB_STARTUP_TIMEOUT_SECONDS",
                self.db_startup_timeout_seconds.into(),
                0,
                DAY,
            ),
            (
                "SESSIOND_EXPENSIVE_QUERIES",
                self.expensive_queries as i128,
                0,
                1_000,
            ),
            (
                "SESSIOND_EXPENSIVE_QUERIES_PER_USER",
                self.expensive_queries_per_user as i128,
                1,
                1_000,
            ),
            (
                "SESSIOND_HASH_CONCURRENCY",
                self.hash_concurrency as i128,
                0,
                1_024,
            ),
            ("SESSIOND_HASH_QUEUE", self.hash_queue as i128, 0, 1_000_000),
            (
                "SESSIOND_BODY_TIMEOUT_SECONDS",
                self.body_timeout_seconds.into(),
                1,
                3_600,
            ),
            (
                "SESSIOND_IDLE_TIMEOUT_SECONDS",
                self.idle_timeout_seconds.into(),
                1,
                TEN_YEARS,
            ),
            (
                "SESSIOND_MAX_LIFETIME_SECONDS",
                self.max_lifetime_seconds.into(),
                1,
                TEN_YEARS,
            ),
            (
                "SESSIOND_ACTIVITY_INTERVAL_SECONDS",
                self.activity_interval_seconds.into(),
                0,
                DAY,
            ),
            (
                "SESSIOND_2FA_WINDOW_SECONDS",
                self.two_factor_window_seconds.into(),
                0,
                DAY,
            ),
            (
                "SESSIOND_2FA_MAX_FAILURES",
                self.two_factor_max_failures.into(),
                1,
                1_000_000,
            ),
            (
                "SESSIOND_2FA_FAILURE_WINDOW_SECONDS",
                self.two_factor_failure_window_seconds.into(),
                1,
                DAY,
            ),
            (
                "SESSIOND_LOGIN_MAX_FAILURES_PER_USER",
                self.login_max_failures_per_user.into(),
                1,
                1_000_000,
            ),
            (
                "SESSIOND_LOGIN_MAX_FAILURES_PER_IP",
                self.login_max_failures_per_ip.into(),
                1,
                1_000_000,
            ),
            (
                "SESSIOND_LOGIN_FAILURE_WINDOW_SECONDS",
                self.login_failure_window_seconds.into(),
                1,
                DAY,
            ),
            (
                "SESSIOND_SWEEP_INTERVAL_SECONDS",
                self.sweep_interval_seconds.into(),
                1,
                DAY,
            ),
            (
                "SESSIOND_RETENTION_SECONDS",
                self.retention_seconds.into(),
                0,
                TEN_YEARS,
            ),
            (
                "SESSIOND_MAX_BODY_BYTES",
                self.max_body_bytes as i128,
                1_024,
                64 * 1_048_576,
            ),
            (
                "SESSIOND_AUDIT_RETENTION_SECONDS",
                self.audit_retention_seconds.into(),
                DAY,
                TEN_YEARS,
            ),
            (
                "SESSIOND_MAX_SESSIONS_PER_USER",
                self.max_sessions_per_user.into(),
                0,
                1_000_000,
            ),
            (
                "SESSIOND_MAX_SESSIONS_PER_ADMIN",
                self.max_sessions_per_admin
                    .unwrap_or(self.max_sessions_per_user)
                    .into(),
                0,
                1_000_000,
            ),
            (
                "SESSIOND_NEW_DEVICE_DAYS",
                self.new_device_days.into(),
                0,
                3_650,
            ),
            (
                "SESSIOND_EVENT_STREAMS",
                self.event_streams as i128,
                1,
                10_000,
            ),
            (
                "SESSIOND_EVENT_STREAMS_PER_USER",
                self.event_streams_per_user as i128,
                1,
                1_000,
            ),
        ]
    }

    /// What the parser cannot check: each numeric setting's range, and
    /// combinations that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value, lowest, highest) in self.ranges() {
            if value < lowest || value > highest {
                return Err(format!(
                    "{name}={value} is out of range: it must be from {lowest} to {highest}"
                ));
            }
        }

        if !cfg!(feature = "postgres") && matches!(self.database_url, DatabaseUrl::Postgres(_)) {
            return Err(format!(
                "DATABASE_URL is a postgres:// URL, but {NO_POSTGRES}"
            ));
        }
        if self.db_pooler == DbPooler::Transaction
            && matches!(self.database_url, DatabaseUrl::Sqlite(_))
        {
            return Err(
                "SESSIOND_DB_POOLER=transaction is for a Postgres store reached through a pooler; \
                 DATABASE_URL names a SQLite file (unset SESSIOND_DB_POOLER or set it to `none`)"
                    .into(),
            );
        }
        crate::webhooks::validate(self)?;
        Ok(())
    }

    pub fn db_timeout(&self) -> Duration {
        Duration::from_secs(self.db_timeout_seconds.max(1))
    }

    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms.max(1))
    }

    pub fn filter_timeout(&self) -> Duration {
        Duration::from_millis(self.filter_timeout_ms.max(1))
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_seconds.max(1))
    }

    /// Concurrent expensive list queries: the setting, or a quarter of the pool.
    pub fn expensive_query_slots(&self) -> usize {
        match self.expensive_queries {
            0 => (self.db_pool_size as usize / 4).max(1),
            n => n,
        }
    }

    /// Concurrent password hashes: the setting, or one per core.
    pub fn hash_slots(&self) -> usize {
        match self.hash_concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }

    /// The file that holds the generated TOTP encryption key.
    pub fn key_file(&self) -> PathBuf {
        if let Some(path) = &self.secret_key_file {
            return path.clone();
        }
        match &self.database_url {
            DatabaseUrl::Sqlite(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(".key");
                PathBuf::from(name)
            }
            DatabaseUrl::Postgres(_) => PathBuf::from("sessiond.key"),
        }
    }
}

/// The settings every command other than `serve` reads: how to reach the
/// store (see `db::establish`) and how to log. Each is declared as on
/// [`Settings`] (same flag, variable and default; a test keeps them so),
/// with help that says what it does for these commands.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Store and logging")]
pub struct StoreArgs {
    /// Store to use: `postgres://user@host/db` or `sqlite://PATH`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://sessiond.db",
        hide_env_values = true,
        global = true
    )]
    pub database_url: DatabaseUrl,

    /// Seconds to wait for another process's lock on a SQLite store.
    #[arg(
        long,
        env = "SESSIOND_DB_TIMEOUT_SECONDS",
        default_value_t = 5,
        global = true
    )]
    pub db_timeout_seconds: u64,

    /// What sits between sessiond and Postgres: `none` (a direct
    /// connection, or a pooler in session mode), or `transaction` (a pooler
    /// such as PgBouncer with `pool_mode = transaction`). With
    /// `transaction`, statements are not kept prepared and the migration
    /// lock is transaction-scoped.
    #[arg(
        long,
        env = "SESSIOND_DB_POOLER",
        value_enum,
        default_value_t = DbPooler::None,
        global = true
    )]
    pub db_pooler: DbPooler,

    /// Seconds to wait for a new Postgres connection (libpq `connect_timeout`,
    /// unless DATABASE_URL sets its own).
    #[arg(
        long,
        env = "SESSIOND_DB_CONNECT_TIMEOUT_SECONDS",
        default_value_t = 2,
        global = true
    )]
    pub db_connect_timeout_seconds: u64,

    /// Log format.
    #[arg(long, env = "SESSIOND_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Log filter, in tracing's `EnvFilter` syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log_filter: String,
}

impl StoreArgs {
    /// The settings a command other than `serve` runs with: these, and the
    /// defaults for the rest (whatever the environment says of them).
    pub fn settings(&self) -> Settings {
        Settings {
            database_url: self.database_url.clone(),
            db_timeout_seconds: self.db_timeout_seconds,
            db_pooler: self.db_pooler,
            db_connect_timeout_seconds: self.db_connect_timeout_seconds,
            log_format: self.log_format,
            log_filter: self.log_filter.clone(),
            ..Settings::defaults()
        }
    }
}

/// The settings `sessions purge` reads besides the store's: which ended
/// sessions and failure records are old enough to delete. Declared as on
/// [`Settings`], like [`StoreArgs`].
#[derive(Clone, Debug, Args)]
pub struct PurgeArgs {
    /// Ended sessions are deleted this many seconds after they end.
    #[arg(long, env = "SESSIOND_RETENTION_SECONDS", default_value_t = 2_592_000)]
    pub retention_seconds: i64,

    /// Events (the audit trail) are deleted this many seconds after they
    /// happened.
    #[arg(
        long,
        env = "SESSIOND_AUDIT_RETENTION_SECONDS",
        default_value_t = 7_776_000
    )]
    pub audit_retention_seconds: i64,

    /// The window, in seconds, over which failed logins are counted; older
    /// failures are deleted (after the 2FA window too, if that is longer).
    #[arg(
        long,
        env = "SESSIOND_LOGIN_FAILURE_WINDOW_SECONDS",
        default_value_t = 900
    )]
    pub login_failure_window_seconds: i64,

    /// The window, in seconds, over which wrong 2FA codes are counted; older
    /// failures are deleted (after the login window too, if that is longer).
    #[arg(
        long,
        env = "SESSIOND_2FA_FAILURE_WINDOW_SECONDS",
        default_value_t = 600
    )]
    pub two_factor_failure_window_seconds: i64,
}

impl PurgeArgs {
    /// Sets these on `settings`.
    pub fn apply(&self, settings: &mut Settings) {
        settings.retention_seconds = self.retention_seconds;
        settings.audit_retention_seconds = self.audit_retention_seconds;
        settings.login_failure_window_seconds = self.login_failure_window_seconds;
        settings.two_factor_failure_window_seconds = self.two_factor_failure_window_seconds;
    }
}

/// What a login past the per-user session limit does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LimitPolicy {
    /// The new login ends the user's least recently active session.
    EvictOldest,
    /// The new login is refused.
    Refuse,
}

impl Settings {
    /// The most active sessions `user` may have, or `None` for no limit.
    pub fn session_limit(&self, admin: bool) -> Option<i64> {
        let limit = match (admin, self.max_sessions_per_admin) {
            (true, Some(limit)) => limit,
            _ => self.max_sessions_per_user,
        };
        (limit > 0).then_some(limit)
    }
}

/// What sits between sessiond and Postgres (`SESSIOND_DB_POOLER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DbPooler {
    /// A direct connection (or a pooler in session mode): each connection
    /// is one server session for as long as it is open.
    None,
    /// A pooler in transaction mode: consecutive transactions of one
    /// connection may run on different server sessions.
    Transaction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        use clap::{CommandFactory, FromArgMatches, Parser};

        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        let command = Only::command().mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command
            .try_get_matches_from(std::iter::once("sessiond").chain(args.iter().copied()))?;
        Ok(Only::from_arg_matches(&matches)?.settings)
    }

    #[test]
    fn the_pooler_is_none_unless_set_and_takes_only_its_two_values() {
        assert_eq!(Settings::defaults().db_pooler, DbPooler::None);
        let settings = parse(&["--db-pooler", "transaction"]).unwrap();
        assert_eq!(settings.db_pooler, DbPooler::Transaction);

        let refused = parse(&["--db-pooler", "pgbouncer"])
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("none") && refused.contains("transaction"),
            "names the values it takes: {refused}"
        );
    }

    #[test]
    fn a_transaction_pooler_needs_a_postgres_store() {
        let mut settings = Settings::defaults();
        settings.db_pooler = DbPooler::Transaction;
        let refused = settings.validate().unwrap_err();
        assert!(refused.contains("SQLite"), "{refused}");

        settings.database_url = "postgres://sessiond@127.0.0.1:6432/sessiond"
            .parse()
            .unwrap();
        if cfg!(feature = "postgres") {
            assert_eq!(settings.validate(), Ok(()));
        }
        assert_eq!(Settings::defaults().validate(), Ok(()));
    }

    #[test]
    fn numbers_out_of_range_are_refused_naming_the_variable() {
        type Breaks = fn(&mut Settings);
        let cases: [(&str, Breaks); 5] = [
            ("SESSIOND_LOGIN_MAX_FAILURES_PER_USER=0 ", |s| {
                s.login_max_failures_per_user = 0
            }),
            ("SESSIOND_MAX_BODY_BYTES=0 ", |s| s.max_body_bytes = 0),
            ("SESSIOND_DB_POOL_SIZE=0 ", |s| s.db_pool_size = 0),
            ("SESSIOND_IDLE_TIMEOUT_SECONDS=-5 ", |s| {
                s.idle_timeout_seconds = -5
            }),
            ("SESSIOND_2FA_WINDOW_SECONDS=-1 ", |s| {
                s.two_factor_window_seconds = -1
            }),
        ];
        for (said, break_it) in cases {
            let mut settings = Settings::defaults();
            break_it(&mut settings);
            let refused = settings.validate().unwrap_err();
            assert!(refused.starts_with(said), "{refused}");
            assert!(refused.contains("must be from"), "{refused}");
        }
        // Every default is within its range, and the ends of a range are in it.
        let defaults = Settings::defaults();
        for (name, value, lowest, highest) in defaults.ranges() {
            assert!((lowest..=highest).contains(&value), "{name}={value}");
        }
        let mut settings = Settings::defaults();
        settings.max_body_bytes = 1_024;
        settings.two_factor_window_seconds = 0;
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn a_postgres_store_needs_the_postgres_feature() {
        let mut settings = Settings::defaults();
        settings.database_url = "postgres://sessiond@db/sessiond".parse().unwrap();
        let validated = settings.validate();
        if cfg!(feature = "postgres") {
            assert_eq!(validated, Ok(()));
        } else {
            let refused = validated.unwrap_err();
            assert!(
                refused.contains("no Postgres support") && refused.contains("default features"),
                "{refused}"
            );
        }
    }

    /// The arguments of the other commands are the same settings as
    /// `serve`'s: same flag, variable, default, values and secrecy.
    #[test]
    fn the_other_commands_declare_their_settings_as_serve_does() {
        use clap::Command;

        let serve = Settings::augment_args(Command::new("serve"));
        let declared = |arg: &clap::Arg| {
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|value| value.get_name().to_owned())
                .collect();
            (
                arg.get_long().map(str::to_owned),
                arg.get_env().map(|env| env.to_owned()),
                arg.get_default_values().to_vec(),
                values,
                arg.is_hide_env_values_set(),
            )
        };
        for command in [
            StoreArgs::augment_args(Command::new("store")),
            PurgeArgs::augment_args(Command::new("purge")),
        ] {
            for arg in command.get_arguments() {
                let same = serve
                    .get_arguments()
                    .find(|other| other.get_id() == arg.get_id())
                    .unwrap_or_else(|| panic!("{} is not a setting", arg.get_id()));
                assert_eq!(declared(arg), declared(same), "{}", arg.get_id());
            }
        }
    }

    #[test]
    fn the_other_commands_run_with_the_defaults_for_what_they_do_not_read() {
        use clap::{CommandFactory, FromArgMatches, Parser};

        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            store: StoreArgs,
            #[command(flatten)]
            purge: PurgeArgs,
        }
        let command = Only::command().mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command
            .try_get_matches_from([
                "sessiond",
                "--database-url",
                "sqlite:///tmp/other.db",
                "--db-timeout-seconds",
                "9",
                "--retention-seconds",
                "60",
            ])
            .unwrap();
        let only = Only::from_arg_matches(&matches).unwrap();
        let mut settings = only.store.settings();
        only.purge.apply(&mut settings);
        let defaults = Settings::defaults();
        assert_eq!(settings.database_url.to_string(), "sqlite:///tmp/other.db");
        assert_eq!(settings.db_timeout_seconds, 9);
        assert_eq!(settings.retention_seconds, 60);
        assert_eq!(
            settings.login_failure_window_seconds,
            defaults.login_failure_window_seconds
        );
        assert_eq!(settings.bind, defaults.bind);
        assert_eq!(settings.hash_concurrency, defaults.hash_concurrency);
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn key_file_sits_beside_the_sqlite_file() {
        let mut settings = Settings::defaults();
        settings.database_url = "sqlite:///var/lib/sessiond/s.db".parse().unwrap();
        assert_eq!(
            settings.key_file(),
            PathBuf::from("/var/lib/sessiond/s.db.key")
        );
    }
}
