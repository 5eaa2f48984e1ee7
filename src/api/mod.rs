//! The HTTP surfaces, one module each, and what they share: body and query
//! limits and their error answers.

pub mod admin;
pub mod body_deadline;
pub mod dashboard;
pub mod docs;
pub mod extract;
pub mod health;
pub mod json_action;
pub mod methods;
pub mod rocket_chat;
pub mod routes;
pub mod unique_keys;

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

use crate::error::Error;
use rocket_chat::error::RocketChatError;

/// Registers the documented surfaces: every route here lands in the OpenAPI
/// document through utoipa-actix-web.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig, max_body_bytes: usize) {
    cfg.app_data(json_config(max_body_bytes))
        .app_data(query_config())
        .configure(routes::api);
}

/// The operators' listener (`SESSIOND_METRICS_BIND`): metrics and probes.
pub fn configure_management(cfg: &mut web::ServiceConfig) {
    cfg.configure(routes::management);
}

/// The dashboard, and the fallback for paths nothing serves: a JSON 404.
pub fn configure_rest(cfg: &mut web::ServiceConfig) {
    cfg.configure(routes::pages);
}

/// Malformed JSON, a wrong content type and an oversized body each get a
/// 4xx that says what to fix.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |error, _req| RocketChatError(json_error(error, limit)).into())
}

pub fn json_error(error: JsonPayloadError, limit: usize) -> Error {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            Error::PayloadTooLarge { limit }
        }
        JsonPayloadError::Payload(e) if body_deadline::is_timeout(&e) => Error::RequestTimeout,
        JsonPayloadError::ContentType => Error::UnsupportedMediaType,
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            Error::InvalidParams(format!("Invalid request body: {e}"))
        }
        JsonPayloadError::Deserialize(e) => {
            Error::bad_request("error-invalid-json", format!("Malformed JSON body: {e}"))
        }
        other => Error::bad_request(
            "error-invalid-body",
            format!("Unreadable request body: {other}"),
        ),
    }
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|error, _req| RocketChatError(query_error(error)).into())
}

pub fn query_error(error: QueryPayloadError) -> Error {
    let message = match error {
        QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    Error::InvalidParams(message)
}

/// Reads and parses a JSON body inside the handler, after authentication,
/// so a caller without credentials gets 401 whatever the body holds.
pub async fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, Error> {
    if !is_json(req) {
        return Err(Error::UnsupportedMediaType);
    }
    if announced_over(req, limit) {
        return Err(Error::PayloadTooLarge { limit });
    }
    let body = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| Error::PayloadTooLarge { limit })?
        .map_err(|e| {
            if body_deadline::is_timeout_error(&e) {
                return Error::RequestTimeout;
            }
            Error::bad_request(
                "error-invalid-body",
                format!("Unreadable request body: {e}"),
            )
        })?;
    if let Some(key) = unique_keys::repeated_key(&body) {
        return Err(repeated(&key));
    }
    serde_json::from_slice(&body).map_err(|e| json_error(JsonPayloadError::Deserialize(e), limit))
}

/// A body that names a key twice in one object.
fn repeated(key: &str) -> Error {
    Error::bad_request(
        "error-invalid-json",
        format!(
            "Malformed JSON body: the key {key:?} appears twice in one object; send each key once"
        ),
    )
}

/// Whether the request's `Content-Length` already puts its body over
/// `limit`. Such a body is refused before any of it is read, rather than
/// after the client has sent it or the body deadline has passed.
pub fn announced_over(req: &HttpRequest, limit: usize) -> bool {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
}

/// Whether the request says its body is JSON. Endpoints that take a body
/// insist on it, so a cross-site form or a `text/plain` post (which a
/// browser sends without a preflight) cannot reach them.
pub fn is_json(req: &HttpRequest) -> bool {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json")
            && essence.contains('/'))
}

/// Query parameters as name/value pairs, checked against the names a route
/// accepts. Parsed inside the handler for the same reason as `json_body`.
pub fn query_pairs(req: &HttpRequest, allowed: &[&str]) -> Result<Vec<(String, String)>, Error> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(query_error)?
        .into_inner();
    for (i, (name, _)) in pairs.iter().enumerate() {
        if !allowed.contains(&name.as_str()) {
            return Err(Error::UnknownParam(name.clone()));
        }
        if pairs[..i].iter().any(|(earlier, _)| earlier == name) {
            return Err(Error::InvalidParams(format!("'{name}' must be given once")));
        }
    }
    Ok(pairs)
}

/// The value of one query parameter.
pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    methods::unrouted(&req)
}
