//! Delivery: one task per endpoint, and one that watches the event log's
//! newest id so that an idle endpoint costs nothing but that one read.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDateTime;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::config::Settings;
use crate::db::{DbError, DbPool};
use crate::domain::clock;
use crate::store::events::{self, StoredEvent};
use crate::store::webhooks as store;
use crate::telemetry::metrics::Metrics;

use super::config::{Endpoint, WebhookConfig};
use super::signature::Signer;

/// How often the newest event id is read.
const POLL: Duration = Duration::from_millis(300);
/// How long a lease lasts; renewed every [`RENEW_EVERY`] while working.
const LEASE_SECONDS: i64 = 30;
/// Renewing at a third of the lease leaves it at least two thirds of its
/// time, more than one attempt's timeout, when an attempt starts.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often an instance without the lease asks for it again.
const CLAIM_RETRY: Duration = Duration::from_secs(2);
/// The pause after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(2);
/// The most one attempt may take: connecting, sending and the answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between attempts at one event.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Events read at once.
const BATCH: i64 = 100;
/// How often a long backlog is counted again.
const RECOUNT_EVERY: Duration = Duration::from_secs(10);
/// The most of an answer's body read (to keep the connection for reuse).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How long [`Running::stop`] waits for the tasks to give their leases up.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The pause before the next attempt after `attempts` failures in a row:
/// 1 s, 2 s, 4 s, … up to 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
    Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF)
}

/// The webhook settings, checked, with every endpoint's row in the store.
pub struct Webhooks {
    config: WebhookConfig,
    client: reqwest::Client,
}

impl Webhooks {
    /// Reads the settings and adds a row for each endpoint the store does
    /// not know yet, its cursor at the newest event. `None` when no
    /// endpoint is configured.
    pub async fn prepare(settings: &Settings, pool: &DbPool) -> anyhow::Result<Option<Self>> {
        let Some(config) = WebhookConfig::from_settings(settings).map_err(anyhow::Error::msg)?
        else {
            return Ok(None);
        };
        let ids: Vec<String> = config.endpoints.iter().map(|e| e.id.clone()).collect();
        let added = pool
            .run(move |conn| {
                let mut added = Vec::new();
                for id in ids {
                    if store::register(conn, &id)? {
                        added.push(id);
                    }
                }
                Ok::<_, DbError>(added)
            })
            .await
            .context("registering the webhook endpoints")?;
        for endpoint in &config.endpoints {
            let types = endpoint
                .type_names()
                .map_or_else(|| "all".to_owned(), |names| names.join(" "));
            tracing::info!(
                endpoint = %endpoint.id,
                origin = %endpoint.origin(),
                %types,
                new = added.contains(&endpoint.id),
                "webhook endpoint"
            );
        }
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            // A redirect is an answer other than 2xx: a failure, not a
            // reason to send the signed event elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the webhook HTTP client")?;
        Ok(Some(Webhooks { config, client }))
    }

    /// Starts delivering, as `owner` (the instance id). Delivery stops when
    /// the returned handle is stopped or dropped.
    pub fn start(self, pool: DbPool, owner: String, metrics: Metrics) -> Running {
        let (stop_tx, stop) = watch::channel(false);
        let (head_tx, head) = watch::channel(0);
        let mut tasks = vec![tokio::spawn(watch_head(
            pool.clone(),
            head_tx,
            stop.clone(),
        ))];
        for endpoint in self.config.endpoints {
            metrics.webhook_endpoint(&endpoint.id);
            let worker = Worker {
                kinds: endpoint.type_names(),
                endpoint,
                pool: pool.clone(),
                owner: owner.clone(),
                client: self.client.clone(),
                signer: self.config.signer.clone(),
                metrics: metrics.clone(),
                head: head.clone(),
                stop: stop.clone(),
                held: None,
                store_failing: false,
            };
            tasks.push(tokio::spawn(worker.run()));
        }
        Running {
            stop: stop_tx,
            tasks,
        }
    }
}

/// Delivery under way. Dropping it stops the tasks too, without waiting.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops delivery: an attempt in flight is abandoned (its event is
    /// sent again by whoever delivers next) and each lease is given up, so
    /// another instance can take the endpoint at once.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let tasks = self.tasks;
        let _ = tokio::time::timeout(STOP_WAIT, async move {
            for task in tasks {
                let _ = task.await;
            }
        })
        .await;
    }
}

/// Whether delivery is to stop: asked to, or its handle dropped.
fn is_stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Resolves once delivery is to stop.
async fn stopped(mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Sleeps for `pause`; false if delivery is to stop first.
async fn pause(stop: &watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(pause) => !is_stopped(stop),
        _ = stopped(stop.clone()) => false,
    }
}

/// Reads the newest event id every [`POLL`] and tells the workers when it
/// grows: one indexed read, whatever the number of endpoints.
async fn watch_head(pool: DbPool, head: watch::Sender<i64>, stop: watch::Receiver<bool>) {
    loop {
        match pool.run(events::last_id).await {
            Ok(last) => {
                head.send_if_modified(|known| {
                    let newer = last > *known;
                    if newer {
                        *known = last;
                    }
                    newer
                });
            }
            Err(error) => tracing::debug!(%error, "webhooks could not read the event log"),
        }
        if !pause(&stop, POLL).await {
            return;
        }
    }
}

/// What this instance knows of an endpoint whose lease it holds.
struct Held {
    cursor: i64,
    attempts: i32,
    next_attempt_at: Option<NaiveDateTime>,
    /// When to renew the lease.
    renew_at: Instant,
    /// The oldest event it has yet to deliver, if known.
    oldest: Option<NaiveDateTime>,
    /// Events it has yet to deliver, as last counted.
    pending: i64,
    counted_at: Option<Instant>,
}

/// Why an attempt failed.
enum Failure {
    /// An answer other than 2xx.
    Rejected(String),
    /// No answer: connection refused or reset, a timeout.
    Unreachable(String),
    /// Delivery is stopping.
    Stopped,
}

/// After one step, what to wait for before the next.
enum Next {
    Now,
    Sleep(Duration),
    /// A newer event, or at most this long.
    NewEvent(Duration),
}

struct Worker {
    endpoint: Endpoint,
    kinds: Option<Vec<String>>,
    pool: DbPool,
    owner: String,
    client: reqwest::Client,
    signer: Signer,
    metrics: Metrics,
    head: watch::Receiver<i64>,
    stop: watch::Receiver<bool>,
    held: Option<Held>,
    /// Whether the last store call failed (an outage is logged once).
    store_failing: bool,
}

impl Worker {
    async fn run(mut self) {
        while !is_stopped(&self.stop) {
            let next = self.step().await;
            let go_on = match next {
                Next::Now => true,
                Next::Sleep(wait) => pause(&self.stop, wait).await,
                Next::NewEvent(wait) => {
                    let mut head = self.head.clone();
                    tokio::select! {
                        changed = head.changed() => {
                            if changed.is_err() {
                                pause(&self.stop, wait).await
                            } else {
                                true
                            }
                        }
                        _ = tokio::time::sleep(wait) => true,
                        _ = stopped(self.stop.clone()) => false,
                    }
                }
            };
            if !go_on {
                break;
            }
        }
        if self.held.take().is_some() {
            let (id, owner) = (self.endpoint.id.clone(), self.owner.clone());
            if let Err(error) = self
                .pool
                .run(move |conn| store::release(conn, &id, &owner))
                .await
            {
                tracing::debug!(endpoint = %self.endpoint.id, %error, "could not give the webhook lease up");
            }
        }
        self.metrics.webhook_backlog(&self.endpoint.id, 0.0, 0);
    }

    /// Takes or renews the lease, delivers what is due, and says what to
    /// wait for next.
    async fn step(&mut self) -> Next {
        let due = self
            .held
            .as_ref()
            .is_none_or(|held| Instant::now() >= held.renew_at);
        if due && !self.claim().await {
            return Next::Sleep(if self.held.is_none() {
                CLAIM_RETRY
            } else {
                STORE_RETRY
            });
        }
        let Some(held) = &self.held else {
            return Next::Sleep(CLAIM_RETRY);
        };
        let until_renewal = held.renew_at.saturating_duration_since(Instant::now());
        if let Some(at) = held.next_attempt_at {
            let wait = (at - clock::now()).to_std().unwrap_or_default();
            if !wait.is_zero() {
                self.report();
                // Wakes at least every second, to keep the lag current.
                return Next::Sleep(wait.min(until_renewal).min(Duration::from_secs(1)));
            }
        }
        let head = *self.head.borrow_and_update();
        let cursor = held.cursor;
        if head <= cursor {
            self.caught_up();
            return Next::NewEvent(until_renewal);
        }
        // Each round of delivery is a trace of its own, with its store calls.
        let span = tracing::info_span!("webhook delivery", webhook.endpoint = %self.endpoint.id);
        self.deliver_up_to(cursor, head).instrument(span).await
    }

    /// Delivers the events after `cursor` up to `head` that the endpoint
    /// wants, in order, until one fails or the lease is due for renewal.
    async fn deliver_up_to(&mut self, cursor: i64, head: i64) -> Next {
        let kinds = self.kinds.clone();
        let batch = self
            .pool
            .run(move |conn| store::pending(conn, cursor, head, kinds.as_deref(), BATCH))
            .await;
        let batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                self.store_failed("could not read the event log", &error);
                return Next::Sleep(STORE_RETRY);
            }
        };
        let Some(first) = batch.first() else {
            // Nothing up to `head` that the endpoint wants: pass it all over.
            if self.advance(head).await {
                self.caught_up();
                return Next::Now;
            }
            return Next::Sleep(STORE_RETRY);
        };
        self.count(head, batch.len(), first.occurred_at).await;
        for event in batch {
            let renew_due = self
                .held
                .as_ref()
                .is_none_or(|held| Instant::now() >= held.renew_at);
            if renew_due || is_stopped(&self.stop) {
                return Next::Now;
            }
            if let Some(held) = &mut self.held {
                held.oldest = Some(event.occurred_at);
            }
            self.report();
            match self.deliver(&event).await {
                Ok(()) => {
                    self.metrics
                        .webhook_delivery(&self.endpoint.id, "delivered");
                    if !self.advance(event.id).await {
                        return Next::Sleep(STORE_RETRY);
                    }
                    if let Some(held) = &mut self.held {
                        held.pending = (held.pending - 1).max(0);
                        held.oldest = None;
                    }
                }
                Err(Failure::Stopped) => return Next::Now,
                Err(failure) => {
                    self.failed(&event, failure).await;
                    return Next::Now;
                }
            }
        }
        Next::Now
    }

    /// Takes or renews the lease; reads the row's state when it holds it.
    async fn claim(&mut self) -> bool {
        let (id, owner) = (self.endpoint.id.clone(), self.owner.clone());
        let now = clock::now();
        let until = clock::plus_seconds(now, LEASE_SECONDS);
        let claimed = self
            .pool
            .run(move |conn| store::claim(conn, &id, &owner, now, until))
            .await;
        match claimed {
            Ok(Some(row)) => {
                self.store_failing = false;
                let renew_at = Instant::now() + RENEW_EVERY;
                match &mut self.held {
                    Some(held) => {
                        held.cursor = row.cursor;
                        held.attempts = row.attempts;
                        held.next_attempt_at = row.next_attempt_at;
                        held.renew_at = renew_at;
                    }
                    None => {
                        tracing::info!(
                            endpoint = %self.endpoint.id,
                            cursor = row.cursor,
                            attempts = row.attempts,
                            "delivering webhooks to this endpoint from this instance"
                        );
                        self.held = Some(Held {
                            cursor: row.cursor,
                            attempts: row.attempts,
                            next_attempt_at: row.next_attempt_at,
                            renew_at,
                            oldest: None,
                            pending: 0,
                            counted_at: None,
                        });
                    }
                }
                true
            }
            Ok(None) => {
                self.store_failing = false;
                self.lost();
                false
            }
            Err(error) => {
                self.store_failed("could not take the lease", &error);
                // Whether it is still ours is unknown: ask again before
                // delivering anything.
                self.held = None;
                false
            }
        }
    }

    /// Logs a failed store call: a warning for the first of a run, then
    /// at debug level until a call succeeds.
    fn store_failed(&mut self, what: &str, error: &DbError) {
        if self.store_failing {
            tracing::debug!(endpoint = %self.endpoint.id, %error, "webhooks: {what}");
        } else {
            tracing::warn!(endpoint = %self.endpoint.id, %error, "webhooks: {what}");
        }
        self.store_failing = true;
    }

    /// Another instance holds the lease now.
    fn lost(&mut self) {
        if self.held.take().is_some() {
            tracing::info!(endpoint = %self.endpoint.id, "another instance delivers to this webhook endpoint now");
        }
        self.metrics.webhook_backlog(&self.endpoint.id, 0.0, 0);
    }

    /// Moves the cursor to `cursor`; false when that failed or the lease
    /// is lost.
    async fn advance(&mut self, cursor: i64) -> bool {
        let (id, owner) = (self.endpoint.id.clone(), self.owner.clone());
        let until = clock::plus_seconds(clock::now(), LEASE_SECONDS);
        let moved = self
            .pool
            .run(move |conn| store::advance(conn, &id, &owner, cursor, until))
            .await;
        match moved {
            Ok(true) => {
                if let Some(held) = &mut self.held {
                    held.cursor = cursor;
                    held.attempts = 0;
                    held.next_attempt_at = None;
                    held.renew_at = Instant::now() + RENEW_EVERY;
                }
                true
            }
            Ok(false) => {
                self.lost();
                false
            }
            Err(error) => {
                self.store_failed(
                    "could not record a delivery; the event will be sent again",
                    &error,
                );
                self.held = None;
                false
            }
        }
    }

    /// Records a failed attempt and when to try again.
    async fn failed(&mut self, event: &StoredEvent, failure: Failure) {
        let (result, cause) = match failure {
            Failure::Rejected(cause) => ("rejected", cause),
            Failure::Unreachable(cause) => ("unreachable", cause),
            Failure::Stopped => return,
        };
        self.metrics.webhook_delivery(&self.endpoint.id, result);
        let attempts = self
            .held
            .as_ref()
            .map_or(1, |held| held.attempts.saturating_add(1));
        let wait = backoff(attempts);
        let now = clock::now();
        let next = clock::plus_seconds(now, wait.as_secs() as i64);
        tracing::warn!(
            endpoint = %self.endpoint.id,
            origin = %self.endpoint.origin(),
            event = %event.event_id,
            attempts,
            retry_in_s = wait.as_secs(),
            cause = %cause,
            "webhook delivery failed"
        );
        let (id, owner) = (self.endpoint.id.clone(), self.owner.clone());
        let until = clock::plus_seconds(now, LEASE_SECONDS);
        let recorded = self
            .pool
            .run(move |conn| store::failed(conn, &id, &owner, attempts, next, &cause, until))
            .await;
        match recorded {
            Ok(true) => {
                if let Some(held) = &mut self.held {
                    held.attempts = attempts;
                    held.next_attempt_at = Some(next);
                    held.renew_at = Instant::now() + RENEW_EVERY;
                }
            }
            Ok(false) => self.lost(),
            Err(error) => {
                self.store_failed("could not record a failed attempt", &error);
                self.held = None;
            }
        }
    }

    /// One attempt at one event.
    async fn deliver(&self, event: &StoredEvent) -> Result<(), Failure> {
        let body = serde_json::to_vec(&event.payload())
            .map_err(|e| Failure::Rejected(format!("could not encode the event: {e}")))?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self.signer.sign(&event.event_id, timestamp, &body);
        let request = self
            .client
            .post(self.endpoint.url.clone())
            .header("webhook-id", &event.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("sessiond/", env!("CARGO_PKG_VERSION")))
            .body(body)
            .send();
        let answer = tokio::select! {
            answer = request => answer,
            _ = stopped(self.stop.clone()) => return Err(Failure::Stopped),
        };
        match answer {
            Ok(mut response) => {
                let status = response.status();
                // Read (a bounded part of) the answer, so the connection
                // can carry the next delivery.
                let mut read = 0;
                while let Ok(Some(chunk)) = response.chunk().await {
                    read += chunk.len();
                    if read > MAX_ANSWER_BYTES {
                        break;
                    }
                }
                if status.is_success() {
                    Ok(())
                } else {
                    Err(Failure::Rejected(format!("answered {status}")))
                }
            }
            Err(error) => Err(Failure::Unreachable(describe(error))),
        }
    }

    /// How many events are left, counted again only when the batch was
    /// full and not within [`RECOUNT_EVERY`].
    async fn count(&mut self, head: i64, read: usize, oldest: NaiveDateTime) {
        let Some(held) = &mut self.held else {
            return;
        };
        held.oldest = Some(oldest);
        if (read as i64) < BATCH {
            held.pending = read as i64;
            held.counted_at = None;
            return;
        }
        if held
            .counted_at
            .is_some_and(|at| at.elapsed() < RECOUNT_EVERY)
        {
            return;
        }
        let (cursor, kinds) = (held.cursor, self.kinds.clone());
        let counted = self
            .pool
            .run(move |conn| store::count_pending(conn, cursor, head, kinds.as_deref()))
            .await;
        if let (Ok(pending), Some(held)) = (counted, &mut self.held) {
            held.pending = pending;
            held.counted_at = Some(Instant::now());
        }
    }

    /// Nothing left to deliver.
    fn caught_up(&mut self) {
        if let Some(held) = &mut self.held {
            held.oldest = None;
            held.pending = 0;
        }
        self.report();
    }

    /// Sets the lag and pending gauges from what is known.
    fn report(&self) {
        let Some(held) = &self.held else {
            return;
        };
        let lag = held.oldest.map_or(0.0, |oldest| {
            (clock::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0
        });
        self.metrics
            .webhook_backlog(&self.endpoint.id, lag, held.pending);
    }
}

/// A transport error, with its causes, without the URL (which may carry
/// credentials).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if text.len() > 500 {
        let mut cut = 500;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(0).as_secs(), 1);
        assert_eq!(backoff(i32::MAX).as_secs(), 300);
    }
}
