//! Domain types shared by every Tuaton crate.
//!
//! Scope: identifiers issued by Thai registries ([`CitizenId`], [`JuristicId`])
//! and by Tuaton ([`AccountId`]), the stable [`ErrorCode`] set, key types and
//! signature algorithms ([`KeySpec`], [`SignatureAlgorithm`]),
//! the ETDA assurance levels ([`Ial`], [`Aal`]) and the [`Clock`] through which
//! time enters the rest of the system.
//!
//! Non-goals: any I/O, storage, cryptography or protocol logic. Everything here
//! is a value that can be parsed at the edge and then trusted inside.

pub mod account;
pub mod algorithm;
pub mod assurance;
pub mod clock;
pub mod code;
pub mod ids;

pub use account::{AccountId, AccountIdError};
pub use algorithm::{AlgorithmError, KeySpec, SignatureAlgorithm};
pub use assurance::{Aal, Ial, LevelError};
pub use clock::{Clock, FixedClock, SystemClock};
pub use code::ErrorCode;
pub use ids::{CitizenId, IdError, JuristicId};
