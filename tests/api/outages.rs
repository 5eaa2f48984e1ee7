//! The database misbehaving under the real binary: frozen, stopped,
//! restarted, or not there yet when `serve` starts. Each test makes a
//! throwaway Postgres cluster on a free port of its own and drops it at the
//! end; the shared cluster on 5432 is never touched.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::Session;

const TEST_KEY: &str = "c2Vzc2lvbmQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";

/// A Postgres cluster of this test's own, made with Debian's
/// `pg_createcluster`, dropped (with its data) when this goes out of scope.
struct Cluster {
    version: String,
    name: String,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} could not run ({e}); these tests need Debian's postgresql-common")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    fn create() -> Self {
        Self::create_on(free_port())
    }

    fn create_on(port: u16) -> Self {
        let version = std::fs::read_dir("/etc/postgresql")
            .expect("a Debian PostgreSQL installation (/etc/postgresql)")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .max()
            .expect("a PostgreSQL version under /etc/postgresql");
        let name = format!(
            "sessiond_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let cluster = Cluster {
            version,
            name,
            port,
        };
        run(
            "pg_createcluster",
            &[
                &cluster.version,
                &cluster.name,
                "-p",
                &port.to_string(),
                "--start",
                "--start-conf=manual",
                "--",
                "--auth=trust",
                "--no-sync",
            ],
        );
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The postmaster and every backend it started.
    fn pids(&self) -> Vec<String> {
        let pid_file = format!("/var/run/postgresql/{}-{}.pid", self.version, self.name);
        let Ok(postmaster) = std::fs::read_to_string(&pid_file) else {
            return Vec::new();
        };
        let postmaster = postmaster
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        std::iter::once(postmaster)
            .chain(children.lines().map(str::to_owned))
            .filter(|pid| !pid.is_empty())
            .collect()
    }

    fn signal(&self, signal: &str) {
        let pids = self.pids();
        if pids.is_empty() {
            return;
        }
        let mut args = vec![signal.to_owned()];
        args.extend(pids);
        // A backend may exit between listing and signalling: ignore its error.
        let _ = Command::new("kill").args(&args).status();
    }

    /// Every process of the cluster stops answering, sockets left open:
    /// what a hung host or a stalled disk looks like from outside.
    fn freeze(&self) {
        self.signal("-STOP");
    }

    fn thaw(&self) {
        self.signal("-CONT");
    }

    fn ctl(&self, action: &str) {
        run(
            "pg_ctlcluster",
            &[&self.version, &self.name, action, "-m", "fast"],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.thaw();
        let _ = Command::new("pg_dropcluster")
            .args([&self.version, &self.name, "--stop"])
            .output();
    }
}

/// `sessiond serve` with its log lines (JSON) collected as they come.
struct Served {
    child: Child,
    base: String,
    admin_password: String,
    logs: mpsc::Receiver<String>,
    seen: Vec<String>,
}

fn start(
    database_url: &str,
    env: &[(&str, &str)],
) -> (Child, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessiond"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("SESSIOND_SECRET_KEY", TEST_KEY)
        .env("SESSIOND_BIND", "127.0.0.1:0")
        .env("SESSIOND_WORKERS", "1")
        .env("SESSIOND_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start sessiond serve");
    let lines = |stream: Box<dyn std::io::Read + Send>| {
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        receive
    };
    let stdout = lines(Box::new(child.stdout.take().unwrap()));
    let stderr = lines(Box::new(child.stderr.take().unwrap()));
    (child, stdout, stderr)
}

impl Served {
    fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        let (child, stdout, logs) = start(database_url, env);
        let (base, admin_password) = banner(&stdout, Duration::from_secs(60));
        Served {
            child,
            base,
            admin_password,
            logs,
            seen: Vec::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Every log line so far.
    fn logs(&mut self) -> &[String] {
        self.seen.extend(self.logs.try_iter());
        &self.seen
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the banner: the address and the first admin's password.
fn banner(stdout: &mpsc::Receiver<String>, within: Duration) -> (String, String) {
    let mut address = None;
    let mut password = None;
    while address.is_none() || password.is_none() {
        let line = stdout
            .recv_timeout(within)
            .expect("sessiond printed its banner");
        if let Some(rest) = line.strip_prefix("sessiond listening on ") {
            address = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some((_, rest)) = line.split_once("one-time password ") {
            password = Some(rest.trim().to_owned());
        }
    }
    (address.unwrap(), password.unwrap())
}

/// A client that gives up long after any bound the service promises, so a
/// hang fails the test instead of stalling it.
fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

async fn login(client: &reqwest::Client, served: &Served) -> Session {
    let response = client
        .post(served.url("/api/v1/login"))
        .json(&json!({"user": "admin", "password": served.admin_password}))
        .send()
        .await
        .expect("login answered");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    Session {
        user_id: body["data"]["userId"].as_str().unwrap().to_owned(),
        token: body["data"]["authToken"].as_str().unwrap().to_owned(),
    }
}

async fn me(client: &reqwest::Client, served: &Served, session: &Session) -> u16 {
    client
        .get(served.url("/api/v1/me"))
        .headers(session.headers())
        .send()
        .await
        .expect("/me answered within the client's bound")
        .status()
        .as_u16()
}

async fn ready(client: &reqwest::Client, served: &Served) -> u16 {
    client
        .get(served.url("/readyz"))
        .send()
        .await
        .expect("/readyz answered within the client's bound")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_gets_503_within_the_store_timeout_and_recovers() {
    let cluster = Cluster::create();
    let served = Served::start(
        &cluster.url(),
        &[
            ("SESSIOND_DB_TIMEOUT_SECONDS", "2"),
            ("SESSIOND_STATEMENT_TIMEOUT_MS", "1500"),
        ],
    );
    // Before the fix a request waited as long as the freeze lasted; the
    // client's bound is well under this test's freeze.
    let client = client(Duration::from_secs(8));
    let admin = login(&client, &served).await;
    assert_eq!(me(&client, &served, &admin).await, 200);

    cluster.freeze();
    let response = client
        .get(served.url("/api/v1/me"))
        .headers(admin.headers())
        .send()
        .await
        .expect("answered while the database is frozen");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(ready(&client, &served).await, 503);
    assert_eq!(me(&client, &served, &admin).await, 503, "still frozen");
    cluster.thaw();

    let thawed = Instant::now();
    while ready(&client, &served).await != 200 {
        assert!(
            thawed.elapsed() < Duration::from_secs(30),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..10 {
        assert_eq!(me(&client, &served, &admin).await, 200, "after the thaw");
    }
    assert_eq!(ready(&client, &served).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_gets_fast_503s_with_its_cause_logged_once_and_a_restart_costs_no_request(
) {
    let cluster = Cluster::create();
    let mut served = Served::start(
        &cluster.url(),
        // A long store timeout: the answers below must come from knowing the
        // database is down, not from waiting the timeout out.
        &[("SESSIOND_DB_TIMEOUT_SECONDS", "30")],
    );
    let client = client(Duration::from_secs(5));
    let admin = login(&client, &served).await;
    assert_eq!(me(&client, &served, &admin).await, 200);

    cluster.ctl("stop");
    for _ in 0..20 {
        assert_eq!(me(&client, &served, &admin).await, 503);
    }
    assert_eq!(ready(&client, &served).await, 503);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ready(&client, &served).await, 503);

    let logs = served.logs().to_vec();
    for line in &logs {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(
            parsed.is_ok(),
            "a log line that is not one JSON object: {line}"
        );
    }
    let outage: Vec<&String> = logs
        .iter()
        .filter(|line| line.contains("\"level\":\"ERROR\""))
        .collect();
    // Once when it starts, and once more if its cause changes (a database
    // shutting down first says so, then refuses connections).
    assert!(
        (1..=2).contains(&outage.len()),
        "the outage is logged once per cause, not per request: {outage:#?}"
    );
    assert!(
        outage
            .iter()
            .any(|line| line.contains("Connection refused")),
        "the real cause: {outage:#?}"
    );
    assert!(
        !logs
            .iter()
            .any(|line| line.contains("Invalid connection url")),
        "{logs:#?}"
    );

    cluster.ctl("start");
    let back = Instant::now();
    while ready(&client, &served).await != 200 {
        assert!(back.elapsed() < Duration::from_secs(60), "never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(me(&client, &served, &admin).await, 200);
    assert!(
        served
            .logs()
            .iter()
            .any(|line| line.contains("the database is reachable again")),
        "the recovery is logged"
    );

    // A restart between two requests: the pool's connections all died with
    // it, and none of them may cost a request.
    cluster.ctl("restart");
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..20 {
        assert_eq!(me(&client, &served, &admin).await, 200, "after a restart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_a_database_that_is_not_up_yet() {
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let (mut child, stdout, stderr) = start(&url, &[]);
    // It says what it waits for, and why, more than once.
    let mut waiting = Vec::new();
    while waiting.len() < 2 {
        let line = stderr
            .recv_timeout(Duration::from_secs(30))
            .expect("serve keeps logging while it waits");
        if line.contains("waiting for the database") {
            waiting.push(line);
        }
    }
    assert!(waiting[0].contains("Connection refused"), "{}", waiting[0]);
    assert!(child.try_wait().unwrap().is_none(), "serve gave up");

    // The database arrives: serve comes up without being restarted.
    let cluster = Cluster::create_on(port);
    let (base, _) = banner(&stdout, Duration::from_secs(60));
    let status = client(Duration::from_secs(5))
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let _ = child.kill();
    let _ = child.wait();
    drop(cluster);
}

#[test]
fn serve_gives_up_after_the_startup_timeout_when_told_to() {
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let (mut child, _stdout, stderr) = start(&url, &[("SESSIOND_DB_STARTUP_TIMEOUT_SECONDS", "2")]);
    let status = child.wait().unwrap();
    assert!(!status.success());
    let logs: Vec<String> = stderr.iter().collect();
    assert!(
        logs.iter().any(|line| line.contains("Connection refused")),
        "{logs:#?}"
    );
}
