//! Webhooks: the real app delivers every event to receivers this test runs,
//! signed as Standard Webhooks specifies (checked here with an HMAC of the
//! test's own), once each, in order, filtered per endpoint; failures are
//! retried, across a restart too; a failing endpoint holds no other up;
//! two instances on one Postgres store deliver each event once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Url;
use serde_json::{json, Value};
use sessiond::app::Application;
use sessiond::config::{SecretString, Settings};
use sessiond::db::DbPool;
use sessiond::domain::{clock, password, username::Username};
use sessiond::store::webhooks::EndpointRow;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{
    body, current_code, promtool_check, spawn_app_on_store, spawn_app_with, test_settings, Session,
    Store, CHROME_WINDOWS, USER_PASSWORD,
};
use crate::on_both_stores;

on_both_stores!(
    every_event_arrives_signed_once_in_order_and_filters_are_honoured,
    failed_deliveries_are_retried_and_survive_a_restart,
    a_failing_endpoint_holds_up_no_other,
);

/// The signing key, and the secret that carries it.
const KEY: &[u8; 32] = b"sessiond-webhook-test-key-32byte";

fn secret() -> String {
    format!("whsec_{}", STANDARD.encode(KEY))
}

fn with_webhooks(settings: &mut Settings, urls: &str) {
    settings.webhook_urls = urls.to_owned();
    settings.webhook_secret = Some(SecretString::new(secret()));
}

/// How long a test waits for deliveries before it fails.
const PATIENCE: Duration = Duration::from_secs(90);

/// Polls `done` until it holds, failing after [`PATIENCE`].
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------

/// One request the receiver took, and the status it answered.
#[derive(Clone, Debug)]
struct Delivery {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    status: u16,
}

#[derive(Default)]
struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    /// Answer 500 to everything.
    failing: AtomicBool,
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// A minimal HTTP receiver: records every POST and answers 200, or 500
/// while failing, and always 500 on paths under `/broken`; on paths under
/// `/hang` it never answers. It can be stopped (connections refused) and
/// started again on the same port.
struct Receiver {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Self {
        let mut receiver = Receiver {
            port: 0,
            shared: Arc::default(),
            accept: None,
        };
        receiver.listen().await;
        receiver
    }

    async fn listen(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(format!("127.0.0.1:{}", self.port).parse().unwrap())
            .expect("bind the receiver");
        let listener = socket.listen(64).unwrap();
        self.port = listener.local_addr().unwrap().port();
        let shared = self.shared.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = tokio::spawn(serve(stream, shared.clone()));
                shared.connections.lock().unwrap().push(connection);
            }
        }));
    }

    /// Stops listening and drops every connection: from now on
    /// connections are refused.
    fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for connection in self.shared.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// Listens again, on the same port.
    async fn restart(&mut self) {
        self.stop();
        // The aborted accept loop drops its listener when the abort lands.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            let address = format!("127.0.0.1:{}", self.port).parse().unwrap();
            if socket.bind(address).is_ok() && socket.listen(1).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "the receiver's port stays taken");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.listen().await;
    }

    fn fail(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// The verified payloads answered 2xx on `path`, in arrival order.
    fn delivered(&self, path: &str) -> Vec<Value> {
        self.deliveries()
            .iter()
            .filter(|d| d.path == path && d.status == 200)
            .map(verify)
            .collect()
    }

    /// (webhook-id, type) of what [`Receiver::delivered`] returns.
    fn delivered_ids(&self, path: &str) -> Vec<(String, String)> {
        self.delivered(path)
            .iter()
            .map(|payload| {
                (
                    payload["data"]["eventId"].as_str().unwrap().to_owned(),
                    payload["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads requests off one connection, answering each.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buffer = Vec::new();
    loop {
        let Some(end) = find(&buffer, b"\r\n\r\n") else {
            if !read_more(&mut stream, &mut buffer).await {
                return;
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        let mut lines = head.lines();
        let path = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned();
        let headers: HashMap<String, String> = lines
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            })
            .collect();
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            if !read_more(&mut stream, &mut buffer).await {
                return;
            }
        }
        let body = buffer[end + 4..end + 4 + length].to_vec();
        buffer.drain(..end + 4 + length);
        if path.starts_with("/hang") {
            std::future::pending::<()>().await;
        }
        let status = if shared.failing.load(Ordering::SeqCst) || path.starts_with("/broken") {
            500
        } else {
            200
        };
        shared.deliveries.lock().unwrap().push(Delivery {
            path,
            headers,
            body,
            status,
        });
        let reason = if status == 200 {
            "OK"
        } else {
            "Internal Server Error"
        };
        let answer = format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n\r\n");
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// HMAC-SHA256 (RFC 2104), written out here so the check does not share
/// the service's code.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| -> Vec<u8> { block.iter().map(|k| k ^ byte).collect() };
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Checks a delivery as a Standard Webhooks consumer would and returns its
/// payload: the signature over `id.timestamp.body`, a recent timestamp, the
/// id matching the event's, and the headers.
fn verify(delivery: &Delivery) -> Value {
    let header = |name: &str| {
        delivery
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header: {delivery:?}"))
            .as_str()
    };
    let id = header("webhook-id");
    let timestamp: i64 = header("webhook-timestamp").parse().expect("unix seconds");
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(&delivery.body);
    let expected = format!("v1,{}", STANDARD.encode(hmac_sha256(KEY, &signed)));
    assert!(
        header("webhook-signature")
            .split(' ')
            .any(|signature| signature == expected),
        "bad signature on {delivery:?}"
    );
    let now = clock::unix_seconds(clock::now());
    assert!(
        (now - timestamp).abs() <= 300,
        "timestamp {timestamp}, now {now}"
    );
    assert_eq!(header("content-type"), "application/json");
    assert!(
        header("user-agent").starts_with("sessiond/"),
        "{delivery:?}"
    );
    let payload: Value = serde_json::from_slice(&delivery.body).expect("a JSON body");
    assert_eq!(
        payload["data"]["eventId"], id,
        "webhook-id is the event's id"
    );
    assert!(payload["type"].is_string() && payload["timestamp"].is_string());
    payload
}

// ---------------------------------------------------------------------------
// The store and the app
// ---------------------------------------------------------------------------

/// (event id, type) of every event in the log, oldest first.
fn event_log(pool: &DbPool) -> Vec<(String, String)> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        kind: String,
    }
    let mut conn = pool.get().expect("store reachable");
    diesel::RunQueryDsl::load::<Row>(
        diesel::sql_query("SELECT event_id, type AS kind FROM session_events ORDER BY id"),
        &mut *conn,
    )
    .expect("read the event log")
    .into_iter()
    .map(|row| (row.event_id, row.kind))
    .collect()
}

fn endpoint_row(pool: &DbPool, url: &str) -> EndpointRow {
    let id = sessiond::webhooks::endpoint_id(&Url::parse(url).unwrap());
    let mut conn = pool.get().expect("store reachable");
    sessiond::store::webhooks::find(&mut conn, &id)
        .expect("read the endpoint")
        .expect("the endpoint has a row")
}

fn create_user(pool: &DbPool, username: &str) {
    let hash = password::hash(USER_PASSWORD).unwrap();
    let mut conn = pool.get().expect("store reachable");
    sessiond::store::users::create(
        &mut conn,
        &Username::parse(username).unwrap(),
        username,
        &hash,
        false,
        clock::now(),
    )
    .expect("create user");
}

/// An app started here rather than by the helpers, to be stopped and
/// started again on the same store.
struct Instance {
    address: String,
    handle: ServerHandle,
    served: JoinHandle<std::io::Result<()>>,
}

impl Instance {
    async fn start(settings: Settings) -> Self {
        let app = Application::build(settings)
            .await
            .expect("build application");
        Instance {
            address: app.address(),
            handle: app.handle(),
            served: tokio::spawn(app.run_until_stopped()),
        }
    }

    /// Stops the server and waits until its webhook delivery has stopped.
    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.served.await;
    }

    async fn login(&self, username: &str, password: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/api/v1/login", self.address))
            .header("user-agent", CHROME_WINDOWS)
            .json(&json!({"user": username, "password": password}))
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }
}

fn types_of(log: &[(String, String)], wanted: &[&str]) -> Vec<(String, String)> {
    log.iter()
        .filter(|(_, kind)| wanted.contains(&kind.as_str()))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

async fn every_event_arrives_signed_once_in_order_and_filters_are_honoured(store: Store) {
    let receiver = Receiver::start().await;
    let urls = format!(
        "{}; {} two_factor.*; {} session.started session.ended login.throttled",
        receiver.url("/all"),
        receiver.url("/two-factor"),
        receiver.url("/sessions")
    );
    let app = spawn_app_with(store, |s| {
        with_webhooks(s, &urls);
        s.login_max_failures_per_user = 3;
        s.two_factor_max_failures = 2;
    })
    .await;
    for name in ["alice", "bob", "carol", "mallory"] {
        app.create_user(name, false);
    }
    // What must never appear in a payload.
    let mut secrets: Vec<String> = vec![
        USER_PASSWORD.into(),
        app.admin_password.clone(),
        "wrong password".into(),
    ];
    let mut remember = |session: &Session| secrets.push(session.token.clone());

    // Sessions start on new devices; one logs the other out, then itself.
    let alice = app.sessions_for("alice", 2).await;
    alice.iter().for_each(&mut remember);
    let status = app
        .post_as("/api/v1/sessions/logout.others", &alice[1], &json!({}))
        .await
        .status();
    assert_eq!(status, 200, "logout.others");
    let status = app
        .post_as("/api/v1/logout", &alice[1], &json!({}))
        .await
        .status();
    assert_eq!(status, 200, "logout");

    // Wrong passwords, then the limit.
    for _ in 0..3 {
        assert_eq!(
            app.login_raw("mallory", "wrong password").await.status(),
            401
        );
    }
    assert_eq!(app.login_raw("mallory", USER_PASSWORD).await.status(), 429);

    // Second factor: enrolment and success (the admin), an admin revoke.
    let (admin, admin_totp) = app.admin_past_2fa().await;
    remember(&admin);
    let bob = app.login("bob", USER_PASSWORD).await;
    remember(&bob);
    let (_, rows) = body(
        app.get_as(
            &format!(
                "/api/admin/v1/authenticated-sessions/user-sessions/{}?pageSize=100",
                bob.user_id
            ),
            &admin,
        )
        .await,
    )
    .await;
    let bob_session = rows[0]["ID"].as_i64().expect("bob's session");
    let (status, revoked) = body(
        app.post_as(
            "/api/admin/v1/authenticated-sessions/revoke",
            &admin,
            &json!({"Session": bob_session}),
        )
        .await,
    )
    .await;
    assert_eq!((status, revoked), (200, json!({"Success": true})));

    // Enrolment and disabling (carol).
    let carol = app.login("carol", USER_PASSWORD).await;
    remember(&carol);
    let (carol_totp, backup_codes) = app.enroll_totp(&carol).await;
    let disable_code = current_code(&carol_totp, 1);
    let status = app
        .post_as(
            "/api/v1/users.2fa.disableTOTP",
            &carol,
            &json!({"code": disable_code}),
        )
        .await
        .status();
    assert_eq!(status, 200, "disableTOTP");
    secrets.extend(backup_codes);

    // Wrong codes until the admin is locked out.
    for wrong in ["000000", "000001", "000002"] {
        app.post_json(
            "/api/v1/login",
            &json!({"user": "admin", "password": app.admin_password, "code": wrong}),
        )
        .await;
    }
    for secret in [&admin_totp, &carol_totp] {
        for offset in -2..=2 {
            secrets.push(current_code(secret, offset));
        }
        secrets.push(
            totp_rs::Secret::Raw(secret.clone())
                .to_encoded()
                .to_string(),
        );
    }

    let log = event_log(&app.pool);
    let types: HashSet<&str> = log.iter().map(|(_, kind)| kind.as_str()).collect();
    for kind in [
        "session.started",
        "session.ended",
        "session.new_device",
        "login.failed",
        "login.throttled",
        "two_factor.succeeded",
        "two_factor.failed",
        "two_factor.locked",
        "two_factor.enrolled",
        "two_factor.disabled",
    ] {
        assert!(types.contains(kind), "no {kind} event in {log:?}");
    }
    let two_factor: Vec<_> = log
        .iter()
        .filter(|(_, kind)| kind.starts_with("two_factor."))
        .cloned()
        .collect();
    let sessions = types_of(
        &log,
        &["session.started", "session.ended", "login.throttled"],
    );

    wait_for("every delivery", || {
        receiver.delivered_ids("/all").len() >= log.len()
            && receiver.delivered_ids("/two-factor").len() >= two_factor.len()
            && receiver.delivered_ids("/sessions").len() >= sessions.len()
    })
    .await;

    // Each event once, in the log's order; each filter honoured.
    assert_eq!(receiver.delivered_ids("/all"), log);
    assert_eq!(receiver.delivered_ids("/two-factor"), two_factor);
    assert_eq!(receiver.delivered_ids("/sessions"), sessions);
    for delivery in receiver.deliveries() {
        assert_eq!(delivery.status, 200, "{delivery:?}");
        let text = String::from_utf8_lossy(&delivery.body);
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a payload carries `{secret}`: {text}"
            );
        }
    }
    // The admin's revoke says who ended the session.
    let revoke = receiver
        .delivered("/all")
        .into_iter()
        .find(|p| p["type"] == "session.ended" && p["data"]["endedBy"].is_string())
        .expect("the revoke's event");
    assert_eq!(revoke["data"]["userId"], bob.user_id);

    // Metrics: per endpoint id (never the URL), caught up, promtool-clean.
    let all_id = sessiond::webhooks::endpoint_id(&Url::parse(&receiver.url("/all")).unwrap());
    let delivered = format!(
        "sessiond_webhook_deliveries_total{{endpoint=\"{all_id}\",result=\"delivered\"}} {}",
        log.len()
    );
    let lag = format!("sessiond_webhook_lag_seconds{{endpoint=\"{all_id}\"}} 0");
    let pending = format!("sessiond_webhook_pending_events{{endpoint=\"{all_id}\"}} 0");
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let text = app.get_text("/metrics").await;
        let lines: HashSet<&str> = text.lines().collect();
        if [&delivered, &lag, &pending]
            .iter()
            .all(|line| lines.contains(line.as_str()))
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no `{delivered}`, `{lag}`, `{pending}` in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!text.contains("127.0.0.1"), "a URL in the metrics");
    promtool_check(&text);
}

async fn failed_deliveries_are_retried_and_survive_a_restart(store: Store) {
    let mut receiver = Receiver::start().await;
    receiver.fail(true);
    let url = receiver.url("/hook");
    let (mut settings, database) = test_settings(store);
    with_webhooks(&mut settings, &url);
    let pool = DbPool::new(&settings);

    let first = Instance::start(settings.clone()).await;
    create_user(&pool, "alice");
    assert_eq!(first.login("alice", USER_PASSWORD).await, 200);
    assert_eq!(first.login("alice", "wrong password").await, 401);

    // Answered 500: the first event is tried again, and nothing after it.
    let first_event = event_log(&pool)[0].0.clone();
    wait_for("a retry", || {
        receiver
            .deliveries()
            .iter()
            .filter(|d| d.status == 500)
            .count()
            >= 2
    })
    .await;
    for delivery in receiver.deliveries() {
        assert_eq!(verify(&delivery)["data"]["eventId"], first_event.as_str());
    }
    let row = endpoint_row(&pool, &url);
    assert!(
        row.attempts >= 1 && row.next_attempt_at.is_some(),
        "{row:?}"
    );

    // Refused connections are failures too.
    receiver.stop();
    wait_for("an attempt at a refusing receiver", || {
        let row = endpoint_row(&pool, &url);
        !row.last_error.contains("500") && !row.last_error.is_empty()
    })
    .await;

    // Stopped with everything undelivered; started again on the same
    // store with the receiver back, it delivers all of it, and the new
    // events after it.
    first.stop().await;
    receiver.restart().await;
    receiver.fail(false);
    let second = spawn_app_on_store(settings, database).await;
    assert_eq!(second.login_raw("alice", USER_PASSWORD).await.status(), 200);
    let log = event_log(&pool);
    assert!(log.len() >= 4, "{log:?}");
    wait_for("every event after the restart", || {
        receiver.delivered_ids("/hook").len() >= log.len()
    })
    .await;
    assert_eq!(receiver.delivered_ids("/hook"), log);
    wait_for("the retry state cleared", || {
        let row = endpoint_row(&pool, &url);
        row.attempts == 0 && row.last_error.is_empty() && row.next_attempt_at.is_none()
    })
    .await;
}

async fn a_failing_endpoint_holds_up_no_other(store: Store) {
    let receiver = Receiver::start().await;
    // A port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let urls = format!(
        "{}; {}; http://127.0.0.1:{closed}/refused; {}",
        receiver.url("/broken"),
        receiver.url("/hang"),
        receiver.url("/ok"),
    );
    let app = spawn_app_with(store, |s| with_webhooks(s, &urls)).await;
    app.create_user("alice", false);
    for _ in 0..3 {
        app.login("alice", USER_PASSWORD).await;
        app.login_raw("alice", "wrong password").await;
    }
    let log = event_log(&app.pool);
    wait_for("the healthy endpoint's deliveries", || {
        receiver.delivered_ids("/ok").len() >= log.len()
    })
    .await;
    assert_eq!(receiver.delivered_ids("/ok"), log);
    // The others are still at the first event, retrying.
    wait_for("an attempt at the broken endpoint", || {
        receiver.deliveries().iter().any(|d| d.path == "/broken")
    })
    .await;
    for delivery in receiver.deliveries() {
        if delivery.path != "/ok" {
            assert_eq!(delivery.path, "/broken", "{delivery:?}");
            assert_eq!(verify(&delivery)["data"]["eventId"], log[0].0.as_str());
        }
    }
    for url in [
        receiver.url("/broken"),
        format!("http://127.0.0.1:{closed}/refused"),
    ] {
        wait_for("a recorded failure", || {
            endpoint_row(&app.pool, &url).attempts >= 1
        })
        .await;
        let row = endpoint_row(&app.pool, &url);
        assert!(!row.last_error.is_empty(), "{row:?}");
    }
}

/// Two instances on one Postgres store, started at once: each event is
/// delivered once; when the one delivering stops, the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_event_once() {
    let receiver = Receiver::start().await;
    let urls = format!("{}; {} session.*", receiver.url("/a"), receiver.url("/b"));
    let (mut settings, _database) = test_settings(Store::Postgres);
    with_webhooks(&mut settings, &urls);
    let pool = DbPool::new(&settings);
    let mut one = settings.clone();
    one.instance_id = Some("one".into());
    let mut two = settings.clone();
    two.instance_id = Some("two".into());
    let (one, two) = tokio::join!(Instance::start(one), Instance::start(two));
    let mut instances = HashMap::from([("one", one), ("two", two)]);

    create_user(&pool, "alice");
    for round in 0..4 {
        for instance in instances.values() {
            assert_eq!(instance.login("alice", USER_PASSWORD).await, 200);
            if round % 2 == 0 {
                assert_eq!(instance.login("alice", "wrong password").await, 401);
            }
        }
    }
    let session_types = ["session.started", "session.ended", "session.new_device"];
    let log = event_log(&pool);
    let sessions = types_of(&log, &session_types);
    wait_for("every delivery", || {
        receiver.delivered_ids("/a").len() >= log.len()
            && receiver.delivered_ids("/b").len() >= sessions.len()
    })
    .await;
    assert_eq!(receiver.delivered_ids("/a"), log);
    assert_eq!(receiver.delivered_ids("/b"), sessions);

    // The instance delivering to `/a` stops; the other takes it over.
    let holder = endpoint_row(&pool, &receiver.url("/a")).lease_owner;
    let stopped = instances
        .remove(holder.as_str())
        .unwrap_or_else(|| panic!("the lease is held by `{holder}`"));
    stopped.stop().await;
    let other = instances.values().next().unwrap();
    assert_eq!(other.login("alice", USER_PASSWORD).await, 200);
    let log = event_log(&pool);
    let sessions = types_of(&log, &session_types);
    wait_for("every delivery after the takeover", || {
        receiver.delivered_ids("/a").len() >= log.len()
            && receiver.delivered_ids("/b").len() >= sessions.len()
    })
    .await;
    assert_eq!(receiver.delivered_ids("/a"), log);
    assert_eq!(receiver.delivered_ids("/b"), sessions);
    assert_ne!(endpoint_row(&pool, &receiver.url("/a")).lease_owner, holder);
    for (_, instance) in instances {
        instance.stop().await;
    }
}

/// Bad webhook settings stop the start, naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_at_start_up() {
    let good_secret = secret();
    for (urls, secret, variable) in [
        (
            "https://example.test/hook; not a url",
            Some(good_secret.as_str()),
            "SESSIOND_WEBHOOK_URLS",
        ),
        (
            "https://example.test/hook session.nope",
            Some(good_secret.as_str()),
            "SESSIOND_WEBHOOK_URLS",
        ),
        (
            "https://example.test/a; https://example.test/a",
            Some(good_secret.as_str()),
            "SESSIOND_WEBHOOK_URLS",
        ),
        ("https://example.test/hook", None, "SESSIOND_WEBHOOK_SECRET"),
        (
            "https://example.test/hook",
            Some("c2VjcmV0LXdpdGhvdXQtcHJlZml4LTMyLWJ5dGVzISE="),
            "SESSIOND_WEBHOOK_SECRET",
        ),
        (
            "https://example.test/hook",
            Some("whsec_dG9vIHNob3J0"),
            "SESSIOND_WEBHOOK_SECRET",
        ),
    ] {
        let (mut settings, _database) = test_settings(Store::Sqlite);
        settings.webhook_urls = urls.into();
        settings.webhook_secret = secret.map(SecretString::new);
        let message = match Application::build(settings).await {
            Ok(_) => panic!("{urls} with {secret:?} was accepted"),
            Err(error) => format!("{error:#}"),
        };
        assert!(
            message.starts_with(variable),
            "{urls} / {secret:?}: {message}"
        );
    }
}
