//! What handlers take from a request before the store is reached: the
//! credentials, the second-factor header, and where a login came from; and
//! [`Guard`], which authorizes a caller inside the route's one store call.

use std::future::{ready, Future, Ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};

use crate::api::admin::error::{self as admin, is_admin_path};
use crate::api::rocket_chat::error::{self as shared, RocketChatError};
use crate::auth::caller::{AUTH_TOKEN_HEADER, USER_ID_HEADER};
use crate::auth::{two_factor, Caller, Credentials, Permission};
use crate::db::Conn;
use crate::domain::clock;
use crate::domain::device::Device;
use crate::domain::token::AuthToken;
use crate::error::Error;
use crate::service::sessions::Origin;
use crate::state::AppState;

/// The credentials a request carries, if both headers are present and plausible.
pub fn credentials(req: &HttpRequest) -> Option<(String, AuthToken)> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let user_id = header(USER_ID_HEADER).filter(|v| !v.is_empty() && v.len() <= 64)?;
    let token = AuthToken::parse(header(AUTH_TOKEN_HEADER)?)?;
    Some((user_id.to_owned(), token))
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, Error> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| Error::Internal("application state missing".into()))
}

fn read_credentials(req: &HttpRequest) -> Result<Credentials, Error> {
    let lifetime = state(req)?.lifetime;
    let (user_guid, token) = credentials(req).ok_or(Error::Unauthorized)?;
    Ok(Credentials {
        user_guid,
        token_hash: token.hash(),
        lifetime,
    })
}

/// A request without both headers is refused at once, before the store.
impl FromRequest for Credentials {
    type Error = RocketChatError;
    type Future = Ready<Result<Self, RocketChatError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(read_credentials(req).map_err(RocketChatError))
    }
}

/// The caller, authenticated in a store call of its own. Routes that do
/// more store work take a [`Guard`] instead.
impl FromRequest for Caller {
    type Error = RocketChatError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, RocketChatError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let found = read_credentials(req).and_then(|c| Ok((c, state(req)?)));
        Box::pin(async move {
            let (credentials, state) = found?;
            Ok(state
                .db
                .run(move |conn| credentials.authenticate(conn))
                .await?)
        })
    }
}

/// What a route asks of its caller beyond being logged in.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub permission: Option<Permission>,
    /// The second factor, from `x-2fa-code` or a recent pass.
    pub two_factor: bool,
}

impl Access {
    /// Any logged-in user.
    pub const USER: Access = Access {
        permission: None,
        two_factor: false,
    };

    /// A permission and the second factor.
    pub const fn admin(permission: Permission) -> Access {
        Access {
            permission: Some(permission),
            two_factor: true,
        }
    }
}

/// A request refused before its handler ran, answered in the format of the
/// surface it was sent to: the admin API's own body on `/api/admin/*`,
/// the shared one elsewhere.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Refused {
    error: Error,
    admin: bool,
}

impl Refused {
    fn of(req: &HttpRequest, error: Error) -> Self {
        Refused {
            error,
            admin: is_admin_path(req.path()),
        }
    }
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        shared::status(&self.error)
    }

    fn error_response(&self) -> HttpResponse {
        if self.admin {
            admin::response(&self.error)
        } else {
            shared::response(&self.error)
        }
    }
}

/// A request's credentials and second-factor header: all a route needs to
/// authorize its caller inside its own store call.
pub struct Guard {
    credentials: Credentials,
    code: Option<String>,
}

impl FromRequest for Guard {
    type Error = Refused;
    type Future = Ready<Result<Self, Refused>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let code = req
            .headers()
            .get(two_factor::CODE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        ready(
            read_credentials(req)
                .map(|credentials| Guard { credentials, code })
                .map_err(|error| Refused::of(req, error)),
        )
    }
}

impl Guard {
    /// Authorizes in the order the contract gives: authentication (401),
    /// permission (403), the route's parameters (400, parsed before and
    /// reported here), the second factor (400).
    fn authorize_in<P>(
        self,
        conn: &mut Conn,
        state: &AppState,
        access: Access,
        params: Result<P, Error>,
    ) -> Result<(Caller, P), Error> {
        let caller = self.credentials.authenticate(conn)?;
        if let Some(permission) = access.permission {
            caller.require(permission)?;
        }
        let params = params?;
        if access.two_factor {
            two_factor::require(conn, state, &caller, self.code.as_deref(), clock::now())?;
        }
        Ok((caller, params))
    }

    /// Authorizes, then runs `op`, in one store call.
    pub async fn run<P, T, F>(
        self,
        state: &Arc<AppState>,
        access: Access,
        params: Result<P, Error>,
        op: F,
    ) -> Result<T, Error>
    where
        P: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut Conn, &AppState, Caller, P) -> Result<T, Error> + Send + 'static,
    {
        let app = Arc::clone(state);
        state
            .db
            .run(move |conn| {
                let (caller, params) = self.authorize_in(conn, &app, access, params)?;
                op(conn, &app, caller, params)
            })
            .await
    }

    /// [`Guard::run`], trying `fused` first: it authenticates, checks
    /// `access` and does the work in one statement, and answers `None` when
    /// it cannot tell, for the ordinary path to answer in the same store
    /// call.
    pub async fn run_fused<P, T, G, F>(
        self,
        state: &Arc<AppState>,
        access: Access,
        params: Result<P, Error>,
        fused: G,
        op: F,
    ) -> Result<T, Error>
    where
        P: Send + 'static,
        T: Send + 'static,
        G: FnOnce(&mut Conn, &AppState, &Credentials, &P) -> Result<Option<T>, Error>
            + Send
            + 'static,
        F: FnOnce(&mut Conn, &AppState, Caller, P) -> Result<T, Error> + Send + 'static,
    {
        let app = Arc::clone(state);
        state
            .db
            .run(move |conn| {
                if let Ok(params) = &params {
                    if let Some(done) = fused(conn, &app, &self.credentials, params)? {
                        return Ok(done);
                    }
                }
                let (caller, params) = self.authorize_in(conn, &app, access, params)?;
                op(conn, &app, caller, params)
            })
            .await
    }

    /// Only authorizes: for routes whose work must wait for a bulkhead slot,
    /// which is granted per caller.
    pub async fn authorize<P: Send + 'static>(
        self,
        state: &Arc<AppState>,
        access: Access,
        params: Result<P, Error>,
    ) -> Result<(Caller, P), Error> {
        let app = Arc::clone(state);
        state
            .db
            .run(move |conn| self.authorize_in(conn, &app, access, params))
            .await
    }
}

impl Guard {
    /// Authorizes in one store call, then runs `op` in a second while
    /// holding one of the caller's bulkhead slots for expensive lists. The
    /// slot moves into the store work, so it is not given back while a
    /// statement still runs for a caller who got 503.
    pub async fn run_expensive<P, T, F>(
        self,
        state: &Arc<AppState>,
        access: Access,
        params: Result<P, Error>,
        op: F,
    ) -> Result<T, Error>
    where
        P: Send + 'static,
        T: Send + 'static,
        F: FnOnce(&mut Conn, &AppState, Caller, P) -> Result<T, Error> + Send + 'static,
    {
        let (caller, params) = self.authorize(state, access, params).await?;
        let slot = state.bulkhead.enter(caller.user.id).await?;
        let app = Arc::clone(state);
        state
            .db
            .run(move |conn| {
                let _slot = slot;
                op(conn, &app, caller, params)
            })
            .await
    }
}

/// Where a login came from: the client's address, `Host` and `User-Agent`.
pub fn origin(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Origin {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let host: String = header(header::HOST).chars().take(255).collect();
    Origin {
        ip: client_ip(req, trusted_proxies),
        host,
        device: Device::from_user_agent(header(header::USER_AGENT)),
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in
/// which case the nearest untrusted address in `X-Forwarded-For`.
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return String::new();
    };
    if !trusted_proxies.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted_proxies.contains(&ip) => continue,
            Ok(ip) => return ip.to_string(),
            // A malformed hop: nothing left of it can be trusted.
            Err(_) => break,
        }
    }
    peer.to_string()
}
