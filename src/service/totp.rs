//! TOTP enrollment: a new secret, its confirmation with backup codes, and
//! turning it off. The code checks themselves are `auth::two_factor`'s.

use crate::auth::two_factor;
use crate::db::{self, Conn};
use crate::domain::clock;
use crate::domain::event::EventType;
use crate::domain::totp::{self, Enrollment};
use crate::error::Error;
use crate::service::events;
use crate::state::AppState;
use crate::store::events as store_events;
use crate::store::users::{self, User};

fn already_enabled() -> Error {
    Error::bad_request(
        "error-totp-already-enabled",
        "TOTP is already enabled; disable it with users.2fa.disableTOTP before enrolling again",
    )
}

/// Starts enrollment: a new secret, stored sealed as pending and shown once.
pub fn enroll(conn: &mut Conn, state: &AppState, user: &User) -> Result<Enrollment, Error> {
    if user.totp_enabled {
        return Err(already_enabled());
    }
    let secret = totp::new_secret();
    let enrollment = totp::enrollment(&secret, &user.username)
        .ok_or_else(|| Error::Internal("could not build the TOTP enrollment".into()))?;
    let sealed = state
        .secrets
        .seal(&secret, &user.guid)
        .map_err(|e| Error::Internal(format!("sealing the TOTP secret: {e}")))?;
    match users::set_pending_totp(conn, user.id, &sealed, clock::now())? {
        true => Ok(enrollment),
        false => Err(already_enabled()),
    }
}

/// Confirms enrollment with a code from the pending secret; returns ten
/// single-use backup codes, stored hashed.
pub fn confirm(
    conn: &mut Conn,
    state: &AppState,
    user: &User,
    code: &str,
) -> Result<Vec<String>, Error> {
    if user.totp_enabled {
        return Err(Error::bad_request(
            "error-totp-already-enabled",
            "TOTP is already enabled",
        ));
    }
    if user.totp_secret.is_none() {
        return Err(Error::bad_request(
            "error-totp-not-started",
            "No TOTP enrollment in progress: call users.2fa.enableTOTP first",
        ));
    }
    let now = clock::now();
    two_factor::check_code(conn, state, user, code, now)?;
    let codes = totp::new_backup_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| totp::backup_code_hash(&user.guid, c))
        .collect();
    db::write_transaction(conn, |conn| -> Result<(), Error> {
        users::enable_totp(conn, user.id, &hashes, now)?;
        let event = events::two_factor(EventType::TwoFactorEnrolled, user, now);
        Ok(store_events::append(conn, &[event])?)
    })?;
    Ok(codes)
}

/// Turns TOTP off; needs a valid code.
pub fn disable(conn: &mut Conn, state: &AppState, user: &User, code: &str) -> Result<(), Error> {
    if !user.totp_enabled {
        return Err(Error::bad_request(
            "error-totp-not-enabled",
            "TOTP is not enabled for this user",
        ));
    }
    let now = clock::now();
    two_factor::check_code(conn, state, user, code, now)?;
    turn_off(conn, user, now)
}

/// Turns a user's TOTP off and records it: after a good code, or by an
/// operator (`sessiond user reset-2fa`).
pub fn turn_off(conn: &mut Conn, user: &User, now: chrono::NaiveDateTime) -> Result<(), Error> {
    db::write_transaction(conn, |conn| -> Result<(), Error> {
        users::disable_totp(conn, user.id, now)?;
        let event = events::two_factor(EventType::TwoFactorDisabled, user, now);
        Ok(store_events::append(conn, &[event])?)
    })
}
