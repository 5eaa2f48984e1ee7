//! The events the service records: what happened to which session or
//! user, never a token, password or code.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

/// Every kind of event, by its name on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    SessionStarted,
    SessionEnded,
    SessionNewDevice,
    LoginFailed,
    LoginThrottled,
    TwoFactorSucceeded,
    TwoFactorFailed,
    TwoFactorLocked,
    TwoFactorEnrolled,
    TwoFactorDisabled,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        EventType::SessionStarted,
        EventType::SessionEnded,
        EventType::SessionNewDevice,
        EventType::LoginFailed,
        EventType::LoginThrottled,
        EventType::TwoFactorSucceeded,
        EventType::TwoFactorFailed,
        EventType::TwoFactorLocked,
        EventType::TwoFactorEnrolled,
        EventType::TwoFactorDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionStarted => "session.started",
            EventType::SessionEnded => "session.ended",
            EventType::SessionNewDevice => "session.new_device",
            EventType::LoginFailed => "login.failed",
            EventType::LoginThrottled => "login.throttled",
            EventType::TwoFactorSucceeded => "two_factor.succeeded",
            EventType::TwoFactorFailed => "two_factor.failed",
            EventType::TwoFactorLocked => "two_factor.locked",
            EventType::TwoFactorEnrolled => "two_factor.enrolled",
            EventType::TwoFactorDisabled => "two_factor.disabled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        EventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// One event to record: its type, when, whose, which session, and its data.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventType,
    pub at: NaiveDateTime,
    /// The user's guid, or empty when there is none (a login for an unknown name).
    pub user_id: String,
    /// The 17-character session id, or empty.
    pub session_id: String,
    /// More about it: a JSON object, merged under `data` with the ids.
    pub data: Map<String, Value>,
}

impl Event {
    pub fn new(kind: EventType, at: NaiveDateTime) -> Self {
        Event {
            kind,
            at,
            user_id: String::new(),
            session_id: String::new(),
            data: Map::new(),
        }
    }

    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = user_id.to_owned();
        self
    }

    pub fn session(mut self, session_id: &str) -> Self {
        self.session_id = session_id.to_owned();
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("session.nope"), None);
    }
}
