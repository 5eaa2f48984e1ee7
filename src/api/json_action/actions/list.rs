//! `listSessions`: the caller's active sessions, or everyone's for an
//! account that may manage sessions; newest first.

use super::*;
use crate::store::sessions::{fused, lists};

pub(in crate::api::json_action) async fn perform(
    state: &web::Data<AppState>,
    token: Presented,
    arrays: Option<bool>,
    params: &Params<'_>,
) -> Result<Done, ActionError> {
    let username_keys = parse(params);
    let keys = username_keys.as_ref().ok().cloned();
    let fused = move |fused: Fused<'_>| match keys {
        Some(keys) => own_list(fused, &keys),
        None => Ok(None),
    };
    as_caller_fused(state, token, arrays, fused, move |call| {
        list(call, &username_keys?)
    })
    .await
}

/// The caller's own list in the statement that checks their token, for a
/// caller who may not see everyone's; `None` otherwise, or when nothing
/// was found.
fn own_list(
    (conn, app, token, arrays, now): Fused<'_>,
    username_keys: &[String],
) -> Result<Option<Done>, ActionError> {
    let Some(found) = fused::own_newest(
        conn,
        &token.hash(),
        Permission::ManageSessions,
        username_keys,
        lists::MAX_LISTED,
        now,
    )?
    else {
        return Ok(None);
    };
    sessions::touch(conn, &found.caller, &app.lifetime, now)?;
    let defaults = SessionDefaults::from_stored(&found.api_defaults);
    let own_id = found.caller.id;
    let rows = found
        .rows
        .into_iter()
        .map(|(id, description, hint, username)| ListedSessionRow {
            username,
            description,
            auth_token: shown_token(token, own_id, id, &hint),
        })
        .collect();
    let mut done = Done::with(&SessionsResult {
        sessions: Rows {
            rows,
            arrays: arrays.or(defaults.options.arrays).unwrap_or(false),
        },
    })?;
    done.defaults = Some(defaults);
    Ok(Some(done))
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
