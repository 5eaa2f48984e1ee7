//! The OpenAPI document and the docs page. Paths are collected from the
//! services the app registers (utoipa-actix-web), so the document lists
//! exactly the routes that are served; this module adds what is shared:
//! the security schemes, the tags and the error bodies.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::admin::error::AdminErrorBody;
use super::rocket_chat::error::{LoginFailed, NotLoggedIn, SimpleError, TypedError};
use crate::domain::listing::{Scope, SortKey};

pub const OPENAPI_PATH: &str = "/api/openapi.json";
pub const DOCS_PATH: &str = "/docs";

/// `/docs` without its slash goes to the page.
pub(super) async fn to_docs() -> actix_web::HttpResponse {
    actix_web::HttpResponse::MovedPermanently()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessiond",
        description = include_str!("docs_description.md")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(NotLoggedIn, LoginFailed, SimpleError, TypedError, AdminErrorBody)),
    tags(
        (name = "accounts", description = "Login, logout, the caller, TOTP enrollment"),
        (name = "device management", description = "Rocket.Chat /api/v1/sessions/*"),
        (name = "events", description = "The event log: a live stream (Server-Sent Events) and the audit trail"),
        (name = "admin sessions", description = "Admin authenticated sessions: every error is `{Success, Error, Message}`"),
        (name = "json action", description = "FairCom-style jsonAction API"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let header = |name: &str, description: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                name,
                description,
            )))
        };
        components.add_security_scheme("user_id", header("X-User-Id", "The userId from login"));
        components.add_security_scheme(
            "auth_token",
            header("X-Auth-Token", "The authToken from login"),
        );
        components.add_security_scheme(
            "two_factor",
            header("x-2fa-code", "A TOTP or backup code; needed on 2FA routes unless the session passed one recently"),
        );
    }
}

/// Declares the headers every answer carries (`X-Request-Id`) and those of
/// a refusal to retry later (`Retry-After` on 429 and 503, and on a 400
/// that is a two-factor lockout), on every operation's responses.
fn declare_common_headers(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ObjectBuilder, RefOr, Type};

    let text = |pattern: Option<&str>, max_length: Option<usize>| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(pattern)
            .max_length(max_length)
            .build()
    };
    let request_id = HeaderBuilder::new()
        .schema(text(None, Some(64)))
        .description(Some(
            "The request's id: the client's own `X-Request-Id` when it is plain and at most 64 \
             characters, else a new one; also in the log line of the request",
        ))
        .build();
    let retry_after = HeaderBuilder::new()
        .schema(text(Some("^[0-9]+$"), None))
        .description(Some("Seconds to wait before retrying"))
        .build();
    let lockout = HeaderBuilder::new()
        .schema(text(Some("^[0-9]+$"), None))
        .description(Some(
            "On a two-factor lockout (`totp-max-attempts`, `err_TwoFactorMaxAttempts`): seconds \
             until codes are accepted again",
        ))
        .build();
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                response
                    .headers
                    .insert("X-Request-Id".into(), request_id.clone());
                if status == "429" || status == "503" {
                    response
                        .headers
                        .insert("Retry-After".into(), retry_after.clone());
                } else if status == "400" {
                    response
                        .headers
                        .insert("Retry-After".into(), lockout.clone());
                }
            }
        }
    }
}

/// The lists, for the `sort` parameter's schema.
const LISTS: [(&str, Scope); 2] = [
    ("/api/v1/sessions/list", Scope::Own),
    ("/api/v1/sessions/list.all", Scope::Everyone),
];

/// The document as JSON, with what utoipa's parameter types cannot say:
/// `sort` is a JSON object in the query string (OpenAPI's `content` form),
/// and `filter` is a regular expression.
fn document(api: &utoipa::openapi::OpenApi) -> String {
    use serde_json::{json, Value};

    let Ok(mut document) = serde_json::to_value(api) else {
        return "{}".into();
    };
    for (path, scope) in LISTS {
        let keys: Vec<&str> = SortKey::names(scope).collect();
        let Some(Value::Array(parameters)) = document.pointer_mut(&format!(
            "/paths/{}/get/parameters",
            path.replace('~', "~0").replace('/', "~1")
        )) else {
            continue;
        };
        for parameter in parameters.iter_mut() {
            let Some(parameter) = parameter.as_object_mut() else {
                continue;
            };
            match parameter.get("name").and_then(Value::as_str) {
                Some("sort") => {
                    parameter.remove("schema");
                    parameter.insert(
                        "content".into(),
                        json!({"application/json": {"schema": {
                            "type": "object",
                            "propertyNames": {"enum": keys},
                            "additionalProperties": {"type": "integer", "enum": [1, -1]},
                        }}}),
                    );
                }
                Some("filter") => {
                    if let Some(Value::Object(schema)) = parameter.get_mut("schema") {
                        schema.insert("format".into(), json!("regex"));
                    }
                }
                _ => {}
            }
        }
    }
    serde_json::to_string(&document).unwrap_or_else(|_| "{}".into())
}

/// Serves the document at `/api/openapi.json` and Swagger UI (vendored in
/// the `utoipa-swagger-ui` crate, nothing fetched) at `/docs/`. Both routes
/// are added to the document here, as they are registered after the paths
/// are collected.
pub fn service(mut api: utoipa::openapi::OpenApi) -> impl actix_web::dev::HttpServiceFactory {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::{ContentBuilder, ResponseBuilder};

    let page = |summary: &str, content_type: &str| {
        OperationBuilder::new()
            .tag("operations")
            .summary(Some(summary))
            .response(
                "200",
                ResponseBuilder::new()
                    .description(summary)
                    .content(content_type, ContentBuilder::new().build())
                    .build(),
            )
            .build()
    };
    api.paths.add_path_operation(
        OPENAPI_PATH,
        vec![HttpMethod::Get],
        page("This OpenAPI document", "application/json"),
    );
    api.paths.add_path_operation(
        format!("{DOCS_PATH}/"),
        vec![HttpMethod::Get],
        page("The API documentation page", "text/html"),
    );
    declare_common_headers(&mut api);
    super::methods::record(&api);
    let json = std::sync::Arc::new(document(&api));
    (
        actix_web::web::resource(OPENAPI_PATH).route(actix_web::web::get().to(move || {
            let json = json.clone();
            async move {
                actix_web::HttpResponse::Ok()
                    .content_type("application/json")
                    .body(json.as_str().to_owned())
            }
        })),
        utoipa_swagger_ui::SwaggerUi::new(format!("{DOCS_PATH}/{{_:.*}}"))
            // No call to an outside validator from the page.
            .config(utoipa_swagger_ui::Config::from(OPENAPI_PATH).validator_url("none")),
    )
}
