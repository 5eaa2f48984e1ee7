//! The `params` of each action, checked and typed.

use super::*;

/// The longest `description` a session may carry (FairCom: 1 to 65,500 bytes).
pub const MAX_DESCRIPTION_BYTES: usize = 65_500;
/// Entries of `usernameFilter` and `authTokens` a request may carry.
pub(super) const MAX_LIST_ENTRIES: usize = 100;
/// The longest `authToken` FairCom allows.
pub(super) const MAX_TOKEN_BYTES: usize = 255;
/// The longest `api`, `apiVersion` or `defaultApi`.
pub(super) const MAX_NAME_BYTES: usize = 64;
/// What replaces passwords and tokens in `debugInfo.request`.
pub(super) const MASK: &str = "********";

// ---------------------------------------------------------------------------
// Params

/// The `params` of one action, checked property by property.
pub(super) struct Params<'a> {
    pub(super) map: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    /// Refuses properties the action does not take.
    pub(super) fn only(&self, action: Action, allowed: &[&str]) -> Result<(), ActionError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(key) => Err(ActionError::InvalidProperty(if allowed.is_empty() {
                format!(
                    "'{}' is not a property of {}, which takes no params.",
                    shortened(key),
                    action.name()
                )
            } else {
                format!(
                    "'{}' is not a property of {}; its properties are {}.",
                    shortened(key),
                    action.name(),
                    allowed.join(", ")
                )
            })),
        }
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a Value> {
        present(self.map, name)
    }

    pub(super) fn string(
        &self,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<&'a str>, ActionError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match value.as_str() {
            Some(s) if (min..=max).contains(&s.len()) => Ok(Some(s)),
            _ => Err(expected(
                name,
                &format!("a string of {min} to {max} bytes"),
                value,
            )),
        }
    }

    pub(super) fn required_string(
        &self,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<&'a str, ActionError> {
        self.string(name, min, max)?.ok_or_else(|| {
            ActionError::InvalidProperty(format!(
                "'{name}' is required: a string of {min} to {max} bytes."
            ))
        })
    }

    pub(super) fn integer(&self, name: &str, what: &str) -> Result<Option<i64>, ActionError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        value
            .as_i64()
            .map(Some)
            .ok_or_else(|| expected(name, what, value))
    }

    pub(super) fn boolean(&self, name: &str) -> Result<Option<bool>, ActionError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        value
            .as_bool()
            .map(Some)
            .ok_or_else(|| expected(name, "true or false", value))
    }

    /// An array of 0 to `MAX_LIST_ENTRIES` strings of `min` to `max` bytes.
    pub(super) fn strings(
        &self,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<Vec<&'a str>>, ActionError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let what =
            format!("an array of at most {MAX_LIST_ENTRIES} strings of {min} to {max} bytes each");
        let entries = value
            .as_array()
            .filter(|a| a.len() <= MAX_LIST_ENTRIES)
            .ok_or_else(|| expected(name, &what, value))?;
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| match entry.as_str() {
                Some(s) if (min..=max).contains(&s.len()) => Ok(s),
                _ => Err(expected(
                    &format!("{name}[{i}]"),
                    &format!("a string of {min} to {max} bytes"),
                    entry,
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// A session's `default*` settings, kept as JSON in `sessions.api_defaults`.
/// Sessions opened on the other surfaces hold `{}`, which reads as the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SessionDefaults {
    pub(super) api: String,
    pub(super) debug: DebugLevel,
    pub(super) options: ResponseOptions,
}

impl Default for SessionDefaults {
    fn default() -> Self {
        SessionDefaults {
            api: "admin".into(),
            debug: DebugLevel::None,
            options: ResponseOptions::default(),
        }
    }
}

impl SessionDefaults {
    /// Reads the stored JSON; anything unreadable falls back to the defaults.
    pub(super) fn from_stored(text: &str) -> Self {
        let mut defaults = SessionDefaults::default();
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
            return defaults;
        };
        if let Some(api) = map.get("defaultApi").and_then(Value::as_str) {
            defaults.api = api.to_owned();
        }
        if let Some(Ok(debug)) = map
            .get("defaultDebug")
            .map(|v| DebugLevel::parse("defaultDebug", v))
        {
            defaults.debug = debug;
        }
        if let Some(Ok(options)) = map
            .get("defaultResponseOptions")
            .map(|v| ResponseOptions::parse("defaultResponseOptions", v))
        {
            defaults.options = options;
        }
        defaults
    }

    pub(super) fn to_stored(&self) -> String {
        json!({
            "defaultApi": self.api,
            "defaultDebug": self.debug.name(),
            "defaultResponseOptions": self.options.to_json(),
        })
        .to_string()
    }

    /// Overrides from `defaultApi`, `defaultDebug` and `defaultResponseOptions`.
    pub(super) fn apply(&mut self, params: &Params<'_>) -> Result<(), ActionError> {
        if let Some(api) = params.string("defaultApi", 1, MAX_NAME_BYTES)? {
            self.api = api.to_owned();
        }
        if let Some(debug) = params.get("defaultDebug") {
            self.debug = DebugLevel::parse("defaultDebug", debug)?;
        }
        if let Some(options) = params.get("defaultResponseOptions") {
            self.options = ResponseOptions::parse("defaultResponseOptions", options)?;
        }
        Ok(())
    }
}

/// `idleConnectionTimeoutSeconds`: 0 (never idle-expires), or from the
/// activity interval (activity is recorded no more often, so a shorter idle
/// timeout would end busy sessions) up to the maximum session lifetime.
pub(super) fn idle_timeout(
    params: &Params<'_>,
    state: &AppState,
) -> Result<Option<i64>, ActionError> {
    let min = state.settings.activity_interval_seconds.max(1);
    let max = state.settings.max_lifetime_seconds.max(min);
    let what = format!("0 (no idle timeout) or an integer from {min} to {max}");
    let name = "idleConnectionTimeoutSeconds";
    match params.integer(name, &what)? {
        None => Ok(None),
        Some(seconds) if seconds == 0 || (min..=max).contains(&seconds) => Ok(Some(seconds)),
        Some(_) => Err(expected(
            name,
            &what,
            params.get(name).unwrap_or(&Value::Null),
        )),
    }
}

/// The `default*` properties of createSession and alterSession.
pub(super) const DEFAULT_KEYS: [&str; 3] = ["defaultApi", "defaultDebug", "defaultResponseOptions"];
