//! The admin web dashboard at `/dashboard/`: static HTML, CSS and
//! JavaScript modules compiled into the binary (nothing is fetched at build
//! or run time). The pages talk only to the public API, as any other
//! dashboard would.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

/// (path under `/dashboard/`, content type, bytes)
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../dashboard/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../dashboard/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../dashboard/favicon.svg"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/api.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/ui.js"),
    ),
    (
        "lists.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/lists.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/login.js"),
    ),
    (
        "devices.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/devices.js"),
    ),
    (
        "sessions.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/sessions.js"),
    ),
    (
        "users.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../dashboard/users.js"),
    ),
];

/// No inline script or style, no other origin: the page can only run its
/// own files and talk to this server.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(super) async fn to_dashboard() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/dashboard/"))
        .finish()
}

pub(super) async fn index() -> HttpResponse {
    serve("index.html")
}

pub(super) async fn asset(req: HttpRequest) -> HttpResponse {
    let file = req.match_info().get("file").unwrap_or_default();
    serve(file)
}

fn serve(file: &str) -> HttpResponse {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return with_headers(HttpResponse::NotFound())
            .content_type("text/plain; charset=utf-8")
            .body("Not found");
    };
    with_headers(HttpResponse::Ok())
        .content_type(*content_type)
        .body(*bytes)
}

fn with_headers(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        // Small and compiled in: revalidating costs nothing and a new
        // binary's pages are never mixed with an old one's.
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// A file added to `dashboard/` but not to the table would be a 404 in
    /// the browser; one in the table but not on disk would not compile.
    #[test]
    fn every_dashboard_file_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
        for entry in std::fs::read_dir(&dir).expect("read dashboard/") {
            let name = entry.expect("dashboard entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                ASSETS.iter().any(|(served, _, _)| *served == name),
                "dashboard/{name} is not in ASSETS"
            );
        }
    }

    /// The pages must run under the CSP: no inline scripts, styles or
    /// handlers, and no markup built from strings. (ui.js names `innerHTML`
    /// and `outerHTML` in quotes only to refuse them.)
    #[test]
    fn no_asset_needs_what_the_csp_forbids() {
        for (name, _, bytes) in ASSETS {
            let text = String::from_utf8_lossy(bytes);
            let uses = |needle: &str| {
                text.matches(needle).count() - text.matches(&format!("'{needle}'")).count()
            };
            for forbidden in [
                "style=",
                "onclick=",
                "onload=",
                "onerror=",
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "<script>",
                "<style",
            ] {
                assert_eq!(uses(forbidden), 0, "{name} contains {forbidden}");
            }
        }
    }
}
