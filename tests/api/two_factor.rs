//! TOTP enrollment, login with a second factor, backup codes, replay and lockout.

use serde_json::{json, Value};

use crate::helpers::{body, current_code, spawn_app, Store, USER_PASSWORD};
use crate::on_both_stores;

fn totp_invalid() -> Value {
    json!({
        "success": false,
        "error": "TOTP Invalid [totp-invalid]",
        "errorType": "totp-invalid",
        "details": {"method": "totp", "codeGenerated": false}
    })
}

fn totp_required() -> Value {
    json!({
        "success": false,
        "error": "TOTP Required [totp-required]",
        "errorType": "totp-required",
        "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]}
    })
}

async fn login_with_code(app: &crate::helpers::TestApp, code: Option<&str>) -> (u16, Value) {
    let mut request = json!({"user": "alice", "password": USER_PASSWORD});
    if let Some(code) = code {
        request["code"] = json!(code);
    }
    body(app.post_json("/api/v1/login", &request).await).await
}

on_both_stores!(
    enrollment_returns_secret_url_and_qr_code_then_backup_codes,
    enrollment_refuses_a_wrong_code_and_a_second_enrollment,
    confirming_without_enrolling_says_what_to_do,
    login_needs_the_code_once_totp_is_on,
    a_totp_code_is_accepted_once,
    a_backup_code_is_accepted_once,
    five_wrong_codes_lock_the_user_out,
    disabling_totp_needs_a_valid_code,
);

async fn enrollment_returns_secret_url_and_qr_code_then_backup_codes(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;

    let (status, enrollment) = body(
        app.post_as("/api/v1/users.2fa.enableTOTP", &session, &json!({}))
            .await,
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(enrollment["success"], true);
    let secret = enrollment["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits of base32");
    assert!(secret
        .bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    assert!(enrollment["url"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/sessiond:alice?"));
    assert!(enrollment["url"]
        .as_str()
        .unwrap()
        .contains(&format!("secret={secret}")));
    assert!(enrollment["qrcode"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));

    let raw = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    let (status, confirmed) = body(
        app.post_as(
            "/api/v1/users.2fa.validateTempToken",
            &session,
            &json!({"code": current_code(&raw, 0)}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(confirmed["success"], true);
    let codes = confirmed["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let (_, me) = body(app.get_as("/api/v1/me", &session).await).await;
    assert_eq!(me["services"]["totp"]["enabled"], true);
}

async fn enrollment_refuses_a_wrong_code_and_a_second_enrollment(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    app.post_as("/api/v1/users.2fa.enableTOTP", &session, &json!({}))
        .await;

    let (status, wrong) = body(
        app.post_as(
            "/api/v1/users.2fa.validateTempToken",
            &session,
            &json!({"code": "000000"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, wrong), (400, totp_invalid()));
    let (status, missing) = body(
        app.post_as("/api/v1/users.2fa.validateTempToken", &session, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(missing["errorType"], "invalid-params");

    app.enroll_totp(&session).await;
    let (status, again) = body(
        app.post_as("/api/v1/users.2fa.enableTOTP", &session, &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(again["errorType"], "error-totp-already-enabled");
}

async fn confirming_without_enrolling_says_what_to_do(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;

    let (status, response) = body(
        app.post_as(
            "/api/v1/users.2fa.validateTempToken",
            &session,
            &json!({"code": "123456"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(response["errorType"], "error-totp-not-started");
    assert!(response["error"].as_str().unwrap().contains("enableTOTP"));
}

async fn login_needs_the_code_once_totp_is_on(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    let (secret, _) = app.enroll_totp(&session).await;

    assert_eq!(login_with_code(&app, None).await, (400, totp_required()));
    assert_eq!(
        login_with_code(&app, Some("000000")).await,
        (400, totp_invalid())
    );
    assert_eq!(
        login_with_code(&app, Some("not-a-code")).await,
        (400, totp_invalid())
    );
    let (status, ok) = login_with_code(&app, Some(&current_code(&secret, 1))).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["status"], "success");

    // A wrong password with a code still gets the plain login failure.
    let (status, failed) = body(
        app.post_json(
            "/api/v1/login",
            &json!({"user": "alice", "password": "nope", "code": "123456"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(failed["error"], "Unauthorized");
}

async fn a_totp_code_is_accepted_once(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    let (secret, _) = app.enroll_totp(&session).await;
    // Enrollment used the current step; the next one is still fresh.
    let code = current_code(&secret, 1);

    assert_eq!(login_with_code(&app, Some(&code)).await.0, 200);
    assert_eq!(
        login_with_code(&app, Some(&code)).await,
        (400, totp_invalid()),
        "replay"
    );
    let earlier = current_code(&secret, 0);
    assert_eq!(
        login_with_code(&app, Some(&earlier)).await,
        (400, totp_invalid()),
        "a step before the last accepted one"
    );
}

async fn a_backup_code_is_accepted_once(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    let (_, backup_codes) = app.enroll_totp(&session).await;

    assert_eq!(login_with_code(&app, Some(&backup_codes[0])).await.0, 200);
    assert_eq!(
        login_with_code(&app, Some(&backup_codes[0])).await,
        (400, totp_invalid())
    );
    let shouted = backup_codes[1].to_uppercase().replace('-', "");
    assert_eq!(
        login_with_code(&app, Some(&shouted)).await.0,
        200,
        "case and dash do not matter"
    );
    let left = app.query_texts(
        "SELECT CAST(COUNT(*) AS TEXT) AS value FROM backup_codes WHERE used_at IS NULL",
    );
    assert_eq!(left, vec!["8"]);
}

async fn five_wrong_codes_lock_the_user_out(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    let (secret, _) = app.enroll_totp(&session).await;

    for attempt in 1..=5 {
        assert_eq!(
            login_with_code(&app, Some("000000")).await,
            (400, totp_invalid()),
            "attempt {attempt}"
        );
    }
    let response = app
        .post_json(
            "/api/v1/login",
            &json!({"user": "alice", "password": USER_PASSWORD, "code": current_code(&secret, 1)}),
        )
        .await;
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, locked) = body(response).await;

    assert_eq!(status, 400, "even a right code waits");
    assert_eq!(locked["errorType"], "totp-max-attempts");
    assert_eq!(
        locked["error"],
        "TOTP Maximum Attempts Reached [totp-max-attempts]"
    );
    assert!((1..=600).contains(&retry_after));
}

async fn disabling_totp_needs_a_valid_code(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let session = app.login("alice", USER_PASSWORD).await;
    let (secret, _) = app.enroll_totp(&session).await;

    let (status, wrong) = body(
        app.post_as(
            "/api/v1/users.2fa.disableTOTP",
            &session,
            &json!({"code": "000000"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, wrong), (400, totp_invalid()));

    let (status, ok) = body(
        app.post_as(
            "/api/v1/users.2fa.disableTOTP",
            &session,
            &json!({"code": current_code(&secret, 1)}),
        )
        .await,
    )
    .await;
    assert_eq!((status, ok), (200, json!({"success": true})));
    assert_eq!(
        login_with_code(&app, None).await.0,
        200,
        "no code needed any more"
    );
    let (status, again) = body(
        app.post_as(
            "/api/v1/users.2fa.disableTOTP",
            &session,
            &json!({"code": "123456"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(again["errorType"], "error-totp-not-enabled");
}
