//! The PKCS#11 backend (cryptoki): keys generated and used inside a token.
//!
//! Keys are generated on the token with `CKA_TOKEN`, `CKA_SENSITIVE` and
//! not `CKA_EXTRACTABLE`, so the private key never leaves it; both halves
//! carry a random 16-byte `CKA_ID` and the caller's `CKA_LABEL`. A key is
//! named by an RFC 7512 URI (`pkcs11:token=..;id=%..;object=..;type=private`).
//!
//! Mechanisms: ECDSA is computed as a digest in the process (ring) plus
//! `CKM_ECDSA` on the token, because SoftHSM2 and several HSMs do not offer
//! `CKM_ECDSA_SHA384`; the token returns `r || s`, converted to DER when
//! asked. Ed25519 uses `CKM_EDDSA`; RS256 `CKM_SHA256_RSA_PKCS`; PS256
//! `CKM_SHA256_RSA_PKCS_PSS` with MGF1-SHA-256 and a 32-byte salt.
//!
//! Sessions are pooled and recovered after HSM or proxy restarts; see the
//! `pool` module. The library is initialised once per process and never
//! finalised by this crate, because a module's state is shared by every
//! user of it in the process.

mod pool;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState};
use cryptoki::types::AuthPin;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::algorithm::{KeySpec, SignatureAlgorithm, SignatureFormat};
use crate::backend::{KeyBackend, check_label};
use crate::der;
use crate::error::{KeyError, Result};
use crate::key_ref::KeyRef;
use crate::public_key::PublicKey;
use pool::{OpError, SessionPool};

/// A token user PIN. Read from a file or an environment variable, never a
/// command-line argument; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Wraps a PIN the caller already holds (tests, interactive prompts).
    pub fn new(pin: impl Into<String>) -> Self {
        Pin(Zeroizing::new(pin.into()))
    }

    /// Reads the PIN from a file; one trailing newline is ignored.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            KeyError::PinUnavailable {
                source_name: path.display().to_string(),
                reason: e.kind().to_string(),
            }
        })?);
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
        Ok(Pin::new(trimmed))
    }

    /// Reads the PIN from environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self> {
        crate::secret_env::read(var)
            .map(|v| Pin::new(v.as_str()))
            .map_err(|e| KeyError::PinUnavailable {
                source_name: format!("${var}"),
                reason: e.reason().to_owned(),
            })
    }

    fn auth_pin(&self) -> AuthPin {
        AuthPin::from(self.0.as_str())
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

/// Where the PKCS#11 backend finds its token.
#[derive(Debug, Clone)]
pub struct Pkcs11Config {
    /// Path of the module (shared library), e.g.
    /// `/usr/lib/softhsm/libsofthsm2.so`.
    pub module_path: PathBuf,
    /// CKA_LABEL of the token (the slot is found by label, since slot numbers
    /// change when tokens are added or the module restarts).
    pub token_label: String,
    /// The user PIN.
    pub pin: Pin,
    /// How many idle sessions to keep for reuse.
    pub max_idle_sessions: usize,
    /// Whether the backend may finalise and re-initialise the module when
    /// its token has vanished (at most once a second). On by default; see
    /// the recovery notes in the crate's operator guide.
    pub reinitialize_on_token_loss: bool,
}

impl Pkcs11Config {
    /// A configuration with the default pool size (16 idle sessions).
    pub fn new(module_path: impl Into<PathBuf>, token_label: impl Into<String>, pin: Pin) -> Self {
        Pkcs11Config {
            module_path: module_path.into(),
            token_label: token_label.into(),
            pin,
            max_idle_sessions: 16,
            reinitialize_on_token_loss: true,
        }
    }
}

#[derive(Clone, Copy)]
struct KeyHandle {
    private: ObjectHandle,
    spec: KeySpec,
}

/// Keys on one PKCS#11 token; see the [module documentation](self).
pub struct Pkcs11Backend {
    module_path: PathBuf,
    pool: SessionPool,
    rng: SystemRandom,
    /// CKA_ID → (handle, type), valid for one pool generation.
    handles: RwLock<(u64, HashMap<Vec<u8>, KeyHandle>)>,
}

fn ck_ok<T>(r: std::result::Result<T, CkError>) -> std::result::Result<T, OpError> {
    r.map_err(OpError::Ck)
}

impl Pkcs11Backend {
    /// Loads the module, initialises it (once per process), finds the token
    /// by label and logs in, so that a wrong path, label or PIN fails here,
    /// at start-up, with [`KeyError::ModuleNotFound`],
    /// [`KeyError::TokenNotFound`] or [`KeyError::WrongPin`].
    pub fn open(config: Pkcs11Config) -> Result<Self> {
        let module_err = |e: CkError| KeyError::ModuleNotFound {
            path: config.module_path.clone(),
            reason: e.to_string(),
        };
        let ctx = Pkcs11::new(&config.module_path).map_err(module_err)?;
        pool::initialize(&ctx).map_err(|e| KeyError::Unavailable {
            reason: format!("C_Initialize: {e}"),
        })?;
        let slot = pool::find_slot(&ctx, &config.token_label)
            .map_err(|e| KeyError::Unavailable {
                reason: format!("listing tokens: {e}"),
            })?
            .ok_or_else(|| KeyError::TokenNotFound {
                label: config.token_label.clone(),
            })?;
        let backend = Pkcs11Backend {
            module_path: config.module_path,
            pool: SessionPool::new(
                ctx,
                config.token_label,
                config.pin,
                config.max_idle_sessions.max(1),
                config.reinitialize_on_token_loss,
                slot,
            ),
            rng: SystemRandom::new(),
            handles: RwLock::new((0, HashMap::new())),
        };
        backend.run(|_| Ok(()))?;
        Ok(backend)
    }

    /// The module path this backend loaded.
    pub fn module_path(&self) -> &Path {
        &self.module_path
    }

    /// The token label.
    pub fn token_label(&self) -> &str {
        self.pool.token_label()
    }

    /// The loaded module, for diagnostics and benchmarks that need to talk
    /// to the token directly.
    pub fn context(&self) -> &Pkcs11 {
        self.pool.context()
    }

    /// `C_Login` calls made so far. After the token refuses the PIN once,
    /// this stops growing: the backend answers `WrongPin` without trying
    /// again, so a changed PIN cannot make the service lock the token.
    pub fn login_attempts(&self) -> u64 {
        self.pool.login_attempts()
    }

    /// Number of idle pooled sessions.
    pub fn idle_sessions(&self) -> usize {
        self.pool.idle_count()
    }

    /// Asks the token whether it is present and ours (`C_GetSlotInfo`,
    /// `C_GetTokenInfo`),
    /// recovering like any operation. Meant for readiness probes, so that a
    /// lost HSM shows before a signature is needed. Errors are
    /// [`KeyError::Unavailable`], i.e. retryable.
    pub fn check_health(&self) -> Result<()> {
        self.run(|s| {
            let slot = ck_ok(s.get_session_info())?.slot_id();
            let ctx = self.pool.context();
            // C_GetSlotList and C_GetSlotInfo are where modules look for
            // token removal (SoftHSM2 rechecks its token directories in
            // C_GetSlotList).
            if !ck_ok(ctx.get_slots_with_token())?.contains(&slot) {
                return Err(OpError::TokenGone);
            }
            match ctx.get_slot_info(slot) {
                Ok(info) if info.token_present() => {}
                _ => return Err(OpError::TokenGone),
            }
            match ctx.get_token_info(slot) {
                Ok(t) if t.label().trim_end() == self.pool.token_label() => Ok(()),
                _ => Err(OpError::TokenGone),
            }
        })
    }

    /// Runs `op` on a pooled session; on a connection-class error resets the
    /// pool and retries once; a second such error is `Unavailable`.
    fn run<T>(&self, op: impl Fn(&Session) -> std::result::Result<T, OpError>) -> Result<T> {
        let mut last = None;
        for _attempt in 0..2 {
            let lease = match self.pool.checkout() {
                Ok(l) => l,
                Err(e) if pool::is_connection_error(&e) => {
                    // Checkout failed before we had a session: the slot or
                    // library is gone. Reset so the next attempt looks again.
                    self.pool.reset(self.pool.generation(), false);
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(self.classify(e)),
            };
            match op(&lease.session) {
                Ok(v) => {
                    self.pool.checkin(lease);
                    return Ok(v);
                }
                Err(e) if pool::is_connection_error(&e) => {
                    let generation = lease.generation();
                    let survive = pool::handles_survive(&e);
                    if survive {
                        drop(lease.session);
                    } else {
                        lease.discard();
                    }
                    self.pool.reset(generation, survive);
                    last = Some(e);
                }
                Err(e) => {
                    self.pool.checkin(lease);
                    return Err(self.classify(e));
                }
            }
        }
        Err(KeyError::Unavailable {
            reason: last
                .map(|e| pool::describe(&e, self.pool.token_label()))
                .unwrap_or_else(|| "no session".to_owned()),
        })
    }

    fn classify(&self, e: OpError) -> KeyError {
        match e {
            OpError::Key(k) => k,
            OpError::Ck(CkError::Pkcs11(rv, f)) => KeyError::Device {
                function: f.to_string(),
                code: format!("{rv:?}"),
            },
            other => KeyError::Unavailable {
                reason: pool::describe(&other, self.pool.token_label()),
            },
        }
    }

    fn ck_id<'a>(&self, key: &'a KeyRef) -> Result<&'a [u8]> {
        match key.pkcs11_id() {
            Some((token, id)) if token == self.pool.token_label() => Ok(id),
            _ => Err(KeyError::ForeignKeyRef {
                key_ref: key.to_string(),
                backend: "pkcs11",
            }),
        }
    }

    fn cached_handle(&self, id: &[u8]) -> Option<KeyHandle> {
        let guard = self.handles.read().unwrap_or_else(PoisonError::into_inner);
        if guard.0 != self.pool.generation() {
            return None;
        }
        guard.1.get(id).copied()
    }

    fn remember_handle(&self, id: &[u8], handle: KeyHandle) {
        let generation = self.pool.generation();
        let mut guard = self.handles.write().unwrap_or_else(PoisonError::into_inner);
        if guard.0 != generation {
            *guard = (generation, HashMap::new());
        }
        guard.1.insert(id.to_vec(), handle);
    }

    fn forget_handle(&self, id: &[u8]) {
        self.handles
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .remove(id);
    }

    /// Decides what "no such object" means. Only a token that still answers
    /// with our label, on a logged-in session, is trusted to say a key does
    /// not exist; otherwise the connection is treated as broken, so the
    /// caller gets a reconnect and then a retryable error. (SoftHSM2, for
    /// one, keeps sessions open but shows no objects when its token
    /// directory disappears.)
    fn missing(&self, session: &Session, key: &KeyRef) -> OpError {
        let info = match session.get_session_info() {
            Ok(info) => info,
            Err(e) => return OpError::Ck(e),
        };
        if matches!(
            info.session_state(),
            SessionState::RoPublic | SessionState::RwPublic
        ) {
            return OpError::LoggedOut;
        }
        match self.pool.context().get_token_info(info.slot_id()) {
            Ok(t) if t.label().trim_end() == self.pool.token_label() => {
                OpError::Key(KeyError::KeyNotFound {
                    key_ref: key.to_string(),
                })
            }
            _ => OpError::TokenGone,
        }
    }

    fn find_object(
        session: &Session,
        class: ObjectClass,
        id: &[u8],
    ) -> std::result::Result<Option<ObjectHandle>, OpError> {
        let found = ck_ok(session.find_objects(&[
            Attribute::Class(class),
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
        ]))?;
        Ok(found.into_iter().next())
    }

    fn key_spec_of(
        session: &Session,
        handle: ObjectHandle,
    ) -> std::result::Result<KeySpec, OpError> {
        let attrs = ck_ok(session.get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::Modulus,
            ],
        ))?;
        let mut key_type = None;
        let mut params = None;
        let mut modulus_len = None;
        for a in attrs {
            match a {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::Modulus(m) => {
                    modulus_len = Some(m.iter().skip_while(|b| **b == 0).count())
                }
                _ => {}
            }
        }
        let unsupported = || {
            OpError::Key(KeyError::MalformedPublicKey {
                reason: "the token holds a key type Tuaton does not use",
            })
        };
        let spec = match (key_type, params.as_deref(), modulus_len) {
            (Some(t), Some(p), _) if t == KeyType::EC && p == der::OID_P256 => KeySpec::EcP256,
            (Some(t), Some(p), _) if t == KeyType::EC && p == der::OID_P384 => KeySpec::EcP384,
            (Some(t), Some(_), _) if t == KeyType::EC_EDWARDS => KeySpec::Ed25519,
            (Some(t), _, Some(256)) if t == KeyType::RSA => KeySpec::Rsa2048,
            (Some(t), _, Some(384)) if t == KeyType::RSA => KeySpec::Rsa3072,
            (Some(t), _, Some(512)) if t == KeyType::RSA => KeySpec::Rsa4096,
            _ => return Err(unsupported()),
        };
        Ok(spec)
    }

    /// Finds the private key for `id`, from the cache or the token.
    fn private_key(
        &self,
        session: &Session,
        key: &KeyRef,
        id: &[u8],
    ) -> std::result::Result<KeyHandle, OpError> {
        if let Some(h) = self.cached_handle(id) {
            return Ok(h);
        }
        let private = match Self::find_object(session, ObjectClass::PRIVATE_KEY, id)? {
            Some(h) => h,
            None => return Err(self.missing(session, key)),
        };
        let handle = KeyHandle {
            private,
            spec: Self::key_spec_of(session, private)?,
        };
        self.remember_handle(id, handle);
        Ok(handle)
    }

    /// What [`Self::sign_once`] signs: a message, which the mechanism (or
    /// this process, for ECDSA) hashes, or a digest computed elsewhere.
    fn sign_once(
        &self,
        session: &Session,
        key: &KeyRef,
        id: &[u8],
        alg: SignatureAlgorithm,
        format: SignatureFormat,
        data: Input<'_>,
    ) -> std::result::Result<Vec<u8>, OpError> {
        let handle = self.private_key(session, key, id)?;
        crate::algorithm::check_key(alg, handle.spec)?;
        let pss = PkcsPssParams {
            hash_alg: MechanismType::SHA256,
            mgf: PkcsMgfType::MGF1_SHA256,
            s_len: 32.into(),
        };
        let digest;
        let (mechanism, input): (Mechanism<'_>, &[u8]) = match (alg, data) {
            // A digest computed elsewhere goes to CKM_ECDSA as it is.
            (SignatureAlgorithm::Es256 | SignatureAlgorithm::Es384, Input::Digest(d)) => {
                (Mechanism::Ecdsa, d)
            }
            (_, Input::Digest(_)) => {
                return Err(OpError::Key(KeyError::AlgorithmNotSupportedHere {
                    alg,
                    what: "digest signing",
                }));
            }
            (_, Input::Message(data)) => match alg {
                SignatureAlgorithm::Es256 => {
                    digest = ring::digest::digest(&ring::digest::SHA256, data);
                    (Mechanism::Ecdsa, digest.as_ref())
                }
                SignatureAlgorithm::Es384 => {
                    digest = ring::digest::digest(&ring::digest::SHA384, data);
                    (Mechanism::Ecdsa, digest.as_ref())
                }
                SignatureAlgorithm::EdDsa => (
                    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    data,
                ),
                SignatureAlgorithm::Rs256 => (Mechanism::Sha256RsaPkcs, data),
                SignatureAlgorithm::Ps256 => (Mechanism::Sha256RsaPkcsPss(pss), data),
            },
        };
        let sig = match session.sign(&mechanism, handle.private, input) {
            Ok(sig) => sig,
            Err(CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _)) => {
                // Destroyed elsewhere since we cached the handle, or the
                // token lost its objects or our login.
                self.forget_handle(id);
                return Err(self.missing(session, key));
            }
            Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => {
                return Err(OpError::Key(KeyError::MechanismUnavailable {
                    mechanism: format!("{:?}", mechanism.mechanism_type()),
                    spec: handle.spec,
                }));
            }
            Err(e) => return Err(OpError::Ck(e)),
        };
        if alg.is_ecdsa() && format == SignatureFormat::Der {
            return der::ecdsa_raw_to_der(&sig).ok_or(OpError::Key(KeyError::Crypto {
                what: "ECDSA DER encoding",
            }));
        }
        Ok(sig)
    }

    fn templates(
        spec: KeySpec,
        id: &[u8],
        label: &str,
    ) -> (Mechanism<'static>, Vec<Attribute>, Vec<Attribute>) {
        let common = |private: bool| {
            vec![
                Attribute::Token(true),
                Attribute::Private(private),
                Attribute::Id(id.to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
            ]
        };
        let mut public = common(false);
        public.push(Attribute::Verify(true));
        let mut private = common(true);
        private.extend([
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ]);
        let mechanism = match spec {
            KeySpec::EcP256 | KeySpec::EcP384 => {
                let oid = if spec == KeySpec::EcP256 {
                    der::OID_P256
                } else {
                    der::OID_P384
                };
                public.push(Attribute::EcParams(oid.to_vec()));
                public.push(Attribute::KeyType(KeyType::EC));
                private.push(Attribute::KeyType(KeyType::EC));
                Mechanism::EccKeyPairGen
            }
            KeySpec::Ed25519 => {
                public.push(Attribute::EcParams(der::OID_ED25519.to_vec()));
                public.push(Attribute::KeyType(KeyType::EC_EDWARDS));
                private.push(Attribute::KeyType(KeyType::EC_EDWARDS));
                Mechanism::EccEdwardsKeyPairGen
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                let bits = spec.rsa_bits().unwrap_or(2048) as u64;
                public.push(Attribute::ModulusBits(bits.into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                public.push(Attribute::KeyType(KeyType::RSA));
                private.push(Attribute::KeyType(KeyType::RSA));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        (mechanism, public, private)
    }

    fn read_public(
        &self,
        session: &Session,
        key: &KeyRef,
        id: &[u8],
        spec: KeySpec,
    ) -> std::result::Result<PublicKey, OpError> {
        let handle = match Self::find_object(session, ObjectClass::PUBLIC_KEY, id)? {
            Some(h) => h,
            None => return Err(self.missing(session, key)),
        };
        let attrs = ck_ok(session.get_attributes(
            handle,
            &[
                AttributeType::EcPoint,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        ))?;
        let (mut point, mut n, mut e) = (None, None, None);
        for a in attrs {
            match a {
                Attribute::EcPoint(p) => point = Some(p),
                Attribute::Modulus(m) => n = Some(m),
                Attribute::PublicExponent(x) => e = Some(x),
                _ => {}
            }
        }
        let malformed = || {
            OpError::Key(KeyError::MalformedPublicKey {
                reason: "token returned an unexpected public key encoding",
            })
        };
        let raw = match spec {
            KeySpec::EcP256 | KeySpec::EcP384 | KeySpec::Ed25519 => {
                let expected = match spec {
                    KeySpec::EcP256 => 65,
                    KeySpec::EcP384 => 97,
                    _ => 32,
                };
                let p = point.ok_or_else(malformed)?;
                der::unwrap_octet_string(&p, expected)
                    .ok_or_else(malformed)?
                    .to_vec()
            }
            _ => der::rsa_public_key(&n.ok_or_else(malformed)?, &e.ok_or_else(malformed)?),
        };
        PublicKey::from_raw(spec, raw).map_err(OpError::Key)
    }
}

impl KeyBackend for Pkcs11Backend {
    fn check_health(&self) -> Result<()> {
        Pkcs11Backend::check_health(self)
    }

    fn generate(&self, spec: KeySpec, label: &str) -> Result<KeyRef> {
        check_label(label)?;
        let mut id = [0u8; 16];
        self.rng.fill(&mut id).map_err(|_| KeyError::Crypto {
            what: "random key id",
        })?;
        let (mechanism, public, private) = Self::templates(spec, &id, label);
        self.run(
            |s| match s.generate_key_pair(&mechanism, &public, &private) {
                Ok(_) => Ok(()),
                Err(CkError::Pkcs11(RvError::MechanismInvalid | RvError::CurveNotSupported, _)) => {
                    Err(OpError::Key(KeyError::MechanismUnavailable {
                        mechanism: format!("{:?}", mechanism.mechanism_type()),
                        spec,
                    }))
                }
                Err(e) => Err(OpError::Ck(e)),
            },
        )?;
        Ok(KeyRef::Pkcs11 {
            token: self.pool.token_label().to_owned(),
            id: id.to_vec(),
            object: Some(label.to_owned()),
        })
    }

    fn public_key(&self, key: &KeyRef) -> Result<PublicKey> {
        let id = self.ck_id(key)?;
        self.run(|s| {
            let handle = self.private_key(s, key, id)?;
            self.read_public(s, key, id, handle.spec)
        })
    }

    fn sign(
        &self,
        key: &KeyRef,
        alg: SignatureAlgorithm,
        format: SignatureFormat,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let id = self.ck_id(key)?;
        self.run(|s| self.sign_once(s, key, id, alg, format, Input::Message(data)))
    }

    /// ECDSA with `CKM_ECDSA` over the digest given.
    fn sign_digest(
        &self,
        key: &KeyRef,
        alg: SignatureAlgorithm,
        format: SignatureFormat,
        digest: &[u8],
    ) -> Result<Vec<u8>> {
        crate::backend::check_digest(alg, digest, "the PKCS#11 backend's digest signing")?;
        let id = self.ck_id(key)?;
        self.run(|s| self.sign_once(s, key, id, alg, format, Input::Digest(digest)))
    }

    fn destroy(&self, key: &KeyRef) -> Result<()> {
        let id = self.ck_id(key)?;
        self.forget_handle(id);
        self.run(|s| {
            let mut destroyed = false;
            for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                for handle in ck_ok(s.find_objects(&[
                    Attribute::Class(class),
                    Attribute::Token(true),
                    Attribute::Id(id.to_vec()),
                ]))? {
                    ck_ok(s.destroy_object(handle))?;
                    destroyed = true;
                }
            }
            if destroyed {
                Ok(())
            } else {
                Err(self.missing(s, key))
            }
        })
    }

    fn name(&self) -> &'static str {
        "pkcs11"
    }
}

impl std::fmt::Debug for Pkcs11Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Backend")
            .field("module_path", &self.module_path)
            .field("token_label", &self.pool.token_label())
            .field("pin", &"[redacted]")
            .field("idle_sessions", &self.pool.idle_count())
            .finish()
    }
}

/// The input of one signature.
#[derive(Clone, Copy)]
enum Input<'a> {
    /// The message itself.
    Message(&'a [u8]),
    /// Its digest, computed elsewhere.
    Digest(&'a [u8]),
}
