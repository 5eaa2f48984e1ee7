//! The `sort` parameter of `list` and `list.all`: every key, both
//! directions, byte order whatever the locale, and the refusals.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{get, ids};
use crate::helpers::{body, spawn_app, spawn_app_on_icu_locale, Store, TestApp, USER_PASSWORD};
use crate::on_both_stores;

on_both_stores!(
    every_sort_key_in_both_directions_pages_without_overlap_or_gap,
    bad_sorts_get_the_exact_error_bodies,
);

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
