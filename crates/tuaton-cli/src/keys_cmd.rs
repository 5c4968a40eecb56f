//! `tuaton keys …`: the key lifecycle for operators.
//!
//! Every decision (may this key be retired? destroyed? is a rotation already
//! pending?) is made in `tuaton_store::keys`; this module parses arguments,
//! builds the key backend from the environment ([`backend_from_env`]),
//! generates and destroys key material, and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use time::{Duration, OffsetDateTime};
use tuaton_keys::{
    KeyBackend, KeyError, KeyRef, KeySpec, MasterKey, Pin, Pkcs11Backend, Pkcs11Config,
    SignatureAlgorithm, SoftwareBackend,
};
use tuaton_store::Store;
use tuaton_store::keys::{self, KeyPurpose, KeyState, KeysError, ManagedKey, RotationPlan};

/// Environment variable: the software backend's master key, hex or base64.
pub const ENV_MASTER_KEY: &str = "TUATON_MASTER_KEY";
/// Environment variable: a file holding the software backend's master key.
pub const ENV_MASTER_KEY_FILE: &str = "TUATON_MASTER_KEY_FILE";
/// Environment variable: path of the PKCS#11 module.
pub const ENV_PKCS11_MODULE: &str = "TUATON_PKCS11_MODULE";
/// Environment variable: label of the PKCS#11 token.
pub const ENV_PKCS11_TOKEN: &str = "TUATON_PKCS11_TOKEN";
/// Environment variable: a file holding the token's user PIN.
pub const ENV_PKCS11_PIN_FILE: &str = "TUATON_PKCS11_PIN_FILE";
/// Environment variable: the token's user PIN.
pub const ENV_PKCS11_PIN: &str = "TUATON_PKCS11_PIN";

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// List managed keys with their purpose, state and windows.
    ///
    /// Needs only the database, not the key backend.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Generate the next key for a purpose and pre-publish it.
    ///
    /// The new key is published (pending) at once and starts signing after
    /// the pre-publication window; the key it replaces becomes retiring and
    /// stays published until everything it signed has expired. `tuaton serve`
    /// makes those transitions on its own; this command makes the ones due
    /// now. With no active key for the purpose the new key signs at once.
    ///
    /// Exit 0 when the key was created, 1 when refused (a rotation of the
    /// purpose is already pending), 64 when the command could not run.
    Rotate {
        /// What the key is for: id-token, document-ca, signer, tsa, ocsp or audit-anchor.
        #[arg(long, value_name = "PURPOSE")]
        purpose: String,
        /// Signature algorithm (JOSE name): ES256, ES384, EdDSA, RS256 or PS256.
        #[arg(long, value_name = "ALG", default_value = "ES256")]
        alg: String,
        /// Seconds the new key is published before it signs; longer than any
        /// relying party caches the JWKS.
        #[arg(long, value_name = "SECS", default_value_t = 86_400)]
        prepublish: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Stop a key signing (active → retiring) or unpublish it (retiring → retired).
    ///
    /// Retiring an active service key leaves its purpose with no signing
    /// key, so it needs --force --reason (rotate instead). Retiring a
    /// retiring key before everything it signed has expired needs --force
    /// --reason too. Both are written to the audit log.
    ///
    /// Exit 0 when done, 1 when refused, 64 when the command could not run.
    Retire {
        /// The key's id (see `tuaton keys list`).
        id: String,
        #[command(flatten)]
        force: Force,
        #[command(flatten)]
        common: Common,
    },
    /// Destroy a key's material in its backend.
    ///
    /// Refused for the active key and while anything the key signed is still
    /// valid (its verify-until time), unless --force --reason is given (for a
    /// compromised key). The key is marked destroyed first, so nothing signs
    /// with or publishes it any more; if removing the material then fails,
    /// run the command again.
    ///
    /// Exit 0 when done, 1 when refused, 64 when the command could not run.
    Destroy {
        /// The key's id (see `tuaton keys list`).
        id: String,
        #[command(flatten)]
        force: Force,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
pub(crate) struct Common {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Development mode: software keys sealed under keys-dev/master.key.
    #[arg(long)]
    dev: bool,
}

#[derive(Args)]
pub(crate) struct Force {
    /// Override the lifecycle's safety check; needs --reason.
    #[arg(long)]
    force: bool,
    /// Why the override is needed; written to the audit log.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

impl Force {
    /// `Some(reason)` when forced, or a usage error.
    fn reason(&self) -> Result<Option<&str>, String> {
        match (self.force, self.reason.as_deref()) {
            (false, None) => Ok(None),
            (true, Some(r)) if !r.trim().is_empty() => Ok(Some(r)),
            (true, _) => Err("--force needs --reason TEXT (it is written to the audit log)".into()),
            (false, Some(_)) => Err("--reason is only used together with --force".into()),
        }
    }
}

/// Builds the key backend the environment configures. Exactly one of:
///
/// - `dev`: the software backend at `DATA_DIR/keys`, sealed under
///   `keys-dev/master.key` (made by `tuaton dev init`); refused if a
///   production backend is configured too, so production keys are never
///   sealed under the development key;
/// - PKCS#11: `TUATON_PKCS11_MODULE`, `TUATON_PKCS11_TOKEN`, and the PIN from
///   `TUATON_PKCS11_PIN_FILE` (preferred) or `TUATON_PKCS11_PIN`;
/// - software: `DATA_DIR/keys`, master key from `TUATON_MASTER_KEY_FILE` or
///   `TUATON_MASTER_KEY` (hex or base64).
///
/// The error is a sentence for the operator naming the variables; it never
/// holds a secret.
pub fn backend_from_env(data_dir: &Path, dev: bool) -> Result<Arc<dyn KeyBackend>, String> {
    let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    let pkcs11 = [
        ENV_PKCS11_MODULE,
        ENV_PKCS11_TOKEN,
        ENV_PKCS11_PIN_FILE,
        ENV_PKCS11_PIN,
    ]
    .into_iter()
    .any(set);
    let soft = set(ENV_MASTER_KEY) || set(ENV_MASTER_KEY_FILE);
    let key_dir = data_dir.join("keys");
    let soft_backend = |master: MasterKey| -> Result<Arc<dyn KeyBackend>, String> {
        let b = SoftwareBackend::open(&key_dir, master)
            .map_err(|e| format!("cannot open the software key directory: {e}"))?;
        Ok(Arc::new(b))
    };
    if dev {
        if pkcs11 || soft {
            return Err(format!(
                "--dev uses keys-dev/{}, but a production key backend is configured too \
                 (TUATON_MASTER_KEY*, TUATON_PKCS11_*); leave out --dev or unset them",
                crate::dev_cmd::DEV_MASTER_KEY
            ));
        }
        let path = PathBuf::from("keys-dev").join(crate::dev_cmd::DEV_MASTER_KEY);
        let master = MasterKey::from_file(&path)
            .map_err(|e| format!("{e} (run `tuaton dev init` to create it)"))?;
        return soft_backend(master);
    }
    if pkcs11 && soft {
        return Err(
            "both a PKCS#11 token (TUATON_PKCS11_*) and a software master key (TUATON_MASTER_KEY*) \
             are configured; set only one"
                .into(),
        );
    }
    if pkcs11 {
        let var = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
        let module = var(ENV_PKCS11_MODULE).ok_or_else(|| {
            format!("{ENV_PKCS11_MODULE} is not set (path of the PKCS#11 module)")
        })?;
        let token = var(ENV_PKCS11_TOKEN)
            .ok_or_else(|| format!("{ENV_PKCS11_TOKEN} is not set (label of the token)"))?;
        let pin = if let Some(file) = var(ENV_PKCS11_PIN_FILE) {
            Pin::from_file(Path::new(&file)).map_err(|e| e.to_string())?
        } else if set(ENV_PKCS11_PIN) {
            Pin::from_env(ENV_PKCS11_PIN).map_err(|e| e.to_string())?
        } else {
            return Err(format!(
                "{ENV_PKCS11_PIN_FILE} (or {ENV_PKCS11_PIN}) is not set (the token's user PIN)"
            ));
        };
        let b = Pkcs11Backend::open(Pkcs11Config::new(module, token, pin))
            .map_err(|e| format!("cannot open the PKCS#11 token: {e}"))?;
        return Ok(Arc::new(b));
    }
    if set(ENV_MASTER_KEY_FILE) && set(ENV_MASTER_KEY) {
        return Err(format!(
            "both {ENV_MASTER_KEY_FILE} and {ENV_MASTER_KEY} are set; set only one"
        ));
    }
    if let Some(file) = std::env::var_os(ENV_MASTER_KEY_FILE).filter(|s| !s.is_empty()) {
        return soft_backend(MasterKey::from_file(Path::new(&file)).map_err(|e| e.to_string())?);
    }
    if soft {
        return soft_backend(MasterKey::from_env(ENV_MASTER_KEY).map_err(|e| e.to_string())?);
    }
    Err(format!(
        "no key backend is configured: set {ENV_MASTER_KEY_FILE} (software keys under {}), \
         or {ENV_PKCS11_MODULE}, {ENV_PKCS11_TOKEN} and {ENV_PKCS11_PIN_FILE} (an HSM), \
         or use --dev for development keys",
        key_dir.display()
    ))
}

pub(crate) async fn run(config: Option<&Path>, cmd: KeysCommand) -> ExitCode {
    match cmd {
        KeysCommand::List { common } => list(config, &common).await,
        KeysCommand::Rotate {
            purpose,
            alg,
            prepublish,
            common,
        } => rotate(config, &purpose, &alg, prepublish, &common).await,
        KeysCommand::Retire { id, force, common } => retire(config, &id, &force, &common).await,
        KeysCommand::Destroy { id, force, common } => destroy(config, &id, &force, &common).await,
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Prints a refusal and returns exit status 1.
fn refuse(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("refused: {message}");
    ExitCode::from(crate::EXIT_FAILED)
}

fn lifecycle_error(e: KeysError) -> ExitCode {
    if e.is_refusal() {
        refuse(e)
    } else {
        crate::fail(e)
    }
}

fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot encode JSON: {e}"),
    }
}

async fn list(config: Option<&Path>, common: &Common) -> ExitCode {
    let (_, store) = match crate::open(config, common.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let result = keys::list(store.pool()).await;
    store.close().await;
    let all = match result {
        Ok(k) => k,
        Err(e) => return crate::fail(format!("cannot read managed keys: {e}")),
    };
    if common.json {
        print_json(&all);
        return ExitCode::SUCCESS;
    }
    if all.is_empty() {
        println!("no managed keys; create one with `tuaton keys rotate --purpose PURPOSE`");
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<32}  {:<12}  {:<9}  {:<5}  {:<6}  {:<25}  {:<25}",
        "ID", "PURPOSE", "STATE", "ALG", "BACKEND", "SIGNS FROM", "VERIFY UNTIL"
    );
    for k in &all {
        let signs_from = match k.state {
            KeyState::Pending | KeyState::Active => {
                rfc3339(k.activated_at.unwrap_or(k.activate_after))
            }
            _ => "-".to_owned(),
        };
        let verify_until = k
            .verify_until
            .map(rfc3339)
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<32}  {:<12}  {:<9}  {:<5}  {:<6}  {:<25}  {:<25}",
            k.id, k.purpose, k.state, k.algorithm, k.backend, signs_from, verify_until
        );
    }
    ExitCode::SUCCESS
}

/// The key type generated for an algorithm: the only one for EC and EdDSA,
/// RSA-3072 for RS256/PS256 (NIST's recommendation past 2030).
fn key_spec(alg: SignatureAlgorithm) -> KeySpec {
    match alg {
        SignatureAlgorithm::Rs256 | SignatureAlgorithm::Ps256 => KeySpec::Rsa3072,
        other => other
            .key_specs()
            .first()
            .copied()
            .unwrap_or(KeySpec::EcP256),
    }
}

fn parse_purpose(s: &str) -> Result<KeyPurpose, String> {
    let purpose: KeyPurpose = s.parse().map_err(|e| format!("--purpose: {e}"))?;
    if purpose.is_per_account() {
        return Err(format!(
            "--purpose {purpose}: per-user signing keys are created for each account by the signing \
             service, not rotated by purpose"
        ));
    }
    Ok(purpose)
}

fn parse_alg(s: &str) -> Result<SignatureAlgorithm, String> {
    s.parse().map_err(|_| {
        let accepted: Vec<&str> = SignatureAlgorithm::ALL
            .iter()
            .map(|a| a.jose_name())
            .collect();
        format!(
            "--alg: unknown algorithm {:?}; accepted: {}",
            s.chars().take(32).collect::<String>(),
            accepted.join(", ")
        )
    })
}

/// Why [`rotate_key`] did nothing.
#[derive(Debug)]
pub enum RotateError {
    /// The lifecycle refused (a rotation is already pending); nothing was generated.
    Refused(String),
    /// The database or the backend failed.
    Failed(String),
}

/// Generates a key for `purpose` in `backend` and records it as pending,
/// then applies whatever is due now (the first key of a purpose activates at
/// once). Refusals come back before anything is generated; if recording
/// fails, the generated material is destroyed again.
pub async fn rotate_key(
    store: &Store,
    backend: Arc<dyn KeyBackend>,
    purpose: KeyPurpose,
    alg: SignatureAlgorithm,
    prepublish: Duration,
    now: OffsetDateTime,
    actor: &str,
) -> Result<(ManagedKey, RotationPlan), RotateError> {
    use RotateError::{Failed, Refused};
    let all = keys::list(store.pool())
        .await
        .map_err(|e| Failed(format!("cannot read managed keys: {e}")))?;
    let plan = RotationPlan::new(purpose, alg.jose_name(), &all, now, prepublish)
        .map_err(|e| Refused(e.to_string()))?;
    let label = plan.label(now);
    let gen_backend = backend.clone();
    let key_ref = tokio::task::spawn_blocking(move || gen_backend.generate(key_spec(alg), &label))
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
            let cleanup = tokio::task::spawn_blocking(move || backend.destroy(&key_ref)).await;
            let note = match cleanup {
                Ok(Ok(())) => "the generated key was destroyed again",
                _ => "the generated key could not be destroyed again",
            };
            let message = format!("{e}; {note}");
            return Err(if e.is_refusal() {
                Refused(message)
            } else {
                Failed(message)
            });
        }
    };
    keys::tick(store, now).await.map_err(|e| {
        Failed(format!(
            "key {} recorded, but activating it failed: {e}",
            key.id
        ))
    })?;
    let key = keys::by_id(store.pool(), &key.id)
        .await
        .ok()
        .flatten()
        .unwrap_or(key);
    Ok((key, plan))
}

async fn rotate(
    config: Option<&Path>,
    purpose: &str,
    alg: &str,
    prepublish: u64,
    common: &Common,
) -> ExitCode {
    let (purpose, alg) = match (parse_purpose(purpose), parse_alg(alg)) {
        (Ok(p), Ok(a)) => (p, a),
        (Err(e), _) | (_, Err(e)) => return crate::fail(e),
    };
    let Ok(prepublish) = i64::try_from(prepublish).map(Duration::seconds) else {
        return crate::fail("--prepublish: too large");
    };
    let (settings, store) = match crate::open(config, common.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let backend = match backend_from_env(&settings.data_dir, common.dev) {
        Ok(b) => b,
        Err(e) => {
            store.close().await;
            return crate::fail(e);
        }
    };
    let now = OffsetDateTime::now_utc();
    let result = rotate_key(
        &store,
        backend,
        purpose,
        alg,
        prepublish,
        now,
        &crate::operator_actor(),
    )
    .await;
    store.close().await;
    let (key, plan) = match result {
        Ok(v) => v,
        Err(RotateError::Refused(e)) => return refuse(e),
        Err(RotateError::Failed(e)) => return crate::fail(e),
    };
    if common.json {
        print_json(&serde_json::json!({ "key": key, "plan": plan }));
        return ExitCode::SUCCESS;
    }
    println!(
        "created {} key {} ({}, {})",
        key.purpose, key.id, key.algorithm, key.key_ref
    );
    match (&plan.replaces, key.state) {
        (_, KeyState::Active) => println!("  active now: no {} key was signing", key.purpose),
        (Some(old), _) => println!(
            "  published now; signs from {} and key {old} then becomes retiring",
            rfc3339(key.activate_after)
        ),
        (None, state) => println!("  {state}"),
    }
    ExitCode::SUCCESS
}

async fn retire(config: Option<&Path>, id: &str, force: &Force, common: &Common) -> ExitCode {
    let reason = match force.reason() {
        Ok(r) => r,
        Err(e) => return crate::fail(e),
    };
    let (_, store) = match crate::open(config, common.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let result = keys::retire(
        &store,
        id,
        OffsetDateTime::now_utc(),
        &crate::operator_actor(),
        reason,
    )
    .await;
    store.close().await;
    let key = match result {
        Ok(k) => k,
        Err(e) => return lifecycle_error(e),
    };
    if common.json {
        print_json(&key);
    } else if key.state == KeyState::Retiring {
        println!(
            "key {} ({}) is retiring: it signs nothing and stays published until what it signed has expired",
            key.id, key.purpose
        );
    } else {
        println!(
            "key {} ({}) is {}: no longer published",
            key.id, key.purpose, key.state
        );
    }
    ExitCode::SUCCESS
}

async fn destroy(config: Option<&Path>, id: &str, force: &Force, common: &Common) -> ExitCode {
    let reason = match force.reason() {
        Ok(r) => r,
        Err(e) => return crate::fail(e),
    };
    let (settings, store) = match crate::open(config, common.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    // The backend first: never mark a key destroyed that we then cannot remove.
    let backend = match backend_from_env(&settings.data_dir, common.dev) {
        Ok(b) => b,
        Err(e) => {
            store.close().await;
            return crate::fail(e);
        }
    };
    // A key marked destroyed before whose material removal failed: retry only that part.
    let key = match keys::by_id(store.pool(), id).await {
        Ok(Some(k)) if k.state == KeyState::Destroyed => Ok(k),
        Ok(_) => keys::destroy(
            &store,
            id,
            OffsetDateTime::now_utc(),
            &crate::operator_actor(),
            reason,
        )
        .await
        .map_err(lifecycle_error),
        Err(e) => Err(crate::fail(format!("cannot read managed keys: {e}"))),
    };
    store.close().await;
    let key = match key {
        Ok(k) => k,
        Err(code) => return code,
    };
    let material = match remove_material(backend, &key.key_ref).await {
        Ok(m) => m,
        Err(e) => {
            return crate::fail(format!(
                "key {} is marked destroyed, but its material could not be removed: {e}; run the command again",
                key.id
            ));
        }
    };
    if common.json {
        print_json(&serde_json::json!({ "key": key, "material": material }));
    } else {
        println!(
            "key {} ({}) destroyed; material {material}",
            key.id, key.purpose
        );
    }
    ExitCode::SUCCESS
}

/// Removes a key's material from the backend; a key already gone is fine.
async fn remove_material(
    backend: Arc<dyn KeyBackend>,
    key_ref: &str,
) -> Result<&'static str, String> {
    let key_ref: KeyRef = key_ref.parse().map_err(|e: KeyError| e.to_string())?;
    let done = tokio::task::spawn_blocking(move || backend.destroy(&key_ref))
        .await
        .map_err(|e| format!("did not finish: {e}"))?;
    match done {
        Ok(()) => Ok("removed"),
        Err(KeyError::KeyNotFound { .. }) => Ok("already gone"),
        Err(e) => Err(e.to_string()),
    }
}
