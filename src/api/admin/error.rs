//! Errors on the admin surface (`/api/admin/*`), every one in its PascalCase
//! format `{"Success":false,"Error":"err_…","Message":"…"}`: authentication,
//! permission and the second factor included. The HTTP status of each is
//! the one every surface gives it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::rocket_chat::error as shared;
use crate::db::DbError;
use crate::error::{Error, Missing, TwoFactorError};

/// Whether `path` is on the admin surface.
pub fn is_admin_path(path: &str) -> bool {
    path.starts_with("/api/admin/")
}

/// An [`Error`] as the admin surface answers it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct AdminError(#[from] pub Error);

impl From<DbError> for AdminError {
    fn from(error: DbError) -> Self {
        AdminError(error.into())
    }
}

impl From<shared::RocketChatError> for AdminError {
    fn from(error: shared::RocketChatError) -> Self {
        AdminError(error.0)
    }
}

/// The admin surface's error body.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"Success": false, "Error": "err_NoActiveSession", "Message": "No active session was found for the provided session ID"}))]
pub struct AdminErrorBody {
    #[serde(rename = "Success")]
    pub success: bool,
    #[serde(rename = "Error")]
    pub error: &'static str,
    #[serde(rename = "Message")]
    pub message: String,
}

/// The admin body for `error`.
pub fn body(error: &Error) -> AdminErrorBody {
    let (code, message) = match error {
        Error::Unauthorized => (
            "err_Unauthorized",
            "You must be logged in to do this: send X-User-Id and X-Auth-Token of an active session"
                .into(),
        ),
        Error::LoginFailed => ("err_Unauthorized", "Unauthorized".into()),
        Error::Throttled {
            retry_after_seconds,
        } => (
            "err_TooManyRequests",
            format!("Too many failed attempts. Wait {retry_after_seconds} seconds before trying again."),
        ),
        Error::Forbidden => (
            "err_Forbidden",
            "This API needs the manage-sessions permission, which the admin role has".into(),
        ),
        Error::TwoFactor(TwoFactorError::Required { enrolled: true }) => (
            "err_TwoFactorRequired",
            "Send a TOTP code, or one of your backup codes, in the x-2fa-code header".into(),
        ),
        Error::TwoFactor(TwoFactorError::Required { enrolled: false }) => (
            "err_TwoFactorNotSetUp",
            "Two-factor authentication is required but not set up for this user: enroll with \
             POST /api/v1/users.2fa.enableTOTP, then confirm the code with \
             POST /api/v1/users.2fa.validateTempToken"
                .into(),
        ),
        Error::TwoFactor(TwoFactorError::Invalid) => (
            "err_TwoFactorInvalid",
            "The code in x-2fa-code is wrong, malformed or already used".into(),
        ),
        Error::TwoFactor(TwoFactorError::MaxAttempts {
            retry_after_seconds,
        }) => (
            "err_TwoFactorMaxAttempts",
            format!(
                "Too many wrong two-factor codes. Wait {retry_after_seconds} seconds before trying again"
            ),
        ),
        Error::InvalidParams(message) | Error::BadRequest { message, .. } => {
            ("err_InvalidRequest", message.clone())
        }
        Error::UnknownParam(name) => ("err_InvalidRequest", format!("Unknown parameter '{name}'")),
        Error::InvalidSortKeys => ("err_InvalidRequest", "Unknown sort field".into()),
        Error::NotFound(Missing::ActiveSession) => (
            "err_NoActiveSession",
            "No active session was found for the provided session ID".into(),
        ),
        Error::NotFound(Missing::User) => (
            "err_UserNotFound",
            "No user was found for the provided UserGuid".into(),
        ),
        Error::NotFound(Missing::Session) => ("err_NotFound", "Session not found".into()),
        Error::PayloadTooLarge { limit } => (
            "err_PayloadTooLarge",
            format!("Request body is larger than the limit of {limit} bytes"),
        ),
        Error::Unavailable(_) => (
            "err_ServiceUnavailable",
            "The session store is temporarily unavailable; retry shortly".into(),
        ),
        Error::Busy(message) => ("err_Busy", message.clone()),
        Error::TooManyRequests(message) => ("err_TooManyRequests", message.clone()),
        Error::UnsupportedMediaType => (
            "err_UnsupportedMediaType",
            "Content-Type must be application/json, with a JSON body".into(),
        ),
        Error::RequestTimeout => (
            "err_RequestTimeout",
            "The request body did not arrive in time; send it in full right after the headers"
                .into(),
        ),
        Error::Internal(_) => ("err_Internal", "Internal server error".into()),
        Error::SessionLimit { limit } => (
            "err_SessionLimit",
            format!("The user has {limit} active sessions, the most allowed"),
        ),
    };
    AdminErrorBody {
        success: false,
        error: code,
        message,
    }
}

/// `error` as the admin surface answers it.
pub fn response(error: &Error) -> HttpResponse {
    shared::builder(error).json(body(error))
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        shared::status(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        response(&self.0)
    }
}
