//! Rocket.Chat device management: `/api/v1/sessions/*` (seeds 001, 003, 004).
//!
//! Every handler checks, in order: authentication (the `Caller` extractor,
//! 401), permission (403), parameters (400), then the second factor (400).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::api::docs::{NotLoggedIn, RcError, SimpleError};
use crate::api::{json_body, param, query_pairs};
use crate::app::AppState;
use crate::auth::permissions::most_important_role;
use crate::auth::{two_factor, Caller, Credentials, Permission};
use crate::db::Conn;
use crate::domain::clock;
use crate::domain::ended_by::EndedBy;
use crate::domain::filter::Filter;
use crate::domain::listing::{Cursor, CursorError, Paging, Scope, Sort, SortError};
use crate::error::Error;
use crate::store::sessions::page::{self as session_lists, ListRequest, ListedSession, Page};
use crate::store::sessions::{self, Session};
use crate::store::users::User;

/// The list parameters, for the document (handlers parse them with the
/// domain types, after authentication).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListQuery {
    /// Rows to skip (not with `cursor`).
    #[param(minimum = 0)]
    offset: Option<i64>,
    /// Page size: 0 or absent means 50; above 100 is clamped to 100.
    #[param(minimum = 0)]
    count: Option<i64>,
    /// A case-insensitive, unanchored regular expression.
    #[param(max_length = 256)]
    filter: Option<String>,
    /// JSON such as `{"loginAt":-1}`; values 1 or -1.
    sort: Option<String>,
    /// The `nextCursor` of the previous page, in place of `offset`.
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

/// `{"sessionId": "…"}`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct SessionIdBody {
    #[schema(min_length = 1)]
    #[serde(rename = "sessionId")]
    session_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceWire {
    /// `browser`, `mobile`, `crawler`, `appliance` or `other`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(rename = "longVersion")]
    pub long_version: String,
    pub os: OsWire,
    pub version: String,
}

#[derive(Serialize, ToSchema)]
pub struct OsWire {
    pub name: String,
    pub version: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserRef {
    pub username: String,
    pub name: String,
}

/// One session in a list.
#[derive(Serialize, ToSchema)]
pub struct SessionItem {
    #[serde(rename = "sessionId")]
    pub session_id: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    pub device: DeviceWire,
    pub host: String,
    pub ip: String,
    /// ISO-8601 UTC with milliseconds.
    #[serde(rename = "loginAt")]
    pub login_at: String,
    /// On `list.all`.
    #[serde(rename = "_user", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub user: Option<UserRef>,
    #[serde(rename = "_id")]
    pub id: String,
    /// On `list`: is this the session making the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub current: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionPage {
    pub sessions: Vec<SessionItem>,
    /// Every match, across all pages.
    pub total: i64,
    /// The page size applied.
    pub count: i64,
    pub offset: i64,
    /// Pass as `cursor` for the next page; null on the last page.
    #[serde(rename = "nextCursor")]
    pub next_cursor: Option<String>,
    pub success: bool,
}

/// A session in full, as seed 004.
#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "sessionId")]
    pub session_id: String,
    #[serde(rename = "instanceId")]
    pub instance_id: String,
    /// The stored SHA-256 of the token, never the token.
    #[serde(rename = "loginToken")]
    pub login_token: String,
    pub ip: String,
    pub host: String,
    pub device: DeviceWire,
    #[serde(rename = "userId")]
    pub user_id: String,
    pub roles: Vec<String>,
    #[serde(rename = "mostImportantRole")]
    pub most_important_role: String,
    #[serde(rename = "loginAt")]
    pub login_at: String,
    pub day: u32,
    pub month: u32,
    pub year: i32,
    #[serde(rename = "searchTerm")]
    pub search_term: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "_updatedAt")]
    pub updated_at: String,
    /// When the session ended or expired.
    #[serde(rename = "closedAt", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub closed_at: Option<String>,
    #[serde(rename = "lastActivityAt")]
    pub last_activity_at: String,
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct LogoutResult {
    #[serde(rename = "sessionId")]
    pub session_id: String,
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct LogoutOthersResult {
    /// How many sessions were ended.
    pub count: usize,
    pub success: bool,
}

const LIST_PARAMS: &[&str] = &["offset", "count", "filter", "sort", "cursor"];

/// A list request, validated.
struct ListParams {
    paging: Paging,
    sort: Sort,
    filter: Option<Filter>,
    cursor: Option<Cursor>,
    /// What a cursor for this list, sort and filter must carry.
    cursor_context: String,
}

impl ListParams {
    fn parse(req: &HttpRequest, scope: Scope, state: &AppState) -> Result<Self, Error> {
        let pairs = query_pairs(req, LIST_PARAMS)?;
        let paging = Paging::parse(param(&pairs, "offset"), param(&pairs, "count"))
            .map_err(Error::InvalidParams)?;
        let sort = Sort::parse(param(&pairs, "sort"), scope).map_err(|e| match e {
            SortError::Invalid(raw) => Error::bad_request(
                "error-invalid-sort",
                format!("Invalid sort parameter provided: \"{raw}\""),
            ),
            SortError::UnknownKeys => Error::InvalidSortKeys,
        })?;
        let filter =
            Filter::parse(param(&pairs, "filter").unwrap_or_default()).map_err(|reason| {
                Error::bad_request("error-invalid-filter", format!("Invalid filter: {reason}"))
            })?;
        let cursor_context =
            Cursor::context_for(scope, &sort, filter.as_ref().map(Filter::pattern));
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
        Ok(ListParams {
            paging,
            sort,
            filter,
            cursor,
            cursor_context,
        })
    }
}

/// One page of the list `params` describe, with its total.
fn load_page(
    conn: &mut Conn,
    params: &ListParams,
    owner: Option<i64>,
    filter_budget: std::time::Duration,
) -> Result<Page, Error> {
    let request = ListRequest {
        owner,
        filter: params.filter.as_ref().map(Filter::pattern),
        filter_matches_users: owner.is_none(),
        sort: &params.sort,
        offset: params.paging.offset,
        limit: params.paging.count,
        after: params.cursor.as_ref(),
        filter_budget,
    };
    Ok(session_lists::page(conn, &request, clock::now())?)
}

/// The Rocket.Chat envelope of a page: `_user` on every row of `list.all`,
/// `current` on every row of `list`.
fn page_response(
    state: &AppState,
    params: ListParams,
    page: Page,
    with_user: bool,
    current: Option<i64>,
) -> Result<HttpResponse, Error> {
    let next_cursor = match (page.more, page.rows.last()) {
        (true, Some(last)) => Some(
            Cursor {
                context: params.cursor_context,
                values: last.key_values(&params.sort),
                id: last.session.id,
            }
            .seal(&state.secrets)
            .map_err(Error::Internal)?,
        ),
        _ => None,
    };
    let sessions = page
        .rows
        .into_iter()
        .map(|row| list_item(row, with_user, current))
        .collect();
    Ok(HttpResponse::Ok().json(SessionPage {
        sessions,
        total: page.total,
        count: params.paging.count,
        offset: params.paging.offset,
        next_cursor,
        success: true,
    }))
}

fn device(session: &Session) -> DeviceWire {
    DeviceWire {
        kind: session.device_type.clone(),
        name: session.device_name.clone(),
        long_version: session.device_long_version.clone(),
        os: OsWire {
            name: session.os_name.clone(),
            version: session.os_version.clone(),
        },
        version: session.device_version.clone(),
    }
}

/// One row of `list` (with `current`) or `list.all` (with `_user`).
fn list_item(row: ListedSession, with_user: bool, current: Option<i64>) -> SessionItem {
    let ListedSession {
        session,
        user_guid,
        username,
        name,
    } = row;
    SessionItem {
        id: session.session_id.clone(),
        session_id: session.session_id,
        user_id: user_guid,
        device: DeviceWire {
            kind: session.device_type,
            name: session.device_name,
            long_version: session.device_long_version,
            os: OsWire {
                name: session.os_name,
                version: session.os_version,
            },
            version: session.device_version,
        },
        host: session.host,
        ip: session.ip,
        login_at: clock::iso_millis(session.login_at),
        user: with_user.then_some(UserRef { username, name }),
        current: current.map(|current| session.id == current),
    }
}

/// The full shape of seed 004.
fn info_body(session: &Session, owner: &User) -> SessionInfo {
    let roles = owner.role_list();
    let login = session.login_at;
    let now = clock::now();
    let closed = session
        .logout_at
        .or((session.expires_at <= now).then_some(session.expires_at));
    SessionInfo {
        id: session.session_id.clone(),
        kind: "session".into(),
        session_id: session.session_id.clone(),
        instance_id: session.instance_id.clone(),
        login_token: session.token_hash.clone(),
        ip: session.ip.clone(),
        host: session.host.clone(),
        device: device(session),
        user_id: owner.guid.clone(),
        most_important_role: most_important_role(roles.iter().copied()).into(),
        roles: roles.into_iter().map(str::to_owned).collect(),
        login_at: clock::iso_millis(login),
        day: chrono::Datelike::day(&login),
        month: chrono::Datelike::month(&login),
        year: chrono::Datelike::year(&login),
        search_term: session.search_term.clone(),
        created_at: clock::iso_millis(login),
        updated_at: clock::iso_millis(session.updated_at),
        closed_at: closed.map(clock::iso_millis),
        last_activity_at: clock::iso_millis(session.last_activity_at),
        success: true,
    }
}

/// A `sessionId` that cannot name any session is treated as unknown.
fn plausible_session_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn session_not_found() -> Error {
    Error::NotFound("Session not found")
}

fn required_session_id_query(req: &HttpRequest) -> Result<String, Error> {
    let pairs = query_pairs(req, &["sessionId"])?;
    match param(&pairs, "sessionId") {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(Error::InvalidParams(
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
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        Some(Value::String(_)) | None => Err(Error::InvalidParams(
            "must have required property 'sessionId'".into(),
        )),
        Some(_) => Err(Error::InvalidParams("'sessionId' must be string".into())),
    }
}

/// The caller's active sessions, paged, sorted and filtered in the store.
#[utoipa::path(
    tag = "device management",
    security(("user_id" = [], "auth_token" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = SessionPage),
        (status = 400, description = "Bad paging, sort, filter or cursor, or an unknown parameter (`error-invalid-sort-keys` has only `error`)", body = RcError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 429, description = "The caller already has as many filtered lists running as allowed (`error-too-many-requests`); see Retry-After", body = RcError),
        (status = 503, description = "The store is unavailable, or every slot for filtered lists stayed busy (`error-busy`); retry", body = RcError),
    )
)]
#[get("/api/v1/sessions/list")]
pub(super) async fn list(
    credentials: Credentials,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    // Parsed now, reported after authentication: a 401 comes before a 400.
    let params = ListParams::parse(&req, Scope::Own, &state);
    let budget = state.settings.filter_timeout();
    if matches!(
        &params,
        Ok(ListParams {
            filter: Some(_),
            ..
        })
    ) {
        // A filter may be costly: it runs in the bulkhead, which needs to
        // know the caller first.
        let caller = state
            .db
            .run(move |conn| credentials.authenticate(conn))
            .await?;
        let params = params?;
        // Held by the store work itself, so the slot is not given back
        // while a statement still runs for a caller who got 503.
        let slot = state.bulkhead.enter(caller.user.id).await?;
        let owner = caller.user.id;
        let (page, params) = state
            .db
            .run(move |conn| {
                let _slot = slot;
                let page = load_page(conn, &params, Some(owner), budget)?;
                Ok::<_, Error>((page, params))
            })
            .await?;
        return page_response(&state, params, page, false, Some(caller.session.id));
    }
    // The hottest list: authentication and the page share one blocking call.
    let (page, params, current) = state
        .db
        .run(move |conn| {
            let caller = credentials.authenticate(conn)?;
            let params = params?;
            let page = load_page(conn, &params, Some(caller.user.id), budget)?;
            Ok::<_, Error>((page, params, caller.session.id))
        })
        .await?;
    page_response(&state, params, page, false, Some(current))
}

/// Everyone's active sessions, each with its user; needs `view-device-management` and 2FA.
#[utoipa::path(
    tag = "device management",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    params(ListQuery),
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
pub(super) async fn list_all(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    caller.require(Permission::ViewDeviceManagement)?;
    let params = ListParams::parse(&req, Scope::Everyone, &state)?;
    two_factor::require(&state, &caller, &req).await?;
    // Held by the store work itself, so the slot is not given back
    // while a statement still runs for a caller who got 503.
    let slot = state.bulkhead.enter(caller.user.id).await?;
    let budget = state.settings.filter_timeout();
    let (page, params) = state
        .db
        .run(move |conn| {
            let _slot = slot;
            let page = load_page(conn, &params, None, budget)?;
            Ok::<_, Error>((page, params))
        })
        .await?;
    page_response(&state, params, page, true, None)
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
pub(super) async fn info(
    credentials: Credentials,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    // Parsed now, reported after authentication: a 401 comes before a 400.
    let session_id = required_session_id_query(&req);
    let (session, user) = state
        .db
        .run(move |conn| {
            let caller = credentials.authenticate(conn)?;
            let session_id = session_id?;
            if !plausible_session_id(&session_id) {
                return Err(session_not_found());
            }
            sessions::find_with_owner(conn, &session_id, Some(caller.user.id))?
                .ok_or_else(session_not_found)
        })
        .await?;
    Ok(HttpResponse::Ok().json(info_body(&session, &user)))
}

/// Any user's session, by exact id; needs `view-device-management` and 2FA.
#[utoipa::path(
    tag = "device management",
    security(("user_id" = [], "auth_token" = [], "two_factor" = []), ("user_id" = [], "auth_token" = [])),
    params(SessionIdQuery),
    responses(
        (status = 200, description = "The session", body = SessionInfo),
        (status = 400, description = "Bad parameters, or the second factor is missing or wrong", body = RcError),
        (status = 403, description = "Missing permission", body = SimpleError),
        (status = 404, description = "Unknown session", body = SimpleError),
        (status = 401, description = "Not logged in", body = NotLoggedIn),
        (status = 503, description = "The store is unavailable; retry", body = RcError),
    )
)]
#[get("/api/v1/sessions/info.admin")]
pub(super) async fn info_admin(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    caller.require(Permission::ViewDeviceManagement)?;
    let session_id = required_session_id_query(&req)?;
    two_factor::require(&state, &caller, &req).await?;
    if !plausible_session_id(&session_id) {
        return Err(session_not_found());
    }
    let found = state
        .db
        .run(move |conn| Ok::<_, Error>(sessions::find_with_owner(conn, &session_id, None)?))
        .await?;
    let (session, user) = found.ok_or_else(session_not_found)?;
    Ok(HttpResponse::Ok().json(info_body(&session, &user)))
}

/// Ends `session_id` if it exists (and, with `owner`, belongs to them).
/// Ending an ended session answers the same: the call is idempotent.
async fn end_session(
    state: &web::Data<AppState>,
    session_id: String,
    owner: Option<i64>,
    by: EndedBy,
) -> Result<HttpResponse, Error> {
    if !plausible_session_id(&session_id) {
        return Err(session_not_found());
    }
    let id = session_id.clone();
    let found = state
        .db
        .run(move |conn| {
            let Some((session, _)) = sessions::find_with_owner(conn, &id, owner)? else {
                return Ok::<_, Error>(false);
            };
            sessions::end(conn, session.id, &by, clock::now())?;
            Ok(true)
        })
        .await?;
    if !found {
        return Err(session_not_found());
    }
    Ok(HttpResponse::Ok().json(LogoutResult {
        session_id,
        success: true,
    }))
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
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let session_id = required_session_id_body(&req, payload, &state).await?;
    end_session(&state, session_id, Some(caller.user.id), EndedBy::User).await
}

/// Ends anyone's session (idempotent); needs `logout-device-management` and 2FA.
#[utoipa::path(
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
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    caller.require(Permission::LogoutDeviceManagement)?;
    let session_id = required_session_id_body(&req, payload, &state).await?;
    two_factor::require(&state, &caller, &req).await?;
    end_session(
        &state,
        session_id,
        None,
        EndedBy::Admin(caller.user.guid.clone()),
    )
    .await
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
pub(super) async fn logout_others(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let (user_id, keep) = (caller.user.id, caller.session.id);
    let count = state
        .db
        .run(move |conn| {
            Ok::<_, Error>(sessions::end_all_for_user(
                conn,
                user_id,
                Some(keep),
                &EndedBy::User,
                clock::now(),
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(LogoutOthersResult {
        count,
        success: true,
    }))
}
