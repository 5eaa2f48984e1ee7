//! `listSessions`: the caller's active sessions, or everyone's for an
//! account that may manage sessions; newest first.

use super::*;
use crate::store::sessions::lists;

pub(in crate::api::json_action) async fn perform(
    state: &web::Data<AppState>,
    token: Presented,
    arrays: Option<bool>,
    params: &Params<'_>,
) -> Result<Done, ActionError> {
    let username_keys = parse(params);
    as_caller(state, token, arrays, move |call| {
        list(call, &username_keys?)
    })
    .await
}

/// The lookup keys of the `usernameFilter` names.
fn parse(params: &Params<'_>) -> Result<Vec<String>, ActionError> {
    params.only(Action::ListSessions, &["usernameFilter"])?;
    let names = params.strings("usernameFilter", 1, 64)?.unwrap_or_default();
    Ok(names.into_iter().map(username::lookup_key).collect())
}

fn list(call: &mut Call<'_>, username_keys: &[String]) -> Result<Done, ActionError> {
    call.touch()?;
    let caller = &call.caller;
    let owner = (!caller.may_see_everyone()).then_some(caller.user.id);
    let newest = lists::Newest {
        owner,
        username_keys,
        active_users_only: true,
        limit: lists::MAX_LISTED,
        ..Default::default()
    };
    let rows = lists::newest(call.conn, &newest, call.now)?
        .iter()
        .map(|(session, username)| ListedSessionRow {
            username: username.clone(),
            description: session.description.clone(),
            auth_token: caller.shown_token(session),
        })
        .collect();
    Done::with(&SessionsResult {
        sessions: Rows {
            rows,
            arrays: call.arrays,
        },
    })
}
