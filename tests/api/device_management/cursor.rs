//! `nextCursor` paging: every session once, and sealed cursors.

use std::collections::HashSet;

use super::{get, ids};
use crate::helpers::{body, spawn_app, Session, Store, TestApp, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    cursor_paging_covers_every_session_exactly_once,
    altered_or_misused_cursors_are_refused,
);

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
