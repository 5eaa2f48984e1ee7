//! The two-factor guard: checks a TOTP or backup code with every rule the
//! contract sets. State lives in the store, so replay and lockout hold
//! across instances.

use chrono::NaiveDateTime;

use super::Caller;
use crate::db::{self, Conn};
use crate::domain::clock;
use crate::domain::event::EventType;
use crate::domain::secret_box::SecretBox;
use crate::domain::totp::{self, TwoFactorCode};
use crate::error::{Error, TwoFactorError};
use crate::service::events::two_factor as two_factor_event;
use crate::state::AppState;
use crate::store::backup_codes;
use crate::store::events;
use crate::store::failures::{self, Limit, Scope};
use crate::store::sessions;
use crate::store::users::{self, User};

pub const CODE_HEADER: &str = "x-2fa-code";

/// Checks `raw_code` for `user` against their sealed secret (the enabled
/// one, or the pending one during enrollment) and the backup codes.
/// Wrong codes count towards the lockout; a good one clears the count.
pub fn check_code(
    conn: &mut Conn,
    state: &AppState,
    user: &User,
    raw_code: &str,
    now: NaiveDateTime,
) -> Result<(), Error> {
    let (secrets, limits) = (&state.secrets, state.two_factor_limits);
    // Charged before the code is checked, atomically with the count, so
    // parallel guesses cannot exceed the limit; a good code clears it.
    let since = clock::plus_seconds(now, -limits.window_seconds);
    let limit = Limit {
        scope: Scope::TwoFactor,
        key: &user.guid,
        max: limits.max_failures,
    };
    if let Err(refused) = failures::reserve(conn, &[limit], since, now)? {
        events::append(
            conn,
            &[two_factor_event(EventType::TwoFactorLocked, user, now)],
        )?;
        state.metrics.throttled(refused.scope.label());
        state.metrics.two_factor_check("locked");
        return Err(Error::TwoFactor(TwoFactorError::MaxAttempts {
            retry_after_seconds: refused.retry_after(limits.window_seconds, now),
        }));
    }

    // The code is used up (its TOTP step, or the backup code), the count
    // cleared and the event written in one transaction.
    let accepted = db::write_transaction(conn, |conn| -> Result<bool, Error> {
        let accepted = use_code(conn, secrets, user, raw_code, now)?;
        if accepted {
            failures::clear(conn, Scope::TwoFactor, &user.guid)?;
        }
        let kind = match accepted {
            true => EventType::TwoFactorSucceeded,
            false => EventType::TwoFactorFailed,
        };
        events::append(conn, &[two_factor_event(kind, user, now)])?;
        Ok(accepted)
    })?;
    if accepted {
        state.metrics.two_factor_check("success");
        Ok(())
    } else {
        state.metrics.two_factor_check("invalid");
        // The charge taken above stays as this failure.
        Err(Error::TwoFactor(TwoFactorError::Invalid))
    }
}

/// Uses up `raw_code` if it is good: a TOTP code's time step (so it cannot
/// be used again) or the backup code itself. False for a wrong code.
fn use_code(
    conn: &mut Conn,
    secrets: &SecretBox,
    user: &User,
    raw_code: &str,
    now: NaiveDateTime,
) -> Result<bool, Error> {
    Ok(match TwoFactorCode::parse(raw_code) {
        Some(TwoFactorCode::Totp(code)) => {
            let secret = user
                .totp_secret
                .as_deref()
                .and_then(|sealed| secrets.open(sealed, &user.guid))
                .ok_or_else(|| {
                    Error::Internal("TOTP secret cannot be decrypted with this key".into())
                })?;
            match totp::matching_step(&secret, &code, clock::unix_seconds(now)) {
                Some(step) => users::accept_totp_step(conn, user.id, step)?,
                None => false,
            }
        }
        Some(TwoFactorCode::Backup(code)) => {
            let hash = totp::backup_code_hash(&user.guid, &code);
            backup_codes::use_backup_code(conn, user.id, &hash, now)?
        }
        None => false,
    })
}

/// The guard for 2FA routes, inside the route's store call, after
/// authentication, permission and parameter checks. `code` is the
/// `x-2fa-code` header. A session that passed recently is let through for
/// the configured window ("remember for"); a good code starts that window.
pub fn require(
    conn: &mut Conn,
    state: &AppState,
    caller: &Caller,
    code: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), Error> {
    if caller
        .session
        .two_factor_until
        .is_some_and(|until| until > now)
    {
        return Ok(());
    }
    if !caller.user.totp_enabled {
        return Err(Error::TwoFactor(TwoFactorError::Required {
            enrolled: false,
        }));
    }
    let code = code
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(Error::TwoFactor(TwoFactorError::Required {
            enrolled: true,
        }))?;
    check_code(conn, state, &caller.user, code, now)?;
    let window = state.settings.two_factor_window_seconds;
    sessions::set_two_factor_until(conn, caller.session.id, clock::plus_seconds(now, window))?;
    Ok(())
}
