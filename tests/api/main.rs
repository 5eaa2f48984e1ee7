//! The integration suite: every test runs the real application over real
//! HTTP, once on SQLite and once on Postgres.

mod helpers;

mod accounts;
mod admin_sessions;
mod binary;
mod browser;
mod cors;
mod device_management;
mod event_stream;
mod hostile;
mod json_action;
mod metrics;
mod openapi;
mod operations;
mod outages;
mod pgbouncer;
mod seed;
mod session_policies;
mod snapshots;
mod traces;
mod two_factor;
mod webhooks;
