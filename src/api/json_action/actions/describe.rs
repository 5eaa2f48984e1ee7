//! `describeSessions`: sessions in full, the caller's own or those behind
//! the given tokens (another account's only for one that may manage sessions).

use super::*;
use crate::service::sessions::Target;
use crate::store::sessions::lists;

pub(in crate::api::json_action) async fn perform(
    state: &web::Data<AppState>,
    token: Presented,
    arrays: Option<bool>,
    params: &Params<'_>,
) -> Result<Done, ActionError> {
    let tokens = parse(params);
    as_caller(state, token, arrays, move |call| describe(call, tokens?)).await
}

/// `authTokens`, when given.
fn parse(params: &Params<'_>) -> Result<Option<Vec<String>>, ActionError> {
    params.only(Action::DescribeSessions, &["authTokens"])?;
    let tokens = params.strings("authTokens", 1, MAX_TOKEN_BYTES)?;
    Ok(tokens.map(|t| t.into_iter().map(str::to_owned).collect()))
}

fn describe(call: &mut Call<'_>, tokens: Option<Vec<String>>) -> Result<Done, ActionError> {
    call.touch()?;
    let (rows, warnings) = match tokens {
        None => (own(call)?, Vec::new()),
        Some(tokens) => named(call, tokens)?,
    };
    Ok(Done {
        warnings,
        ..Done::with(&SessionsResult {
            sessions: Rows {
                rows,
                arrays: call.arrays,
            },
        })?
    })
}

/// The caller's active sessions, newest first.
fn own(call: &mut Call<'_>) -> Result<Vec<SessionDescription>, ActionError> {
    let own = lists::Newest {
        owner: Some(call.caller.user.id),
        active_users_only: true,
        limit: lists::MAX_LISTED,
        ..Default::default()
    };
    Ok(lists::newest(call.conn, &own, call.now)?
        .iter()
        .map(|(session, username)| {
            SessionDescription::new(session, username, call.caller.shown_token(session))
        })
        .collect())
}

/// The sessions behind `tokens`, each once, in the order given; a token
/// that names no active session is a warning, not an error.
fn named(
    call: &mut Call<'_>,
    tokens: Vec<String>,
) -> Result<(Vec<SessionDescription>, Vec<Value>), ActionError> {
    let mut seen = Vec::new();
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for (i, raw) in tokens.into_iter().enumerate() {
        let Some((session, owner)) = active_by_token(call, &raw)? else {
            warnings.push(no_session_warning(format!("authTokens[{i}]")));
            continue;
        };
        if owner.id != call.caller.user.id && !call.caller.may_see_everyone() {
            return Err(ActionError::NotPermitted(
                "only an administrator may describe another account's sessions",
            ));
        }
        if !seen.contains(&session.id) {
            seen.push(session.id);
            // The caller sent this token, so showing it reveals nothing.
            rows.push(SessionDescription::new(&session, &owner.username, raw));
        }
    }
    Ok((rows, warnings))
}

fn active_by_token(call: &mut Call<'_>, raw: &str) -> Result<Option<(Session, User)>, ActionError> {
    let Some(token) = AuthToken::parse(raw) else {
        return Ok(None);
    };
    let hash = token.hash();
    unless_missing(service::sessions::describe(
        call.conn,
        Target::Token(&hash),
        call.now,
    ))
}
