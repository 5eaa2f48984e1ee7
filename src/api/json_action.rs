//! The JSON action API: `POST /api` (seed 000, FairCom's jsonAction protocol).
//!
//! One endpoint takes an envelope `{requestId?, api?, action, params?,
//! apiVersion?, debug?, authToken?, responseOptions?}` and always answers
//! HTTP 200 with `{result, requestId, errorCode, errorMessage, authToken?,
//! debugInfo?}`: whatever the body holds (bad JSON, a scalar, wrong types,
//! too many bytes), the client reads `errorCode`. The sessions are ordinary
//! rows of `sessions`, shared with the other two surfaces.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::app::AppState;
use crate::auth::login::{self, Origin, SessionSpec};
use crate::auth::permissions::{has_permission, Permission};
use crate::db::{Conn, DbError};
use crate::domain::ended_by::EndedBy;
use crate::domain::password::MAX_PASSWORD_BYTES;
use crate::domain::token::AuthToken;
use crate::domain::{clock, username};
use crate::error::{Error, TwoFactorError};
use crate::store::json_sessions::{self, SessionChanges};
use crate::store::sessions::{self, Session};
use crate::store::users::User;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(handle);
}

/// The request envelope (seed 000). Any body gets an envelope back; this is
/// the shape that does something.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ActionRequest {
    /// Echoed back exactly as given; any JSON value.
    #[schema(required = false)]
    #[serde(rename = "requestId")]
    request_id: Value,
    #[schema(required = false)]
    api: Option<String>,
    /// `createSession`, `listSessions`, `describeSessions`, `alterSession`,
    /// `deleteSession` or `pingSession`, in any case.
    action: String,
    #[schema(value_type = Object, required = false)]
    params: Option<Value>,
    #[schema(required = false)]
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    /// `max` echoes the request (secrets masked) in `debugInfo.request`.
    #[schema(required = false)]
    debug: Option<String>,
    /// Required except for `createSession` and `pingSession`.
    #[schema(required = false)]
    #[serde(rename = "authToken")]
    auth_token: Option<String>,
    /// `numberFormat`, `dataFormat`, `omit`.
    #[schema(value_type = Object, required = false)]
    #[serde(rename = "responseOptions")]
    response_options: Option<Value>,
}

/// The reply envelope: always HTTP 200; `errorCode` 0 is success.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ActionReply {
    /// The action's result (an empty object on errors); `omit` may drop it.
    #[schema(value_type = Object, required = false)]
    result: Option<Value>,
    /// The request's `requestId`, as given: any JSON value (null when absent).
    #[serde(rename = "requestId")]
    request_id: Value,
    /// 0, 12031, or one of this service's codes (see the README).
    #[serde(rename = "errorCode")]
    error_code: i64,
    #[serde(rename = "errorMessage")]
    error_message: String,
    #[schema(required = false)]
    #[serde(rename = "authToken")]
    auth_token: Option<String>,
    /// Warnings, and the masked request with `debug: "max"`.
    #[schema(value_type = Object, required = false)]
    #[serde(rename = "debugInfo")]
    debug_info: Option<Value>,
}

/// The seed's text for a token that matches no active session.
pub const NO_SESSION_MESSAGE: &str = "'authToken' does not match any existing session. Use a valid 'authToken' or use 'createSession' to create a valid 'authToken'.";

/// The longest `description` a session may carry (seed: 1 to 65,500 bytes).
pub const MAX_DESCRIPTION_BYTES: usize = 65_500;
/// Entries of `usernameFilter` and `authTokens` a request may carry.
const MAX_LIST_ENTRIES: usize = 100;
/// The longest `authToken` the seed allows.
const MAX_TOKEN_BYTES: usize = 255;
/// The longest `api`, `apiVersion` or `defaultApi`.
const MAX_NAME_BYTES: usize = 64;
/// What replaces passwords and tokens in `debugInfo.request`.
const MASK: &str = "********";

/// Everything that can go wrong, with this surface's codes. The one place
/// where the shared `Error` becomes a code is `From<Error>` below.
#[derive(Debug)]
enum ActionError {
    /// 12031: the token matches no active session (the seed's code and text).
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
    /// 34010: the same answer whether the user exists or not.
    BadCredentials,
    /// 34011: failed logins or two-factor codes over the limit.
    Throttled { retry_after_seconds: i64 },
    /// 34012
    TwoFactorRequired,
    /// 34013
    TwoFactorInvalid,
    /// 34020
    NotPermitted(&'static str),
    /// 34090: retryable.
    Unavailable,
    /// 34091: a concurrency limit is full; retryable.
    Busy(String),
    /// 34099: the cause is logged, never sent.
    Internal,
}

const ACTIONS: &str =
    "createSession, listSessions, describeSessions, alterSession, deleteSession or pingSession";

impl ActionError {
    fn code(&self) -> i64 {
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
            ActionError::BadCredentials => 34010,
            ActionError::Throttled { .. } => 34011,
            ActionError::TwoFactorRequired => 34012,
            ActionError::TwoFactorInvalid => 34013,
            ActionError::NotPermitted(_) => 34020,
            ActionError::Unavailable => 34090,
            ActionError::Busy(_) => 34091,
            ActionError::Internal => 34099,
        }
    }

    fn message(&self) -> String {
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

/// A client-chosen string cut to a length fit for a message.
fn shortened(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// "a string", "an array", … for messages about wrong types.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expected(name: &str, what: &str, got: &Value) -> ActionError {
    let got = match got {
        Value::String(s) => format!("a string of {} bytes", s.len()),
        Value::Array(a) => format!("an array of {} entries", a.len()),
        other => kind_of(other).to_owned(),
    };
    ActionError::InvalidProperty(format!("'{name}' must be {what}; got {got}."))
}

// ---------------------------------------------------------------------------
// The envelope

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    CreateSession,
    ListSessions,
    DescribeSessions,
    AlterSession,
    DeleteSession,
    PingSession,
}

impl Action {
    const ALL: [Action; 6] = [
        Action::CreateSession,
        Action::ListSessions,
        Action::DescribeSessions,
        Action::AlterSession,
        Action::DeleteSession,
        Action::PingSession,
    ];

    fn name(self) -> &'static str {
        match self {
            Action::CreateSession => "createSession",
            Action::ListSessions => "listSessions",
            Action::DescribeSessions => "describeSessions",
            Action::AlterSession => "alterSession",
            Action::DeleteSession => "deleteSession",
            Action::PingSession => "pingSession",
        }
    }

    /// Action names are case-insensitive, as FairCom's.
    fn parse(raw: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(raw))
    }

    fn needs_token(self) -> bool {
        !matches!(self, Action::CreateSession | Action::PingSession)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum DebugLevel {
    #[default]
    None,
    Min,
    Max,
}

impl DebugLevel {
    fn parse(name: &str, value: &Value) -> Result<Self, ActionError> {
        const WHAT: &str = "\"none\", \"min\" or \"max\"";
        let text = value.as_str().ok_or_else(|| expected(name, WHAT, value))?;
        [
            ("none", DebugLevel::None),
            ("min", DebugLevel::Min),
            ("max", DebugLevel::Max),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(text))
        .map(|(_, level)| level)
        .ok_or_else(|| expected(name, WHAT, value))
    }

    fn name(self) -> &'static str {
        match self {
            DebugLevel::None => "none",
            DebugLevel::Min => "min",
            DebugLevel::Max => "max",
        }
    }
}

/// `responseOptions` (and a session's `defaultResponseOptions`): each field
/// `None` when not given, so request options overlay session defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ResponseOptions {
    binary_format: Option<&'static str>,
    /// True for `"arrays"`, false for `"objects"`.
    arrays: Option<bool>,
    /// True for `"string"`, false for `"number"`.
    numbers_as_strings: Option<bool>,
    omit: Option<Vec<&'static str>>,
}

/// Top-level reply properties that `omit` may drop. `requestId`,
/// `errorCode` and `errorMessage` always stay: a client must be able to
/// tell what happened to which request.
const OMITTABLE: [&str; 3] = ["result", "authToken", "debugInfo"];

fn one_of(
    name: &str,
    value: &Value,
    choices: &[&'static str],
) -> Result<&'static str, ActionError> {
    let what = choices
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let what = format!("one of {what}");
    let text = value.as_str().ok_or_else(|| expected(name, &what, value))?;
    choices
        .iter()
        .find(|c| c.eq_ignore_ascii_case(text))
        .copied()
        .ok_or_else(|| expected(name, &what, value))
}

impl ResponseOptions {
    fn parse(name: &str, value: &Value) -> Result<Self, ActionError> {
        let map = value
            .as_object()
            .ok_or_else(|| expected(name, "an object", value))?;
        let mut options = ResponseOptions::default();
        for (key, value) in map {
            let path = format!("{name}.{}", shortened(key));
            if value.is_null() {
                continue;
            }
            match key.as_str() {
                "binaryFormat" => {
                    options.binary_format =
                        Some(one_of(&path, value, &["base64", "hex", "byteArray"])?);
                }
                "dataFormat" => {
                    options.arrays = Some(one_of(&path, value, &["objects", "arrays"])? == "arrays");
                }
                "numberFormat" => {
                    options.numbers_as_strings =
                        Some(one_of(&path, value, &["number", "string"])? == "string");
                }
                "omit" => {
                    let what = "an array of \"result\", \"authToken\" or \"debugInfo\"";
                    let entries = value
                        .as_array()
                        .ok_or_else(|| expected(&path, what, value))?;
                    let mut omit = Vec::new();
                    for (i, entry) in entries.iter().enumerate() {
                        omit.push(one_of(&format!("{path}[{i}]"), entry, &OMITTABLE)?);
                    }
                    options.omit = Some(omit);
                }
                _ => {
                    return Err(ActionError::InvalidProperty(format!(
                        "'{path}' is not a response option; the options are binaryFormat, dataFormat, numberFormat and omit."
                    )))
                }
            }
        }
        Ok(options)
    }

    /// `self` with every option `over` sets replaced.
    fn overlay(&self, over: &ResponseOptions) -> ResponseOptions {
        ResponseOptions {
            binary_format: over.binary_format.or(self.binary_format),
            arrays: over.arrays.or(self.arrays),
            numbers_as_strings: over.numbers_as_strings.or(self.numbers_as_strings),
            omit: over.omit.clone().or_else(|| self.omit.clone()),
        }
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        if let Some(format) = self.binary_format {
            map.insert("binaryFormat".into(), json!(format));
        }
        if let Some(arrays) = self.arrays {
            map.insert(
                "dataFormat".into(),
                json!(if arrays { "arrays" } else { "objects" }),
            );
        }
        if let Some(strings) = self.numbers_as_strings {
            map.insert(
                "numberFormat".into(),
                json!(if strings { "string" } else { "number" }),
            );
        }
        if let Some(omit) = &self.omit {
            map.insert("omit".into(), json!(omit));
        }
        Value::Object(map)
    }
}

/// The envelope's properties, checked.
struct Envelope {
    action: Action,
    params: Map<String, Value>,
    auth_token: Option<String>,
    debug: Option<DebugLevel>,
    options: ResponseOptions,
}

const ENVELOPE_PROPERTIES: [&str; 8] = [
    "requestId",
    "api",
    "action",
    "params",
    "apiVersion",
    "debug",
    "authToken",
    "responseOptions",
];

/// A present, non-null property.
fn present<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).filter(|v| !v.is_null())
}

impl Envelope {
    fn parse(body: &Map<String, Value>) -> Result<Self, ActionError> {
        let action = match present(body, "action") {
            None => return Err(ActionError::MissingAction),
            Some(Value::String(name)) => {
                Action::parse(name).ok_or_else(|| ActionError::UnknownAction(name.clone()))?
            }
            Some(other) => return Err(expected("action", "a string naming an action", other)),
        };
        if let Some(key) = body
            .keys()
            .find(|k| !ENVELOPE_PROPERTIES.contains(&k.as_str()))
        {
            return Err(ActionError::InvalidProperty(format!(
                "'{}' is not a property of a request; the properties are {}.",
                shortened(key),
                ENVELOPE_PROPERTIES.join(", ")
            )));
        }
        for name in ["api", "apiVersion"] {
            if let Some(value) = present(body, name) {
                let what = format!("a string of 1 to {MAX_NAME_BYTES} bytes");
                match value.as_str() {
                    Some(s) if !s.is_empty() && s.len() <= MAX_NAME_BYTES => {}
                    _ => return Err(expected(name, &what, value)),
                }
            }
        }
        let params = match present(body, "params") {
            None => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(other) => return Err(expected("params", "an object", other)),
        };
        let auth_token = match present(body, "authToken") {
            None => None,
            Some(Value::String(token)) => Some(token.clone()),
            Some(other) => return Err(expected("authToken", "a string", other)),
        };
        let debug = present(body, "debug")
            .map(|v| DebugLevel::parse("debug", v))
            .transpose()?;
        let options = present(body, "responseOptions")
            .map(|v| ResponseOptions::parse("responseOptions", v))
            .transpose()?
            .unwrap_or_default();
        Ok(Envelope {
            action,
            params,
            auth_token,
            debug,
            options,
        })
    }
}

// ---------------------------------------------------------------------------
// Params

/// The `params` of one action, checked property by property.
struct Params<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    /// Refuses properties the action does not take.
    fn only(&self, action: Action, allowed: &[&str]) -> Result<(), ActionError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(key) => Err(ActionError::InvalidProperty(if allowed.is_empty() {
                format!(
                    "'{}' is not a property of {}, which takes no params.",
                    shortened(key),
                    action.name()
                )
            } else {
                format!(
                    "'{}' is not a property of {}; its properties are {}.",
                    shortened(key),
                    action.name(),
                    allowed.join(", ")
                )
            })),
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        present(self.map, name)
    }

    fn string(&self, name: &str, min: usize, max: usize) -> Result<Option<&'a str>, ActionError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match value.as_str() {
            Some(s) if (min..=max).contains(&s.len()) => Ok(Some(s)),
            _ => Err(expected(
                name,
                &format!("a string of {min} to {max} bytes"),
                value,
            )),
        }
    }

    fn required_string(&self, name: &str, min: usize, max: usize) -> Result<&'a str, ActionError> {
        self.string(name, min, max)?.ok_or_else(|| {
            ActionError::InvalidProperty(format!(
                "'{name}' is required: a string of {min} to {max} bytes."
            ))
        })
    }

    fn integer(&self, name: &str, what: &str) -> Result<Option<i64>, ActionError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        value
            .as_i64()
            .map(Some)
            .ok_or_else(|| expected(name, what, value))
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ActionError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        value
            .as_bool()
            .map(Some)
            .ok_or_else(|| expected(name, "true or false", value))
    }

    /// An array of 0 to `MAX_LIST_ENTRIES` strings of `min` to `max` bytes.
    fn strings(
        &self,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<Vec<&'a str>>, ActionError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let what =
            format!("an array of at most {MAX_LIST_ENTRIES} strings of {min} to {max} bytes each");
        let entries = value
            .as_array()
            .filter(|a| a.len() <= MAX_LIST_ENTRIES)
            .ok_or_else(|| expected(name, &what, value))?;
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| match entry.as_str() {
                Some(s) if (min..=max).contains(&s.len()) => Ok(s),
                _ => Err(expected(
                    &format!("{name}[{i}]"),
                    &format!("a string of {min} to {max} bytes"),
                    entry,
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// A session's `default*` settings, kept as JSON in `sessions.api_defaults`.
/// Sessions opened on the other surfaces hold `{}`, which reads as the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SessionDefaults {
    api: String,
    debug: DebugLevel,
    options: ResponseOptions,
}

impl Default for SessionDefaults {
    fn default() -> Self {
        SessionDefaults {
            api: "admin".into(),
            debug: DebugLevel::None,
            options: ResponseOptions::default(),
        }
    }
}

impl SessionDefaults {
    /// Reads the stored JSON; anything unreadable falls back to the defaults.
    fn from_stored(text: &str) -> Self {
        let mut defaults = SessionDefaults::default();
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
            return defaults;
        };
        if let Some(api) = map.get("defaultApi").and_then(Value::as_str) {
            defaults.api = api.to_owned();
        }
        if let Some(Ok(debug)) = map
            .get("defaultDebug")
            .map(|v| DebugLevel::parse("defaultDebug", v))
        {
            defaults.debug = debug;
        }
        if let Some(Ok(options)) = map
            .get("defaultResponseOptions")
            .map(|v| ResponseOptions::parse("defaultResponseOptions", v))
        {
            defaults.options = options;
        }
        defaults
    }

    fn to_stored(&self) -> String {
        json!({
            "defaultApi": self.api,
            "defaultDebug": self.debug.name(),
            "defaultResponseOptions": self.options.to_json(),
        })
        .to_string()
    }

    /// Overrides from `defaultApi`, `defaultDebug` and `defaultResponseOptions`.
    fn apply(&mut self, params: &Params<'_>) -> Result<(), ActionError> {
        if let Some(api) = params.string("defaultApi", 1, MAX_NAME_BYTES)? {
            self.api = api.to_owned();
        }
        if let Some(debug) = params.get("defaultDebug") {
            self.debug = DebugLevel::parse("defaultDebug", debug)?;
        }
        if let Some(options) = params.get("defaultResponseOptions") {
            self.options = ResponseOptions::parse("defaultResponseOptions", options)?;
        }
        Ok(())
    }
}

/// `idleConnectionTimeoutSeconds`: 0 (never idle-expires), or from the
/// activity interval (activity is recorded no more often, so a shorter idle
/// timeout would end busy sessions) up to the maximum session lifetime.
fn idle_timeout(params: &Params<'_>, state: &AppState) -> Result<Option<i64>, ActionError> {
    let min = state.settings.activity_interval_seconds.max(1);
    let max = state.settings.max_lifetime_seconds.max(min);
    let what = format!("0 (no idle timeout) or an integer from {min} to {max}");
    let name = "idleConnectionTimeoutSeconds";
    match params.integer(name, &what)? {
        None => Ok(None),
        Some(seconds) if seconds == 0 || (min..=max).contains(&seconds) => Ok(Some(seconds)),
        Some(_) => Err(expected(
            name,
            &what,
            params.get(name).unwrap_or(&Value::Null),
        )),
    }
}

const DEFAULT_IDLE_TIMEOUT_SECONDS: i64 = 3_600;

struct CreateParams {
    username: String,
    password: String,
    two_factor_code: Option<String>,
    description: String,
    idle_timeout_seconds: i64,
    permanent: bool,
    defaults: SessionDefaults,
}

struct AlterParams {
    changes: SessionChanges,
    /// Applied to the stored defaults inside the store closure.
    defaults: Map<String, Value>,
}

/// Each action's params, checked before anything touches the store.
enum Parsed {
    Create(Box<CreateParams>),
    List { username_keys: Vec<String> },
    Describe { tokens: Option<Vec<String>> },
    Alter(Box<AlterParams>),
    Delete,
    Ping,
}

const DEFAULT_KEYS: [&str; 3] = ["defaultApi", "defaultDebug", "defaultResponseOptions"];

fn parse_params(
    action: Action,
    map: &Map<String, Value>,
    state: &AppState,
) -> Result<Parsed, ActionError> {
    let params = Params { map };
    match action {
        Action::CreateSession => {
            params.only(
                action,
                &[
                    "username",
                    "password",
                    "twoFactorCode",
                    "description",
                    "idleConnectionTimeoutSeconds",
                    "permanentSession",
                    "defaultApi",
                    "defaultDebug",
                    "defaultResponseOptions",
                ],
            )?;
            let username = params.required_string("username", 1, 64)?;
            if username.chars().any(char::is_control) {
                return Err(ActionError::InvalidProperty(
                    "'username' must not contain control characters.".into(),
                ));
            }
            let password = params.required_string("password", 0, MAX_PASSWORD_BYTES)?;
            let two_factor_code = params.string("twoFactorCode", 1, 64)?;
            let description = params.string("description", 0, MAX_DESCRIPTION_BYTES)?;
            let idle_timeout_seconds =
                idle_timeout(&params, state)?.unwrap_or(DEFAULT_IDLE_TIMEOUT_SECONDS);
            let permanent = params.boolean("permanentSession")?.unwrap_or(false);
            let mut defaults = SessionDefaults::default();
            defaults.apply(&params)?;
            Ok(Parsed::Create(Box::new(CreateParams {
                username: username.to_owned(),
                password: password.to_owned(),
                two_factor_code: two_factor_code.map(str::to_owned),
                description: description.unwrap_or_default().to_owned(),
                idle_timeout_seconds,
                permanent,
                defaults,
            })))
        }
        Action::ListSessions => {
            params.only(action, &["usernameFilter"])?;
            let names = params.strings("usernameFilter", 1, 64)?.unwrap_or_default();
            Ok(Parsed::List {
                username_keys: names.into_iter().map(username::lookup_key).collect(),
            })
        }
        Action::DescribeSessions => {
            params.only(action, &["authTokens"])?;
            let tokens = params.strings("authTokens", 1, MAX_TOKEN_BYTES)?;
            Ok(Parsed::Describe {
                tokens: tokens.map(|t| t.into_iter().map(str::to_owned).collect()),
            })
        }
        Action::AlterSession => {
            if params.map.contains_key("username") {
                return Err(ActionError::InvalidProperty(
                    "'username' cannot be changed: a session belongs to the account that created it."
                        .into(),
                ));
            }
            params.only(
                action,
                &[
                    "description",
                    "idleConnectionTimeoutSeconds",
                    "permanentSession",
                    "defaultApi",
                    "defaultDebug",
                    "defaultResponseOptions",
                ],
            )?;
            let end_permanence = match params.boolean("permanentSession")? {
                Some(true) => {
                    return Err(ActionError::InvalidProperty(
                        "'permanentSession' cannot be set to true by alterSession: only createSession makes a permanent session."
                            .into(),
                    ))
                }
                Some(false) => true,
                None => false,
            };
            // Checked here against a scratch copy; applied to the stored defaults later.
            SessionDefaults::default().apply(&params)?;
            let defaults: Map<String, Value> = DEFAULT_KEYS
                .iter()
                .filter_map(|k| params.get(k).map(|v| ((*k).to_owned(), v.clone())))
                .collect();
            Ok(Parsed::Alter(Box::new(AlterParams {
                changes: SessionChanges {
                    description: params
                        .string("description", 0, MAX_DESCRIPTION_BYTES)?
                        .map(str::to_owned),
                    idle_timeout_seconds: idle_timeout(&params, state)?,
                    end_permanence,
                    api_defaults: None,
                },
                defaults,
            })))
        }
        Action::DeleteSession => {
            params.only(action, &[])?;
            Ok(Parsed::Delete)
        }
        Action::PingSession => {
            params.only(action, &[])?;
            Ok(Parsed::Ping)
        }
    }
}

// ---------------------------------------------------------------------------
// The reply

/// What an action produced, before the response options shape it.
#[derive(Default)]
struct Done {
    result: Map<String, Value>,
    /// The token to return at the top level, when it differs from the request's.
    new_token: Option<String>,
    warnings: Vec<Value>,
    /// The calling session's defaults, when there is a calling session.
    defaults: Option<SessionDefaults>,
}

struct Reply {
    request_id: Value,
    auth_token: Option<String>,
    outcome: Result<Done, ActionError>,
    debug: DebugLevel,
    options: ResponseOptions,
    /// The request, masked, for `debug: "max"`.
    request: Option<Value>,
}

impl Reply {
    fn failure(error: ActionError) -> Self {
        Reply {
            request_id: Value::Null,
            auth_token: None,
            outcome: Err(error),
            debug: DebugLevel::None,
            options: ResponseOptions::default(),
            request: None,
        }
    }

    fn into_json(self) -> Value {
        let (mut result, error, warnings, new_token) = match self.outcome {
            Ok(done) => (
                Value::Object(done.result),
                None,
                done.warnings,
                done.new_token,
            ),
            Err(error) => (json!({}), Some(error), Vec::new(), None),
        };
        if self.options.numbers_as_strings == Some(true) {
            numbers_to_strings(&mut result);
        }
        let mut reply = Map::new();
        reply.insert("result".into(), result);
        reply.insert("requestId".into(), self.request_id);
        reply.insert(
            "errorCode".into(),
            json!(error.as_ref().map_or(0, ActionError::code)),
        );
        reply.insert(
            "errorMessage".into(),
            json!(error
                .as_ref()
                .map_or_else(String::new, ActionError::message)),
        );
        if let Some(token) = new_token.or(self.auth_token) {
            reply.insert("authToken".into(), json!(token));
        }
        let mut debug_info = Map::new();
        if let (DebugLevel::Max, Some(request)) = (self.debug, self.request) {
            debug_info.insert("request".into(), request);
        }
        if !warnings.is_empty() {
            debug_info.insert("warnings".into(), Value::Array(warnings));
        }
        if !debug_info.is_empty() {
            reply.insert("debugInfo".into(), Value::Object(debug_info));
        }
        for name in self.options.omit.iter().flatten() {
            reply.remove(*name);
        }
        Value::Object(reply)
    }
}

/// `numberFormat: "string"`: every number, at any depth, written as a string.
fn numbers_to_strings(value: &mut Value) {
    match value {
        Value::Number(n) => *value = Value::String(n.to_string()),
        Value::Array(items) => items.iter_mut().for_each(numbers_to_strings),
        Value::Object(map) => map.values_mut().for_each(numbers_to_strings),
        _ => {}
    }
}

/// The request as `debugInfo.request` shows it: passwords, tokens and
/// two-factor codes replaced, at any depth.
fn masked(value: &Value) -> Value {
    const SECRET_KEYS: [&str; 5] = [
        "password",
        "authToken",
        "authTokens",
        "twoFactorCode",
        "code",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let secret = SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(key));
                    let shown = match (secret, value) {
                        (true, Value::Array(items)) => {
                            Value::Array(items.iter().map(|_| json!(MASK)).collect())
                        }
                        (true, Value::Null) => Value::Null,
                        (true, _) => json!(MASK),
                        (false, other) => masked(other),
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// The handler

/// Runs one jsonAction.
#[utoipa::path(
    tag = "json action",
    request_body = ActionRequest,
    responses(
        (status = 200, description = "The reply envelope, for every body, errors included", body = ActionReply),
        (status = 415, description = "Content-Type is not application/json (`errorCode` 34008); nothing was read or done", body = ActionReply),
    )
)]
#[post("/api")]
async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !super::is_json(&req) {
        // Refused before the body is read: a cross-site form or a
        // `text/plain` post (no preflight) cannot act here.
        return HttpResponse::UnsupportedMediaType()
            .json(Reply::failure(ActionError::NotJson).into_json());
    }
    let limit = state.settings.max_body_bytes;
    let reply = match payload.to_bytes_limited(limit).await {
        Err(_) => Reply::failure(ActionError::BodyTooLarge { limit }),
        Ok(Err(error)) if super::body_deadline::is_timeout_error(&error) => {
            // The rest of the body may still come: this connection is done.
            return HttpResponse::Ok()
                .force_close()
                .json(Reply::failure(ActionError::BodyTimeout).into_json());
        }
        Ok(Err(error)) => Reply::failure(ActionError::InvalidJson(format!(
            "the body could not be read ({error})"
        ))),
        Ok(Ok(bytes)) => match serde_json::from_slice::<Value>(&bytes) {
            Err(error) => Reply::failure(ActionError::InvalidJson(error.to_string())),
            Ok(Value::Object(body)) => run(&req, &state, body).await,
            Ok(other) => Reply::failure(ActionError::NotAnObject(kind_of(&other))),
        },
    };
    HttpResponse::Ok().json(reply.into_json())
}

async fn run(req: &HttpRequest, state: &web::Data<AppState>, body: Map<String, Value>) -> Reply {
    let mut reply = Reply::failure(ActionError::Internal);
    reply.request_id = body.get("requestId").cloned().unwrap_or(Value::Null);
    reply.auth_token = body
        .get("authToken")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // A request that asks for the debug echo gets it even when it fails.
    let asks_for_echo = body
        .get("debug")
        .is_some_and(|v| DebugLevel::parse("debug", v).ok() == Some(DebugLevel::Max));
    if asks_for_echo {
        reply.debug = DebugLevel::Max;
    }
    reply.request = Some(masked(&Value::Object(body.clone())));

    let envelope = match Envelope::parse(&body) {
        Ok(envelope) => envelope,
        Err(error) => {
            reply.outcome = Err(error);
            return reply;
        }
    };
    reply.options = envelope.options.clone();
    let outcome = perform(req, state, &envelope).await;
    if let Ok(Done {
        defaults: Some(defaults),
        ..
    }) = &outcome
    {
        // The session's defaults hold where the request says nothing.
        reply.debug = envelope.debug.unwrap_or(defaults.debug);
        reply.options = defaults.options.overlay(&envelope.options);
    } else if let Some(debug) = envelope.debug {
        reply.debug = debug;
    }
    reply.outcome = outcome;
    reply
}

async fn perform(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    envelope: &Envelope,
) -> Result<Done, ActionError> {
    let action = envelope.action;
    let token = match (&envelope.auth_token, action.needs_token()) {
        (None, true) => {
            return Err(ActionError::InvalidProperty(format!(
                "'authToken' is required by {}; get one from createSession.",
                action.name()
            )))
        }
        (None, false) => None,
        (Some(raw), _) => Some(AuthToken::parse(raw)),
    };
    // Authentication comes before params errors, so a client with a dead
    // token learns that first; the params are checked before any store work.
    let parsed = parse_params(action, &envelope.params, state);
    let arrays = envelope.options.arrays;

    if action == Action::CreateSession {
        return match parsed? {
            Parsed::Create(params) => create_session(req, state, *params).await,
            _ => Err(ActionError::Internal),
        };
    }
    let app = state.clone();
    state
        .db
        .run(move |conn| {
            let now = clock::now();
            match (action, token) {
                (Action::CreateSession, _) => Err(ActionError::Internal),
                (Action::DeleteSession, Some(token)) => {
                    parsed?;
                    delete_session(conn, token, now)
                }
                (Action::PingSession, None) => {
                    parsed?;
                    Ok(Done::default())
                }
                (_, None) => Err(ActionError::Internal),
                (_, Some(None)) => Err(ActionError::NoSession),
                (_, Some(Some(token))) => {
                    let (session, user) = sessions::find_active_by_token(conn, &token.hash(), now)?
                        .ok_or(ActionError::NoSession)?;
                    let defaults = SessionDefaults::from_stored(&session.api_defaults);
                    let arrays = arrays.or(defaults.options.arrays).unwrap_or(false);
                    let caller = CallerSession {
                        session,
                        user,
                        token,
                    };
                    let mut done = match parsed? {
                        Parsed::Ping => {
                            if !json_sessions::extend(conn, &caller.session, &app.lifetime, now)? {
                                return Err(ActionError::NoSession);
                            }
                            Done::default()
                        }
                        parsed => {
                            sessions::touch(conn, &caller.session, &app.lifetime, now)?;
                            match parsed {
                                Parsed::List { username_keys } => {
                                    list_sessions(conn, &caller, &username_keys, arrays, now)?
                                }
                                Parsed::Describe { tokens } => {
                                    describe_sessions(conn, &caller, tokens, arrays, now)?
                                }
                                Parsed::Alter(params) => {
                                    alter_session(conn, &app, &caller, *params, now)?
                                }
                                _ => Done::default(),
                            }
                        }
                    };
                    if done.defaults.is_none() {
                        done.defaults = Some(defaults);
                    }
                    Ok(done)
                }
            }
        })
        .await
}

/// The session making the request, and the token it was found by.
struct CallerSession {
    session: Session,
    user: User,
    token: AuthToken,
}

impl CallerSession {
    fn may_see_everyone(&self) -> bool {
        has_permission(self.user.role_list(), Permission::ManageSessions)
    }

    /// The caller's own session shows its real token; any other only its hint.
    fn shown_token(&self, session: &Session) -> String {
        if session.id == self.session.id {
            self.token.expose().to_owned()
        } else {
            format!("{}…", session.token_hint)
        }
    }
}

/// The full description of a session, in the documented column order.
fn description_fields(
    session: &Session,
    username: &str,
    token: String,
) -> Vec<(&'static str, Value)> {
    let defaults = SessionDefaults::from_stored(&session.api_defaults);
    vec![
        ("authToken", json!(token)),
        ("username", json!(username)),
        ("description", json!(session.description)),
        (
            "idleConnectionTimeoutSeconds",
            json!(session.idle_timeout_seconds),
        ),
        ("permanentSession", json!(session.permanent)),
        ("defaultApi", json!(defaults.api)),
        ("defaultDebug", json!(defaults.debug.name())),
        ("defaultResponseOptions", defaults.options.to_json()),
        (
            "sessionStartTimestamp",
            json!(clock::iso_millis(session.login_at)),
        ),
        (
            "sessionLastAccessedTimestamp",
            json!(clock::iso_millis(session.last_activity_at)),
        ),
        (
            "sessionExpirationTimestamp",
            if session.permanent {
                Value::Null
            } else {
                json!(clock::iso_millis(session.expires_at))
            },
        ),
    ]
}

/// A row as an object, or as an array in column order for `dataFormat: "arrays"`.
fn row(fields: Vec<(&'static str, Value)>, arrays: bool) -> Value {
    if arrays {
        Value::Array(fields.into_iter().map(|(_, v)| v).collect())
    } else {
        Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

fn object(fields: Vec<(&'static str, Value)>) -> Map<String, Value> {
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

async fn create_session(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    params: CreateParams,
) -> Result<Done, ActionError> {
    let origin = Origin::of(req, &state.settings.trusted_proxies);
    let user =
        login::verify_credentials(state, &params.username, &params.password, &origin.ip).await?;
    if user.totp_enabled && params.two_factor_code.is_none() {
        return Err(ActionError::TwoFactorRequired);
    }
    let app = state.clone();
    state
        .db
        .run(move |conn| {
            let now = clock::now();
            let spec = SessionSpec {
                origin,
                description: params.description,
                idle_timeout_seconds: params.idle_timeout_seconds,
                permanent: params.permanent,
                api_defaults: params.defaults.to_stored(),
                two_factor_until: None,
            };
            let code = params.two_factor_code.as_deref();
            let (token, session) = login::open_session(conn, &app, &user, code, spec, now)?;
            let token = token.expose().to_owned();
            Ok::<_, ActionError>(Done {
                result: object(description_fields(&session, &user.username, token.clone())),
                new_token: Some(token),
                warnings: Vec::new(),
                defaults: Some(params.defaults),
            })
        })
        .await
}

fn list_sessions(
    conn: &mut Conn,
    caller: &CallerSession,
    username_keys: &[String],
    arrays: bool,
    now: chrono::NaiveDateTime,
) -> Result<Done, ActionError> {
    let owner = (!caller.may_see_everyone()).then_some(caller.user.id);
    let rows = json_sessions::list_active(conn, owner, username_keys, now)?;
    let sessions: Vec<Value> = rows
        .iter()
        .map(|(session, username)| {
            row(
                vec![
                    ("username", json!(username)),
                    ("description", json!(session.description)),
                    ("authToken", json!(caller.shown_token(session))),
                ],
                arrays,
            )
        })
        .collect();
    Ok(Done {
        result: object(vec![("sessions", Value::Array(sessions))]),
        ..Done::default()
    })
}

fn no_session_warning(property: String) -> Value {
    json!({"code": 12031, "message": NO_SESSION_MESSAGE, "property": property})
}

fn describe_sessions(
    conn: &mut Conn,
    caller: &CallerSession,
    tokens: Option<Vec<String>>,
    arrays: bool,
    now: chrono::NaiveDateTime,
) -> Result<Done, ActionError> {
    let mut warnings = Vec::new();
    let mut described: Vec<(Session, String, String)> = Vec::new();
    match tokens {
        None => {
            for (session, username) in
                json_sessions::list_active(conn, Some(caller.user.id), &[], now)?
            {
                let shown = caller.shown_token(&session);
                described.push((session, username, shown));
            }
        }
        Some(tokens) => {
            for (i, raw) in tokens.into_iter().enumerate() {
                let found = match AuthToken::parse(&raw) {
                    Some(token) => sessions::find_active_by_token(conn, &token.hash(), now)?,
                    None => None,
                };
                let Some((session, owner)) = found else {
                    warnings.push(no_session_warning(format!("authTokens[{i}]")));
                    continue;
                };
                if owner.id != caller.user.id && !caller.may_see_everyone() {
                    return Err(ActionError::NotPermitted(
                        "only an administrator may describe another account's sessions",
                    ));
                }
                if described.iter().all(|(s, _, _)| s.id != session.id) {
                    // The caller sent this token, so showing it reveals nothing.
                    described.push((session, owner.username, raw));
                }
            }
        }
    }
    let sessions: Vec<Value> = described
        .into_iter()
        .map(|(session, username, token)| {
            row(description_fields(&session, &username, token), arrays)
        })
        .collect();
    Ok(Done {
        result: object(vec![("sessions", Value::Array(sessions))]),
        warnings,
        ..Done::default()
    })
}

fn alter_session(
    conn: &mut Conn,
    app: &AppState,
    caller: &CallerSession,
    params: AlterParams,
    now: chrono::NaiveDateTime,
) -> Result<Done, ActionError> {
    let mut defaults = SessionDefaults::from_stored(&caller.session.api_defaults);
    defaults.apply(&Params {
        map: &params.defaults,
    })?;
    let mut changes = params.changes;
    changes.api_defaults = Some(defaults.to_stored());
    let session = json_sessions::alter(conn, &caller.session, changes, &app.lifetime, now)?
        .ok_or(ActionError::NoSession)?;
    Ok(Done {
        result: object(description_fields(
            &session,
            &caller.user.username,
            caller.token.expose().to_owned(),
        )),
        defaults: Some(defaults),
        ..Done::default()
    })
}

/// Ends the session behind the token. An unknown or ended token is not an
/// error, as in FairCom: the session is gone either way.
fn delete_session(
    conn: &mut Conn,
    token: Option<AuthToken>,
    now: chrono::NaiveDateTime,
) -> Result<Done, ActionError> {
    let found = match token {
        Some(token) => sessions::find_active_by_token(conn, &token.hash(), now)?,
        None => None,
    };
    let ended = match found {
        Some((session, _)) => sessions::end(conn, session.id, &EndedBy::User, now)?,
        None => false,
    };
    let warnings = if ended {
        Vec::new()
    } else {
        vec![no_session_warning("authToken".into())]
    };
    Ok(Done {
        warnings,
        ..Done::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope_for(error: Error) -> Value {
        let mut reply = Reply::failure(ActionError::from(error));
        reply.request_id = json!("r1");
        reply.into_json()
    }

    #[test]
    fn store_outages_and_internal_errors_get_their_codes_without_the_cause() {
        assert_eq!(
            envelope_for(Error::Unavailable("connection refused".into())),
            json!({"result": {}, "requestId": "r1", "errorCode": 34090,
                   "errorMessage": "The session store is temporarily unavailable; retry the request."})
        );
        let internal = envelope_for(Error::Internal("secret detail".into()));
        assert_eq!(
            internal,
            json!({"result": {}, "requestId": "r1", "errorCode": 34099,
                   "errorMessage": "Internal error; the cause is in the service's log."})
        );
        assert!(!internal.to_string().contains("secret detail"));
        let lost = envelope_for(Error::from(DbError::Unavailable("pool timeout".into())));
        assert_eq!(lost["errorCode"], 34090);
    }

    #[test]
    fn shared_errors_map_to_this_surfaces_codes() {
        let cases = [
            (Error::Unauthorized, 12031),
            (Error::LoginFailed, 34010),
            (
                Error::Throttled {
                    retry_after_seconds: 3,
                },
                34011,
            ),
            (
                Error::TwoFactor(TwoFactorError::MaxAttempts {
                    retry_after_seconds: 3,
                }),
                34011,
            ),
            (
                Error::TwoFactor(TwoFactorError::Required { enrolled: true }),
                34012,
            ),
            (Error::TwoFactor(TwoFactorError::Invalid), 34013),
            (Error::Forbidden, 34020),
            (Error::InvalidParams("x".into()), 34005),
            (Error::PayloadTooLarge { limit: 1 }, 34006),
        ];
        for (error, code) in cases {
            let name = format!("{error:?}");
            assert_eq!(ActionError::from(error).code(), code, "{name}");
        }
    }

    #[test]
    fn action_names_ignore_case_and_unknown_names_are_refused() {
        assert_eq!(Action::parse("CREATESESSION"), Some(Action::CreateSession));
        assert_eq!(Action::parse("pingsession"), Some(Action::PingSession));
        assert_eq!(Action::parse("createSessions"), None);
        assert_eq!(Action::parse(""), None);
    }

    #[test]
    fn masking_reaches_every_depth() {
        let request = json!({"authToken": "t", "params": {"password": "p", "authTokens": ["a", "b"],
                             "nested": [{"twoFactorCode": "123456"}], "username": "alice"}});
        assert_eq!(
            masked(&request),
            json!({"authToken": MASK, "params": {"password": MASK, "authTokens": [MASK, MASK],
                   "nested": [{"twoFactorCode": MASK}], "username": "alice"}})
        );
    }

    #[test]
    fn numbers_become_strings_at_any_depth() {
        let mut value = json!({"a": 1, "b": [2.5, {"c": -3}], "d": "4", "e": true});
        numbers_to_strings(&mut value);
        assert_eq!(
            value,
            json!({"a": "1", "b": ["2.5", {"c": "-3"}], "d": "4", "e": true})
        );
    }

    #[test]
    fn stored_defaults_round_trip_and_unreadable_ones_fall_back() {
        let defaults = SessionDefaults {
            api: "db".into(),
            debug: DebugLevel::Max,
            options: ResponseOptions {
                arrays: Some(true),
                omit: Some(vec!["debugInfo"]),
                ..ResponseOptions::default()
            },
        };
        assert_eq!(
            SessionDefaults::from_stored(&defaults.to_stored()),
            defaults
        );
        assert_eq!(
            SessionDefaults::from_stored("{}"),
            SessionDefaults::default()
        );
        assert_eq!(
            SessionDefaults::from_stored("not json"),
            SessionDefaults::default()
        );
    }
}
