//! Full WebAuthn ceremonies against software authenticators that produce real
//! signatures (webauthn-authenticator-rs's SoftPasskey and SoftToken).
//!
//! Origin `http://localhost:8080`, relying-party id `localhost`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use time::OffsetDateTime;
use time::macros::datetime;
use tuaton_core::Aal;
use tuaton_passkeys::{
    Aal3Policy, CredentialFacts, LoginOutcome, LoginState, PasskeyConfig, PasskeyError,
    PasskeyUser, Passkeys, StoredCredential, Url, Uuid,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::softtoken::{self, SoftToken};
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs_core::proto::{AllowCredentials, Mediation, UserVerificationPolicy};

const ORIGIN: &str = "http://localhost:8080";
const NOW: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

fn passkeys(aal3: Aal3Policy) -> Passkeys {
    let mut cfg = PasskeyConfig::new(origin(), "Tuaton test");
    cfg.aal3 = aal3;
    Passkeys::new(cfg).unwrap()
}

fn somchai() -> PasskeyUser {
    PasskeyUser {
        handle: Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888),
        name: "x-xxxx-xxxxx-12-1".into(),
        display_name: "Somchai".into(),
    }
}

/// A SoftPasskey that performs (well, claims) user verification, like a real
/// passkey provider. `SoftPasskey::new(false)` refuses any ceremony that
/// requires UV.
fn uv_passkey() -> SoftPasskey {
    SoftPasskey::new(true)
}

/// A SoftToken with its own attestation CA; returns the CA certificate's DER.
fn attesting_token() -> (SoftToken, Vec<u8>) {
    let (token, _ca) = SoftToken::new(true).unwrap();
    let der = ca_der(&token);
    (token, der)
}

/// The token's CA certificate, DER. (SoftToken serialises it base64url in its
/// CBOR form; this avoids a direct x509-cert dependency.)
fn ca_der(token: &SoftToken) -> Vec<u8> {
    let cbor = token.to_cbor().unwrap();
    let map: BTreeMap<String, serde_cbor_2::Value> = serde_cbor_2::from_slice(&cbor).unwrap();
    let Some(serde_cbor_2::Value::Text(b64)) = map.get("ca_cert") else {
        panic!("SoftToken CBOR has no ca_cert");
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap()
}

fn clone_token(token: &SoftToken) -> SoftToken {
    SoftToken::from_cbor(&token.to_cbor().unwrap()).unwrap()
}

fn register(
    pk: &Passkeys,
    auth: &mut impl WebauthnAuthenticator,
    exclude: &[Vec<u8>],
    want_aal3: bool,
) -> Result<(StoredCredential, CredentialFacts), PasskeyError> {
    let (ccr, state) = pk
        .start_registration(&somchai(), exclude, want_aal3, NOW)
        .unwrap();
    let response = auth.do_registration(origin(), ccr).unwrap();
    pk.finish_registration(state, &response, NOW + Duration::from_secs(10))
}

fn login(
    pk: &Passkeys,
    auth: &mut impl WebauthnAuthenticator,
    account_creds: &[StoredCredential],
    cred: &StoredCredential,
) -> Result<LoginOutcome, PasskeyError> {
    let (rcr, state) = pk.start_login(account_creds, NOW).unwrap();
    let response = auth.do_authentication(origin(), rcr).unwrap();
    pk.finish_login(state, &response, cred, NOW + Duration::from_secs(10))
}

#[test]
fn new_passkey_with_user_verification_is_aal2_2() {
    let pk = passkeys(Aal3Policy::empty());
    let (stored, facts) = register(&pk, &mut uv_passkey(), &[], false).unwrap();
    assert_eq!(facts.aal, Aal::Aal2_2);
    assert!(facts.user_verified);
    assert!(!facts.attested);
    assert!(!facts.backup_eligible);
    assert_eq!(facts.counter, 0);
    assert_eq!(facts.cred_id.len(), 32);
    assert_eq!(pk.facts(&stored).unwrap(), facts);
    assert_eq!(pk.owner(&stored).unwrap(), somchai().handle);
    // The stored text round-trips through the store.
    let again = StoredCredential::from_stored(stored.as_str().to_owned());
    assert_eq!(pk.facts(&again).unwrap(), facts);
}

#[test]
fn second_credential_and_login_with_each() {
    let pk = passkeys(Aal3Policy::empty());
    let mut phone = uv_passkey();
    let mut laptop = uv_passkey();
    let (first, f1) = register(&pk, &mut phone, &[], false).unwrap();
    let (second, f2) =
        register(&pk, &mut laptop, std::slice::from_ref(&f1.cred_id), false).unwrap();
    assert_ne!(f1.cred_id, f2.cred_id);

    let account = [first.clone(), second.clone()];
    let out = login(&pk, &mut phone, &account, &first).unwrap();
    assert_eq!(out.cred_id, f1.cred_id);
    assert_eq!(out.aal, Aal::Aal2_2);
    assert_eq!(out.amr, vec!["pop", "user", "mfa"]);
    assert_eq!(out.facts.counter, 1);
    assert_eq!(pk.facts(&out.updated).unwrap().counter, 1);

    let out = login(&pk, &mut laptop, &account, &second).unwrap();
    assert_eq!(out.cred_id, f2.cred_id);
    assert_eq!(out.aal, Aal::Aal2_2);
}

#[test]
fn response_for_another_credential_than_the_one_given_is_unknown() {
    let pk = passkeys(Aal3Policy::empty());
    let mut phone = uv_passkey();
    let (first, _) = register(&pk, &mut phone, &[], false).unwrap();
    let (second, _) = register(&pk, &mut uv_passkey(), &[], false).unwrap();
    // The phone answers with `first`, the server wrongly loads `second`.
    let err = login(&pk, &mut phone, &[first, second.clone()], &second).unwrap_err();
    assert_eq!(err, PasskeyError::UnknownCredential);
}

#[test]
fn credential_of_another_account_is_not_accepted_for_this_login() {
    let pk = passkeys(Aal3Policy::empty());
    let mut mine = uv_passkey();
    let (my_cred, _) = register(&pk, &mut mine, &[], false).unwrap();
    let (other_cred, _) = register(&pk, &mut uv_passkey(), &[], false).unwrap();
    // Login started for the other account; my authenticator cannot answer
    // (its credential is not in the allow list), so forge the pairing: finish
    // the other account's ceremony with my credential.
    let (rcr_other, st_other) = pk.start_login(&[other_cred], NOW).unwrap();
    let (rcr_mine, _) = pk.start_login(std::slice::from_ref(&my_cred), NOW).unwrap();
    let mut rcr = rcr_mine;
    rcr.public_key.challenge = rcr_other.public_key.challenge;
    let response = mine.do_authentication(origin(), rcr).unwrap();
    let err = pk
        .finish_login(st_other, &response, &my_cred, NOW)
        .unwrap_err();
    assert_eq!(err, PasskeyError::UnknownCredential);
}

#[test]
fn wrong_origin_rejected() {
    let pk = passkeys(Aal3Policy::empty());
    let phishing = Url::parse("http://localhost:9090").unwrap();

    let mut auth = uv_passkey();
    let (ccr, state) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    let response = auth.do_registration(phishing.clone(), ccr).unwrap();
    assert_eq!(
        pk.finish_registration(state, &response, NOW).unwrap_err(),
        PasskeyError::WrongOrigin
    );

    let (stored, _) = register(&pk, &mut auth, &[], false).unwrap();
    let (rcr, state) = pk.start_login(std::slice::from_ref(&stored), NOW).unwrap();
    let response = auth.do_authentication(phishing, rcr).unwrap();
    assert_eq!(
        pk.finish_login(state, &response, &stored, NOW).unwrap_err(),
        PasskeyError::WrongOrigin
    );
}

#[test]
fn replayed_assertion_with_a_fresh_state_is_a_challenge_mismatch() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (stored, _) = register(&pk, &mut auth, &[], false).unwrap();
    let creds = std::slice::from_ref(&stored);

    let (rcr, state) = pk.start_login(creds, NOW).unwrap();
    let response = auth.do_authentication(origin(), rcr).unwrap();
    let out = pk.finish_login(state, &response, &stored, NOW).unwrap();

    let (_, fresh) = pk
        .start_login(std::slice::from_ref(&out.updated), NOW)
        .unwrap();
    assert_eq!(
        pk.finish_login(fresh, &response, &out.updated, NOW)
            .unwrap_err(),
        PasskeyError::ChallengeMismatch
    );
}

#[test]
fn replayed_registration_with_a_fresh_state_is_a_challenge_mismatch() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (ccr, state) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    let response = auth.do_registration(origin(), ccr).unwrap();
    pk.finish_registration(state, &response, NOW).unwrap();
    let (_, fresh) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    assert_eq!(
        pk.finish_registration(fresh, &response, NOW).unwrap_err(),
        PasskeyError::ChallengeMismatch
    );
}

/// `finish_login` takes the state by value, so one `LoginState` value cannot
/// be finished twice (see the `compile_fail` doctest on `finish_login`). If the
/// server nevertheless keeps a copy (e.g. re-reads it from a table it forgot to
/// delete from), the counter still catches the replay once the updated
/// credential is stored — for authenticators that keep a counter.
#[test]
fn replay_with_a_copied_state_is_caught_by_the_counter() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (stored, _) = register(&pk, &mut auth, &[], false).unwrap();
    let (rcr, state) = pk.start_login(std::slice::from_ref(&stored), NOW).unwrap();
    let kept = state.to_json().unwrap();
    let response = auth.do_authentication(origin(), rcr).unwrap();
    let out = pk.finish_login(state, &response, &stored, NOW).unwrap();

    let copy = LoginState::from_json(&kept).unwrap();
    assert_eq!(
        pk.finish_login(copy, &response, &out.updated, NOW)
            .unwrap_err(),
        PasskeyError::CounterRegression
    );
}

#[test]
fn states_survive_the_ceremony_table_as_json() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (ccr, state) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    assert_eq!(state.expires_at(), NOW + Duration::from_secs(300));
    let state = tuaton_passkeys::RegistrationState::from_json(&state.to_json().unwrap()).unwrap();
    let response = auth.do_registration(origin(), ccr).unwrap();
    let (stored, _) = pk.finish_registration(state, &response, NOW).unwrap();

    let (rcr, state) = pk.start_login(std::slice::from_ref(&stored), NOW).unwrap();
    let state = LoginState::from_json(&state.to_json().unwrap()).unwrap();
    let response = auth.do_authentication(origin(), rcr).unwrap();
    pk.finish_login(state, &response, &stored, NOW).unwrap();

    assert!(matches!(
        LoginState::from_json("{\"not\":\"a state\"}"),
        Err(PasskeyError::CorruptState(_))
    ));
}

#[test]
fn expired_ceremony_rejected() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let ttl = Duration::from_secs(300);

    let (ccr, state) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    let response = auth.do_registration(origin(), ccr).unwrap();
    assert_eq!(
        pk.finish_registration(state.clone(), &response, NOW + ttl)
            .unwrap_err(),
        PasskeyError::Expired
    );
    // One second earlier the same state and response are fine.
    let (stored, _) = pk
        .finish_registration(state, &response, NOW + ttl - Duration::from_secs(1))
        .unwrap();

    let (rcr, state) = pk.start_login(std::slice::from_ref(&stored), NOW).unwrap();
    let response = auth.do_authentication(origin(), rcr).unwrap();
    assert_eq!(
        pk.finish_login(
            state,
            &response,
            &stored,
            NOW + ttl + Duration::from_secs(60)
        )
        .unwrap_err(),
        PasskeyError::Expired
    );
}

#[test]
fn cloned_authenticator_is_detected_by_counter_regression() {
    let pk = passkeys(Aal3Policy::empty());
    let (mut original, _) = attesting_token();
    let (mut stored, _) = register(&pk, &mut original, &[], false).unwrap();
    // The attacker copies the authenticator's secrets (counter 0).
    let mut clone = clone_token(&original);

    for expected in 1..=2 {
        let out = login(&pk, &mut original, std::slice::from_ref(&stored), &stored).unwrap();
        assert_eq!(out.facts.counter, expected);
        stored = out.updated;
    }
    // The clone signs with counter 1 <= stored 2.
    let err = login(&pk, &mut clone, std::slice::from_ref(&stored), &stored).unwrap_err();
    assert_eq!(err, PasskeyError::CounterRegression);
}

#[test]
fn counter_is_checked_against_the_stored_credential_not_the_ceremony_snapshot() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (stored, _) = register(&pk, &mut auth, &[], false).unwrap();
    let creds = std::slice::from_ref(&stored);
    // Two ceremonies started from the same stored credential (counter 0).
    let (rcr1, st1) = pk.start_login(creds, NOW).unwrap();
    let (rcr2, st2) = pk.start_login(creds, NOW).unwrap();
    let a1 = auth.do_authentication(origin(), rcr1).unwrap(); // counter 1
    let a2 = auth.do_authentication(origin(), rcr2).unwrap(); // counter 2
    let out = pk.finish_login(st2, &a2, &stored, NOW).unwrap();
    assert_eq!(out.facts.counter, 2);
    // st1's snapshot says 0, but the store now says 2.
    assert_eq!(
        pk.finish_login(st1, &a1, &out.updated, NOW).unwrap_err(),
        PasskeyError::CounterRegression
    );
}

#[test]
fn authenticator_that_cannot_verify_the_user_cannot_register() {
    let pk = passkeys(Aal3Policy::empty());
    // SoftPasskey::new(false) has no UV; it refuses a UV-required request.
    let mut no_uv = SoftPasskey::new(false);
    let (ccr, _state) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    assert!(no_uv.do_registration(origin(), ccr).is_err());
}

#[test]
fn registration_without_user_verification_rejected() {
    let pk = passkeys(Aal3Policy::empty());
    let (mut ccr, state) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    // A tampering client downgrades the request; the authenticator then
    // answers without the UV flag.
    ccr.public_key
        .authenticator_selection
        .as_mut()
        .unwrap()
        .user_verification = UserVerificationPolicy::Discouraged_DO_NOT_USE;
    let response = uv_passkey().do_registration(origin(), ccr).unwrap();
    assert_eq!(
        pk.finish_registration(state, &response, NOW).unwrap_err(),
        PasskeyError::UserVerificationMissing
    );
}

#[test]
fn login_without_user_verification_rejected() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (stored, _) = register(&pk, &mut auth, &[], false).unwrap();
    let (mut rcr, state) = pk.start_login(std::slice::from_ref(&stored), NOW).unwrap();
    assert_eq!(
        rcr.public_key.user_verification,
        UserVerificationPolicy::Required
    );
    rcr.public_key.user_verification = UserVerificationPolicy::Discouraged_DO_NOT_USE;
    let response = auth.do_authentication(origin(), rcr).unwrap();
    assert_eq!(
        pk.finish_login(state, &response, &stored, NOW).unwrap_err(),
        PasskeyError::UserVerificationMissing
    );
}

#[test]
fn aal3_refused_when_the_allow_list_is_empty() {
    let pk = passkeys(Aal3Policy::empty());
    let err = pk
        .start_registration(&somchai(), &[], true, NOW)
        .unwrap_err();
    assert_eq!(err, PasskeyError::NotAllowListed);
}

#[test]
fn aal3_refused_for_an_unattested_passkey() {
    let (_, ca) = attesting_token();
    let pk = passkeys(
        Aal3Policy::empty()
            .allow(softtoken::AAGUID, vec![ca])
            .unwrap(),
    );
    // SoftPasskey self-attests (no certificate chain).
    let err = register(&pk, &mut uv_passkey(), &[], true).unwrap_err();
    assert_eq!(err, PasskeyError::NotAllowListed);
}

#[test]
fn aal3_refused_when_attested_by_a_root_not_on_the_list() {
    let (_, trusted_ca) = attesting_token();
    let (mut untrusted, _) = attesting_token(); // same AAGUID, other CA
    let pk = passkeys(
        Aal3Policy::empty()
            .allow(softtoken::AAGUID, vec![trusted_ca])
            .unwrap(),
    );
    let err = register(&pk, &mut untrusted, &[], true).unwrap_err();
    assert_eq!(err, PasskeyError::NotAllowListed);
}

#[test]
fn aal3_refused_when_the_root_is_listed_for_another_aaguid() {
    let (mut token, ca) = attesting_token();
    let other_model = Uuid::from_u128(0xdead_beef);
    let pk = passkeys(Aal3Policy::empty().allow(other_model, vec![ca]).unwrap());
    let err = register(&pk, &mut token, &[], true).unwrap_err();
    assert_eq!(err, PasskeyError::NotAllowListed);
}

#[test]
fn aal3_granted_for_an_allow_listed_attested_authenticator() {
    let (mut token, ca) = attesting_token();
    let policy = Aal3Policy::empty()
        .allow(softtoken::AAGUID, vec![ca])
        .unwrap();
    let pk = passkeys(policy);
    let (stored, facts) = register(&pk, &mut token, &[], true).unwrap();
    assert_eq!(facts.aal, Aal::Aal3);
    assert!(facts.attested);
    assert_eq!(facts.aaguid, Some(softtoken::AAGUID));
    assert!(!facts.backup_eligible);

    let out = login(&pk, &mut token, std::slice::from_ref(&stored), &stored).unwrap();
    assert_eq!(out.aal, Aal::Aal3);
    assert_eq!(out.amr, vec!["hwk", "user", "mfa"]);

    // The operator removes the model from the list: the same credential now
    // gives AAL2.2 and no longer claims a hardware key.
    let pk = passkeys(Aal3Policy::empty());
    let out = login(
        &pk,
        &mut token,
        std::slice::from_ref(&out.updated),
        &out.updated,
    )
    .unwrap();
    assert_eq!(out.aal, Aal::Aal2_2);
    assert_eq!(out.amr, vec!["pop", "user", "mfa"]);
}

#[test]
fn attested_authenticator_registered_without_asking_for_aal3_is_aal2_2() {
    let (mut token, ca) = attesting_token();
    let pk = passkeys(
        Aal3Policy::empty()
            .allow(softtoken::AAGUID, vec![ca])
            .unwrap(),
    );
    let (_, facts) = register(&pk, &mut token, &[], false).unwrap();
    assert_eq!(facts.aal, Aal::Aal2_2);
    assert!(!facts.attested);
    // The reported (unverified) AAGUID is still recorded for display.
    assert_eq!(facts.aaguid, Some(softtoken::AAGUID));
}

#[test]
fn already_registered_credential_is_refused() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (ccr, state) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    let response = auth.do_registration(origin(), ccr).unwrap();
    let (_, facts) = pk.finish_registration(state, &response, NOW).unwrap();
    let (_, again) = pk
        .start_registration(&somchai(), std::slice::from_ref(&facts.cred_id), false, NOW)
        .unwrap();
    assert_eq!(
        pk.finish_registration(again, &response, NOW).unwrap_err(),
        PasskeyError::AlreadyRegistered
    );
}

/// SoftPasskey keeps no resident credentials and returns no user handle, so
/// this test plays the part of the browser's discoverable-credential lookup:
/// it points the authenticator at the credential the user picked and attaches
/// the user handle a discoverable authenticator returns. The handle sits
/// outside the signed data in WebAuthn, so the signature checked is genuine.
#[test]
fn discoverable_login_identifies_then_finishes() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (stored, facts) = register(&pk, &mut auth, &[], false).unwrap();

    let (rcr, state) = pk.start_discoverable_login(NOW).unwrap();
    assert!(matches!(rcr.mediation, Some(Mediation::Conditional)));
    assert!(rcr.public_key.allow_credentials.is_empty());
    assert_eq!(
        rcr.public_key.user_verification,
        UserVerificationPolicy::Required
    );

    let mut picked = rcr.clone();
    picked.public_key.allow_credentials = vec![AllowCredentials {
        type_: "public-key".into(),
        id: facts.cred_id.clone(),
        transports: None,
    }];
    let mut response = auth.do_authentication(origin(), picked).unwrap();
    response.response.user_handle = Some(somchai().handle.as_bytes().to_vec());

    let (handle, cred_id) = pk.identify(&response).unwrap();
    assert_eq!(handle, somchai().handle);
    assert_eq!(cred_id, facts.cred_id);

    let out = pk.finish_login(state, &response, &stored, NOW).unwrap();
    assert_eq!(out.cred_id, facts.cred_id);
    assert_eq!(out.aal, Aal::Aal2_2);
}

#[test]
fn discoverable_login_with_a_foreign_user_handle_is_refused() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (stored, facts) = register(&pk, &mut auth, &[], false).unwrap();
    let (mut rcr, state) = pk.start_discoverable_login(NOW).unwrap();
    rcr.public_key.allow_credentials = vec![AllowCredentials {
        type_: "public-key".into(),
        id: facts.cred_id.clone(),
        transports: None,
    }];
    let mut response = auth.do_authentication(origin(), rcr).unwrap();
    response.response.user_handle = Some(Uuid::from_u128(42).as_bytes().to_vec());
    assert_eq!(
        pk.finish_login(state, &response, &stored, NOW).unwrap_err(),
        PasskeyError::UnknownCredential
    );
}

#[test]
fn identify_without_a_user_handle_is_an_invalid_response() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (stored, _) = register(&pk, &mut auth, &[], false).unwrap();
    let (rcr, _) = pk.start_login(std::slice::from_ref(&stored), NOW).unwrap();
    let response = auth.do_authentication(origin(), rcr).unwrap();
    assert!(matches!(
        pk.identify(&response),
        Err(PasskeyError::InvalidResponse(_))
    ));
}

#[test]
fn configuration_is_checked() {
    let bad = |url: &str| Passkeys::new(PasskeyConfig::new(Url::parse(url).unwrap(), "x"));
    assert!(matches!(
        bad("http://example.org"),
        Err(PasskeyError::Config(_))
    ));
    assert!(matches!(
        bad("https://192.0.2.1"),
        Err(PasskeyError::Config(_))
    ));
    assert!(bad("https://id.example.go.th/some/path").is_ok());
    assert!(matches!(
        Aal3Policy::empty().allow(Uuid::from_u128(1), vec![b"not a cert".to_vec()]),
        Err(PasskeyError::Config(_))
    ));
    assert!(matches!(
        Aal3Policy::empty().allow(Uuid::from_u128(1), vec![]),
        Err(PasskeyError::Config(_))
    ));
}

// ---- origins besides the public URL's ----------------------------------------

/// The origin Android gives an app: the SHA-256 of its signing certificate.
fn android_origin(signing_cert: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, signing_cert);
    format!(
        "android:apk-key-hash:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}

fn passkeys_with_origins(public_url: &str, extra: &[&str]) -> Passkeys {
    let mut cfg = PasskeyConfig::new(Url::parse(public_url).unwrap(), "Tuaton test");
    cfg.extra_origins = extra.iter().map(|o| o.parse().unwrap()).collect();
    Passkeys::new(cfg).unwrap()
}

/// Registers as an Android app does: the platform, not a browser, writes the
/// app's origin into the client data. (`WebauthnAuthenticator` plays a
/// browser and refuses any origin that is not a web page.)
fn app_register(
    pk: &Passkeys,
    auth: &mut SoftPasskey,
    app_origin: &str,
) -> Result<(StoredCredential, CredentialFacts), PasskeyError> {
    let (ccr, state) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    let response = AuthenticatorBackend::perform_register(
        auth,
        Url::parse(app_origin).unwrap(),
        ccr.public_key,
        60_000,
    )
    .unwrap();
    pk.finish_registration(state, &response, NOW)
}

fn app_login(
    pk: &Passkeys,
    auth: &mut SoftPasskey,
    app_origin: &str,
    cred: &StoredCredential,
) -> Result<LoginOutcome, PasskeyError> {
    let (rcr, state) = pk.start_login(std::slice::from_ref(cred), NOW).unwrap();
    let response = AuthenticatorBackend::perform_auth(
        auth,
        Url::parse(app_origin).unwrap(),
        rcr.public_key,
        60_000,
    )
    .unwrap();
    pk.finish_login(state, &response, cred, NOW)
}

#[test]
fn listed_android_app_registers_and_logs_in() {
    let app = android_origin(b"Tuaton Android release certificate");
    let pk = passkeys_with_origins(ORIGIN, &[&app]);
    let mut auth = uv_passkey();
    let (stored, facts) = app_register(&pk, &mut auth, &app).unwrap();
    assert_eq!(facts.aal, Aal::Aal2_2);
    let out = app_login(&pk, &mut auth, &app, &stored).unwrap();
    assert_eq!(out.aal, Aal::Aal2_2);
    // The same passkey still works on the web origin: one relying party.
    login(
        &pk,
        &mut auth,
        std::slice::from_ref(&out.updated),
        &out.updated,
    )
    .unwrap();
}

#[test]
fn unlisted_android_app_is_refused() {
    let listed = android_origin(b"Tuaton Android release certificate");
    let repackaged = android_origin(b"someone else's signing certificate");
    let mut auth = uv_passkey();
    for pk in [
        passkeys(Aal3Policy::empty()),
        passkeys_with_origins(ORIGIN, &[&listed]),
    ] {
        assert_eq!(
            app_register(&pk, &mut auth, &repackaged).unwrap_err(),
            PasskeyError::WrongOrigin
        );
        let (stored, _) = register(&pk, &mut auth, &[], false).unwrap();
        assert_eq!(
            app_login(&pk, &mut auth, &repackaged, &stored).unwrap_err(),
            PasskeyError::WrongOrigin
        );
    }
}

#[test]
fn listed_extra_web_origin_works_and_others_do_not() {
    let pk = passkeys_with_origins(
        "https://id.example.go.th",
        &["https://app.id.example.go.th"],
    );
    let app = Url::parse("https://app.id.example.go.th").unwrap();
    let mut auth = uv_passkey();
    let (ccr, state) = pk.start_registration(&somchai(), &[], false, NOW).unwrap();
    let response = auth.do_registration(app.clone(), ccr).unwrap();
    let (stored, _) = pk.finish_registration(state, &response, NOW).unwrap();
    let (rcr, state) = pk.start_login(std::slice::from_ref(&stored), NOW).unwrap();
    let response = auth.do_authentication(app, rcr).unwrap();
    let out = pk.finish_login(state, &response, &stored, NOW).unwrap();

    // A sibling subdomain that is not listed.
    let (rcr, state) = pk
        .start_login(std::slice::from_ref(&out.updated), NOW)
        .unwrap();
    let other = Url::parse("https://other.id.example.go.th").unwrap();
    let response = auth.do_authentication(other, rcr).unwrap();
    assert_eq!(
        pk.finish_login(state, &response, &out.updated, NOW)
            .unwrap_err(),
        PasskeyError::WrongOrigin
    );
}

#[test]
fn a_confirmation_signs_over_the_given_challenge_and_no_other() {
    let pk = passkeys(Aal3Policy::empty());
    let mut auth = uv_passkey();
    let (stored, _) = register(&pk, &mut auth, &[], false).unwrap();
    let creds = std::slice::from_ref(&stored);
    let challenge = [0x5a; 32];

    let (rcr, state) = pk.start_confirmation(creds, challenge, NOW).unwrap();
    let offered: &[u8] = rcr.public_key.challenge.as_ref();
    assert_eq!(offered, &challenge[..]);
    let response = auth.do_authentication(origin(), rcr).unwrap();
    // The client data the authenticator signed names the challenge.
    let client_data: serde_json::Value =
        serde_json::from_slice(response.response.client_data_json.as_ref()).unwrap();
    assert_eq!(
        client_data["challenge"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(challenge)
    );
    let out = pk.finish_login(state, &response, &stored, NOW).unwrap();

    // The same assertion does not confirm another challenge, nor a random one.
    let (_, other) = pk
        .start_confirmation(std::slice::from_ref(&out.updated), [0x5b; 32], NOW)
        .unwrap();
    assert_eq!(
        pk.finish_login(other, &response, &out.updated, NOW)
            .unwrap_err(),
        PasskeyError::ChallengeMismatch
    );
    let (_, random) = pk
        .start_login(std::slice::from_ref(&out.updated), NOW)
        .unwrap();
    assert_eq!(
        pk.finish_login(random, &response, &out.updated, NOW)
            .unwrap_err(),
        PasskeyError::ChallengeMismatch
    );
    // An assertion made for a random challenge does not confirm this one.
    let (rcr, _) = pk
        .start_login(std::slice::from_ref(&out.updated), NOW)
        .unwrap();
    let unrelated = auth.do_authentication(origin(), rcr).unwrap();
    let (_, confirm) = pk
        .start_confirmation(std::slice::from_ref(&out.updated), challenge, NOW)
        .unwrap();
    assert_eq!(
        pk.finish_login(confirm, &unrelated, &out.updated, NOW)
            .unwrap_err(),
        PasskeyError::ChallengeMismatch
    );
}
