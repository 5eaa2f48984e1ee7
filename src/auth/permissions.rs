//! Roles map to permissions; handlers ask for permissions, never roles.

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    ViewDeviceManagement,
    LogoutDeviceManagement,
    ManageSessions,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Permission::ViewDeviceManagement => "view-device-management",
            Permission::LogoutDeviceManagement => "logout-device-management",
            Permission::ManageSessions => "manage-sessions",
        }
    }
}

/// The permissions one role grants.
fn granted_by(role: &str) -> &'static [Permission] {
    match role {
        "admin" => &[
            Permission::ViewDeviceManagement,
            Permission::LogoutDeviceManagement,
            Permission::ManageSessions,
        ],
        _ => &[],
    }
}

/// The roles that grant `permission`.
pub fn roles_granting(permission: Permission) -> Vec<&'static str> {
    ["admin", "user"]
        .into_iter()
        .filter(|role| granted_by(role).contains(&permission))
        .collect()
}

pub fn has_permission<'a>(
    roles: impl IntoIterator<Item = &'a str>,
    permission: Permission,
) -> bool {
    roles
        .into_iter()
        .any(|role| granted_by(role).contains(&permission))
}

/// `Err(Forbidden)` unless one of `roles` grants `permission`.
pub fn require<'a>(
    roles: impl IntoIterator<Item = &'a str>,
    permission: Permission,
) -> Result<(), Error> {
    if has_permission(roles, permission) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// Rocket.Chat's `mostImportantRole`.
pub fn most_important_role<'a>(roles: impl IntoIterator<Item = &'a str>) -> &'static str {
    if roles.into_iter().any(|r| r == "admin") {
        "admin"
    } else {
        "user"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_has_every_session_permission_and_user_has_none() {
        for permission in [
            Permission::ViewDeviceManagement,
            Permission::LogoutDeviceManagement,
            Permission::ManageSessions,
        ] {
            assert!(
                has_permission(["user", "admin"], permission),
                "{}",
                permission.name()
            );
            assert!(
                !has_permission(["user"], permission),
                "{}",
                permission.name()
            );
        }
    }

    #[test]
    fn the_most_important_role_is_admin_when_present() {
        assert_eq!(most_important_role(["user", "admin"]), "admin");
        assert_eq!(most_important_role(["user"]), "user");
    }
}
