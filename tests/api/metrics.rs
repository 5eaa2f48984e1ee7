//! `/metrics` as an operator alerts on it: session, login, second-factor
//! and throttling counters, the active-session gauge, store waits and
//! timeouts, process metrics, `promtool`'s lint, and the operators'
//! listener that takes `/metrics` off the public address.

use std::collections::HashMap;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use serde_json::json;

use crate::helpers::{
    body, promtool_check, spawn_app, spawn_app_with, Store, TestApp, USER_PASSWORD,
};
use crate::on_both_stores;

on_both_stores!(
    sessions_logins_two_factor_and_throttling_are_counted,
    the_exposition_passes_promtool,
    an_operators_listener_takes_metrics_off_the_public_address,
);

/// Every sample of `/metrics`, by its name with labels as written.
async fn samples(app: &TestApp, path_base: Option<&str>) -> HashMap<String, f64> {
    let text = match path_base {
        Some(base) => app
            .client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text"),
        None => app.get_text("/metrics").await,
    };
    parse(&text)
}

fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// How much `series` grew between two scrapes (absent counts as 0).
fn grew(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

async fn sessions_logins_two_factor_and_throttling_are_counted(store: Store) {
    let app = spawn_app_with(store, |settings| {
        settings.login_max_failures_per_user = 2;
    })
    .await;
    app.create_user("alice", false);
    app.create_user("bob", false);
    let admin = app.login_admin().await;
    let (_, backup_codes) = app.enroll_totp(&admin).await;
    let before = samples(&app, None).await;

    // Two logins on the Rocket.Chat surface and one on the JSON action API.
    let alice = app.login("alice", USER_PASSWORD).await;
    app.login("alice", USER_PASSWORD).await;
    let created = app
        .post_json(
            "/api",
            &json!({"api": "admin", "action": "createSession",
                    "params": {"username": "bob", "password": USER_PASSWORD}}),
        )
        .await;
    assert_eq!(body(created).await.1["errorCode"], 0);
    // bob: two wrong passwords, then the limit is full.
    for expected in [401, 401, 429] {
        let response = app.login_raw("bob", "wrong password").await;
        assert_eq!(response.status(), expected);
    }
    // alice ends her other session; the admin ends alice's last one.
    let others = app
        .post_as("/api/v1/sessions/logout.others", &alice, &json!({}))
        .await;
    assert_eq!(body(others).await.1["count"], 1);
    let (_, mine) = body(app.get_as("/api/v1/sessions/list", &alice).await).await;
    let session_id = mine["sessions"][0]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.end_two_factor_window(&admin);
    let wrong = app
        .post_with_code(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": session_id}),
            Some("000000"),
        )
        .await;
    assert_eq!(wrong.status(), 400);
    let revoked = app
        .post_with_code(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": session_id}),
            Some(&backup_codes[0]),
        )
        .await;
    assert_eq!(revoked.status(), 200);

    let (_, all) = body(app.get_as("/api/v1/sessions/list.all", &admin).await).await;
    let after = samples(&app, None).await;
    let expected = [
        (
            r#"sessiond_sessions_started_total{surface="rocket_chat"}"#,
            2.0,
        ),
        (
            r#"sessiond_sessions_started_total{surface="json_action"}"#,
            1.0,
        ),
        (
            r#"sessiond_sessions_ended_total{reason="logout_others",surface="rocket_chat"}"#,
            1.0,
        ),
        (
            r#"sessiond_sessions_ended_total{reason="admin_revoke",surface="rocket_chat"}"#,
            1.0,
        ),
        (
            r#"sessiond_logins_total{method="password",result="success",surface="rocket_chat"}"#,
            2.0,
        ),
        (
            r#"sessiond_logins_total{method="password",result="success",surface="json_action"}"#,
            1.0,
        ),
        (
            r#"sessiond_logins_total{method="password",result="failed",surface="rocket_chat"}"#,
            2.0,
        ),
        (
            r#"sessiond_logins_total{method="password",result="throttled",surface="rocket_chat"}"#,
            1.0,
        ),
        (r#"sessiond_throttled_total{limit="login_user"}"#, 1.0),
        (r#"sessiond_two_factor_checks_total{result="invalid"}"#, 1.0),
        (r#"sessiond_two_factor_checks_total{result="success"}"#, 1.0),
    ];
    for (series, increase) in expected {
        assert_eq!(grew(&before, &after, series), increase, "{series}");
    }

    // The gauge is everyone's active sessions: the admin's and bob's.
    assert_eq!(
        after["sessiond_sessions_active"],
        all["total"].as_f64().unwrap()
    );
    assert_eq!(after["sessiond_sessions_active"], 2.0);
    assert_eq!(after["sessiond_db_up"], 1.0);
    assert!(after.contains_key("process_resident_memory_bytes"));
    assert!(after.contains_key("process_cpu_seconds_total"));
    assert_eq!(
        after[&format!(
            "sessiond_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )],
        1.0
    );
    // Every store call waited for its connection, and was timed doing so.
    assert!(after["sessiond_db_pool_wait_seconds_count"] >= after["sessiond_db_calls_total"]);

    // Reading the gauge is not a store call of its own: scrapes leave the
    // store counters as they were.
    let again = samples(&app, None).await;
    assert_eq!(
        grew(&after, &again, "sessiond_db_calls_total"),
        0.0,
        "a scrape costs no counted store call"
    );
}

async fn the_exposition_passes_promtool(store: Store) {
    let app = spawn_app(store).await;
    app.login_admin().await;
    app.login_raw("admin", "wrong password").await;
    let text = app.get_text("/metrics").await;
    promtool_check(&text);
}

async fn an_operators_listener_takes_metrics_off_the_public_address(store: Store) {
    let (app, management) = {
        let app = spawn_app_with(store, |settings| {
            settings.metrics_bind = Some("127.0.0.1:0".into());
        })
        .await;
        let management = app
            .management_address
            .clone()
            .expect("the operators' listener's address");
        (app, management)
    };
    app.login_admin().await;

    let (status, page) = body(app.client.get(app.url("/metrics")).send().await.unwrap()).await;
    assert_eq!(status, 404, "{page}");

    let scraped = samples(&app, Some(&management)).await;
    assert_eq!(
        scraped[r#"sessiond_sessions_started_total{surface="rocket_chat"}"#],
        1.0
    );
    for probe in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{management}{probe}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{probe}");
    }
    let (status, page) = body(
        app.client
            .get(format!("{management}/api/v1/sessions/list"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{page}");
    assert!(
        page["error"].as_str().unwrap().contains("/metrics"),
        "{page}"
    );
    // The public address keeps its probes.
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// A connection of the test's own, outside both pools (each has one
/// connection here).
fn lock_connection(app: &TestApp) -> diesel::PgConnection {
    use diesel::Connection;
    diesel::PgConnection::establish(&app.database_url).expect("connect to the test's database")
}

/// Postgres, with a table lock held by the test: a statement the database
/// cancels at its statement timeout, a request answered at its deadline,
/// and one refused because the only connection was busy are each counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeouts_deadlines_and_pool_timeouts_are_counted() {
    let app = spawn_app_with(Store::Postgres, |settings| {
        settings.db_pool_size = 1;
        settings.db_timeout_seconds = 1;
        settings.statement_timeout_ms = 300;
    })
    .await;
    let admin = app.login_admin().await;
    let before = samples(&app, None).await;

    let mut lock = lock_connection(&app);
    lock.batch_execute("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .expect("lock the sessions table");
    let (status, _) = body(app.get_as("/api/v1/me", &admin).await).await;
    assert_eq!(status, 503, "cancelled at the statement timeout");
    lock.batch_execute("ROLLBACK").unwrap();
    drop(lock);
    let after = samples(&app, None).await;
    assert_eq!(
        grew(
            &before,
            &after,
            r#"sessiond_db_statement_timeouts_total{by="database"}"#
        ),
        1.0
    );
    drop(app);

    // A statement timeout past the deadline: the first request holds the
    // only connection past its deadline, the second finds none free.
    let app = spawn_app_with(Store::Postgres, |settings| {
        settings.db_pool_size = 1;
        settings.db_timeout_seconds = 1;
        settings.statement_timeout_ms = 20_000;
    })
    .await;
    let admin = app.login_admin().await;
    let before = samples(&app, None).await;
    let mut lock = lock_connection(&app);
    lock.batch_execute("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .expect("lock the sessions table");
    let first = {
        let (client, url, headers) = (app.client.clone(), app.url("/api/v1/me"), admin.headers());
        tokio::spawn(async move { client.get(url).headers(headers).send().await })
    };
    let waiting = "SELECT CAST(COUNT(*) AS TEXT) AS value FROM pg_stat_activity \
                   WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()";
    let mut blocked = false;
    for _ in 0..100 {
        if app.query_texts(waiting) != ["0"] {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(blocked, "the first request waits on the lock");
    let (status, _) = body(app.get_as("/api/v1/me", &admin).await).await;
    assert_eq!(status, 503, "no connection came free");
    let first = first.await.unwrap().expect("an answer");
    assert_eq!(first.status(), 503, "answered at its deadline");
    lock.batch_execute("ROLLBACK").unwrap();

    // The second request's wait for a connection ends on its blocking
    // thread about when its deadline answers it: both are counted, the
    // wait's a moment later.
    let mut after = samples(&app, None).await;
    for _ in 0..50 {
        if grew(&before, &after, "sessiond_db_pool_timeouts_total") > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = samples(&app, None).await;
    }
    assert_eq!(
        grew(&before, &after, "sessiond_db_pool_timeouts_total"),
        1.0
    );
    assert!(
        grew(
            &before,
            &after,
            r#"sessiond_db_statement_timeouts_total{by="deadline"}"#
        ) >= 1.0,
        "the first request was answered at its deadline"
    );
}
