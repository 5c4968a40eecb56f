//! The JSON API under `/api/v1`, composed per area. Handlers extract, call
//! the service layer (`tuaton_idm`), and shape the answer; none opens a
//! transaction or writes an audit record (a workspace test checks this).

mod accounts;
mod admin;
mod enrolment;
mod passkeys;
mod recovery;
mod signing;

use axum::Router;

use crate::AppState;

pub(crate) use accounts::ApiDocAccounts;
pub(crate) use admin::ApiDocAdmin;
pub(crate) use enrolment::ApiDocEnrolment;
pub(crate) use passkeys::ApiDocPasskeys;
pub(crate) use recovery::ApiDocRecovery;
pub(crate) use signing::ApiDocSigning;

/// The API; ceremony routes (enrolment, passkeys, login, recovery) carry the
/// per-address ceremony limit, the signed-in routes their own.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    let ceremonies = Router::new()
        .merge(enrolment::routes())
        .merge(passkeys::routes())
        .merge(recovery::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::per_address,
        ));
    let signed_in = accounts::routes()
        .merge(admin::routes())
        .merge(signing::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::ratelimit::signed_in,
        ));
    Router::new().merge(ceremonies).merge(signed_in)
}
