//! The work budget of a filtered list: how each backend stops a filter
//! that costs too much, and how that is told apart from an outage.

use std::cell::Cell;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::{AnyConnection, DbError, DbResult};

/// Runs a filtered list's statements within the filter work budget.
///
/// On Postgres: in a transaction whose statements are each cancelled by the
/// database once they run past the budget, and planned for their values
/// (diesel keeps statements prepared, and after five runs Postgres may
/// switch to a generic plan, which cannot see a regex filter's pattern and
/// so cannot use the trigram indexes). On SQLite the regex function itself
/// watches the clock: past the budget it stops matching, so the statement
/// ends at once, and the run is reported as over budget.
pub fn with_filter_budget<T, F>(conn: &mut AnyConnection, budget: Duration, f: F) -> DbResult<T>
where
    F: FnOnce(&mut AnyConnection) -> DbResult<T>,
{
    let budget_ms = budget.as_millis().clamp(1, u64::MAX as u128) as u64;
    let started = Instant::now();
    let outcome = match conn {
        #[cfg(feature = "postgres")]
        AnyConnection::Postgresql(_) => conn.transaction(|conn| {
            if let AnyConnection::Postgresql(pg) = conn {
                pg.batch_execute(&format!(
                    "SET LOCAL plan_cache_mode = force_custom_plan; \
                     SET LOCAL statement_timeout = {budget_ms}"
                ))?;
            }
            f(conn)
        }),
        AnyConnection::Sqlite(_) => within(budget, || f(conn)),
    };
    match outcome {
        // Over budget; a cancellation for another reason stays a 503. The
        // regex engine words every cancel the same ("operation
        // cancelled"), so there the time taken tells the budget's apart.
        Err(DbError::Cancelled(cause))
            if cause.contains("timeout")
                || cause.contains("budget")
                || (cause.ends_with("operation cancelled") && started.elapsed() >= budget) =>
        {
            // The caller's filter, not the store, was slow: not counted
            // as a statement timeout.
            super::error::statement_timed_out::take();
            Err(DbError::FilterTooExpensive { budget_ms })
        }
        other => other,
    }
}

// The filter budget on SQLite, where the regex is ours: a deadline per
// blocking thread, read by `regex_imatch` on every row.
thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static RAN_OUT: Cell<bool> = const { Cell::new(false) };
}

fn within<T>(budget: Duration, f: impl FnOnce() -> Result<T, DbError>) -> Result<T, DbError> {
    DEADLINE.with(|deadline| deadline.set(Some(Instant::now() + budget)));
    RAN_OUT.with(|ran_out| ran_out.set(false));
    let result = f();
    DEADLINE.with(|deadline| deadline.set(None));
    if RAN_OUT.with(|ran_out| ran_out.replace(false)) {
        return Err(DbError::Cancelled("the filter budget ran out".into()));
    }
    result
}

/// `regex_imatch` for SQLite: no row matches once the budget is spent.
pub(super) fn is_match_within_budget(text: &str, pattern: &str) -> bool {
    let spent = DEADLINE.with(|deadline| deadline.get().is_some_and(|d| Instant::now() >= d));
    if spent {
        RAN_OUT.with(|ran_out| ran_out.set(true));
        return false;
    }
    crate::domain::filter::is_match(text, pattern)
}
