//! Secrets named by environment variables, including one handed over on
//! standard input.
//!
//! `tuaton` takes a secret variable (`TUATON_MASTER_KEY`,
//! `TUATON_PKCS11_PIN`) out of its environment at start by re-executing
//! itself without it; the value then arrives on standard input and
//! [`HANDED_OVER`] names the variable it stands for. Reading "the variable"
//! reads it from there, once per process.

use std::io::Read as _;
use std::sync::OnceLock;

use zeroize::Zeroizing;

/// Names the secret variable whose value is on standard input.
pub const HANDED_OVER: &str = "TUATON_SECRET_ON_STDIN";

static STDIN: OnceLock<Option<Zeroizing<String>>> = OnceLock::new();

/// Why a secret variable could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Neither set nor handed over.
    NotSet,
    /// Not valid UTF-8.
    NotUnicode,
}

impl Missing {
    /// A short reason, without the value.
    pub fn reason(self) -> &'static str {
        match self {
            Missing::NotSet => "not set",
            Missing::NotUnicode => "not valid UTF-8",
        }
    }
}

/// The value of secret variable `var`: from the environment, or (when it was
/// handed over) from standard input.
pub fn read(var: &str) -> Result<Zeroizing<String>, Missing> {
    match std::env::var(var) {
        Ok(v) => Ok(Zeroizing::new(v)),
        Err(std::env::VarError::NotUnicode(_)) => Err(Missing::NotUnicode),
        Err(std::env::VarError::NotPresent) => {
            if std::env::var(HANDED_OVER).as_deref() != Ok(var) {
                return Err(Missing::NotSet);
            }
            STDIN
                .get_or_init(|| {
                    let mut buf = Zeroizing::new(String::new());
                    std::io::stdin().read_to_string(&mut buf).ok()?;
                    Some(buf)
                })
                .clone()
                .ok_or(Missing::NotUnicode)
        }
    }
}

/// Whether secret variable `var` is given (set and not blank, or handed over).
pub fn is_given(var: &str, env: &dyn Fn(&str) -> Option<String>) -> bool {
    env(var).is_some_and(|v| !v.trim().is_empty()) || env(HANDED_OVER).as_deref() == Some(var)
}
