//! Errors on the admin surface (`/api/admin/*`), in its PascalCase format
//! `{"Success":false,"Error":"err_…","Message":"…"}`. Authentication,
//! permission and two-factor answers keep the bodies every route of the
//! service shares (`rocket_chat::error`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::rocket_chat::error::{self as shared, TypedError};
use crate::db::DbError;
use crate::error::{Error, Missing};

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

/// A 400 on the admin surface: its own error body, or one of the TOTP
/// errors every 2FA route shares. (For the document only.)
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum AdminBadRequest {
    Admin(AdminErrorBody),
    TwoFactor(TypedError),
}

/// The admin body for `error`, or `None` for the answers that are the same
/// on every surface (401, 403, 429 from login, the TOTP errors).
pub fn body(error: &Error) -> Option<AdminErrorBody> {
    let (code, message) = match error {
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
        Error::Unauthorized
        | Error::LoginFailed
        | Error::Throttled { .. }
        | Error::Forbidden
        | Error::TwoFactor(_) => return None,
    };
    Some(AdminErrorBody {
        success: false,
        error: code,
        message,
    })
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        shared::status(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        match body(&self.0) {
            Some(body) => shared::builder(&self.0).json(body),
            None => shared::response(&self.0),
        }
    }
}
