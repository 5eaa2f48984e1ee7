//! Signed webhooks: every event in the log (`session_events`), POSTed to
//! each endpoint in `SESSIOND_WEBHOOK_URLS` that wants its type, signed as
//! Standard Webhooks specifies.
//!
//! The event log is the queue. Each endpoint has a row in
//! `webhook_endpoints` with its cursor (the last event delivered or passed
//! over by its filter), its retry state and a time-limited lease: the
//! instance holding the lease is the only one that delivers to it, one
//! event at a time in id order, and moves the cursor after each 2xx. A
//! failure is retried with exponential back-off, forever. Every endpoint
//! has a task of its own, so a failing one delays no other.

mod config;
mod dispatcher;
mod signature;

pub use config::{
    endpoint_id, parse_endpoints, parse_secret, validate, Endpoint, WebhookConfig, MIN_KEY_BYTES,
    SECRET_VAR, URLS_VAR,
};
pub use dispatcher::{backoff, Running, Webhooks};
pub use signature::Signer;
