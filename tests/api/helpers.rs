//! Spawns the real `Application` on port 0 with a database of its own: a
//! fresh SQLite file, or a fresh Postgres database cloned from a migrated
//! template. Postgres must be reachable; if it is not, the test fails.

use std::sync::OnceLock;

use actix_web::dev::ServerHandle;
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use sessiond::app::Application;
use sessiond::config::Settings;
use sessiond::db::{AnyConnection, DbPool};
use sessiond::domain::{clock, password, username::Username};
use sessiond::store::users;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Runs one async test body against each store, as two tests named
/// `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Store::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Store::Postgres).await
                }
            }
        )*
    };
}

pub const USER_PASSWORD: &str = "correct horse battery";
pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/113.0.0.0 Safari/537.36";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: DbPool,
    pub admin_password: String,
    /// The operators' listener, when the settings asked for one.
    pub management_address: Option<String>,
    /// The store's URL, for running the real binary against it.
    pub database_url: String,
    database: TestDatabase,
    server: ServerHandle,
}

pub enum TestDatabase {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { name: String },
}

/// Where the Postgres half of the suite connects (the `postgres` maintenance database).
pub fn postgres_admin_url() -> String {
    std::env::var("SESSIOND_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn postgres_url(database: &str) -> String {
    let admin = postgres_admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{database}")
}

pub(crate) fn admin_connection() -> PgConnection {
    let url = postgres_admin_url();
    PgConnection::establish(&url).unwrap_or_else(|e| {
        panic!(
            "the Postgres half of the suite needs a server at {url} ({e}). Start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or point SESSIOND_TEST_POSTGRES_URL at one"
        )
    })
}

/// The migrated template, created once per schema version. Safe when many
/// test processes race: the loser of the rename drops its copy.
fn postgres_template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("sessiond_tpl_{}", migrations_fingerprint());
        let mut admin = admin_connection();
        if database_exists(&mut admin, &name) {
            return name;
        }
        // The templates of earlier migration sets are of no more use: one
        // template at most stays between runs, the current one.
        drop_other_templates(&mut admin, &name);
        let scratch = format!("sessiond_tplnew_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE {scratch}"))
            .execute(&mut admin)
            .expect("create template database");
        {
            let mut conn = AnyConnection::Postgresql(
                PgConnection::establish(&postgres_url(&scratch)).expect("connect to template"),
            );
            sessiond::db::run_migrations(&mut conn, sessiond::config::DbPooler::None)
                .expect("migrate template");
        }
        let renamed = diesel::sql_query(format!("ALTER DATABASE {scratch} RENAME TO {name}"))
            .execute(&mut admin);
        if renamed.is_err() {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"))
                .execute(&mut admin);
            assert!(
                database_exists(&mut admin, &name),
                "template {name} missing"
            );
        }
        name
    })
}

/// Drops the suite's templates other than `keep`.
fn drop_other_templates(conn: &mut PgConnection, keep: &str) {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let stale: Vec<Name> = diesel::sql_query(format!(
        "SELECT datname FROM pg_database WHERE datname LIKE 'sessiond\\_tpl\\_%' AND datname <> '{keep}'"
    ))
    .load(conn)
    .unwrap_or_default();
    for Name { datname } in stale {
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)"))
            .execute(conn);
    }
}

pub(crate) fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let found: Found = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"
    ))
    .get_result(conn)
    .expect("query pg_database");
    found.n > 0
}

/// Changes whenever a Postgres migration changes.
fn migrations_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut files: Vec<_> = walk(&root);
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        // Relative to the migrations, so every checkout of the same
        // migrations shares one template.
        let name = file.strip_prefix(&root).unwrap_or(&file);
        hasher.update(name.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&file).expect("read migration"));
    }
    hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("read migrations dir")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Settings for a test: its own database, port 0, two workers, a fixed key.
fn base_settings() -> Settings {
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".into();
    settings.workers = 2;
    settings.db_pool_size = 4;
    settings.secret_key = Some(sessiond::config::SecretString::new(
        "c2Vzc2lvbmQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=",
    ));
    settings
}

pub fn test_settings(store: Store) -> (Settings, TestDatabase) {
    let mut settings = base_settings();
    let database = match store {
        Store::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            settings.database_url = format!("sqlite://{}", dir.path().join("test.db").display())
                .parse()
                .expect("sqlite url");
            TestDatabase::Sqlite(dir)
        }
        Store::Postgres => {
            let template = postgres_template();
            let name = format!("sessiond_test_{}", uuid::Uuid::new_v4().simple());
            diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .execute(&mut admin_connection())
                .expect("create test database");
            settings.database_url = postgres_url(&name).parse().expect("postgres url");
            TestDatabase::Postgres { name }
        }
    };
    (settings, database)
}

pub async fn spawn_app(store: Store) -> TestApp {
    spawn_app_with(store, |_| {}).await
}

pub async fn spawn_app_with(store: Store, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut settings, database) = test_settings(store);
    configure(&mut settings);
    spawn_app_on(settings, database).await
}

/// A Postgres app whose database orders text by an ICU locale (as the stock
/// `postgres` image's `en_US.utf8` does) instead of this server's C.UTF-8.
/// Migrated by the app itself, not cloned from the template.
pub async fn spawn_app_on_icu_locale(locale: &str) -> TestApp {
    let mut settings = base_settings();
    let name = format!("sessiond_test_{}", uuid::Uuid::new_v4().simple());
    diesel::sql_query(format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
         LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE '{locale}'"
    ))
    .execute(&mut admin_connection())
    .expect("create a database with an ICU locale");
    settings.database_url = postgres_url(&name).parse().expect("postgres url");
    spawn_app_on(settings, TestDatabase::Postgres { name }).await
}

async fn spawn_app_on(settings: Settings, database: TestDatabase) -> TestApp {
    let app = spawn_app_on_store(settings, database).await;
    assert!(
        !app.admin_password.is_empty(),
        "a fresh store creates the first admin"
    );
    app
}

/// The app on a store that may already hold users (one `sessiond-seed`
/// filled, say): then no first admin is created and `admin_password` is empty.
pub async fn spawn_app_on_store(settings: Settings, database: TestDatabase) -> TestApp {
    let pool = DbPool::new(&settings);
    let database_url = raw_database_url(&settings);
    let app = Application::build(settings)
        .await
        .expect("build application");
    let address = app.address();
    let admin_password = app.initial_admin_password.clone().unwrap_or_default();
    let management_address = app.management_address().map(str::to_owned);
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .user_agent(CHROME_WINDOWS)
            .build()
            .expect("client"),
        pool,
        admin_password,
        management_address,
        database_url,
        database,
        server,
    }
}

/// The URL as the environment would carry it (the display form hides passwords).
pub fn raw_database_url(settings: &Settings) -> String {
    match &settings.database_url {
        sessiond::config::DatabaseUrl::Postgres(url) => url.expose().to_owned(),
        sessiond::config::DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server's worker threads (and with them their pools) now,
        // not at process exit, where still-running workers race the C
        // libraries' exit handlers.
        let stop = self.server.stop(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                tokio::task::block_in_place(|| runtime.block_on(stop));
            }
        }
        // `database` is dropped after this, with the server stopped.
    }
}

/// A test's own database goes with it, whether the test passed or not.
impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { name } = self {
            if let Ok(mut admin) = PgConnection::establish(&postgres_admin_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

/// A logged-in session: what a client holds.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub token: String,
}

impl Session {
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("X-User-Id", HeaderValue::from_str(&self.user_id).unwrap());
        headers.insert("X-Auth-Token", HeaderValue::from_str(&self.token).unwrap());
        headers
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Creates a user directly in the store (there is no HTTP route for it;
    /// the CLI does the same).
    pub fn create_user(&self, username: &str, admin: bool) {
        let name = Username::parse(username).unwrap();
        let hash = password::hash(USER_PASSWORD).unwrap();
        let mut conn = self.pool.get().expect("store reachable");
        users::create(
            &mut conn,
            &name,
            &format!("{username} name"),
            &hash,
            admin,
            clock::now(),
        )
        .expect("create user");
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn login_raw(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/login",
            &serde_json::json!({"user": username, "password": password}),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Session {
        let response = self.login_raw(username, password).await;
        assert_eq!(response.status(), 200, "login as {username}");
        let body: Value = response.json().await.unwrap();
        Session {
            user_id: body["data"]["userId"].as_str().unwrap().to_owned(),
            token: body["data"]["authToken"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn login_admin(&self) -> Session {
        self.login("admin", &self.admin_password.clone()).await
    }

    pub async fn get_as(&self, path: &str, session: &Session) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .headers(session.headers())
            .send()
            .await
            .expect("request")
    }

    pub async fn post_as(&self, path: &str, session: &Session, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .headers(session.headers())
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Enrolls TOTP for the session's user; returns the raw secret and the backup codes.
    pub async fn enroll_totp(&self, session: &Session) -> (Vec<u8>, Vec<String>) {
        let response = self
            .post_as(
                "/api/v1/users.2fa.enableTOTP",
                session,
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let secret = totp_rs::Secret::Encoded(body["secret"].as_str().unwrap().to_owned())
            .to_bytes()
            .unwrap();
        let code = current_code(&secret, 0);
        let response = self
            .post_as(
                "/api/v1/users.2fa.validateTempToken",
                session,
                &serde_json::json!({"code": code}),
            )
            .await;
        assert_eq!(response.status(), 200, "validateTempToken");
        let body: Value = response.json().await.unwrap();
        let codes = body["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        (secret, codes)
    }

    /// Runs SQL on the app's store and returns one text column per row.
    pub fn query_texts(&self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let mut conn = self.pool.get().expect("store reachable");
        diesel::sql_query(sql)
            .load::<Row>(&mut *conn)
            .expect("query")
            .into_iter()
            .map(|r| r.value)
            .collect()
    }

    /// Ends a session's second-factor window now, as the clock would once
    /// the window passed, without sleeping through it.
    pub fn end_two_factor_window(&self, session: &Session) {
        use diesel::{ExpressionMethods, QueryDsl};
        use sessiond::db::schema::sessions;
        let token = sessiond::domain::token::AuthToken::parse(&session.token).unwrap();
        let past = clock::plus_seconds(clock::now(), -1);
        let mut conn = self.pool.get().expect("store reachable");
        let updated = diesel::update(
            sessions::table.filter(sessions::token_hash.eq(token.hash().as_str().to_owned())),
        )
        .set(sessions::two_factor_until.eq(Some(past)))
        .execute(&mut *conn)
        .expect("end the second-factor window");
        assert_eq!(updated, 1, "the session exists");
    }

    pub fn database_name(&self) -> Option<&str> {
        match &self.database {
            TestDatabase::Postgres { name } => Some(name),
            TestDatabase::Sqlite(_) => None,
        }
    }
}

/// The TOTP code `offset` steps from now.
pub fn current_code(secret: &[u8], offset: i64) -> String {
    let step = sessiond::domain::totp::step_at(clock::unix_seconds(clock::now()));
    sessiond::domain::totp::code_for_step(secret, step + offset).unwrap()
}

pub async fn body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, value)
}

/// User agents of different devices, for sessions that sort and filter apart.
pub const AGENTS: [&str; 6] = [
    CHROME_WINDOWS,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/112.0",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
];

impl TestApp {
    /// Logs in from a given User-Agent.
    pub async fn login_from(&self, username: &str, agent: &str) -> Session {
        let response = self
            .client
            .post(self.url("/api/v1/login"))
            .header("User-Agent", agent)
            .json(&serde_json::json!({"user": username, "password": USER_PASSWORD}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "login as {username}");
        let body: Value = response.json().await.unwrap();
        Session {
            user_id: body["data"]["userId"].as_str().unwrap().to_owned(),
            token: body["data"]["authToken"].as_str().unwrap().to_owned(),
        }
    }

    /// `count` sessions for `username`, cycling through `AGENTS`.
    pub async fn sessions_for(&self, username: &str, count: usize) -> Vec<Session> {
        let mut sessions = Vec::with_capacity(count);
        for i in 0..count {
            sessions.push(self.login_from(username, AGENTS[i % AGENTS.len()]).await);
        }
        sessions
    }

    pub async fn get_with_code(
        &self,
        path: &str,
        session: &Session,
        code: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.get(self.url(path)).headers(session.headers());
        if let Some(code) = code {
            request = request.header("x-2fa-code", code);
        }
        request.send().await.expect("request")
    }

    pub async fn post_with_code(
        &self,
        path: &str,
        session: &Session,
        body: &Value,
        code: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(path))
            .headers(session.headers())
            .json(body);
        if let Some(code) = code {
            request = request.header("x-2fa-code", code);
        }
        request.send().await.expect("request")
    }

    /// The admin, logged in with TOTP enrolled and the session already past
    /// the second factor; also returns the TOTP secret.
    pub async fn admin_past_2fa(&self) -> (Session, Vec<u8>) {
        let enrolling = self.login_admin().await;
        let (secret, _) = self.enroll_totp(&enrolling).await;
        let response = self
            .post_json(
                "/api/v1/login",
                &serde_json::json!({"user": "admin", "password": self.admin_password, "code": current_code(&secret, 1)}),
            )
            .await;
        assert_eq!(response.status(), 200, "admin login with code");
        let body: Value = response.json().await.unwrap();
        let session = Session {
            user_id: body["data"]["userId"].as_str().unwrap().to_owned(),
            token: body["data"]["authToken"].as_str().unwrap().to_owned(),
        };
        (session, secret)
    }
}

impl TestApp {
    /// Adds `count` active sessions for `username` straight into the store
    /// (COPY on Postgres), for tests that need a large table quickly.
    pub fn bulk_sessions(&self, username: &str, count: usize) {
        use sessiond::domain::token::{new_session_id, AuthToken};
        use sessiond::store::sessions::NewSession;
        let mut conn = self.pool.get().expect("store reachable");
        let user = users::find_by_username_key(&mut conn, username)
            .expect("look up user")
            .expect("user exists");
        let now = clock::now();
        let rows: Vec<NewSession> = (0..count)
            .map(|i| {
                let token = AuthToken::generate();
                let session_id = new_session_id();
                NewSession {
                    search_term: format!("ChromebrowserWindows{session_id}{}", user.guid),
                    session_id,
                    user_id: user.id,
                    token_hash: token.hash().as_str().to_owned(),
                    token_hint: token.hint(),
                    description: String::new(),
                    device_type: "browser".into(),
                    device_name: "Chrome".into(),
                    device_version: "113.0.0".into(),
                    device_long_version: "113.0.0.0".into(),
                    os_name: "Windows".into(),
                    os_version: "10".into(),
                    device_category: "pc".into(),
                    ip: format!("10.0.{}.{}", i / 250, i % 250),
                    host: "localhost".into(),
                    instance_id: "bulk".into(),
                    login_at: clock::plus_seconds(now, -(i as i64)),
                    last_activity_at: now,
                    expires_at: clock::plus_seconds(now, 86_400),
                    idle_timeout_seconds: 86_400,
                    permanent: false,
                    two_factor_until: None,
                    api_defaults: "{}".into(),
                    updated_at: now,
                    device_key: String::new(),
                    new_device: false,
                }
            })
            .collect();
        // Loading is the test's set-up, not a request: no statement deadline
        // (this pool is the test's own, not the app's).
        if let AnyConnection::Postgresql(pg) = &mut *conn {
            use diesel::connection::SimpleConnection;
            pg.batch_execute("SET statement_timeout = 0")
                .expect("lift the statement timeout");
        }
        for chunk in rows.chunks(10_000) {
            sessiond::store::sessions::bulk::insert_sessions(&mut conn, chunk)
                .expect("bulk insert");
        }
    }

    /// The body of `GET path`, as text.
    pub async fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("a text body")
    }

    /// The value of one unlabelled sample in `/metrics`.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self.get_text("/metrics").await;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }
}

/// Lints a `/metrics` text with `promtool check metrics`, failing the test
/// with promtool's findings.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (Debian's `prometheus` package; .ci/run installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
