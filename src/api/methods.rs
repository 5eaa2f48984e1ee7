//! Which methods each path answers, for `405 Method Not Allowed` with its
//! `Allow` header, and `HEAD` wherever `GET` is served.
//!
//! The table is read from the OpenAPI document, which lists exactly the
//! routes the app registers, plus the dashboard's pages; so a route added
//! to `routes.rs` is known here without a second list.

use std::sync::OnceLock;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use utoipa::openapi::OpenApi;

use super::admin::error::{is_admin_path, AdminErrorBody};
use super::json_action;

/// The JSON action API's one route.
const JSON_ACTION_PATH: &str = "/api";

/// A path template (`{name}` matches one segment, `{name:.*}` the rest)
/// and the methods it answers, `HEAD` included where `GET` is.
struct Route {
    segments: Vec<String>,
    allow: Vec<Method>,
}

static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();

/// The pages the document leaves out: the dashboard's, and `/docs`.
const PAGES: [&str; 6] = [
    "/",
    "/dashboard",
    "/dashboard/",
    "/dashboard/{file:.*}",
    "/docs",
    "/docs/{file:.*}",
];

/// Records the routes of `api` (once: every worker builds the same app).
pub fn record(api: &OpenApi) {
    ROUTES.get_or_init(|| {
        let mut routes: Vec<Route> = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let served = [
                    (Method::GET, item.get.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                ];
                route(path, served.into_iter().filter(|(_, s)| *s).map(|(m, _)| m))
            })
            .collect();
        routes.extend(PAGES.iter().map(|page| route(page, [Method::GET])));
        routes
    });
}

fn route(path: &str, methods: impl IntoIterator<Item = Method>) -> Route {
    let mut allow: Vec<Method> = methods.into_iter().collect();
    if allow.contains(&Method::GET) {
        allow.insert(
            allow.iter().position(|m| m == Method::GET).unwrap_or(0) + 1,
            Method::HEAD,
        );
    }
    Route {
        segments: path.split('/').map(str::to_owned).collect(),
        allow,
    }
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/');
        for segment in &self.segments {
            if segment.starts_with('{') && segment.ends_with(":.*}") {
                return true;
            }
            match parts.next() {
                Some(part) if segment.starts_with('{') => {
                    if part.is_empty() {
                        return false;
                    }
                }
                Some(part) if part == segment => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

/// The methods `path` answers, if any route has it.
pub fn allowed(path: &str) -> Option<&'static [Method]> {
    ROUTES
        .get()?
        .iter()
        .find(|route| route.matches(path))
        .map(|route| route.allow.as_slice())
}

/// The answer for a request no route took: 405 with `Allow` when the path
/// is served with other methods, else 404; each in the body format of the
/// surface the path belongs to.
pub fn unrouted(req: &HttpRequest) -> HttpResponse {
    let (method, path) = (req.method(), req.path());
    let Some(allow) = allowed(path) else {
        let message = format!("No route for {method} {path}");
        let mut response = HttpResponse::NotFound();
        return if is_admin_path(path) {
            response.json(admin_body("err_NotFound", message))
        } else {
            response.json(serde_json::json!({"success": false, "error": message}))
        };
    };
    let allow = allow
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let message = format!("{method} is not allowed on {path}; use {allow}");
    let mut response = HttpResponse::MethodNotAllowed();
    response.insert_header((header::ALLOW, allow));
    if path == JSON_ACTION_PATH {
        response.json(json_action::method_not_allowed(message))
    } else if is_admin_path(path) {
        response.json(admin_body("err_MethodNotAllowed", message))
    } else {
        response.json(serde_json::json!({"success": false, "error": message}))
    }
}

fn admin_body(code: &'static str, message: String) -> AdminErrorBody {
    AdminErrorBody {
        success: false,
        error: code,
        message,
    }
}

/// Marks a `HEAD` request that [`head_as_get`] routed as a `GET`. A handler
/// whose body never ends (an event stream) answers it with the headers
/// alone: the HTTP layer would drop the body unread, forever.
#[derive(Clone, Copy, Debug)]
pub struct RoutedHead;

/// `HEAD` is answered as `GET` is, without the body, where `GET` is
/// served: the request is routed as a `GET`, and the HTTP layer, which saw
/// a `HEAD`, sends the headers alone (with the `Content-Length` the body
/// would have had). Elsewhere it stays a `HEAD`, so a 405 or 404 names it.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let serves_get = || allowed(req.path()).is_some_and(|allow| allow.contains(&Method::GET));
    if req.method() == Method::HEAD && serves_get() {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(RoutedHead);
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn methods(route: &Route) -> Vec<&str> {
        route.allow.iter().map(Method::as_str).collect()
    }

    #[test]
    fn templates_match_whole_segments() {
        let guid = route(
            "/api/admin/v1/authenticated-sessions/user-sessions/{guid}",
            [Method::GET],
        );
        assert!(guid.matches("/api/admin/v1/authenticated-sessions/user-sessions/abc"));
        assert!(!guid.matches("/api/admin/v1/authenticated-sessions/user-sessions/"));
        assert!(!guid.matches("/api/admin/v1/authenticated-sessions/user-sessions/a/b"));
        let me = route("/api/v1/me", [Method::GET]);
        assert!(me.matches("/api/v1/me"));
        assert!(!me.matches("/api/v1/me/"));
        assert!(!me.matches("/api/v1/mex"));
        let files = route("/dashboard/{file:.*}", [Method::GET]);
        assert!(files.matches("/dashboard/js/app.js"));
        assert!(!files.matches("/dashboards"));
    }

    #[test]
    fn head_follows_get() {
        assert_eq!(methods(&route("/x", [Method::GET])), ["GET", "HEAD"]);
        assert_eq!(methods(&route("/x", [Method::POST])), ["POST"]);
        assert_eq!(
            methods(&route("/x", [Method::GET, Method::POST])),
            ["GET", "HEAD", "POST"]
        );
    }
}
