//! The JSON action API: `POST /api` (FairCom's jsonAction protocol for sessions).
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
use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::api::extract;
use crate::auth::permissions::{has_permission, Permission};
use crate::db::{Conn, DbError};
use crate::domain::token::AuthToken;
use crate::domain::{clock, username};
use crate::error::{Error, TwoFactorError};
use crate::service;
use crate::state::AppState;
use crate::store::sessions::{self, Session};
use crate::store::users::User;

mod actions;
mod envelope;
mod error;
mod params;
mod reply;
mod wire;

use actions::*;
use envelope::*;
use error::*;
use params::*;
use reply::*;
use wire::*;

/// The request envelope. Any body gets an envelope back; this is
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
    let read = if super::announced_over(&req, limit) {
        Err(ActionError::BodyTooLarge { limit })
    } else {
        read_envelope(payload, limit).await
    };
    let (reply, timed_out) = match read {
        Ok(body) => (run(&req, &state, body).await, false),
        Err(error) => {
            let timed_out = matches!(error, ActionError::BodyTimeout);
            (Reply::failure(error), timed_out)
        }
    };
    let mut response = HttpResponse::Ok();
    if timed_out {
        // The rest of the body may still come: this connection is done.
        response.force_close();
    }
    response.json(reply.into_json())
}

/// The envelope for `/api` asked with another method than POST (`errorCode`
/// 34009), which is answered with HTTP 405.
pub fn method_not_allowed(message: String) -> Value {
    Reply::failure(ActionError::MethodNotAllowed(message)).into_json()
}

/// The body as a JSON object, or why it is not one.
async fn read_envelope(
    payload: web::Payload,
    limit: usize,
) -> Result<Map<String, Value>, ActionError> {
    let bytes = match payload.to_bytes_limited(limit).await {
        Err(_) => return Err(ActionError::BodyTooLarge { limit }),
        Ok(Err(error)) if super::body_deadline::is_timeout_error(&error) => {
            return Err(ActionError::BodyTimeout)
        }
        Ok(Err(error)) => {
            return Err(ActionError::InvalidJson(format!(
                "the body could not be read ({error})"
            )))
        }
        Ok(Ok(bytes)) => bytes,
    };
    if let Some(key) = super::unique_keys::repeated_key(&bytes) {
        return Err(ActionError::InvalidJson(format!(
            "the key {key:?} appears twice in one object; send each key once"
        )));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Err(error) => Err(ActionError::InvalidJson(error.to_string())),
        Ok(Value::Object(body)) => Ok(body),
        Ok(other) => Err(ActionError::NotAnObject(kind_of(&other))),
    }
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

/// Hands the envelope to its action.
async fn perform(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    envelope: &Envelope,
) -> Result<Done, ActionError> {
    let token = Presented::from_envelope(envelope)?;
    let params = Params {
        map: &envelope.params,
    };
    let arrays = envelope.options.arrays;
    match envelope.action {
        Action::CreateSession => actions::create::perform(req, state, &params).await,
        Action::ListSessions => actions::list::perform(state, token, arrays, &params).await,
        Action::DescribeSessions => actions::describe::perform(state, token, arrays, &params).await,
        Action::AlterSession => actions::alter::perform(state, token, arrays, &params).await,
        Action::DeleteSession => actions::delete::perform(state, token, &params).await,
        Action::PingSession => actions::ping::perform(state, token, arrays, &params).await,
    }
}

#[cfg(test)]
mod tests;
