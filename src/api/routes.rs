//! Every URL the service answers, in URL order, with the handler behind it.
//! The documented API is registered through utoipa-actix-web, so the OpenAPI
//! document lists exactly these routes; the dashboard's pages are not part
//! of the document.

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;

use super::admin::sessions as admin_sessions;
use super::rocket_chat::{accounts, events as event_log, sessions as device_management};
use super::{dashboard, health, json_action};

/// The documented API. (`GET /api/openapi.json` and `/docs/` are added
/// beside it by `docs::service`.)
pub fn api(cfg: &mut ServiceConfig) {
    cfg.service(json_action::handle) // POST /api
        .service(admin_sessions::list) // GET  /api/admin/v1/authenticated-sessions/list
        .service(admin_sessions::revoke) // POST /api/admin/v1/authenticated-sessions/revoke
        .service(admin_sessions::revoke_user) // POST /api/admin/v1/authenticated-sessions/revoke-user
        .service(admin_sessions::user_sessions) // GET  /api/admin/v1/authenticated-sessions/user-sessions/{guid}
        .service(accounts::login) // POST /api/v1/login
        .service(accounts::logout) // POST /api/v1/logout
        .service(accounts::me) // GET  /api/v1/me
        .service(event_log::audit) // GET  /api/v1/sessions/audit
        .service(event_log::stream) // GET  /api/v1/sessions/events
        .service(event_log::stream_own) // GET  /api/v1/sessions/events.me
        .service(device_management::info) // GET  /api/v1/sessions/info
        .service(device_management::info_admin) // GET  /api/v1/sessions/info.admin
        .service(device_management::list) // GET  /api/v1/sessions/list
        .service(device_management::list_all) // GET  /api/v1/sessions/list.all
        .service(device_management::logout) // POST /api/v1/sessions/logout
        .service(device_management::logout_me) // POST /api/v1/sessions/logout.me
        .service(device_management::logout_others) // POST /api/v1/sessions/logout.others
        .service(accounts::disable_totp) // POST /api/v1/users.2fa.disableTOTP
        .service(accounts::enable_totp) // POST /api/v1/users.2fa.enableTOTP
        .service(accounts::validate_temp_token) // POST /api/v1/users.2fa.validateTempToken
        .service(health::healthz) // GET  /healthz
        .service(health::metrics) // GET  /metrics
        .service(health::readyz); // GET  /readyz
}

/// The operators' listener: what scrapers and probes call, and nothing else.
pub fn management(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz) // GET /healthz
        .service(health::readyz) // GET /readyz
        .route("/metrics", web::get().to(health::management_metrics))
        .default_service(web::to(health::not_on_management));
}

/// The dashboard's pages and the JSON 404 for everything else.
pub fn pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard::to_dashboard))
        .route("/dashboard", web::get().to(dashboard::to_dashboard))
        .route("/dashboard/", web::get().to(dashboard::index))
        .route("/dashboard/{file:.*}", web::get().to(dashboard::asset))
        .route("/docs", web::get().to(super::docs::to_docs))
        .default_service(web::to(super::not_found));
}
