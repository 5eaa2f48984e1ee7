//! What the service knows about the database's health: whether new
//! connections can be opened, and why not. It is the circuit breaker that
//! lets requests fail at once while the database is down, and the one place
//! that logs an outage: once when it starts (or its cause changes), once
//! when it ends, never once per request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A repeated cause is logged again at most this often while it lasts.
const RELOG_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Health {
    /// Mirrors `outage.is_some()`, so the hot path checks without locking.
    down: AtomicBool,
    outage: Mutex<Option<Outage>>,
    /// When "the database did not answer" was last logged.
    slow_logged: Mutex<Option<Instant>>,
}

#[derive(Debug)]
struct Outage {
    cause: String,
    since: Instant,
    logged: Instant,
}

impl Health {
    /// The reason new connections fail, while they do.
    pub fn outage(&self) -> Option<String> {
        if !self.down.load(Ordering::Acquire) {
            return None;
        }
        self.lock().as_ref().map(|outage| outage.cause.clone())
    }

    /// Opening a connection failed.
    pub fn connect_failed(&self, cause: &str) {
        let mut outage = self.lock();
        let now = Instant::now();
        match outage.as_mut() {
            Some(current) if current.cause == cause && current.logged.elapsed() < RELOG_AFTER => {}
            Some(current) => {
                tracing::error!(cause, "the database is still unreachable");
                current.cause = cause.to_owned();
                current.logged = now;
            }
            None => {
                tracing::error!(
                    cause,
                    "the database is unreachable; requests get 503 until it is back"
                );
                *outage = Some(Outage {
                    cause: cause.to_owned(),
                    since: now,
                    logged: now,
                });
                self.down.store(true, Ordering::Release);
            }
        }
    }

    /// A connection opened, or a statement was answered: the database is up.
    pub fn answered(&self) {
        if !self.down.load(Ordering::Acquire) {
            return;
        }
        let mut outage = self.lock();
        if let Some(ended) = outage.take() {
            tracing::info!(
                down_for_seconds = ended.since.elapsed().as_secs_f64(),
                "the database is reachable again"
            );
        }
        self.down.store(false, Ordering::Release);
    }

    /// A request gave up waiting on a statement (a frozen or overloaded
    /// database). Logged at most once a minute; each request still gets its 503.
    pub fn unresponsive(&self, waited: Duration) {
        let Ok(mut logged) = self.slow_logged.lock() else {
            return;
        };
        if logged.is_some_and(|at| at.elapsed() < RELOG_AFTER) {
            return;
        }
        *logged = Some(Instant::now());
        tracing::warn!(
            waited_ms = waited.as_millis() as u64,
            "the database did not answer in time; requests get 503 (logged once a minute while it lasts)"
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Outage>> {
        // A panic while holding this lock cannot leave the state invalid.
        self.outage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// libpq's messages span lines ("connection refused\n\tIs the server
/// running…"); logs and answers carry them on one.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_lasts_from_the_failed_connect_to_the_next_answer() {
        let health = Health::default();
        assert_eq!(health.outage(), None);
        health.connect_failed("connection refused");
        assert_eq!(health.outage().as_deref(), Some("connection refused"));
        health.connect_failed("timeout expired");
        assert_eq!(health.outage().as_deref(), Some("timeout expired"));
        health.answered();
        assert_eq!(health.outage(), None);
    }

    #[test]
    fn multi_line_messages_become_one_line() {
        let libpq = "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n";
        assert_eq!(
            one_line(libpq),
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused; Is the server running on that host and accepting TCP/IP connections?"
        );
    }
}
