//! The real `sessiond` binary: `serve` as a user starts it, its logs, its
//! shutdown, and the CLI commands.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    body, current_code, raw_database_url, spawn_app, test_settings, Session, Store, USER_PASSWORD,
};
use crate::on_both_stores;

const TEST_KEY: &str = "c2Vzc2lvbmQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";

fn sessiond(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessiond"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("SESSIOND_SECRET_KEY", TEST_KEY);
    command
}

/// Runs a CLI command to completion: (success, stdout, stderr).
pub(crate) fn run(
    database_url: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut child = sessiond(database_url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sessiond");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) struct Served {
    child: Child,
    pub(crate) address: String,
    pub(crate) admin_password: String,
    stdout_rest: mpsc::Receiver<String>,
}

/// Starts `sessiond serve` on port 0 and reads its banner.
fn serve(database_url: &str) -> Served {
    serve_with(database_url, &[])
}

/// `serve` with more (or overriding) environment variables. Standard error
/// is read only by `stop`: keep `RUST_LOG` low for long runs.
pub(crate) fn serve_with(database_url: &str, env: &[(&str, &str)]) -> Served {
    let mut child = sessiond(database_url)
        .arg("serve")
        .env("SESSIOND_BIND", "127.0.0.1:0")
        .env("SESSIOND_WORKERS", "1")
        .env("SESSIOND_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sessiond serve");
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut address = None;
    let mut admin_password = None;
    while address.is_none() || admin_password.is_none() {
        let line = received
            .recv_timeout(Duration::from_secs(30))
            .expect("sessiond printed its banner");
        if let Some(rest) = line.strip_prefix("sessiond listening on ") {
            address = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some((_, password)) = line.split_once("one-time password ") {
            admin_password = Some(password.trim().to_owned());
        }
    }
    Served {
        child,
        address: address.unwrap(),
        admin_password: admin_password.unwrap(),
        stdout_rest: received,
    }
}

/// Sends SIGTERM and waits; returns (exit success, stderr).
pub(crate) fn stop(mut served: Served) -> (bool, String) {
    let pid = served.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut stderr = String::new();
    served
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = served.child.wait().unwrap();
    (status.success(), stderr)
}

/// Every string in a JSON log line except the timestamp and request id.
fn strings(value: &Value, key: &str, out: &mut Vec<String>) {
    match value {
        Value::String(s) if key != "timestamp" && key != "request_id" => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, key, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| strings(v, k, out)),
        _ => {}
    }
}

on_both_stores!(
    serve_logs_no_secret_and_stops_gracefully,
    the_cli_manages_users_and_sessions,
    the_cli_answers_scripts_in_json_and_manages_a_users_lifecycle,
);

async fn serve_logs_no_secret_and_stops_gracefully(store: Store) {
    let (settings, _database) = test_settings(store);
    let url = raw_database_url(&settings);
    let served = serve(&url);
    let client = reqwest::Client::new();
    let address = served.address.clone();
    let post = |path: &str, body: Value, session: Option<&Session>| {
        let mut request = client.post(format!("{address}{path}")).json(&body);
        if let Some(session) = session {
            request = request.headers(session.headers());
        }
        request.send()
    };
    let mut secrets = vec![served.admin_password.clone()];

    let (_, login) = body(
        post(
            "/api/v1/login",
            json!({"user": "admin", "password": served.admin_password}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    let admin = Session {
        user_id: login["data"]["userId"].as_str().unwrap().to_owned(),
        token: login["data"]["authToken"].as_str().unwrap().to_owned(),
    };
    secrets.push(admin.token.clone());
    let (_, enrollment) = body(
        post("/api/v1/users.2fa.enableTOTP", json!({}), Some(&admin))
            .await
            .unwrap(),
    )
    .await;
    let secret_base32 = enrollment["secret"].as_str().unwrap().to_owned();
    secrets.push(secret_base32.clone());
    let secret = totp_rs::Secret::Encoded(secret_base32).to_bytes().unwrap();
    let code = current_code(&secret, 0);
    secrets.push(code.clone());
    let (status, confirmed) = body(
        post(
            "/api/v1/users.2fa.validateTempToken",
            json!({"code": code}),
            Some(&admin),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let backup: Vec<String> = confirmed["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    secrets.extend(backup.iter().cloned());
    let second_code = current_code(&secret, 1);
    secrets.push(second_code.clone());
    let (status, relogin) = body(
        post(
            "/api/v1/login",
            json!({"user": "admin", "password": served.admin_password, "code": second_code}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    secrets.push(relogin["data"]["authToken"].as_str().unwrap().to_owned());
    let (status, _) = body(
        post(
            "/api/v1/login",
            json!({"user": "admin", "password": served.admin_password, "code": backup[0]}),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let wrong_password = "definitely-wrong-password";
    secrets.push(wrong_password.to_owned());
    post(
        "/api/v1/login",
        json!({"user": "admin", "password": wrong_password}),
        None,
    )
    .await
    .unwrap();
    let me = client
        .get(format!("{address}/api/v1/me"))
        .headers(admin.headers())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // The access line of a request says who sent it.
    let tagged = client
        .get(format!("{address}/api/v1/me"))
        .headers(admin.headers())
        .header("user-agent", "access-log-test/1.0 \"quoted\"")
        .header("x-request-id", "access-log-me")
        .send()
        .await
        .unwrap();
    assert_eq!(tagged.status(), 200);
    let probe = client
        .get(format!("{address}/healthz"))
        .header("x-request-id", "access-log-probe")
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);
    post("/api/v1/logout", json!({}), Some(&admin))
        .await
        .unwrap();

    let rest: Vec<String> = served.stdout_rest.try_iter().collect();
    let (exited_cleanly, stderr) = stop(served);

    assert!(exited_cleanly, "SIGTERM ends the process with success");
    let records: Vec<Value> = stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"))
        })
        .collect();
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes when standard error is not a terminal"
    );
    let finished: Vec<&Value> = records
        .iter()
        .filter(|r| r["message"] == "request finished")
        .collect();
    let line_of = |id: &str| {
        *finished
            .iter()
            .find(|r| r["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}: {stderr}"))
    };
    let me_line = line_of("access-log-me");
    assert_eq!(me_line["level"], "INFO", "{me_line}");
    assert_eq!(me_line["route"], "/api/v1/me", "{me_line}");
    assert_eq!(me_line["status"], 200, "{me_line}");
    assert_eq!(me_line["client_ip"], "127.0.0.1", "{me_line}");
    assert_eq!(me_line["user_id"], admin.user_id.as_str(), "{me_line}");
    assert_eq!(
        me_line["user_agent"], r#""access-log-test/1.0 \"quoted\"""#,
        "{me_line}"
    );
    assert!(
        me_line.get("trace_id").is_none() && me_line.get("span_id").is_none(),
        "no trace ids when traces are not exported: {me_line}"
    );
    assert_eq!(
        line_of("access-log-probe")["level"],
        "DEBUG",
        "health probes are logged at DEBUG"
    );
    assert!(finished.len() >= 8, "every request is logged: {stderr}");
    assert!(
        finished.iter().all(|r| r["span"]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36 || id.starts_with("access-log-"))),
        "each carries its request id, or the client's"
    );
    let mut logged = Vec::new();
    for record in &records {
        strings(record, "", &mut logged);
    }
    logged.extend(rest);
    for secret in &secrets {
        let leaks: Vec<&String> = logged
            .iter()
            .filter(|s| s.contains(secret.as_str()))
            .collect();
        assert!(leaks.is_empty(), "a secret reached the logs: {leaks:?}");
    }
}

/// Only `serve` and `migrate` change the schema; other commands say to migrate.
#[test]
fn commands_other_than_serve_and_migrate_leave_the_schema_alone() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let (ok, _, err) = run(&url, &["user", "list"], None);
    assert!(!ok);
    assert!(
        err.contains("lacks") && err.contains("run `sessiond migrate`"),
        "{err}"
    );
    let (ok, out, err) = run(&url, &["migrate"], None);
    assert!(ok, "{out} {err}");
    let (ok, out, err) = run(&url, &["user", "list", "--output", "json"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "[]");
}

/// Each command's `--help` lists the settings it reads, `serve`'s all of
/// them; the other commands still read theirs from the environment, and
/// leave `serve`'s alone.
#[test]
fn each_commands_help_lists_the_settings_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("help.db").display());
    let help = |args: &[&str]| {
        let (ok, out, err) = run(&url, args, None);
        assert!(ok, "{args:?}: {err}");
        out
    };
    let server_only = [
        "--bind",
        "SESSIOND_BIND",
        "--hash-concurrency",
        "SESSIOND_HASH_CONCURRENCY",
        "SESSIOND_METRICS_BIND",
        "SESSIOND_SECRET_KEY",
        "SESSIOND_STATEMENT_TIMEOUT_MS",
        "SESSIOND_DB_POOL_SIZE",
    ];
    let store = [
        "--database-url",
        "DATABASE_URL",
        "SESSIOND_DB_TIMEOUT_SECONDS",
        "SESSIOND_DB_CONNECT_TIMEOUT_SECONDS",
        "SESSIOND_DB_POOLER",
        "SESSIOND_LOG_FORMAT",
        "RUST_LOG",
    ];
    for args in [
        &["user", "list", "--help"][..],
        &["user", "add", "--help"],
        &["sessions", "list", "--help"],
        &["sessions", "purge", "--help"],
        &["migrate", "--help"],
    ] {
        let out = help(args);
        for name in server_only {
            assert!(!out.contains(name), "{args:?} lists {name}:\n{out}");
        }
        for name in store {
            assert!(out.contains(name), "{args:?} lacks {name}:\n{out}");
        }
        let purges = args[1] == "purge";
        assert_eq!(
            out.contains("SESSIOND_RETENTION_SECONDS"),
            purges,
            "{args:?}:\n{out}"
        );
    }
    let out = help(&["user", "list", "--help"]);
    assert!(out.contains("--output"), "{out}");
    let serve = help(&["serve", "--help"]);
    for name in server_only
        .iter()
        .chain(&store)
        .chain(&["SESSIOND_RETENTION_SECONDS", "SESSIOND_CORS_ORIGINS"])
    {
        assert!(serve.contains(name), "serve lacks {name}:\n{serve}");
    }
    let top = help(&["--help"]);
    assert!(!top.contains("SESSIOND_BIND"), "{top}");

    // `user list` reads DATABASE_URL (and the store's other settings) from
    // the environment; `serve`'s variables are neither read nor unknown.
    let (ok, out, err) = run(&url, &["migrate"], None);
    assert!(ok, "{out} {err}");
    assert!(out.contains(&url), "{out}");
    let (ok, out, err) = run(
        &url,
        &["user", "add", "erin", "--password", "erin-password-1"],
        None,
    );
    assert!(ok, "{out} {err}");
    let listed = sessiond(&url)
        .args(["user", "list"])
        .env("SESSIOND_BIND", "not an address")
        .env("SESSIOND_HASH_CONCURRENCY", "many")
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&listed.stdout),
        String::from_utf8_lossy(&listed.stderr),
    );
    assert!(listed.status.success(), "{err}");
    assert!(out.contains("erin"), "the store DATABASE_URL names: {out}");
    assert!(!err.contains("unknown setting"), "{err}");
    let other = format!("sqlite://{}", dir.path().join("other.db").display());
    let (ok, _, err) = run(&other, &["user", "list"], None);
    assert!(!ok);
    assert!(
        err.contains(&format!("the store at {other} lacks")),
        "another DATABASE_URL, another store: {err}"
    );
    let refused = sessiond(&url)
        .args(["user", "list"])
        .env("SESSIOND_DB_TIMEOUT_SECONDS", "0")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("SESSIOND_DB_TIMEOUT_SECONDS=0 is out of range"),
        "{err}"
    );
}

/// A service that cannot start says why in the log format it was given.
#[test]
fn a_start_up_error_is_written_in_the_log_format() {
    let output = sessiond("nosuch://somewhere")
        .arg("serve")
        .env("SESSIOND_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    let record: Value = serde_json::from_str(last)
        .unwrap_or_else(|_| panic!("the error is not a JSON log line: {stderr}"));
    assert_eq!(record["level"], "ERROR", "{record}");
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("nosuch://somewhere"),
        "{record}"
    );

    // The same for an error found after the arguments parse: settings
    // that contradict each other.
    let output = sessiond("sqlite:///tmp/sessiond-never-created.db")
        .arg("serve")
        .env("SESSIOND_LOG_FORMAT", "json")
        .env("SESSIOND_DB_POOLER", "transaction")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines() {
        let _: Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("not a JSON log line: {line}\n{stderr}"));
    }
    let last: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{last}");
    assert_eq!(last["message"], "sessiond stopped", "{last}");

    let output = sessiond("nosuch://somewhere")
        .arg("serve")
        .env("SESSIOND_LOG_FORMAT", "text")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");

    // A setting that would break every login stops the start, naming the
    // variable; a misspelt one is warned about.
    let output = sessiond("sqlite:///tmp/sessiond-never-created.db")
        .arg("serve")
        .env("SESSIOND_LOGIN_MAX_FAILURES_PER_USER", "0")
        .env("SESSIOND_LOGIN_MAX_FAILURE_PER_IP", "3")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "error: SESSIOND_LOGIN_MAX_FAILURES_PER_USER=0 is out of range: it must be from 1 to 1000000"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown setting ignored")
            && stderr.contains("SESSIOND_LOGIN_MAX_FAILURE_PER_IP"),
        "{stderr}"
    );
    assert!(
        !std::path::Path::new("/tmp/sessiond-never-created.db").exists(),
        "nothing is created before the settings are checked"
    );
}

async fn the_cli_manages_users_and_sessions(store: Store) {
    let app = spawn_app(store).await;
    let url = app.database_url.clone();

    let (ok, out, _) = run(
        &url,
        &[
            "user",
            "add",
            "bob",
            "--password",
            "bob-password-1",
            "--name",
            "Bob",
        ],
        None,
    );
    assert!(ok, "user add: {out}");
    assert!(out.contains("created user bob"));
    let (ok, _, err) = run(
        &url,
        &["user", "add", "BOB", "--password", "bob-password-1"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = run(&url, &["user", "add", "carol", "--password", "short"], None);
    assert!(!ok);
    assert!(err.contains("at least 8"), "{err}");
    let (ok, out, _) = run(&url, &["user", "list"], None);
    assert!(ok);
    assert!(out.contains("bob") && out.contains("admin"), "{out}");
    // Aligned columns under a header, plain text when not on a terminal.
    assert!(!out.contains('\u{1b}'), "no styling in a pipe: {out:?}");
    let header = out.lines().next().unwrap();
    assert!(header.starts_with("ID  "), "{out}");
    let column = header.find("USERNAME").expect("a USERNAME column");
    let bob = out.lines().find(|l| l.contains("Bob")).expect("bob listed");
    assert_eq!(bob.get(column..column + 4), Some("bob "), "{out}");
    let (ok, out, _) = run(&url, &["user", "show", "bob"], None);
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["username", "bob"]),
        "{out}"
    );

    let (ok, out, _) = run(
        &url,
        &["user", "passwd", "bob", "--password", "-"],
        Some("bob-password-2\n"),
    );
    assert!(ok, "{out}");
    assert_eq!(app.login_raw("bob", "bob-password-1").await.status(), 401);
    let bob = app.login("bob", "bob-password-2").await;

    let (ok, _, _) = run(&url, &["user", "set-role", "bob", "admin"], None);
    assert!(ok);
    let (_, me) = body(app.get_as("/api/v1/me", &bob).await).await;
    assert_eq!(me["roles"], json!(["user", "admin"]));

    let (ok, out, _) = run(&url, &["sessions", "list", "--user", "bob"], None);
    assert!(ok);
    let row = out
        .lines()
        .find(|l| l.contains("bob"))
        .expect("bob's session listed");
    let id = row.split_whitespace().next().unwrap().to_owned();
    assert!(row.contains("active"), "{row}");
    let (ok, out, err) = run(&url, &["sessions", "revoke", &id], None);
    assert!(ok, "{out} {err}");
    assert_eq!(
        app.get_as("/api/v1/me", &bob).await.status(),
        401,
        "revoked from the CLI"
    );
    let (ok, _, err) = run(&url, &["sessions", "revoke", &id], None);
    assert!(!ok, "a second revoke finds no active session");
    assert!(err.contains("no active session"), "{err}");
    let (ok, out, _) = run(&url, &["sessions", "list", "--all"], None);
    assert!(ok);
    assert!(out.contains("ended (cli)"), "{out}");

    let (ok, out, _) = run(&url, &["sessions", "purge"], None);
    assert!(ok);
    assert!(
        out.contains("purged 0"),
        "recently ended sessions are kept for the retention: {out}"
    );
    let (ok, out, _) = run(&url, &["migrate"], None);
    assert!(ok, "{out}");
}

async fn the_cli_answers_scripts_in_json_and_manages_a_users_lifecycle(store: Store) {
    let app = spawn_app(store).await;
    let url = app.database_url.clone();
    let json_of = |args: &[&str]| -> Value {
        let (ok, out, err) = run(&url, args, None);
        assert!(ok, "{args:?}: {out} {err}");
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("{args:?} is not JSON: {out}"))
    };
    app.create_user("dana", false);
    let dana = app.login("dana", USER_PASSWORD).await;
    app.login("dana", USER_PASSWORD).await;

    let listed = json_of(&["user", "list", "--output", "json"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "dana"]);
    assert!(listed[1].get("passwordHash").is_none() && !listed.to_string().contains("argon2"));
    let shown = json_of(&["user", "show", "dana", "--output", "json"]);
    assert_eq!(shown["userId"], dana.user_id.as_str());
    assert_eq!(shown["activeSessions"], 2);
    assert_eq!(shown["active"], true);
    let sessions = json_of(&["sessions", "list", "--user", "dana", "--output", "json"]);
    assert_eq!(sessions.as_array().unwrap().len(), 2, "{sessions}");
    assert_eq!(sessions[0]["state"], "active");
    assert_eq!(sessions[0]["username"], "dana");

    // An unknown user is an error everywhere, never an empty answer.
    for args in [
        &["sessions", "list", "--user", "nosuch"][..],
        &["sessions", "revoke", "--user", "nosuch"],
        &["user", "show", "nosuch"],
        &["user", "disable", "nosuch"],
        &["user", "enable", "nosuch"],
        &["user", "delete", "nosuch"],
        &["user", "reset-2fa", "nosuch"],
    ] {
        let (ok, out, err) = run(&url, args, None);
        assert!(!ok, "{args:?}: {out}");
        assert!(err.contains("no user named nosuch"), "{args:?}: {err}");
    }

    // Revoking by user ends every session of theirs.
    let (ok, out, _) = run(&url, &["sessions", "revoke", "--user", "dana"], None);
    assert!(ok && out.contains("revoked 2 sessions"), "{out}");
    assert_eq!(app.get_as("/api/v1/me", &dana).await.status(), 401);

    // Disabled: no login, and the sessions ended; enabled again: login.
    let dana = app.login("dana", USER_PASSWORD).await;
    let (ok, out, _) = run(&url, &["user", "disable", "dana"], None);
    assert!(ok && out.contains("ended 1 sessions"), "{out}");
    assert_eq!(app.get_as("/api/v1/me", &dana).await.status(), 401);
    assert_eq!(app.login_raw("dana", USER_PASSWORD).await.status(), 401);
    assert_eq!(
        json_of(&["user", "show", "dana", "--output", "json"])["active"],
        false
    );
    let (ok, _, _) = run(&url, &["user", "enable", "dana"], None);
    assert!(ok);
    let dana = app.login("dana", USER_PASSWORD).await;

    // A lost phone: TOTP off, sessions ended, the password alone logs in.
    app.enroll_totp(&dana).await;
    assert_eq!(
        json_of(&["user", "show", "dana", "--output", "json"])["totp"],
        true
    );
    assert_eq!(
        app.login_raw("dana", USER_PASSWORD).await.status(),
        400,
        "a code is needed"
    );
    let (ok, out, err) = run(&url, &["user", "reset-2fa", "dana"], None);
    assert!(ok, "{out} {err}");
    assert_eq!(app.get_as("/api/v1/me", &dana).await.status(), 401);
    assert_eq!(
        json_of(&["user", "show", "dana", "--output", "json"])["totp"],
        false
    );
    let dana = app.login("dana", USER_PASSWORD).await;
    // Again, with no TOTP to turn off: nothing changes, no session ends.
    let (ok, out, err) = run(&url, &["user", "reset-2fa", "dana"], None);
    assert!(ok && out.contains("nothing changed"), "{out} {err}");
    assert_eq!(app.get_as("/api/v1/me", &dana).await.status(), 200);

    // Names the tables could not print on one line, and a limit that is no limit.
    let add = |name| ["user", "add", "erin", "--password", "-", "--name", name];
    for args in [
        &add("Evil\nName")[..],
        &add("\u{1b}[31mred"),
        &add(""),
        &["sessions", "list", "--limit", "0"],
    ] {
        let (ok, out, err) = run(&url, args, Some(USER_PASSWORD));
        assert!(!ok, "{args:?}: {out}");
        assert!(!err.is_empty(), "{args:?} says why");
    }
    let (ok, _, err) = run(&url, &["user", "show", ""], None);
    assert!(!ok && err.contains(r#"no user named """#), "{err}");

    // Deleted: gone, with the sessions.
    let (ok, out, _) = run(&url, &["user", "delete", "dana"], None);
    assert!(ok && out.contains("deleted dana"), "{out}");
    assert_eq!(app.get_as("/api/v1/me", &dana).await.status(), 401);
    let all = json_of(&["sessions", "list", "--all", "--output", "json"]);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|s| s["username"] != "dana"),
        "{all}"
    );
    let listed = json_of(&["user", "list", "--output", "json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

/// A script that reads part of a listing (`| head`) closes the pipe early:
/// the listing ends quietly, with no panic on standard error.
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    let (settings, _database) = test_settings(Store::Sqlite);
    let url = raw_database_url(&settings);
    let (migrated, out, err) = run(&url, &["migrate"], None);
    assert!(migrated, "{out}{err}");
    for output in ["json", "table"] {
        let mut child = sessiond(&url)
            .args(["user", "list", "--output", output])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sessiond");
        // The reader goes away before the listing is written.
        drop(child.stdout.take());
        let finished = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&finished.stderr);
        assert!(finished.status.success(), "{output}: {stderr}");
        assert!(!stderr.contains("panicked"), "{output}: {stderr}");
    }
}

/// The README's configuration tables name every variable `serve` reads,
/// and give every numeric setting's range as the service checks it.
#[test]
fn the_readme_documents_every_setting_and_range() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let rows: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    let row_of = |name: &str, filter: &dyn Fn(&str) -> bool| {
        rows.iter()
            .copied()
            .find(|row| row.contains(&format!("`{name}`")) && filter(row))
    };

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("help.db").display());
    let (ok, help, err) = run(&url, &["serve", "--help"], None);
    assert!(ok, "{err}");
    let variables: Vec<&str> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .collect();
    assert!(variables.len() >= 40, "{help}");
    for name in &variables {
        assert!(
            row_of(name, &|_| true).is_some(),
            "the README's settings table lacks {name}"
        );
    }

    let thousands = |n: i128| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    for (name, _, lowest, highest) in sessiond::config::Settings::defaults().ranges() {
        let row = row_of(name, &|row| row.contains(" to "))
            .unwrap_or_else(|| panic!("the README's table of ranges lacks {name}"));
        // `0 (one per core) to 1,024`, `1 to 315,360,000 (ten years)`: the
        // first word of each side.
        let range = row.rsplit('|').nth(1).unwrap_or_default().trim();
        let (low, high) = range.split_once(" to ").unwrap_or_default();
        let first = |side: &str| {
            side.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            (first(low), first(high)),
            (thousands(lowest), thousands(highest)),
            "{name}: the README says {range:?}"
        );
    }
}

/// A broken request gets 400 from the HTTP layer and no ERROR line: a
/// client's mistake is not the service's error, and no caller may fill the
/// error log with them. Naming `actix_http` in the filter shows them again.
#[test]
fn a_malformed_request_is_answered_400_without_an_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken: [&[u8]; 3] = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad\x01Name: y\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        // A TLS ClientHello sent to the plain-HTTP port.
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ];
    let errors_logged = |filter: &str| {
        // A store of its own for each start, which prints the first admin's password.
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("{filter}.db")).display()
        );
        let served = serve_with(&url, &[("RUST_LOG", filter)]);
        let address = served.address.trim_start_matches("http://").to_owned();
        for request in broken {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream.write_all(request).unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                answer.starts_with("HTTP/1.1 400"),
                "{request:?} got {answer:?}"
            );
        }
        let (stopped, log) = stop(served);
        assert!(stopped, "{log}");
        log.lines()
            .filter(|line| line.contains(r#""level":"ERROR""#))
            .count()
    };
    assert_eq!(errors_logged("info"), 0);
    assert_eq!(errors_logged("info,actix_http=error"), broken.len());
}
