//! Tuaton's HTTP server.
//!
//! Scope: settings, the axum router with its middleware (request ids, limits,
//! security headers, metrics, tracing, refusals as problem JSON or pages),
//! the session cookie and CSRF check at the edge, rate limits, health and
//! readiness, the OpenAPI document, notices, back-channel logout delivery,
//! upkeep and graceful shutdown.
//! Each area's routes live in their own module and only extract, call the
//! service layer (`tuaton_idm`), and map the result.
//!
//! Non-goals: flows and protocol logic of any kind. The server never opens a
//! transaction for a flow, never builds a token, a signature or an audit
//! record, and never decides a level; it asks the service layer.

mod api;
pub mod app;
mod backchannel;
pub mod client_address;
mod csc;
pub mod custody;
mod documents;
pub mod error;
pub mod health;
pub mod maintenance;
mod middleware;
pub mod notify;
mod oidc;
mod openapi;
mod outbound;
mod pki;
pub mod ratelimit;
pub mod services;
pub mod session;
pub mod settings;
pub mod telemetry;
mod web;
mod wellknown;

pub use app::{AppState, ConnectionLimits, build_router, serve};
pub use error::ApiError;
pub use settings::{Settings, SettingsError};
