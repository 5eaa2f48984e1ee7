//! Two instances on one database behind PgBouncer in transaction mode
//! (`SESSIOND_DB_POOLER=transaction`): what one instance does, the other
//! sees at once, and nothing breaks when server connections change hands
//! between transactions. Each test runs Debian's `pgbouncer` of its own on a
//! free port, in front of its own database on the test Postgres.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::{json, Value};
use sessiond::app::Application;
use sessiond::config::{DbPooler, Settings};
use sessiond::db::{with_filter_budget, DbError, IntoDbResult};
use sessiond::store::users;

use crate::helpers::{
    body, current_code, postgres_admin_url, spawn_app_on_store, test_settings, Session, Store,
    TestApp, TestDatabase, USER_PASSWORD,
};

const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the test Postgres listens and who connects to it, from
/// `postgres_admin_url()` (`postgres://user@host:port/db`).
fn upstream() -> (String, String, u16) {
    let url = postgres_admin_url();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let (credentials, rest) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let user = credentials.split(':').next().unwrap_or("postgres");
    let address = rest.split('/').next().unwrap_or_default();
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().expect("a numeric Postgres port")),
        None => (address, 5432),
    };
    (user.to_owned(), host.to_owned(), port)
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A `pgbouncer` process of this test's own, in transaction mode, in front
/// of one database; stopped when this goes out of scope.
struct Bouncer {
    child: Child,
    port: u16,
    user: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    /// `server_connections` is PgBouncer's `default_pool_size`: how many
    /// server connections the clients take turns on.
    fn start(database: &str, server_connections: u32) -> Self {
        assert!(
            std::path::Path::new(PGBOUNCER).exists(),
            "the pgbouncer tests need PgBouncer at {PGBOUNCER}: `apt-get install pgbouncer` \
             (`bash .ci/run` installs it)"
        );
        let mut last_log = String::new();
        // The port is free when chosen; another process may take it before
        // PgBouncer binds it, so a failed start tries another.
        for _ in 0..3 {
            match Self::try_start(database, server_connections, free_port()) {
                Ok(bouncer) => return bouncer,
                Err(log) => last_log = log,
            }
        }
        panic!("pgbouncer did not start; its log:\n{last_log}");
    }

    fn try_start(database: &str, server_connections: u32, port: u16) -> Result<Self, String> {
        let (user, host, upstream_port) = upstream();
        let dir = tempfile::tempdir().expect("temp dir");
        let auth_file = dir.path().join("users.txt");
        std::fs::write(&auth_file, format!("\"{user}\" \"\"\n")).expect("write auth file");
        let ini = dir.path().join("pgbouncer.ini");
        // No `ignore_startup_parameters`: sessiond sends none PgBouncer does
        // not know. No Unix socket, so nothing outside the test's directory.
        std::fs::write(
            &ini,
            format!(
                "[databases]\n\
                 {database} = host={host} port={upstream_port} dbname={database}\n\
                 \n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {auth}\n\
                 pool_mode = transaction\n\
                 default_pool_size = {server_connections}\n\
                 max_client_conn = 200\n",
                auth = auth_file.display(),
            ),
        )
        .expect("write pgbouncer.ini");
        let log = dir.path().join("pgbouncer.log");
        let stderr = std::fs::File::create(&log).expect("create pgbouncer.log");
        let mut command = Command::new(PGBOUNCER);
        if running_as_root() {
            // PgBouncer refuses to run as root; `-u` has it switch to
            // `postgres` once started, which must read its files.
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(owned.success(), "chown the pgbouncer directory to postgres");
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("{PGBOUNCER} could not run ({e})"));
        let mut bouncer = Bouncer {
            child,
            port,
            user,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = bouncer.child.try_wait() {
                return Err(format!("exited with {status}\n{}", bouncer.log()));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(bouncer);
            }
            if Instant::now() > deadline {
                return Err(format!("not listening after 10 s\n{}", bouncer.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{database}",
            self.user, self.port
        )
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two instances on one database through one PgBouncer. Fields drop in
/// order: the instances stop (and the database is dropped) before the
/// pooler.
struct Pair {
    /// The instance that created the first administrator.
    a: TestApp,
    b: TestApp,
    database: String,
    bouncer: Bouncer,
}

/// A fresh database, a PgBouncer in front of it with four server
/// connections (fewer than the instances' pools hold, so clients take
/// turns), and two instances started at once through it with
/// `SESSIOND_DB_POOLER=transaction` and whatever `configure` sets.
async fn two_instances(configure: impl Fn(&mut Settings)) -> Pair {
    let (mut settings, database) = test_settings(Store::Postgres);
    let TestDatabase::Postgres { name } = &database else {
        unreachable!("a Postgres test database");
    };
    let name = name.clone();
    // The instances below each hold the database and drop it with them.
    std::mem::forget(database);
    let bouncer = Bouncer::start(&name, 4);
    settings.database_url = bouncer.url(&name).parse().expect("pgbouncer url");
    settings.db_pooler = DbPooler::Transaction;
    configure(&mut settings);
    let both = async {
        tokio::join!(
            spawn_app_on_store(
                settings.clone(),
                TestDatabase::Postgres { name: name.clone() }
            ),
            spawn_app_on_store(settings, TestDatabase::Postgres { name: name.clone() }),
        )
    };
    // A migration lock left on a server connection would hold the second
    // start-up forever: fail instead.
    let Ok((first, second)) = tokio::time::timeout(Duration::from_secs(60), both).await else {
        panic!(
            "the two instances did not start within 60 s; pgbouncer's log:\n{}",
            bouncer.log()
        );
    };
    // Both started together; one of them created the administrator.
    let (a, b) = if first.admin_password.is_empty() {
        (second, first)
    } else {
        (first, second)
    };
    assert!(
        !a.admin_password.is_empty() && b.admin_password.is_empty(),
        "exactly one instance creates the first administrator"
    );
    Pair {
        a,
        b,
        database: name,
        bouncer,
    }
}

/// A connection straight to the test Postgres, past the pooler.
fn direct() -> PgConnection {
    PgConnection::establish(&postgres_admin_url()).expect("the test Postgres")
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .expect("count")
        .n
}

async fn login_with_code(app: &TestApp, code: &str) -> (u16, Value) {
    body(
        app.post_json(
            "/api/v1/login",
            &json!({"user": "alice", "password": USER_PASSWORD, "code": code}),
        )
        .await,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_start_together_and_leave_no_migration_lock_behind() {
    let pair = two_instances(|_| {}).await;

    let held = count(
        &mut direct(),
        &format!(
            "SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND d.datname = '{}'",
            pair.database
        ),
    );
    assert_eq!(held, 0, "no advisory lock outlives start-up");
    for app in [&pair.a, &pair.b] {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{}", app.address);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_logged_out_on_one_instance_is_refused_on_the_other_at_once() {
    let pair = two_instances(|_| {}).await;
    let (a, b) = (&pair.a, &pair.b);
    a.create_user("alice", false);
    let alice = a.login("alice", USER_PASSWORD).await;
    assert_eq!(b.get_as("/api/v1/me", &alice).await.status(), 200);

    let (status, _) = body(b.post_as("/api/v1/logout", &alice, &json!({})).await).await;
    assert_eq!(status, 200, "logged out on B");

    assert_eq!(
        a.get_as("/api/v1/me", &alice).await.status(),
        401,
        "A refuses the token on the very next request"
    );

    // An administrator on A ends a session opened on B.
    let on_b = b.login("alice", USER_PASSWORD).await;
    let (_, page) = body(b.get_as("/api/v1/sessions/list", &on_b).await).await;
    let session_id = page["sessions"][0]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (admin, _) = a.admin_past_2fa().await;
    let (status, ended) = body(
        a.post_as(
            "/api/v1/sessions/logout",
            &admin,
            &json!({"sessionId": session_id}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, ended),
        (200, json!({"sessionId": session_id, "success": true}))
    );
    assert_eq!(b.get_as("/api/v1/me", &on_b).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_code_used_on_one_instance_is_refused_on_the_other() {
    let pair = two_instances(|_| {}).await;
    let (a, b) = (&pair.a, &pair.b);
    a.create_user("alice", false);
    let alice = a.login("alice", USER_PASSWORD).await;
    let (secret, backup_codes) = a.enroll_totp(&alice).await;
    // Enrollment used the current step; the next one is still fresh.
    let code = current_code(&secret, 1);

    assert_eq!(login_with_code(a, &code).await.0, 200, "first use, on A");
    let (status, replay) = login_with_code(b, &code).await;
    assert_eq!(
        (status, replay["errorType"].as_str()),
        (400, Some("totp-invalid")),
        "the same code on B is a replay: {replay}"
    );

    assert_eq!(
        login_with_code(b, &backup_codes[0]).await.0,
        200,
        "a backup code, on B"
    );
    assert_eq!(
        login_with_code(a, &backup_codes[0]).await.0,
        400,
        "the same backup code on A"
    );
}

/// Each wrong code is charged in the same store call that then fails the
/// request: the charge must be committed all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_on_either_instance_add_up_to_one_lockout() {
    let pair = two_instances(|_| {}).await;
    let (a, b) = (&pair.a, &pair.b);
    a.create_user("alice", false);
    let alice = a.login("alice", USER_PASSWORD).await;
    let (secret, _) = a.enroll_totp(&alice).await;

    for (attempt, app) in [a, b, a, b, a].into_iter().enumerate() {
        let (status, wrong) = login_with_code(app, "000000").await;
        assert_eq!(
            (status, wrong["errorType"].as_str()),
            (400, Some("totp-invalid")),
            "wrong code {} of 5: {wrong}",
            attempt + 1
        );
    }
    let (status, locked) = login_with_code(b, &current_code(&secret, 1)).await;
    assert_eq!(
        (status, locked["errorType"].as_str()),
        (400, Some("totp-max-attempts")),
        "even the right code waits, on B: {locked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_alternating_between_instances_are_throttled_at_exactly_the_limit() {
    let pair = two_instances(|s| {
        s.login_max_failures_per_user = 3;
        s.login_failure_window_seconds = 600;
    })
    .await;
    let (a, b) = (&pair.a, &pair.b);
    a.create_user("alice", false);

    for (attempt, app) in [a, b, a].into_iter().enumerate() {
        assert_eq!(
            app.login_raw("alice", "wrong").await.status(),
            401,
            "failure {} of 3",
            attempt + 1
        );
    }
    assert_eq!(
        b.login_raw("alice", USER_PASSWORD).await.status(),
        429,
        "the fourth attempt, on B, waits even with the right password"
    );
    assert_eq!(a.login_raw("alice", USER_PASSWORD).await.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_failed_logins_over_both_instances_are_checked_exactly_the_limit() {
    let pair = two_instances(|s| {
        s.login_max_failures_per_user = 5;
        s.login_failure_window_seconds = 600;
    })
    .await;
    pair.a.create_user("alice", false);

    let attempts: Vec<_> = (0..30)
        .map(|i| {
            let app = if i % 2 == 0 { &pair.a } else { &pair.b };
            let (client, url) = (app.client.clone(), app.url("/api/v1/login"));
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"user": "alice", "password": format!("wrong {i}")}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap().expect("an answer"));
    }

    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (checked, throttled),
        (5, 25),
        "exactly the limit is checked: {statuses:?}"
    );
    let charged = pair.a.query_texts(
        "SELECT CAST(COUNT(*) AS TEXT) AS value FROM auth_failures WHERE scope = 'login-user'",
    );
    assert_eq!(charged, ["5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_timeout_holds_through_the_pooler_and_stays_in_its_transaction() {
    let pair = two_instances(|s| s.statement_timeout_ms = 200).await;

    let started = Instant::now();
    let slept = pair
        .a
        .pool
        .run(|conn| diesel::sql_query("SELECT pg_sleep(3)").execute(conn).db())
        .await;
    match slept {
        Err(DbError::Cancelled(cause)) => {
            assert!(cause.contains("statement timeout"), "{cause}")
        }
        other => panic!("expected the statement timeout to cancel it, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "cancelled at its deadline, not after {:?}",
        started.elapsed()
    );

    // A filter's budget nests inside the request's transaction; once it
    // runs out, the request's transaction goes on.
    let (over_budget, after) = pair
        .b
        .pool
        .run(|conn| {
            let over_budget = with_filter_budget(conn, Duration::from_millis(50), |conn| {
                diesel::sql_query("SELECT pg_sleep(3)").execute(conn).db()
            });
            let after = diesel::sql_query("SELECT 1").execute(conn).db();
            Ok::<_, DbError>((over_budget, after))
        })
        .await
        .expect("the request's transaction");
    assert!(
        matches!(
            over_budget,
            Err(DbError::FilterTooExpensive { budget_ms: 50 })
        ),
        "{over_budget:?}"
    );
    after.expect("the statement after the budget ran out");

    // Nothing was left on the server sessions: they have the server's own
    // statement timeout, not sessiond's.
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let server_default = diesel::sql_query("SELECT current_setting('statement_timeout') AS value")
        .get_result::<Setting>(&mut direct())
        .unwrap()
        .value;
    let through_pooler = pair
        .a
        .query_texts("SELECT current_setting('statement_timeout') AS value");
    assert_eq!(through_pooler, [server_default]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_parallel_requests_over_both_instances_all_succeed() {
    // One user sends them all: lift the per-user caps that would rightly
    // refuse some (parallel logins are charged before they are checked).
    // What is tested is that every request is served correctly through the
    // pooler, not how many a debug build answers within the default 5 s on
    // two shared cores: the store timeout is long, and the filtered lists
    // get as many slots as each instance has connections.
    let pair = two_instances(|s| {
        s.expensive_queries_per_user = 200;
        s.login_max_failures_per_user = 200;
        s.login_max_failures_per_ip = 200;
        s.db_timeout_seconds = 30;
        s.expensive_queries = 4;
    })
    .await;
    pair.a.create_user("alice", false);
    let mut sessions: Vec<Session> = Vec::new();
    for app in [&pair.a, &pair.b] {
        for _ in 0..2 {
            sessions.push(app.login("alice", USER_PASSWORD).await);
        }
    }
    let (_, page) = body(pair.a.get_as("/api/v1/sessions/list", &sessions[0]).await).await;
    let session_id = page["sessions"][0]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();

    let requests: Vec<_> = (0..200)
        .map(|i| {
            let app = if i % 2 == 0 { &pair.a } else { &pair.b };
            let session = &sessions[i % sessions.len()];
            let request = match i % 20 {
                19 => app
                    .client
                    .post(app.url("/api/v1/login"))
                    .json(&json!({"user": "alice", "password": USER_PASSWORD})),
                n => {
                    let path = match n % 4 {
                        0 => "/api/v1/me".to_owned(),
                        1 => "/api/v1/sessions/list?count=5".to_owned(),
                        2 => "/api/v1/sessions/list?filter=chrome".to_owned(),
                        _ => format!("/api/v1/sessions/info?sessionId={session_id}"),
                    };
                    app.client.get(app.url(&path)).headers(session.headers())
                }
            };
            tokio::spawn(async move {
                let response = request.send().await.expect("an answer");
                let status = response.status().as_u16();
                (i, status, response.text().await.unwrap_or_default())
            })
        })
        .collect();
    let mut failed = Vec::new();
    for request in requests {
        let (i, status, text) = request.await.unwrap();
        if status != 200 {
            failed.push(format!("request {i}: {status} {text}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 200 failed:\n{}\npgbouncer's log:\n{}",
        failed.len(),
        failed.join("\n"),
        pair.bouncer.log()
    );
}

/// What the setting fixes. Without it, diesel keeps its statements prepared
/// by name (`__diesel_stmt_0`, `_1`, … on every connection); behind a
/// transaction-mode pooler they stay on whichever server connection
/// prepared them. With one server connection shared by every client, the
/// outcome is certain: the first client's names are taken, and every other
/// client's first statement collides with them. (With more server
/// connections the same happens at random: a name is missing where a
/// statement runs, or taken.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_prepared_statements_collide_on_a_shared_server_connection() {
    let (mut settings, database) = test_settings(Store::Postgres);
    let TestDatabase::Postgres { name } = &database else {
        unreachable!("a Postgres test database");
    };
    let name = name.clone();
    // The instances below each hold the database and drop it with them.
    std::mem::forget(database);
    let bouncer = Bouncer::start(&name, 1);
    settings.database_url = bouncer.url(&name).parse().expect("pgbouncer url");
    assert_eq!(settings.db_pooler, DbPooler::None, "the default");

    // The first instance starts: its start-up connection prepared the
    // first names on the one server connection, and left them there.
    let a = spawn_app_on_store(
        settings.clone(),
        TestDatabase::Postgres { name: name.clone() },
    )
    .await;
    let refused = a
        .pool
        .run(|conn| users::find_by_username_key(conn, "admin"))
        .await
        .map(|_| ())
        .expect_err("a second client's first named statement collides");
    let refused = refused.to_string();
    assert!(
        refused.contains(r#"prepared statement "__diesel_stmt_"#)
            && refused.contains("already exists"),
        "{refused}"
    );
    let (status, _) = body(a.login_raw("admin", &a.admin_password).await).await;
    assert_eq!(status, 500, "so does every request of the instance itself");

    // A second instance cannot even start.
    let failed = Application::build(settings.clone())
        .await
        .map(|_| ())
        .expect_err("the second instance's start-up collides too");
    assert!(
        format!("{failed:#}").contains("prepared statement \"__diesel_stmt_"),
        "{failed:#}"
    );

    // With the setting, an instance works on the very same server
    // connection, names and all still on it.
    settings.db_pooler = DbPooler::Transaction;
    let b = spawn_app_on_store(settings, TestDatabase::Postgres { name }).await;
    let admin = b.login("admin", &a.admin_password).await;
    assert_eq!(b.get_as("/api/v1/me", &admin).await.status(), 200);
}
