//! Postgres plans (`EXPLAIN`): the filters and the admin's user list are
//! served from indexes.

use crate::helpers::{spawn_app, Store};

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
