//! The Rocket.Chat surface's response bodies, built from store rows with
//! `From`. Each type is both what is sent and what the OpenAPI document
//! shows.

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::permissions::most_important_role;
use crate::domain::clock;
use crate::service::sessions::Page;
use crate::store::sessions::page::ListedSession;
use crate::store::sessions::Session;
use crate::store::users::User;

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
    /// The user had not logged in from this device (browser, OS and
    /// network) within `SESSIOND_NEW_DEVICE_DAYS` before this session.
    #[serde(rename = "newDevice")]
    pub new_device: bool,
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

/// A session in full: Rocket.Chat's session document, with the stored
/// hash of the token in `loginToken`.
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
    /// The user had not logged in from this device (browser, OS and
    /// network) within `SESSIOND_NEW_DEVICE_DAYS` before this session.
    #[serde(rename = "newDevice")]
    pub new_device: bool,
    pub success: bool,
}

/// `info.admin`: the session as `list.all` shows it, with its owner.
#[derive(Serialize, ToSchema)]
pub struct PopulatedSession {
    #[serde(flatten)]
    pub session: SessionItem,
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

impl From<&Session> for DeviceWire {
    fn from(session: &Session) -> Self {
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
}

/// Which of the two list shapes a page takes.
#[derive(Clone, Copy, Debug)]
pub enum ListShape {
    /// `list`: `current` on every row, true for this session.
    Own { current: i64 },
    /// `list.all`: `_user` on every row.
    Everyone,
}

impl SessionItem {
    pub fn new(row: ListedSession, shape: ListShape) -> Self {
        let ListedSession {
            session,
            user_guid,
            username,
            name,
        } = row;
        let (user, current) = match shape {
            ListShape::Own { current } => (None, Some(session.id == current)),
            ListShape::Everyone => (Some(UserRef { username, name }), None),
        };
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
            new_device: session.new_device,
            user,
            current,
        }
    }
}

impl SessionPage {
    pub fn new(page: Page, count: i64, offset: i64, shape: ListShape) -> Self {
        SessionPage {
            sessions: page
                .rows
                .into_iter()
                .map(|row| SessionItem::new(row, shape))
                .collect(),
            total: page.total,
            count,
            offset,
            next_cursor: page.next_cursor,
            success: true,
        }
    }
}

impl From<(Session, User)> for PopulatedSession {
    fn from((session, owner): (Session, User)) -> Self {
        PopulatedSession {
            session: SessionItem {
                id: session.session_id.clone(),
                device: DeviceWire::from(&session),
                login_at: clock::iso_millis(session.login_at),
                new_device: session.new_device,
                session_id: session.session_id,
                user_id: owner.guid,
                host: session.host,
                ip: session.ip,
                user: Some(UserRef {
                    username: owner.username,
                    name: owner.name,
                }),
                current: None,
            },
            success: true,
        }
    }
}

/// The full shape of `info`.
impl From<(Session, User)> for SessionInfo {
    fn from((session, owner): (Session, User)) -> Self {
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
            device: DeviceWire::from(&session),
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
            new_device: session.new_device,
            success: true,
        }
    }
}

/// The caller, as `/me` and login show it.
#[derive(Serialize, ToSchema)]
pub struct Me {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
    pub name: String,
    pub active: bool,
    pub roles: Vec<String>,
    pub services: MeServices,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "_updatedAt")]
    pub updated_at: String,
    /// Present on `GET /api/v1/me`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub success: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct MeServices {
    pub totp: TotpState,
}

#[derive(Serialize, ToSchema)]
pub struct TotpState {
    pub enabled: bool,
}

impl From<&User> for Me {
    fn from(user: &User) -> Self {
        Me {
            id: user.guid.clone(),
            username: user.username.clone(),
            name: user.name.clone(),
            active: user.active,
            roles: user.role_list().into_iter().map(str::to_owned).collect(),
            services: MeServices {
                totp: TotpState {
                    enabled: user.totp_enabled,
                },
            },
            created_at: clock::iso_millis(user.created_at),
            updated_at: clock::iso_millis(user.updated_at),
            success: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub status: String,
    pub data: LoginData,
}

#[derive(Serialize, ToSchema)]
pub struct LoginData {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "authToken")]
    pub auth_token: String,
    pub me: Me,
}

#[derive(Serialize, ToSchema)]
pub struct LogoutResponse {
    pub status: String,
    pub data: LogoutMessage,
}

#[derive(Serialize, ToSchema)]
pub struct LogoutMessage {
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// The secret in base32.
    pub secret: String,
    /// An `otpauth://` URL for authenticator apps.
    pub url: String,
    /// The URL as a QR code, a PNG data URL.
    pub qrcode: String,
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BackupCodes {
    /// Ten single-use backup codes, shown once.
    pub codes: Vec<String>,
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}
