//! The events each change records, built from what the change knows. Each
//! is appended in the transaction of its change (`store::events::append`).

use chrono::NaiveDateTime;

use crate::domain::ended_by::{EndReason, EndedBy};
use crate::domain::event::{Event, EventType};
use crate::service::Surface;
use crate::store::sessions::Session;
use crate::store::users::User;

/// A session began.
pub fn started(session: &Session, user: &User, surface: Surface) -> Event {
    Event::new(EventType::SessionStarted, session.login_at)
        .user(&user.guid)
        .session(&session.session_id)
        .with("username", user.username.as_str())
        .with("surface", surface.label())
        .with("ip", session.ip.as_str())
        .with("device", device(session))
        .with("newDevice", session.new_device)
}

/// The user logged in from a device they had not used within the window.
pub fn new_device(session: &Session, user: &User) -> Event {
    Event::new(EventType::SessionNewDevice, session.login_at)
        .user(&user.guid)
        .session(&session.session_id)
        .with("username", user.username.as_str())
        .with("ip", session.ip.as_str())
        .with("device", device(session))
}

/// A session ended.
pub fn ended(
    session_id: &str,
    user_id: &str,
    by: &EndedBy,
    reason: EndReason,
    surface: Surface,
    at: NaiveDateTime,
) -> Event {
    let mut event = Event::new(EventType::SessionEnded, at)
        .user(user_id)
        .session(session_id)
        .with("reason", reason.label())
        .with("surface", surface.label());
    if let EndedBy::Admin(admin) = by {
        event = event.with("endedBy", admin.as_str());
    }
    event
}

/// A login that did not check out: a wrong password or an unknown name
/// (`user` is `None`, and the name is not recorded: it may be a password
/// typed in the wrong field), or a `resume` token that names no session.
pub fn login_failed(
    user: Option<&User>,
    ip: &str,
    method: &str,
    surface: Surface,
    at: NaiveDateTime,
) -> Event {
    let mut event = Event::new(EventType::LoginFailed, at)
        .with("ip", ip)
        .with("method", method)
        .with("surface", surface.label());
    if let Some(user) = user {
        event = event
            .user(&user.guid)
            .with("username", user.username.as_str());
    }
    event
}

/// A login refused because a failure limit was full.
pub fn login_throttled(limit: &str, ip: &str, surface: Surface, at: NaiveDateTime) -> Event {
    Event::new(EventType::LoginThrottled, at)
        .with("limit", limit)
        .with("ip", ip)
        .with("surface", surface.label())
}

/// A second-factor outcome for `user`: succeeded, failed, locked, enrolled
/// or disabled.
pub fn two_factor(kind: EventType, user: &User, at: NaiveDateTime) -> Event {
    Event::new(kind, at)
        .user(&user.guid)
        .with("username", user.username.as_str())
}

fn device(session: &Session) -> serde_json::Value {
    serde_json::json!({
        "type": session.device_type,
        "name": session.device_name,
        "version": session.device_version,
        "os": session.os_name,
        "osVersion": session.os_version,
    })
}
