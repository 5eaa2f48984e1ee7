//! The actions' results as they go on the wire. Each struct's field order is
//! its column order, for objects and for `dataFormat: "arrays"` alike.

use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};

use super::*;

/// A session in full, as createSession, alterSession and describeSessions
/// show it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SessionDescription {
    pub(super) auth_token: String,
    pub(super) username: String,
    pub(super) description: String,
    pub(super) idle_connection_timeout_seconds: i64,
    pub(super) permanent_session: bool,
    pub(super) default_api: String,
    pub(super) default_debug: &'static str,
    pub(super) default_response_options: Value,
    pub(super) session_start_timestamp: String,
    pub(super) session_last_accessed_timestamp: String,
    /// Null for a permanent session.
    pub(super) session_expiration_timestamp: Option<String>,
}

impl SessionDescription {
    /// `token` is what the reader may see: the real token or only its hint.
    pub(super) fn new(session: &Session, username: &str, token: String) -> Self {
        let defaults = SessionDefaults::from_stored(&session.api_defaults);
        SessionDescription {
            auth_token: token,
            username: username.to_owned(),
            description: session.description.clone(),
            idle_connection_timeout_seconds: session.idle_timeout_seconds,
            permanent_session: session.permanent,
            default_api: defaults.api,
            default_debug: defaults.debug.name(),
            default_response_options: defaults.options.to_json(),
            session_start_timestamp: clock::iso_millis(session.login_at),
            session_last_accessed_timestamp: clock::iso_millis(session.last_activity_at),
            session_expiration_timestamp: (!session.permanent)
                .then(|| clock::iso_millis(session.expires_at)),
        }
    }
}

/// One row of listSessions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListedSessionRow {
    pub(super) username: String,
    pub(super) description: String,
    pub(super) auth_token: String,
}

/// The result of listSessions and describeSessions.
#[derive(Debug, Serialize)]
pub(super) struct SessionsResult<T> {
    pub(super) sessions: Rows<T>,
}

/// Rows as objects, or as arrays of their values in field order when the
/// response options ask for `dataFormat: "arrays"`.
#[derive(Debug)]
pub(super) struct Rows<T> {
    pub(super) rows: Vec<T>,
    pub(super) arrays: bool,
}

impl<T: Serialize> Serialize for Rows<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !self.arrays {
            return self.rows.serialize(serializer);
        }
        let mut seq = serializer.serialize_seq(Some(self.rows.len()))?;
        for row in &self.rows {
            let values: Vec<Value> = fields(row)
                .map_err(S::Error::custom)?
                .into_iter()
                .map(|(_, value)| value)
                .collect();
            seq.serialize_element(&values)?;
        }
        seq.end()
    }
}

/// A struct's fields as JSON, in declaration order (serde_json keeps the
/// order with `preserve_order`).
pub(super) fn fields<T: Serialize>(value: &T) -> Result<Map<String, Value>, serde_json::Error> {
    match serde_json::to_value(value)? {
        Value::Object(fields) => Ok(fields),
        other => Err(serde_json::Error::custom(format!(
            "expected a struct, got {}",
            kind_of(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    /// The columns as the README documents them.
    const DOCUMENTED: [&str; 11] = [
        "authToken",
        "username",
        "description",
        "idleConnectionTimeoutSeconds",
        "permanentSession",
        "defaultApi",
        "defaultDebug",
        "defaultResponseOptions",
        "sessionStartTimestamp",
        "sessionLastAccessedTimestamp",
        "sessionExpirationTimestamp",
    ];

    fn described(permanent: bool) -> SessionDescription {
        let day = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
        let at = |hour| clock::iso_millis(day.and_hms_opt(hour, 0, 0).unwrap());
        SessionDescription {
            auth_token: "t…".into(),
            username: "alice".into(),
            description: "laptop".into(),
            idle_connection_timeout_seconds: 900,
            permanent_session: permanent,
            default_api: "admin".into(),
            default_debug: "none",
            default_response_options: json!({"dataFormat": "arrays"}),
            session_start_timestamp: at(8),
            session_last_accessed_timestamp: at(9),
            session_expiration_timestamp: (!permanent).then(|| at(10)),
        }
    }

    #[test]
    fn a_description_writes_its_keys_in_the_documented_column_order() {
        let keys: Vec<String> = fields(&described(false)).unwrap().keys().cloned().collect();
        assert_eq!(keys, DOCUMENTED);
    }

    #[test]
    fn the_arrays_form_holds_the_values_in_the_documented_column_order() {
        for permanent in [false, true] {
            let object = serde_json::to_value(described(permanent)).unwrap();
            let in_order: Vec<Value> = DOCUMENTED.iter().map(|k| object[*k].clone()).collect();
            let rows = Rows {
                rows: vec![described(permanent)],
                arrays: true,
            };
            assert_eq!(
                serde_json::to_value(rows).unwrap(),
                json!([in_order]),
                "permanent: {permanent}"
            );
        }
    }

    #[test]
    fn a_permanent_session_shows_a_null_expiration() {
        let object = serde_json::to_value(described(true)).unwrap();
        assert_eq!(object["sessionExpirationTimestamp"], Value::Null);
        assert_eq!(object["permanentSession"], json!(true));
    }

    #[test]
    fn listed_rows_keep_their_column_order_in_both_forms() {
        let result = |arrays| SessionsResult {
            sessions: Rows {
                rows: vec![ListedSessionRow {
                    username: "alice".into(),
                    description: "laptop".into(),
                    auth_token: "t…".into(),
                }],
                arrays,
            },
        };
        assert_eq!(
            serde_json::to_string(&result(false)).unwrap(),
            r#"{"sessions":[{"username":"alice","description":"laptop","authToken":"t…"}]}"#
        );
        assert_eq!(
            serde_json::to_string(&result(true)).unwrap(),
            r#"{"sessions":[["alice","laptop","t…"]]}"#
        );
    }
}
