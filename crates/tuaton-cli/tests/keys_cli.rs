//! `tuaton keys …` as operators run it, and a rotation seen by a relying party
//! that holds a JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::Value;
use time::{Duration, OffsetDateTime};
use tuaton_keys::{
    KeyBackend, KeyRef, PublicKey, SignatureAlgorithm, SignatureFormat, SoftwareBackend,
};
use tuaton_store::keys::{self, KeyPurpose, KeyState, RETIRING_GRACE};
use tuaton_store::{Store, audit};

mod common;
use common::*;

#[test]
fn every_keys_command_has_help() {
    for args in [
        &["keys", "--help"][..],
        &["keys", "list", "--help"],
        &["keys", "rotate", "--help"],
        &["keys", "retire", "--help"],
        &["keys", "destroy", "--help"],
    ] {
        let o = tuaton_bare(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("Usage:"), "{args:?}");
    }
    let rotate = text(&tuaton_bare(&["keys", "rotate", "--help"]));
    for word in ["--purpose", "--alg", "--prepublish", "id-token", "ES256"] {
        assert!(
            rotate.contains(word),
            "rotate --help lacks {word}: {rotate}"
        );
    }
    let destroy = text(&tuaton_bare(&["keys", "destroy", "--help"]));
    assert!(
        destroy.contains("--force") && destroy.contains("--reason"),
        "{destroy}"
    );
}

#[test]
fn an_empty_store_lists_no_keys() {
    let s = Setup::new();
    let o = s.run(&["keys", "list"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no managed keys"), "{}", text(&o));
    assert_eq!(s.json(&["keys", "list", "--json"]), Value::Array(vec![]));
}

#[test]
fn rotate_usage_errors_exit_64_and_say_what_is_accepted() {
    let s = Setup::new();
    let o = s.run(&["keys", "rotate", "--purpose", "idtoken"], &[]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("unknown key purpose \"idtoken\"")
            && t.contains("id-token, root-ca, document-ca, signer, tsa, ocsp, audit-anchor"),
        "{t}"
    );

    let o = s.run(
        &["keys", "rotate", "--purpose", "id-token", "--alg", "HS256"],
        &[],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(
        text(&o).contains("ES256, ES384, EdDSA, RS256, PS256"),
        "{}",
        text(&o)
    );

    let o = s.run(&["keys", "rotate", "--purpose", "user-signing"], &[]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("per-user"), "{}", text(&o));

    for args in [
        &["keys", "destroy", "x", "--force"][..],
        &["keys", "retire", "x", "--reason", "why"],
    ] {
        let o = s.run(args, &[]);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("--force") && text(&o).contains("--reason"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn a_missing_or_ambiguous_backend_is_a_configuration_error() {
    let s = Setup::new();
    // No backend at all.
    let o = s.run(
        &["keys", "rotate", "--purpose", "id-token"],
        &[("TUATON_MASTER_KEY_FILE", "")],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(
        text(&o).contains("no key backend is configured")
            && text(&o).contains("TUATON_MASTER_KEY_FILE"),
        "{}",
        text(&o)
    );
    // Two backends.
    let o = s.run(
        &["keys", "rotate", "--purpose", "id-token"],
        &[("TUATON_PKCS11_MODULE", "/nonexistent.so")],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("set only one"), "{}", text(&o));
    // A master key file that is not there: named, never printed.
    let o = s.run(
        &["keys", "rotate", "--purpose", "id-token"],
        &[("TUATON_MASTER_KEY_FILE", "/nonexistent/master.key")],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("/nonexistent/master.key"), "{}", text(&o));
    // --dev with production keys configured is refused; without keys-dev it says how to make one.
    let o = s.run(&["keys", "rotate", "--purpose", "id-token", "--dev"], &[]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("--dev"), "{}", text(&o));
    let o = s.run(
        &["keys", "rotate", "--purpose", "id-token", "--dev"],
        &[("TUATON_MASTER_KEY_FILE", "")],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("tuaton dev init"), "{}", text(&o));
    // Nothing was recorded.
    assert_eq!(s.json(&["keys", "list", "--json"]), Value::Array(vec![]));
}

#[test]
fn dev_mode_seals_keys_under_the_development_master_key() {
    let s = Setup::new();
    let o = s.run(&["dev", "init", "--dir", "keys-dev"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let v = s.json_env(
        &["keys", "rotate", "--purpose", "tsa", "--dev", "--json"],
        &[("TUATON_MASTER_KEY_FILE", "")],
    );
    assert_eq!(v["key"]["state"], "active");
    assert_eq!(v["key"]["backend"], "soft");
}

impl Setup {
    fn json_env(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let o = self.run(args, env);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_retire_and_destroy_through_the_binary() {
    let s = Setup::new();
    let first = s.json(&[
        "keys",
        "rotate",
        "--purpose",
        "signer",
        "--alg",
        "EdDSA",
        "--json",
    ]);
    assert_eq!(first["key"]["state"], "active", "{first}");
    assert_eq!(first["key"]["algorithm"], "EdDSA");
    let first_id = first["key"]["id"].as_str().unwrap().to_owned();
    let first_ref = first["key"]["key_ref"].as_str().unwrap().to_owned();

    let second = s.json(&[
        "keys",
        "rotate",
        "--purpose",
        "signer",
        "--prepublish",
        "3600",
        "--json",
    ]);
    assert_eq!(second["key"]["state"], "pending", "{second}");
    assert_eq!(second["plan"]["replaces"], first_id.as_str());

    // A rotation already pending is a refusal (exit 1), and generates nothing.
    let files_before = std::fs::read_dir(s.dir.path().join("data/keys"))
        .unwrap()
        .count();
    let o = s.run(&["keys", "rotate", "--purpose", "signer"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("already pending"), "{}", text(&o));
    assert_eq!(
        std::fs::read_dir(s.dir.path().join("data/keys"))
            .unwrap()
            .count(),
        files_before
    );

    // The active key may not be destroyed or retired without a reason.
    for args in [
        &["keys", "destroy", first_id.as_str()][..],
        &["keys", "retire", first_id.as_str()],
    ] {
        let o = s.run(args, &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("active signer key"), "{}", text(&o));
    }
    let o = s.run(
        &["keys", "destroy", "0123456789abcdef0123456789abcdef"],
        &[],
    );
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("no managed key"), "{}", text(&o));

    // Let the pre-publication window pass (as `tuaton serve` would), with a
    // certificate signed by the old key valid for another day.
    let store = s.store().await;
    keys::extend_verify_until(
        &store,
        &first_id,
        OffsetDateTime::now_utc() + Duration::days(1),
    )
    .await
    .unwrap();
    keys::tick(&store, OffsetDateTime::now_utc() + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(
        keys::by_id(store.conn().await.unwrap().conn(), &first_id)
            .await
            .unwrap()
            .unwrap()
            .state,
        KeyState::Retiring
    );
    store.close().await;

    let list = s.run(&["keys", "list"], &[]);
    assert!(
        text(&list).contains("retiring") && text(&list).contains(&first_id),
        "{}",
        text(&list)
    );

    let o = s.run(&["keys", "destroy", &first_id], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("must stay verifiable until"),
        "{}",
        text(&o)
    );
    assert!(
        s.backend().public_key(&first_ref.parse().unwrap()).is_ok(),
        "refused destroy keeps the material"
    );

    let done = s.json(&[
        "keys",
        "destroy",
        &first_id,
        "--force",
        "--reason",
        "drill: signer key exposed",
        "--json",
    ]);
    assert_eq!(done["key"]["state"], "destroyed");
    assert_eq!(done["material"], "removed");
    let gone = s
        .backend()
        .public_key(&first_ref.parse::<KeyRef>().unwrap());
    assert!(gone.is_err(), "material removed from the backend");
    // Running it again only retries removing the material.
    let again = s.json(&["keys", "destroy", &first_id, "--json"]);
    assert_eq!(again["material"], "already gone");

    let store = s.store().await;
    let recs = audit::list(&store, 0, 1000).await.unwrap();
    let about: Vec<_> = recs
        .iter()
        .filter(|r| r.target == first_id)
        .map(|r| (r.action.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        about,
        vec![
            ("key.pending", "success"),
            ("key.active", "success"),
            ("key.destroy", "failure"),
            ("key.retire", "failure"),
            ("key.retiring", "success"),
            ("key.destroy", "failure"),
            ("key.destroyed", "success"),
        ]
    );
    assert!(
        recs.iter()
            .all(|r| r.actor.starts_with("operator:") || r.actor == "system")
    );
    assert!(audit::verify(&store).await.unwrap().is_intact());
    store.close().await;
}

/// The JWKS a relying party fetches: every publishable id-token key as a JWK.
async fn jwks(store: &Store, backend: &SoftwareBackend) -> Vec<Value> {
    let mut out = Vec::new();
    for k in keys::publishable(store.conn().await.unwrap().conn(), KeyPurpose::IdToken)
        .await
        .unwrap()
    {
        let pk = backend.public_key(&k.key_ref.parse().unwrap()).unwrap();
        out.push(pk.to_jwk(&k.id));
    }
    out
}

/// Unpadded base64url, as in JWKs (kept here to avoid a dependency for one test).
fn base64url(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .expect("base64url character") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// A relying party's check: find the JWK by kid, verify with it.
fn verifies(jwks: &[Value], kid: &str, msg: &[u8], sig: &[u8]) -> bool {
    let Some(jwk) = jwks.iter().find(|j| j["kid"] == kid) else {
        return false;
    };
    let b64 = |v: &Value| base64url(v.as_str().unwrap());
    assert_eq!(jwk["crv"], "P-256");
    let mut raw = vec![4u8];
    raw.extend(b64(&jwk["x"]));
    raw.extend(b64(&jwk["y"]));
    let pk = PublicKey::from_raw(tuaton_keys::KeySpec::EcP256, raw).unwrap();
    pk.verify(SignatureAlgorithm::Es256, SignatureFormat::Raw, msg, sig)
        .is_ok()
}

/// Signs as the id-token signer does: the current signing key, recording the token's expiry.
async fn sign_token(
    store: &Store,
    backend: &SoftwareBackend,
    now: OffsetDateTime,
    msg: &[u8],
) -> (String, Vec<u8>) {
    let k = keys::signing_key(store.conn().await.unwrap().conn(), KeyPurpose::IdToken, now)
        .await
        .unwrap()
        .unwrap();
    let sig = backend
        .sign(
            &k.key_ref.parse().unwrap(),
            SignatureAlgorithm::Es256,
            SignatureFormat::Raw,
            msg,
        )
        .unwrap();
    keys::extend_verify_until(store, &k.id, now + Duration::hours(1))
        .await
        .unwrap();
    (k.id, sig)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_party_never_sees_a_failed_verification_during_rotation() {
    let s = Setup::new();
    s.json(&["keys", "rotate", "--purpose", "id-token", "--json"]);
    let t0 = OffsetDateTime::now_utc();
    let store = s.store().await;
    let backend = s.backend();

    // Before the rotation: the relying party caches the JWKS; a token is signed.
    let jwks_before = jwks(&store, &backend).await;
    assert_eq!(jwks_before.len(), 1);
    let (old_kid, old_sig) =
        sign_token(&store, &backend, t0, b"token signed before rotation").await;
    assert!(verifies(
        &jwks_before,
        &old_kid,
        b"token signed before rotation",
        &old_sig
    ));

    // Rotation: the next key is published (pending) for an hour before it signs.
    let rotated = s.json(&[
        "keys",
        "rotate",
        "--purpose",
        "id-token",
        "--prepublish",
        "3600",
        "--json",
    ]);
    let new_kid = rotated["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(rotated["key"]["state"], "pending");
    let jwks_prepublished = jwks(&store, &backend).await;
    assert!(
        jwks_prepublished
            .iter()
            .any(|j| j["kid"] == new_kid.as_str()),
        "the new key is published before it signs"
    );
    // It signs nothing yet: tokens still come from the old key, which every cached JWKS holds.
    let (kid, sig) = sign_token(
        &store,
        &backend,
        t0 + Duration::minutes(30),
        b"token during pre-publication",
    )
    .await;
    assert_eq!(kid, old_kid);
    assert!(verifies(
        &jwks_before,
        &kid,
        b"token during pre-publication",
        &sig
    ));

    // The window passes; `tuaton serve` ticks.
    let t1 = t0 + Duration::hours(1) + Duration::seconds(1);
    keys::tick(&store, t1).await.unwrap();
    let (kid, new_sig) = sign_token(&store, &backend, t1, b"token after activation").await;
    assert_eq!(
        kid, new_kid,
        "after activation new tokens are signed by the new key"
    );
    // A relying party that refreshed during pre-publication verifies the new
    // tokens, and still verifies tokens the old key signed.
    assert!(verifies(
        &jwks_prepublished,
        &new_kid,
        b"token after activation",
        &new_sig
    ));
    assert!(verifies(
        &jwks_prepublished,
        &old_kid,
        b"token during pre-publication",
        &sig
    ));
    // The one holding the JWKS from before the rotation still verifies the old key's tokens.
    assert!(verifies(
        &jwks_before,
        &old_kid,
        b"token signed before rotation",
        &old_sig
    ));
    let jwks_now = jwks(&store, &backend).await;
    assert!(
        verifies(
            &jwks_now,
            &old_kid,
            b"token signed before rotation",
            &old_sig
        ),
        "old key still published while retiring"
    );
    assert!(verifies(
        &jwks_now,
        &new_kid,
        b"token after activation",
        &new_sig
    ));

    // The old key leaves the JWKS only after its last token has expired.
    keys::tick(
        &store,
        t0 + Duration::minutes(30) + Duration::hours(1) - Duration::seconds(1),
    )
    .await
    .unwrap();
    assert_eq!(
        keys::by_id(store.conn().await.unwrap().conn(), &old_kid)
            .await
            .unwrap()
            .unwrap()
            .state,
        KeyState::Retiring
    );
    // Its last token (signed at t0 + 30 min) expires at t0 + 90 min.
    let t2 = (t0 + Duration::minutes(90)).max(t1 + RETIRING_GRACE) + Duration::seconds(1);
    keys::tick(&store, t2).await.unwrap();
    assert_eq!(
        keys::by_id(store.conn().await.unwrap().conn(), &old_kid)
            .await
            .unwrap()
            .unwrap()
            .state,
        KeyState::Retired
    );
    let jwks_final = jwks(&store, &backend).await;
    assert_eq!(jwks_final.len(), 1);
    assert_eq!(jwks_final[0]["kid"], new_kid.as_str());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_on_one_postgresql_agree_on_keys_within_seconds() {
    let Some(db) = tuaton_store::testing::TestDb::postgres().await else {
        return;
    };
    let s = Setup::new();
    let url = db.url();
    let env = [
        ("TUATON_DATABASE_URL", url.as_str()),
        ("TUATON_ROTATION", "id-token:ES256:90d:1d"),
    ];
    let servers = [Served::start(&s, &env), Served::start(&s, &env)];
    let ten_s = std::time::Duration::from_secs(10);
    for srv in &servers {
        let ready = within(std::time::Duration::from_secs(30), || async {
            srv.get("/readyz")
                .await
                .is_some_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "a server did not become ready");
    }

    // Both ran upkeep on start and raced to make the first scheduled key: one wins,
    // the other destroys what it generated.
    let store = &db.store;
    let one_key = within(ten_s, || async {
        keys::signing_key(
            store.conn().await.unwrap().conn(),
            KeyPurpose::IdToken,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap()
        .is_some()
    })
    .await;
    assert!(one_key, "no scheduled key was made");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let all = keys::list(store.conn().await.unwrap().conn())
        .await
        .unwrap();
    // Upkeep's first audit anchor makes an audit-anchor key beside it.
    let id_tokens: Vec<_> = all
        .iter()
        .filter(|k| k.purpose == KeyPurpose::IdToken)
        .collect();
    assert_eq!(id_tokens.len(), 1, "{all:?}");
    let first = id_tokens[0].id.clone();
    let key_files = std::fs::read_dir(Path::new(&s.data_dir()).join("keys"))
        .unwrap()
        .count();
    // Beside the managed keys, one passkey sealing key: pinned in the data
    // directory, not in the database (both processes raced to make it).
    assert_eq!(
        key_files,
        all.len() + 1,
        "the losing process left no key material behind: {all:?}"
    );

    // An operator rotates through the CLI: both processes publish the new key within seconds.
    let o = s.run(
        &["keys", "rotate", "--purpose", "id-token", "--json"],
        &[("TUATON_DATABASE_URL", &url)],
    );
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let next = v["key"]["id"].as_str().unwrap().to_owned();
    for srv in &servers {
        let both = within(ten_s, || async {
            let kids = srv.kids().await;
            kids.contains(&first) && kids.contains(&next)
        })
        .await;
        assert!(both, "a server did not publish the pre-published key");
    }

    // The new key is found compromised before it ever signed: destroyed, and
    // both processes stop publishing it within seconds.
    let o = s.run(
        &[
            "keys",
            "destroy",
            &next,
            "--force",
            "--reason",
            "test: suspected compromise",
        ],
        &[("TUATON_DATABASE_URL", &url)],
    );
    assert!(o.status.success(), "{}", text(&o));
    for srv in &servers {
        let gone = within(ten_s, || async { srv.kids().await == vec![first.clone()] }).await;
        assert!(gone, "a server still publishes the destroyed key");
    }
    drop(servers);
    db.cleanup().await;
}

#[test]
fn pki_init_makes_the_hierarchy_once_and_certifies_a_rotated_key() {
    let s = Setup::new();
    let o = s.run(&["pki", "init"], &[]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(text(&o).contains("TUATON_CA_ORGANIZATION"), "{}", text(&o));

    let ca = [
        ("TUATON_CA_ORGANIZATION", "Tuaton CLI tests"),
        ("TUATON_CA_POLICY", "1.3.6.1.4.1.32473.3861.7"),
    ];
    let o = s.run(&["pki", "init", "--json"], &ca);
    assert!(o.status.success(), "{}", text(&o));
    let made: Value = serde_json::from_slice(&o.stdout).unwrap();
    let roles: Vec<&str> = made
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["root", "issuing-ca", "tsa", "ocsp"]);
    let o = s.run(&["pki", "init"], &ca);
    assert!(text(&o).contains("nothing was made"), "{}", text(&o));
    assert_eq!(
        s.json(&["pki", "list", "--json"]).as_array().unwrap().len(),
        4
    );

    // The root, as relying parties install it.
    let o = s.run(&["pki", "root", "--out", "root.pem"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let x509 = std::process::Command::new("openssl")
        .args(["x509", "-in", "root.pem", "-noout", "-subject"])
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&x509.stdout).contains("Tuaton CLI tests"),
        "{}",
        text(&x509)
    );

    // An operator revokes the TSA's certificate by its serial; the second
    // time, or for a reason RFC 5280 does not name, it is refused.
    let listed = s.json(&["pki", "list", "--json"]);
    let tsa = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "tsa")
        .unwrap();
    let serial = tsa["serial_hex"].as_str().unwrap();
    let o = s.run(&["pki", "revoke", serial, "--reason", "stolen"], &[]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not a revocation reason"), "{}", text(&o));
    let o = s.run(
        &[
            "pki",
            "revoke",
            serial,
            "--reason",
            "keyCompromise",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let revoked: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        revoked[0]["revoked"]["reason"], "keyCompromise",
        "{revoked}"
    );
    let o = s.run(&["pki", "revoke", serial], &[]);
    assert!(text(&o).contains("revoked already"), "{}", text(&o));
    // The distrusted key is not certified again; rotating it is the way on.
    let o = s.run(&["pki", "init"], &ca);
    assert!(text(&o).contains("nothing was made"), "{}", text(&o));

    // A rotated TSA key is certified by the next init.
    let o = s.run(
        &["keys", "rotate", "--purpose", "tsa", "--prepublish", "0"],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let made: Value =
        serde_json::from_slice(&s.run(&["pki", "init", "--json"], &ca).stdout).unwrap();
    assert_eq!(made.as_array().unwrap().len(), 1, "{made}");
    assert_eq!(made[0]["role"], "tsa");
}
