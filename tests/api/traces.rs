//! OpenTelemetry: the real binary exports its spans over OTLP/HTTP to a
//! receiver this test runs, continuing the trace an incoming `traceparent`
//! names.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::binary::{serve_with, stop};
use crate::helpers::{raw_database_url, test_settings, Store};

/// What the receiver was sent: (path, body) per request.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal OTLP/HTTP receiver: takes every POST, answers 200 `{}`.
async fn receiver() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_exports(stream, store.clone()));
        }
    });
    (address, received)
}

/// Reads requests off one connection (kept alive by the exporter).
async fn serve_exports(mut stream: TcpStream, received: Received) {
    let mut buffer = Vec::new();
    loop {
        let Some(end) = find(&buffer, b"\r\n\r\n") else {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buffer[end + 4..end + 4 + length].to_vec();
        buffer.drain(..end + 4 + length);
        received.lock().unwrap().push((path, body));
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Every span exported, with its resource's attributes.
fn spans(received: &Received) -> Vec<(Value, Value)> {
    let mut spans = Vec::new();
    for (path, body) in received.lock().unwrap().iter() {
        assert_eq!(path, "/v1/traces");
        let export: Value = serde_json::from_slice(body).expect("an OTLP/JSON export");
        for resource_spans in export["resourceSpans"].as_array().unwrap() {
            let resource = resource_spans["resource"].clone();
            for scope in resource_spans["scopeSpans"].as_array().unwrap() {
                for span in scope["spans"].as_array().unwrap() {
                    spans.push((resource.clone(), span.clone()));
                }
            }
        }
    }
    spans
}

fn attribute<'a>(attributes: &'a Value, key: &str) -> Option<&'a Value> {
    attributes
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_a_request_its_store_calls_and_its_password_hash_continue_the_callers_trace() {
    let (endpoint, received) = receiver().await;
    let (settings, _database) = test_settings(Store::Sqlite);
    let served = serve_with(
        &raw_database_url(&settings),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RUST_LOG", "info"),
        ],
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/v1/login", served.address))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({"user": "admin", "password": served.admin_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let password = served.admin_password.clone();
    let (stopped, log) = stop(served);
    assert!(stopped, "{log}");

    let spans = spans(&received);
    let (resource, request) = spans
        .iter()
        .find(|(_, span)| span["name"] == "POST /api/v1/login")
        .unwrap_or_else(|| panic!("the request's span among {spans:#?}"));
    assert_eq!(
        attribute(&resource["attributes"], "service.name").unwrap()["stringValue"],
        "sessiond"
    );
    assert_eq!(request["traceId"], trace_id, "the caller's trace goes on");
    assert_eq!(request["parentSpanId"], caller_span);
    assert_eq!(
        attribute(&request["attributes"], "http.route").unwrap()["stringValue"],
        "/api/v1/login"
    );
    // The access log names the request's span, so a log line leads to its trace.
    let access = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|r| r["message"] == "request finished" && r["route"] == "/api/v1/login")
        .unwrap_or_else(|| panic!("the login's access line in {log}"));
    assert_eq!(access["trace_id"], trace_id, "{access}");
    assert_eq!(access["span_id"], request["spanId"], "{access}");
    // The sweep's store calls are traces of their own.
    let children = |name: &str| {
        spans
            .iter()
            .filter(|(_, span)| span["name"] == name && span["traceId"] == trace_id)
            .map(|(_, span)| span.clone())
            .collect::<Vec<_>>()
    };
    let store_calls = children("store call");
    let hashes = children("password hash");
    assert_eq!(hashes.len(), 1, "{spans:#?}");
    // Charge the attempt, then open the session: two store calls around the hash.
    assert_eq!(store_calls.len(), 2, "{spans:#?}");
    for child in store_calls.iter().chain(&hashes) {
        assert_eq!(child["traceId"], trace_id);
        assert_eq!(child["parentSpanId"], request["spanId"], "{child:#}");
    }
    assert_eq!(
        attribute(&store_calls[0]["attributes"], "db.system.name").unwrap()["stringValue"],
        "sqlite"
    );
    // Work outside requests: each sweep is a trace with its store call, and
    // no store call is a trace of one span.
    let sweep = spans
        .iter()
        .find(|(_, span)| span["name"] == "sweep")
        .map(|(_, span)| span)
        .unwrap_or_else(|| panic!("the start-up sweep's span among {spans:#?}"));
    assert!(
        spans.iter().any(
            |(_, span)| span["name"] == "store call" && span["parentSpanId"] == sweep["spanId"]
        ),
        "{spans:#?}"
    );
    for (_, span) in spans
        .iter()
        .filter(|(_, span)| span["name"] == "store call")
    {
        assert!(
            span["parentSpanId"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "a store call without a parent: {span:#}"
        );
    }
    // No header or body reached a span.
    let exported = format!("{spans:?}");
    assert!(!exported.contains(&password), "{exported}");
    assert!(!exported.contains("authToken"), "{exported}");
}
