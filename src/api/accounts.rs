//! Accounts on the Rocket.Chat surface: `POST /api/v1/login`, `POST
//! /api/v1/logout`, `GET /api/v1/me`, and TOTP enrollment.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::docs::{LoginFailed, NotLoggedIn, RcError};
use crate::api::json_body;
use crate::app::AppState;
use crate::auth::login::{self as login_flow, Origin, SessionSpec};
use crate::auth::two_factor;
use crate::auth::Caller;
use crate::domain::ended_by::EndedBy;
use crate::domain::password::MAX_PASSWORD_BYTES;
use crate::domain::{clock, totp};
use crate::error::{Error, TwoFactorError};
use crate::store::{sessions, users};

/// The caller, as `/me` and login show it.
#[derive(Serialize, ToSchema)]
pub struct Me {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    pub name: String,
    pub active: bool,
    pub roles: Vec<String>,
    pub services: MeServices,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "_updatedAt")]
    pub updated_at: String,
    /// Present on `GET /api/v1/me`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub success: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct MeServices {
    pub totp: TotpState,
}

#[derive(Serialize, ToSchema)]
pub struct TotpState {
    pub enabled: bool,
}

impl Me {
    fn of(user: &users::User) -> Self {
        Me {
            id: user.guid.clone(),
            username: user.username.clone(),
            name: user.name.clone(),
            active: user.active,
            roles: user.role_list().into_iter().map(str::to_owned).collect(),
            services: MeServices {
                totp: TotpState {
                    enabled: user.totp_enabled,
                },
            },
            created_at: clock::iso_millis(user.created_at),
            updated_at: clock::iso_millis(user.updated_at),
            success: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub status: String,
    pub data: LoginData,
}

#[derive(Serialize, ToSchema)]
pub struct LoginData {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "authToken")]
    pub auth_token: String,
    pub me: Me,
}

#[derive(Serialize, ToSchema)]
pub struct LogoutResponse {
    pub status: String,
    pub data: LogoutMessage,
}

#[derive(Serialize, ToSchema)]
pub struct LogoutMessage {
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// The secret in base32.
    pub secret: String,
    /// An `otpauth://` URL for authenticator apps.
    pub url: String,
    /// The URL as a QR code, a PNG data URL.
    pub qrcode: String,
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BackupCodes {
    /// Ten single-use backup codes, shown once.
    pub codes: Vec<String>,
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

/// `user` (or `username`) and `password`; `code` when the user has TOTP.
#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    #[schema(min_length = 1, max_length = 64)]
    user: Option<String>,
    #[schema(min_length = 1, max_length = 64)]
    username: Option<String>,
    #[schema(max_length = 1024)]
    password: Option<String>,
    /// A TOTP code (6 digits) or a backup code.
    code: Option<String>,
}

/// Logs in and opens a session from the request's User-Agent, IP and Host.
#[utoipa::path(
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "A field is missing or wrong, the body is not JSON, or a second factor is needed or wrong", body = RcError),
        (status = 401, description = "Wrong username or password", body = LoginFailed),
        (status = 413, description = "The body is too large", body = RcError),
        (status = 415, description = "Content-Type is not application/json", body = RcError),
        (status = 429, description = "Too many failed logins; see Retry-After", body = LoginFailed),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[post("/api/v1/login")]
pub(super) async fn login(
    req: HttpRequest,
    body: web::Json<LoginBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let LoginBody {
        user,
        username,
        password,
        code,
    } = body.into_inner();
    let username = user
        .or(username)
        .ok_or_else(|| Error::InvalidParams("must have required property 'user'".into()))?;
    let password = password
        .ok_or_else(|| Error::InvalidParams("must have required property 'password'".into()))?;
    if username.is_empty() || username.len() > 64 {
        return Err(Error::InvalidParams("'user' must be 1 to 64 bytes".into()));
    }
    if username.chars().any(char::is_control) {
        return Err(Error::InvalidParams(
            "'user' must not contain control characters".into(),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::InvalidParams(format!(
            "'password' must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let origin = Origin::of(&req, &state.settings.trusted_proxies);
    let user = login_flow::verify_credentials(&state, &username, &password, &origin.ip).await?;

    if user.totp_enabled && code.as_deref().is_none_or(|c| c.trim().is_empty()) {
        return Err(Error::TwoFactor(TwoFactorError::Required {
            enrolled: true,
        }));
    }
    let app = state.clone();
    let (token, user) = state
        .db
        .run(move |conn| {
            let now = clock::now();
            let spec = SessionSpec {
                origin,
                description: String::new(),
                idle_timeout_seconds: app.settings.idle_timeout_seconds,
                permanent: false,
                api_defaults: "{}".into(),
                two_factor_until: None,
            };
            let (token, _session) =
                login_flow::open_session(conn, &app, &user, code.as_deref(), spec, now)?;
            Ok::<_, Error>((token, user))
        })
        .await?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        status: "success".into(),
        data: LoginData {
            user_id: user.guid.clone(),
            auth_token: token.expose().to_owned(),
            me: Me::of(&user),
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
pub(super) async fn logout(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let id = caller.session.id;
    state
        .db
        .run(move |conn| Ok::<_, Error>(sessions::end(conn, id, &EndedBy::User, clock::now())?))
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
    let mut body = Me::of(&caller.user);
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
pub(super) async fn enable_totp(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    if caller.user.totp_enabled {
        return Err(Error::bad_request(
            "error-totp-already-enabled",
            "TOTP is already enabled; disable it with users.2fa.disableTOTP before enrolling again",
        ));
    }
    let secret = totp::new_secret();
    let enrollment = totp::enrollment(&secret, &caller.user.username)
        .ok_or_else(|| Error::Internal("could not build the TOTP enrollment".into()))?;
    let sealed = state
        .secrets
        .seal(&secret, &caller.user.guid)
        .map_err(|e| Error::Internal(format!("sealing the TOTP secret: {e}")))?;
    let user_id = caller.user.id;
    let stored = state
        .db
        .run(move |conn| {
            Ok::<_, Error>(users::set_pending_totp(
                conn,
                user_id,
                &sealed,
                clock::now(),
            )?)
        })
        .await?;
    if !stored {
        return Err(Error::bad_request(
            "error-totp-already-enabled",
            "TOTP is already enabled; disable it with users.2fa.disableTOTP before enrolling again",
        ));
    }
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
    #[schema(min_length = 1)]
    code: Option<String>,
}

fn required_code(body: CodeBody) -> Result<String, Error> {
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
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let code = required_code(json_body(&req, payload, state.settings.max_body_bytes).await?)?;
    if caller.user.totp_enabled {
        return Err(Error::bad_request(
            "error-totp-already-enabled",
            "TOTP is already enabled",
        ));
    }
    if caller.user.totp_secret.is_none() {
        return Err(Error::bad_request(
            "error-totp-not-started",
            "No TOTP enrollment in progress: call users.2fa.enableTOTP first",
        ));
    }
    let backup_codes = totp::new_backup_codes();
    let hashes: Vec<String> = backup_codes
        .iter()
        .map(|c| totp::backup_code_hash(&caller.user.guid, c))
        .collect();
    let app = state.clone();
    let user = caller.user;
    state
        .db
        .run(move |conn| {
            let now = clock::now();
            two_factor::check_code(conn, &app.secrets, app.two_factor_limits, &user, &code, now)?;
            users::enable_totp(conn, user.id, &hashes, now)?;
            Ok::<_, Error>(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(BackupCodes {
        codes: backup_codes,
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
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let code = required_code(json_body(&req, payload, state.settings.max_body_bytes).await?)?;
    if !caller.user.totp_enabled {
        return Err(Error::bad_request(
            "error-totp-not-enabled",
            "TOTP is not enabled for this user",
        ));
    }
    let app = state.clone();
    let user = caller.user;
    state
        .db
        .run(move |conn| {
            let now = clock::now();
            two_factor::check_code(conn, &app.secrets, app.two_factor_limits, &user, &code, now)?;
            users::disable_totp(conn, user.id, now)?;
            Ok::<_, Error>(())
        })
        .await?;
    Ok(HttpResponse::Ok().json(Success { success: true }))
}
