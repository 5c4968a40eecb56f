//! Key custody for the running service: the key backend the settings name,
//! generating keys for a rotation (asked by an operator or due on the
//! configured schedule), and the public keys relying parties fetch.
//!
//! Decisions about the lifecycle (may this key activate, retire, be
//! destroyed?) are made in `tuaton_store::keys`; this module joins them to
//! a [`KeyBackend`], which the store crate knows nothing about.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tuaton_keys::{
    KeyBackend, KeyError, KeyRef, KeySpec, MasterKey, Pin, Pkcs11Backend, Pkcs11Config,
    SignatureAlgorithm, SoftwareBackend,
};
use tuaton_store::Store;
use tuaton_store::keys::{self, KeyPurpose, KeysError, ManagedKey, RotationPlan};

/// Environment variable: the software backend's master key, hex or base64.
pub const ENV_MASTER_KEY: &str = "TUATON_MASTER_KEY";
/// Environment variable: the token's user PIN.
pub const ENV_PKCS11_PIN: &str = "TUATON_PKCS11_PIN";
/// The development master key inside the development keys directory.
pub const DEV_MASTER_KEY: &str = "master.key";

/// Where a secret is read from when the backend opens. Never a value in the
/// settings themselves, so settings can be printed and passed around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file readable only by the service.
    File(PathBuf),
    /// An environment variable of the process.
    Env(&'static str),
}

/// The key backend the settings configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBackendSettings {
    /// `--dev`: software keys in `DATA_DIR/keys` sealed under the development
    /// master key (`TUATON_DEV_KEYS_DIR`/master.key, made by `tuaton dev init`).
    Development {
        /// The development master key file.
        master_key_file: PathBuf,
    },
    /// Software keys in `DATA_DIR/keys` sealed under a production master key
    /// (`TUATON_MASTER_KEY_FILE`, or `TUATON_MASTER_KEY`).
    Software {
        /// Where the master key is.
        master_key: SecretSource,
    },
    /// Keys on a PKCS#11 token (`TUATON_PKCS11_MODULE`, `TUATON_PKCS11_TOKEN`,
    /// and `TUATON_PKCS11_PIN_FILE` or `TUATON_PKCS11_PIN`).
    Pkcs11 {
        /// The module (shared library).
        module: PathBuf,
        /// The token label.
        token: String,
        /// Where the user PIN is.
        pin: SecretSource,
    },
    /// Nothing configured: commands that need keys refuse, naming the settings.
    Unconfigured,
}

/// The key-backend settings as they appear in the file and environment,
/// before the choice between them is made.
#[derive(Debug, Default)]
pub struct KeyBackendInputs {
    /// `TUATON_MASTER_KEY_FILE`.
    pub master_key_file: Option<PathBuf>,
    /// Whether `TUATON_MASTER_KEY` is set.
    pub master_key_in_env: bool,
    /// `TUATON_PKCS11_MODULE`.
    pub pkcs11_module: Option<PathBuf>,
    /// `TUATON_PKCS11_TOKEN`.
    pub pkcs11_token: Option<String>,
    /// `TUATON_PKCS11_PIN_FILE`.
    pub pkcs11_pin_file: Option<PathBuf>,
    /// Whether `TUATON_PKCS11_PIN` is set.
    pub pkcs11_pin_in_env: bool,
}

impl KeyBackendInputs {
    /// Chooses the backend; a contradictory configuration is refused with a
    /// sentence naming the settings (never a secret).
    pub fn choose(self, dev: bool, dev_keys_dir: &Path) -> Result<KeyBackendSettings, String> {
        let pkcs11 = self.pkcs11_module.is_some()
            || self.pkcs11_token.is_some()
            || self.pkcs11_pin_file.is_some()
            || self.pkcs11_pin_in_env;
        let soft = self.master_key_file.is_some() || self.master_key_in_env;
        if dev {
            if pkcs11 || soft {
                return Err(
                    "--dev uses the development master key, but a production key backend is configured \
                     too (TUATON_MASTER_KEY*, TUATON_PKCS11_*); leave out --dev or unset them"
                        .into(),
                );
            }
            return Ok(KeyBackendSettings::Development {
                master_key_file: dev_keys_dir.join(DEV_MASTER_KEY),
            });
        }
        if pkcs11 && soft {
            return Err(
                "both a PKCS#11 token (TUATON_PKCS11_*) and a software master key (TUATON_MASTER_KEY*) \
                 are configured; set only one"
                    .into(),
            );
        }
        if pkcs11 {
            let module = self
                .pkcs11_module
                .ok_or("TUATON_PKCS11_MODULE is not set (path of the PKCS#11 module)".to_owned())?;
            let token = self
                .pkcs11_token
                .ok_or("TUATON_PKCS11_TOKEN is not set (label of the token)".to_owned())?;
            let pin = match (self.pkcs11_pin_file, self.pkcs11_pin_in_env) {
                (Some(file), _) => SecretSource::File(file),
                (None, true) => SecretSource::Env(ENV_PKCS11_PIN),
                (None, false) => {
                    return Err("TUATON_PKCS11_PIN_FILE (or TUATON_PKCS11_PIN) is not set (the token's user PIN)".into());
                }
            };
            return Ok(KeyBackendSettings::Pkcs11 { module, token, pin });
        }
        match (self.master_key_file, self.master_key_in_env) {
            (Some(_), true) => Err(
                "both TUATON_MASTER_KEY_FILE and TUATON_MASTER_KEY are set; set only one".into(),
            ),
            (Some(file), false) => Ok(KeyBackendSettings::Software {
                master_key: SecretSource::File(file),
            }),
            (None, true) => Ok(KeyBackendSettings::Software {
                master_key: SecretSource::Env(ENV_MASTER_KEY),
            }),
            (None, false) => Ok(KeyBackendSettings::Unconfigured),
        }
    }
}

/// Why the key backend could not be opened, or custody could not act.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    /// No backend is configured. Operator's configuration.
    #[error(
        "no key backend is configured: set TUATON_MASTER_KEY_FILE (software keys under {key_dir}), \
         or TUATON_PKCS11_MODULE, TUATON_PKCS11_TOKEN and TUATON_PKCS11_PIN_FILE (an HSM), \
         or use --dev for development keys"
    )]
    NotConfigured {
        /// Where software keys would live.
        key_dir: String,
    },
    /// The development master key is missing or unreadable. Developer's setup.
    #[error("{source} (run `tuaton dev init` to create it, or set TUATON_DEV_KEYS_DIR)")]
    DevelopmentKey {
        /// Why.
        #[source]
        source: KeyError,
    },
    /// A production master key that is the development key published in
    /// the repository. Operator's configuration.
    #[error(
        "the configured master key is the development key published in keys-dev/; it is accepted only with --dev (make a key of your own, docs/operators/keys.md)"
    )]
    PublishedDevelopmentKey,
    /// The backend refused to open. Operator's configuration or the HSM.
    #[error("cannot open the {backend} key backend: {source}")]
    Open {
        /// Which backend.
        backend: &'static str,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// The backend failed on a key. The HSM or the key store.
    #[error("key {id}: {source}")]
    Key {
        /// The managed key's id.
        id: String,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// A blocking backend call did not finish (the worker panicked or the
    /// runtime is stopping). A bug or shutdown.
    #[error("a key backend call did not finish")]
    Interrupted,
    /// No key signs for the purpose now. Operator's setup.
    #[error("no {} key is active; an operator runs `tuaton keys rotate {}` (docs/operators/keys.md)", .0.as_str(), .0.as_str())]
    NoActiveKey(KeyPurpose),
    /// The active key signs with another algorithm than the one asked for.
    /// Operator's setup or the client's registration.
    #[error("the active {} key signs with {}, but {} is asked for", purpose.as_str(), active.jose_name(), wanted.jose_name())]
    AlgorithmUnavailable {
        /// The purpose.
        purpose: KeyPurpose,
        /// What was asked for.
        wanted: SignatureAlgorithm,
        /// What the active key does.
        active: SignatureAlgorithm,
    },
    /// The CA hierarchy has no current certificate for an authority.
    /// Operator's setup.
    #[error(
        "the {0} has no current certificate; an operator runs `tuaton pki init` (docs/operators/pki.md)"
    )]
    NoCertificate(&'static str),
    /// A certificate could not be made. The backend or the settings.
    #[error("making a certificate: {0}")]
    Pki(tuaton_pki::PkiError),
    /// The time-stamping authority could not be set up from its stored
    /// key and certificate. The store or the backend.
    #[error("the time-stamping authority: {0}")]
    TimeStamp(String),
    /// The time-stamping authority gave no time stamp for a signature (an
    /// external one down, slow, or answering wrongly). Trying again later
    /// may work.
    #[error("no time stamp: {0}")]
    TimeStampUnavailable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tuaton_store::StoreError),
}

impl CustodyError {
    /// The stable code a front door answers with.
    pub fn code(&self) -> tuaton_core::ErrorCode {
        match self {
            CustodyError::Key { source, .. } | CustodyError::Open { source, .. } => source.code(),
            CustodyError::Interrupted => tuaton_core::ErrorCode::KeyBackendUnavailable,
            CustodyError::NoActiveKey(_)
            | CustodyError::AlgorithmUnavailable { .. }
            | CustodyError::NoCertificate(_) => tuaton_core::ErrorCode::KeysUnavailable,
            CustodyError::Store(s) => s.code(),
            CustodyError::Pki(tuaton_pki::PkiError::Key(k)) => k.code(),
            CustodyError::Pki(_) | CustodyError::TimeStamp(_) => {
                tuaton_core::ErrorCode::InternalError
            }
            CustodyError::TimeStampUnavailable(_) => tuaton_core::ErrorCode::TimeStampUnavailable,
            CustodyError::NotConfigured { .. }
            | CustodyError::DevelopmentKey { .. }
            | CustodyError::PublishedDevelopmentKey => tuaton_core::ErrorCode::InternalError,
        }
    }

    /// Whether trying again later may work (HSM away, database busy).
    pub fn is_retryable(&self) -> bool {
        match self {
            CustodyError::Key { source, .. } | CustodyError::Open { source, .. } => {
                source.is_retryable()
            }
            CustodyError::Pki(tuaton_pki::PkiError::Key(k)) => k.is_retryable(),
            CustodyError::Store(_)
            | CustodyError::Interrupted
            | CustodyError::TimeStampUnavailable(_) => true,
            CustodyError::Pki(_) | CustodyError::TimeStamp(_) | CustodyError::NoCertificate(_) => {
                false
            }
            CustodyError::NoActiveKey(_)
            | CustodyError::AlgorithmUnavailable { .. }
            | CustodyError::NotConfigured { .. }
            | CustodyError::DevelopmentKey { .. }
            | CustodyError::PublishedDevelopmentKey => false,
        }
    }
}

/// The fingerprint ([`MasterKey::fingerprint`]) of the development master
/// key committed in the repository's `keys-dev/`: public, so refused as a
/// production master key. A test keeps it in step with the file.
pub const PUBLISHED_DEVELOPMENT_KEY: &str =
    "282ded5001c7bf572c157d1ca9fb08d3e24ebf0ea425c397a972881c09270345";

/// Opens the key backend `backend` describes, with software keys under `data_dir/keys`.
pub fn open_backend(
    backend: &KeyBackendSettings,
    data_dir: &Path,
) -> Result<Arc<dyn KeyBackend>, CustodyError> {
    let key_dir = data_dir.join("keys");
    let soft = |master: MasterKey| -> Result<Arc<dyn KeyBackend>, CustodyError> {
        let b = SoftwareBackend::open(&key_dir, master).map_err(|source| CustodyError::Open {
            backend: "software",
            source,
        })?;
        Ok(Arc::new(b))
    };
    let secret_err = |source| CustodyError::Open {
        backend: "configured",
        source,
    };
    match backend {
        KeyBackendSettings::Development { master_key_file } => {
            let master = MasterKey::from_file(master_key_file)
                .map_err(|source| CustodyError::DevelopmentKey { source })?;
            soft(master)
        }
        KeyBackendSettings::Software { master_key } => {
            let master = match master_key {
                SecretSource::File(f) => MasterKey::from_file(f),
                SecretSource::Env(v) => MasterKey::from_env(v),
            }
            .map_err(secret_err)?;
            if master.fingerprint() == PUBLISHED_DEVELOPMENT_KEY {
                return Err(CustodyError::PublishedDevelopmentKey);
            }
            soft(master)
        }
        KeyBackendSettings::Pkcs11 { module, token, pin } => {
            let pin = match pin {
                SecretSource::File(f) => Pin::from_file(f),
                SecretSource::Env(v) => Pin::from_env(v),
            }
            .map_err(secret_err)?;
            let b = Pkcs11Backend::open(Pkcs11Config::new(module.clone(), token.clone(), pin))
                .map_err(|source| CustodyError::Open {
                    backend: "PKCS#11",
                    source,
                })?;
            Ok(Arc::new(b))
        }
        KeyBackendSettings::Unconfigured => Err(CustodyError::NotConfigured {
            key_dir: key_dir.display().to_string(),
        }),
    }
}

/// Runs a blocking backend call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
) -> Result<Result<T, KeyError>, CustodyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| CustodyError::Interrupted)
}

/// The key type generated for an algorithm: the only one for EC and EdDSA,
/// RSA-3072 for RS256/PS256 (NIST's recommendation past 2030).
pub fn key_spec(alg: SignatureAlgorithm) -> KeySpec {
    match alg {
        SignatureAlgorithm::Rs256 | SignatureAlgorithm::Ps256 => KeySpec::Rsa3072,
        other => other
            .key_specs()
            .first()
            .copied()
            .unwrap_or(KeySpec::EcP256),
    }
}

/// Why [`rotate_key`] did nothing.
#[derive(Debug)]
pub enum RotateError {
    /// The lifecycle refused (a rotation is already pending); nothing was generated.
    Refused(String),
    /// Another process rotated the purpose meanwhile; the generated key was
    /// destroyed again. Look again.
    Raced(String),
    /// The database or the backend failed.
    Failed(String),
    /// A scheduled rotation is not due (it was done meanwhile, perhaps by
    /// another process); nothing was generated.
    NotDue,
}

/// Who asks for a rotation.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    /// An operator: rotate now.
    Operator,
    /// A schedule rotating every `every`: rotate only if due by the keys as
    /// they are when the rotation is planned.
    Schedule {
        /// The rotation period.
        every: Duration,
    },
}

/// Generates a key for `purpose` in `backend` and records it as pending,
/// then applies whatever is due now (the first key of a purpose activates at
/// once). Refusals come back before anything is generated; if recording
/// fails (another process won a race, the database failed), the generated
/// material is destroyed again. For a [`Trigger::Schedule`], whether the
/// rotation is due is decided on the same reading of the keys as the plan,
/// so a process that finds another's rotation already made does nothing.
#[allow(clippy::too_many_arguments)]
pub async fn rotate_key(
    store: &Store,
    backend: Arc<dyn KeyBackend>,
    purpose: KeyPurpose,
    alg: SignatureAlgorithm,
    prepublish: Duration,
    now: OffsetDateTime,
    actor: &str,
    trigger: Trigger,
) -> Result<(ManagedKey, RotationPlan), RotateError> {
    use RotateError::{Failed, NotDue, Raced, Refused};
    let all = async { keys::list(store.conn().await?.conn()).await }
        .await
        .map_err(|e| Failed(format!("cannot read managed keys: {e}")))?;
    if let Trigger::Schedule { every } = trigger {
        let due = keys::next_scheduled_rotation(purpose, alg, &all, every, prepublish);
        if due.is_none_or(|at| at > now) {
            return Err(NotDue);
        }
    }
    let plan = RotationPlan::new(purpose, alg, &all, now, prepublish)
        .map_err(|e| Refused(e.to_string()))?;
    let label = plan.label(now);
    let gen_backend = backend.clone();
    let key_ref = blocking(move || gen_backend.generate(key_spec(alg), &label))
        .await
        .map_err(|e| Failed(format!("key generation did not finish: {e}")))?
        .map_err(|e| Failed(format!("cannot generate the key: {e}")))?;
    let recorded = async {
        let mut tx = store.begin().await?;
        let key = keys::insert_pending(
            &mut tx,
            &plan.new_key(backend.name(), &key_ref.to_string()),
            now,
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok::<_, KeysError>(key)
    }
    .await;
    let key = match recorded {
        Ok(k) => k,
        Err(e) => {
            // Leave no orphan key behind in the backend.
            let note = match blocking(move || backend.destroy(&key_ref)).await {
                Ok(Ok(())) => "the generated key was destroyed again",
                _ => "the generated key could not be destroyed again",
            };
            let message = format!("{e}; {note}");
            return Err(match e {
                KeysError::PlanStale { .. }
                | KeysError::AlreadyPending { .. }
                | KeysError::Store(tuaton_store::StoreError::Conflict { .. }) => Raced(message),
                e if e.is_refusal() => Refused(message),
                _ => Failed(message),
            });
        }
    };
    keys::tick(store, now).await.map_err(|e| {
        Failed(format!(
            "key {} recorded, but activating it failed: {e}",
            key.id
        ))
    })?;
    let key = async { keys::by_id(store.conn().await?.conn(), &key.id).await }
        .await
        .ok()
        .flatten()
        .unwrap_or(key);
    Ok((key, plan))
}

/// The key of `purpose`'s `alg` line that signs now, made (active at once)
/// when there is none; another process making one at the same moment is
/// no error, its key is used.
pub async fn ensure_active(
    store: &Store,
    backend: &Arc<dyn KeyBackend>,
    purpose: KeyPurpose,
    alg: SignatureAlgorithm,
    now: OffsetDateTime,
) -> Result<ManagedKey, CustodyError> {
    if let Some(k) = keys::signing_key_for(store.conn().await?.conn(), purpose, alg, now).await? {
        return Ok(k);
    }
    let made = rotate_key(
        store,
        backend.clone(),
        purpose,
        alg,
        Duration::ZERO,
        now,
        "system",
        Trigger::Operator,
    )
    .await;
    if let Err(RotateError::Failed(reason)) = made {
        return Err(CustodyError::Key {
            id: purpose.as_str().to_owned(),
            source: KeyError::Unavailable { reason },
        });
    }
    keys::signing_key_for(store.conn().await?.conn(), purpose, alg, now)
        .await?
        .ok_or(CustodyError::Interrupted)
}

/// One purpose rotated unattended: `PURPOSE:ALG:EVERY:PREPUBLISH`, such as
/// `id-token:ES256:90d:2d` (durations in `d`, `h`, `m` or `s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationSchedule {
    /// The purpose rotated.
    pub purpose: KeyPurpose,
    /// The algorithm of each new key.
    pub algorithm: SignatureAlgorithm,
    /// How long each key signs before the next takes over.
    pub every: Duration,
    /// How long each new key is published before it signs.
    pub prepublish: Duration,
}

/// The shortest rotation period accepted: below this, keys would churn
/// faster than relying parties refresh their JWKS.
pub const MIN_ROTATION_PERIOD: Duration = Duration::hours(1);

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit (d, h, m or s)"))?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    let d = match unit {
        "d" => Duration::days(n.min(36_500)),
        "h" => Duration::hours(n.min(876_000)),
        "m" => Duration::minutes(n.min(52_560_000)),
        "s" => Duration::seconds(n),
        _ => return Err(format!("{s:?} has an unknown unit (d, h, m or s)")),
    };
    Ok(d)
}

impl FromStr for RotationSchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let [purpose, alg, every, prepublish] = parts.as_slice() else {
            return Err(format!("{s:?} is not PURPOSE:ALG:EVERY:PREPUBLISH"));
        };
        let purpose: KeyPurpose = purpose.trim().parse().map_err(|e| format!("{e}"))?;
        if purpose.is_per_account() {
            return Err(format!(
                "{purpose} keys belong to one account each and are not rotated by purpose"
            ));
        }
        let algorithm: SignatureAlgorithm = alg
            .trim()
            .parse()
            .map_err(|_| format!("unknown algorithm {:?}", alg.trim()))?;
        let every = parse_duration(every)?;
        let prepublish = parse_duration(prepublish)?;
        if every < MIN_ROTATION_PERIOD {
            return Err(format!("{purpose}: rotating more often than every hour"));
        }
        if prepublish >= every {
            return Err(format!(
                "{purpose}: the pre-publication window must be shorter than the rotation period"
            ));
        }
        Ok(RotationSchedule {
            purpose,
            algorithm,
            every,
            prepublish,
        })
    }
}

/// Parses a comma-separated list of schedules, one per purpose at most.
pub fn parse_schedules(s: &str) -> Result<Vec<RotationSchedule>, String> {
    let mut out: Vec<RotationSchedule> = Vec::new();
    for item in s.split(',').filter(|i| !i.trim().is_empty()) {
        let schedule: RotationSchedule = item.parse()?;
        if out.iter().any(|o| o.purpose == schedule.purpose) {
            return Err(format!("{} is scheduled twice", schedule.purpose));
        }
        out.push(schedule);
    }
    Ok(out)
}

/// Rotates every scheduled purpose that is due at `now`. Several processes
/// may run this at once: the store lets one rotation per purpose through and
/// the others destroy what they generated. Failures are logged and retried
/// at the next round. Returns the keys created.
pub async fn rotate_on_schedule(
    store: &Store,
    backend: &Arc<dyn KeyBackend>,
    schedules: &[RotationSchedule],
    now: OffsetDateTime,
) -> Vec<ManagedKey> {
    let mut created = Vec::new();
    for s in schedules {
        match rotate_key(
            store,
            backend.clone(),
            s.purpose,
            s.algorithm,
            s.prepublish,
            now,
            keys::SYSTEM_ACTOR,
            Trigger::Schedule { every: s.every },
        )
        .await
        {
            Ok((key, _)) => {
                tracing::info!(purpose = %s.purpose, key = %key.id, state = %key.state, "scheduled rotation: key created");
                created.push(key);
            }
            Err(RotateError::NotDue) => {}
            Err(RotateError::Raced(e)) => {
                tracing::debug!(purpose = %s.purpose, reason = %e, "scheduled rotation done by another process");
            }
            Err(RotateError::Refused(e) | RotateError::Failed(e)) => {
                tracing::warn!(purpose = %s.purpose, reason = %e, "scheduled rotation failed; will retry");
            }
        }
    }
    created
}

/// How long a JWKS document is reused before the store is asked again:
/// short enough that every process publishes a change within seconds.
pub const JWKS_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The public keys of a purpose as relying parties fetch them (RFC 7517 JWK
/// Set): every pending, active and retiring key. Public keys never change,
/// so each is read from the backend once; the set itself is re-read from
/// the store at most every [`JWKS_REFRESH`].
pub struct PublishedKeys {
    purpose: KeyPurpose,
    public: Mutex<HashMap<String, Value>>,
    document: Mutex<Option<(Instant, Arc<Value>)>>,
}

impl PublishedKeys {
    /// An empty cache for `purpose`.
    pub fn new(purpose: KeyPurpose) -> Self {
        Self {
            purpose,
            public: Mutex::new(HashMap::new()),
            document: Mutex::new(None),
        }
    }

    /// The current JWK Set.
    pub async fn jwks(
        &self,
        store: &Store,
        backend: &Arc<dyn KeyBackend>,
    ) -> Result<Arc<Value>, CustodyError> {
        if let Some((at, doc)) = self
            .document
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && at.elapsed() < JWKS_REFRESH
        {
            return Ok(doc.clone());
        }
        let published = keys::publishable(store.conn().await?.conn(), self.purpose).await?;
        let mut jwks = Vec::with_capacity(published.len());
        for k in published {
            let cached = self
                .public
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&k.id)
                .cloned();
            let jwk = match cached {
                Some(j) => j,
                None => {
                    let jwk = self.read_public(backend, &k).await?;
                    self.public
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(k.id.clone(), jwk.clone());
                    jwk
                }
            };
            jwks.push(jwk);
        }
        let doc = Arc::new(json!({ "keys": jwks }));
        *self.document.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), doc.clone()));
        Ok(doc)
    }

    async fn read_public(
        &self,
        backend: &Arc<dyn KeyBackend>,
        key: &ManagedKey,
    ) -> Result<Value, CustodyError> {
        let public = public_key_of(backend, key).await?;
        let mut jwk = public.to_jwk(&key.id);
        if let Some(o) = jwk.as_object_mut() {
            o.insert(
                "alg".into(),
                Value::String(key.algorithm.jose_name().into()),
            );
            o.insert("use".into(), Value::String("sig".into()));
        }
        Ok(jwk)
    }
}

/// The public key of the managed key `key`, as `backend` holds it.
pub(crate) async fn public_key_of(
    backend: &Arc<dyn KeyBackend>,
    key: &ManagedKey,
) -> Result<tuaton_keys::PublicKey, CustodyError> {
    let key_err = |source| CustodyError::Key {
        id: key.id.clone(),
        source,
    };
    let key_ref: KeyRef = key.key_ref.parse().map_err(key_err)?;
    let b = backend.clone();
    blocking(move || b.public_key(&key_ref))
        .await?
        .map_err(key_err)
}

/// Checks the backend for a readiness probe, bounded by `within`.
pub async fn check_health(
    backend: &Arc<dyn KeyBackend>,
    within: std::time::Duration,
) -> Result<(), String> {
    let b = backend.clone();
    match tokio::time::timeout(within, blocking(move || b.check_health())).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "the key backend did not answer within {}s",
            within.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dev_key_file() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../keys-dev/master.key")
    }

    #[test]
    fn the_published_development_key_is_refused_outside_dev_mode() {
        let dev = MasterKey::from_file(&dev_key_file()).unwrap();
        assert_eq!(
            dev.fingerprint(),
            PUBLISHED_DEVELOPMENT_KEY,
            "keys-dev/master.key changed: update PUBLISHED_DEVELOPMENT_KEY"
        );
        let data = tempfile::tempdir().unwrap();
        let production = KeyBackendSettings::Software {
            master_key: SecretSource::File(dev_key_file()),
        };
        let refused = open_backend(&production, data.path()).err().unwrap();
        assert!(matches!(refused, CustodyError::PublishedDevelopmentKey));
        assert!(refused.to_string().contains("--dev"));
        // The same key is what --dev is for.
        let development = KeyBackendSettings::Development {
            master_key_file: dev_key_file(),
        };
        assert!(open_backend(&development, data.path()).is_ok());
        // Any other key opens.
        let own = data.path().join("own.key");
        MasterKey::create_file(&own).unwrap();
        let production = KeyBackendSettings::Software {
            master_key: SecretSource::File(own),
        };
        assert!(open_backend(&production, data.path()).is_ok());
    }

    #[test]
    fn schedules_parse_and_refuse_with_a_reason() {
        let s = parse_schedules("id-token:ES256:90d:2d, tsa:ES384:365d:24h").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].purpose, KeyPurpose::IdToken);
        assert_eq!(s[0].every, Duration::days(90));
        assert_eq!(s[1].prepublish, Duration::hours(24));
        assert!(parse_schedules("").unwrap().is_empty());
        for (bad, says) in [
            ("id-token:ES256:90d", "PURPOSE:ALG:EVERY:PREPUBLISH"),
            ("nothing:ES256:90d:1d", "nothing"),
            ("user-signing:ES256:90d:1d", "account"),
            ("id-token:HS256:90d:1d", "unknown algorithm"),
            ("id-token:ES256:90:1d", "no unit"),
            ("id-token:ES256:90w:1d", "unknown unit"),
            ("id-token:ES256:30m:1m", "every hour"),
            ("id-token:ES256:1d:1d", "shorter"),
            ("id-token:ES256:90d:1d,id-token:EdDSA:90d:1d", "twice"),
        ] {
            let e = parse_schedules(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_backend_choice_refuses_contradictions() {
        let dev_dir = Path::new("keys-dev");
        let none = KeyBackendInputs::default();
        assert_eq!(
            none.choose(false, dev_dir).unwrap(),
            KeyBackendSettings::Unconfigured
        );
        assert_eq!(
            KeyBackendInputs::default().choose(true, dev_dir).unwrap(),
            KeyBackendSettings::Development {
                master_key_file: dev_dir.join(DEV_MASTER_KEY)
            }
        );
        let soft_env = || KeyBackendInputs {
            master_key_in_env: true,
            ..Default::default()
        };
        assert!(
            soft_env()
                .choose(true, dev_dir)
                .unwrap_err()
                .contains("--dev")
        );
        let both = KeyBackendInputs {
            pkcs11_module: Some("/usr/lib/softhsm/libsofthsm2.so".into()),
            ..soft_env()
        };
        assert!(
            both.choose(false, dev_dir)
                .unwrap_err()
                .contains("set only one")
        );
        let no_pin = KeyBackendInputs {
            pkcs11_module: Some("/m.so".into()),
            pkcs11_token: Some("t".into()),
            ..Default::default()
        };
        assert!(no_pin.choose(false, dev_dir).unwrap_err().contains("PIN"));
        let hsm = KeyBackendInputs {
            pkcs11_module: Some("/m.so".into()),
            pkcs11_token: Some("t".into()),
            pkcs11_pin_in_env: true,
            ..Default::default()
        };
        assert_eq!(
            hsm.choose(false, dev_dir).unwrap(),
            KeyBackendSettings::Pkcs11 {
                module: "/m.so".into(),
                token: "t".into(),
                pin: SecretSource::Env(ENV_PKCS11_PIN)
            }
        );
    }
}
