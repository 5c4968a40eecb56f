//! Tuaton's signatures. Today: RFC 3161 time-stamp tokens from Tuaton's own
//! time-stamping authority ([`tsp`]), signed through the key backend. The
//! document formats (CAdES, PAdES, XAdES, JWS) build on it with the signing
//! service (docs/signing.md).

pub mod tsp;

pub use tsp::{Failure, TimeStamper, TspError};
