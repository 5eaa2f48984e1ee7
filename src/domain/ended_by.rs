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
}

impl EndedBy {
    /// The stored form: `user`, `admin:<guid>`, `cli` or `expired`.
    pub fn stored(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EndedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndedBy::User => f.write_str("user"),
            EndedBy::Admin(guid) => write!(f, "admin:{guid}"),
            EndedBy::Cli => f.write_str("cli"),
            EndedBy::Expired => f.write_str("expired"),
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
