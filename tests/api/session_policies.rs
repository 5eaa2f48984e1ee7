//! Session policies and the event log: the per-user session limit under
//! parallel logins (one instance and two), new-device detection, and each
//! change recording its events exactly once, or not at all when it rolls
//! back.

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use serde_json::{json, Value};
use sessiond::config::{LimitPolicy, Settings};

use crate::helpers::{
    body, spawn_app_on_store, spawn_app_with, test_settings, Store, TestApp, TestDatabase, AGENTS,
    USER_PASSWORD,
};
use crate::on_both_stores;

on_both_stores!(
    fifty_parallel_logins_evict_down_to_the_limit,
    fifty_parallel_logins_past_the_limit_are_refused,
    the_json_action_api_keeps_the_limit_too,
    administrators_have_a_limit_of_their_own,
    a_device_not_used_within_the_window_is_new,
    each_change_records_its_events_once,
    a_change_that_rolls_back_records_no_event,
);

/// (type, sessionId, reason) of every event, oldest first.
fn events(app: &TestApp) -> Vec<(String, String, String)> {
    app.query_texts(
        "SELECT type || '|' || session_id || '|' || data AS value FROM session_events ORDER BY id",
    )
    .into_iter()
    .map(|row| {
        let mut parts = row.splitn(3, '|');
        let kind = parts.next().unwrap().to_owned();
        let session = parts.next().unwrap().to_owned();
        let data: Value = serde_json::from_str(parts.next().unwrap()).unwrap();
        let reason = data["reason"].as_str().unwrap_or_default().to_owned();
        (kind, session, reason)
    })
    .collect()
}

fn count_of(events: &[(String, String, String)], kind: &str) -> usize {
    events.iter().filter(|(k, _, _)| k == kind).count()
}

/// How the store keeps a token.
fn hash(token: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The user's sessions not ended, straight from the store.
fn active_sessions(app: &TestApp, username: &str) -> i64 {
    app.query_texts(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) AS value FROM sessions JOIN users ON users.id = sessions.user_id \
         WHERE users.username = '{username}' AND sessions.logout_at IS NULL"
    ))[0]
        .parse()
        .unwrap()
}

/// Fifty logins of one user at once, spread over `apps`; their statuses.
async fn fifty_logins(apps: &[&TestApp], username: &str) -> Vec<u16> {
    let mut logins = Vec::new();
    for i in 0..50 {
        let app = apps[i % apps.len()];
        let (client, url) = (app.client.clone(), app.url("/api/v1/login"));
        let body = json!({"user": username, "password": USER_PASSWORD});
        logins.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for login in logins {
        statuses.push(login.await.unwrap());
    }
    statuses
}

fn limited(policy: LimitPolicy) -> impl FnOnce(&mut Settings) {
    move |settings| {
        settings.max_sessions_per_user = 3;
        settings.session_limit_policy = policy;
        // Fifty logins at once are not an attack here: the failure limits
        // charge each attempt while its password is checked.
        settings.login_max_failures_per_ip = 1_000;
        settings.login_max_failures_per_user = 1_000;
    }
}

async fn fifty_parallel_logins_evict_down_to_the_limit(store: Store) {
    let app = spawn_app_with(store, limited(LimitPolicy::EvictOldest)).await;
    app.create_user("alice", false);
    let statuses = fifty_logins(&[&app], "alice").await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(active_sessions(&app, "alice"), 3);
    let events = events(&app);
    assert_eq!(count_of(&events, "session.started"), 50);
    let evicted = events
        .iter()
        .filter(|(kind, _, reason)| kind == "session.ended" && reason == "evicted")
        .count();
    assert_eq!(evicted, 47, "each eviction recorded once");
}

async fn fifty_parallel_logins_past_the_limit_are_refused(store: Store) {
    let app = spawn_app_with(store, limited(LimitPolicy::Refuse)).await;
    app.create_user("alice", false);
    let statuses = fifty_logins(&[&app], "alice").await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!((ok, refused), (3, 47), "{statuses:?}");
    assert_eq!(active_sessions(&app, "alice"), 3);
    let events = events(&app);
    assert_eq!(count_of(&events, "session.started"), 3);
    assert_eq!(count_of(&events, "session.ended"), 0);

    let refusal = app.login_raw("alice", USER_PASSWORD).await;
    let (status, answer) = body(refusal).await;
    assert_eq!(status, 403);
    assert_eq!(answer["errorType"], "error-session-limit", "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("log out of one"),
        "says what to do: {answer}"
    );
    // A refused login is not a failed one: the password was right.
    let (status, _) = body(app.login_raw("alice", USER_PASSWORD).await).await;
    assert_eq!(status, 403, "still refused, not throttled");
}

async fn the_json_action_api_keeps_the_limit_too(store: Store) {
    let app = spawn_app_with(store, limited(LimitPolicy::Refuse)).await;
    app.create_user("alice", false);
    for _ in 0..3 {
        app.login("alice", USER_PASSWORD).await;
    }
    let (status, reply) = body(
        app.post_json(
            "/api",
            &json!({"api": "admin", "action": "createSession",
                    "params": {"username": "alice", "password": USER_PASSWORD}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["errorCode"], 34014, "{reply}");
    assert!(reply["errorMessage"]
        .as_str()
        .unwrap()
        .contains("deleteSession"));
    assert_eq!(active_sessions(&app, "alice"), 3);
}

async fn administrators_have_a_limit_of_their_own(store: Store) {
    let app = spawn_app_with(store, |settings| {
        settings.max_sessions_per_user = 1;
        settings.max_sessions_per_admin = Some(0);
        settings.session_limit_policy = LimitPolicy::Refuse;
    })
    .await;
    for _ in 0..3 {
        app.login_admin().await;
    }
    app.create_user("alice", false);
    app.login("alice", USER_PASSWORD).await;
    let (status, _) = body(app.login_raw("alice", USER_PASSWORD).await).await;
    assert_eq!(status, 403, "a user past their limit of 1");
}

/// Postgres: two instances on one database share the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_keep_one_limit_under_parallel_logins() {
    for policy in [LimitPolicy::EvictOldest, LimitPolicy::Refuse] {
        let (mut settings, database) = test_settings(Store::Postgres);
        limited(policy)(&mut settings);
        let TestDatabase::Postgres { name } = &database else {
            unreachable!("a Postgres test database");
        };
        let name = name.clone();
        // Each instance below holds the database and drops it with it.
        std::mem::forget(database);
        let a = spawn_app_on_store(
            settings.clone(),
            TestDatabase::Postgres { name: name.clone() },
        )
        .await;
        let b = spawn_app_on_store(settings, TestDatabase::Postgres { name }).await;
        a.create_user("alice", false);
        let statuses = fifty_logins(&[&a, &b], "alice").await;
        let ok = statuses.iter().filter(|s| **s == 200).count();
        match policy {
            LimitPolicy::EvictOldest => assert_eq!(ok, 50, "{statuses:?}"),
            LimitPolicy::Refuse => assert_eq!(ok, 3, "{statuses:?}"),
        }
        assert_eq!(active_sessions(&a, "alice"), 3, "{policy:?}");
        let events = events(&a);
        assert_eq!(count_of(&events, "session.started"), ok);
        assert_eq!(count_of(&events, "session.ended"), ok - 3);
    }
}

async fn a_device_not_used_within_the_window_is_new(store: Store) {
    let app = spawn_app_with(store, |settings| settings.new_device_days = 30).await;
    app.create_user("alice", false);
    let [chrome, firefox, ..] = AGENTS;
    let first = app.login_from("alice", chrome).await;
    let again = app.login_from("alice", chrome).await;
    let other = app.login_from("alice", firefox).await;
    let (_, page) = body(app.get_as("/api/v1/sessions/list", &first).await).await;
    let marked: HashMap<String, bool> = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["sessionId"].as_str().unwrap().to_owned(),
                s["newDevice"].as_bool().unwrap(),
            )
        })
        .collect();
    let sessions_by_token = |session: &crate::helpers::Session| {
        app.query_texts(&format!(
            "SELECT session_id AS value FROM sessions WHERE token_hash = '{}'",
            hash(&session.token)
        ))[0]
            .clone()
    };
    assert!(marked[&sessions_by_token(&first)], "the first login is new");
    assert!(
        !marked[&sessions_by_token(&again)],
        "the same browser again"
    );
    assert!(marked[&sessions_by_token(&other)], "another browser");
    let (_, info) = body(
        app.get_as(
            &format!(
                "/api/v1/sessions/info?sessionId={}",
                sessions_by_token(&other)
            ),
            &other,
        )
        .await,
    )
    .await;
    assert_eq!(info["newDevice"], true, "{info}");
    let recorded = events(&app);
    assert_eq!(count_of(&recorded, "session.new_device"), 2);
    assert_eq!(count_of(&recorded, "session.started"), 3);

    // Turned off, nothing is new.
    let app = spawn_app_with(store, |settings| settings.new_device_days = 0).await;
    app.create_user("bob", false);
    let bob = app.login_from("bob", chrome).await;
    let (_, page) = body(app.get_as("/api/v1/sessions/list", &bob).await).await;
    assert_eq!(page["sessions"][0]["newDevice"], false);
    assert_eq!(count_of(&events(&app), "session.new_device"), 0);
}

async fn each_change_records_its_events_once(store: Store) {
    let app = spawn_app_with(store, |settings| settings.login_max_failures_per_user = 2).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.sessions_for("alice", 3).await;
    let bob = app.login("bob", USER_PASSWORD).await;
    let (admin, _) = app.admin_past_2fa().await;

    let others = app
        .post_as("/api/v1/sessions/logout.others", &alice[0], &json!({}))
        .await;
    assert_eq!(body(others).await.1["count"], 2);
    let logout = app.post_as("/api/v1/logout", &alice[0], &json!({})).await;
    assert_eq!(logout.status(), 200);
    let revoke_user = app
        .post_as(
            "/api/admin/v1/authenticated-sessions/revoke-user",
            &admin,
            &json!({"UserGuid": bob.user_id}),
        )
        .await;
    assert_eq!(body(revoke_user).await.1["Count"], 1);
    for _ in 0..3 {
        app.login_raw("bob", "wrong password").await;
    }
    app.login_raw("nobody", "wrong password").await;

    let events = events(&app);
    let reasons = |reason: &str| {
        events
            .iter()
            .filter(|(kind, _, r)| kind == "session.ended" && r == reason)
            .count()
    };
    // alice's three, bob's one, the admin's two (enrolling, then past 2FA).
    assert_eq!(count_of(&events, "session.started"), 6);
    assert_eq!(reasons("logout_others"), 2);
    assert_eq!(reasons("logout"), 1);
    assert_eq!(reasons("admin_revoke_user"), 1);
    assert_eq!(count_of(&events, "session.ended"), 4);
    assert_eq!(
        count_of(&events, "login.failed"),
        3,
        "bob twice, nobody once"
    );
    assert_eq!(count_of(&events, "login.throttled"), 1);
    assert_eq!(count_of(&events, "two_factor.enrolled"), 1);
    assert_eq!(
        count_of(&events, "two_factor.succeeded"),
        2,
        "enrolling and logging in"
    );
    // Ending an ended session again records nothing more.
    let ended_id = app.query_texts(&format!(
        "SELECT session_id AS value FROM sessions WHERE token_hash = '{}'",
        hash(&alice[1].token)
    ))[0]
        .clone();
    let again = app
        .post_as(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": ended_id}),
        )
        .await;
    assert_eq!(again.status(), 200, "ending is idempotent");
    let after = self::events(&app);
    assert_eq!(
        count_of(&after, "session.ended"),
        4,
        "an idempotent repeat is not a change"
    );
    // Every event has an id of its own and no secret.
    let ids = app.query_texts("SELECT event_id AS value FROM session_events");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    let all = app
        .query_texts("SELECT data AS value FROM session_events")
        .join("\n");
    for secret in [
        USER_PASSWORD,
        "wrong password",
        &alice[1].token,
        &admin.token,
    ] {
        assert!(!all.contains(secret), "{secret} in an event");
    }
}

async fn a_change_that_rolls_back_records_no_event(store: Store) {
    let app = spawn_app_with(store, |_| {}).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    // The store refuses to record an ended session: the logout must not
    // happen without its event.
    let refuse = match store {
        Store::Sqlite => {
            "CREATE TRIGGER refuse_ended BEFORE INSERT ON session_events \
             WHEN NEW.type = 'session.ended' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        }
        Store::Postgres => {
            "CREATE FUNCTION refuse_ended() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
             CREATE TRIGGER refuse_ended BEFORE INSERT ON session_events FOR EACH ROW \
             WHEN (NEW.type = 'session.ended') EXECUTE FUNCTION refuse_ended();"
        }
    };
    app.pool.get().unwrap().batch_execute(refuse).unwrap();
    let logout = app.post_as("/api/v1/logout", &alice, &json!({})).await;
    assert_eq!(logout.status(), 500);
    let me = app.get_as("/api/v1/me", &alice).await;
    assert_eq!(me.status(), 200, "the session is still active");
    assert_eq!(active_sessions(&app, "alice"), 1);
    assert_eq!(count_of(&events(&app), "session.ended"), 0);
}
