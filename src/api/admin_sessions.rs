//! Admin authenticated sessions: `/api/admin/v1/authenticated-sessions/*`
//! (seed 002). PascalCase fields, numeric ids, paged lists with
//! `X-Total-Count` and an RFC 8288 `Link` header. Every route needs the
//! `manage-sessions` permission and the second factor.

use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::api::docs::{AdminBadRequest, AdminErrorBody, NotLoggedIn, SimpleError};
use crate::api::{json_body, param, query_pairs};
use crate::app::AppState;
use crate::auth::{two_factor, Caller, Permission};
use crate::domain::clock;
use crate::domain::ended_by::EndedBy;
use crate::domain::listing::Direction;
use crate::error::AdminError;
use crate::store::sessions::lists::{self as admin_lists, UserSort};
use crate::store::sessions::{self, Session};
use crate::store::users::{self, User};

const BASE: &str = "/api/admin/v1/authenticated-sessions";
pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

/// Paging parameters, for the document (handlers parse them after authentication).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct PageQuery {
    /// 1-based page number.
    #[param(minimum = 1)]
    page: Option<i64>,
    /// Rows per page; above 100 is clamped to 100.
    #[param(minimum = 1)]
    #[serde(rename = "pageSize")]
    page_size: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListQuery {
    #[param(minimum = 1)]
    page: Option<i64>,
    #[param(minimum = 1)]
    #[serde(rename = "pageSize")]
    page_size: Option<i64>,
    /// `UserName` or `SessionCount`, optionally followed by `:asc` or `:desc`.
    #[param(pattern = "^(UserName|SessionCount)(:(asc|desc))?$")]
    sort: Option<String>,
}

/// One user with active sessions.
#[derive(Serialize, ToSchema)]
pub struct UserSessionsRow {
    #[serde(rename = "UserGuid")]
    pub user_guid: String,
    #[serde(rename = "UserName")]
    pub user_name: String,
    #[serde(rename = "SessionCount")]
    pub session_count: i64,
    #[serde(rename = "IsOperator")]
    pub is_operator: bool,
}

/// One active session of a user.
#[derive(Serialize, ToSchema)]
pub struct AdminSession {
    #[serde(rename = "ID")]
    pub id: i64,
    #[serde(rename = "UserID")]
    pub user_id: i64,
    #[serde(rename = "UserGuid")]
    pub user_guid: String,
    /// Last activity, like `2020-09-21T10:42:50Z`.
    #[serde(rename = "LastUpdated")]
    pub last_updated: String,
    #[serde(rename = "ExpirationDate")]
    pub expiration_date: String,
    #[serde(rename = "UserName")]
    pub user_name: String,
    #[serde(rename = "IsOperator")]
    pub is_operator: bool,
    /// The smartphone woothee names, or `-`.
    #[serde(rename = "Smartphone")]
    pub smartphone: String,
    /// `<name>- v. <version>`.
    #[serde(rename = "OperatingSystem")]
    pub operating_system: String,
    /// `<name>- v. <version>`.
    #[serde(rename = "Application")]
    pub application: String,
}

#[derive(Serialize, ToSchema)]
pub struct AdminSuccess {
    #[serde(rename = "Success")]
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RevokeUserResult {
    #[serde(rename = "Success")]
    pub success: bool,
    /// How many sessions ended.
    #[serde(rename = "Count")]
    pub count: usize,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct RevokeBody {
    /// The session's numeric `ID`.
    #[serde(rename = "Session")]
    session: i64,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct RevokeUserBody {
    #[serde(rename = "UserGuid")]
    #[schema(format = Uuid)]
    user_guid: String,
}

/// `page` (1-based, default 1) and `pageSize` (default 20, above 100 clamped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i64,
    pub size: i64,
}

impl PageRequest {
    pub fn parse(page: Option<&str>, size: Option<&str>) -> Result<Self, AdminError> {
        let positive = |name: &str, raw: &str| match raw.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(AdminError::InvalidRequest(format!(
                "'{name}' must be a positive integer, got \"{raw}\""
            ))),
        };
        let page = page.map_or(Ok(1), |raw| positive("page", raw))?;
        let size = size.map_or(Ok(DEFAULT_PAGE_SIZE), |raw| positive("pageSize", raw))?;
        let size = size.min(MAX_PAGE_SIZE);
        if page.checked_mul(size).is_none() {
            return Err(AdminError::InvalidRequest("'page' is out of range".into()));
        }
        Ok(PageRequest { page, size })
    }

    fn offset(self) -> i64 {
        (self.page - 1) * self.size
    }

    fn last_page(self, total: i64) -> i64 {
        ((total + self.size - 1) / self.size).max(1)
    }
}

/// `UserName` or `SessionCount`, optionally followed by `:asc` or `:desc`.
fn parse_sort(raw: Option<&str>) -> Result<(UserSort, Direction), AdminError> {
    let Some(raw) = raw else {
        return Ok((UserSort::UserName, Direction::Asc));
    };
    let (field, direction) = raw.split_once(':').unwrap_or((raw, "asc"));
    let field = match field {
        "UserName" => UserSort::UserName,
        "SessionCount" => UserSort::SessionCount,
        _ => {
            return Err(AdminError::InvalidRequest(format!(
                "'sort' must be UserName or SessionCount, optionally followed by :asc or :desc; got \"{raw}\""
            )))
        }
    };
    let order = match direction {
        "asc" => Direction::Asc,
        "desc" => Direction::Desc,
        _ => {
            return Err(AdminError::InvalidRequest(format!(
                "the direction in 'sort' must be asc or desc; got \"{raw}\""
            )))
        }
    };
    Ok((field, order))
}

/// A JSON array with `X-Total-Count` and `Link` (`first`, `prev`, `next`, `last`).
fn paged<T: Serialize>(
    path: &str,
    extra_query: &[(&str, String)],
    request: PageRequest,
    total: i64,
    items: Vec<T>,
) -> HttpResponse {
    let link_to = |page: i64| {
        let mut query = vec![
            ("page", page.to_string()),
            ("pageSize", request.size.to_string()),
        ];
        query.extend(extra_query.iter().cloned());
        let encoded = query
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        format!("<{path}?{encoded}>")
    };
    let last = request.last_page(total);
    let mut links = vec![format!("{}; rel=\"first\"", link_to(1))];
    if request.page > 1 {
        links.push(format!(
            "{}; rel=\"prev\"",
            link_to((request.page - 1).min(last))
        ));
    }
    if request.page < last {
        links.push(format!("{}; rel=\"next\"", link_to(request.page + 1)));
    }
    links.push(format!("{}; rel=\"last\"", link_to(last)));
    HttpResponse::Ok()
        .insert_header(("X-Total-Count", total.to_string()))
        .insert_header((header::LINK, links.join(", ")))
        .json(items)
}

fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Access for every admin route: permission first, then (after the caller's
/// parameters are checked) the second factor.
fn require_admin(caller: &Caller) -> Result<(), AdminError> {
    Ok(caller.require(Permission::ManageSessions)?)
}

/// Users with active sessions and how many each has.
#[utoipa::path(
    tag = "admin sessions",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of users", body = Vec<UserSessionsRow>, headers(
            ("X-Total-Count" = i64, description = "Rows across all pages"),
            ("Link" = String, description = "RFC 8288 links: first, prev, next, last"),
        )),
        (status = 400, description = "Bad paging or sort (err_InvalidRequest), or the second factor is missing or wrong (the TOTP bodies)", body = AdminBadRequest),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 403, description = "Not an admin", body = SimpleError),
        (status = 429, description = "The caller already has as many admin lists running as allowed (`err_TooManyRequests`); see Retry-After", body = AdminErrorBody),
        (status = 503, description = "The store is unavailable, or every slot for admin lists stayed busy (`err_Busy`); retry", body = AdminErrorBody),
    )
)]
#[get("/api/admin/v1/authenticated-sessions/list")]
pub(super) async fn list(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    require_admin(&caller)?;
    let pairs = query_pairs(&req, &["page", "pageSize", "sort"])?;
    let request = PageRequest::parse(param(&pairs, "page"), param(&pairs, "pageSize"))?;
    let (sort, order) = parse_sort(param(&pairs, "sort"))?;
    two_factor::require(&state, &caller, &req).await?;
    // Held by the store work itself, so the slot is not given back
    // while a statement still runs for a caller who got 503.
    let slot = state.bulkhead.enter(caller.user.id).await?;
    let (rows, total) = state
        .db
        .run(move |conn| {
            let _slot = slot;
            admin_lists::users_with_active_sessions(
                conn,
                sort,
                order,
                request.offset(),
                request.size,
                clock::now(),
            )
        })
        .await?;
    let items = rows
        .into_iter()
        .map(|row| UserSessionsRow {
            is_operator: row.roles.split(',').any(|r| r == "admin"),
            user_guid: row.guid,
            user_name: row.username,
            session_count: row.session_count,
        })
        .collect();
    let extra: Vec<(&str, String)> = param(&pairs, "sort")
        .map(|s| ("sort", s.to_owned()))
        .into_iter()
        .collect();
    Ok(paged(
        &format!("{BASE}/list"),
        &extra,
        request,
        total,
        items,
    ))
}

fn parse_guid(raw: &str) -> Result<String, AdminError> {
    uuid::Uuid::parse_str(raw)
        .map(|guid| guid.hyphenated().to_string())
        .map_err(|_| AdminError::InvalidRequest(format!("'{raw}' is not a UUID")))
}

/// `"<name>- v. <version>"`, with `Other` for an unknown name, as in seed 002.
fn name_and_version(name: &str, version: &str) -> String {
    let name = if name.is_empty() { "Other" } else { name };
    format!("{name}- v. {version}")
}

fn session_row(session: &Session, user: &User) -> AdminSession {
    let smartphone = if session.device_category == "smartphone" && !session.os_name.is_empty() {
        session.os_name.as_str()
    } else {
        "-"
    };
    AdminSession {
        id: session.id,
        user_id: user.id,
        user_guid: user.guid.clone(),
        last_updated: clock::iso_seconds(session.last_activity_at),
        expiration_date: clock::iso_seconds(session.expires_at),
        user_name: user.username.clone(),
        is_operator: user.is_admin(),
        smartphone: smartphone.to_owned(),
        operating_system: name_and_version(&session.os_name, &session.os_version),
        application: name_and_version(&session.device_name, &session.device_long_version),
    }
}

/// One user's active sessions, newest first.
#[utoipa::path(
    tag = "admin sessions",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    params(("guid" = String, Path, description = "The user's UserGuid", format = Uuid), PageQuery),
    responses(
        (status = 200, description = "One page of sessions", body = Vec<AdminSession>, headers(
            ("X-Total-Count" = i64, description = "Rows across all pages"),
            ("Link" = String, description = "RFC 8288 links: first, prev, next, last"),
        )),
        (status = 400, description = "A guid that is not a UUID, bad paging, or the second factor is missing or wrong", body = AdminBadRequest),
        (status = 404, description = "No such user (err_UserNotFound)", body = AdminErrorBody),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 403, description = "Not an admin", body = SimpleError),
        (status = 429, description = "The caller already has as many admin lists running as allowed (`err_TooManyRequests`); see Retry-After", body = AdminErrorBody),
        (status = 503, description = "The store is unavailable, or every slot for admin lists stayed busy (`err_Busy`); retry", body = AdminErrorBody),
    )
)]
#[get("/api/admin/v1/authenticated-sessions/user-sessions/{guid}")]
pub(super) async fn user_sessions(
    caller: Caller,
    req: HttpRequest,
    guid: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    require_admin(&caller)?;
    let guid = parse_guid(&guid.into_inner())?;
    let pairs = query_pairs(&req, &["page", "pageSize"])?;
    let request = PageRequest::parse(param(&pairs, "page"), param(&pairs, "pageSize"))?;
    two_factor::require(&state, &caller, &req).await?;
    // Held by the store work itself, so the slot is not given back
    // while a statement still runs for a caller who got 503.
    let slot = state.bulkhead.enter(caller.user.id).await?;
    let lookup = guid.clone();
    let found = state
        .db
        .run(move |conn| -> Result<_, AdminError> {
            let _slot = slot;
            let Some(user) = users::find_by_guid(conn, &lookup)? else {
                return Ok(None);
            };
            let (rows, total) = admin_lists::active_sessions_of_user(
                conn,
                user.id,
                request.offset(),
                request.size,
                clock::now(),
            )?;
            Ok(Some((user, rows, total)))
        })
        .await?;
    let (user, rows, total) = found.ok_or(AdminError::UserNotFound)?;
    let items = rows
        .iter()
        .map(|session| session_row(session, &user))
        .collect();
    Ok(paged(
        &format!("{BASE}/user-sessions/{guid}"),
        &[],
        request,
        total,
        items,
    ))
}

/// The body's one field, which must be present and of the right kind.
async fn body_field(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    name: &str,
) -> Result<Value, AdminError> {
    let body: Value = json_body(req, payload, state.settings.max_body_bytes)
        .await
        .map_err(|e| match e {
            // Limits keep their own status: 413, 415, 408.
            crate::error::Error::PayloadTooLarge { .. }
            | crate::error::Error::UnsupportedMediaType
            | crate::error::Error::RequestTimeout => AdminError::Shared(e),
            other => AdminError::InvalidRequest(format!(
                "The body must be a JSON object like {{\"{name}\": …}}: {other}"
            )),
        })?;
    match body {
        Value::Object(mut fields) => fields.remove(name).ok_or_else(|| {
            AdminError::InvalidRequest(format!("The body must have the field '{name}'"))
        }),
        _ => Err(AdminError::InvalidRequest(format!(
            "The body must be a JSON object like {{\"{name}\": …}}"
        ))),
    }
}

/// Revokes one active session by its numeric ID.
#[utoipa::path(
    tag = "admin sessions",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    request_body = RevokeBody,
    responses(
        (status = 200, description = "Revoked", body = AdminSuccess),
        (status = 400, description = "A missing or malformed body (err_InvalidRequest), or the second factor is missing or wrong", body = AdminBadRequest),
        (status = 404, description = "No active session with that ID (err_NoActiveSession)", body = AdminErrorBody),
        (status = 413, description = "The body is too large", body = AdminErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = AdminErrorBody),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 403, description = "Not an admin", body = SimpleError),
        (status = 503, description = "The store is unavailable; retry", body = AdminErrorBody),
    )
)]
#[post("/api/admin/v1/authenticated-sessions/revoke")]
pub(super) async fn revoke(
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    require_admin(&caller)?;
    let id = body_field(&req, payload, &state, "Session")
        .await?
        .as_i64()
        .ok_or_else(|| {
            AdminError::InvalidRequest("'Session' must be an integer session ID".into())
        })?;
    two_factor::require(&state, &caller, &req).await?;
    let by = EndedBy::Admin(caller.user.guid.clone());
    let revoked = state
        .db
        .run(move |conn| sessions::revoke_active(conn, id, &by, clock::now()))
        .await?;
    if !revoked {
        return Err(AdminError::NoActiveSession);
    }
    Ok(HttpResponse::Ok().json(AdminSuccess { success: true }))
}

/// Ends all of a user's active sessions.
#[utoipa::path(
    tag = "admin sessions",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    request_body = RevokeUserBody,
    responses(
        (status = 200, description = "How many ended", body = RevokeUserResult),
        (status = 400, description = "A missing or malformed body, or the second factor is missing or wrong", body = AdminBadRequest),
        (status = 404, description = "No such user (err_UserNotFound)", body = AdminErrorBody),
        (status = 413, description = "The body is too large", body = AdminErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = AdminErrorBody),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 403, description = "Not an admin", body = SimpleError),
        (status = 503, description = "The store is unavailable; retry", body = AdminErrorBody),
    )
)]
#[post("/api/admin/v1/authenticated-sessions/revoke-user")]
pub(super) async fn revoke_user(
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    require_admin(&caller)?;
    let guid = match body_field(&req, payload, &state, "UserGuid").await? {
        Value::String(raw) => parse_guid(&raw)?,
        _ => {
            return Err(AdminError::InvalidRequest(
                "'UserGuid' must be a UUID string".into(),
            ))
        }
    };
    two_factor::require(&state, &caller, &req).await?;
    let by = EndedBy::Admin(caller.user.guid.clone());
    let count = state
        .db
        .run(move |conn| -> Result<_, AdminError> {
            let user = users::find_by_guid(conn, &guid)?.ok_or(AdminError::UserNotFound)?;
            Ok(sessions::end_all_for_user(
                conn,
                user.id,
                None,
                &by,
                clock::now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(RevokeUserResult {
        success: true,
        count,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_defaults_and_clamps() {
        assert_eq!(
            PageRequest::parse(None, None).unwrap(),
            PageRequest { page: 1, size: 20 }
        );
        assert_eq!(
            PageRequest::parse(Some("3"), Some("500")).unwrap(),
            PageRequest { page: 3, size: 100 }
        );
        for (page, size) in [
            (Some("0"), None),
            (Some("-1"), None),
            (None, Some("0")),
            (Some("x"), None),
            (Some("9223372036854775807"), Some("100")),
        ] {
            assert!(PageRequest::parse(page, size).is_err(), "{page:?} {size:?}");
        }
    }

    #[test]
    fn last_page_is_at_least_one() {
        let request = PageRequest { page: 1, size: 20 };
        assert_eq!(request.last_page(0), 1);
        assert_eq!(request.last_page(20), 1);
        assert_eq!(request.last_page(21), 2);
    }

    #[test]
    fn sort_takes_a_field_and_an_optional_direction() {
        assert_eq!(
            parse_sort(None).unwrap(),
            (UserSort::UserName, Direction::Asc)
        );
        assert_eq!(
            parse_sort(Some("SessionCount:desc")).unwrap(),
            (UserSort::SessionCount, Direction::Desc)
        );
        assert_eq!(
            parse_sort(Some("UserName")).unwrap(),
            (UserSort::UserName, Direction::Asc)
        );
        assert!(parse_sort(Some("Nope")).is_err());
        assert!(parse_sort(Some("UserName:up")).is_err());
    }

    #[test]
    fn unknown_device_parts_read_as_in_the_seed() {
        assert_eq!(name_and_version("", ""), "Other- v. ");
        assert_eq!(
            name_and_version("Chrome", "113.0.0.0"),
            "Chrome- v. 113.0.0.0"
        );
    }
}
