//! Accounts on the Rocket.Chat surface: `POST /api/v1/login`, `POST
//! /api/v1/logout`, `GET /api/v1/me`, and TOTP enrollment.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{LoginFailed, NotLoggedIn, RocketChatError, TypedError as RcError};
use super::wire::{
    BackupCodes, LoginData, LoginResponse, LogoutMessage, LogoutResponse, Me, Success,
    TotpEnrollment,
};
use crate::api::extract::{self, Access, Guard};
use crate::api::json_body;
use crate::auth::Caller;
use crate::domain::clock;
use crate::domain::ended_by::EndedBy;
use crate::domain::password::MAX_PASSWORD_BYTES;
use crate::error::Error;
use crate::service::login::{self as login_service, Login, RuleBroken};
use crate::service::sessions::{self, Ender, SessionSpec, Target};
use crate::service::totp as totp_service;
use crate::service::Surface;
use crate::state::AppState;

type Answer = Result<HttpResponse, RocketChatError>;

/// A login body: `user` (or `username`) and `password`, with `code` when
/// the user has TOTP; or `resume` alone. (For the document; the handler
/// reads the body field by field to name the one at fault.)
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum LoginBody {
    User(UserLogin),
    Username(UsernameLogin),
    Resume(ResumeLogin),
}

/// Logs in with a username and password.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct UserLogin {
    /// The username.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    user: String,
    #[schema(max_length = 1024)]
    password: String,
    /// A TOTP code (6 digits) or a backup code; needed when the user has
    /// TOTP.
    code: Option<String>,
}

/// The same, naming the user `username`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct UsernameLogin {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    username: String,
    #[schema(max_length = 1024)]
    password: String,
    /// A TOTP code (6 digits) or a backup code; needed when the user has
    /// TOTP.
    code: Option<String>,
}

/// Resumes an active session: answers that session again, with the same
/// token, instead of opening a new one.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ResumeLogin {
    /// An active session's `authToken`.
    #[schema(min_length = 1)]
    resume: String,
}

/// What a login body asks for.
enum LoginRequest {
    Password(Box<Login>),
    Resume(String),
}

/// Reads a login body, naming the field at fault the way the other routes
/// do: "must be object", "'user' must be string", "must have required
/// property 'password'".
fn login_request(body: Value, spec: SessionSpec) -> Result<LoginRequest, Error> {
    let Value::Object(fields) = body else {
        return Err(Error::InvalidParams("must be object".into()));
    };
    let text = |name: &str| -> Result<Option<String>, Error> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(Error::InvalidParams(format!("'{name}' must be string"))),
        }
    };
    let (user, username, password, code, resume) = (
        text("user")?,
        text("username")?,
        text("password")?,
        text("code")?,
        text("resume")?,
    );
    let name = user.or(username);
    if let Some(token) = resume {
        if name.is_some() || password.is_some() {
            return Err(Error::InvalidParams(
                "send either 'resume' or 'user' and 'password', not both".into(),
            ));
        }
        return Ok(LoginRequest::Resume(token));
    }
    let name =
        name.ok_or_else(|| Error::InvalidParams("must have required property 'user'".into()))?;
    let password = password
        .ok_or_else(|| Error::InvalidParams("must have required property 'password'".into()))?;
    login_service::check_rules(&name, &password).map_err(|broken| {
        Error::InvalidParams(match broken {
            RuleBroken::NameLength => "'user' must be 1 to 64 characters".into(),
            RuleBroken::NameControlCharacter => "'user' must not contain control characters".into(),
            RuleBroken::PasswordLength => {
                format!("'password' must be at most {MAX_PASSWORD_BYTES} bytes")
            }
        })
    })?;
    Ok(LoginRequest::Password(Box::new(Login {
        name,
        password,
        // A blank code is no code: the user is asked for one.
        code: code.filter(|c| !c.trim().is_empty()),
        spec,
    })))
}

/// Logs in and opens a session from the request's User-Agent, IP and Host;
/// or, with `resume`, answers an active session again.
#[utoipa::path(
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in (with `resume`: the same session and token)", body = LoginResponse),
        (status = 400, description = "A field is missing or wrong, the body is not JSON, or a second factor is needed or wrong", body = RcError),
        (status = 401, description = "Wrong username or password, or a `resume` token that names no active session", body = LoginFailed),
        (status = 403, description = "The user has the most active sessions allowed and the policy is `refuse` (error-session-limit)", body = RcError),
        (status = 413, description = "The body is too large", body = RcError),
        (status = 415, description = "Content-Type is not application/json", body = RcError),
        (status = 429, description = "Too many failed logins; see Retry-After", body = LoginFailed),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[post("/api/v1/login")]
pub(super) async fn login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Answer {
    let body: Value = json_body(&req, payload, state.settings.max_body_bytes).await?;
    let origin = extract::origin(&req, &state.settings.trusted_proxies);
    let ip = origin.ip.clone();
    let (token, user) = match login_request(
        body,
        SessionSpec::login(origin, &state, Surface::RocketChat),
    )? {
        LoginRequest::Password(login) => {
            let (token, _session, user) = login_service::login(&state, *login).await?;
            (token, user)
        }
        LoginRequest::Resume(token) => login_service::resume(&state, token, ip).await?,
    };
    Ok(HttpResponse::Ok().json(LoginResponse {
        status: "success".into(),
        data: LoginData {
            user_id: user.guid.clone(),
            auth_token: token.expose().to_owned(),
            me: Me::from(&user),
        },
    }))
}

/// Ends the caller's session.
#[utoipa::path(
    tag = "accounts",
    security(("user_id" = [], "auth_token" = [])),
    responses(
        (status = 200, description = "Logged out", body = LogoutResponse),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[post("/api/v1/logout")]
pub(super) async fn logout(guard: Guard, state: web::Data<AppState>) -> Answer {
    guard
        .run(&state, Access::USER, Ok(()), |conn, app, caller, ()| {
            let target = Target::SessionId {
                session_id: &caller.session.session_id,
                owner: Some(caller.user.id),
            };
            let ender = Ender::new(app, &EndedBy::User, Surface::RocketChat);
            sessions::end(conn, target, ender, clock::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(LogoutResponse {
        status: "success".into(),
        data: LogoutMessage {
            message: "You've been logged out!".into(),
        },
    }))
}

/// The caller.
#[utoipa::path(
    tag = "accounts",
    security(("user_id" = [], "auth_token" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[get("/api/v1/me")]
pub(super) async fn me(caller: Caller) -> HttpResponse {
    let mut body = Me::from(&caller.user);
    body.success = Some(true);
    HttpResponse::Ok().json(body)
}

/// Starts TOTP enrollment: a new secret, shown once as base32, URL and QR code.
#[utoipa::path(
    tag = "accounts",
    security(("user_id" = [], "auth_token" = [])),
    responses(
        (status = 200, description = "The new secret; confirm it with validateTempToken", body = TotpEnrollment),
        (status = 400, description = "TOTP is already enabled", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[post("/api/v1/users.2fa.enableTOTP")]
pub(super) async fn enable_totp(guard: Guard, state: web::Data<AppState>) -> Answer {
    let enrollment = guard
        .run(&state, Access::USER, Ok(()), |conn, app, caller, ()| {
            totp_service::enroll(conn, app, &caller.user)
        })
        .await?;
    Ok(HttpResponse::Ok().json(TotpEnrollment {
        secret: enrollment.secret_base32,
        url: enrollment.url,
        qrcode: enrollment.qrcode,
        success: true,
    }))
}

/// `{"code": "123456"}`: a TOTP code or a backup code.
#[derive(Deserialize, ToSchema)]
pub struct CodeBody {
    /// Not blank.
    #[schema(value_type = String, required = true, pattern = "\\S")]
    code: Option<String>,
}

/// The `code` of a `CodeBody`.
async fn code_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<String, Error> {
    let body: CodeBody = json_body(req, payload, state.settings.max_body_bytes).await?;
    body.code
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| Error::InvalidParams("must have required property 'code'".into()))
}

/// Confirms enrollment with a code from the new secret; returns ten backup codes.
#[utoipa::path(
    tag = "accounts",
    security(("user_id" = [], "auth_token" = [])),
    request_body = CodeBody,
    responses(
        (status = 200, description = "TOTP is on", body = BackupCodes),
        (status = 400, description = "No code, a wrong code, no enrollment in progress, or TOTP already on", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 413, description = "The body is too large", body = RcError),
        (status = 415, description = "Content-Type is not application/json", body = RcError),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[post("/api/v1/users.2fa.validateTempToken")]
pub(super) async fn validate_temp_token(
    guard: Guard,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Answer {
    let code = code_body(&req, payload, &state).await;
    let codes = guard
        .run(&state, Access::USER, code, |conn, app, caller, code| {
            totp_service::confirm(conn, app, &caller.user, &code)
        })
        .await?;
    Ok(HttpResponse::Ok().json(BackupCodes {
        codes,
        success: true,
    }))
}

/// Turns TOTP off; needs a valid code.
#[utoipa::path(
    tag = "accounts",
    security(("user_id" = [], "auth_token" = [])),
    request_body = CodeBody,
    responses(
        (status = 200, description = "TOTP is off", body = Success),
        (status = 400, description = "No code, a wrong code, or TOTP is not on", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 413, description = "The body is too large", body = RcError),
        (status = 415, description = "Content-Type is not application/json", body = RcError),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[post("/api/v1/users.2fa.disableTOTP")]
pub(super) async fn disable_totp(
    guard: Guard,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Answer {
    let code = code_body(&req, payload, &state).await;
    guard
        .run(&state, Access::USER, code, |conn, app, caller, code| {
            totp_service::disable(conn, app, &caller.user, &code)
        })
        .await?;
    Ok(HttpResponse::Ok().json(Success { success: true }))
}
