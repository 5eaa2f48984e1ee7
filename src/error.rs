//! One internal error type, with no HTTP in it. Each surface writes it in
//! its own wire format: `api::rocket_chat::error`, `api::admin::error` and
//! `api::json_action::error`.

use crate::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing, unknown, ended or expired credentials.
    #[error("not logged in")]
    Unauthorized,
    /// Wrong username or password (the same answer for both).
    #[error("login failed")]
    LoginFailed,
    /// Too many failed logins; try again after this many seconds.
    #[error("too many failed attempts")]
    Throttled { retry_after_seconds: i64 },
    #[error("missing permission")]
    Forbidden,
    /// A login past the per-user session limit, with the `refuse` policy.
    #[error("the limit of {limit} active sessions is reached")]
    SessionLimit { limit: i64 },
    /// A request parameter or body field is wrong: says what to fix.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// A query parameter or body field the route does not take.
    #[error("unknown parameter {0}")]
    UnknownParam(String),
    /// A 400 with its own error type, e.g. `error-invalid-sort`.
    #[error("{error_type}: {message}")]
    BadRequest {
        error_type: &'static str,
        message: String,
    },
    /// A sort key the list does not have (Rocket.Chat's bare error string).
    #[error("unknown sort keys")]
    InvalidSortKeys,
    #[error("two-factor: {0:?}")]
    TwoFactor(TwoFactorError),
    #[error("not found: {0:?}")]
    NotFound(Missing),
    #[error("body over {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The store cannot be reached: retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A concurrency limit is full (hashing, expensive queries): retryable.
    #[error("busy: {0}")]
    Busy(String),
    /// The caller holds their share of a limited resource already.
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    /// The request body did not arrive in time.
    #[error("request body timed out")]
    RequestTimeout,
    /// A JSON endpoint was sent something other than `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// A bug or an unexpected store error; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a request named that does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// No session with that id (or not the caller's).
    Session,
    /// No *active* session with that id.
    ActiveSession,
    /// No user with that guid.
    User,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwoFactorError {
    /// No code was sent; `enrolled` is false when the user has no TOTP yet.
    Required { enrolled: bool },
    /// A wrong, malformed or already used code.
    Invalid,
    /// Too many wrong codes; wait this many seconds.
    MaxAttempts { retry_after_seconds: i64 },
}

/// For `conn.transaction`, whose errors start as diesel's.
impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        DbError::from_diesel(error).into()
    }
}

impl From<DbError> for Error {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(cause) => Error::Unavailable(cause),
            DbError::Cancelled(cause) => Error::Unavailable(format!("statement cancelled: {cause}")),
            DbError::FilterTooExpensive { budget_ms } => Error::bad_request(
                "error-invalid-filter",
                format!(
                    "Invalid filter: it is too expensive to run (it needed more than {budget_ms} ms of \
                     database work); make it more specific, for example with a literal part such as a \
                     browser or OS name, or with fewer and smaller repetitions"
                ),
            ),
            DbError::InvalidFilter(reason) => {
                Error::bad_request("error-invalid-filter", format!("Invalid filter: {reason}"))
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl Error {
    pub fn bad_request(error_type: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            error_type,
            message: message.into(),
        }
    }

    /// Logs what the client is not told. Each surface calls this where it
    /// writes the response.
    pub fn log(&self) {
        match self {
            Error::Internal(cause) => tracing::error!(cause = %cause, "request failed"),
            // Outages are logged once by the pool's health tracker; each
            // request's 503 is counted in the metrics, not logged again.
            Error::Unavailable(cause) => tracing::debug!(cause = %cause, "store unavailable"),
            Error::Busy(cause) => tracing::debug!(cause = %cause, "busy"),
            _ => {}
        }
    }

    /// How many seconds a client should wait before retrying, when it should.
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            Error::Throttled {
                retry_after_seconds,
            }
            | Error::TwoFactor(TwoFactorError::MaxAttempts {
                retry_after_seconds,
            }) => Some(*retry_after_seconds),
            Error::Unavailable(_) | Error::Busy(_) | Error::TooManyRequests(_) => Some(1),
            _ => None,
        }
    }
}
