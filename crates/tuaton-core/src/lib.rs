//! Domain types shared by every Tuaton crate.
//!
//! Scope: identifiers issued by Thai registries ([`CitizenId`], [`JuristicId`]),
//! the ETDA assurance levels ([`Ial`], [`Aal`]) and the [`Clock`] through which
//! time enters the rest of the system.
//!
//! Non-goals: any I/O, storage, cryptography or protocol logic. Everything here
//! is a value that can be parsed at the edge and then trusted inside.

pub mod assurance;
pub mod clock;
pub mod ids;

pub use assurance::{Aal, Ial, LevelError};
pub use clock::{Clock, FixedClock, SystemClock};
pub use ids::{CitizenId, IdError, JuristicId};
