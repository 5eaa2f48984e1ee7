//! The caller: the user and the session behind `X-User-Id` and
//! `X-Auth-Token`. Every request reads the store, so a session ended
//! anywhere is refused on the very next request, on every instance.

use super::permissions::{self, Permission};
use crate::db::Conn;
use crate::domain::clock;
use crate::domain::token::TokenHash;
use crate::error::Error;
use crate::store::sessions::{self, Lifetime, LiveSession};
use crate::store::users::User;

pub const USER_ID_HEADER: &str = "x-user-id";
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";

#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    pub session: LiveSession,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> Result<(), Error> {
        permissions::require(self.user.role_list(), permission)
    }
}

/// The credentials a request carries, read from its headers without
/// touching the store. Handlers authenticate inside their own store call,
/// so a request makes one trip to the blocking pool where it can.
pub struct Credentials {
    pub user_guid: String,
    pub token_hash: TokenHash,
    pub lifetime: Lifetime,
}

impl Credentials {
    /// The caller behind these credentials, or 401; marks the session active.
    pub fn authenticate(&self, conn: &mut Conn) -> Result<Caller, Error> {
        let now = clock::now();
        let (session, user) = sessions::authenticate(conn, &self.user_guid, &self.token_hash, now)?
            .ok_or(Error::Unauthorized)?;
        sessions::touch(conn, &session, &self.lifetime, now)?;
        Ok(Caller { user, session })
    }
}
