//! The dashboard in a real browser: Debian's Chromium, driven by
//! playwright-core from `tests/browser/dashboard.mjs`, against the real
//! `sessiond serve` on a fresh SQLite store, with users made by the CLI.
//! Sessions opened through the API while a page watches must appear on it
//! by the live event stream alone.
//! Two small pages on other origins, one listed in `SESSIOND_CORS_ORIGINS`
//! and one not, check CORS as a browser enforces it.
//!
//! Node.js 20+, `tests/browser/node_modules/playwright-core` (`npm ci
//! --prefix tests/browser`) and `/usr/bin/chromium` must be present; if one
//! is missing the test fails and says how to install it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::binary::{run, serve_with, stop};
use crate::helpers::USER_PASSWORD;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run, after which it is killed.
const TIME_LIMIT: Duration = Duration::from_secs(180);
const USER: &str = "alice";
/// Another user with a few sessions, for the README's screenshot.
const OTHER_USER: &str = "bob";
/// A username (no spaces allowed) and a name that are markup: the pages
/// must show them as text.
const XSS_USER: &str = "<img/src=x/onerror=alert(1)>";
const XSS_NAME: &str = "<img src=x onerror=alert(2)>";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Fails, saying how to install each one, unless node, playwright-core and
/// Chromium are all there.
fn require_tools() {
    let dir = browser_dir();
    let mut missing = Vec::new();
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let major: u32 = version
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if major < 20 {
                missing.push(format!(
                    "Node.js 20 or newer (found {version}); install it from https://nodejs.org \
                     or NodeSource's Debian packages"
                ));
            }
        }
        _ => missing.push(
            "Node.js 20 or newer as `node` on PATH; install it from https://nodejs.org or \
             NodeSource's Debian packages (`apt-get install -y nodejs`)"
                .into(),
        ),
    }
    if !dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push(format!(
            "playwright-core, pinned by tests/browser/package-lock.json: run `npm ci --prefix {}`",
            dir.display()
        ));
    }
    if !Path::new(CHROMIUM).is_file() {
        missing.push(format!(
            "Chromium at {CHROMIUM}: run `apt-get update && apt-get install -y chromium` \
             (Playwright's own browser downloads are not used)"
        ));
    }
    assert!(
        missing.is_empty(),
        "the browser test needs:\n  - {}\n(.ci/run installs Chromium and runs npm ci)",
        missing.join("\n  - ")
    );
}

/// Serves `tests/browser/cross-origin/` on a port of its own, without a
/// CSP: a page on another origin that calls the API. Stops when dropped.
struct PageServer {
    origin: String,
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PageServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a page server");
        let address = listener.local_addr().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = stopping.clone();
        let root = browser_dir().join("cross-origin");
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let root = root.clone();
                // One thread per connection: a browser may open one and
                // send nothing on it.
                std::thread::spawn(move || {
                    let _ = answer(stream, &root);
                });
            }
        });
        PageServer {
            origin: format!("http://{address}"),
            address,
            stopping,
            thread: Some(thread),
        }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? <= 2 {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let file = match path {
        "/" | "/index.html" => Some(("index.html", "text/html; charset=utf-8")),
        "/cross.js" => Some(("cross.js", "text/javascript; charset=utf-8")),
        _ => None,
    };
    let (status, content_type, body) = match file {
        Some((name, content_type)) => ("200 OK", content_type, std::fs::read(root.join(name))?),
        None => ("404 Not Found", "text/plain", b"not found".to_vec()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)?;
    stream.flush()
}

/// Where screenshots go: `<target dir>/screenshots`.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots")
}

#[test]
fn the_dashboard_works_in_chromium_against_the_real_binary() {
    require_tools();
    let listed = PageServer::start();
    let unlisted = PageServer::start();
    let store = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", store.path().join("browser.db").display());

    let served = serve_with(
        &database_url,
        &[
            ("SESSIOND_CORS_ORIGINS", listed.origin.as_str()),
            // Standard error is read only at the end; keep it short.
            ("RUST_LOG", "error"),
            ("SESSIOND_WORKERS", "2"),
        ],
    );
    let password_line = format!("{USER_PASSWORD}\n");
    for (username, name) in [
        (USER, "Alice Liddell"),
        (OTHER_USER, "Bob Lee"),
        (XSS_USER, XSS_NAME),
    ] {
        let (ok, out, err) = run(
            &database_url,
            &["user", "add", username, "--password", "-", "--name", name],
            Some(&password_line),
        );
        assert!(ok, "sessiond user add {username}: {out}{err}");
    }

    let screenshots = screenshot_dir();
    let started = Instant::now();
    let mut node = Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(browser_dir())
        .env("SESSIOND_URL", &served.address)
        .env("ADMIN_PASSWORD", &served.admin_password)
        .env("USER_NAME", USER)
        .env("USER_PASSWORD", USER_PASSWORD)
        .env("OTHER_USER", OTHER_USER)
        .env("XSS_USER", XSS_USER)
        .env("XSS_NAME", XSS_NAME)
        .env("XSS_PASSWORD", USER_PASSWORD)
        .env("CROSS_ORIGIN", &listed.origin)
        .env("UNLISTED_ORIGIN", &unlisted.origin)
        .env("SCREENSHOT_DIR", &screenshots)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Progress and screenshot paths show in the test output as they come.
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let mut stdout = node.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = node.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = node.kill();
            let _ = node.wait();
            let _ = stop(served);
            panic!(
                "the browser test ran past {TIME_LIMIT:?}; output so far:\n{}",
                reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = reader.join().expect("node output");
    let took = started.elapsed();
    let (exited_cleanly, server_log) = stop(served);

    assert!(
        status.success(),
        "the browser checks failed ({status}):\n{output}\nserver log:\n{server_log}"
    );
    for check in [
        "the page is served with its CSP".to_owned(),
        "the token is kept in sessionStorage only".to_owned(),
        "the new-device badge marks the sessions the API marks on My devices".to_owned(),
        "My devices shows that it is live".to_owned(),
        "a bad regex shows the server's 400 message beside the filter".to_owned(),
        "the ended session's token is refused by the API".to_owned(),
        "the other tokens are refused, this one works".to_owned(),
        "the user enrolls TOTP with a computed code".to_owned(),
        "signing in with a computed TOTP code works, by keyboard alone".to_owned(),
        "the admin enrolls TOTP through the page".to_owned(),
        "a good code passes the prompt".to_owned(),
        "All sessions shows that it is live".to_owned(),
        "a session started by another client appears without a reload".to_owned(),
        "the new-device badge shows on All sessions".to_owned(),
        "a device the user has used before has no badge".to_owned(),
        "sessions ended elsewhere leave the page without a reload".to_owned(),
        "the pages together hold every session once".to_owned(),
        "Previous leads back to the first page".to_owned(),
        "a bad regex shows the server's message on All sessions".to_owned(),
        "the detail panel shows a Host header that is markup as text".to_owned(),
        "the token of the session the admin ended is refused".to_owned(),
        "revoking all of a user's sessions ends them".to_owned(),
        "a name that is markup is shown literally".to_owned(),
        "a 401 sends the page back to sign-in".to_owned(),
        format!(
            "a page on {} (listed in SESSIOND_CORS_ORIGINS) logs in and lists sessions",
            listed.origin
        ),
        format!(
            "the browser blocks a page on {} (not listed)",
            unlisted.origin
        ),
        "no dialog (alert, confirm, prompt) ever fired".to_owned(),
        "no CSP violation and no script error in any page".to_owned(),
    ] {
        assert!(
            output.lines().any(|line| line == format!("ok - {check}")),
            "the browser run did not check: {check}\n{output}"
        );
    }
    assert!(
        output
            .lines()
            .any(|line| line.starts_with("all ") && line.contains("browser checks passed")),
        "{output}"
    );
    for name in [
        "dashboard-1280",
        "login-1280",
        "devices-1280",
        "sessions-1280",
        "users-1280",
        "login-375",
        "devices-375",
        "sessions-375",
        "users-375",
    ] {
        let file = screenshots.join(format!("{name}.png"));
        assert!(file.is_file(), "no screenshot {}", file.display());
    }
    assert!(
        exited_cleanly,
        "sessiond stops cleanly after the run:\n{server_log}"
    );
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "browser test: {} checks in {:.1} s; screenshots in {}",
        output.lines().filter(|l| l.starts_with("ok - ")).count(),
        took.as_secs_f64(),
        screenshots.display()
    );
}
