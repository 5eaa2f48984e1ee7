//! `pingSession`: keeps the calling session alive.

use super::*;

pub(in crate::api::json_action) async fn perform(
    state: &web::Data<AppState>,
    token: Presented,
    arrays: Option<bool>,
    params: &Params<'_>,
) -> Result<Done, ActionError> {
    let checked = params.only(Action::PingSession, &[]);
    match token {
        // Without a token a ping still goes through the store, so it tells
        // a client whether the service can serve it.
        Presented::Nothing => {
            state
                .db
                .run(move |_| checked.map(|()| Done::default()))
                .await
        }
        token => {
            as_caller(state, token, arrays, move |call| {
                checked?;
                extend(call)
            })
            .await
        }
    }
}

/// Records activity whatever the activity interval (the other actions
/// record it at most once an interval): a ping exists to keep a session alive.
fn extend(call: &mut Call<'_>) -> Result<Done, ActionError> {
    let caller = &call.caller;
    if !sessions::extend(call.conn, &caller.session, &call.app.lifetime, call.now)? {
        return Err(ActionError::NoSession);
    }
    Ok(Done::default())
}
