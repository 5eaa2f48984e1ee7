//! sessiond: session management over one store, served as three published APIs.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod limits;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod webhooks;
