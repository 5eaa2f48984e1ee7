//! Rocket.Chat device management: `/api/v1/sessions/*` (as Rocket.Chat documents it).
//!
//! Every handler checks, in order: authentication (401), permission (403),
//! parameters (400), then the second factor (400), in one store call with
//! its work (`extract::Guard`).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::{NotLoggedIn, RocketChatError, SimpleError, TypedError as RcError};
use super::wire::{
    ListShape, LogoutOthersResult, LogoutResult, PopulatedSession, SessionInfo, SessionPage,
};
use crate::api::extract::{Access, Guard};
use crate::api::{json_body, param, query_pairs};
use crate::auth::{Caller, Credentials, Permission};
use crate::db::Conn;
use crate::domain::clock;
use crate::domain::ended_by::EndedBy;
use crate::domain::filter::Filter;
use crate::domain::listing::{Cursor, CursorError, ListQuery, Scope, Sort, SortError};
use crate::domain::paging::Paging;
use crate::error::Error;
use crate::service::sessions::{self, Ender, Owner, Target};
use crate::service::Surface;
use crate::state::AppState;

/// The list parameters, for the document (handlers parse them with the
/// domain types, after authentication).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListQueryDoc {
    /// Rows to skip (not with `cursor`).
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Page size: 0 or absent means 50; above 100 is clamped to 100.
    #[param(minimum = 0)]
    count: Option<i64>,
    /// A case-insensitive, unanchored regular expression.
    #[param(max_length = 256)]
    filter: Option<String>,
    /// A JSON object such as `{"loginAt":-1}`: sort keys in order, each 1
    /// (ascending) or -1 (descending).
    sort: Option<String>,
    /// The `nextCursor` of the previous page, in place of `offset`, with the
    /// same `sort` and `filter`.
    #[param(pattern = "^[A-Za-z0-9_-]*$", max_length = 4096)]
    cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SessionIdQuery {
    /// The session's 17-character id.
    #[param(min_length = 1)]
    #[serde(rename = "sessionId")]
    session_id: String,
}

/// `{"sessionId": "…"}`, and nothing else.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SessionIdBody {
    #[schema(min_length = 1)]
    #[serde(rename = "sessionId")]
    session_id: String,
}

const LIST_PARAMS: &[&str] = &["offset", "count", "filter", "sort", "cursor"];

/// A list request, validated.
fn list_query(req: &HttpRequest, scope: Scope, state: &AppState) -> Result<ListQuery, Error> {
    let pairs = query_pairs(req, LIST_PARAMS)?;
    let paging = Paging::from_offset(param(&pairs, "offset"), param(&pairs, "count"))
        .map_err(Error::InvalidParams)?;
    let sort = Sort::parse(param(&pairs, "sort"), scope).map_err(|e| match e {
        SortError::Invalid(raw) => Error::bad_request(
            "error-invalid-sort",
            format!("Invalid sort parameter provided: \"{raw}\""),
        ),
        SortError::UnknownKeys => Error::InvalidSortKeys,
    })?;
    let filter = Filter::parse(param(&pairs, "filter").unwrap_or_default()).map_err(|reason| {
        Error::bad_request("error-invalid-filter", format!("Invalid filter: {reason}"))
    })?;
    let cursor_context = Cursor::context_for(scope, &sort, filter.as_ref().map(Filter::pattern));
    let cursor = match param(&pairs, "cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(_) if paging.offset > 0 => {
            return Err(Error::InvalidParams(
                "'cursor' takes the place of 'offset'; send one of them".into(),
            ))
        }
        Some(raw) => Some(Cursor::open(raw, &state.secrets, &cursor_context, &sort).map_err(|e| match e {
            CursorError::Invalid => Error::bad_request(
                "error-invalid-cursor",
                "The cursor is not one this service issued, or it was altered; request the first page without a cursor",
            ),
            CursorError::Mismatch => Error::bad_request(
                "error-invalid-cursor",
                "The cursor was issued for another list, sort or filter; send the same sort and filter, or start again without a cursor",
            ),
        })?),
    };
    Ok(ListQuery {
        paging,
        sort,
        filter,
        cursor,
        cursor_context,
    })
}

/// One page: the caller's sessions, or (with `everyone`) all.
fn page(
    conn: &mut Conn,
    state: &AppState,
    caller: Caller,
    query: ListQuery,
    everyone: bool,
) -> Result<SessionPage, Error> {
    let (owner, shape) = match everyone {
        false => (
            Some(caller.user.id),
            ListShape::Own {
                current: caller.session.id,
            },
        ),
        true => (None, ListShape::Everyone),
    };
    let page = sessions::page(conn, &query, owner, state, clock::now())?;
    Ok(SessionPage::new(
        page,
        query.paging.count,
        query.paging.offset,
        shape,
    ))
}

/// The caller's first or offset page in one statement, when it can.
fn own_page(
    conn: &mut Conn,
    state: &AppState,
    credentials: &Credentials,
    query: &ListQuery,
) -> Result<Option<SessionPage>, Error> {
    let found = sessions::own_page(conn, credentials, query, state, clock::now())?;
    Ok(found.map(|(caller, page)| {
        let shape = ListShape::Own { current: caller.id };
        SessionPage::new(page, query.paging.count, query.paging.offset, shape)
    }))
}

/// Everyone's first pages and the caller in one statement, when it can.
fn everyone_page(
    conn: &mut Conn,
    state: &AppState,
    credentials: &Credentials,
    query: &ListQuery,
) -> Result<Option<SessionPage>, Error> {
    let permission = Permission::ViewDeviceManagement;
    let found = sessions::everyone_page(conn, credentials, permission, query, state, clock::now())?;
    Ok(found.map(|page| {
        SessionPage::new(
            page,
            query.paging.count,
            query.paging.offset,
            ListShape::Everyone,
        )
    }))
}

/// `sessionId` is there but empty.
fn empty_session_id() -> Error {
    Error::InvalidParams("'sessionId' must NOT have fewer than 1 characters".into())
}

fn required_session_id_query(req: &HttpRequest) -> Result<String, Error> {
    let pairs = query_pairs(req, &["sessionId"])?;
    match param(&pairs, "sessionId") {
        Some("") => Err(empty_session_id()),
        Some(id) => Ok(id.to_owned()),
        None => Err(Error::InvalidParams(
            "must have required property 'sessionId'".into(),
        )),
    }
}

async fn required_session_id_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<String, Error> {
    let body: Value = json_body(req, payload, state.settings.max_body_bytes).await?;
    let Value::Object(fields) = body else {
        return Err(Error::InvalidParams("must be object".into()));
    };
    if let Some(extra) = fields.keys().find(|k| *k != "sessionId") {
        return Err(Error::UnknownParam(extra.clone()));
    }
    match fields.get("sessionId") {
        Some(Value::String(id)) if id.is_empty() => Err(empty_session_id()),
        Some(Value::String(id)) => Ok(id.clone()),
        None => Err(Error::InvalidParams(
            "must have required property 'sessionId'".into(),
        )),
        Some(_) => Err(Error::InvalidParams("'sessionId' must be string".into())),
    }
}

/// Ends `session_id` if it exists (and, with `owner`, belongs to them).
/// Ending an ended session answers the same: the call is idempotent.
fn end(
    conn: &mut Conn,
    state: &AppState,
    session_id: String,
    owner: Option<i64>,
    by: &EndedBy,
) -> Result<LogoutResult, Error> {
    let target = Target::SessionId {
        session_id: &session_id,
        owner,
    };
    let ender = Ender::new(state, by, Surface::RocketChat);
    sessions::end(conn, target, ender, clock::now())?;
    Ok(LogoutResult {
        session_id,
        success: true,
    })
}

type Answer = Result<HttpResponse, RocketChatError>;

/// The caller's active sessions, paged, sorted and filtered in the store.
#[utoipa::path(
    operation_id = "sessions_list",
    tag = "device management",
    security(("user_id" = [], "auth_token" = [])),
    params(ListQueryDoc),
    responses(
        (status = 200, description = "One page", body = SessionPage),
        (status = 400, description = "Bad paging, sort, filter or cursor, or an unknown parameter (`error-invalid-sort-keys` has only `error`)", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 429, description = "The caller already has as many filtered lists running as allowed (`error-too-many-requests`); see Retry-After", body = RcError),
        (status = 503, description = "The store is unavailable, or every slot for filtered lists stayed busy (`error-busy`); retry", body = RcError),
    )
)]
#[get("/api/v1/sessions/list")]
pub(super) async fn list(guard: Guard, req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let query = list_query(&req, Scope::Own, &state);
    let page = if query.as_ref().is_ok_and(|q| q.filter.is_some()) {
        // A filter may be costly: it runs in the bulkhead.
        guard
            .run_expensive(&state, Access::USER, query, |conn, app, caller, query| {
                page(conn, app, caller, query, false)
            })
            .await?
    } else {
        // The hottest list: one statement authenticates and reads the page.
        guard
            .run_fused(
                &state,
                Access::USER,
                query,
                own_page,
                |conn, app, caller, query| page(conn, app, caller, query, false),
            )
            .await?
    };
    Ok(HttpResponse::Ok().json(page))
}

/// Everyone's active sessions, each with its user; needs `view-device-management` and 2FA.
#[utoipa::path(
    tag = "device management",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    params(ListQueryDoc),
    responses(
        (status = 200, description = "One page", body = SessionPage),
        (status = 400, description = "Bad parameters, or the second factor is missing or wrong", body = RcError),
        (status = 403, description = "Missing permission", body = SimpleError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 429, description = "The caller already has as many all-user lists running as allowed (`error-too-many-requests`); see Retry-After", body = RcError),
        (status = 503, description = "The store is unavailable, or every slot for all-user lists stayed busy (`error-busy`); retry", body = RcError),
    )
)]
#[get("/api/v1/sessions/list.all")]
pub(super) async fn list_all(guard: Guard, req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let query = list_query(&req, Scope::Everyone, &state);
    let access = Access::admin(Permission::ViewDeviceManagement);
    let everyone =
        |conn: &mut Conn, app: &AppState, caller, query| page(conn, app, caller, query, true);
    let page = if query.as_ref().is_ok_and(sessions::everyone_page_is_cheap) {
        // The first pages in login order walk an index: one statement
        // authenticates, checks the permission and second factor, and reads.
        guard
            .run_fused(&state, access, query, everyone_page, everyone)
            .await?
    } else {
        guard.run_expensive(&state, access, query, everyone).await?
    };
    Ok(HttpResponse::Ok().json(page))
}

/// One of the caller's sessions, active or ended, in full.
#[utoipa::path(
    tag = "device management",
    security(("user_id" = [], "auth_token" = [])),
    params(SessionIdQuery),
    responses(
        (status = 200, description = "The session", body = SessionInfo),
        (status = 400, description = "`sessionId` is missing, or an unknown parameter", body = RcError),
        (status = 404, description = "Unknown, or another user's", body = SimpleError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[get("/api/v1/sessions/info")]
pub(super) async fn info(guard: Guard, req: HttpRequest, state: web::Data<AppState>) -> Answer {
    let session_id = required_session_id_query(&req);
    let found = guard
        .run_fused(
            &state,
            Access::USER,
            session_id,
            |conn, _, credentials, session_id| {
                sessions::own_session(conn, credentials, session_id, clock::now())
            },
            |conn, _, caller, session_id| {
                let target = Target::SessionId {
                    session_id: &session_id,
                    owner: Some(caller.user.id),
                };
                sessions::describe(conn, target, clock::now())
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(SessionInfo::from(found)))
}

/// Any user's active session, by exact id, as `list.all` shows it; needs
/// `view-device-management` and 2FA.
#[utoipa::path(
    tag = "device management",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    params(SessionIdQuery),
    responses(
        (status = 200, description = "The session with its owner", body = PopulatedSession),
        (status = 400, description = "Bad parameters, or the second factor is missing or wrong", body = RcError),
        (status = 403, description = "Missing permission", body = SimpleError),
        (status = 404, description = "Unknown, ended or expired session", body = SimpleError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[get("/api/v1/sessions/info.admin")]
pub(super) async fn info_admin(
    guard: Guard,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Answer {
    let session_id = required_session_id_query(&req);
    let access = Access::admin(Permission::ViewDeviceManagement);
    let found = guard
        .run(&state, access, session_id, |conn, _, _, session_id| {
            sessions::describe_active(conn, &session_id, clock::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(PopulatedSession::from(found)))
}

/// Ends one of the caller's sessions (idempotent).
#[utoipa::path(
    tag = "device management",
    security(("user_id" = [], "auth_token" = [])),
    request_body = SessionIdBody,
    responses(
        (status = 200, description = "Ended (or already ended)", body = LogoutResult),
        (status = 400, description = "A bad body", body = RcError),
        (status = 404, description = "Unknown, or another user's", body = SimpleError),
        (status = 413, description = "The body is too large", body = RcError),
        (status = 415, description = "Content-Type is not application/json", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[post("/api/v1/sessions/logout.me")]
pub(super) async fn logout_me(
    guard: Guard,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Answer {
    let session_id = required_session_id_body(&req, payload, &state).await;
    let ended = guard
        .run(
            &state,
            Access::USER,
            session_id,
            |conn, app, caller, session_id| {
                end(conn, app, session_id, Some(caller.user.id), &EndedBy::User)
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ended))
}

/// Ends anyone's session (idempotent); needs `logout-device-management` and 2FA.
#[utoipa::path(
    operation_id = "sessions_logout",
    tag = "device management",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    request_body = SessionIdBody,
    responses(
        (status = 200, description = "Ended (or already ended)", body = LogoutResult),
        (status = 400, description = "A bad body, or the second factor is missing or wrong", body = RcError),
        (status = 403, description = "Missing permission", body = SimpleError),
        (status = 404, description = "Unknown session", body = SimpleError),
        (status = 413, description = "The body is too large", body = RcError),
        (status = 415, description = "Content-Type is not application/json", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[post("/api/v1/sessions/logout")]
pub(super) async fn logout(
    guard: Guard,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Answer {
    let session_id = required_session_id_body(&req, payload, &state).await;
    let access = Access::admin(Permission::LogoutDeviceManagement);
    let ended = guard
        .run(
            &state,
            access,
            session_id,
            |conn, app, caller, session_id| {
                end(
                    conn,
                    app,
                    session_id,
                    None,
                    &EndedBy::Admin(caller.user.guid),
                )
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ended))
}

/// Ends all the caller's sessions but the current one.
#[utoipa::path(
    tag = "device management",
    security(("user_id" = [], "auth_token" = [])),
    responses(
        (status = 200, description = "How many ended", body = LogoutOthersResult),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[post("/api/v1/sessions/logout.others")]
pub(super) async fn logout_others(guard: Guard, state: web::Data<AppState>) -> Answer {
    let count = guard
        .run(&state, Access::USER, Ok(()), |conn, app, caller, ()| {
            let owner = Owner::Id(caller.user.id);
            let keep = Some(caller.session.id);
            let ender = Ender::new(app, &EndedBy::User, Surface::RocketChat);
            sessions::end_all(conn, owner, keep, ender, clock::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(LogoutOthersResult {
        count,
        success: true,
    }))
}
