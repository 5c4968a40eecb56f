//! The JSON API in-process (no socket), on SQLite and PostgreSQL, driven the
//! way a page or a mobile app would: one integration binary for the whole suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod common;
mod csrf;

pub(crate) use tuaton_store::on_both_engines;

mod custody;
mod forms;
mod journey;
mod limits;
mod notify;
mod passkeys;
mod pdpa;
mod privacy;
mod proofing;
mod recovery;
mod signing;
