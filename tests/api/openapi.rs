//! The OpenAPI document: complete, served, and true to the routes.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{body, spawn_app, Store};
use crate::on_both_stores;

/// Every route the contract names, with its method.
const CONTRACT_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/login"),
    ("post", "/api/v1/logout"),
    ("get", "/api/v1/me"),
    ("post", "/api/v1/users.2fa.enableTOTP"),
    ("post", "/api/v1/users.2fa.validateTempToken"),
    ("post", "/api/v1/users.2fa.disableTOTP"),
    ("get", "/api/v1/sessions/list"),
    ("get", "/api/v1/sessions/list.all"),
    ("get", "/api/v1/sessions/info"),
    ("get", "/api/v1/sessions/info.admin"),
    ("post", "/api/v1/sessions/logout.me"),
    ("post", "/api/v1/sessions/logout"),
    ("post", "/api/v1/sessions/logout.others"),
    ("get", "/api/v1/sessions/events"),
    ("get", "/api/v1/sessions/events.me"),
    ("get", "/api/v1/sessions/audit"),
    ("get", "/api/admin/v1/authenticated-sessions/list"),
    (
        "get",
        "/api/admin/v1/authenticated-sessions/user-sessions/{guid}",
    ),
    ("post", "/api/admin/v1/authenticated-sessions/revoke"),
    ("post", "/api/admin/v1/authenticated-sessions/revoke-user"),
    ("post", "/api"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("get", "/docs/"),
];

/// `schema`, or what its `$ref` points at.
fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(reference) => doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference} points at nothing"))
            .clone(),
        None => schema.clone(),
    }
}

async fn document(app: &crate::helpers::TestApp) -> Value {
    let (status, doc) = body(
        app.client
            .get(app.url("/api/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    doc
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect()
}

on_both_stores!(
    the_document_lists_every_route_of_the_contract,
    every_documented_operation_is_served_and_answers_as_documented,
    the_docs_page_renders_from_vendored_assets,
);

async fn the_document_lists_every_route_of_the_contract(store: Store) {
    let app = spawn_app(store).await;

    let doc = document(&app).await;

    assert_eq!(doc["openapi"], "3.1.0");
    let documented = operations(&doc);
    for (method, path) in CONTRACT_ROUTES {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is missing from the document"
        );
    }
    for scheme in ["user_id", "auth_token", "two_factor"] {
        assert_eq!(
            doc["components"]["securitySchemes"][scheme]["in"], "header",
            "{scheme}"
        );
    }
    // Every answer declares X-Request-Id; 429 and 503 declare Retry-After.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let headers = &response["headers"];
                assert!(
                    headers["X-Request-Id"].is_object(),
                    "{method} {path} {status}: X-Request-Id"
                );
                if status == "429" || status == "503" {
                    assert!(
                        headers["Retry-After"].is_object(),
                        "{method} {path} {status}: Retry-After"
                    );
                }
            }
        }
    }
    // Operation ids are unique, as OpenAPI requires.
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if let Some(id) = operation["operationId"].as_str() {
                let earlier = ids.insert(id.to_owned(), format!("{method} {path}"));
                assert!(
                    earlier.is_none(),
                    "operationId {id} twice: {earlier:?}, {method} {path}"
                );
            }
        }
    }
    // The types no parameter struct can give: `sort` is a JSON object of
    // the list's keys, `filter` a regex, `cursor` URL-safe base64.
    for (path, user_keys) in [
        ("/api/v1/sessions/list", false),
        ("/api/v1/sessions/list.all", true),
    ] {
        let parameters = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let named = |name: &str| {
            parameters
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .clone()
        };
        let sort = named("sort");
        assert!(sort.get("schema").is_none(), "{path}: {sort}");
        let schema = &sort["content"]["application/json"]["schema"];
        assert_eq!(schema["type"], "object", "{path}: {sort}");
        assert_eq!(schema["additionalProperties"]["enum"], json!([1, -1]));
        let keys = schema["propertyNames"]["enum"].as_array().unwrap();
        assert!(keys.contains(&json!("loginAt")), "{path}");
        assert_eq!(keys.contains(&json!("_user.username")), user_keys, "{path}");
        assert_eq!(named("filter")["schema"]["format"], "regex", "{path}");
        assert_eq!(named("filter")["schema"]["maxLength"], 256, "{path}");
        assert_eq!(
            named("cursor")["schema"]["pattern"],
            "^[A-Za-z0-9_-]*$",
            "{path}"
        );
    }
    // The streams are documented as Server-Sent Events, with their `type`
    // filter and resume parameters; the audit trail as a JSON page.
    for path in ["/api/v1/sessions/events", "/api/v1/sessions/events.me"] {
        let operation = &doc["paths"][path]["get"];
        assert!(
            operation["responses"]["200"]["content"]["text/event-stream"].is_object(),
            "{path}: {operation}"
        );
        let names: Vec<&str> = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["type", "lastEventId", "Last-Event-ID"], "{path}");
    }
    let audit = &doc["paths"]["/api/v1/sessions/audit"]["get"];
    assert_eq!(
        audit["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AuditPage"
    );
    let event = &doc["components"]["schemas"]["AuditEvent"];
    assert_eq!(
        event["required"],
        json!(["id", "type", "timestamp", "data"])
    );
    // The login body says what it needs: one of three shapes.
    let login = &doc["paths"]["/api/v1/login"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    let login = resolve(&doc, login);
    let shapes: Vec<Value> = login["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("login body: {login}"))
        .iter()
        .map(|shape| resolve(&doc, shape))
        .collect();
    let mut required: Vec<Value> = shapes.iter().map(|s| s["required"].clone()).collect();
    required.sort_by_key(|r| r.to_string());
    assert_eq!(
        required,
        [
            json!(["resume"]),
            json!(["user", "password"]),
            json!(["username", "password"])
        ]
    );
    // The admin API documents its refusals in its own shape.
    let admin_list = &doc["paths"]["/api/admin/v1/authenticated-sessions/list"]["get"]["responses"];
    for status in ["400", "401", "403", "429", "503"] {
        assert_eq!(
            admin_list[status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/AdminErrorBody",
            "{status}"
        );
    }
    // The two-factor lockout is documented on 400 with its Retry-After.
    assert!(admin_list["400"]["headers"]["Retry-After"]["description"]
        .as_str()
        .unwrap()
        .contains("totp-max-attempts"));
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains("x-2fa-code"));
    // Every operation documents every status, with a body schema for JSON.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{method} {path} has no 200");
            if operation.get("security").is_some() {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} needs its 401 documented"
                );
            }
        }
    }
}

async fn every_documented_operation_is_served_and_answers_as_documented(store: Store) {
    let app = spawn_app(store).await;
    let doc = document(&app).await;

    for (method, path) in operations(&doc) {
        let url = app.url(&path.replace("{guid}", "83bde819-ec08-4cee-b635-884145630d0b"));
        let request = match method.as_str() {
            "get" => app.client.get(&url),
            "post" => app.client.post(&url).json(&serde_json::json!({})),
            other => panic!("unexpected method {other}"),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16().to_string();
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("No route for"),
            "{method} {path} is documented but not served"
        );
        let documented = doc["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap();
        assert!(
            documented.contains_key(&status),
            "{method} {path} answered {status}, which the document does not list: {text}"
        );
    }
    // And the converse: an undocumented path is not served.
    let (status, _) = body(
        app.client
            .get(app.url("/api/v1/sessions/nope"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}

async fn the_docs_page_renders_from_vendored_assets(store: Store) {
    let app = spawn_app(store).await;

    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Every script and stylesheet the page loads is served by sessiond itself.
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 100, "{asset}");
    }
    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/api/openapi.json"), "{initializer}");
    for external in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(
            !html.contains(external),
            "the page loads nothing from elsewhere ({external})"
        );
    }
}
