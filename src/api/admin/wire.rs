//! The admin surface's response bodies (PascalCase, numeric ids), built
//! from store rows with `From`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::clock;
use crate::store::sessions::by_user::UserSessionCount;
use crate::store::sessions::Session;
use crate::store::users::User;

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

impl From<UserSessionCount> for UserSessionsRow {
    fn from(row: UserSessionCount) -> Self {
        UserSessionsRow {
            is_operator: row.roles.split(',').any(|r| r == "admin"),
            user_guid: row.guid,
            user_name: row.username,
            session_count: row.session_count,
        }
    }
}

impl From<(&Session, &User)> for AdminSession {
    fn from((session, user): (&Session, &User)) -> Self {
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
}

/// `"<name>- v. <version>"`, with `Other` for an unknown name, as the admin API original reads them.
fn name_and_version(name: &str, version: &str) -> String {
    let name = if name.is_empty() { "Other" } else { name };
    format!("{name}- v. {version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_device_parts_read_as_the_original_api_does() {
        assert_eq!(name_and_version("", ""), "Other- v. ");
        assert_eq!(
            name_and_version("Chrome", "113.0.0.0"),
            "Chrome- v. 113.0.0.0"
        );
    }
}
