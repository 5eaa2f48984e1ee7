//! The JSON action API: `POST /api` (seed 000, FairCom's jsonAction protocol).
//!
//! One endpoint takes an envelope `{requestId?, api?, action, params?,
//! apiVersion?, debug?, authToken?, responseOptions?}` and answers HTTP 200
//! with `{result, requestId, errorCode, errorMessage, authToken?,
//! debugInfo?}`: whatever the body holds (bad JSON, a scalar, wrong types,
//! too many bytes), the client reads `errorCode`. Only a request that is not
//! `application/json` is answered 415 (with the same envelope), before its
//! body is read. The sessions are ordinary rows of `sessions`, shared with
//! the other two surfaces.

use actix_web::{post, web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::api::extract;
use crate::app::AppState;
use crate::auth::permissions::{has_permission, Permission};
use crate::db::{Conn, DbError};
use crate::domain::ended_by::EndedBy;
use crate::domain::password::MAX_PASSWORD_BYTES;
use crate::domain::token::AuthToken;
use crate::domain::{clock, username};
use crate::error::{Error, TwoFactorError};
use crate::service;
use crate::service::login::{self, Login, RuleBroken};
use crate::service::sessions::{SessionSpec, Target};
use crate::store::sessions::SessionChanges;
use crate::store::sessions::{self, Session};
use crate::store::users::User;

mod actions;
mod envelope;
mod error;
mod params;
mod reply;

use actions::*;
use envelope::*;
use error::*;
use params::*;
use reply::*;

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
pub(super) async fn handle(
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
                            if !sessions::extend(conn, &caller.session, &app.lifetime, now)? {
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
