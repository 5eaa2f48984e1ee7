//! Sorting and cursors for session lists. Each type validates at
//! parse time, so a handler holds either a valid value or a 400.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::paging::Paging;
use super::secret_box::SecretBox;

/// What a list may be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    LoginAt,
    DeviceName,
    OsName,
    OsVersion,
    Username,
    Name,
}

impl SortKey {
    const ALL: [SortKey; 6] = [
        SortKey::LoginAt,
        SortKey::DeviceName,
        SortKey::OsName,
        SortKey::OsVersion,
        SortKey::Username,
        SortKey::Name,
    ];

    pub fn wire(self) -> &'static str {
        match self {
            SortKey::LoginAt => "loginAt",
            SortKey::DeviceName => "device.name",
            SortKey::OsName => "device.os.name",
            SortKey::OsVersion => "device.os.version",
            SortKey::Username => "_user.username",
            SortKey::Name => "_user.name",
        }
    }

    /// Keys about the session's user exist only where users are shown.
    fn about_user(self) -> bool {
        matches!(self, SortKey::Username | SortKey::Name)
    }

    /// The keys a list of `scope` may be sorted by, as the wire names them.
    pub fn names(scope: Scope) -> impl Iterator<Item = &'static str> {
        SortKey::ALL
            .into_iter()
            .filter(move |k| scope == Scope::Everyone || !k.about_user())
            .map(SortKey::wire)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// Which list is being sorted: a user's own, or everyone's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Own,
    Everyone,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortError {
    /// Not a JSON object of 1/-1 values: the raw text is echoed back.
    Invalid(String),
    /// A key that this list cannot be sorted by.
    UnknownKeys,
}

/// An ordered list of keys; ties are broken by the session's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sort {
    keys: Vec<(SortKey, Direction)>,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            keys: vec![(SortKey::LoginAt, Direction::Desc)],
        }
    }
}

impl Sort {
    pub fn parse(raw: Option<&str>, scope: Scope) -> Result<Self, SortError> {
        // An empty `sort` is no sort, as in Rocket.Chat.
        let Some(raw) = raw.filter(|raw| !raw.is_empty()) else {
            return Ok(Sort::default());
        };
        let invalid = || SortError::Invalid(raw.to_owned());
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(raw).map_err(|_| invalid())?;
        let mut keys = Vec::with_capacity(object.len());
        for name in object.keys() {
            let key = SortKey::ALL
                .into_iter()
                .find(|k| k.wire() == name && (scope == Scope::Everyone || !k.about_user()))
                .ok_or(SortError::UnknownKeys)?;
            keys.push(key);
        }
        let mut sort = Vec::with_capacity(keys.len());
        for (key, value) in keys.into_iter().zip(object.values()) {
            let direction = match value.as_i64() {
                Some(1) => Direction::Asc,
                Some(-1) => Direction::Desc,
                _ => return Err(invalid()),
            };
            sort.push((key, direction));
        }
        if sort.is_empty() {
            return Ok(Sort::default());
        }
        Ok(Sort { keys: sort })
    }

    pub fn keys(&self) -> &[(SortKey, Direction)] {
        &self.keys
    }

    /// The id tie-break follows the first key, so the default order matches
    /// the `(login_at DESC, id DESC)` index.
    pub fn id_direction(&self) -> Direction {
        self.keys.first().map_or(Direction::Desc, |(_, d)| *d)
    }

    /// A stable text form, to tie a cursor to the sort it was made for.
    pub fn signature(&self) -> String {
        self.keys
            .iter()
            .map(|(k, d)| format!("{}:{}", k.wire(), if *d == Direction::Asc { 1 } else { -1 }))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A sort-key value of the last row on a page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyValue {
    Time(NaiveDateTime),
    Text(String),
}

/// Where the next page starts: the last row's sort values and id. Sealed
/// with the server key, so a cursor that was altered is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort, scope and filter the cursor was made for.
    #[serde(rename = "c")]
    pub context: String,
    #[serde(rename = "v")]
    pub values: Vec<KeyValue>,
    #[serde(rename = "i")]
    pub id: i64,
}

const CURSOR_CONTEXT: &str = "sessiond-cursor";

/// A keyset-paged list request, validated: the page, its order, its
/// filter, and where it starts.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub paging: Paging,
    pub sort: Sort,
    pub filter: Option<super::filter::Filter>,
    pub cursor: Option<Cursor>,
    /// What a cursor for this list, sort and filter must carry.
    pub cursor_context: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CursorError {
    /// Not a cursor this service made, or altered.
    Invalid,
    /// A real cursor, for another sort, list or filter.
    Mismatch,
}

impl Cursor {
    pub fn context_for(scope: Scope, sort: &Sort, filter: Option<&str>) -> String {
        format!("{scope:?}|{}|{}", sort.signature(), filter.unwrap_or(""))
    }

    pub fn seal(&self, secrets: &SecretBox) -> Result<String, String> {
        let json = serde_json::to_vec(self).map_err(|e| format!("encoding a cursor: {e}"))?;
        secrets
            .seal_url_safe(&json, CURSOR_CONTEXT)
            .map_err(|e| format!("sealing a cursor: {e}"))
    }

    /// Opens a cursor and checks it belongs to this list, sort and filter,
    /// and that its values have the types the sort keys need.
    pub fn open(
        raw: &str,
        secrets: &SecretBox,
        context: &str,
        sort: &Sort,
    ) -> Result<Cursor, CursorError> {
        if raw.len() > 4096 {
            return Err(CursorError::Invalid);
        }
        let bytes = secrets
            .open_url_safe(raw, CURSOR_CONTEXT)
            .ok_or(CursorError::Invalid)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| CursorError::Invalid)?;
        if cursor.context != context {
            return Err(CursorError::Mismatch);
        }
        let typed = cursor.values.len() == sort.keys().len()
            && sort
                .keys()
                .iter()
                .zip(&cursor.values)
                .all(|((key, _), value)| {
                    matches!(
                        (key, value),
                        (SortKey::LoginAt, KeyValue::Time(_))
                            | (
                                SortKey::DeviceName
                                    | SortKey::OsName
                                    | SortKey::OsVersion
                                    | SortKey::Username
                                    | SortKey::Name,
                                KeyValue::Text(_)
                            )
                    )
                });
        if !typed {
            return Err(CursorError::Invalid);
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_defaults_to_newest_login_first() {
        assert_eq!(Sort::parse(None, Scope::Own).unwrap(), Sort::default());
        assert_eq!(
            Sort::parse(Some("{}"), Scope::Own).unwrap(),
            Sort::default()
        );
        // `sort=` with no value, as Rocket.Chat reads it.
        assert_eq!(Sort::parse(Some(""), Scope::Own).unwrap(), Sort::default());
        assert_eq!(Sort::default().signature(), "loginAt:-1");
    }

    #[test]
    fn sort_keeps_the_order_of_keys() {
        let sort = Sort::parse(Some(r#"{"device.name": 1, "loginAt": -1}"#), Scope::Own).unwrap();
        assert_eq!(
            sort.keys(),
            &[
                (SortKey::DeviceName, Direction::Asc),
                (SortKey::LoginAt, Direction::Desc)
            ]
        );
        assert_eq!(sort.id_direction(), Direction::Asc);
    }

    #[test]
    fn user_keys_exist_only_on_the_everyone_list() {
        assert_eq!(
            Sort::parse(Some(r#"{"_user.username": 1}"#), Scope::Own),
            Err(SortError::UnknownKeys)
        );
        assert!(Sort::parse(
            Some(r#"{"_user.username": 1, "_user.name": -1}"#),
            Scope::Everyone
        )
        .is_ok());
    }

    #[test]
    fn bad_sorts_are_refused() {
        for raw in [
            "nope",
            "[1]",
            r#"{"loginAt": 2}"#,
            r#"{"loginAt": "1"}"#,
            r#"{"loginAt": 1.0}"#,
        ] {
            assert_eq!(
                Sort::parse(Some(raw), Scope::Own),
                Err(SortError::Invalid(raw.to_owned())),
                "{raw}"
            );
        }
        assert_eq!(
            Sort::parse(Some(r#"{"value": 1}"#), Scope::Own),
            Err(SortError::UnknownKeys)
        );
    }

    fn cursor_fixture() -> (SecretBox, Sort, String, Cursor) {
        let secrets =
            SecretBox::from_base64("c2Vzc2lvbmQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=").unwrap();
        let sort = Sort::parse(Some(r#"{"device.name": 1, "loginAt": -1}"#), Scope::Own).unwrap();
        let context = Cursor::context_for(Scope::Own, &sort, Some("chrome"));
        let cursor = Cursor {
            context: context.clone(),
            values: vec![
                KeyValue::Text("2023-05-23T16:33:45".into()),
                KeyValue::Time(super::super::clock::now()),
            ],
            id: 42,
        };
        (secrets, sort, context, cursor)
    }

    #[test]
    fn a_cursor_round_trips_through_its_url_safe_form() {
        let (secrets, sort, context, cursor) = cursor_fixture();
        let sealed = cursor.seal(&secrets).unwrap();
        assert!(sealed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::open(&sealed, &secrets, &context, &sort), Ok(cursor));
    }

    #[test]
    fn an_altered_cursor_is_invalid() {
        let (secrets, sort, context, cursor) = cursor_fixture();
        let sealed = cursor.seal(&secrets).unwrap();
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 5;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(
            Cursor::open(&altered, &secrets, &context, &sort),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            Cursor::open("garbage!", &secrets, &context, &sort),
            Err(CursorError::Invalid)
        );
    }

    #[test]
    fn a_cursor_for_another_sort_or_filter_is_a_mismatch() {
        let (secrets, sort, _, cursor) = cursor_fixture();
        let sealed = cursor.seal(&secrets).unwrap();
        let other = Cursor::context_for(Scope::Own, &sort, Some("firefox"));
        assert_eq!(
            Cursor::open(&sealed, &secrets, &other, &sort),
            Err(CursorError::Mismatch)
        );
    }
}
