//! The envelope around every action: action names, `requestId`, every
//! envelope error, oversized bodies and wrong property types.

use serde_json::{json, Value};

use super::{admin_token, api, api_raw, error, token_for, ACTIONS, BAD_CREDENTIALS, NO_SESSION};
use crate::helpers::{spawn_app, spawn_app_with, Store, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    action_names_ignore_case_and_api_fields_are_accepted,
    request_ids_are_echoed_exactly_as_given,
    every_envelope_error_has_its_code_and_message,
    oversized_bodies_get_an_envelope_not_a_dropped_connection,
    a_wrong_type_for_every_known_property_is_named_in_the_error,
);

async fn action_names_ignore_case_and_api_fields_are_accepted(store: Store) {
    let app = spawn_app(store).await;
    let token = admin_token(&app).await;

    for action in [
        "listSessions",
        "LISTSESSIONS",
        "listsessions",
        "ListSessions",
    ] {
        let reply = api(
            &app,
            &json!({"api": "admin", "apiVersion": "1.0", "action": action, "authToken": token}),
        )
        .await;
        assert_eq!(error(&reply), (0, ""), "{action}");
        assert_eq!(reply["result"]["sessions"].as_array().unwrap().len(), 1);
    }
}

async fn request_ids_are_echoed_exactly_as_given(store: Store) {
    let app = spawn_app(store).await;
    let ids = [
        json!("00000045"),
        json!(7),
        json!(-1.5),
        json!(true),
        json!(null),
        json!({"a": [1, {"b": null}]}),
        json!([1, "two"]),
        json!("x".repeat(1000)),
    ];
    for id in ids {
        let ok = api(&app, &json!({"requestId": id, "action": "pingSession"})).await;
        let failed = api(&app, &json!({"requestId": id, "action": "nope"})).await;
        assert_eq!(ok["requestId"], id);
        assert_eq!(failed["requestId"], id);
        assert_eq!(error(&ok).0, 0);
        assert_eq!(error(&failed).0, 34004);
    }
    let absent = api(&app, &json!({"action": "pingSession"})).await;
    assert_eq!(
        absent,
        json!({"result": {}, "requestId": null, "errorCode": 0, "errorMessage": ""})
    );
}

async fn every_envelope_error_has_its_code_and_message(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let properties =
        "requestId, api, action, params, apiVersion, debug, authToken, responseOptions";
    let raw_cases: Vec<(&[u8], i64, String)> = vec![
        (
            b"{",
            34001,
            "The request body is not valid JSON: EOF while parsing an object at line 1 column 1."
                .into(),
        ),
        (
            b"",
            34001,
            "The request body is not valid JSON: EOF while parsing a value at line 1 column 0."
                .into(),
        ),
        (
            br#"{"action":"pingSession","action":"deleteSession"}"#,
            34001,
            "The request body is not valid JSON: the key \"action\" appears twice in one object; \
             send each key once."
                .into(),
        ),
        (
            b"action=listSessions",
            34001,
            "The request body is not valid JSON: expected value at line 1 column 1.".into(),
        ),
        (
            b"[1]",
            34002,
            "The request body must be a JSON object; got an array.".into(),
        ),
        (
            b"\"listSessions\"",
            34002,
            "The request body must be a JSON object; got a string.".into(),
        ),
        (
            b"null",
            34002,
            "The request body must be a JSON object; got null.".into(),
        ),
        (
            b"{}",
            34003,
            format!("The request has no 'action'; set it to {ACTIONS}."),
        ),
    ];
    for (raw, code, message) in raw_cases {
        let (status, reply) = api_raw(&app, raw.to_vec()).await;
        assert_eq!(status, 200);
        assert_eq!(
            reply,
            json!({"result": {}, "requestId": null, "errorCode": code, "errorMessage": message}),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    let cases = [
        (json!({"action": null}), 34003, format!("The request has no 'action'; set it to {ACTIONS}.")),
        (json!({"action": "dance"}), 34004, format!("'dance' is not an action of this service; use {ACTIONS}.")),
        (json!({"action": "x".repeat(100)}), 34004, format!("'{}…' is not an action of this service; use {ACTIONS}.", "x".repeat(64))),
        (json!({"action": 5}), 34005, "'action' must be a string naming an action; got a number.".into()),
        (json!({"action": "pingSession", "actoin": 1}), 34005, format!("'actoin' is not a property of a request; the properties are {properties}.")),
        (json!({"action": "pingSession", "params": []}), 34005, "'params' must be an object; got an array of 0 entries.".into()),
        (json!({"action": "pingSession", "api": 1}), 34005, "'api' must be a string of 1 to 64 bytes; got a number.".into()),
        (json!({"action": "pingSession", "apiVersion": 1.0}), 34005, "'apiVersion' must be a string of 1 to 64 bytes; got a number.".into()),
        (json!({"action": "pingSession", "debug": "all"}), 34005, "'debug' must be \"none\", \"min\" or \"max\"; got a string of 3 bytes.".into()),
        (json!({"action": "pingSession", "authToken": 42}), 34005, "'authToken' must be a string; got a number.".into()),
        (json!({"action": "pingSession", "responseOptions": {"numberFormat": 1}}), 34005, "'responseOptions.numberFormat' must be one of \"number\", \"string\"; got a number.".into()),
        (json!({"action": "pingSession", "responseOptions": {"pretty": true}}), 34005, "'responseOptions.pretty' is not a response option; the options are binaryFormat, dataFormat, numberFormat and omit.".into()),
        (json!({"action": "pingSession", "params": {"authToken": "x"}}), 34005, "'authToken' is not a property of pingSession, which takes no params.".into()),
        (json!({"action": "listSessions"}), 34005, "'authToken' is required by listSessions; get one from createSession.".into()),
        (json!({"action": "deleteSession"}), 34005, "'authToken' is required by deleteSession; get one from createSession.".into()),
        (json!({"action": "listSessions", "authToken": "replaceWithAuthTokenFromCreateSession"}), 12031, NO_SESSION.into()),
        (json!({"action": "describeSessions", "authToken": ""}), 12031, NO_SESSION.into()),
        (json!({"action": "alterSession", "authToken": "x".repeat(300)}), 12031, NO_SESSION.into()),
        (json!({"action": "createSession", "params": {"username": "alice", "password": "wrong"}}), 34010, BAD_CREDENTIALS.into()),
        (json!({"action": "listSessions", "authToken": token, "params": {"usernameFilter": 1}}), 34005, "'usernameFilter' must be an array of at most 100 strings of 1 to 64 bytes each; got a number.".into()),
    ];
    for (request, code, message) in cases {
        let reply = api(&app, &request).await;
        assert_eq!(error(&reply), (code, message.as_str()), "{request}");
        assert_eq!(reply["result"], json!({}), "{request}");
    }
    // A dead token is reported before a bad param.
    let both = api(
        &app,
        &json!({"action": "listSessions", "authToken": "gone", "params": {"usernameFilter": 1}}),
    )
    .await;
    assert_eq!(error(&both), (12031, NO_SESSION));
}

async fn oversized_bodies_get_an_envelope_not_a_dropped_connection(store: Store) {
    let app = spawn_app_with(store, |s| s.max_body_bytes = 1024).await;
    let message = "The request body is larger than the limit of 1024 bytes.";

    for size in [1025, 64 * 1024, 4 * 1024 * 1024] {
        let request = json!({"requestId": 1, "action": "pingSession", "api": "x".repeat(size)});
        let (status, reply) = api_raw(&app, serde_json::to_vec(&request).unwrap()).await;
        assert_eq!(status, 200, "{size}");
        assert_eq!(
            reply,
            json!({"result": {}, "requestId": null, "errorCode": 34006, "errorMessage": message}),
            "{size}"
        );
    }
    // The connection is still good for the next request.
    let fine = api(&app, &json!({"action": "pingSession"})).await;
    assert_eq!(error(&fine), (0, ""));
}

/// Values of every JSON type but one, for wrong-type cases.
fn wrong_values(right: &Value) -> Vec<Value> {
    let all = [
        json!(null),
        json!(true),
        json!(17),
        json!(-2.5),
        json!("text"),
        json!([1, "a"]),
        json!({"k": "v"}),
    ];
    all.into_iter()
        .filter(|v| {
            !v.is_null()
                && std::mem::discriminant(v) != std::mem::discriminant(right)
                && !(v.is_number() && right.is_number())
        })
        .collect()
}

async fn a_wrong_type_for_every_known_property_is_named_in_the_error(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    // (action, property, a right value)
    let properties: Vec<(&str, &str, Value)> = vec![
        ("createSession", "username", json!("alice")),
        ("createSession", "password", json!("pw")),
        ("createSession", "twoFactorCode", json!("123456")),
        ("createSession", "description", json!("d")),
        ("createSession", "idleConnectionTimeoutSeconds", json!(60)),
        ("createSession", "permanentSession", json!(false)),
        ("createSession", "defaultApi", json!("db")),
        ("createSession", "defaultDebug", json!("max")),
        ("createSession", "defaultResponseOptions", json!({})),
        ("listSessions", "usernameFilter", json!([])),
        ("describeSessions", "authTokens", json!([])),
        ("alterSession", "description", json!("d")),
        ("alterSession", "idleConnectionTimeoutSeconds", json!(60)),
        ("alterSession", "permanentSession", json!(false)),
        ("alterSession", "defaultApi", json!("db")),
        ("alterSession", "defaultDebug", json!("max")),
        ("alterSession", "defaultResponseOptions", json!({})),
    ];
    let mut checked = 0;
    for (action, property, right) in properties {
        for wrong in wrong_values(&right) {
            let mut params = json!({"username": "alice", "password": USER_PASSWORD});
            if action != "createSession" {
                params = json!({});
            }
            params[property] = wrong.clone();
            let request = json!({"action": action, "authToken": token, "params": params});
            let reply = api(&app, &request).await;
            let (code, message) = error(&reply);
            assert_eq!(code, 34005, "{request}: {reply}");
            assert!(
                message.starts_with(&format!("'{property}")),
                "{request}: the message names the property: {message}"
            );
            assert!(message.contains(" must be "), "{message}");
            checked += 1;
        }
    }
    let envelope: Vec<(&str, Value)> = vec![
        ("api", json!("admin")),
        ("apiVersion", json!("1.0")),
        ("params", json!({})),
        ("debug", json!("max")),
        ("authToken", json!("t")),
        ("responseOptions", json!({})),
    ];
    for (property, right) in envelope {
        for wrong in wrong_values(&right) {
            let mut request = json!({"action": "pingSession"});
            request[property] = wrong;
            let reply = api(&app, &request).await;
            let (code, message) = error(&reply);
            assert_eq!(code, 34005, "{request}: {reply}");
            assert!(
                message.starts_with(&format!("'{property}' must be ")),
                "{message}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} cases");
}
