//! The JSON API under `/api/v1`, composed per area.

mod accounts;
mod enrolment;
mod passkeys;

use axum::Router;

use crate::AppState;

pub(crate) use accounts::ApiDocAccounts;
pub(crate) use enrolment::ApiDocEnrolment;
pub(crate) use passkeys::ApiDocPasskeys;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(enrolment::routes())
        .merge(passkeys::routes())
        .merge(accounts::routes())
}

/// The audit actor string for an account.
pub(crate) fn account_actor(account_id: &str) -> String {
    format!("account:{account_id}")
}
