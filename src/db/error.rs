//! What the store can fail with, and how diesel's errors are classified
//! into it: an outage and a cancelled statement are retryable, not bugs.

use super::health;

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
                // Postgres's regex engine reports a cancel or timeout that
                // lands while it works as a bad pattern, "invalid regular
                // expression: operation cancelled" (SQLSTATE 2201B).
                if message.starts_with("canceling statement due to statement timeout") {
                    statement_timed_out::mark();
                }
                if message.starts_with("canceling statement due to")
                    || message.ends_with("operation cancelled")
                    || message.starts_with("deadlock detected")
                    || message.starts_with("could not serialize access")
                {
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

/// A flag on the blocking thread, set where a diesel error is classified
/// and read by the pool after the store call that ran there.
macro_rules! thread_flag {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub(super) mod $name {
            use std::cell::Cell;

            thread_local! {
                static SET: Cell<bool> = const { Cell::new(false) };
            }

            pub fn mark() {
                SET.with(|set| set.set(true));
            }

            /// Whether it was marked since the last call.
            pub fn take() -> bool {
                SET.with(|set| set.replace(false))
            }
        }
    };
}

thread_flag!(
    /// A statement found its connection gone: the pool drops that
    /// connection instead of handing it out again.
    connection_lost
);

thread_flag!(
    /// The database cancelled a statement at its statement timeout, for
    /// `sessiond_db_statement_timeouts_total`.
    statement_timed_out
);

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error};

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DbError {
        DbError::from_diesel(Error::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn deadlocks_and_serialization_failures_are_retryable() {
        for message in [
            "deadlock detected",
            "could not serialize access due to concurrent update",
            "canceling statement due to user request",
            "invalid regular expression: operation cancelled",
        ] {
            let error = database_error(DatabaseErrorKind::Unknown, message);
            assert!(
                matches!(error, DbError::Cancelled(_)),
                "{message}: {error:?}"
            );
        }
        let error = database_error(DatabaseErrorKind::SerializationFailure, "deadlock detected");
        assert!(matches!(error, DbError::Cancelled(_)), "{error:?}");
    }

    #[test]
    fn other_database_errors_stay_query_errors() {
        let error = database_error(DatabaseErrorKind::UniqueViolation, "duplicate key value");
        assert!(matches!(error, DbError::Query(_)), "{error:?}");
    }
}
