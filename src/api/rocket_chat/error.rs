//! Errors in the Rocket.Chat wire format, on `/api/v1/*`. The 401, 403 and
//! two-factor answers are the same on every route of the service, so the
//! admin surface writes those with [`response`] too.
//!
//! The body types here are what is sent and what the OpenAPI document
//! shows: there is no second copy.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::error::{Error, Missing, TwoFactorError};

/// An [`Error`] as this surface answers it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RocketChatError(#[from] pub Error);

impl From<DbError> for RocketChatError {
    fn from(error: DbError) -> Self {
        RocketChatError(error.into())
    }
}

/// 401: missing, unknown, ended or expired credentials.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "error", "message": "You must be logged in to do this."}))]
pub struct NotLoggedIn {
    pub status: &'static str,
    pub message: String,
}

/// 401 from login (wrong username or password), and 429 from login.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "error", "error": "Unauthorized", "message": "Unauthorized"}))]
pub struct LoginFailed {
    pub status: &'static str,
    pub error: &'static str,
    pub message: String,
}

/// `{"success": false, "error": "…"}`: 403, 404 and `error-invalid-sort-keys`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"success": false, "error": "Session not found"}))]
pub struct SimpleError {
    pub success: bool,
    pub error: String,
}

/// Rocket.Chat's error with a type: `"<message> [<errorType>]"`. The one
/// 400 without a type is `{"success":false,"error":"error-invalid-sort-keys"}`.
#[derive(Serialize, ToSchema)]
#[schema(as = RcError, example = json!({"success": false, "error": "TOTP Required [totp-required]", "errorType": "totp-required",
    "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]}}))]
pub struct TypedError {
    pub success: bool,
    pub error: String,
    #[serde(rename = "errorType", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, required = false)]
    pub error_type: Option<String>,
    /// How to recover, where there is more to say than `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, required = false)]
    pub message: Option<String>,
    /// TOTP details, or the offending parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, nullable = false, required = false)]
    pub details: Option<Details>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Details {
    TwoFactor(TwoFactorDetails),
    Param {
        #[serde(rename = "additionalProperty")]
        additional_property: String,
    },
}

#[derive(Serialize)]
pub struct TwoFactorDetails {
    pub method: &'static str,
    #[serde(rename = "codeGenerated")]
    pub code_generated: bool,
    #[serde(rename = "availableMethods", skip_serializing_if = "Option::is_none")]
    pub available_methods: Option<Vec<&'static str>>,
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<i64>,
}

/// One of the bodies above.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Body {
    NotLoggedIn(NotLoggedIn),
    LoginFailed(LoginFailed),
    Simple(SimpleError),
    Typed(TypedError),
}

fn simple(error: impl Into<String>) -> Body {
    Body::Simple(SimpleError {
        success: false,
        error: error.into(),
    })
}

fn typed(error_type: &str, message: &str) -> Body {
    Body::Typed(TypedError {
        success: false,
        error: format!("{message} [{error_type}]"),
        error_type: Some(error_type.to_owned()),
        message: None,
        details: None,
    })
}

fn two_factor(error: TwoFactorError) -> Body {
    let (error, error_type, message, available, retry_after_seconds) = match error {
        TwoFactorError::Required { enrolled: true } => (
            "TOTP Required",
            "totp-required",
            None,
            Some(vec!["totp"]),
            None,
        ),
        TwoFactorError::Required { enrolled: false } => (
            "TOTP Required",
            "totp-required",
            Some(
                "Two-factor authentication is required but not set up for this user: \
                 enroll with POST /api/v1/users.2fa.enableTOTP, then confirm the code \
                 with POST /api/v1/users.2fa.validateTempToken",
            ),
            Some(vec![]),
            None,
        ),
        TwoFactorError::Invalid => ("TOTP Invalid", "totp-invalid", None, None, None),
        TwoFactorError::MaxAttempts {
            retry_after_seconds,
        } => (
            "TOTP Maximum Attempts Reached",
            "totp-max-attempts",
            None,
            Some(vec!["totp"]),
            Some(retry_after_seconds),
        ),
    };
    Body::Typed(TypedError {
        success: false,
        error: format!("{error} [{error_type}]"),
        error_type: Some(error_type.to_owned()),
        message: message.map(str::to_owned),
        details: Some(Details::TwoFactor(TwoFactorDetails {
            method: "totp",
            code_generated: false,
            available_methods: available,
            retry_after_seconds,
        })),
    })
}

/// The body for `error` on this surface.
pub fn body(error: &Error) -> Body {
    match error {
        Error::Unauthorized => Body::NotLoggedIn(NotLoggedIn {
            status: "error",
            message: "You must be logged in to do this.".into(),
        }),
        Error::LoginFailed => Body::LoginFailed(LoginFailed {
            status: "error",
            error: "Unauthorized",
            message: "Unauthorized".into(),
        }),
        Error::Throttled {
            retry_after_seconds,
        } => Body::LoginFailed(LoginFailed {
            status: "error",
            error: "error-too-many-requests",
            message: format!(
                "Too many failed login attempts. Wait {retry_after_seconds} seconds before trying again."
            ),
        }),
        Error::Forbidden => simple(
            "User does not have the permissions required for this action [error-unauthorized]",
        ),
        Error::InvalidParams(message) => typed("invalid-params", message),
        Error::UnknownParam(name) => Body::Typed(TypedError {
            success: false,
            error: "must NOT have additional properties [invalid-params]".into(),
            error_type: Some("invalid-params".into()),
            message: None,
            details: Some(Details::Param {
                additional_property: name.clone(),
            }),
        }),
        Error::BadRequest {
            error_type,
            message,
        } => typed(error_type, message),
        Error::InvalidSortKeys => simple("error-invalid-sort-keys"),
        Error::TwoFactor(error) => two_factor(*error),
        Error::NotFound(Missing::Session | Missing::ActiveSession) => simple("Session not found"),
        Error::NotFound(Missing::User) => simple("User not found"),
        Error::PayloadTooLarge { limit } => typed(
            "error-payload-too-large",
            &format!("Request body is larger than the limit of {limit} bytes"),
        ),
        Error::Unavailable(_) => typed(
            "error-unavailable",
            "The session store is temporarily unavailable; retry shortly",
        ),
        Error::Busy(message) => typed("error-busy", message),
        Error::TooManyRequests(message) => typed("error-too-many-requests", message),
        Error::UnsupportedMediaType => typed(
            "error-unsupported-media-type",
            "Content-Type must be application/json, with a JSON body",
        ),
        Error::RequestTimeout => typed(
            "error-request-timeout",
            "The request body did not arrive in time; send it in full right after the headers",
        ),
        Error::Internal(_) => typed("error-internal", "Internal server error"),
        Error::SessionLimit { limit } => typed(
            "error-session-limit",
            format!(
                "This account has {limit} active sessions, the most allowed: log out of one \
                 (sessions/logout.me, or logout.others from a session you keep) to log in here"
            )
            .as_str(),
        ),
    }
}

/// The HTTP status of `error`, on every surface.
pub fn status(error: &Error) -> StatusCode {
    match error {
        Error::Unauthorized | Error::LoginFailed => StatusCode::UNAUTHORIZED,
        Error::Throttled { .. } | Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::Forbidden | Error::SessionLimit { .. } => StatusCode::FORBIDDEN,
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

/// A response builder for `error` with what every surface adds: the log
/// line, `Retry-After`, and a closed connection after a body timeout.
pub fn builder(error: &Error) -> HttpResponseBuilder {
    error.log();
    let mut response = HttpResponse::build(status(error));
    if matches!(error, Error::RequestTimeout) {
        // The rest of the body may still come; the connection cannot be reused.
        response.force_close();
    }
    if let Some(seconds) = error.retry_after() {
        if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.insert_header((header::RETRY_AFTER, value));
        }
    }
    response
}

/// `error` as this surface answers it.
pub fn response(error: &Error) -> HttpResponse {
    builder(error).json(body(error))
}

impl ResponseError for RocketChatError {
    fn status_code(&self) -> StatusCode {
        status(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        response(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(error: Error) -> serde_json::Value {
        serde_json::to_value(body(&error)).unwrap()
    }

    #[test]
    fn bodies_keep_the_documented_fields_in_order() {
        assert_eq!(
            serde_json::to_string(&body(&Error::TwoFactor(TwoFactorError::Invalid))).unwrap(),
            r#"{"success":false,"error":"TOTP Invalid [totp-invalid]","errorType":"totp-invalid","details":{"method":"totp","codeGenerated":false}}"#
        );
        assert_eq!(
            json(Error::UnknownParam("x".into()))["details"],
            serde_json::json!({"additionalProperty": "x"})
        );
        assert_eq!(
            json(Error::Unauthorized),
            serde_json::json!({"status": "error", "message": "You must be logged in to do this."})
        );
    }

    #[test]
    fn internal_causes_are_never_sent() {
        let body = json(Error::Internal("secret detail".into())).to_string();
        assert!(!body.contains("secret detail"), "{body}");
    }
}
