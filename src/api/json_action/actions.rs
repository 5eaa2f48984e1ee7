//! The six actions: what each does with the store.

use super::*;
use crate::store::sessions::lists;

/// The session making the request, and the token it was found by.
pub(super) struct CallerSession {
    pub(super) session: Session,
    pub(super) user: User,
    pub(super) token: AuthToken,
}

impl CallerSession {
    pub(super) fn may_see_everyone(&self) -> bool {
        has_permission(self.user.role_list(), Permission::ManageSessions)
    }

    /// The caller's own session shows its real token; any other only its hint.
    pub(super) fn shown_token(&self, session: &Session) -> String {
        if session.id == self.session.id {
            self.token.expose().to_owned()
        } else {
            format!("{}…", session.token_hint)
        }
    }
}

/// The full description of a session, in the documented column order.
pub(super) fn description_fields(
    session: &Session,
    username: &str,
    token: String,
) -> Vec<(&'static str, Value)> {
    let defaults = SessionDefaults::from_stored(&session.api_defaults);
    vec![
        ("authToken", json!(token)),
        ("username", json!(username)),
        ("description", json!(session.description)),
        (
            "idleConnectionTimeoutSeconds",
            json!(session.idle_timeout_seconds),
        ),
        ("permanentSession", json!(session.permanent)),
        ("defaultApi", json!(defaults.api)),
        ("defaultDebug", json!(defaults.debug.name())),
        ("defaultResponseOptions", defaults.options.to_json()),
        (
            "sessionStartTimestamp",
            json!(clock::iso_millis(session.login_at)),
        ),
        (
            "sessionLastAccessedTimestamp",
            json!(clock::iso_millis(session.last_activity_at)),
        ),
        (
            "sessionExpirationTimestamp",
            if session.permanent {
                Value::Null
            } else {
                json!(clock::iso_millis(session.expires_at))
            },
        ),
    ]
}

/// A row as an object, or as an array in column order for `dataFormat: "arrays"`.
pub(super) fn row(fields: Vec<(&'static str, Value)>, arrays: bool) -> Value {
    if arrays {
        Value::Array(fields.into_iter().map(|(_, v)| v).collect())
    } else {
        Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

pub(super) fn object(fields: Vec<(&'static str, Value)>) -> Map<String, Value> {
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(super) async fn create_session(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    params: CreateParams,
) -> Result<Done, ActionError> {
    let spec = SessionSpec {
        origin: extract::origin(req, &state.settings.trusted_proxies),
        description: params.description,
        idle_timeout_seconds: params.idle_timeout_seconds,
        permanent: params.permanent,
        api_defaults: params.defaults.to_stored(),
    };
    let attempt = Login {
        name: params.username,
        password: params.password,
        code: params.two_factor_code,
        spec,
    };
    let (token, session, user) = login::login(state, attempt).await?;
    let token = token.expose().to_owned();
    Ok(Done {
        result: object(description_fields(&session, &user.username, token.clone())),
        new_token: Some(token),
        warnings: Vec::new(),
        defaults: Some(params.defaults),
    })
}

pub(super) fn list_sessions(
    conn: &mut Conn,
    caller: &CallerSession,
    username_keys: &[String],
    arrays: bool,
    now: chrono::NaiveDateTime,
) -> Result<Done, ActionError> {
    let owner = (!caller.may_see_everyone()).then_some(caller.user.id);
    let rows = lists::newest(
        conn,
        &lists::Newest {
            owner,
            username_keys,
            active_users_only: true,
            limit: lists::MAX_LISTED,
            ..Default::default()
        },
        now,
    )?;
    let sessions: Vec<Value> = rows
        .iter()
        .map(|(session, username)| {
            row(
                vec![
                    ("username", json!(username)),
                    ("description", json!(session.description)),
                    ("authToken", json!(caller.shown_token(session))),
                ],
                arrays,
            )
        })
        .collect();
    Ok(Done {
        result: object(vec![("sessions", Value::Array(sessions))]),
        ..Done::default()
    })
}

pub(super) fn no_session_warning(property: String) -> Value {
    json!({"code": 12031, "message": NO_SESSION_MESSAGE, "property": property})
}

pub(super) fn describe_sessions(
    conn: &mut Conn,
    caller: &CallerSession,
    tokens: Option<Vec<String>>,
    arrays: bool,
    now: chrono::NaiveDateTime,
) -> Result<Done, ActionError> {
    let mut warnings = Vec::new();
    let mut described: Vec<(Session, String, String)> = Vec::new();
    match tokens {
        None => {
            let own = lists::Newest {
                owner: Some(caller.user.id),
                active_users_only: true,
                limit: lists::MAX_LISTED,
                ..Default::default()
            };
            for (session, username) in lists::newest(conn, &own, now)? {
                let shown = caller.shown_token(&session);
                described.push((session, username, shown));
            }
        }
        Some(tokens) => {
            for (i, raw) in tokens.into_iter().enumerate() {
                let found = match AuthToken::parse(&raw) {
                    Some(token) => {
                        match service::sessions::describe(conn, Target::Token(&token.hash()), now) {
                            Ok(found) => Some(found),
                            Err(Error::NotFound(_)) => None,
                            Err(other) => return Err(other.into()),
                        }
                    }
                    None => None,
                };
                let Some((session, owner)) = found else {
                    warnings.push(no_session_warning(format!("authTokens[{i}]")));
                    continue;
                };
                if owner.id != caller.user.id && !caller.may_see_everyone() {
                    return Err(ActionError::NotPermitted(
                        "only an administrator may describe another account's sessions",
                    ));
                }
                if described.iter().all(|(s, _, _)| s.id != session.id) {
                    // The caller sent this token, so showing it reveals nothing.
                    described.push((session, owner.username, raw));
                }
            }
        }
    }
    let sessions: Vec<Value> = described
        .into_iter()
        .map(|(session, username, token)| {
            row(description_fields(&session, &username, token), arrays)
        })
        .collect();
    Ok(Done {
        result: object(vec![("sessions", Value::Array(sessions))]),
        warnings,
        ..Done::default()
    })
}

pub(super) fn alter_session(
    conn: &mut Conn,
    app: &AppState,
    caller: &CallerSession,
    params: AlterParams,
    now: chrono::NaiveDateTime,
) -> Result<Done, ActionError> {
    let mut defaults = SessionDefaults::from_stored(&caller.session.api_defaults);
    defaults.apply(&Params {
        map: &params.defaults,
    })?;
    let mut changes = params.changes;
    changes.api_defaults = Some(defaults.to_stored());
    let session = sessions::alter(conn, &caller.session, changes, &app.lifetime, now)?
        .ok_or(ActionError::NoSession)?;
    Ok(Done {
        result: object(description_fields(
            &session,
            &caller.user.username,
            caller.token.expose().to_owned(),
        )),
        defaults: Some(defaults),
        ..Done::default()
    })
}

/// Ends the session behind the token. An unknown or ended token is not an
/// error, as in FairCom: the session is gone either way.
pub(super) fn delete_session(
    conn: &mut Conn,
    token: Option<AuthToken>,
    now: chrono::NaiveDateTime,
) -> Result<Done, ActionError> {
    let ended = match token {
        Some(token) => {
            let target = Target::Token(&token.hash());
            match service::sessions::end(conn, target, &EndedBy::User, now) {
                Ok(_) => true,
                Err(Error::NotFound(_)) => false,
                Err(other) => return Err(other.into()),
            }
        }
        None => false,
    };
    let warnings = if ended {
        Vec::new()
    } else {
        vec![no_session_warning("authToken".into())]
    };
    Ok(Done {
        warnings,
        ..Done::default()
    })
}
