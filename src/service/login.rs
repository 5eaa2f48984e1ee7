//! Logging in, for every surface that opens sessions: the login rules, the
//! throttled password check, the second factor and the new session.

use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::db::Conn;
use crate::domain::password::{self, MAX_PASSWORD_BYTES};
use crate::domain::token::AuthToken;
use crate::domain::{clock, username};
use crate::error::{Error, TwoFactorError};
use crate::service::events;
use crate::service::sessions::{self, SessionSpec};
use crate::service::Surface;
use crate::state::AppState;
use crate::store::events as store_events;
use crate::store::failures::{self, Limit, Refused, Reservation, Scope};
use crate::store::sessions::Session;
use crate::store::users::{self, User};

/// The longest login name, in characters (as JSON Schema counts them).
pub const MAX_NAME_CHARS: usize = 64;

/// What is wrong with a login name or password, for each surface to word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleBroken {
    NameLength,
    NameControlCharacter,
    PasswordLength,
}

/// The rules a login's name and password must meet before any work is done.
pub fn check_rules(name: &str, password: &str) -> Result<(), RuleBroken> {
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(RuleBroken::NameLength);
    }
    if name.chars().any(char::is_control) {
        return Err(RuleBroken::NameControlCharacter);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(RuleBroken::PasswordLength);
    }
    Ok(())
}

/// One login attempt.
pub struct Login {
    pub name: String,
    pub password: String,
    /// A TOTP or backup code, for a user with TOTP.
    pub code: Option<String>,
    pub spec: SessionSpec,
}

/// Checks the password and opens a session: two store calls around the
/// password hash, which runs on the hashing pool. Failures are counted per
/// username and per IP in the store; each attempt is charged before its
/// password is hashed, atomically with the check of the count, so parallel
/// attempts cannot exceed the limit, and a correct password gives the
/// charge back. An unknown user costs the same argon2 work and gets the
/// same answer as a wrong password.
pub async fn login(
    state: &Arc<AppState>,
    login: Login,
) -> Result<(AuthToken, Session, User), Error> {
    let surface = login.spec.surface;
    let outcome = password_login(state, login).await;
    state.metrics.login(surface, "password", &outcome);
    outcome
}

async fn password_login(
    state: &Arc<AppState>,
    login: Login,
) -> Result<(AuthToken, Session, User), Error> {
    let Login {
        name,
        password,
        code,
        spec,
    } = login;
    let key = username::lookup_key(&name);
    let (user, reservation) = {
        let (app, key, ip) = (Arc::clone(state), key.clone(), spec.origin.ip.clone());
        let surface = spec.surface;
        state
            .db
            .run(move |conn| charge(conn, &app, &key, &ip, surface, clock::now()))
            .await?
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let checked = state
        .hashing
        .run(move || password::verify(&password, stored.as_deref()))
        .await;
    let verified = match checked {
        Ok(verified) => verified,
        Err(error) => {
            // Nothing was checked: the attempt does not count.
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
    let user = match user {
        Some(user) if verified => user,
        user => {
            // The charge stays as this failure; the event says whose.
            let (ip, surface) = (spec.origin.ip.clone(), spec.surface);
            let event = events::login_failed(user.as_ref(), &ip, "password", surface, clock::now());
            state
                .db
                .run(move |conn| store_events::append(conn, &[event]))
                .await?;
            return Err(Error::LoginFailed);
        }
    };
    if user.totp_enabled && code.is_none() {
        // The password was right: its charge is given back, the user cleared.
        let key = key.clone();
        state
            .db
            .run(move |conn| give_back(conn, &reservation, &key))
            .await?;
        return Err(Error::TwoFactor(TwoFactorError::Required {
            enrolled: true,
        }));
    }
    let app = Arc::clone(state);
    state
        .db
        .run(move |conn| {
            give_back(conn, &reservation, &key)?;
            let (token, session) =
                sessions::open(conn, &app, &user, code.as_deref(), spec, clock::now())?;
            Ok((token, session, user))
        })
        .await
}

/// Charges one attempt against the user's and the IP's limits, and finds
/// the user (an inactive one is not found).
fn charge(
    conn: &mut Conn,
    state: &AppState,
    key: &str,
    ip: &str,
    surface: Surface,
    now: NaiveDateTime,
) -> Result<(Option<User>, Reservation), Error> {
    let settings = &state.settings;
    let window = settings.login_failure_window_seconds;
    let limits = [
        Limit {
            scope: Scope::LoginUser,
            key,
            max: settings.login_max_failures_per_user,
        },
        Limit {
            scope: Scope::LoginIp,
            key: ip,
            max: settings.login_max_failures_per_ip,
        },
    ];
    let reservation =
        match failures::reserve(conn, &limits, clock::plus_seconds(now, -window), now)? {
            Ok(reservation) => reservation,
            Err(refused) => return Err(throttled(conn, state, refused, ip, surface, now)?),
        };
    let user = users::find_by_username_key(conn, key)?.filter(|u| u.active);
    Ok((user, reservation))
}

/// A login refused by a full limit: recorded as an event, counted by the
/// limit that was full, and answered with when to retry.
fn throttled(
    conn: &mut Conn,
    state: &AppState,
    refused: Refused,
    ip: &str,
    surface: Surface,
    now: NaiveDateTime,
) -> Result<Error, Error> {
    let limit = refused.scope.label();
    store_events::append(conn, &[events::login_throttled(limit, ip, surface, now)])?;
    state.metrics.throttled(limit);
    Ok(Error::Throttled {
        retry_after_seconds: refused.retry_after(state.settings.login_failure_window_seconds, now),
    })
}

/// A correct password: its charge is given back and the user's count cleared.
fn give_back(conn: &mut Conn, reservation: &Reservation, key: &str) -> Result<(), Error> {
    failures::release(conn, reservation)?;
    failures::clear(conn, Scope::LoginUser, key)?;
    Ok(())
}

/// Resumes the active session behind `token` (Rocket.Chat's `resume`
/// login): the same session and token, no new one, and no second factor
/// asked again, as the session passed its own at login. A token that names
/// no active session is a failed login, charged against the client IP's
/// limit like a wrong password; one that does gives the charge back and
/// marks the session active.
pub async fn resume(
    state: &Arc<AppState>,
    token: String,
    ip: String,
) -> Result<(AuthToken, User), Error> {
    let outcome = resume_session(state, token, ip).await;
    state
        .metrics
        .login(crate::service::Surface::RocketChat, "resume", &outcome);
    outcome
}

async fn resume_session(
    state: &Arc<AppState>,
    token: String,
    ip: String,
) -> Result<(AuthToken, User), Error> {
    let app = Arc::clone(state);
    state
        .db
        .run(move |conn| {
            let now = clock::now();
            let settings = &app.settings;
            let window = settings.login_failure_window_seconds;
            let limit = Limit {
                scope: Scope::LoginIp,
                key: &ip,
                max: settings.login_max_failures_per_ip,
            };
            let surface = Surface::RocketChat;
            let reservation =
                match failures::reserve(conn, &[limit], clock::plus_seconds(now, -window), now)? {
                    Ok(reservation) => reservation,
                    Err(refused) => return Err(throttled(conn, &app, refused, &ip, surface, now)?),
                };
            let found = match AuthToken::parse(&token) {
                Some(token) => {
                    crate::store::sessions::find_active_by_token(conn, &token.hash(), now)?
                        .map(|found| (token, found))
                }
                None => None,
            };
            let Some((token, (session, user))) = found else {
                let event = events::login_failed(None, &ip, "resume", surface, now);
                store_events::append(conn, &[event])?;
                return Err(Error::LoginFailed);
            };
            failures::release(conn, &reservation)?;
            crate::store::sessions::touch(conn, &(&session).into(), &app.lifetime, now)?;
            Ok((token, user))
        })
        .await
}
