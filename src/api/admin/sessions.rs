//! Admin authenticated sessions: `/api/admin/v1/authenticated-sessions/*`,
//! as the original admin API defines them. PascalCase fields, numeric ids, paged lists with
//! `X-Total-Count` and an RFC 8288 `Link` header. Every route needs the
//! `manage-sessions` permission and the second factor, checked in the
//! route's store call (`extract::Guard`).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::{AdminError, AdminErrorBody};
use super::link::paged;
use super::wire::{AdminSession, AdminSuccess, RevokeUserResult, UserSessionsRow};
use crate::api::extract::{Access, Guard};
use crate::api::{json_body, param, query_pairs};
use crate::auth::Permission;
use crate::db::Conn;
use crate::domain::clock;
use crate::domain::ended_by::EndedBy;
use crate::domain::listing::Direction;
use crate::domain::paging::Paging;
use crate::error::{Error, Missing};
use crate::service::sessions::{self, Ender, Owner, Target};
use crate::service::Surface;
use crate::state::AppState;
use crate::store::sessions::by_user::UserSort;
use crate::store::sessions::{by_user, lists};
use crate::store::users;

const ADMIN: Access = Access::admin(Permission::ManageSessions);

type Answer = Result<HttpResponse, AdminError>;

/// Paging parameters, for the document (handlers parse them after authentication).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct PageQuery {
    /// 1-based page number.
    #[param(minimum = 1, maximum = 92_233_720_368_547_758_i64)]
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
    /// 1-based page number.
    #[param(minimum = 1, maximum = 92_233_720_368_547_758_i64)]
    page: Option<i64>,
    #[param(minimum = 1)]
    #[serde(rename = "pageSize")]
    page_size: Option<i64>,
    /// `UserName` or `SessionCount`, optionally followed by `:asc` or `:desc`.
    #[param(pattern = "^(UserName|SessionCount)(:(asc|desc))?$")]
    sort: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct RevokeBody {
    /// The session's numeric `ID`.
    #[serde(rename = "Session")]
    #[schema(minimum = 1, maximum = 9_223_372_036_854_775_807_i64)]
    session: i64,
}

#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct RevokeUserBody {
    #[serde(rename = "UserGuid")]
    #[schema(format = Uuid)]
    user_guid: String,
}

/// `UserName` or `SessionCount`, optionally followed by `:asc` or `:desc`.
fn parse_sort(raw: Option<&str>) -> Result<(UserSort, Direction), Error> {
    let Some(raw) = raw else {
        return Ok((UserSort::UserName, Direction::Asc));
    };
    let (field, direction) = raw.split_once(':').unwrap_or((raw, "asc"));
    let field = match field {
        "UserName" => UserSort::UserName,
        "SessionCount" => UserSort::SessionCount,
        _ => {
            return Err(Error::InvalidParams(format!(
                "'sort' must be UserName or SessionCount, optionally followed by :asc or :desc; got \"{raw}\""
            )))
        }
    };
    let order = match direction {
        "asc" => Direction::Asc,
        "desc" => Direction::Desc,
        _ => {
            return Err(Error::InvalidParams(format!(
                "the direction in 'sort' must be asc or desc; got \"{raw}\""
            )))
        }
    };
    Ok((field, order))
}

fn parse_guid(raw: &str) -> Result<String, Error> {
    uuid::Uuid::parse_str(raw)
        .map(|guid| guid.hyphenated().to_string())
        .map_err(|_| Error::InvalidParams(format!("'{raw}' is not a UUID")))
}

/// The body's one field, which must be present and of the right kind.
async fn body_field(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    name: &str,
) -> Result<Value, Error> {
    let body: Value = json_body(req, payload, state.settings.max_body_bytes)
        .await
        .map_err(|e| match e {
            // Limits keep their own status: 413, 415, 408.
            Error::PayloadTooLarge { .. } | Error::UnsupportedMediaType | Error::RequestTimeout => {
                e
            }
            other => Error::InvalidParams(format!(
                "The body must be a JSON object like {{\"{name}\": …}}: {other}"
            )),
        })?;
    match body {
        Value::Object(mut fields) => fields
            .remove(name)
            .ok_or_else(|| Error::InvalidParams(format!("The body must have the field '{name}'"))),
        _ => Err(Error::InvalidParams(format!(
            "The body must be a JSON object like {{\"{name}\": …}}"
        ))),
    }
}

/// `{"Session": <ID>}`.
async fn session_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<i64, Error> {
    let value = body_field(req, payload, state, "Session").await?;
    value
        .as_i64()
        .ok_or_else(|| Error::InvalidParams("'Session' must be an integer session ID".into()))
}

/// `{"UserGuid": "<UUID>"}`, as the canonical guid.
async fn user_guid_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<String, Error> {
    match body_field(req, payload, state, "UserGuid").await? {
        Value::String(raw) => parse_guid(&raw),
        _ => Err(Error::InvalidParams(
            "'UserGuid' must be a UUID string".into(),
        )),
    }
}

/// Users with active sessions and how many each has.
#[utoipa::path(
    operation_id = "authenticated_sessions_list",
    tag = "admin sessions",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of users", body = Vec<UserSessionsRow>, headers(
            ("X-Total-Count" = i64, description = "Rows across all pages"),
            ("Link" = String, description = "RFC 8288 links: first, prev, next, last"),
        )),
        (status = 400, description = "Bad paging or sort (err_InvalidRequest), or the second factor is missing, wrong or locked out (err_TwoFactorRequired, err_TwoFactorNotSetUp, err_TwoFactorInvalid, err_TwoFactorMaxAttempts with Retry-After)", body = AdminErrorBody),
        (status = 401, description = "Not logged in (err_Unauthorized)", body = AdminErrorBody),
        (status = 403, description = "Not an admin (err_Forbidden)", body = AdminErrorBody),
        (status = 429, description = "The caller already has as many admin lists running as allowed (`err_TooManyRequests`); see Retry-After", body = AdminErrorBody),
        (status = 503, description = "The store is unavailable, or every slot for admin lists stayed busy (`err_Busy`); retry", body = AdminErrorBody),
    )
)]
#[get("/api/admin/v1/authenticated-sessions/list")]
pub(super) async fn list(guard: Guard, req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let params = list_params(&req);
    let (params, rows, total) = guard
        .run_expensive(&state, ADMIN, params, |conn, _, _, params| {
            users_page(conn, params)
        })
        .await?;
    let link_query: Vec<(&str, String)> = params.sort.map(|s| ("sort", s)).into_iter().collect();
    Ok(paged(req.path(), &link_query, params.paging, total, rows))
}

/// The users list's parameters.
struct ListParams {
    paging: Paging,
    by: UserSort,
    order: Direction,
    /// `sort` as given, for the links.
    sort: Option<String>,
}

fn list_params(req: &HttpRequest) -> Result<ListParams, Error> {
    let pairs = query_pairs(req, &["page", "pageSize", "sort"])?;
    let paging = Paging::from_page(param(&pairs, "page"), param(&pairs, "pageSize"))
        .map_err(Error::InvalidParams)?;
    let (by, order) = parse_sort(param(&pairs, "sort"))?;
    let sort = param(&pairs, "sort").map(str::to_owned);
    Ok(ListParams {
        paging,
        by,
        order,
        sort,
    })
}

/// One page of users with active sessions, and how many there are.
fn users_page(
    conn: &mut Conn,
    params: ListParams,
) -> Result<(ListParams, Vec<UserSessionsRow>, i64), Error> {
    let Paging { offset, count } = params.paging;
    let (rows, total) = by_user::users_with_active_sessions(
        conn,
        params.by,
        params.order,
        offset,
        count,
        clock::now(),
    )?;
    let rows = rows.into_iter().map(UserSessionsRow::from).collect();
    Ok((params, rows, total))
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
        (status = 400, description = "A guid that is not a UUID or bad paging (err_InvalidRequest), or the second factor is missing, wrong or locked out (err_TwoFactorRequired, err_TwoFactorNotSetUp, err_TwoFactorInvalid, err_TwoFactorMaxAttempts with Retry-After)", body = AdminErrorBody),
        (status = 404, description = "No such user (err_UserNotFound)", body = AdminErrorBody),
        (status = 401, description = "Not logged in (err_Unauthorized)", body = AdminErrorBody),
        (status = 403, description = "Not an admin (err_Forbidden)", body = AdminErrorBody),
        (status = 429, description = "The caller already has as many admin lists running as allowed (`err_TooManyRequests`); see Retry-After", body = AdminErrorBody),
        (status = 503, description = "The store is unavailable, or every slot for admin lists stayed busy (`err_Busy`); retry", body = AdminErrorBody),
    )
)]
#[get("/api/admin/v1/authenticated-sessions/user-sessions/{guid}")]
pub(super) async fn user_sessions(
    guard: Guard,
    req: HttpRequest,
    guid: web::Path<String>,
    state: web::Data<AppState>,
) -> Answer {
    let params = user_sessions_params(&req, &guid);
    let (guid, paging, total, items) = guard
        .run_expensive(&state, ADMIN, params, |conn, _, _, (guid, paging)| {
            let (items, total) = sessions_of_user(conn, &guid, paging)?;
            Ok((guid, paging, total, items))
        })
        .await?;
    // The links name the user by the guid's canonical form. The route's
    // pattern is always known here; the requested path is the fallback.
    let path = match req.match_pattern() {
        Some(pattern) => pattern.replace("{guid}", &guid),
        None => req.path().to_owned(),
    };
    Ok(paged(&path, &[], paging, total, items))
}

/// The user's canonical guid and the page asked for.
fn user_sessions_params(req: &HttpRequest, guid: &str) -> Result<(String, Paging), Error> {
    let guid = parse_guid(guid)?;
    let pairs = query_pairs(req, &["page", "pageSize"])?;
    let paging = Paging::from_page(param(&pairs, "page"), param(&pairs, "pageSize"))
        .map_err(Error::InvalidParams)?;
    Ok((guid, paging))
}

/// One page of a user's active sessions, and how many there are.
fn sessions_of_user(
    conn: &mut Conn,
    guid: &str,
    request: Paging,
) -> Result<(Vec<AdminSession>, i64), Error> {
    let user = users::find_by_guid(conn, guid)?.ok_or(Error::NotFound(Missing::User))?;
    let (offset, size) = (request.offset, request.count);
    let (rows, total) = lists::active_sessions_of_user(conn, user.id, offset, size, clock::now())?;
    let items = rows
        .iter()
        .map(|s| AdminSession::from((s, &user)))
        .collect();
    Ok((items, total))
}

/// Revokes one active session by its numeric ID.
#[utoipa::path(
    tag = "admin sessions",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    request_body = RevokeBody,
    responses(
        (status = 200, description = "Revoked", body = AdminSuccess),
        (status = 400, description = "A missing or malformed body (err_InvalidRequest), or the second factor is missing, wrong or locked out (err_TwoFactorRequired, err_TwoFactorNotSetUp, err_TwoFactorInvalid, err_TwoFactorMaxAttempts with Retry-After)", body = AdminErrorBody),
        (status = 404, description = "No active session with that ID (err_NoActiveSession)", body = AdminErrorBody),
        (status = 413, description = "The body is too large (err_PayloadTooLarge)", body = AdminErrorBody),
        (status = 415, description = "Content-Type is not application/json (err_UnsupportedMediaType)", body = AdminErrorBody),
        (status = 401, description = "Not logged in (err_Unauthorized)", body = AdminErrorBody),
        (status = 403, description = "Not an admin (err_Forbidden)", body = AdminErrorBody),
        (status = 503, description = "The store is unavailable (err_ServiceUnavailable); retry", body = AdminErrorBody),
    )
)]
#[post("/api/admin/v1/authenticated-sessions/revoke")]
pub(super) async fn revoke(
    guard: Guard,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Answer {
    let id = session_body(&req, payload, &state).await;
    guard
        .run(&state, ADMIN, id, |conn, app, caller, id| {
            let by = EndedBy::Admin(caller.user.guid);
            let ender = Ender::new(app, &by, Surface::Admin);
            sessions::end(conn, Target::Active(id), ender, clock::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(AdminSuccess { success: true }))
}

/// Ends all of a user's active sessions.
#[utoipa::path(
    tag = "admin sessions",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    request_body = RevokeUserBody,
    responses(
        (status = 200, description = "How many ended", body = RevokeUserResult),
        (status = 400, description = "A missing or malformed body (err_InvalidRequest), or the second factor is missing, wrong or locked out (err_TwoFactorRequired, err_TwoFactorNotSetUp, err_TwoFactorInvalid, err_TwoFactorMaxAttempts with Retry-After)", body = AdminErrorBody),
        (status = 404, description = "No such user (err_UserNotFound)", body = AdminErrorBody),
        (status = 413, description = "The body is too large (err_PayloadTooLarge)", body = AdminErrorBody),
        (status = 415, description = "Content-Type is not application/json (err_UnsupportedMediaType)", body = AdminErrorBody),
        (status = 401, description = "Not logged in (err_Unauthorized)", body = AdminErrorBody),
        (status = 403, description = "Not an admin (err_Forbidden)", body = AdminErrorBody),
        (status = 503, description = "The store is unavailable (err_ServiceUnavailable); retry", body = AdminErrorBody),
    )
)]
#[post("/api/admin/v1/authenticated-sessions/revoke-user")]
pub(super) async fn revoke_user(
    guard: Guard,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Answer {
    let guid = user_guid_body(&req, payload, &state).await;
    let count = guard
        .run(&state, ADMIN, guid, |conn, app, caller, guid| {
            let by = EndedBy::Admin(caller.user.guid);
            let ender = Ender::new(app, &by, Surface::Admin);
            sessions::end_all(conn, Owner::Guid(&guid), None, ender, clock::now())
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
}
