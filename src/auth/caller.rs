//! The `Caller` extractor: `X-User-Id` + `X-Auth-Token` → the user and the
//! session making the request. Every request reads the store, so a session
//! ended anywhere is refused on the very next request, on every instance.

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use super::permissions::{self, Permission};
use crate::app::AppState;
use crate::db::Conn;
use crate::domain::clock;
use crate::domain::token::{AuthToken, TokenHash};
use crate::error::Error;
use crate::store::sessions::{self, Lifetime, Session};
use crate::store::users::User;

pub const USER_ID_HEADER: &str = "x-user-id";
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";

#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    pub session: Session,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> Result<(), Error> {
        permissions::require(self.user.role_list(), permission)
    }
}

/// The credentials a request carries, if both headers are present and plausible.
pub fn credentials(req: &HttpRequest) -> Option<(String, AuthToken)> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let user_id = header(USER_ID_HEADER).filter(|v| !v.is_empty() && v.len() <= 64)?;
    let token = AuthToken::parse(header(AUTH_TOKEN_HEADER)?)?;
    Some((user_id.to_owned(), token))
}

/// The credentials of a request, read from its headers without touching
/// the store (a request without both is refused at once). Hot handlers take
/// this instead of [`Caller`] and authenticate inside their own blocking
/// call, so the request makes one trip to the blocking pool and checks out
/// one connection.
pub struct Credentials {
    user_guid: String,
    token_hash: TokenHash,
    lifetime: Lifetime,
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

impl FromRequest for Credentials {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let lifetime = req
            .app_data::<web::Data<AppState>>()
            .map(|state| state.lifetime)
            .ok_or_else(|| Error::Internal("application state missing".into()));
        ready(lifetime.and_then(|lifetime| {
            let (user_guid, token) = credentials(req).ok_or(Error::Unauthorized)?;
            Ok(Credentials {
                user_guid,
                token_hash: token.hash(),
                lifetime,
            })
        }))
    }
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let credentials = Credentials::from_request(req, payload).into_inner();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let credentials = credentials?;
            let state = state.ok_or_else(|| Error::Internal("application state missing".into()))?;
            state
                .db
                .run(move |conn| credentials.authenticate(conn))
                .await
        })
    }
}
