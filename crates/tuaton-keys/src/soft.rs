//! The software backend: keys sealed at rest, signing with ring.
//!
//! Each key is one file `<dir>/<id>.key`, sealed with AES-256-GCM
//! (`ring::aead`) under a 32-byte [`MasterKey`]. The associated data binds
//! the key id, type and label, so a file renamed to another key's id or with
//! an edited header does not open. A short check value derived from the
//! master key sits in the header so that a wrong master key is reported as
//! such rather than as tampering.
//!
//! ring cannot generate RSA keys; RSA key pairs are generated with the `rsa`
//! crate (RustCrypto, 0.9) and its PKCS#8 encoding is then loaded into
//! ring's `RsaKeyPair`, which does all the signing. ring cannot sign a
//! digest someone else computed either: a P-256 key is also loaded into
//! AWS-LC (`aws-lc-rs`), which signs digests (CSC `signHash`).
//!
//! Memory: plaintext PKCS#8 exists only in `Zeroizing` buffers while a key
//! is parsed. By default the parsed key pair is cached so that signing does
//! not decrypt a file each time; the parsed key (ring's internal form) then
//! stays in process memory until [`KeyBackend::destroy`] or the backend is
//! dropped, and ring does not wipe it on drop. Turn the cache off with
//! [`SoftwareBackend::with_key_cache`] where that matters more than speed;
//! for keys that must never be in process memory, use the PKCS#11 backend.

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use zeroize::Zeroizing;

use crate::algorithm::{KeySpec, SignatureAlgorithm, SignatureFormat};
use crate::backend::{KeyBackend, check_label};
use crate::der;
use crate::error::{KeyError, Result};
use crate::key_ref::KeyRef;
use crate::public_key::PublicKey;

const MAGIC: &[u8; 4] = b"TKS1";
const AAD_DOMAIN: &[u8] = b"tuaton-keys/soft/v1\0";
const CHECK_LEN: usize = 8;

/// The 32-byte key that seals every software key. Read from a file or an
/// environment variable, never from a command-line argument (those are
/// visible to every user through `ps`).
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    /// Wraps 32 bytes the caller already holds (tests, key ceremonies).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey {
            key: Zeroizing::new(bytes),
        }
    }

    /// A fingerprint of the key (SHA-256 under a domain prefix, hex): tells
    /// two keys apart without revealing either.
    pub fn fingerprint(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"tuaton-master-key-fingerprint-v1\0");
        ctx.update(self.key.as_ref());
        hex::encode(ctx.finish().as_ref())
    }

    /// Generates a fresh random master key.
    pub fn generate() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(key.as_mut())
            .map_err(|_| KeyError::Crypto {
                what: "random master key",
            })?;
        Ok(MasterKey { key })
    }

    /// Reads the key from a file holding 32 raw bytes, or 64 hex digits, or
    /// base64 of 32 bytes (surrounding whitespace ignored).
    pub fn from_file(path: &Path) -> Result<Self> {
        let source_name = path.display().to_string();
        let mut buf = Zeroizing::new(Vec::new());
        fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| KeyError::MasterKeyUnavailable {
                source_name: source_name.clone(),
                reason: e.kind().to_string(),
            })?;
        if buf.len() == 32 {
            let mut key = Zeroizing::new([0u8; 32]);
            key.copy_from_slice(&buf);
            return Ok(MasterKey { key });
        }
        let text = std::str::from_utf8(&buf).map_err(|_| KeyError::MalformedMasterKey {
            source_name: source_name.clone(),
            reason: "neither 32 raw bytes nor text",
        })?;
        Self::from_text(text, source_name)
    }

    /// Reads the key from environment variable `var` (hex or base64).
    pub fn from_env(var: &str) -> Result<Self> {
        let value = crate::secret_env::read(var).map_err(|e| KeyError::MasterKeyUnavailable {
            source_name: format!("${var}"),
            reason: e.reason().to_owned(),
        })?;
        Self::from_text(&value, format!("${var}"))
    }

    fn from_text(text: &str, source_name: String) -> Result<Self> {
        let text = text.trim();
        let mut key = Zeroizing::new([0u8; 32]);
        if text.len() == 64 && hex::decode_to_slice(text, key.as_mut()).is_ok() {
            return Ok(MasterKey { key });
        }
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
                .map_err(|_| KeyError::MalformedMasterKey {
                    source_name: source_name.clone(),
                    reason: "not hex or base64",
                })?,
        );
        if decoded.len() != 32 {
            return Err(KeyError::MalformedMasterKey {
                source_name,
                reason: "does not decode to 32 bytes",
            });
        }
        key.copy_from_slice(&decoded);
        Ok(MasterKey { key })
    }

    /// Generates a master key and writes it, base64, to a new file readable
    /// only by its owner. Refuses to overwrite an existing file.
    pub fn create_file(path: &Path) -> Result<Self> {
        let key = Self::generate()?;
        let text =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.key.as_ref()));
        let io = |e: std::io::Error| KeyError::KeyStoreIo {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.write_all(b"\n").map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(key)
    }

    fn aead_key(&self) -> Result<LessSafeKey> {
        UnboundKey::new(&AES_256_GCM, self.key.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| KeyError::Crypto {
                what: "AES key setup",
            })
    }

    /// A public, non-secret fingerprint of the master key (a truncated HMAC
    /// of a fixed string) used to tell "wrong master key" from "tampered".
    fn check_value(&self) -> [u8; CHECK_LEN] {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.key.as_ref());
        let tag = ring::hmac::sign(&k, b"tuaton-keys master key check v1");
        let mut out = [0u8; CHECK_LEN];
        out.copy_from_slice(&tag.as_ref()[..CHECK_LEN]);
        out
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// A parsed private key, ready to sign.
enum ParsedKey {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

struct LoadedKey {
    spec: KeySpec,
    pair: ParsedKey,
    public: PublicKey,
    /// The same P-256 key for signing digests (ring signs only messages),
    /// in AWS-LC, which wipes it when it is freed.
    prehash: Option<aws_lc_rs::signature::EcdsaKeyPair>,
}

/// Keys sealed in a directory; see the [module documentation](self).
pub struct SoftwareBackend {
    dir: PathBuf,
    master: MasterKey,
    rng: SystemRandom,
    cache_enabled: bool,
    cache: RwLock<HashMap<String, Arc<LoadedKey>>>,
}

impl SoftwareBackend {
    /// Opens (creating if needed, mode 0700) the key directory `dir`.
    pub fn open(dir: impl Into<PathBuf>, master: MasterKey) -> Result<Self> {
        let dir = dir.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| KeyError::KeyStoreIo {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
        Ok(SoftwareBackend {
            dir,
            master,
            rng: SystemRandom::new(),
            cache_enabled: true,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// Turns the parsed-key cache on (default) or off. Off, every signature
    /// reads and decrypts the key file: slower, but no parsed private key
    /// stays in memory between signatures.
    pub fn with_key_cache(mut self, enabled: bool) -> Self {
        self.cache_enabled = enabled;
        if !enabled {
            self.cache
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
        self
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the sealed file for `key` (for operators and tests).
    pub fn sealed_path(&self, key: &KeyRef) -> Result<PathBuf> {
        Ok(self.path_for(self.soft_id(key)?))
    }

    fn path_for(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.key"))
    }

    fn soft_id<'a>(&self, key: &'a KeyRef) -> Result<&'a str> {
        match key {
            KeyRef::Soft { id } if KeyRef::is_valid_soft_id(id) => Ok(id),
            _ => Err(KeyError::ForeignKeyRef {
                key_ref: key.to_string(),
                backend: "soft",
            }),
        }
    }

    fn header(&self, spec: KeySpec, label: &str) -> Result<Vec<u8>> {
        let label_len = u16::try_from(label.len()).map_err(|_| KeyError::InvalidLabel {
            reason: "longer than 128 bytes",
        })?;
        let mut h = Vec::with_capacity(4 + 1 + CHECK_LEN + 2 + label.len());
        h.extend_from_slice(MAGIC);
        h.push(crate::algorithm::spec_byte(spec));
        h.extend_from_slice(&self.master.check_value());
        h.extend_from_slice(&label_len.to_be_bytes());
        h.extend_from_slice(label.as_bytes());
        Ok(h)
    }

    fn aad(id: &str, header: &[u8]) -> Vec<u8> {
        [AAD_DOMAIN, id.as_bytes(), b"\0", header].concat()
    }

    fn generate_pkcs8(&self, spec: KeySpec) -> Result<Zeroizing<Vec<u8>>> {
        let crypto = |what| move |_| KeyError::Crypto { what };
        // ring's pkcs8::Document is not wiped on drop; it is copied into a
        // zeroizing buffer at once and dropped at the end of this function.
        let doc = match spec {
            KeySpec::EcP256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &self.rng)
                    .map_err(crypto("P-256 key generation"))?
            }
            KeySpec::EcP384 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &self.rng)
                    .map_err(crypto("P-384 key generation"))?
            }
            KeySpec::Ed25519 => Ed25519KeyPair::generate_pkcs8(&self.rng)
                .map_err(crypto("Ed25519 key generation"))?,
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                return generate_rsa_pkcs8(spec);
            }
        };
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    fn parse(&self, spec: KeySpec, pkcs8: &[u8], key_ref: &KeyRef) -> Result<LoadedKey> {
        let corrupt = |_| KeyError::SealedKeyCorrupt {
            key_ref: key_ref.to_string(),
        };
        let pair = match spec {
            KeySpec::EcP256 => ParsedKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                    &self.rng,
                )
                .map_err(corrupt)?,
            ),
            KeySpec::EcP384 => ParsedKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    pkcs8,
                    &self.rng,
                )
                .map_err(corrupt)?,
            ),
            KeySpec::Ed25519 => {
                ParsedKey::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(corrupt)?)
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                ParsedKey::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(corrupt)?)
            }
        };
        let raw = match &pair {
            ParsedKey::Ecdsa(p) => p.public_key().as_ref().to_vec(),
            ParsedKey::Ed25519(p) => p.public_key().as_ref().to_vec(),
            ParsedKey::Rsa(p) => p.public_key().as_ref().to_vec(),
        };
        let public = PublicKey::from_raw(spec, raw).map_err(|_| KeyError::SealedKeyCorrupt {
            key_ref: key_ref.to_string(),
        })?;
        let prehash = match spec {
            KeySpec::EcP256 => Some(
                aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                )
                .map_err(|_| KeyError::SealedKeyCorrupt {
                    key_ref: key_ref.to_string(),
                })?,
            ),
            _ => None,
        };
        Ok(LoadedKey {
            spec,
            pair,
            public,
            prehash,
        })
    }

    /// Reads and unseals one key file.
    fn load_uncached(&self, key: &KeyRef, id: &str) -> Result<LoadedKey> {
        let path = self.path_for(id);
        let sealed = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(KeyError::KeyNotFound {
                    key_ref: key.to_string(),
                });
            }
            Err(e) => {
                return Err(KeyError::KeyStoreIo {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let corrupt = || KeyError::SealedKeyCorrupt {
            key_ref: key.to_string(),
        };
        // Header: magic, spec, master check, label length, label.
        let fixed = MAGIC.len() + 1 + CHECK_LEN + 2;
        if sealed.len() < fixed || &sealed[..4] != MAGIC {
            return Err(corrupt());
        }
        let spec = crate::algorithm::spec_from_byte(sealed[4]).ok_or_else(corrupt)?;
        if sealed[5..5 + CHECK_LEN] != self.master.check_value() {
            return Err(KeyError::WrongMasterKey {
                key_ref: key.to_string(),
            });
        }
        let label_len = usize::from(u16::from_be_bytes([sealed[fixed - 2], sealed[fixed - 1]]));
        let header_len = fixed + label_len;
        if sealed.len() < header_len + NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(corrupt());
        }
        let (header, rest) = sealed.split_at(header_len);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .master
            .aead_key()?
            .open_in_place(nonce, Aad::from(Self::aad(id, header)), buf.as_mut_slice())
            .map_err(|_| corrupt())?
            .len();
        self.parse(spec, &buf[..plain_len], key)
    }

    fn load(&self, key: &KeyRef) -> Result<Arc<LoadedKey>> {
        let id = self.soft_id(key)?;
        let cached = if self.cache_enabled {
            self.cache
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(id)
                .cloned()
        } else {
            None
        };
        if let Some(hit) = cached {
            return Ok(hit);
        }
        let loaded = Arc::new(self.load_uncached(key, id)?);
        if self.cache_enabled {
            self.cache
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.to_owned(), Arc::clone(&loaded));
        }
        Ok(loaded)
    }
}

/// ring cannot generate RSA keys, so the `rsa` crate does; its PKCS#8
/// output is a zeroizing `SecretDocument`.
fn generate_rsa_pkcs8(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>> {
    use rsa::pkcs8::EncodePrivateKey as _;
    let bits = spec.rsa_bits().ok_or(KeyError::Crypto {
        what: "RSA key size",
    })?;
    let key =
        rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).map_err(|_| KeyError::Crypto {
            what: "RSA key generation",
        })?;
    let doc = key.to_pkcs8_der().map_err(|_| KeyError::Crypto {
        what: "RSA PKCS#8 encoding",
    })?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}

impl KeyBackend for SoftwareBackend {
    /// The key directory must still be a directory this process can list:
    /// a lost mount or changed permissions show here, not at the next signature.
    fn check_health(&self) -> Result<()> {
        fs::read_dir(&self.dir)
            .map(drop)
            .map_err(|e| KeyError::KeyStoreIo {
                path: self.dir.clone(),
                reason: e.to_string(),
            })
    }

    fn generate(&self, spec: KeySpec, label: &str) -> Result<KeyRef> {
        check_label(label)?;
        let mut id_bytes = [0u8; 16];
        self.rng.fill(&mut id_bytes).map_err(|_| KeyError::Crypto {
            what: "random key id",
        })?;
        let id = hex::encode(id_bytes);
        let key_ref = KeyRef::Soft { id: id.clone() };

        let pkcs8 = self.generate_pkcs8(spec)?;
        // Parse before sealing: proves the key is usable and fills the cache.
        let loaded = self.parse(spec, &pkcs8, &key_ref)?;

        let header = self.header(spec, label)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| KeyError::Crypto {
            what: "random nonce",
        })?;
        let mut buf = Zeroizing::new(pkcs8.to_vec());
        self.master
            .aead_key()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(&id, &header)),
                &mut *buf,
            )
            .map_err(|_| KeyError::Crypto { what: "sealing" })?;

        let path = self.path_for(&id);
        let io = |e: std::io::Error| KeyError::KeyStoreIo {
            path: path.clone(),
            reason: e.to_string(),
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        f.write_all(&header).map_err(io)?;
        f.write_all(&nonce).map_err(io)?;
        f.write_all(&buf).map_err(io)?;
        f.sync_all().map_err(io)?;

        if self.cache_enabled {
            self.cache
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, Arc::new(loaded));
        }
        Ok(key_ref)
    }

    fn public_key(&self, key: &KeyRef) -> Result<PublicKey> {
        Ok(self.load(key)?.public.clone())
    }

    /// An elliptic-curve key already parsed in the cache: a P-256 or
    /// Ed25519 signature takes tens of microseconds and reads no file. RSA
    /// and P-384 take milliseconds, and an uncached key is read from disk.
    fn signs_in_place(&self, key: &KeyRef, alg: SignatureAlgorithm) -> bool {
        let quick = matches!(alg, SignatureAlgorithm::Es256 | SignatureAlgorithm::EdDsa);
        quick
            && self.cache_enabled
            && self.soft_id(key).is_ok_and(|id| {
                self.cache
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains_key(id)
            })
    }

    fn sign(
        &self,
        key: &KeyRef,
        alg: SignatureAlgorithm,
        format: SignatureFormat,
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let loaded = self.load(key)?;
        crate::algorithm::check_key(alg, loaded.spec)?;
        let failed = |_| KeyError::Crypto { what: "signing" };
        match (&loaded.pair, alg) {
            (ParsedKey::Ecdsa(pair), _) => {
                let raw = pair.sign(&self.rng, data).map_err(failed)?;
                match format {
                    SignatureFormat::Raw => Ok(raw.as_ref().to_vec()),
                    SignatureFormat::Der => {
                        der::ecdsa_raw_to_der(raw.as_ref()).ok_or(KeyError::Crypto {
                            what: "ECDSA DER encoding",
                        })
                    }
                }
            }
            (ParsedKey::Ed25519(pair), _) => Ok(pair.sign(data).as_ref().to_vec()),
            (ParsedKey::Rsa(pair), alg) => {
                let padding: &'static dyn signature::RsaEncoding =
                    if alg == SignatureAlgorithm::Ps256 {
                        &signature::RSA_PSS_SHA256
                    } else {
                        &signature::RSA_PKCS1_SHA256
                    };
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(padding, &self.rng, data, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
        }
    }

    /// P-256 only, with AWS-LC (through `aws-lc-rs`), since ring has no
    /// signing of a digest: a fresh random nonce per signature, as ring's
    /// own signing has.
    fn sign_digest(
        &self,
        key: &KeyRef,
        alg: SignatureAlgorithm,
        format: SignatureFormat,
        digest: &[u8],
    ) -> Result<Vec<u8>> {
        crate::backend::check_digest(alg, digest, "the software backend's digest signing")?;
        let loaded = self.load(key)?;
        crate::algorithm::check_key(alg, loaded.spec)?;
        let signer = loaded
            .prehash
            .as_ref()
            .ok_or(KeyError::AlgorithmNotSupportedHere {
                alg,
                what: "the software backend's digest signing",
            })?;
        let failed = |_| KeyError::Crypto { what: "signing" };
        let digest =
            aws_lc_rs::digest::Digest::import_less_safe(digest, &aws_lc_rs::digest::SHA256)
                .map_err(failed)?;
        let raw = signer.sign_digest(&digest).map_err(failed)?;
        match format {
            SignatureFormat::Raw => Ok(raw.as_ref().to_vec()),
            SignatureFormat::Der => der::ecdsa_raw_to_der(raw.as_ref()).ok_or(KeyError::Crypto {
                what: "ECDSA DER encoding",
            }),
        }
    }

    fn destroy(&self, key: &KeyRef) -> Result<()> {
        let id = self.soft_id(key)?;
        // Drop the parsed key first, so it is gone from memory even if the
        // file removal fails.
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        let path = self.path_for(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(KeyError::KeyNotFound {
                key_ref: key.to_string(),
            }),
            Err(e) => Err(KeyError::KeyStoreIo {
                path,
                reason: e.to_string(),
            }),
        }
    }

    fn name(&self) -> &'static str {
        "soft"
    }
}

impl std::fmt::Debug for SoftwareBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.read().map(|c| c.len()).unwrap_or_default();
        f.debug_struct("SoftwareBackend")
            .field("dir", &self.dir)
            .field("master", &self.master)
            .field("cache_enabled", &self.cache_enabled)
            .field("cached_keys", &cached)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_accepts_hex_and_base64_and_rejects_short() {
        let hex_key = "00".repeat(32);
        assert!(MasterKey::from_text(&hex_key, "t".into()).is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(MasterKey::from_text(&format!(" {b64}\n"), "t".into()).is_ok());
        let err = MasterKey::from_text("abcd", "t".into()).err();
        assert!(matches!(err, Some(KeyError::MalformedMasterKey { .. })));
    }

    #[test]
    fn master_key_debug_is_redacted() {
        let k = MasterKey::from_bytes([0x41; 32]);
        let s = format!("{k:?}");
        assert_eq!(s, "MasterKey([redacted])");
    }
}
