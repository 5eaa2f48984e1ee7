//! Who ended a session, as stored in `sessions.logout_by`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndedBy {
    /// The session's own user (logout, logout.me, logout.others, deleteSession).
    User,
    /// An administrator, by guid (logout, revoke, revoke-user).
    Admin(String),
    /// An operator at the command line.
    Cli,
    /// The sweep, once the session expired.
    Expired,
    /// A newer login of the same user, past the per-user session limit.
    Evicted,
}

impl EndedBy {
    /// The stored form: `user`, `admin:<guid>`, `cli` or `expired`.
    pub fn stored(&self) -> String {
        self.to_string()
    }
}

/// Why sessions ended: who ended them, and whether one or all of a user's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The user ended one of their sessions.
    Logout,
    /// The user ended all their other sessions.
    LogoutOthers,
    /// An administrator ended one session.
    AdminRevoke,
    /// An administrator ended every session of a user.
    AdminRevokeUser,
    /// An operator at the command line.
    Cli,
    /// The session's time ran out.
    Expired,
    /// A newer login past the per-user session limit ended it.
    Evicted,
}

impl EndReason {
    /// The reason for ending one session (`all` false) or every session of
    /// a user but perhaps one (`all` true).
    pub fn of(by: &EndedBy, all: bool) -> Self {
        match (by, all) {
            (EndedBy::User, false) => EndReason::Logout,
            (EndedBy::User, true) => EndReason::LogoutOthers,
            (EndedBy::Admin(_), false) => EndReason::AdminRevoke,
            (EndedBy::Admin(_), true) => EndReason::AdminRevokeUser,
            (EndedBy::Cli, _) => EndReason::Cli,
            (EndedBy::Expired, _) => EndReason::Expired,
            (EndedBy::Evicted, _) => EndReason::Evicted,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::LogoutOthers => "logout_others",
            EndReason::AdminRevoke => "admin_revoke",
            EndReason::AdminRevokeUser => "admin_revoke_user",
            EndReason::Cli => "cli",
            EndReason::Expired => "expired",
            EndReason::Evicted => "evicted",
        }
    }
}

impl fmt::Display for EndedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndedBy::User => f.write_str("user"),
            EndedBy::Admin(guid) => write!(f, "admin:{guid}"),
            EndedBy::Cli => f.write_str("cli"),
            EndedBy::Expired => f.write_str("expired"),
            EndedBy::Evicted => f.write_str("evicted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_forms_are_stable() {
        assert_eq!(EndedBy::User.stored(), "user");
        assert_eq!(EndedBy::Admin("g-1".into()).stored(), "admin:g-1");
        assert_eq!(EndedBy::Cli.stored(), "cli");
        assert_eq!(EndedBy::Expired.stored(), "expired");
    }
}
