//! `pingSession`: with or without a token.

use diesel::prelude::*;
use serde_json::json;
use sessiond::db::schema::sessions;

use super::{api, error, hash, parse_time, token_for, NO_SESSION};
use crate::helpers::{spawn_app, Store};
use crate::on_both_stores;

on_both_stores!(ping_session_needs_no_token_and_extends_a_valid_one,);

async fn ping_session_needs_no_token_and_extends_a_valid_one(store: Store) {
    let app = spawn_app(store).await;
    app.create_user("alice", false);
    let token = token_for(&app, "alice").await;
    // Pretend the session was last used half an hour ago.
    let earlier = sessiond::domain::clock::plus_seconds(sessiond::domain::clock::now(), -1800);
    {
        let mut conn = app.pool.get().unwrap();
        diesel::update(sessions::table.filter(sessions::token_hash.eq(hash(&token))))
            .set((
                sessions::last_activity_at.eq(earlier),
                sessions::expires_at.eq(sessiond::domain::clock::plus_seconds(earlier, 3600)),
            ))
            .execute(&mut *conn)
            .unwrap();
    }

    let anonymous = api(&app, &json!({"action": "pingSession"})).await;
    let ping = api(&app, &json!({"action": "pingSession", "authToken": token})).await;
    let unknown = api(
        &app,
        &json!({"action": "pingSession", "authToken": "a".repeat(43)}),
    )
    .await;

    assert_eq!(
        anonymous,
        json!({"result": {}, "requestId": null, "errorCode": 0, "errorMessage": ""})
    );
    assert_eq!(error(&ping), (0, ""));
    assert_eq!(error(&unknown), (12031, NO_SESSION));
    let described = api(
        &app,
        &json!({"action": "describeSessions", "authToken": token}),
    )
    .await;
    let session = &described["result"]["sessions"][0];
    let accessed = parse_time(&session["sessionLastAccessedTimestamp"]);
    assert!(
        (sessiond::domain::clock::now() - accessed).num_seconds() < 60,
        "the ping recorded activity: {session}"
    );
    let idle = parse_time(&session["sessionExpirationTimestamp"]) - accessed;
    assert_eq!(idle.num_seconds(), 3600, "the expiry moved forward");
}
