//! `POST /api`: the JSON action API of the SPEC section, every action and
//! error code, the response options, and how its sessions meet the other
//! surfaces; one file per action or concern, the helpers they share here.

use chrono::NaiveDateTime;
use serde_json::{json, Value};
use sessiond::domain::token::AuthToken;

use crate::helpers::{body, TestApp, USER_PASSWORD};

mod alter;
mod create;
mod delete;
mod describe;
mod envelope;
mod envelope_fuzz;
mod list;
mod other_surfaces;
mod ping;
mod response_options;

const NO_SESSION: &str = "'authToken' does not match any existing session. Use a valid 'authToken' or use 'createSession' to create a valid 'authToken'.";
const BAD_CREDENTIALS: &str = "Invalid username or password.";
const ACTIONS: &str =
    "createSession, listSessions, describeSessions, alterSession, deleteSession or pingSession";

/// Sends a JSON body to `POST /api`; every reply must be HTTP 200 JSON.
async fn api(app: &TestApp, request: &Value) -> Value {
    let (status, reply) = body(app.post_json("/api", request).await).await;
    assert_eq!(status, 200, "{request}: {reply}");
    reply
}

/// Sends raw bytes to `POST /api`.
async fn api_raw(app: &TestApp, bytes: Vec<u8>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api"))
        .header("Content-Type", "application/json")
        .body(bytes)
        .send()
        .await
        .expect("request");
    body(response).await
}

/// createSession for `username`; returns the reply.
async fn create_as(app: &TestApp, username: &str, params: Value) -> Value {
    let mut params = params;
    params["username"] = json!(username);
    params["password"] = json!(USER_PASSWORD);
    api(app, &json!({"action": "createSession", "params": params})).await
}

/// A new session for `username` made through createSession; returns its token.
async fn token_for(app: &TestApp, username: &str) -> String {
    let reply = create_as(app, username, json!({})).await;
    assert_eq!(reply["errorCode"], 0, "{reply}");
    reply["result"]["authToken"].as_str().unwrap().to_owned()
}

fn admin_token_request(app: &TestApp) -> Value {
    json!({"action": "createSession", "params": {"username": "admin", "password": app.admin_password}})
}

async fn admin_token(app: &TestApp) -> String {
    let reply = api(app, &admin_token_request(app)).await;
    assert_eq!(reply["errorCode"], 0, "{reply}");
    reply["result"]["authToken"].as_str().unwrap().to_owned()
}

/// `(errorCode, errorMessage)` of a reply.
fn error(reply: &Value) -> (i64, &str) {
    (
        reply["errorCode"]
            .as_i64()
            .expect("errorCode is an integer"),
        reply["errorMessage"]
            .as_str()
            .expect("errorMessage is a string"),
    )
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn is_iso_millis(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == 24 && text.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

fn parse_time(value: &Value) -> NaiveDateTime {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .naive_utc()
}

fn hash(token: &str) -> String {
    AuthToken::parse(token).unwrap().hash().as_str().to_owned()
}

const DESCRIPTION_COLUMNS: [&str; 11] = [
    "authToken",
    "username",
    "description",
    "idleConnectionTimeoutSeconds",
    "permanentSession",
    "defaultApi",
    "defaultDebug",
    "defaultResponseOptions",
    "sessionStartTimestamp",
    "sessionLastAccessedTimestamp",
    "sessionExpirationTimestamp",
];
