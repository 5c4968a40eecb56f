//! `tuaton keys …`: the key lifecycle for operators.
//!
//! Every decision (may this key be retired? destroyed? is a rotation already
//! pending?) is made in `tuaton_store::keys`, and key generation for a
//! rotation in `tuaton_idm::custody` (which `tuaton serve` uses for
//! scheduled rotations too); this module parses arguments, opens the backend
//! the settings name, and prints.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use time::{Duration, OffsetDateTime};
use tuaton_idm::custody::{self, RotateError, rotate_key};
use tuaton_keys::{KeyBackend, KeyError, KeyRef, SignatureAlgorithm};
use tuaton_store::keys::{self, KeyPurpose, KeyState, KeysError};

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
        /// What the key is for: id-token, root-ca, document-ca, signer, tsa, ocsp or audit-anchor.
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
    pub(crate) json: bool,
    /// Development mode: software keys sealed under keys-dev/master.key.
    #[arg(long)]
    pub(crate) dev: bool,
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

/// Opens the key backend the settings name; the error is a sentence for the
/// operator naming the settings, never a secret.
pub(crate) fn open_backend(
    settings: &tuaton_server::Settings,
) -> Result<Arc<dyn KeyBackend>, String> {
    custody::open_backend(&settings.key_backend, &settings.data_dir).map_err(|e| e.to_string())
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

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Prints a refusal and returns exit status 1.
pub(crate) fn refuse(message: impl std::fmt::Display) -> ExitCode {
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

pub(crate) fn print_json(v: &impl serde::Serialize) {
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
    let result = async { keys::list(store.conn().await?.conn()).await }.await;
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
    let backend = match open_backend(&settings) {
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
        custody::Trigger::Operator,
    )
    .await;
    store.close().await;
    let (key, plan) = match result {
        Ok(v) => v,
        Err(RotateError::Refused(e) | RotateError::Raced(e)) => return refuse(e),
        Err(RotateError::Failed(e)) => return crate::fail(e),
        Err(RotateError::NotDue) => return refuse("the rotation is not due"),
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
    let backend = match open_backend(&settings) {
        Ok(b) => b,
        Err(e) => {
            store.close().await;
            return crate::fail(e);
        }
    };
    // A key marked destroyed before whose material removal failed: retry only that part.
    let key = match async { keys::by_id(store.conn().await?.conn(), id).await }.await {
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
