//! Logging in, shared by every surface that opens sessions: throttled
//! password checks and the creation of the session row.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use chrono::NaiveDateTime;

use crate::app::AppState;
use crate::db::{Conn, DbResult};
use crate::domain::device::Device;
use crate::domain::token::{new_session_id, AuthToken};
use crate::domain::{clock, password, username};
use crate::error::Error;
use crate::store::failures::{self, Limit, Scope};
use crate::store::sessions::{self, NewSession, Session};
use crate::store::users::{self, User};

/// Where a login came from.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip: String,
    pub host: String,
    pub device: Device,
}

impl Origin {
    pub fn of(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Self {
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

/// How a new session should behave.
#[derive(Clone, Debug)]
pub struct SessionSpec {
    pub origin: Origin,
    pub description: String,
    pub idle_timeout_seconds: i64,
    pub permanent: bool,
    pub api_defaults: String,
    /// Set when the login itself passed a second factor.
    pub two_factor_until: Option<NaiveDateTime>,
}

/// Creates the session row; the raw token is returned once and never stored.
pub fn start_session(
    conn: &mut Conn,
    state: &AppState,
    user: &User,
    spec: SessionSpec,
    now: NaiveDateTime,
) -> DbResult<(AuthToken, Session)> {
    let token = AuthToken::generate();
    let session_id = new_session_id();
    let device = spec.origin.device;
    let search_term = device.search_term(&session_id, &user.guid);
    let new = NewSession {
        session_id,
        user_id: user.id,
        token_hash: token.hash().as_str().to_owned(),
        token_hint: token.hint(),
        description: spec.description,
        device_type: device.kind,
        device_name: device.name,
        device_version: device.version,
        device_long_version: device.long_version,
        os_name: device.os_name,
        os_version: device.os_version,
        device_category: device.category,
        ip: spec.origin.ip,
        host: spec.origin.host,
        instance_id: state.instance_id.clone(),
        login_at: now,
        last_activity_at: now,
        expires_at: state
            .lifetime
            .expiry(spec.permanent, now, now, spec.idle_timeout_seconds),
        idle_timeout_seconds: spec.idle_timeout_seconds,
        permanent: spec.permanent,
        two_factor_until: spec.two_factor_until,
        search_term,
        api_defaults: spec.api_defaults,
        updated_at: now,
    };
    let session = sessions::insert(conn, &new)?;
    Ok((token, session))
}

/// Opens a session for a user whose password checked out. A user with TOTP
/// must pass `code` too (a TOTP or backup code); a good one also authorizes
/// the new session for the 2FA window. Every surface that logs in uses this.
pub fn open_session(
    conn: &mut Conn,
    state: &AppState,
    user: &User,
    code: Option<&str>,
    mut spec: SessionSpec,
    now: NaiveDateTime,
) -> Result<(AuthToken, Session), Error> {
    if user.totp_enabled {
        let code = code.ok_or(Error::TwoFactor(crate::error::TwoFactorError::Required {
            enrolled: true,
        }))?;
        crate::auth::two_factor::check_code(
            conn,
            &state.secrets,
            state.two_factor_limits,
            user,
            code,
            now,
        )?;
        spec.two_factor_until = Some(clock::plus_seconds(
            now,
            state.settings.two_factor_window_seconds,
        ));
    }
    Ok(start_session(conn, state, user, spec, now)?)
}

/// Checks a username and password, with failures counted per username and
/// per IP in the store. Each attempt is charged as a failure before its
/// password is hashed, atomically with the check of the count, so parallel
/// attempts cannot exceed the limit; a correct password gives the charge
/// back. An unknown user costs the same argon2 work and gets the same answer
/// as a wrong password.
pub async fn verify_credentials(
    state: &web::Data<AppState>,
    username: &str,
    password: &str,
    ip: &str,
) -> Result<User, Error> {
    let user_key = username::lookup_key(username);
    let settings = state.settings.clone();
    let (key, ip_owned) = (user_key.clone(), ip.to_owned());
    let (user, reservation) = state
        .db
        .run(move |conn| -> Result<_, Error> {
            let now = clock::now();
            let window = settings.login_failure_window_seconds;
            let limits = [
                Limit {
                    scope: Scope::LoginUser,
                    key: &key,
                    max: settings.login_max_failures_per_user,
                },
                Limit {
                    scope: Scope::LoginIp,
                    key: &ip_owned,
                    max: settings.login_max_failures_per_ip,
                },
            ];
            let reservation =
                failures::reserve(conn, &limits, clock::plus_seconds(now, -window), now)?.map_err(
                    |refused| Error::Throttled {
                        retry_after_seconds: retry_after(refused.oldest, window, now),
                    },
                )?;
            let user = users::find_by_username_key(conn, &key)?.filter(|u| u.active);
            Ok((user, reservation))
        })
        .await?;

    let candidate = password.to_owned();
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let checked = state
        .hashing
        .run(move || password::verify(&candidate, stored.as_deref()))
        .await;
    let verified = match checked {
        Ok(verified) => verified,
        Err(error) => {
            // Nothing was checked: the attempt does not count.
            let reservation = reservation.clone();
            let released = state
                .db
                .run(move |conn| failures::release(conn, &reservation))
                .await;
            if let Err(release_error) = released {
                tracing::warn!(error = %release_error, "could not give back an unchecked login attempt");
            }
            return Err(error);
        }
    };
    match user {
        Some(user) if verified => {
            state
                .db
                .run(move |conn| -> Result<(), Error> {
                    failures::release(conn, &reservation)?;
                    failures::clear(conn, Scope::LoginUser, &user_key)?;
                    Ok(())
                })
                .await?;
            Ok(user)
        }
        _ => Err(Error::LoginFailed),
    }
}

/// Seconds until the oldest counted failure leaves the window (at least 1).
pub fn retry_after(oldest: Option<NaiveDateTime>, window_seconds: i64, now: NaiveDateTime) -> i64 {
    let reopens = clock::plus_seconds(oldest.unwrap_or(now), window_seconds);
    (clock::unix_seconds(reopens) - clock::unix_seconds(now)).max(1)
}
