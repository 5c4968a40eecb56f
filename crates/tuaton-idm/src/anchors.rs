//! Signed anchors of the audit chain, kept outside the database.
//!
//! The chain in the database detects an edit by someone who does not
//! recompute hashes; a database writer who does (or who empties the table and
//! resets the head) leaves a chain that verifies by itself. An anchor is the
//! chain's last position and hash, signed with the `audit-anchor` key
//! through the key backend (so an HSM can hold it) and appended as one JSON
//! line to a file outside the database — by default `DATA_DIR/audit-anchors.jsonl`,
//! which the operator puts on append-only or write-once storage
//! (`TUATON_AUDIT_ANCHOR_FILE`, docs/operators/audit.md). `tuaton audit
//! verify` checks the chain against every anchor: a rewrite is reported at
//! the first anchored record that no longer matches, a cut at the highest
//! anchored position the chain no longer reaches.
//!
//! What it does not do: protect the anchor file itself (that is the storage's
//! job), or date an anchor beyond the signer's clock.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tuaton_core::{KeySpec, SignatureAlgorithm};
use tuaton_keys::{KeyBackend, KeyRef, PublicKey, SignatureFormat};
use tuaton_store::Store;
use tuaton_store::audit::{self, ChainReport};
use tuaton_store::keys::{self, KeyPurpose};

use crate::custody;

/// Domain separation for what an anchor signs; versioned with [`Anchor::v`].
const SIGNED_DOMAIN: &str = "tuaton-audit-anchor-v1";

/// One signed head of the chain, as one line of the anchor file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// Format version (1).
    pub v: u32,
    /// The anchored record's position.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// When it was signed (Unix milliseconds).
    pub at_ms: i64,
    /// The managed key's id (`tuaton keys list`).
    pub key_id: String,
    /// Where the key lives in the backend.
    pub key_ref: String,
    /// The signature algorithm.
    pub alg: SignatureAlgorithm,
    /// The key's type.
    pub key_spec: KeySpec,
    /// The public key (raw form, base64url), so the anchor verifies also
    /// after the key is destroyed.
    pub public_key: String,
    /// The signature over [`Anchor::signed_bytes`], base64url.
    pub sig: String,
}

impl Anchor {
    /// What the signature covers: the domain, position, hash, time and key id.
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "{SIGNED_DOMAIN}\n{}\n{}\n{}\n{}",
            self.seq, self.hash, self.at_ms, self.key_id
        )
        .into_bytes()
    }

    /// Checks the signature with the public key the anchor carries.
    fn check_signature(&self) -> Result<PublicKey, String> {
        if self.v != 1 {
            return Err(format!("unknown anchor format {}", self.v));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(&self.public_key)
            .map_err(|_| "its public key is not base64url".to_owned())?;
        let key = PublicKey::from_raw(self.key_spec, raw).map_err(|e| e.to_string())?;
        let sig = URL_SAFE_NO_PAD
            .decode(&self.sig)
            .map_err(|_| "its signature is not base64url".to_owned())?;
        key.verify(self.alg, SignatureFormat::Raw, &self.signed_bytes(), &sig)
            .map_err(|_| "its signature does not verify".to_owned())?;
        Ok(key)
    }
}

/// Why anchoring or reading anchors failed.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The anchor file could not be read or written.
    #[error("the anchor file {path} cannot be used: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No `audit-anchor` key could be made or used.
    #[error("the audit-anchor key is not usable: {0}")]
    Key(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] tuaton_store::StoreError),
}

/// The append-only file anchors are written to.
#[derive(Debug, Clone)]
pub struct AnchorFile {
    path: PathBuf,
}

impl AnchorFile {
    /// The file at `path` (created with the first anchor).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: std::io::Error) -> AnchorError {
        AnchorError::File {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends `anchor` as one line and waits for it to reach the disk.
    /// Opened for appending only, so the file may be append-only (`chattr +a`).
    pub fn append(&self, anchor: &Anchor) -> Result<(), AnchorError> {
        let mut line = serde_json::to_vec(anchor).map_err(|e| self.error(e.into()))?;
        line.push(b'\n');
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.error(e))?;
        f.write_all(&line).map_err(|e| self.error(e))?;
        f.sync_data().map_err(|e| self.error(e))
    }

    /// Every line with its number, parsed or with the reason it does not
    /// parse. A missing file has no anchors.
    #[allow(clippy::type_complexity)]
    pub fn read(&self) -> Result<Vec<(usize, Result<Anchor, String>)>, AnchorError> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        let mut out = Vec::new();
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.map_err(|e| self.error(e))?;
            if line.trim().is_empty() {
                continue;
            }
            out.push((
                i + 1,
                serde_json::from_str(&line).map_err(|e| format!("not an anchor: {e}")),
            ));
        }
        Ok(out)
    }
}

/// What [`anchor_now`] did.
#[derive(Debug)]
pub enum Anchored {
    /// A new anchor was written.
    Written(Anchor),
    /// The chain has not moved since `seq` was anchored (or is empty).
    Unchanged(i64),
}

/// Signs the chain's last record and appends the anchor, unless `last`
/// (the position this process anchored last) is already the chain's end.
/// Makes the first `audit-anchor` key (ES256) when there is none.
pub async fn anchor_now(
    store: &Store,
    backend: &Arc<dyn KeyBackend>,
    file: &AnchorFile,
    last: Option<i64>,
    now: OffsetDateTime,
) -> Result<Anchored, AnchorError> {
    if audit::last_record(store).await?.is_none() {
        return Ok(Anchored::Unchanged(0));
    }
    // The key first: making it appends records, which the anchor then covers.
    let key = signing_key(store, backend, now).await?;
    let Some((seq, hash)) = audit::last_record(store).await? else {
        return Ok(Anchored::Unchanged(0));
    };
    if last == Some(seq) {
        return Ok(Anchored::Unchanged(seq));
    }
    // The head read may be a grouped commit not yet on the disk: an anchor
    // outside the database must never name a record a power cut could lose.
    store.sync().await?;
    let key_ref: KeyRef = key
        .key_ref
        .parse()
        .map_err(|e: tuaton_keys::KeyError| AnchorError::Key(e.to_string()))?;
    let alg = key.algorithm;
    let mut anchor = Anchor {
        v: 1,
        seq,
        hash,
        at_ms: tuaton_store::to_ms(now),
        key_id: key.id.clone(),
        key_ref: key.key_ref.clone(),
        alg,
        key_spec: custody::key_spec(alg),
        public_key: String::new(),
        sig: String::new(),
    };
    let message = anchor.signed_bytes();
    let signer = backend.clone();
    let (public, sig) = tokio::task::spawn_blocking(move || {
        let public = signer.public_key(&key_ref)?;
        let sig = signer.sign(&key_ref, alg, SignatureFormat::Raw, &message)?;
        Ok::<_, tuaton_keys::KeyError>((public, sig))
    })
    .await
    .map_err(|_| AnchorError::Key("the signing task was interrupted".into()))?
    .map_err(|e| AnchorError::Key(e.to_string()))?;
    anchor.key_spec = public.spec();
    anchor.public_key = URL_SAFE_NO_PAD.encode(public.raw());
    anchor.sig = URL_SAFE_NO_PAD.encode(sig);
    let writer = file.clone();
    let written = anchor.clone();
    tokio::task::spawn_blocking(move || writer.append(&written))
        .await
        .map_err(|_| AnchorError::Key("the writing task was interrupted".into()))??;
    Ok(Anchored::Written(anchor))
}

/// The active `audit-anchor` key, made (ES256) on first use.
async fn signing_key(
    store: &Store,
    backend: &Arc<dyn KeyBackend>,
    now: OffsetDateTime,
) -> Result<keys::ManagedKey, AnchorError> {
    custody::ensure_active(
        store,
        backend,
        KeyPurpose::AuditAnchor,
        SignatureAlgorithm::Es256,
        now,
    )
    .await
    .map_err(|e| AnchorError::Key(e.to_string()))
}

/// What checking the chain against its anchors found.
#[derive(Debug, Clone, Serialize)]
pub struct AnchoredReport {
    /// The chain walked with the anchors' positions and hashes.
    pub chain: ChainReport,
    /// Anchors whose signature verified.
    pub anchors_checked: usize,
    /// Anchors whose key the backend confirmed (the same public key under
    /// the key reference); the others verified with the key they carry,
    /// their backend key destroyed or out of reach.
    pub anchors_confirmed_by_backend: usize,
    /// Lines of the anchor file that are damaged or forged: line number and why.
    pub bad_anchors: Vec<(usize, String)>,
    /// The latest anchor's time, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_anchor_at: Option<OffsetDateTime>,
}

impl AnchoredReport {
    /// The chain verified against every anchor, and every anchor verified.
    pub fn is_intact(&self) -> bool {
        self.chain.is_intact() && self.bad_anchors.is_empty()
    }
}

/// Checks every anchor's signature (and, where the backend still holds the
/// key, that it is the backend's key), then walks the chain against them.
pub async fn verify(
    store: &Store,
    backend: Option<&Arc<dyn KeyBackend>>,
    file: &AnchorFile,
) -> Result<AnchoredReport, AnchorError> {
    let lines = file.read()?;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut confirmed = 0;
    let mut last_at = None;
    for (n, line) in lines {
        let checked = line
            .and_then(|a| {
                if a.seq < 1 {
                    Err("it names no record (position below 1)".to_owned())
                } else {
                    Ok(a)
                }
            })
            .and_then(|a| a.check_signature().map(|k| (a, k)));
        let (anchor, key) = match checked {
            Ok(v) => v,
            Err(e) => {
                bad.push((n, e));
                continue;
            }
        };
        if let Some(b) = backend
            && let Ok(r) = anchor.key_ref.parse::<KeyRef>()
            && let Ok(held) = b.public_key(&r)
        {
            if held != key {
                bad.push((
                    n,
                    "its key is not the backend's key under that reference".into(),
                ));
                continue;
            }
            confirmed += 1;
        }
        last_at = Some(tuaton_store::from_ms(anchor.at_ms)).max(last_at);
        good.push((anchor.seq, anchor.hash));
    }
    let chain = audit::verify_against(store, &good).await?;
    Ok(AnchoredReport {
        chain,
        anchors_checked: good.len(),
        anchors_confirmed_by_backend: confirmed,
        bad_anchors: bad,
        last_anchor_at: last_at,
    })
}
