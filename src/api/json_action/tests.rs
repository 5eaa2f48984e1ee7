//! The envelope's rules, unit by unit: error codes, action names,
//! masking, number formats and stored defaults.

use super::*;

fn envelope_for(error: Error) -> Value {
    let mut reply = Reply::failure(ActionError::from(error));
    reply.request_id = json!("r1");
    reply.into_json()
}

#[test]
fn store_outages_and_internal_errors_get_their_codes_without_the_cause() {
    assert_eq!(
        envelope_for(Error::Unavailable("connection refused".into())),
        json!({"result": {}, "requestId": "r1", "errorCode": 34090,
               "errorMessage": "The session store is temporarily unavailable; retry the request."})
    );
    let internal = envelope_for(Error::Internal("secret detail".into()));
    assert_eq!(
        internal,
        json!({"result": {}, "requestId": "r1", "errorCode": 34099,
               "errorMessage": "Internal error; the cause is in the service's log."})
    );
    assert!(!internal.to_string().contains("secret detail"));
    let lost = envelope_for(Error::from(DbError::Unavailable("pool timeout".into())));
    assert_eq!(lost["errorCode"], 34090);
}

#[test]
fn shared_errors_map_to_this_surfaces_codes() {
    let cases = [
        (Error::Unauthorized, 12031),
        (Error::LoginFailed, 34010),
        (
            Error::Throttled {
                retry_after_seconds: 3,
            },
            34011,
        ),
        (
            Error::TwoFactor(TwoFactorError::MaxAttempts {
                retry_after_seconds: 3,
            }),
            34011,
        ),
        (
            Error::TwoFactor(TwoFactorError::Required { enrolled: true }),
            34012,
        ),
        (Error::TwoFactor(TwoFactorError::Invalid), 34013),
        (Error::Forbidden, 34020),
        (Error::InvalidParams("x".into()), 34005),
        (Error::PayloadTooLarge { limit: 1 }, 34006),
    ];
    for (error, code) in cases {
        let name = format!("{error:?}");
        assert_eq!(ActionError::from(error).code(), code, "{name}");
    }
}

#[test]
fn action_names_ignore_case_and_unknown_names_are_refused() {
    assert_eq!(Action::parse("CREATESESSION"), Some(Action::CreateSession));
    assert_eq!(Action::parse("pingsession"), Some(Action::PingSession));
    assert_eq!(Action::parse("createSessions"), None);
    assert_eq!(Action::parse(""), None);
}

#[test]
fn masking_reaches_every_depth() {
    let request = json!({"authToken": "t", "params": {"password": "p", "authTokens": ["a", "b"],
                         "nested": [{"twoFactorCode": "123456"}], "username": "alice"}});
    assert_eq!(
        masked(&request),
        json!({"authToken": MASK, "params": {"password": MASK, "authTokens": [MASK, MASK],
               "nested": [{"twoFactorCode": MASK}], "username": "alice"}})
    );
}

#[test]
fn numbers_become_strings_at_any_depth() {
    let mut value = json!({"a": 1, "b": [2.5, {"c": -3}], "d": "4", "e": true});
    numbers_to_strings(&mut value);
    assert_eq!(
        value,
        json!({"a": "1", "b": ["2.5", {"c": "-3"}], "d": "4", "e": true})
    );
}

#[test]
fn stored_defaults_round_trip_and_unreadable_ones_fall_back() {
    let defaults = SessionDefaults {
        api: "db".into(),
        debug: DebugLevel::Max,
        options: ResponseOptions {
            arrays: Some(true),
            omit: Some(vec!["debugInfo"]),
            ..ResponseOptions::default()
        },
    };
    assert_eq!(
        SessionDefaults::from_stored(&defaults.to_stored()),
        defaults
    );
    assert_eq!(
        SessionDefaults::from_stored("{}"),
        SessionDefaults::default()
    );
    assert_eq!(
        SessionDefaults::from_stored("not json"),
        SessionDefaults::default()
    );
}
