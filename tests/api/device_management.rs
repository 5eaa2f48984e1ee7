//! `/api/v1/sessions/*`: every route, parameter and error of the SPEC section.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{
    body, current_code, spawn_app, spawn_app_on_icu_locale, Session, Store, TestApp, USER_PASSWORD,
};
use crate::on_both_stores;

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

on_both_stores!(
    list_shows_the_callers_active_sessions_in_the_seed_shape,
    list_all_shows_everyones_sessions_with_their_user,
    paging_follows_the_count_and_offset_rules,
    bad_paging_values_are_refused,
    every_sort_key_in_both_directions_pages_without_overlap_or_gap,
    bad_sorts_get_the_exact_error_bodies,
    filters_are_case_insensitive_unanchored_regexes,
    bad_filters_are_refused_with_the_reason,
    list_all_filters_also_match_username_and_name,
    unknown_and_missing_parameters_get_invalid_params,
    cursor_paging_covers_every_session_exactly_once,
    altered_or_misused_cursors_are_refused,
    info_returns_the_callers_own_session_in_full,
    info_never_shows_another_users_session,
    info_admin_reads_any_session_behind_2fa,
    logout_me_ends_the_session_and_is_idempotent,
    logout_me_cannot_end_another_users_session,
    admin_logout_ends_any_session_behind_2fa,
    logout_others_keeps_only_the_current_session,
    admin_routes_check_permission_before_parameters_before_2fa,
    the_second_factor_guard_enforces_every_rule,
    a_user_without_totp_is_told_how_to_enroll,
    no_request_succeeds_after_logout_returns,
    authentication_is_checked_before_parameters,
);

async fn list_shows_the_callers_active_sessions_in_the_seed_shape(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.sessions_for("alice", 3).await;
    app.sessions_for("bob", 2).await;
    app.post_as("/api/v1/logout", &alice[2], &json!({})).await;

    let (status, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;

    assert_eq!(status, 200);
    assert_eq!(page["total"], 2);
    assert_eq!(page["count"], 50, "the page size applied, as in the seed");
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

/// The sort key's value in a list item, for checking the order.
fn sort_value(item: &Value, key: &str) -> String {
    match key {
        "loginAt" => item["loginAt"].as_str().unwrap().to_owned(),
        "device.name" => item["device"]["name"].as_str().unwrap().to_owned(),
        "device.os.name" => item["device"]["os"]["name"].as_str().unwrap().to_owned(),
        "device.os.version" => item["device"]["os"]["version"].as_str().unwrap().to_owned(),
        "_user.username" => item["_user"]["username"].as_str().unwrap().to_owned(),
        "_user.name" => item["_user"]["name"].as_str().unwrap().to_owned(),
        _ => unreachable!(),
    }
}

async fn every_sort_key_in_both_directions_pages_without_overlap_or_gap(store: Store) {
    sorts_page_without_overlap_or_gap(spawn_app(store).await).await;
}

/// Text sorts read the same whatever the database's locale: byte order, as
/// on SQLite (an `en-US` collation would put "iPhone" before "Linux").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_sorts_are_byte_order_on_a_database_with_a_language_locale() {
    sorts_page_without_overlap_or_gap(spawn_app_on_icu_locale("en-US").await).await;
}

async fn sorts_page_without_overlap_or_gap(app: TestApp) {
    for user in ["ann", "bea", "cid"] {
        app.create_user(user, false);
        app.sessions_for(user, 4).await;
    }
    let (admin, _) = app.admin_past_2fa().await;
    let (_, everything) = get(&app, "/api/v1/sessions/list.all?count=100", &admin).await;
    let total = everything["total"].as_u64().unwrap() as usize;
    assert_eq!(total, 14);
    let all: HashSet<String> = ids(&everything).into_iter().collect();

    let keys = [
        "loginAt",
        "device.name",
        "device.os.name",
        "device.os.version",
        "_user.username",
        "_user.name",
    ];
    for key in keys {
        for direction in [1, -1] {
            let sort = json!({ key: direction }).to_string();
            let mut seen = Vec::new();
            let mut values = Vec::new();
            for offset in (0..total).step_by(3) {
                let (status, page) = body(
                    app.client
                        .get(app.url("/api/v1/sessions/list.all"))
                        .headers(admin.headers())
                        .query(&[
                            ("sort", sort.as_str()),
                            ("count", "3"),
                            ("offset", &offset.to_string()),
                        ])
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(status, 200, "{sort}: {page}");
                for item in page["sessions"].as_array().unwrap() {
                    values.push(sort_value(item, key));
                }
                seen.extend(ids(&page));
            }
            assert_eq!(seen.len(), total, "{sort}: no page overlaps or skips");
            assert_eq!(
                seen.iter().cloned().collect::<HashSet<_>>(),
                all,
                "{sort}: every session once"
            );
            let mut expected = values.clone();
            expected.sort();
            if direction == -1 {
                expected.reverse();
            }
            assert_eq!(values, expected, "{sort}: sorted before paging");
        }
    }
}

async fn bad_sorts_get_the_exact_error_bodies(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;

    for raw in ["notjson", "[1]", r#"{"loginAt":2}"#, r#"{"loginAt":"asc"}"#] {
        let (status, error) = body(
            app.client
                .get(app.url("/api/v1/sessions/list"))
                .headers(alice.headers())
                .query(&[("sort", raw)])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{raw}");
        assert_eq!(
            error,
            json!({
                "success": false,
                "error": format!("Invalid sort parameter provided: \"{raw}\" [error-invalid-sort]"),
                "errorType": "error-invalid-sort"
            }),
            "{raw}"
        );
    }
    for raw in [
        r#"{"value":1}"#,
        r#"{"_user.username":1}"#,
        r#"{"loginAt":1,"sessionId":1}"#,
    ] {
        let (status, error) = body(
            app.client
                .get(app.url("/api/v1/sessions/list"))
                .headers(alice.headers())
                .query(&[("sort", raw)])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, error),
            (
                400,
                json!({"success": false, "error": "error-invalid-sort-keys"})
            ),
            "{raw}"
        );
    }
}

async fn filtered(app: &TestApp, path: &str, session: &Session, filter: &str) -> (u16, Value) {
    body(
        app.client
            .get(app.url(path))
            .headers(session.headers())
            .query(&[("filter", filter)])
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn filters_are_case_insensitive_unanchored_regexes(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    // Chrome/Windows, Firefox/Windows, Chrome/Android, Safari/iPhone, Chrome/Mac, Firefox/Linux
    let alice = app.sessions_for("alice", 6).await;

    let cases = [
        ("windows", 2),
        ("WINDOWS", 2),
        ("android|iphone", 2),
        ("^chrome", 3),
        ("^windows", 0),
        ("^(firefox|safari)", 3),
        ("mobile", 2),
        ("browser", 4),
        ("fire.ox", 2),
        ("x{3}_", 0),
        ("", 6),
    ];
    for (filter, expected) in cases {
        let (status, page) = filtered(&app, "/api/v1/sessions/list", &alice[0], filter).await;
        assert_eq!(status, 200, "{filter}: {page}");
        assert_eq!(page["total"], expected, "{filter}");
        assert_eq!(ids(&page).len(), expected, "{filter}");
    }
    // The session id and user id are part of the search term too.
    let (_, page) = get(&app, "/api/v1/sessions/list?count=1", &alice[0]).await;
    let one = page["sessions"][0]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, by_id) = filtered(&app, "/api/v1/sessions/list", &alice[0], &one).await;
    assert_eq!(ids(&by_id), vec![one]);
}

async fn bad_filters_are_refused_with_the_reason(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;

    let long = "a".repeat(257);
    let cases = [
        ("(unclosed", "unclosed group"),
        ("a{", "at byte"),
        (long.as_str(), "at most 256"),
        ("\\d+", "`\\d`"),
        ("\\bword", "`\\b`"),
        ("(?i)chrome", "`(?i)`"),
        ("[[:alpha:]]", "`[:alpha:]`"),
        ("a{300}", "`{300}`"),
        ("é", "`é`"),
    ];
    for (filter, reason) in cases {
        let (status, error) = filtered(&app, "/api/v1/sessions/list", &alice, filter).await;
        assert_eq!(status, 400, "{filter}");
        assert_eq!(error["success"], false);
        assert_eq!(error["errorType"], "error-invalid-filter", "{filter}");
        let message = error["error"].as_str().unwrap();
        assert!(message.starts_with("Invalid filter: "), "{message}");
        assert!(message.ends_with("[error-invalid-filter]"), "{message}");
        assert!(message.contains(reason), "{filter}: {message}");
    }
    let (status, _) = filtered(&app, "/api/v1/sessions/list", &alice, &"a".repeat(256)).await;
    assert_eq!(status, 200, "256 bytes is allowed");
}

async fn list_all_filters_also_match_username_and_name(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("funke.olasupo", false);
    app.create_user("rodriq", false);
    app.sessions_for("funke.olasupo", 2).await;
    app.sessions_for("rodriq", 1).await;
    let (admin, _) = app.admin_past_2fa().await;

    let (_, by_username) = filtered(&app, "/api/v1/sessions/list.all", &admin, "funke").await;
    assert_eq!(by_username["total"], 2);
    let (_, by_name) = filtered(&app, "/api/v1/sessions/list.all", &admin, "^rodriq name$").await;
    assert_eq!(by_name["total"], 1, "the name is matched on its own");
    let (_, either) = filtered(&app, "/api/v1/sessions/list.all", &admin, "FUNKE|rodriq").await;
    assert_eq!(either["total"], 3);
    // On a user's own list, usernames are not searched.
    let funke = app.login("funke.olasupo", USER_PASSWORD).await;
    let (_, own) = filtered(&app, "/api/v1/sessions/list", &funke, "funke").await;
    assert_eq!(own["total"], 0);
}

async fn unknown_and_missing_parameters_get_invalid_params(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;

    let (status, unknown) = get(&app, "/api/v1/sessions/list?foo=1", &alice).await;
    assert_eq!(status, 400);
    assert_eq!(
        unknown,
        json!({
            "success": false,
            "error": "must NOT have additional properties [invalid-params]",
            "errorType": "invalid-params",
            "details": {"additionalProperty": "foo"}
        })
    );
    let (status, _) = get(&app, "/api/v1/sessions/info?sessionId=x&extra=1", &alice).await;
    assert_eq!(status, 400);
    let (status, missing) = get(&app, "/api/v1/sessions/info", &alice).await;
    assert_eq!(status, 400);
    assert_eq!(
        missing,
        json!({
            "success": false,
            "error": "must have required property 'sessionId' [invalid-params]",
            "errorType": "invalid-params"
        })
    );
    let (status, repeated) = get(&app, "/api/v1/sessions/list?count=1&count=2", &alice).await;
    assert_eq!(status, 400);
    assert_eq!(repeated["errorType"], "invalid-params");
}

async fn page_by_cursor(
    app: &TestApp,
    path: &str,
    session: &Session,
    sort: &str,
    count: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut query = vec![("sort", sort.to_owned()), ("count", count.to_owned())];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let (status, page) = body(
            app.client
                .get(app.url(path))
                .headers(session.headers())
                .query(&query)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seen,
        }
    }
    panic!("cursor paging did not end");
}

async fn cursor_paging_covers_every_session_exactly_once(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("ann", false);
    app.create_user("bea", false);
    app.sessions_for("ann", 7).await;
    app.sessions_for("bea", 4).await;
    let (admin, _) = app.admin_past_2fa().await;
    let (_, everything) = get(&app, "/api/v1/sessions/list.all?count=100", &admin).await;
    let all: Vec<String> = ids(&everything);

    for sort in [
        r#"{"loginAt":-1}"#,
        r#"{"loginAt":1}"#,
        r#"{"device.name":1,"loginAt":-1}"#,
        r#"{"device.os.name":-1,"_user.username":1}"#,
        r#"{"_user.name":-1}"#,
    ] {
        let seen = page_by_cursor(&app, "/api/v1/sessions/list.all", &admin, sort, "2").await;
        assert_eq!(seen.len(), all.len(), "{sort}: {seen:?}");
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            all.len(),
            "{sort}: no repeats"
        );
        let (_, one_page) = body(
            app.client
                .get(app.url("/api/v1/sessions/list.all"))
                .headers(admin.headers())
                .query(&[("sort", sort), ("count", "100")])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            seen,
            ids(&one_page),
            "{sort}: the same order as one big page"
        );
    }
    let ann = app.login("ann", USER_PASSWORD).await;
    let own = page_by_cursor(
        &app,
        "/api/v1/sessions/list",
        &ann,
        r#"{"loginAt":-1}"#,
        "3",
    )
    .await;
    assert_eq!(own.len(), 8);
}

async fn altered_or_misused_cursors_are_refused(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 3).await;
    let (_, page) = get(&app, "/api/v1/sessions/list?count=1", &alice[0]).await;
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();

    let mut altered = cursor.clone().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for (query, reason) in [
        (format!("cursor={altered}"), "altered"),
        ("cursor=not-a-cursor".to_owned(), "altered"),
        (
            format!("cursor={cursor}&sort=%7B%22loginAt%22%3A1%7D"),
            "another list, sort or filter",
        ),
        (
            format!("cursor={cursor}&filter=chrome"),
            "another list, sort or filter",
        ),
    ] {
        let (status, error) = get(&app, &format!("/api/v1/sessions/list?{query}"), &alice[0]).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(error["errorType"], "error-invalid-cursor");
        assert!(error["error"].as_str().unwrap().contains(reason), "{error}");
    }
    let (status, error) = get(
        &app,
        &format!("/api/v1/sessions/list?cursor={cursor}&offset=1"),
        &alice[0],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["errorType"], "invalid-params");
    let (status, next) = get(
        &app,
        &format!("/api/v1/sessions/list?count=1&cursor={cursor}"),
        &alice[0],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&next).len(), 1);
    assert_ne!(ids(&next), ids(&page));
}

async fn info_returns_the_callers_own_session_in_full(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 2).await;
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    let current = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    let session_id = current["sessionId"].as_str().unwrap();

    let (status, info) = get(
        &app,
        &format!("/api/v1/sessions/info?sessionId={session_id}"),
        &alice[0],
    )
    .await;

    assert_eq!(status, 200, "{info}");
    let keys: Vec<&str> = info
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "_id",
            "type",
            "sessionId",
            "instanceId",
            "loginToken",
            "ip",
            "host",
            "device",
            "userId",
            "roles",
            "mostImportantRole",
            "loginAt",
            "day",
            "month",
            "year",
            "searchTerm",
            "createdAt",
            "_updatedAt",
            "lastActivityAt",
            "success"
        ]
    );
    assert_eq!(info["type"], "session");
    assert_eq!(info["sessionId"], session_id);
    use base64::Engine;
    use sha2::Digest;
    let hashed = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(alice[0].token.as_bytes()));
    assert_eq!(
        info["loginToken"], hashed,
        "the stored hash, never the token"
    );
    assert_eq!(info["roles"], json!(["user"]));
    assert_eq!(info["mostImportantRole"], "user");
    assert_eq!(
        info["searchTerm"],
        format!("ChromebrowserWindows{session_id}{}", alice[0].user_id)
    );
    let login_at = info["loginAt"].as_str().unwrap();
    assert!(is_iso_millis(&info["loginAt"]));
    assert_eq!(info["year"].as_i64().unwrap().to_string(), login_at[..4]);
    assert_eq!(
        format!("{:02}", info["month"].as_i64().unwrap()),
        login_at[5..7]
    );
    assert_eq!(
        format!("{:02}", info["day"].as_i64().unwrap()),
        login_at[8..10]
    );

    // An ended session of one's own is still shown, with closedAt.
    app.post_as("/api/v1/logout", &alice[1], &json!({})).await;
    let other = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap();
    let (status, ended) = get(
        &app,
        &format!(
            "/api/v1/sessions/info?sessionId={}",
            other["sessionId"].as_str().unwrap()
        ),
        &alice[0],
    )
    .await;
    assert_eq!(status, 200);
    assert!(is_iso_millis(&ended["closedAt"]), "{ended}");
}

async fn info_never_shows_another_users_session(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.login("bob", USER_PASSWORD).await;
    let (_, bobs) = get(&app, "/api/v1/sessions/list", &bob).await;
    let bobs_id = ids(&bobs)[0].clone();

    for id in [bobs_id.as_str(), "QoYYFw2t9oKks2niG", "bad%00id", "x"] {
        let (status, error) = get(
            &app,
            &format!("/api/v1/sessions/info?sessionId={id}"),
            &alice,
        )
        .await;
        assert_eq!((status, error), (404, parsed(NOT_FOUND)), "{id}");
    }
    let (_, alices) = get(&app, "/api/v1/sessions/list", &alice).await;
    assert!(!ids(&alices).contains(&bobs_id));
}

async fn info_admin_reads_any_session_behind_2fa(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("bob", false);
    let bob = app.login("bob", USER_PASSWORD).await;
    let (_, bobs) = get(&app, "/api/v1/sessions/list", &bob).await;
    let bobs_id = ids(&bobs)[0].clone();
    let (admin, _) = app.admin_past_2fa().await;

    let (status, info) = get(
        &app,
        &format!("/api/v1/sessions/info.admin?sessionId={bobs_id}"),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sessionId"], bobs_id.as_str());
    assert_eq!(info["userId"], bob.user_id.as_str());
    let (status, error) = get(
        &app,
        "/api/v1/sessions/info.admin?sessionId=QoYYFw2t9oKks2niG",
        &admin,
    )
    .await;
    assert_eq!((status, error), (404, parsed(NOT_FOUND)));
    let (status, error) = get(
        &app,
        &format!("/api/v1/sessions/info.admin?sessionId={bobs_id}"),
        &bob,
    )
    .await;
    assert_eq!((status, error), (403, parsed(FORBIDDEN)));
}

async fn logout_me_ends_the_session_and_is_idempotent(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 2).await;
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    let other = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap();
    let other_id = other["sessionId"].as_str().unwrap().to_owned();

    let (status, ended) = body(
        app.post_as(
            "/api/v1/sessions/logout.me",
            &alice[0],
            &json!({"sessionId": other_id}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, ended),
        (200, json!({"sessionId": other_id, "success": true}))
    );
    let (status, me) = get(&app, "/api/v1/me", &alice[1]).await;
    assert_eq!(
        (status, me),
        (401, parsed(NOT_LOGGED_IN)),
        "the ended session's token is refused"
    );
    let (status, again) = body(
        app.post_as(
            "/api/v1/sessions/logout.me",
            &alice[0],
            &json!({"sessionId": other_id}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, again),
        (200, json!({"sessionId": other_id, "success": true})),
        "idempotent"
    );
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    assert_eq!(page["total"], 1);

    let cases = [
        (json!({"sessionId": "QoYYFw2t9oKks2niG"}), 404),
        (json!({}), 400),
        (json!({"sessionId": ""}), 400),
        (json!({"sessionId": 12}), 400),
        (json!({"sessionId": "x", "more": 1}), 400),
        (json!(["x"]), 400),
    ];
    for (request, expected) in cases {
        let (status, error) = body(
            app.post_as("/api/v1/sessions/logout.me", &alice[0], &request)
                .await,
        )
        .await;
        assert_eq!(status, expected, "{request}: {error}");
    }
    let (status, error) = body(
        app.client
            .post(app.url("/api/v1/sessions/logout.me"))
            .headers(alice[0].headers())
            .header("content-type", "application/json")
            .body("{oops")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["errorType"], "error-invalid-json");
}

async fn logout_me_cannot_end_another_users_session(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let bob = app.login("bob", USER_PASSWORD).await;
    let (_, bobs) = get(&app, "/api/v1/sessions/list", &bob).await;
    let bobs_id = ids(&bobs)[0].clone();

    let (status, error) = body(
        app.post_as(
            "/api/v1/sessions/logout.me",
            &alice,
            &json!({"sessionId": bobs_id}),
        )
        .await,
    )
    .await;

    assert_eq!((status, error), (404, parsed(NOT_FOUND)));
    assert_eq!(
        app.get_as("/api/v1/me", &bob).await.status(),
        200,
        "bob is still logged in"
    );
}

async fn admin_logout_ends_any_session_behind_2fa(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("bob", false);
    let bob = app.login("bob", USER_PASSWORD).await;
    let (_, bobs) = get(&app, "/api/v1/sessions/list", &bob).await;
    let bobs_id = ids(&bobs)[0].clone();
    let (admin, _) = app.admin_past_2fa().await;

    let (status, error) = body(
        app.post_as(
            "/api/v1/sessions/logout",
            &bob,
            &json!({"sessionId": bobs_id}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error),
        (403, parsed(FORBIDDEN)),
        "a user cannot use the admin route"
    );

    let (status, ended) = body(
        app.post_as(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": bobs_id}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, ended),
        (200, json!({"sessionId": bobs_id, "success": true}))
    );
    assert_eq!(app.get_as("/api/v1/me", &bob).await.status(), 401);
    let (status, _) = body(
        app.post_as(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": bobs_id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "idempotent");
    let (status, error) = body(
        app.post_as(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": "QoYYFw2t9oKks2niG"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, error), (404, parsed(NOT_FOUND)));
    let by = app.query_texts(
        "SELECT COALESCE(logout_by, '') AS value FROM sessions WHERE logout_by LIKE 'admin:%'",
    );
    assert_eq!(by, vec![format!("admin:{}", admin.user_id)]);
}

async fn logout_others_keeps_only_the_current_session(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let alice = app.sessions_for("alice", 4).await;
    let bob = app.login("bob", USER_PASSWORD).await;

    let (status, response) = body(
        app.post_as("/api/v1/sessions/logout.others", &alice[1], &json!({}))
            .await,
    )
    .await;

    assert_eq!(
        (status, response),
        (200, json!({"count": 3, "success": true}))
    );
    assert_eq!(app.get_as("/api/v1/me", &alice[1]).await.status(), 200);
    for other in [&alice[0], &alice[2], &alice[3]] {
        assert_eq!(app.get_as("/api/v1/me", other).await.status(), 401);
    }
    assert_eq!(
        app.get_as("/api/v1/me", &bob).await.status(),
        200,
        "other users untouched"
    );
}

async fn admin_routes_check_permission_before_parameters_before_2fa(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("bob", false);
    let bob = app.login("bob", USER_PASSWORD).await;
    // An admin session opened before enrollment has not passed the second factor.
    let admin = app.login_admin().await;
    app.enroll_totp(&admin).await;

    // Unauthenticated: 401 even with bad parameters.
    let (status, _) = body(
        app.client
            .get(app.url("/api/v1/sessions/list.all?sort=bad"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    // No permission: 403, whatever the parameters and code.
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all?sort=bad", &bob, None)
            .await,
    )
    .await;
    assert_eq!((status, error), (403, parsed(FORBIDDEN)));
    let (status, error) = body(
        app.post_with_code("/api/v1/sessions/logout", &bob, &json!({}), None)
            .await,
    )
    .await;
    assert_eq!((status, error), (403, parsed(FORBIDDEN)));
    // Bad parameters: 400 for the parameter before any word about 2FA.
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all?sort=bad", &admin, None)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["errorType"], "error-invalid-sort");
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/info.admin", &admin, None)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["errorType"], "invalid-params");
    // Good parameters, no code: now 2FA speaks.
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &admin, None)
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["errorType"], "totp-required");
}

async fn the_second_factor_guard_enforces_every_rule(store: Store) {
    let app = spawn_app(store).await;
    let admin = app.login_admin().await;
    let (secret, backup_codes) = app.enroll_totp(&admin).await;
    let first = app.login_raw("admin", &app.admin_password).await;
    assert_eq!(first.status(), 400, "login asks for the code");
    let session = login_with(&app, &backup_codes[0]).await;

    let totp_required = json!({
        "success": false,
        "error": "TOTP Required [totp-required]",
        "errorType": "totp-required",
        "details": {"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]}
    });
    let totp_invalid = json!({
        "success": false,
        "error": "TOTP Invalid [totp-invalid]",
        "errorType": "totp-invalid",
        "details": {"method": "totp", "codeGenerated": false}
    });
    // The backup-code login authorized this session for the window; end it.
    assert_eq!(
        app.get_with_code("/api/v1/sessions/list.all", &session, None)
            .await
            .status(),
        200
    );
    app.end_two_factor_window(&session);

    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &session, None)
            .await,
    )
    .await;
    assert_eq!(
        (status, error),
        (400, totp_required.clone()),
        "the window has passed"
    );
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &session, Some("000000"))
            .await,
    )
    .await;
    assert_eq!((status, error), (400, totp_invalid.clone()), "wrong code");
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &session, Some("nonsense"))
            .await,
    )
    .await;
    assert_eq!(
        (status, error),
        (400, totp_invalid.clone()),
        "malformed code"
    );
    let (status, error) = body(
        app.get_with_code(
            "/api/v1/sessions/list.all",
            &session,
            Some(&backup_codes[0]),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, error),
        (400, totp_invalid.clone()),
        "a used backup code"
    );

    let code = current_code(&secret, 1);
    let (status, page) = body(
        app.get_with_code("/api/v1/sessions/list.all", &session, Some(&code))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    // Remembered for the window: no code needed.
    assert_eq!(
        app.get_with_code(
            "/api/v1/sessions/info.admin?sessionId=QoYYFw2t9oKks2niG",
            &session,
            None
        )
        .await
        .status(),
        404
    );

    // The same code on another session is a replay.
    let other = login_with(&app, &backup_codes[1]).await;
    app.end_two_factor_window(&other);
    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &other, Some(&code))
            .await,
    )
    .await;
    assert_eq!((status, error), (400, totp_invalid), "replayed code");
    let (status, _) = body(
        app.get_with_code("/api/v1/sessions/list.all", &other, Some(&backup_codes[2]))
            .await,
    )
    .await;
    assert_eq!(status, 200, "an unused backup code works on the guard");
}

async fn login_with(app: &TestApp, code: &str) -> Session {
    let response = app
        .post_json(
            "/api/v1/login",
            &json!({"user": "admin", "password": app.admin_password, "code": code}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let login: Value = response.json().await.unwrap();
    Session {
        user_id: login["data"]["userId"].as_str().unwrap().to_owned(),
        token: login["data"]["authToken"].as_str().unwrap().to_owned(),
    }
}

async fn a_user_without_totp_is_told_how_to_enroll(store: Store) {
    let app = spawn_app(store).await;
    let admin = app.login_admin().await;

    let (status, error) = body(
        app.get_with_code("/api/v1/sessions/list.all", &admin, Some("123456"))
            .await,
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(error["error"], "TOTP Required [totp-required]");
    assert_eq!(error["errorType"], "totp-required");
    assert_eq!(error["details"]["availableMethods"], json!([]));
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("users.2fa.enableTOTP"));
}

/// `list` and `info` authenticate inside the same store call that serves
/// them; a bad token still gets the 401 before any parameter is judged.
async fn authentication_is_checked_before_parameters(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.login("alice", USER_PASSWORD).await;
    let forged = Session {
        user_id: alice.user_id.clone(),
        token: "not-the-token-of-any-session".into(),
    };
    for path in [
        "/api/v1/sessions/list?sort=notjson",
        "/api/v1/sessions/list?count=-1",
        "/api/v1/sessions/list?bogus=1",
        "/api/v1/sessions/list?cursor=forged",
        "/api/v1/sessions/info",
        "/api/v1/sessions/info?sessionId=QoYYFw2t9oKks2niG&extra=1",
    ] {
        let (status, error) = get(&app, path, &forged).await;
        assert_eq!((status, error), (401, parsed(NOT_LOGGED_IN)), "{path}");
        let (status, error) = get(&app, path, &alice).await;
        assert_eq!(status, 400, "{path} with a valid token: {error}");
    }
    let (status, _) = get(
        &app,
        "/api/v1/sessions/info?sessionId=QoYYFw2t9oKks2niG",
        &forged,
    )
    .await;
    assert_eq!(
        status, 401,
        "an unknown session to a forged token is still a 401"
    );
}

async fn no_request_succeeds_after_logout_returns(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let alice = app.sessions_for("alice", 2).await;
    let (_, page) = get(&app, "/api/v1/sessions/list", &alice[0]).await;
    let target = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap();
    let target_id = target["sessionId"].as_str().unwrap().to_owned();
    let victim = alice[1].clone();

    // Requests with the victim's token run while the session is ended.
    let hammer = {
        let client = app.client.clone();
        let url = app.url("/api/v1/sessions/list");
        let victim = victim.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..40 {
                let response = client
                    .get(&url)
                    .headers(victim.headers())
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    };
    let (status, _) = body(
        app.post_as(
            "/api/v1/sessions/logout.me",
            &alice[0],
            &json!({"sessionId": target_id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    // From here on, nothing the token asks for succeeds, on any route.
    for path in [
        "/api/v1/me",
        "/api/v1/sessions/list",
        &format!("/api/v1/sessions/info?sessionId={target_id}"),
    ] {
        let (status, error) = get(&app, path, &victim).await;
        assert_eq!((status, error), (401, parsed(NOT_LOGGED_IN)), "{path}");
    }
    let statuses = hammer.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
    let first_refusal = statuses
        .iter()
        .position(|s| *s == 401)
        .unwrap_or(statuses.len());
    assert!(
        statuses[first_refusal..].iter().all(|s| *s == 401),
        "once refused, always refused: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_serves_regex_filters_from_the_trigram_index() {
    let app = spawn_app(Store::Postgres).await;
    app.create_user("alice", false);
    app.sessions_for("alice", 3).await;

    // The planner would scan three rows; forbid it so the plan shows whether
    // the index *can* serve the filter (it can only if regex_imatch inlines).
    let mut conn = app.pool.get().unwrap();
    let explain = explain(
        &mut conn,
        "SELECT id FROM sessions WHERE regex_imatch(search_term, 'chrome|firefox')",
    );
    assert!(
        explain.contains("sessions_search_term_trgm_idx"),
        "{explain}"
    );
    let explain = explain_users(&mut conn);
    assert!(
        explain.contains("users_username_trgm_idx") && explain.contains("users_name_trgm_idx"),
        "{explain}"
    );
}

/// The admin list pages through users in byte order of their names; an
/// index in that collation lets Postgres stop after one page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_walks_users_in_byte_order_from_an_index() {
    let app = spawn_app(Store::Postgres).await;
    let mut conn = app.pool.get().unwrap();
    let plan = explain(
        &mut conn,
        r#"SELECT id FROM users ORDER BY username_key COLLATE "C" DESC, id DESC LIMIT 50"#,
    );
    assert!(
        plan.contains("users_username_key_bytes_idx") && !plan.contains("Sort"),
        "{plan}"
    );
}

fn explain(conn: &mut sessiond::db::AnyConnection, sql: &str) -> String {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    diesel::sql_query("SET enable_seqscan = off")
        .execute(conn)
        .unwrap();
    let lines: Vec<Line> = diesel::sql_query(format!("EXPLAIN {sql}"))
        .load(conn)
        .unwrap();
    diesel::sql_query("RESET enable_seqscan")
        .execute(conn)
        .unwrap();
    lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn explain_users(conn: &mut sessiond::db::AnyConnection) -> String {
    explain(
        conn,
        "SELECT id FROM users WHERE regex_imatch(username, 'funke') OR regex_imatch(name, 'funke')",
    )
}

on_both_stores!(the_everyone_total_follows_logins_logouts_expiry_and_the_sweep);

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
    let (ended, _) = sessiond::app::sweep(&mut conn, &settings).unwrap();
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
