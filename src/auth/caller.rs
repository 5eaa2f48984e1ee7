//! The `Caller` extractor: `X-User-Id` + `X-Auth-Token` → the user and the
//! session making the request. Every request reads the store, so a session
//! ended anywhere is refused on the very next request, on every instance.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};

use super::permissions::{self, Permission};
use crate::domain::clock;
use crate::domain::token::AuthToken;
use crate::error::Error;
use crate::startup::AppState;
use crate::store::sessions::{self, Session};
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

impl FromRequest for Caller {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let credentials = credentials(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| Error::Internal("application state missing".into()))?;
            let (user_guid, token) = credentials.ok_or(Error::Unauthorized)?;
            let token_hash = token.hash();
            let lifetime = state.lifetime;
            state
                .db
                .run(move |conn| {
                    let now = clock::now();
                    let (session, user) =
                        sessions::authenticate(conn, &user_guid, &token_hash, now)?
                            .ok_or(Error::Unauthorized)?;
                    sessions::touch(conn, &session, &lifetime, now)?;
                    Ok(Caller { user, session })
                })
                .await
        })
    }
}
