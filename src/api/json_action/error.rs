//! Everything that can go wrong on `POST /api`, each with its code and message.

use super::*;

/// FairCom's text for a token that matches no active session.
pub const NO_SESSION_MESSAGE: &str = "'authToken' does not match any existing session. Use a valid 'authToken' or use 'createSession' to create a valid 'authToken'.";

/// Everything that can go wrong, with this surface's codes. The one place
/// where the shared `Error` becomes a code is `From<Error>` below.
#[derive(Debug)]
pub(super) enum ActionError {
    /// 12031: the token matches no active session (FairCom's code and text).
    NoSession,
    /// 34001
    InvalidJson(String),
    /// 34002: the kind of JSON value that came instead of an object.
    NotAnObject(&'static str),
    /// 34003
    MissingAction,
    /// 34004
    UnknownAction(String),
    /// 34005: a property of the wrong type or value, missing or unknown.
    InvalidProperty(String),
    /// 34006
    BodyTooLarge { limit: usize },
    /// 34007
    BodyTimeout,
    /// 34008
    NotJson,
    /// 34009: sent with another method than POST (HTTP 405).
    MethodNotAllowed(String),
    /// 34010: the same answer whether the user exists or not.
    BadCredentials,
    /// 34011: failed logins or two-factor codes over the limit.
    Throttled { retry_after_seconds: i64 },
    /// 34012
    TwoFactorRequired,
    /// 34013
    TwoFactorInvalid,
    /// 34014: the user's active sessions are at the limit (policy `refuse`).
    SessionLimit(i64),
    /// 34020
    NotPermitted(&'static str),
    /// 34090: retryable.
    Unavailable,
    /// 34091: a concurrency limit is full; retryable.
    Busy(String),
    /// 34099: the cause is logged, never sent.
    Internal,
}

pub(super) const ACTIONS: &str =
    "createSession, listSessions, describeSessions, alterSession, deleteSession or pingSession";

impl ActionError {
    pub(super) fn code(&self) -> i64 {
        match self {
            ActionError::NoSession => 12031,
            ActionError::InvalidJson(_) => 34001,
            ActionError::NotAnObject(_) => 34002,
            ActionError::MissingAction => 34003,
            ActionError::UnknownAction(_) => 34004,
            ActionError::InvalidProperty(_) => 34005,
            ActionError::BodyTooLarge { .. } => 34006,
            ActionError::BodyTimeout => 34007,
            ActionError::NotJson => 34008,
            ActionError::MethodNotAllowed(_) => 34009,
            ActionError::BadCredentials => 34010,
            ActionError::Throttled { .. } => 34011,
            ActionError::TwoFactorRequired => 34012,
            ActionError::TwoFactorInvalid => 34013,
            ActionError::SessionLimit(_) => 34014,
            ActionError::NotPermitted(_) => 34020,
            ActionError::Unavailable => 34090,
            ActionError::Busy(_) => 34091,
            ActionError::Internal => 34099,
        }
    }

    pub(super) fn message(&self) -> String {
        match self {
            ActionError::NoSession => NO_SESSION_MESSAGE.to_owned(),
            ActionError::InvalidJson(reason) => {
                format!("The request body is not valid JSON: {reason}.")
            }
            ActionError::NotAnObject(kind) => {
                format!("The request body must be a JSON object; got {kind}.")
            }
            ActionError::MissingAction => {
                format!("The request has no 'action'; set it to {ACTIONS}.")
            }
            ActionError::UnknownAction(action) => format!(
                "'{}' is not an action of this service; use {ACTIONS}.",
                shortened(action)
            ),
            ActionError::InvalidProperty(message) => message.clone(),
            ActionError::BodyTooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes.")
            }
            ActionError::NotJson => {
                "Content-Type must be application/json: send the envelope as a JSON object.".to_owned()
            }
            ActionError::MethodNotAllowed(message) => message.clone(),
            ActionError::BodyTimeout => {
                "The request body did not arrive in time; send it in full right after the headers.".to_owned()
            }
            ActionError::BadCredentials => "Invalid username or password.".to_owned(),
            ActionError::Throttled {
                retry_after_seconds,
            } => format!(
                "Too many failed attempts. Wait {retry_after_seconds} seconds before trying again."
            ),
            ActionError::TwoFactorRequired => "This account uses two-factor authentication: send a TOTP code or a backup code in 'twoFactorCode'.".to_owned(),
            ActionError::TwoFactorInvalid => {
                "The two-factor code is wrong or was already used.".to_owned()
            }
            ActionError::SessionLimit(limit) => format!(
                "This account has {limit} active sessions, the most allowed: end one (deleteSession) before creating another."
            ),
            ActionError::NotPermitted(what) => format!("Not permitted: {what}."),
            ActionError::Unavailable => {
                "The session store is temporarily unavailable; retry the request.".to_owned()
            }
            ActionError::Busy(reason) => format!("The service is busy: {reason}."),
            ActionError::Internal => {
                "Internal error; the cause is in the service's log.".to_owned()
            }
        }
    }
}

impl From<Error> for ActionError {
    fn from(error: Error) -> Self {
        match error {
            Error::Unauthorized | Error::NotFound(_) => ActionError::NoSession,
            Error::LoginFailed => ActionError::BadCredentials,
            Error::Throttled {
                retry_after_seconds,
            }
            | Error::TwoFactor(TwoFactorError::MaxAttempts {
                retry_after_seconds,
            }) => ActionError::Throttled {
                retry_after_seconds,
            },
            Error::TwoFactor(TwoFactorError::Required { .. }) => ActionError::TwoFactorRequired,
            Error::TwoFactor(TwoFactorError::Invalid) => ActionError::TwoFactorInvalid,
            Error::Forbidden => ActionError::NotPermitted("the account lacks the permission"),
            Error::SessionLimit { limit } => ActionError::SessionLimit(limit),
            Error::InvalidParams(message) | Error::BadRequest { message, .. } => {
                ActionError::InvalidProperty(message)
            }
            Error::UnknownParam(name) => ActionError::InvalidProperty(format!(
                "'{}' is not a property of this action.",
                shortened(&name)
            )),
            Error::InvalidSortKeys => ActionError::InvalidProperty("Unknown sort keys.".into()),
            Error::PayloadTooLarge { limit } => ActionError::BodyTooLarge { limit },
            Error::RequestTimeout => ActionError::BodyTimeout,
            Error::UnsupportedMediaType => ActionError::NotJson,
            Error::Unavailable(cause) => {
                tracing::debug!(cause = %cause, "store unavailable");
                ActionError::Unavailable
            }
            Error::Busy(reason) | Error::TooManyRequests(reason) => ActionError::Busy(reason),
            Error::Internal(cause) => {
                tracing::error!(cause = %cause, "request failed");
                ActionError::Internal
            }
        }
    }
}

impl From<DbError> for ActionError {
    fn from(error: DbError) -> Self {
        Error::from(error).into()
    }
}

/// A result that would not serialize: a bug, answered as internal.
impl From<serde_json::Error> for ActionError {
    fn from(error: serde_json::Error) -> Self {
        Error::Internal(format!("the result could not be written: {error}")).into()
    }
}

/// `Ok(None)` for a session that is not there, which deleteSession and
/// describeSessions answer with a warning instead of an error.
pub(super) fn unless_missing<T>(result: Result<T, Error>) -> Result<Option<T>, ActionError> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// A client-chosen string cut to a length fit for a message.
pub(super) fn shortened(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// "a string", "an array", … for messages about wrong types.
pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn expected(name: &str, what: &str, got: &Value) -> ActionError {
    let got = match got {
        Value::String(s) => format!("a string of {} bytes", s.len()),
        Value::Array(a) => format!("an array of {} entries", a.len()),
        other => kind_of(other).to_owned(),
    };
    ActionError::InvalidProperty(format!("'{name}' must be {what}; got {got}."))
}
