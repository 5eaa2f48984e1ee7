//! `list` and `list.all`: the page shapes, paging, and the everyone total.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{get, ids, is_iso_millis};
use crate::helpers::{body, spawn_app, Session, Store, TestApp, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    list_shows_the_callers_active_sessions_in_rocket_chats_shape,
    list_all_shows_everyones_sessions_with_their_user,
    paging_follows_the_count_and_offset_rules,
    bad_paging_values_are_refused,
    the_everyone_total_follows_logins_logouts_expiry_and_the_sweep,
    the_one_statement_own_page_matches_the_ordinary_one,
);

async fn list_shows_the_callers_active_sessions_in_rocket_chats_shape(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.sessions_for("alice", 3).await;
    app.sessions_for("bob", 2).await;
    app.post_as("/api/v1/logout", &alice[2], &json!({})).await;

    let (status, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;

    assert_eq!(status, 200);
    assert_eq!(page["total"], 2);
    assert_eq!(
        page["count"], 50,
        "the page size applied, as Rocket.Chat answers"
    );
    assert_eq!(page["offset"], 0);
    assert_eq!(page["success"], true);
    assert_eq!(page["nextCursor"], Value::Null);
    let sessions = page["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let keys: Vec<&str> = sessions[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "sessionId",
            "userId",
            "device",
            "host",
            "ip",
            "loginAt",
            "newDevice",
            "_id",
            "current"
        ]
    );
    for session in sessions {
        assert_eq!(session["userId"], alice[0].user_id.as_str());
        assert_eq!(session["_id"], session["sessionId"]);
        assert!(is_iso_millis(&session["loginAt"]), "{}", session["loginAt"]);
        assert_eq!(session["ip"], "127.0.0.1");
    }
    // Newest first: the second login is listed first.
    assert_eq!(
        sessions[0]["device"],
        json!({
            "type": "browser", "name": "Firefox", "longVersion": "112.0",
            "os": {"name": "Windows", "version": "10"}, "version": "112.0"
        })
    );
    assert_eq!(
        sessions[1]["device"],
        json!({
            "type": "browser", "name": "Chrome", "longVersion": "113.0.0.0",
            "os": {"name": "Windows", "version": "10"}, "version": "113.0.0"
        })
    );
    let current: Vec<bool> = sessions
        .iter()
        .map(|s| s["current"].as_bool().unwrap())
        .collect();
    assert_eq!(current, [false, true], "the caller is the first login");
}

async fn list_all_shows_everyones_sessions_with_their_user(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    app.sessions_for("alice", 2).await;
    app.sessions_for("bob", 1).await;
    let (admin, _) = app.admin_past_2fa().await;

    let (status, page) = get(&app, "/api/v1/sessions/list.all", &admin).await;

    assert_eq!(status, 200, "{page}");
    // alice 2, bob 1, and the admin's two logins (enrollment and 2FA login).
    assert_eq!(page["total"], 5);
    let first = &page["sessions"][0];
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "sessionId",
            "userId",
            "device",
            "host",
            "ip",
            "loginAt",
            "newDevice",
            "_user",
            "_id"
        ]
    );
    let users: HashSet<String> = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["_user"]["username"].as_str().unwrap(),
                s["_user"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        users,
        HashSet::from([
            "alice/alice name".into(),
            "bob/bob name".into(),
            "admin/Administrator".into()
        ])
    );
}

async fn paging_follows_the_count_and_offset_rules(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 5).await;
    let (_, everything) = get(&app, "/api/v1/sessions/list?count=100", &alice[0]).await;
    let all = ids(&everything);
    assert_eq!(all.len(), 5);

    let cases = [
        ("count=2", 2, 0, 2),
        ("count=2&offset=2", 2, 2, 2),
        ("count=2&offset=4", 2, 4, 1),
        ("count=0", 50, 0, 5),
        ("count=101", 100, 0, 5),
        ("offset=5", 50, 5, 0),
        ("offset=1000", 50, 1000, 0),
    ];
    for (query, count, offset, returned) in cases {
        let (status, page) = get(&app, &format!("/api/v1/sessions/list?{query}"), &alice[0]).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(page["count"], count, "{query}");
        assert_eq!(page["offset"], offset, "{query}");
        assert_eq!(page["total"], 5, "{query}: total counts every match");
        let page_ids = ids(&page);
        assert_eq!(page_ids.len(), returned, "{query}");
        let start = (offset as usize).min(5);
        assert_eq!(page_ids, all[start..start + returned], "{query}");
    }
}

async fn bad_paging_values_are_refused(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;

    for query in [
        "count=-1",
        "count=abc",
        "count=1.5",
        "offset=-1",
        "offset=x",
        "count=",
        "offset=99999999999999999999",
    ] {
        let (status, error) = get(&app, &format!("/api/v1/sessions/list?{query}"), &alice).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(error["errorType"], "invalid-params", "{query}");
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("must be a non-negative integer"),
            "{query}: {error}"
        );
    }
}

async fn the_everyone_total_follows_logins_logouts_expiry_and_the_sweep(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let (admin, _) = app.admin_past_2fa().await;
    // The admin's two logins (enrollment, then with the code).
    assert_eq!(everyone_total(&app, &admin).await, 2);

    let alice = app.sessions_for("alice", 3).await;
    assert_eq!(everyone_total(&app, &admin).await, 5);
    app.post_as("/api/v1/logout", &alice[0], &json!({})).await;
    assert_eq!(everyone_total(&app, &admin).await, 4);
    app.post_as("/api/v1/sessions/logout.others", &alice[1], &json!({}))
        .await;
    assert_eq!(everyone_total(&app, &admin).await, 3);

    // Expired but not yet swept: not active, so not counted.
    app.query_texts(&format!(
        "UPDATE sessions SET expires_at = '2000-01-01 00:00:00' WHERE token_hash = '{}' RETURNING session_id AS value",
        {
            use base64::Engine;
            use sha2::Digest;
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(alice[1].token.as_bytes()))
        }
    ));
    assert_eq!(everyone_total(&app, &admin).await, 2);
    // The sweep ends it; the total stays right.
    let mut settings = sessiond::config::Settings::defaults();
    settings.retention_seconds = 86_400;
    let mut conn = app.pool.get().unwrap();
    let (ended, _) = sessiond::app::sweep(
        &mut conn,
        &settings,
        &sessiond::telemetry::metrics::Metrics::unexported(),
    )
    .unwrap();
    assert_eq!(ended, 1);
    assert_eq!(everyone_total(&app, &admin).await, 2);
    // The same count as scanning every session.
    let scanned = app.query_texts(
        "SELECT CAST(COUNT(*) AS TEXT) AS value FROM sessions WHERE logout_at IS NULL AND expires_at > CURRENT_TIMESTAMP",
    );
    assert_eq!(scanned, vec!["2"]);
}

async fn everyone_total(app: &TestApp, admin: &Session) -> i64 {
    let (status, page) = body(app.get_as("/api/v1/sessions/list.all?count=1", admin).await).await;
    assert_eq!(status, 200, "{page}");
    page["total"].as_i64().unwrap()
}

/// The hot list's one statement finds the caller and the same page and
/// total as the ordinary three, and finds nothing for a wrong token, an
/// ended session or a page past the end.
async fn the_one_statement_own_page_matches_the_ordinary_one(store: Store) {
    use sessiond::domain::listing::{Scope, Sort};
    use sessiond::domain::token::AuthToken;
    use sessiond::store::sessions::fused::own_page;
    use sessiond::store::sessions::page::{page, ListRequest};

    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.sessions_for("alice", 5).await;
    app.sessions_for("bob", 2).await;
    app.post_as("/api/v1/logout", &alice[4], &json!({})).await;

    let mut conn = app.pool.get().unwrap();
    let now = sessiond::domain::clock::now();
    let hash = AuthToken::parse(&alice[0].token).unwrap().hash();
    let alice_pk = user_pk(&app, "alice");
    let mut callers = HashSet::new();
    let mut all_ids = HashSet::new();
    for raw_sort in [
        None,
        Some(r#"{"loginAt":1}"#),
        Some(r#"{"device.os.name":-1}"#),
    ] {
        let sort = Sort::parse(raw_sort, Scope::Own).unwrap();
        for (offset, limit) in [(0, 50), (0, 2), (2, 2), (3, 2)] {
            let (caller, fused) = own_page(
                &mut conn,
                &alice[0].user_id,
                &hash,
                &sort,
                offset,
                limit,
                now,
            )
            .unwrap()
            .expect("the caller and a page");
            callers.insert(caller.id);
            let request = ListRequest {
                owner: Some(alice_pk),
                filter: None,
                filter_matches_users: false,
                sort: &sort,
                offset,
                limit,
                after: None,
                filter_budget: std::time::Duration::from_secs(2),
            };
            let ordinary = page(&mut conn, &request, now).unwrap();
            let ids = |rows: &[sessiond::store::sessions::page::ListedSession]| {
                rows.iter().map(|r| r.session.id).collect::<Vec<_>>()
            };
            assert_eq!(
                ids(&fused.rows),
                ids(&ordinary.rows),
                "{raw_sort:?} {offset} {limit}"
            );
            assert_eq!(fused.total, 4);
            all_ids.extend(ids(&fused.rows));
            assert_eq!(fused.total, ordinary.total);
            assert_eq!(fused.more, ordinary.more, "{raw_sort:?} {offset} {limit}");
        }
    }
    // One caller, one of alice's four active sessions.
    assert_eq!(callers.len(), 1);
    assert_eq!(all_ids.len(), 4);
    assert!(all_ids.is_superset(&callers));
    let sort = Sort::parse(None, Scope::Own).unwrap();
    let ended = AuthToken::parse(&alice[4].token).unwrap().hash();
    let wrong = AuthToken::generate().hash();
    for (guid, hash, offset) in [
        (alice[0].user_id.as_str(), &wrong, 0),
        (alice[0].user_id.as_str(), &ended, 0),
        ("someone-else", &hash, 0),
        (alice[0].user_id.as_str(), &hash, 10),
    ] {
        let found = own_page(&mut conn, guid, hash, &sort, offset, 50, now).unwrap();
        assert!(found.is_none(), "{guid} {offset}");
    }
}

fn user_pk(app: &TestApp, username: &str) -> i64 {
    app.query_texts(&format!(
        "SELECT CAST(id AS TEXT) AS value FROM users WHERE username = '{username}'"
    ))[0]
        .parse()
        .unwrap()
}
