//! Concurrency limits that keep one kind of work from starving another:
//! the bulkhead for expensive list queries, and the cap on password hashing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::web;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Error;

/// Expensive list queries (filtered lists, everyone's sessions, the admin
/// lists) share a few slots, and each user may hold only a couple of them,
/// so however many such requests arrive, the rest of the connection pool
/// and of the blocking threads stays free for logins and authentication.
pub struct Bulkhead {
    slots: Arc<Semaphore>,
    size: usize,
    per_user: usize,
    /// How long a request waits for a slot before it gets 503.
    wait: Duration,
    running: Arc<Mutex<HashMap<i64, usize>>>,
}

/// A slot, held while the query runs.
pub struct BulkheadPermit {
    _slot: OwnedSemaphorePermit,
    _user: UserSlot,
}

/// One of a user's slots; given back on drop, however the request ends.
struct UserSlot {
    user_id: i64,
    running: Arc<Mutex<HashMap<i64, usize>>>,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = running.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.user_id);
            }
        }
    }
}

impl Bulkhead {
    pub fn new(size: usize, per_user: usize, wait: Duration) -> Self {
        let size = size.max(1);
        Bulkhead {
            slots: Arc::new(Semaphore::new(size)),
            size,
            per_user: per_user.max(1),
            wait,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for `user_id`: 429 at once if the user already holds their
    /// share, 503 if no slot comes free within the wait.
    pub async fn enter(&self, user_id: i64) -> Result<BulkheadPermit, Error> {
        let user = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            let count = running.entry(user_id).or_insert(0);
            if *count >= self.per_user {
                return Err(Error::TooManyRequests(format!(
                    "You already have {} filtered or all-user list requests running; wait for one to finish",
                    self.per_user
                )));
            }
            *count += 1;
            UserSlot {
                user_id,
                running: self.running.clone(),
            }
        };
        let slot = slot_within(&self.slots, self.wait, || {
            format!(
                "All {} slots for filtered and all-user list requests stayed busy for {} ms",
                self.size,
                self.wait.as_millis()
            )
        })
        .await?;
        Ok(BulkheadPermit {
            _slot: slot,
            _user: user,
        })
    }
}

/// A slot from `slots` within `wait`, or 503 `Busy` saying `why`.
async fn slot_within(
    slots: &Arc<Semaphore>,
    wait: Duration,
    why: impl FnOnce() -> String,
) -> Result<OwnedSemaphorePermit, Error> {
    match tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
        Ok(Ok(slot)) => Ok(slot),
        Ok(Err(_)) => Err(Error::Busy("the server is shutting down".into())),
        Err(_) => Err(Error::Busy(why())),
    }
}

/// At most `slots` password hashes at once, each on a blocking thread; a
/// bounded number of logins wait for their turn, the rest get 503.
pub struct Hashing {
    slots: Arc<Semaphore>,
    size: usize,
    waiting: AtomicUsize,
    queue: usize,
    wait: Duration,
    running: Arc<AtomicUsize>,
    /// The most hashes seen running at once, for `/metrics`.
    peak: Arc<AtomicUsize>,
}

/// A place in the hashing queue, left on drop: also when the request is
/// abandoned while it waits.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    ahead: usize,
}

impl<'a> Waiting<'a> {
    fn join(count: &'a AtomicUsize) -> Self {
        let ahead = count.fetch_add(1, Ordering::AcqRel);
        Waiting { count, ahead }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hashing {
    pub fn new(size: usize, queue: usize, wait: Duration) -> Self {
        let size = size.max(1);
        Hashing {
            slots: Arc::new(Semaphore::new(size)),
            size,
            waiting: AtomicUsize::new(0),
            queue,
            wait,
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `f` (a password hash or check) when a slot is free.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => self.wait_for_slot().await?,
        };
        let (running, peak) = (self.running.clone(), self.peak.clone());
        let parent = tracing::Span::current();
        web::block(move || {
            let _span = tracing::debug_span!(parent: &parent, "password hash").entered();
            let now = running.fetch_add(1, Ordering::AcqRel) + 1;
            peak.fetch_max(now, Ordering::AcqRel);
            let result = f();
            running.fetch_sub(1, Ordering::AcqRel);
            drop(slot);
            result
        })
        .await
        .map_err(|e| Error::Internal(format!("password check did not finish: {e}")))
    }

    async fn wait_for_slot(&self) -> Result<OwnedSemaphorePermit, Error> {
        let waiting = Waiting::join(&self.waiting);
        if waiting.ahead >= self.queue {
            return Err(Error::Busy(
                "Too many logins are waiting to be checked; retry shortly".into(),
            ));
        }
        slot_within(&self.slots, self.wait, || {
            format!(
                "No password check slot came free within {} ms; retry shortly",
                self.wait.as_millis()
            )
        })
        .await
    }

    /// (running now, most ever running at once, the cap)
    pub fn gauges(&self) -> (usize, usize, usize) {
        (
            self.running.load(Ordering::Acquire),
            self.peak.load(Ordering::Acquire),
            self.size,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_holds_at_most_their_share_and_gets_it_back() {
        let bulkhead = Bulkhead::new(4, 2, Duration::from_millis(50));
        let first = bulkhead.enter(1).await.unwrap();
        let _second = bulkhead.enter(1).await.unwrap();
        assert!(matches!(
            bulkhead.enter(1).await,
            Err(Error::TooManyRequests(_))
        ));
        // Another user is not affected.
        let _other = bulkhead.enter(2).await.unwrap();
        drop(first);
        assert!(bulkhead.enter(1).await.is_ok());
    }

    #[tokio::test]
    async fn an_abandoned_wait_leaves_the_hashing_queue() {
        let hashing = Hashing::new(1, 1, Duration::from_secs(5));
        let held = hashing.slots.clone().acquire_owned().await.unwrap();
        // One login waits, then its caller goes away.
        let waiting = tokio::time::timeout(Duration::from_millis(20), hashing.run(|| 1)).await;
        assert!(waiting.is_err(), "it was still waiting");
        assert_eq!(hashing.waiting.load(Ordering::Acquire), 0);
        drop(held);
        assert_eq!(hashing.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        let hashing = Hashing::new(1, 0, Duration::from_secs(5));
        // A free slot needs no queue.
        assert_eq!(hashing.run(|| 3).await.unwrap(), 3);
        let _held = hashing.slots.clone().acquire_owned().await.unwrap();
        assert!(matches!(hashing.run(|| ()).await, Err(Error::Busy(_))));
    }

    #[tokio::test]
    async fn when_every_slot_is_taken_the_wait_ends_in_busy() {
        let bulkhead = Bulkhead::new(1, 2, Duration::from_millis(20));
        let _held = bulkhead.enter(1).await.unwrap();
        assert!(matches!(bulkhead.enter(2).await, Err(Error::Busy(_))));
        // The refused request gave its user slot back.
        assert!(bulkhead.running.lock().unwrap().get(&2).is_none());
    }
}
