//! The real `sessiond-seed` binary on tiny sizes: the stores it refuses,
//! the passwords it sets, the admin session's second-factor bound and the
//! mode of its tokens file.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::NaiveDateTime;
use diesel::{Connection, ExpressionMethods, PgConnection, QueryDsl, RunQueryDsl};
use serde_json::Value;
use sessiond::config::Settings;
use sessiond::db::schema::{sessions, users};
use sessiond::db::{self, AnyConnection};
use sessiond::domain::{clock, password, username::Username};

use crate::helpers::{
    postgres_admin_url, raw_database_url, spawn_app, spawn_app_on_store, test_settings, Store,
    TestApp, TestDatabase,
};
use crate::on_both_stores;

/// The fixed password earlier versions gave every seeded user and the admin.
const OLD_FIXED_PASSWORD: &str = "bench-password";
const OVERRIDE: &str = "--allow-existing-data";

/// Runs `sessiond-seed` with tiny sizes, writing its tokens to `tokens`:
/// (success, stdout, stderr).
fn seed(
    database_url: &str,
    tokens: &Path,
    extra: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessiond-seed"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .args(["--users", "5", "--sessions", "50", "--known-sessions", "3"])
        .arg("--tokens-out")
        .arg(tokens)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sessiond-seed");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn read_tokens(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("tokens file written");
    serde_json::from_str(&text).expect("tokens file is JSON")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A fresh, migrated store with no users, dropped (on Postgres) at the end
/// of the test unless an app takes it over.
struct FreshStore {
    settings: Option<Settings>,
    database: Option<TestDatabase>,
    url: String,
    /// Where the seeder writes its tokens for this store.
    tokens: PathBuf,
    _dir: tempfile::TempDir,
}

impl FreshStore {
    fn new(store: Store) -> Self {
        let (settings, database) = test_settings(store);
        let dir = tempfile::tempdir().unwrap();
        FreshStore {
            url: raw_database_url(&settings),
            tokens: dir.path().join("tokens.json"),
            settings: Some(settings),
            database: Some(database),
            _dir: dir,
        }
    }

    fn connect(&self) -> AnyConnection {
        let mut conn = db::establish(self.settings.as_ref().unwrap()).expect("store reachable");
        db::run_migrations(&mut conn, sessiond::config::DbPooler::None).expect("migrate");
        conn
    }

    fn seed(&self, extra: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        seed(&self.url, &self.tokens, extra, stdin)
    }

    /// Starts the application on this store (after seeding: no first admin).
    async fn serve(mut self) -> (TestApp, Value) {
        let tokens = read_tokens(&self.tokens);
        let app =
            spawn_app_on_store(self.settings.take().unwrap(), self.database.take().unwrap()).await;
        (app, tokens)
    }
}

impl Drop for FreshStore {
    fn drop(&mut self) {
        if let Some(TestDatabase::Postgres { name }) = &self.database {
            if let Ok(mut admin) = PgConnection::establish(&postgres_admin_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

fn create_user(conn: &mut AnyConnection, username: &str) {
    let name = Username::parse(username).unwrap();
    let hash = password::hash("some-long-password").unwrap();
    sessiond::store::users::create(conn, &name, username, &hash, false, clock::now())
        .expect("create user");
}

fn usernames(conn: &mut AnyConnection) -> Vec<String> {
    users::table
        .order(users::username_key)
        .select(users::username)
        .load(conn)
        .unwrap()
}

fn session_count(conn: &mut AnyConnection) -> i64 {
    sessions::table.count().get_result(conn).unwrap()
}

/// The `two_factor_until` of each of `bench-admin`'s sessions.
fn admin_two_factor_until(conn: &mut AnyConnection) -> Vec<Option<NaiveDateTime>> {
    let admin: i64 = users::table
        .filter(users::username_key.eq("bench-admin"))
        .select(users::id)
        .first(conn)
        .expect("bench-admin seeded");
    sessions::table
        .filter(sessions::user_id.eq(admin))
        .select(sessions::two_factor_until)
        .load(conn)
        .unwrap()
}

fn assert_refused(ok: bool, stderr: &str, found: &str) {
    assert!(!ok, "the seeder refused the store: {stderr}");
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(found), "names what it found: {stderr}");
    assert!(lines[0].contains(OVERRIDE), "names the override: {stderr}");
}

on_both_stores!(
    refuses_a_store_with_users_it_did_not_create,
    reseeds_its_own_store_but_refuses_lookalikes_and_unmarked_stores,
    writes_the_tokens_file_for_its_owner_only,
    the_admin_password_is_random_per_store_or_chosen,
    the_admin_session_is_past_2fa_for_a_bounded_time
);

async fn refuses_a_store_with_users_it_did_not_create(store: Store) {
    // `serve` on an empty store creates `admin`: a real store.
    let app = spawn_app(store).await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("out").join("tokens.json");

    let (ok, _, stderr) = seed(&app.database_url, &tokens, &[], None);
    assert_refused(ok, &stderr, "1 user sessiond-seed did not create (admin)");
    assert!(!tokens.exists(), "no tokens file");
    assert!(!dir.path().join("out").exists(), "no directory either");
    let mut conn = app.pool.get().unwrap();
    assert_eq!(usernames(&mut conn), ["admin"], "no user added");
    assert_eq!(session_count(&mut conn), 0, "no session added");
    assert!(
        app.query_texts("SELECT value FROM server_settings WHERE name = 'seeded_by'")
            .is_empty(),
        "the store is not marked as seeded"
    );

    let (ok, stdout, stderr) = seed(&app.database_url, &tokens, &[OVERRIDE], None);
    assert!(ok, "the override seeds it: {stderr}");
    assert!(stdout.contains("tokens in"), "{stdout}");
    let names = usernames(&mut conn);
    assert!(names.contains(&"admin".to_owned()), "{names:?}");
    assert!(names.contains(&"bench-admin".to_owned()), "{names:?}");
    assert!(session_count(&mut conn) >= 50);
    assert!(tokens.exists());

    let (ok, _, stderr) = seed(&app.database_url, &tokens, &[], None);
    assert_refused(ok, &stderr, "(admin)");
}

async fn reseeds_its_own_store_but_refuses_lookalikes_and_unmarked_stores(store: Store) {
    // The benchmark's order: seed an empty store, serve it, seed it again.
    let fresh = FreshStore::new(store);
    let (ok, _, stderr) = fresh.seed(&[], None);
    assert!(ok, "an empty store is seeded: {stderr}");
    let (ok, _, stderr) = fresh.seed(&[], None);
    assert!(ok, "its own store is seeded again: {stderr}");
    let mut conn = fresh.connect();
    let before = (usernames(&mut conn), session_count(&mut conn));
    assert_eq!(before.0.len(), 7, "5 users, the known user, the admin");

    // A user whose name only looks like a seeded one.
    create_user(&mut conn, "bench-user-carol");
    let (ok, _, stderr) = fresh.seed(&[], None);
    assert_refused(
        ok,
        &stderr,
        "1 user sessiond-seed did not create (bench-user-carol)",
    );
    assert_eq!(session_count(&mut conn), before.1, "nothing written");

    // Seed names in a store the seeder never marked: not its store.
    let unmarked = FreshStore::new(store);
    let mut conn = unmarked.connect();
    create_user(&mut conn, "bench-known");
    let (ok, _, stderr) = unmarked.seed(&[], None);
    assert_refused(ok, &stderr, "no mark of an earlier sessiond-seed run");
    assert_eq!(usernames(&mut conn), ["bench-known"], "nothing written");
}

#[test]
fn refuses_another_applications_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other.db");
    let mut other =
        diesel::SqliteConnection::establish(&file.to_string_lossy()).expect("open SQLite file");
    diesel::sql_query("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)")
        .execute(&mut other)
        .unwrap();
    drop(other);
    let url = format!("sqlite://{}", file.display());
    let tokens = dir.path().join("tokens.json");

    let (ok, _, stderr) = seed(&url, &tokens, &[], None);
    assert_refused(
        ok,
        &stderr,
        "1 table but no sessiond users table (invoices)",
    );
    assert!(!tokens.exists());
    let mut other = diesel::SqliteConnection::establish(&file.to_string_lossy()).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let tables: Count = diesel::sql_query("SELECT count(*) AS n FROM sqlite_master")
        .get_result(&mut other)
        .unwrap();
    assert_eq!(tables.n, 1, "not migrated: still only its own table");
}

async fn writes_the_tokens_file_for_its_owner_only(store: Store) {
    let fresh = FreshStore::new(store);
    let dir = tempfile::tempdir().unwrap();

    let nested = dir.path().join("a").join("b").join("tokens.json");
    let (ok, stdout, stderr) = seed(&fresh.url, &nested, &[], None);
    assert!(ok, "{stderr}");
    assert_eq!(
        stderr, "",
        "no progress is drawn when standard error is not a terminal"
    );
    assert!(
        stdout.starts_with("7 users and 54 sessions in ") && stdout.lines().count() == 1,
        "one summary line: {stdout}"
    );
    assert_eq!(mode(&nested), 0o600, "a new file is 0600");
    let first = read_tokens(&nested);

    // A file left world-readable (as earlier versions wrote it) is replaced
    // by one only its owner can read.
    let existing = dir.path().join("existing.json");
    std::fs::write(&existing, "old tokens").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, stderr) = seed(&fresh.url, &existing, &[], None);
    assert!(ok, "{stderr}");
    assert_eq!(mode(&existing), 0o600, "an existing file ends up 0600");
    let second = read_tokens(&existing);
    assert_ne!(
        first["admin"]["token"], second["admin"]["token"],
        "the file holds this run's tokens"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file left: {leftovers:?}"
    );
}

async fn the_admin_password_is_random_per_store_or_chosen(store: Store) {
    let one = FreshStore::new(store);
    let other = FreshStore::new(store);
    for fresh in [&one, &other] {
        let (ok, stdout, stderr) = fresh.seed(&[], None);
        assert!(ok, "{stderr}");
        let password = read_tokens(&fresh.tokens)["admin"]["password"]
            .as_str()
            .expect("the generated password is in the tokens file")
            .to_owned();
        assert!(
            !stdout.contains(&password) && !stderr.contains(&password),
            "the password is not printed"
        );
    }
    let other_tokens = read_tokens(&other.tokens);
    let other_password = other_tokens["admin"]["password"].as_str().unwrap();

    let (app, tokens) = one.serve().await;
    let password = tokens["admin"]["password"].as_str().unwrap().to_owned();
    assert_ne!(password, other_password, "each seed draws its own");
    assert_ne!(
        tokens["known"]["password"], other_tokens["known"]["password"],
        "the ordinary users' password too"
    );
    assert_eq!(
        app.login_raw("bench-admin", OLD_FIXED_PASSWORD)
            .await
            .status(),
        401,
        "the old fixed password does not open the admin"
    );
    assert_eq!(
        app.login_raw("bench-known", OLD_FIXED_PASSWORD)
            .await
            .status(),
        401,
        "nor an ordinary seeded user"
    );
    assert_eq!(
        app.login_raw("bench-admin", other_password).await.status(),
        401,
        "another store's password does not open this one"
    );
    app.login("bench-admin", &password).await;
    let known_password = tokens["known"]["password"].as_str().unwrap();
    app.login("bench-known", known_password).await;
    app.login("bench-user-00003", known_password).await;

    // A chosen password, from standard input; a reseed replaces the old one.
    let chosen = "chosen-admin-password-1";
    let dir = tempfile::tempdir().unwrap();
    let tokens_path = dir.path().join("tokens.json");
    let (ok, _, stderr) = seed(
        &app.database_url,
        &tokens_path,
        &["--admin-password", "-"],
        Some(&format!("{chosen}\n")),
    );
    assert!(ok, "{stderr}");
    let reseeded = read_tokens(&tokens_path);
    assert!(
        reseeded["admin"].get("password").is_none(),
        "a chosen password is not written out"
    );
    assert_eq!(
        app.login_raw("bench-admin", &password).await.status(),
        401,
        "the previous password no longer works"
    );
    app.login("bench-admin", chosen).await;
    assert_eq!(
        app.login_raw("bench-known", known_password).await.status(),
        401,
        "the ordinary users took this run's password"
    );
    app.login(
        "bench-known",
        reseeded["known"]["password"].as_str().unwrap(),
    )
    .await;

    let (ok, _, stderr) = seed(
        &app.database_url,
        &tokens_path,
        &["--admin-password", "short"],
        None,
    );
    assert!(!ok, "a short password is refused");
    assert!(stderr.contains("at least 8"), "{stderr}");
}

async fn the_admin_session_is_past_2fa_for_a_bounded_time(store: Store) {
    let fresh = FreshStore::new(store);
    let mut conn = fresh.connect();

    let before = clock::now();
    let (ok, _, stderr) = fresh.seed(&[], None);
    let after = clock::now();
    assert!(ok, "{stderr}");
    let until = admin_two_factor_until(&mut conn);
    assert_eq!(until.len(), 1, "one admin session");
    let until = until[0].expect("the admin session is past the second factor");
    assert!(
        until >= clock::plus_seconds(before, 60 * 60 - 1)
            && until <= clock::plus_seconds(after, 60 * 60 + 1),
        "60 minutes by default: {before} .. {until} .. {after}"
    );

    let before = clock::now();
    let (ok, _, stderr) = fresh.seed(&["--admin-2fa-minutes", "5"], None);
    let after = clock::now();
    assert!(ok, "{stderr}");
    let until = admin_two_factor_until(&mut conn);
    assert_eq!(until.len(), 1, "the old admin session was replaced");
    let until = until[0].unwrap();
    assert!(
        until >= clock::plus_seconds(before, 5 * 60 - 1)
            && until <= clock::plus_seconds(after, 5 * 60 + 1),
        "as asked: {before} .. {until} .. {after}"
    );

    for minutes in ["0", "1441", "1000000000"] {
        let (ok, _, stderr) = fresh.seed(&["--admin-2fa-minutes", minutes], None);
        assert!(!ok, "--admin-2fa-minutes {minutes} is refused");
        assert!(stderr.contains("admin-2fa-minutes"), "{stderr}");
    }
    assert_eq!(admin_two_factor_until(&mut conn), [Some(until)]);
    drop(conn);

    // The server lets the seeded session through 2FA routes only inside
    // that window.
    let (app, tokens) = fresh.serve().await;
    let admin = crate::helpers::Session {
        user_id: tokens["admin"]["userId"].as_str().unwrap().to_owned(),
        token: tokens["admin"]["token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        app.get_as("/api/v1/sessions/list.all", &admin)
            .await
            .status(),
        200
    );
    app.end_two_factor_window(&admin);
    assert_eq!(
        app.get_as("/api/v1/sessions/list.all", &admin)
            .await
            .status(),
        400,
        "past the window the admin session needs the second factor"
    );
}
