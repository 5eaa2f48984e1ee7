//! `deleteSession`: ends the session behind the request's token.

use super::*;
use crate::domain::ended_by::EndedBy;
use crate::service::sessions::{Ender, Target};
use crate::service::Surface;

/// An unknown or ended token is not an error, as in FairCom: the session is
/// gone either way, and the reply warns. The token here is not who asks
/// but what to end, so the params are checked before it.
pub(in crate::api::json_action) async fn perform(
    state: &web::Data<AppState>,
    token: Presented,
    params: &Params<'_>,
) -> Result<Done, ActionError> {
    let checked = params.only(Action::DeleteSession, &[]);
    let app = state.clone();
    state
        .db
        .run(move |conn| {
            let now = clock::now();
            checked?;
            let ended = match token {
                Presented::Token(token) => end(conn, &app, &token, now)?,
                Presented::Nothing | Presented::Unreadable => false,
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
        })
        .await
}

/// Whether an active session ended.
fn end(
    conn: &mut Conn,
    state: &AppState,
    token: &AuthToken,
    now: NaiveDateTime,
) -> Result<bool, ActionError> {
    let hash = token.hash();
    let ender = Ender::new(state, &EndedBy::User, Surface::JsonAction);
    let ended = service::sessions::end(conn, Target::Token(&hash), ender, now);
    Ok(unless_missing(ended)?.is_some())
}
