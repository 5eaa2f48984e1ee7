//! `alterSession`: changes the calling session's description, idle timeout,
//! permanence (only ending it) and defaults.

use super::*;
use crate::store::sessions::SessionChanges;

const PROPERTIES: [&str; 6] = [
    "description",
    "idleConnectionTimeoutSeconds",
    "permanentSession",
    "defaultApi",
    "defaultDebug",
    "defaultResponseOptions",
];

struct AlterParams {
    changes: SessionChanges,
    /// The `default*` properties given, applied to the stored defaults
    /// inside the store call.
    defaults: Map<String, Value>,
}

pub(in crate::api::json_action) async fn perform(
    state: &web::Data<AppState>,
    token: Presented,
    arrays: Option<bool>,
    params: &Params<'_>,
) -> Result<Done, ActionError> {
    let parsed = parse(params, state);
    as_caller(state, token, arrays, move |call| alter(call, parsed?)).await
}

/// Checks the properties in a fixed order, so a request with several
/// mistakes always hears of the same one first.
fn parse(params: &Params<'_>, state: &AppState) -> Result<AlterParams, ActionError> {
    if params.map.contains_key("username") {
        return Err(ActionError::InvalidProperty(
            "'username' cannot be changed: a session belongs to the account that created it."
                .into(),
        ));
    }
    params.only(Action::AlterSession, &PROPERTIES)?;
    let end_permanence = end_permanence(params)?;
    // Checked here against a scratch copy; applied to the stored defaults later.
    SessionDefaults::default().apply(params)?;
    let defaults: Map<String, Value> = DEFAULT_KEYS
        .iter()
        .filter_map(|k| params.get(k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    Ok(AlterParams {
        changes: SessionChanges {
            description: params
                .string("description", 0, MAX_DESCRIPTION_BYTES)?
                .map(str::to_owned),
            idle_timeout_seconds: idle_timeout(params, state)?,
            end_permanence,
            api_defaults: None,
        },
        defaults,
    })
}

/// `permanentSession: false` ends a session's permanence; only
/// createSession makes one permanent.
fn end_permanence(params: &Params<'_>) -> Result<bool, ActionError> {
    match params.boolean("permanentSession")? {
        Some(true) => Err(ActionError::InvalidProperty(
            "'permanentSession' cannot be set to true by alterSession: only createSession makes a permanent session."
                .into(),
        )),
        Some(false) => Ok(true),
        None => Ok(false),
    }
}

fn alter(call: &mut Call<'_>, params: AlterParams) -> Result<Done, ActionError> {
    call.touch()?;
    let caller = &call.caller;
    let mut defaults = SessionDefaults::from_stored(&caller.session.api_defaults);
    defaults.apply(&Params {
        map: &params.defaults,
    })?;
    let mut changes = params.changes;
    changes.api_defaults = Some(defaults.to_stored());
    let session = sessions::alter(
        call.conn,
        &caller.session,
        changes,
        &call.app.lifetime,
        call.now,
    )?
    .ok_or(ActionError::NoSession)?;
    let token = caller.token.expose().to_owned();
    let description = SessionDescription::new(&session, &caller.user.username, token);
    Ok(Done {
        defaults: Some(defaults),
        ..Done::with(&description)?
    })
}
