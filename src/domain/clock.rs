//! Time as the store keeps it: UTC, truncated to milliseconds, so both
//! backends hold and compare exactly the same values.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, SubsecRound, Utc};

/// Now, in UTC, to the millisecond.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(3)
}

/// The expiry of sessions that never expire.
pub fn far_future() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .unwrap_or(NaiveDateTime::MAX)
}

/// `t + seconds`, saturating at the far future instead of overflowing.
pub fn plus_seconds(t: NaiveDateTime, seconds: i64) -> NaiveDateTime {
    Duration::try_seconds(seconds)
        .and_then(|d| t.checked_add_signed(d))
        .map_or_else(far_future, |sum| sum.min(far_future()))
}

/// `2023-05-23T16:33:45.202Z`, as the Rocket.Chat surface writes dates.
pub fn iso_millis(t: NaiveDateTime) -> String {
    // Written field by field: every row of every list carries one, and
    // chrono's `format` parses its pattern on each call.
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let mut out = String::with_capacity(24);
    let millis = t.and_utc().timestamp_subsec_millis().min(999);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        millis
    );
    out
}

/// `2020-09-21T10:42:50Z`, as the admin surface writes dates.
pub fn iso_seconds(t: NaiveDateTime) -> String {
    t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(t: NaiveDateTime) -> i64 {
    DateTime::<Utc>::from_naive_utc_and_offset(t, Utc).timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_has_no_sub_millisecond_part() {
        assert_eq!(now().and_utc().timestamp_subsec_nanos() % 1_000_000, 0);
    }

    #[test]
    fn formats_match_the_published_examples() {
        let t = NaiveDate::from_ymd_opt(2023, 5, 23)
            .unwrap()
            .and_hms_milli_opt(16, 33, 45, 202)
            .unwrap();
        assert_eq!(iso_millis(t), "2023-05-23T16:33:45.202Z");
        assert_eq!(iso_seconds(t), "2023-05-23T16:33:45Z");
    }

    #[test]
    fn iso_millis_pads_every_field_as_chrono_would() {
        for (y, mo, d, h, mi, sec, ms) in [
            (2023, 1, 2, 3, 4, 5, 0),
            (1999, 12, 31, 23, 59, 59, 999),
            (2024, 2, 29, 0, 0, 0, 7),
            (9999, 12, 31, 23, 59, 59, 50),
        ] {
            let t = NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_milli_opt(h, mi, sec, ms)
                .unwrap();
            let chrono = t.and_utc().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(iso_millis(t), chrono);
        }
    }

    #[test]
    fn adding_huge_durations_saturates() {
        assert_eq!(plus_seconds(now(), i64::MAX), far_future());
        assert!(plus_seconds(now(), 10) > now());
    }
}
