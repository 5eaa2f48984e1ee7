//! `/api/v1/sessions/*`: every route, parameter and error of the SPEC
//! section, one file per operation; the helpers they share live here.

use serde_json::Value;

use crate::helpers::{body, Session, TestApp};

mod check_order;
mod cursor;
mod filter;
mod info;
mod list;
mod logout;
mod postgres_plans;
mod round_trips;
mod sort;
mod two_factor_guard;

const FORBIDDEN: &str = r#"{"success":false,"error":"User does not have the permissions required for this action [error-unauthorized]"}"#;
const NOT_FOUND: &str = r#"{"success":false,"error":"Session not found"}"#;
const NOT_LOGGED_IN: &str = r#"{"status":"error","message":"You must be logged in to do this."}"#;

fn parsed(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sessionId"].as_str().unwrap().to_owned())
        .collect()
}

async fn get(app: &TestApp, path: &str, session: &Session) -> (u16, Value) {
    body(app.get_as(path, session).await).await
}

fn is_iso_millis(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}
