//! The request envelope: the action, the debug level and the response options.

use super::*;

// ---------------------------------------------------------------------------
// The envelope

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    CreateSession,
    ListSessions,
    DescribeSessions,
    AlterSession,
    DeleteSession,
    PingSession,
}

impl Action {
    const ALL: [Action; 6] = [
        Action::CreateSession,
        Action::ListSessions,
        Action::DescribeSessions,
        Action::AlterSession,
        Action::DeleteSession,
        Action::PingSession,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Action::CreateSession => "createSession",
            Action::ListSessions => "listSessions",
            Action::DescribeSessions => "describeSessions",
            Action::AlterSession => "alterSession",
            Action::DeleteSession => "deleteSession",
            Action::PingSession => "pingSession",
        }
    }

    /// Action names are case-insensitive, as FairCom's.
    pub(super) fn parse(raw: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(raw))
    }

    pub(super) fn needs_token(self) -> bool {
        !matches!(self, Action::CreateSession | Action::PingSession)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum DebugLevel {
    #[default]
    None,
    Min,
    Max,
}

impl DebugLevel {
    pub(super) fn parse(name: &str, value: &Value) -> Result<Self, ActionError> {
        const WHAT: &str = "\"none\", \"min\" or \"max\"";
        let text = value.as_str().ok_or_else(|| expected(name, WHAT, value))?;
        [
            ("none", DebugLevel::None),
            ("min", DebugLevel::Min),
            ("max", DebugLevel::Max),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(text))
        .map(|(_, level)| level)
        .ok_or_else(|| expected(name, WHAT, value))
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            DebugLevel::None => "none",
            DebugLevel::Min => "min",
            DebugLevel::Max => "max",
        }
    }
}

/// `responseOptions` (and a session's `defaultResponseOptions`): each field
/// `None` when not given, so request options overlay session defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ResponseOptions {
    pub(super) binary_format: Option<&'static str>,
    /// True for `"arrays"`, false for `"objects"`.
    pub(super) arrays: Option<bool>,
    /// True for `"string"`, false for `"number"`.
    pub(super) numbers_as_strings: Option<bool>,
    pub(super) omit: Option<Vec<&'static str>>,
}

/// Top-level reply properties that `omit` may drop. `requestId`,
/// `errorCode` and `errorMessage` always stay: a client must be able to
/// tell what happened to which request.
pub(super) const OMITTABLE: [&str; 3] = ["result", "authToken", "debugInfo"];

pub(super) fn one_of(
    name: &str,
    value: &Value,
    choices: &[&'static str],
) -> Result<&'static str, ActionError> {
    let what = choices
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let what = format!("one of {what}");
    let text = value.as_str().ok_or_else(|| expected(name, &what, value))?;
    choices
        .iter()
        .find(|c| c.eq_ignore_ascii_case(text))
        .copied()
        .ok_or_else(|| expected(name, &what, value))
}

/// `omit`: the top-level properties to drop.
fn omitted(path: &str, value: &Value) -> Result<Vec<&'static str>, ActionError> {
    let what = "an array of \"result\", \"authToken\" or \"debugInfo\"";
    let entries = value
        .as_array()
        .ok_or_else(|| expected(path, what, value))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| one_of(&format!("{path}[{i}]"), entry, &OMITTABLE))
        .collect()
}

impl ResponseOptions {
    pub(super) fn parse(name: &str, value: &Value) -> Result<Self, ActionError> {
        let map = value
            .as_object()
            .ok_or_else(|| expected(name, "an object", value))?;
        let mut options = ResponseOptions::default();
        for (key, value) in map {
            let path = format!("{name}.{}", shortened(key));
            if value.is_null() {
                continue;
            }
            match key.as_str() {
                "binaryFormat" => {
                    options.binary_format =
                        Some(one_of(&path, value, &["base64", "hex", "byteArray"])?);
                }
                "dataFormat" => {
                    options.arrays = Some(one_of(&path, value, &["objects", "arrays"])? == "arrays");
                }
                "numberFormat" => {
                    options.numbers_as_strings =
                        Some(one_of(&path, value, &["number", "string"])? == "string");
                }
                "omit" => options.omit = Some(omitted(&path, value)?),
                _ => {
                    return Err(ActionError::InvalidProperty(format!(
                        "'{path}' is not a response option; the options are binaryFormat, dataFormat, numberFormat and omit."
                    )))
                }
            }
        }
        Ok(options)
    }

    /// `self` with every option `over` sets replaced.
    pub(super) fn overlay(&self, over: &ResponseOptions) -> ResponseOptions {
        ResponseOptions {
            binary_format: over.binary_format.or(self.binary_format),
            arrays: over.arrays.or(self.arrays),
            numbers_as_strings: over.numbers_as_strings.or(self.numbers_as_strings),
            omit: over.omit.clone().or_else(|| self.omit.clone()),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        let mut map = Map::new();
        if let Some(format) = self.binary_format {
            map.insert("binaryFormat".into(), json!(format));
        }
        if let Some(arrays) = self.arrays {
            map.insert(
                "dataFormat".into(),
                json!(if arrays { "arrays" } else { "objects" }),
            );
        }
        if let Some(strings) = self.numbers_as_strings {
            map.insert(
                "numberFormat".into(),
                json!(if strings { "string" } else { "number" }),
            );
        }
        if let Some(omit) = &self.omit {
            map.insert("omit".into(), json!(omit));
        }
        Value::Object(map)
    }
}

/// The envelope's properties, checked.
pub(super) struct Envelope {
    pub(super) action: Action,
    pub(super) params: Map<String, Value>,
    pub(super) auth_token: Option<String>,
    pub(super) debug: Option<DebugLevel>,
    pub(super) options: ResponseOptions,
}

pub(super) const ENVELOPE_PROPERTIES: [&str; 8] = [
    "requestId",
    "api",
    "action",
    "params",
    "apiVersion",
    "debug",
    "authToken",
    "responseOptions",
];

/// A present, non-null property.
pub(super) fn present<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).filter(|v| !v.is_null())
}

impl Envelope {
    pub(super) fn parse(body: &Map<String, Value>) -> Result<Self, ActionError> {
        let action = action_of(body)?;
        check_property_names(body)?;
        let params = match present(body, "params") {
            None => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(other) => return Err(expected("params", "an object", other)),
        };
        let auth_token = match present(body, "authToken") {
            None => None,
            Some(Value::String(token)) => Some(token.clone()),
            Some(other) => return Err(expected("authToken", "a string", other)),
        };
        let debug = present(body, "debug")
            .map(|v| DebugLevel::parse("debug", v))
            .transpose()?;
        let options = present(body, "responseOptions")
            .map(|v| ResponseOptions::parse("responseOptions", v))
            .transpose()?
            .unwrap_or_default();
        Ok(Envelope {
            action,
            params,
            auth_token,
            debug,
            options,
        })
    }
}

/// The action comes first: a request without one hears of that before
/// anything else.
fn action_of(body: &Map<String, Value>) -> Result<Action, ActionError> {
    match present(body, "action") {
        None => Err(ActionError::MissingAction),
        Some(Value::String(name)) => {
            Action::parse(name).ok_or_else(|| ActionError::UnknownAction(name.clone()))
        }
        Some(other) => Err(expected("action", "a string naming an action", other)),
    }
}

/// No unknown properties; `api` and `apiVersion` are short strings.
fn check_property_names(body: &Map<String, Value>) -> Result<(), ActionError> {
    if let Some(key) = body
        .keys()
        .find(|k| !ENVELOPE_PROPERTIES.contains(&k.as_str()))
    {
        return Err(ActionError::InvalidProperty(format!(
            "'{}' is not a property of a request; the properties are {}.",
            shortened(key),
            ENVELOPE_PROPERTIES.join(", ")
        )));
    }
    for name in ["api", "apiVersion"] {
        if let Some(value) = present(body, name) {
            let what = format!("a string of 1 to {MAX_NAME_BYTES} bytes");
            match value.as_str() {
                Some(s) if !s.is_empty() && s.len() <= MAX_NAME_BYTES => {}
                _ => return Err(expected(name, &what, value)),
            }
        }
    }
    Ok(())
}
