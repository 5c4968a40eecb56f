//! Key custody, as the settings and upkeep reach it: the service layer's
//! [`tuaton_idm::custody`] under the name the settings have always used.

pub use tuaton_idm::custody::*;
