//! `createSession`: the shared login, opening a session with this API's
//! settings (description, idle timeout, permanence, defaults).

use super::*;
use crate::domain::password::MAX_PASSWORD_BYTES;
use crate::service::login::{self, Login, RuleBroken};
use crate::service::sessions::SessionSpec;
use crate::service::Surface;

/// The idle timeout of a session whose request names none.
const DEFAULT_IDLE_TIMEOUT_SECONDS: i64 = 3_600;

const PROPERTIES: [&str; 9] = [
    "username",
    "password",
    "twoFactorCode",
    "description",
    "idleConnectionTimeoutSeconds",
    "permanentSession",
    "defaultApi",
    "defaultDebug",
    "defaultResponseOptions",
];

struct CreateParams {
    username: String,
    password: String,
    two_factor_code: Option<String>,
    description: String,
    idle_timeout_seconds: i64,
    permanent: bool,
    defaults: SessionDefaults,
}

pub(in crate::api::json_action) async fn perform(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    params: &Params<'_>,
) -> Result<Done, ActionError> {
    let params = parse(params, state)?;
    let spec = SessionSpec {
        origin: extract::origin(req, &state.settings.trusted_proxies),
        description: params.description,
        idle_timeout_seconds: params.idle_timeout_seconds,
        permanent: params.permanent,
        api_defaults: params.defaults.to_stored(),
        surface: Surface::JsonAction,
    };
    let attempt = Login {
        name: params.username,
        password: params.password,
        code: params.two_factor_code,
        spec,
    };
    let (token, session, user) = login::login(state, attempt).await?;
    let token = token.expose().to_owned();
    let description = SessionDescription::new(&session, &user.username, token.clone());
    Ok(Done {
        new_token: Some(token),
        defaults: Some(params.defaults),
        ..Done::with(&description)?
    })
}

/// Checks the properties in a fixed order, so a request with several
/// mistakes always hears of the same one first.
fn parse(params: &Params<'_>, state: &AppState) -> Result<CreateParams, ActionError> {
    params.only(Action::CreateSession, &PROPERTIES)?;
    let username = params.required_string("username", 1, MAX_NAME_BYTES)?;
    let password = params.required_string("password", 0, MAX_PASSWORD_BYTES)?;
    check_login_rules(username, password)?;
    let two_factor_code = params.string("twoFactorCode", 1, 64)?;
    let description = params.string("description", 0, MAX_DESCRIPTION_BYTES)?;
    let idle_timeout_seconds = idle_timeout(params, state)?.unwrap_or(DEFAULT_IDLE_TIMEOUT_SECONDS);
    let permanent = params.boolean("permanentSession")?.unwrap_or(false);
    let mut defaults = SessionDefaults::default();
    defaults.apply(params)?;
    Ok(CreateParams {
        username: username.to_owned(),
        password: password.to_owned(),
        two_factor_code: two_factor_code.map(str::to_owned),
        description: description.unwrap_or_default().to_owned(),
        idle_timeout_seconds,
        permanent,
        defaults,
    })
}

/// The shared login rules, in this surface's words.
fn check_login_rules(username: &str, password: &str) -> Result<(), ActionError> {
    login::check_rules(username, password).map_err(|broken| {
        ActionError::InvalidProperty(match broken {
            RuleBroken::NameControlCharacter => {
                "'username' must not contain control characters.".into()
            }
            // The lengths were checked before, with this surface's words.
            RuleBroken::NameLength | RuleBroken::PasswordLength => {
                format!("'username' and 'password' break the login rules: {broken:?}.")
            }
        })
    })
}
