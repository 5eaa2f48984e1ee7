//! One internal error type, and the Rocket.Chat wire format it is written in
//! on `/api/v1/*`. Other surfaces map the same type to their own formats.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

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
    #[error("not found: {0}")]
    NotFound(&'static str),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TwoFactorError {
    /// No code was sent; `enrolled` is false when the user has no TOTP yet.
    Required { enrolled: bool },
    /// A wrong, malformed or already used code.
    Invalid,
    /// Too many wrong codes; wait this many seconds.
    MaxAttempts { retry_after_seconds: i64 },
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

    /// Logs what the client is not told. Called where the response is made.
    fn log(&self) {
        match self {
            Error::Internal(cause) => tracing::error!(cause = %cause, "request failed"),
            // Outages are logged once by the pool's health tracker; each
            // request's 503 is counted in the metrics, not logged again.
            Error::Unavailable(cause) => tracing::debug!(cause = %cause, "store unavailable"),
            Error::Busy(cause) => tracing::debug!(cause = %cause, "busy"),
            _ => {}
        }
    }

    fn retry_after(&self) -> Option<i64> {
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

    /// The Rocket.Chat body for this error.
    pub fn rocket_chat_body(&self) -> Value {
        match self {
            Error::Unauthorized => {
                json!({"status": "error", "message": "You must be logged in to do this."})
            }
            Error::LoginFailed => {
                json!({"status": "error", "error": "Unauthorized", "message": "Unauthorized"})
            }
            Error::Throttled {
                retry_after_seconds,
            } => json!({
                "status": "error",
                "error": "error-too-many-requests",
                "message": format!(
                    "Too many failed login attempts. Wait {retry_after_seconds} seconds before trying again."
                ),
            }),
            Error::Forbidden => json!({
                "success": false,
                "error": "User does not have the permissions required for this action [error-unauthorized]",
            }),
            Error::InvalidParams(message) => rc_error("invalid-params", message),
            Error::UnknownParam(name) => json!({
                "success": false,
                "error": "must NOT have additional properties [invalid-params]",
                "errorType": "invalid-params",
                "details": {"additionalProperty": name},
            }),
            Error::BadRequest {
                error_type,
                message,
            } => rc_error(error_type, message),
            Error::InvalidSortKeys => json!({"success": false, "error": "error-invalid-sort-keys"}),
            Error::TwoFactor(two_factor) => two_factor_body(*two_factor),
            Error::NotFound(what) => json!({"success": false, "error": what}),
            Error::PayloadTooLarge { limit } => rc_error(
                "error-payload-too-large",
                &format!("Request body is larger than the limit of {limit} bytes"),
            ),
            Error::Unavailable(_) => rc_error(
                "error-unavailable",
                "The session store is temporarily unavailable; retry shortly",
            ),
            Error::Busy(message) => rc_error("error-busy", message),
            Error::TooManyRequests(message) => rc_error("error-too-many-requests", message),
            Error::UnsupportedMediaType => rc_error(
                "error-unsupported-media-type",
                "Content-Type must be application/json, with a JSON body",
            ),
            Error::RequestTimeout => rc_error(
                "error-request-timeout",
                "The request body did not arrive in time; send it in full right after the headers",
            ),
            Error::Internal(_) => rc_error("error-internal", "Internal server error"),
        }
    }
}

fn rc_error(error_type: &str, message: &str) -> Value {
    json!({
        "success": false,
        "error": format!("{message} [{error_type}]"),
        "errorType": error_type,
    })
}

fn two_factor_body(error: TwoFactorError) -> Value {
    match error {
        TwoFactorError::Required { enrolled: true } => json!({
            "success": false,
            "error": "TOTP Required [totp-required]",
            "errorType": "totp-required",
            "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]},
        }),
        TwoFactorError::Required { enrolled: false } => json!({
            "success": false,
            "error": "TOTP Required [totp-required]",
            "errorType": "totp-required",
            "message": "Two-factor authentication is required but not set up for this user: \
                        enroll with POST /api/v1/users.2fa.enableTOTP, then confirm the code \
                        with POST /api/v1/users.2fa.validateTempToken",
            "details": {"method": "totp", "codeGenerated": false, "availableMethods": []},
        }),
        TwoFactorError::Invalid => json!({
            "success": false,
            "error": "TOTP Invalid [totp-invalid]",
            "errorType": "totp-invalid",
            "details": {"method": "totp", "codeGenerated": false},
        }),
        TwoFactorError::MaxAttempts {
            retry_after_seconds,
        } => json!({
            "success": false,
            "error": "TOTP Maximum Attempts Reached [totp-max-attempts]",
            "errorType": "totp-max-attempts",
            "details": {
                "method": "totp",
                "codeGenerated": false,
                "availableMethods": ["totp"],
                "retryAfterSeconds": retry_after_seconds,
            },
        }),
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::Unauthorized | Error::LoginFailed => StatusCode::UNAUTHORIZED,
            Error::Throttled { .. } | Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Forbidden => StatusCode::FORBIDDEN,
            Error::InvalidParams(_)
            | Error::UnknownParam(_)
            | Error::BadRequest { .. }
            | Error::InvalidSortKeys
            | Error::TwoFactor(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable(_) | Error::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, Error::RequestTimeout) {
            // The rest of the body may still come; the connection cannot be reused.
            response.force_close();
        }
        if let Some(seconds) = self.retry_after() {
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.insert_header((header::RETRY_AFTER, value));
            }
        }
        response.json(self.rocket_chat_body())
    }
}

/// Errors on the admin surface (`/api/admin/*`), written in its PascalCase
/// format `{"Success":false,"Error":"err_…","Message":"…"}`. Authentication,
/// permission and two-factor answers keep the shared bodies the contract
/// gives for every route.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Shared(#[from] Error),
    /// A body or parameter that is missing or malformed: says what to fix.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("no active session with that id")]
    NoActiveSession,
    #[error("no user with that guid")]
    UserNotFound,
}

impl From<DbError> for AdminError {
    fn from(error: DbError) -> Self {
        AdminError::Shared(error.into())
    }
}

impl AdminError {
    fn body(code: &str, message: &str) -> Value {
        json!({"Success": false, "Error": code, "Message": message})
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Shared(shared) => shared.status_code(),
            AdminError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NoActiveSession | AdminError::UserNotFound => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            AdminError::InvalidRequest(message) => Self::body("err_InvalidRequest", message),
            AdminError::NoActiveSession => Self::body(
                "err_NoActiveSession",
                "No active session was found for the provided session ID",
            ),
            AdminError::UserNotFound => Self::body(
                "err_UserNotFound",
                "No user was found for the provided UserGuid",
            ),
            AdminError::Shared(shared) => match shared {
                Error::InvalidParams(message) | Error::BadRequest { message, .. } => {
                    Self::body("err_InvalidRequest", message)
                }
                Error::UnknownParam(name) => {
                    Self::body("err_InvalidRequest", &format!("Unknown parameter '{name}'"))
                }
                Error::InvalidSortKeys => Self::body("err_InvalidRequest", "Unknown sort field"),
                Error::NotFound(what) => Self::body("err_NotFound", what),
                Error::PayloadTooLarge { limit } => Self::body(
                    "err_PayloadTooLarge",
                    &format!("Request body is larger than the limit of {limit} bytes"),
                ),
                Error::Unavailable(_) => {
                    shared.log();
                    return HttpResponse::ServiceUnavailable()
                        .insert_header((header::RETRY_AFTER, "1"))
                        .json(Self::body(
                            "err_ServiceUnavailable",
                            "The session store is temporarily unavailable; retry shortly",
                        ));
                }
                Error::Busy(message) => {
                    shared.log();
                    return HttpResponse::ServiceUnavailable()
                        .insert_header((header::RETRY_AFTER, "1"))
                        .json(Self::body("err_Busy", message));
                }
                Error::TooManyRequests(message) => {
                    return HttpResponse::TooManyRequests()
                        .insert_header((header::RETRY_AFTER, "1"))
                        .json(Self::body("err_TooManyRequests", message));
                }
                Error::UnsupportedMediaType => Self::body(
                    "err_UnsupportedMediaType",
                    "Content-Type must be application/json, with a JSON body",
                ),
                Error::RequestTimeout => {
                    return HttpResponse::RequestTimeout().force_close().json(Self::body(
                        "err_RequestTimeout",
                        "The request body did not arrive in time; send it in full right after the headers",
                    ));
                }
                Error::Internal(_) => {
                    shared.log();
                    return HttpResponse::InternalServerError()
                        .json(Self::body("err_Internal", "Internal server error"));
                }
                // 401, 403, 429 and the TOTP errors are the same on every surface.
                Error::Unauthorized
                | Error::LoginFailed
                | Error::Throttled { .. }
                | Error::Forbidden
                | Error::TwoFactor(_) => return shared.error_response(),
            },
        };
        HttpResponse::build(self.status_code()).json(body)
    }
}
