//! Tuaton's HTTP server.
//!
//! Scope: settings, the axum router with its middleware (request ids, limits,
//! security headers, metrics, tracing), health and readiness, the OpenAPI
//! document, and graceful shutdown. Each area's routes live in their own module
//! and only extract, call the protocol crates, and map the result.
//!
//! Non-goals: protocol logic of any kind. The server never builds a token, a
//! signature or an audit record's content itself; it asks the crates below.

mod api;
pub mod app;
pub mod client_address;
pub mod custody;
pub mod error;
mod health;
pub mod maintenance;
mod middleware;
pub mod notify;
mod openapi;
pub mod ratelimit;
pub mod services;
pub mod session;
pub mod settings;
pub mod telemetry;
mod wellknown;

pub use app::{AppState, build_router, serve};
pub use error::ApiError;
pub use settings::{Settings, SettingsError};
