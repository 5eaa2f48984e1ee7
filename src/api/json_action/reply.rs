//! The reply envelope, as the response options shape it.

use serde::Serialize;

use super::*;

// ---------------------------------------------------------------------------
// The reply

/// What an action produced, before the response options shape it.
#[derive(Default)]
pub(super) struct Done {
    pub(super) result: Map<String, Value>,
    /// The token to return at the top level, when it differs from the request's.
    pub(super) new_token: Option<String>,
    pub(super) warnings: Vec<Value>,
    /// The calling session's defaults, when there is a calling session.
    pub(super) defaults: Option<SessionDefaults>,
}

impl Done {
    /// A typed result, written as JSON now so that the response options
    /// (`numberFormat`, `omit`) can shape it.
    pub(super) fn with<T: Serialize>(result: &T) -> Result<Done, ActionError> {
        Ok(Done {
            result: fields(result)?,
            ..Done::default()
        })
    }
}

pub(super) struct Reply {
    pub(super) request_id: Value,
    pub(super) auth_token: Option<String>,
    pub(super) outcome: Result<Done, ActionError>,
    pub(super) debug: DebugLevel,
    pub(super) options: ResponseOptions,
    /// The request, masked, for `debug: "max"`.
    pub(super) request: Option<Value>,
}

impl Reply {
    pub(super) fn failure(error: ActionError) -> Self {
        Reply {
            request_id: Value::Null,
            auth_token: None,
            outcome: Err(error),
            debug: DebugLevel::None,
            options: ResponseOptions::default(),
            request: None,
        }
    }

    pub(super) fn into_json(self) -> Value {
        let (mut result, error, warnings, new_token) = match self.outcome {
            Ok(done) => (
                Value::Object(done.result),
                None,
                done.warnings,
                done.new_token,
            ),
            Err(error) => (json!({}), Some(error), Vec::new(), None),
        };
        if self.options.numbers_as_strings == Some(true) {
            numbers_to_strings(&mut result);
        }
        let mut reply = Map::new();
        reply.insert("result".into(), result);
        reply.insert("requestId".into(), self.request_id);
        reply.insert(
            "errorCode".into(),
            json!(error.as_ref().map_or(0, ActionError::code)),
        );
        reply.insert(
            "errorMessage".into(),
            json!(error
                .as_ref()
                .map_or_else(String::new, ActionError::message)),
        );
        if let Some(token) = new_token.or(self.auth_token) {
            reply.insert("authToken".into(), json!(token));
        }
        let request = (self.debug == DebugLevel::Max)
            .then_some(self.request)
            .flatten();
        if let Some(debug_info) = debug_info(request, warnings) {
            reply.insert("debugInfo".into(), debug_info);
        }
        for name in self.options.omit.iter().flatten() {
            reply.remove(*name);
        }
        Value::Object(reply)
    }
}

/// The masked request (for `debug: "max"`) and the warnings, if any.
fn debug_info(request: Option<Value>, warnings: Vec<Value>) -> Option<Value> {
    let mut debug_info = Map::new();
    if let Some(request) = request {
        debug_info.insert("request".into(), request);
    }
    if !warnings.is_empty() {
        debug_info.insert("warnings".into(), Value::Array(warnings));
    }
    (!debug_info.is_empty()).then_some(Value::Object(debug_info))
}

/// `numberFormat: "string"`: every number, at any depth, written as a string.
pub(super) fn numbers_to_strings(value: &mut Value) {
    match value {
        Value::Number(n) => *value = Value::String(n.to_string()),
        Value::Array(items) => items.iter_mut().for_each(numbers_to_strings),
        Value::Object(map) => map.values_mut().for_each(numbers_to_strings),
        _ => {}
    }
}

/// The request as `debugInfo.request` shows it: passwords, tokens and
/// two-factor codes replaced, at any depth.
pub(super) fn masked(value: &Value) -> Value {
    const SECRET_KEYS: [&str; 5] = [
        "password",
        "authToken",
        "authTokens",
        "twoFactorCode",
        "code",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let secret = SECRET_KEYS.iter().any(|s| s.eq_ignore_ascii_case(key));
                    let shown = match (secret, value) {
                        (true, Value::Array(items)) => {
                            Value::Array(items.iter().map(|_| json!(MASK)).collect())
                        }
                        (true, Value::Null) => Value::Null,
                        (true, _) => json!(MASK),
                        (false, other) => masked(other),
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}
