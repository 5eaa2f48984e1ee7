//! The six actions, one module each, and what they share: the token a
//! request presents and the session it names.

use super::*;

pub(super) mod alter;
pub(super) mod create;
pub(super) mod delete;
pub(super) mod describe;
pub(super) mod list;
pub(super) mod ping;

/// The envelope's `authToken`, read before anything is looked up.
pub(super) enum Presented {
    Nothing,
    /// Not a token this service could have issued: it names no session.
    Unreadable,
    Token(AuthToken),
}

impl Presented {
    /// Refuses a request without the token its action needs.
    pub(super) fn from_envelope(envelope: &Envelope) -> Result<Self, ActionError> {
        match (&envelope.auth_token, envelope.action.needs_token()) {
            (None, true) => Err(ActionError::InvalidProperty(format!(
                "'authToken' is required by {}; get one from createSession.",
                envelope.action.name()
            ))),
            (None, false) => Ok(Presented::Nothing),
            (Some(raw), _) => {
                Ok(AuthToken::parse(raw).map_or(Presented::Unreadable, Presented::Token))
            }
        }
    }
}

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
        shown_token(
            &self.token,
            self.session.id,
            session.id,
            &session.token_hint,
        )
    }
}

/// The token shown for session `id` to the caller presenting `token` from
/// session `own_id`: the real one for their own session, else the hint.
pub(super) fn shown_token(token: &AuthToken, own_id: i64, id: i64, hint: &str) -> String {
    if id == own_id {
        token.expose().to_owned()
    } else {
        format!("{hint}…")
    }
}

/// An action by an active session, inside its one store call.
pub(super) struct Call<'a> {
    pub(super) conn: &'a mut Conn,
    pub(super) app: &'a AppState,
    pub(super) caller: CallerSession,
    /// `dataFormat: "arrays"`, from the request or else the session's defaults.
    pub(super) arrays: bool,
    pub(super) now: NaiveDateTime,
}

impl Call<'_> {
    /// Records the caller's activity, as every action but pingSession does.
    pub(super) fn touch(&mut self) -> Result<(), ActionError> {
        Ok(sessions::touch(
            self.conn,
            &(&self.caller.session).into(),
            &self.app.lifetime,
            self.now,
        )?)
    }
}

/// Runs `action` for the active session behind `token`, in one store call.
/// The token is checked before `action` looks at its params, so a client
/// with a dead token learns that first.
pub(super) async fn as_caller<F>(
    state: &web::Data<AppState>,
    token: Presented,
    arrays: Option<bool>,
    action: F,
) -> Result<Done, ActionError>
where
    F: FnOnce(&mut Call<'_>) -> Result<Done, ActionError> + Send + 'static,
{
    let app = state.clone();
    state
        .db
        .run(move |conn| as_caller_in(conn, &app, token, arrays, clock::now(), action))
        .await
}

/// What a fused action is given: the store, the app, the presented token,
/// the request's `dataFormat` choice, and the time.
pub(super) type Fused<'a> = (
    &'a mut Conn,
    &'a AppState,
    &'a AuthToken,
    Option<bool>,
    NaiveDateTime,
);

/// [`as_caller`], trying `fused` first in the same store call: it checks
/// the token and does the action in one statement, and answers `None`
/// when it cannot tell, for the ordinary path to answer.
pub(super) async fn as_caller_fused<G, F>(
    state: &web::Data<AppState>,
    token: Presented,
    arrays: Option<bool>,
    fused: G,
    action: F,
) -> Result<Done, ActionError>
where
    G: FnOnce(Fused<'_>) -> Result<Option<Done>, ActionError> + Send + 'static,
    F: FnOnce(&mut Call<'_>) -> Result<Done, ActionError> + Send + 'static,
{
    let app = state.clone();
    state
        .db
        .run(move |conn| {
            let now = clock::now();
            if let Presented::Token(presented) = &token {
                if let Some(done) = fused((conn, &app, presented, arrays, now))? {
                    return Ok(done);
                }
            }
            as_caller_in(conn, &app, token, arrays, now, action)
        })
        .await
}

fn as_caller_in<F>(
    conn: &mut Conn,
    app: &AppState,
    token: Presented,
    arrays: Option<bool>,
    now: NaiveDateTime,
    action: F,
) -> Result<Done, ActionError>
where
    F: FnOnce(&mut Call<'_>) -> Result<Done, ActionError>,
{
    let Presented::Token(token) = token else {
        return Err(ActionError::NoSession);
    };
    let (session, user) =
        sessions::find_active_by_token(conn, &token.hash(), now)?.ok_or(ActionError::NoSession)?;
    let defaults = SessionDefaults::from_stored(&session.api_defaults);
    let mut call = Call {
        conn,
        app,
        arrays: arrays.or(defaults.options.arrays).unwrap_or(false),
        caller: CallerSession {
            session,
            user,
            token,
        },
        now,
    };
    let mut done = action(&mut call)?;
    // The session's defaults shape the reply unless the action changed them.
    done.defaults.get_or_insert(defaults);
    Ok(done)
}

/// The warning for a token, among several, that names no active session.
pub(super) fn no_session_warning(property: String) -> Value {
    json!({"code": ActionError::NoSession.code(), "message": NO_SESSION_MESSAGE, "property": property})
}
