//! Session pool with transparent recovery.
//!
//! The pool keeps idle logged-in sessions for reuse. PKCS#11 login state is
//! per application and token, so a new session opened while another one is
//! logged in is logged in already; a session that finds itself public logs
//! in (this happens once per token, and again after the token forgot us).
//!
//! When the module, the token or a network proxy restarts, every session
//! handle dies at once. An operation failing with one of those return codes
//! makes the pool forget all its sessions, re-initialise the library if it
//! was finalised, find the token's slot again by label, log in, and retry
//! the operation once. A second failure of the same kind becomes
//! [`KeyError::Unavailable`], which callers may retry later.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;

use super::Pin;
use crate::error::KeyError;

/// Failure inside one attempt: either a raw PKCS#11 error (which may call
/// for a reconnect) or an already-classified error.
pub(crate) enum OpError {
    Ck(CkError),
    Key(KeyError),
    /// The token label is no longer present on any slot, or its slot no
    /// longer answers.
    TokenGone,
    /// The session is valid but the token forgot our login.
    LoggedOut,
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        OpError::Ck(e)
    }
}

impl From<KeyError> for OpError {
    fn from(e: KeyError) -> Self {
        OpError::Key(e)
    }
}

/// Return codes meaning "this session (or the whole connection) is dead,
/// start over", as opposed to "this request was wrong".
pub(crate) fn is_connection_error(e: &OpError) -> bool {
    match e {
        OpError::TokenGone | OpError::LoggedOut => true,
        OpError::Key(_) => false,
        OpError::Ck(CkError::Pkcs11(rv, _)) => matches!(
            rv,
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized
                | RvError::GeneralError
        ),
        OpError::Ck(_) => false,
    }
}

/// Whether session handles survive this error (only the login was lost).
pub(crate) fn handles_survive(e: &OpError) -> bool {
    matches!(
        e,
        OpError::LoggedOut | OpError::Ck(CkError::Pkcs11(RvError::UserNotLoggedIn, _))
    )
}

/// A short, secret-free description of a PKCS#11 failure.
pub(crate) fn describe(e: &OpError, token_label: &str) -> String {
    match e {
        OpError::Ck(CkError::Pkcs11(rv, f)) => format!("{f}: {rv:?}"),
        OpError::Ck(other) => other.to_string(),
        OpError::Key(k) => k.to_string(),
        OpError::TokenGone => format!("token {token_label:?} is not present or not answering"),
        OpError::LoggedOut => "the token logged us out".to_owned(),
    }
}

const REINIT_MIN_INTERVAL: Duration = Duration::from_secs(1);

struct Idle {
    session: Session,
    generation: u64,
}

/// Sessions for one token of one module.
pub(crate) struct SessionPool {
    ctx: Pkcs11,
    token_label: String,
    pin: Pin,
    max_idle: usize,
    reinitialize: bool,
    slot: Mutex<Option<Slot>>,
    idle: Mutex<Vec<Idle>>,
    generation: AtomicU64,
    /// Set once the token refused our PIN (or locked it): no further
    /// `C_Login` is tried with it, since each wrong attempt counts towards
    /// the token locking the user PIN for good. Only reopening the backend
    /// (with the right PIN) clears it.
    pin_refused: std::sync::atomic::AtomicBool,
    /// `C_Login` calls made (for tests and metrics).
    logins: AtomicU64,
    /// Held across the check of `pin_refused` and the login, so sessions
    /// opening at once do not each spend an attempt with a wrong PIN.
    login_lock: Mutex<()>,
}

/// A session lent out by the pool, with the generation it belongs to.
pub(crate) struct Lease {
    pub(crate) session: Session,
    generation: u64,
}

pub(crate) fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another backend in this process (same module) got there first.
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, CkError> {
    for slot in ctx.get_slots_with_token()? {
        match ctx.get_token_info(slot) {
            Ok(info) if info.label().trim_end() == label => return Ok(Some(slot)),
            // Another token, or a slot that does not answer (SoftHSM2 says
            // CKR_GENERAL_ERROR for a token whose directory vanished): not
            // ours, or not usable now.
            Ok(_) | Err(CkError::Pkcs11(_, _)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

impl SessionPool {
    pub(crate) fn new(
        ctx: Pkcs11,
        token_label: String,
        pin: Pin,
        max_idle: usize,
        reinitialize: bool,
        slot: Slot,
    ) -> Self {
        SessionPool {
            ctx,
            token_label,
            pin,
            max_idle,
            reinitialize,
            slot: Mutex::new(Some(slot)),
            idle: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            pin_refused: std::sync::atomic::AtomicBool::new(false),
            logins: AtomicU64::new(0),
            login_lock: Mutex::new(()),
        }
    }

    pub(crate) fn context(&self) -> &Pkcs11 {
        &self.ctx
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn current_slot(&self) -> Result<Slot, OpError> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = *slot {
            return Ok(s);
        }
        initialize(&self.ctx)?;
        let mut found = find_slot(&self.ctx, &self.token_label)?;
        if found.is_none() && self.reinitialize_allowed() {
            // Errors from C_Finalize (e.g. not initialised) do not matter:
            // what counts is the C_Initialize that follows.
            let _ = self.ctx.clone().finalize();
            initialize(&self.ctx)?;
            found = find_slot(&self.ctx, &self.token_label)?;
        }
        let found = found.ok_or(OpError::TokenGone)?;
        *slot = Some(found);
        Ok(found)
    }

    /// Rate limit for module re-initialisation, shared by the process since
    /// a module's state is.
    fn reinitialize_allowed(&self) -> bool {
        static LAST: Mutex<Option<Instant>> = Mutex::new(None);
        if !self.reinitialize {
            return false;
        }
        let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match *last {
            Some(t) if now.duration_since(t) < REINIT_MIN_INTERVAL => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Takes an idle session or opens (and if needed logs in) a new one.
    pub(crate) fn checkout(&self) -> Result<Lease, OpError> {
        let generation = self.generation();
        {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            while let Some(entry) = idle.pop() {
                if entry.generation == generation {
                    return Ok(Lease {
                        session: entry.session,
                        generation,
                    });
                }
                // From before a reset; handle may be stale (see reset).
                std::mem::forget(entry.session);
            }
        }
        let slot = self.current_slot()?;
        let session = self.ctx.open_rw_session(slot)?;
        let state = session.get_session_info()?.session_state();
        if matches!(state, SessionState::RoPublic | SessionState::RwPublic) {
            let _one_at_a_time = self
                .login_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.pin_refused.load(Ordering::Acquire) {
                return Err(OpError::Key(KeyError::WrongPin));
            }
            self.logins.fetch_add(1, Ordering::Relaxed);
            match session.login(UserType::User, Some(&self.pin.auth_pin())) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(CkError::Pkcs11(
                    RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
                    _,
                )) => {
                    self.pin_refused.store(true, Ordering::Release);
                    return Err(OpError::Key(KeyError::WrongPin));
                }
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                    self.pin_refused.store(true, Ordering::Release);
                    return Err(OpError::Key(KeyError::PinLocked));
                }
                Err(e) => return Err(OpError::Ck(e)),
            }
        }
        Ok(Lease {
            session,
            generation,
        })
    }

    /// Returns a healthy session to the pool (or closes it if the pool is
    /// full or a reset happened meanwhile).
    pub(crate) fn checkin(&self, lease: Lease) {
        if lease.generation != self.generation() {
            std::mem::forget(lease.session);
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(Idle {
                session: lease.session,
                generation: lease.generation,
            });
        }
    }

    /// Forgets every session and the slot, after a connection-class error
    /// seen on a session of `seen_generation`. Only the first thread to see
    /// a given generation fail does the reset.
    /// `handles_valid` says the sessions themselves still exist (the token
    /// only logged us out), so they are closed rather than forgotten.
    pub(crate) fn reset(&self, seen_generation: u64, handles_valid: bool) {
        if self
            .generation
            .compare_exchange(
                seen_generation,
                seen_generation.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return;
        }
        let stale: Vec<Idle> =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        // Stale handles are not closed: after a library re-initialisation
        // their numbers may already belong to someone else's new sessions.
        // Closing is the module's job when it restarts; forgetting leaks only
        // a small Rust value.
        for entry in stale {
            if handles_valid {
                drop(entry.session);
            } else {
                std::mem::forget(entry.session);
            }
        }
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub(crate) fn token_label(&self) -> &str {
        &self.token_label
    }

    /// `C_Login` calls made so far (for tests and metrics).
    pub(crate) fn login_attempts(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// Sessions currently idle (for tests and metrics).
    pub(crate) fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Lease {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Drops a session after a connection error without closing its
    /// (possibly reused) handle.
    pub(crate) fn discard(self) {
        std::mem::forget(self.session);
    }
}
