//! `debug` and `responseOptions`, and the session defaults for them.

use serde_json::{json, Value};

use super::{admin_token, api, create_as, error, keys, token_for, DESCRIPTION_COLUMNS, NO_SESSION};
use crate::helpers::{spawn_app, Store, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    debug_max_echoes_the_request_with_secrets_masked,
    number_format_string_writes_every_number_in_result_as_a_string,
    data_format_arrays_returns_rows_in_the_documented_column_order,
    omit_drops_the_named_top_level_properties,
    session_defaults_apply_where_the_request_says_nothing,
);

async fn debug_max_echoes_the_request_with_secrets_masked(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);

    let created = api(
        &app,
        &json!({"action": "createSession", "debug": "max",
                "params": {"username": "alice", "password": USER_PASSWORD}}),
    )
    .await;
    let token = created["result"]["authToken"].as_str().unwrap().to_owned();
    let described = api(
        &app,
        &json!({"requestId": "2", "api": "admin", "action": "describeSessions", "debug": "max",
                "authToken": token, "params": {"authTokens": [token]}}),
    )
    .await;
    let failed = api(
        &app,
        &json!({"requestId": "2", "api": "admin", "action": "listSessions", "debug": "max",
                "authToken": "invalidAuthtoken"}),
    )
    .await;
    let quiet = api(&app, &json!({"action": "listSessions", "authToken": token})).await;

    assert_eq!(
        created["debugInfo"],
        json!({"request": {"action": "createSession", "debug": "max",
                           "params": {"username": "alice", "password": "********"}}})
    );
    assert!(!created.to_string().contains(USER_PASSWORD));
    assert_eq!(
        described["debugInfo"],
        json!({"request": {"requestId": "2", "api": "admin", "action": "describeSessions", "debug": "max",
                           "authToken": "********", "params": {"authTokens": ["********"]}}})
    );
    // FairCom's failure example, with the token masked in the echo.
    assert_eq!(
        failed,
        json!({"result": {}, "requestId": "2", "errorCode": 12031, "errorMessage": NO_SESSION,
               "authToken": "invalidAuthtoken",
               "debugInfo": {"request": {"requestId": "2", "api": "admin", "action": "listSessions",
                                         "debug": "max", "authToken": "********"}}})
    );
    assert_eq!(quiet.get("debugInfo"), None);
}

async fn number_format_string_writes_every_number_in_result_as_a_string(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);

    let strings = api(
        &app,
        &json!({"action": "createSession", "responseOptions": {"numberFormat": "string"},
                "params": {"username": "alice", "password": USER_PASSWORD, "idleConnectionTimeoutSeconds": 600}}),
    )
    .await;
    let token = strings["result"]["authToken"].as_str().unwrap();
    let numbers = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token, "responseOptions": {"numberFormat": "number"}}),
    )
    .await;

    assert_eq!(strings["result"]["idleConnectionTimeoutSeconds"], "600");
    assert_eq!(strings["errorCode"], 0, "only result is affected");
    assert_eq!(
        numbers["result"]["sessions"][0]["idleConnectionTimeoutSeconds"],
        600
    );
}

async fn data_format_arrays_returns_rows_in_the_documented_column_order(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    let arrays = json!({"dataFormat": "arrays"});

    let listed = api(
        &app,
        &json!({"action": "listSessions", "authToken": token, "responseOptions": arrays}),
    )
    .await;
    let described = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token, "responseOptions": arrays}),
    )
    .await;
    let objects = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token}),
    )
    .await;

    assert_eq!(
        listed["result"],
        json!({"sessions": [["alice", "", token]]})
    );
    let object = &objects["result"]["sessions"][0];
    let expected: Vec<Value> = DESCRIPTION_COLUMNS
        .iter()
        .map(|c| object[*c].clone())
        .collect();
    assert_eq!(described["result"]["sessions"][0], Value::Array(expected));
}

async fn omit_drops_the_named_top_level_properties(store: Store) {
    let app = spawn_app(store).await;
    let token = admin_token(&app).await;

    let trimmed = api(
        &app,
        &json!({"requestId": 1, "action": "listSessions", "authToken": token, "debug": "max",
                "responseOptions": {"omit": ["result", "authToken", "debugInfo"]}}),
    )
    .await;
    let partly = api(
        &app,
        &json!({"action": "listSessions", "authToken": token, "responseOptions": {"omit": ["authToken"]}}),
    )
    .await;
    let refused = api(
        &app,
        &json!({"action": "listSessions", "authToken": token, "responseOptions": {"omit": ["errorCode"]}}),
    )
    .await;

    assert_eq!(
        trimmed,
        json!({"requestId": 1, "errorCode": 0, "errorMessage": ""})
    );
    assert_eq!(
        keys(&partly),
        ["result", "requestId", "errorCode", "errorMessage"]
    );
    assert_eq!(
        error(&refused),
        (34005, "'responseOptions.omit[0]' must be one of \"result\", \"authToken\", \"debugInfo\"; got a string of 9 bytes.")
    );
}

async fn session_defaults_apply_where_the_request_says_nothing(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let created = create_as(
        &app,
        "alice",
        json!({"defaultDebug": "max", "defaultResponseOptions": {"dataFormat": "arrays", "numberFormat": "string"}}),
    )
    .await;
    let token = created["result"]["authToken"].as_str().unwrap();

    let defaulted = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token}),
    )
    .await;
    let overridden = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token, "debug": "none",
                "responseOptions": {"dataFormat": "objects"}}),
    )
    .await;

    let row = &defaulted["result"]["sessions"][0];
    assert!(row.is_array(), "{defaulted}");
    assert_eq!(row[3], "3600", "numbers as strings by default");
    assert_eq!(defaulted["debugInfo"]["request"]["authToken"], "********");
    let row = &overridden["result"]["sessions"][0];
    assert!(row.is_object(), "{overridden}");
    assert_eq!(
        row["idleConnectionTimeoutSeconds"], "3600",
        "the other default still holds"
    );
    assert_eq!(overridden.get("debugInfo"), None);
}
