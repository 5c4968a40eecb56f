//! What the flow suites share: the service layer over a test database with
//! software keys, the authenticator's half of a ceremony, and a person from
//! the development registry.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use time::OffsetDateTime;
use tuaton_idm::{CitizenEvidenceInput, FaceCheck, Idm, IdmParts, Policy, Unlimited};
use tuaton_keys::{MasterKey, SoftwareBackend};
use tuaton_passkeys::{Aal3Policy, DEFAULT_CEREMONY_TTL, PasskeyConfig, Passkeys};
use tuaton_proofing::DevRegistry;
use tuaton_store::testing::TestDb;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

pub const ORIGIN: &str = "http://localhost:8080";

pub fn idm(db: &TestDb, keys_dir: &std::path::Path) -> Idm {
    idm_with(db, keys_dir, None)
}

pub fn idm_with(db: &TestDb, keys_dir: &std::path::Path, face: Option<FaceCheck>) -> Idm {
    idm_built(db, keys_dir, face, Arc::new(Companies::default()), false)
}

/// The service layer of a deployment that makes a person's signing key and
/// certificate when they enrol (`TUATON_SIGNING_KEYS=enrolment`).
pub fn idm_making_keys_at_enrolment(db: &TestDb, keys_dir: &std::path::Path) -> Idm {
    idm_built(db, keys_dir, None, Arc::new(Companies::default()), true)
}

/// The service layer with `companies` as its juristic registry.
pub fn idm_with_companies(
    db: &TestDb,
    keys_dir: &std::path::Path,
    companies: Arc<Companies>,
) -> Idm {
    idm_built(db, keys_dir, None, companies, false)
}

/// The development juristic registry (Somchai directs บริษัท ตัวตนพัฒนา
/// จำกัด, 0105599000019), which a test can make forget every company, as
/// when the registry no longer lists a director.
#[derive(Default)]
pub struct Companies {
    forgotten: std::sync::atomic::AtomicBool,
    down: std::sync::atomic::AtomicBool,
}

impl Companies {
    /// From now on, every lookup answers "not found".
    pub fn forget_all(&self) {
        self.forgotten
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// From now on, lookups answer as the development registry does again.
    pub fn remember_all(&self) {
        self.forgotten
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the registry answers nothing (unavailable) from now on.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl tuaton_proofing::JuristicRegistry for Companies {
    fn name(&self) -> &str {
        "test-companies"
    }

    async fn lookup(
        &self,
        id: &tuaton_core::JuristicId,
    ) -> Result<tuaton_proofing::Company, tuaton_proofing::RegistryError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tuaton_proofing::RegistryError::Unavailable {
                reason: "the test registry is down".into(),
            });
        }
        if self.forgotten.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tuaton_proofing::RegistryError::NotFound);
        }
        tuaton_proofing::DevJuristicRegistry::embedded()
            .unwrap()
            .lookup(id)
            .await
    }
}

fn idm_built(
    db: &TestDb,
    keys_dir: &std::path::Path,
    face: Option<FaceCheck>,
    companies: Arc<Companies>,
    keys_at_enrolment: bool,
) -> Idm {
    let keys = SoftwareBackend::open(keys_dir, MasterKey::from_bytes([7; 32])).unwrap();
    idm_over(db, Arc::new(keys), face, companies, keys_at_enrolment, None)
}

/// The service layer whose signatures take their time stamps from `tsa`,
/// an external time-stamping authority.
pub fn idm_with_tsa(
    db: &TestDb,
    keys_dir: &std::path::Path,
    tsa: Arc<dyn tuaton_sign::tsp::TimeStampSource>,
) -> Idm {
    let keys = SoftwareBackend::open(keys_dir, MasterKey::from_bytes([7; 32])).unwrap();
    idm_over(
        db,
        Arc::new(keys),
        None,
        Arc::new(Companies::default()),
        false,
        Some(tsa),
    )
}

/// The service layer with its keys in `keys` (a PKCS#11 token, say).
pub fn idm_with_keys(db: &TestDb, keys: Arc<dyn tuaton_keys::KeyBackend>) -> Idm {
    idm_over(db, keys, None, Arc::new(Companies::default()), false, None)
}

fn idm_over(
    db: &TestDb,
    keys: Arc<dyn tuaton_keys::KeyBackend>,
    face: Option<FaceCheck>,
    companies: Arc<Companies>,
    keys_at_enrolment: bool,
    external_tsa: Option<Arc<dyn tuaton_sign::tsp::TimeStampSource>>,
) -> Idm {
    let passkeys = Passkeys::new(PasskeyConfig {
        public_url: Url::parse(ORIGIN).unwrap(),
        extra_origins: Vec::new(),
        rp_name: "Tuaton".into(),
        ceremony_ttl: DEFAULT_CEREMONY_TTL,
        aal3: Aal3Policy::empty(),
    })
    .unwrap();
    // A server keeps the sealing key's reference in its data directory;
    // here it is made for this service layer alone.
    let seal_key = keys
        .generate(tuaton_keys::KeySpec::Ed25519, "test passkey seal")
        .unwrap();
    let seal = tuaton_idm::PasskeySeal::derive(keys.as_ref(), &seal_key).unwrap();
    Idm::new(IdmParts {
        store: db.store.clone(),
        card_registry: Some(Arc::new(DevRegistry::embedded().unwrap())),
        juristic_registry: Some(companies),
        passkeys: Arc::new(passkeys),
        passkey_seal: Arc::new(seal),
        keys,
        limiter: Arc::new(Unlimited),
        policy: Policy::default(),
        face,
        jwks_fetcher: None,
        external_tsa,
        ca: Some(tuaton_idm::pki::CaPlan {
            keys_at_enrolment,
            ..tuaton_idm::pki::CaPlan::named(
                tuaton_idm::pki::CaSettings::development(&Url::parse(ORIGIN).unwrap()).unwrap(),
                true,
            )
        }),
    })
}

/// Somchai Jaidee, a fictional person in keys-dev/registry/people.json.
pub fn somchai() -> CitizenEvidenceInput {
    CitizenEvidenceInput {
        citizen_id: "1-9990-00000-01-7".into(),
        thai_given_name: "สมชาย".into(),
        thai_family_name: "ใจดี".into(),
        english_given_name: "Somchai".into(),
        english_family_name: "Jaidee".into(),
        birth_date: "1964-02-22".into(),
        laser_code: "JT0-1234567-89".into(),
    }
}

/// A login by citizen id started, and the authenticator's answer to it.
pub async fn login_started(
    idm: &Idm,
    authn: &mut SoftPasskey,
    evidence: &tuaton_proofing::CitizenEvidence,
    now: OffsetDateTime,
) -> (tuaton_idm::LoginChallenge, tuaton_idm::PublicKeyCredential) {
    let challenge = idm
        .start_login(Some(&evidence.citizen_id), now)
        .await
        .unwrap();
    let assertion = authn
        .do_authentication(Url::parse(ORIGIN).unwrap(), options(&challenge.options))
        .unwrap();
    (challenge, assertion)
}

/// The browser's half of a ceremony: the options as JSON, back as the library's type.
pub fn options<T: serde::de::DeserializeOwned>(o: &impl serde::Serialize) -> T {
    serde_json::from_value(serde_json::to_value(o).unwrap()).unwrap()
}

/// Kamala Suwannarat and Pranee Kaewmanee, in keys-dev/registry/people.json:
/// the two directors of บริษัท สองกรรมการสาธิต, which acts through both.
pub fn kamala() -> CitizenEvidenceInput {
    CitizenEvidenceInput {
        citizen_id: "1999000000068".into(),
        thai_given_name: "กมลา".into(),
        thai_family_name: "สุวรรณรัตน์".into(),
        english_given_name: "Kamala".into(),
        english_family_name: "Suwannarat".into(),
        birth_date: "1969-09-12".into(),
        laser_code: "JT5-3333333-45".into(),
    }
}

/// See [`kamala`].
pub fn pranee() -> CitizenEvidenceInput {
    CitizenEvidenceInput {
        citizen_id: "1999000000084".into(),
        thai_given_name: "ปราณี".into(),
        thai_family_name: "แก้วมณี".into(),
        english_given_name: "Pranee".into(),
        english_family_name: "Kaewmanee".into(),
        birth_date: "1942".into(),
        laser_code: "JT7-5555555-67".into(),
    }
}

/// Somchai enrolled with one passkey on `authn`; returns his evidence and account.
pub async fn enrol_with_passkey(
    idm: &Idm,
    authn: &mut SoftPasskey,
    now: OffsetDateTime,
) -> (tuaton_proofing::CitizenEvidence, tuaton_core::AccountId) {
    enrol_person(idm, authn, &somchai(), now).await
}

/// The person `input` describes, enrolled with one passkey on `authn`.
pub async fn enrol_person(
    idm: &Idm,
    authn: &mut SoftPasskey,
    input: &CitizenEvidenceInput,
    now: OffsetDateTime,
) -> (tuaton_proofing::CitizenEvidence, tuaton_core::AccountId) {
    let evidence = tuaton_idm::parse_evidence(input, now).unwrap();
    let enrolled = idm.enrol(&evidence, None, now).await.unwrap();
    let grant = enrolled.grant.unwrap();
    let reg = idm
        .start_registration(tuaton_idm::Registrant::Grant(&grant.id), false, now)
        .await
        .unwrap();
    let made = authn
        .do_registration(Url::parse(ORIGIN).unwrap(), options(&reg.options))
        .unwrap();
    let name = tuaton_idm::PasskeyName::parse("phone").unwrap();
    idm.finish_registration(&reg.ceremony_id, &name, &made, now)
        .await
        .unwrap();
    (evidence, enrolled.account_id)
}

/// A passkey login by Somchai: the session it made.
pub async fn logged_in(
    idm: &Idm,
    authn: &mut SoftPasskey,
    evidence: &tuaton_proofing::CitizenEvidence,
    now: OffsetDateTime,
) -> tuaton_idm::ActiveSession {
    let (challenge, assertion) = login_started(idm, authn, evidence, now).await;
    let done = idm
        .finish_login(&challenge.ceremony_id, &assertion, None, now)
        .await
        .unwrap();
    idm.session(
        &tuaton_idm::SessionSecret::presented(done.session.secret.expose()),
        now,
    )
    .await
    .unwrap()
}

/// Logs Somchai in for the pending authorization `pending_id` and returns
/// the code the client is sent back with.
pub async fn code_after_login(
    idm: &Idm,
    authn: &mut SoftPasskey,
    evidence: &tuaton_proofing::CitizenEvidence,
    issuer: &str,
    pending_id: &str,
    now: OffsetDateTime,
) -> String {
    let session = logged_in(idm, authn, evidence, now).await;
    let back = idm
        .complete_authorization(
            issuer,
            pending_id,
            Some(&session),
            tuaton_idm::Decision::Allow,
            now,
        )
        .await
        .unwrap();
    code_in(&back)
}

/// The code in the redirect `back` to the client.
pub fn code_in(back: &Url) -> String {
    back.query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

/// A public client's `code` redeemed with its PKCE `verifier`.
pub async fn redeem_code(
    idm: &Idm,
    issuer: &str,
    client_id: &str,
    redirect: &str,
    code: &str,
    verifier: &str,
    now: OffsetDateTime,
) -> tuaton_idm::TokenResponse {
    let form: Vec<(String, String)> = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("code_verifier", verifier),
        ("client_id", client_id),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let request = tuaton_oidc::TokenRequest::parse(&form, None).unwrap();
    idm.redeem(issuer, request, None, now).await.unwrap()
}

/// Makes sure an ES256 id-token key signs (as `tuaton serve --dev` does at start).
pub async fn id_token_key(idm: &Idm, now: OffsetDateTime) {
    tuaton_idm::custody::ensure_active(
        idm.store(),
        idm.keys(),
        tuaton_store::keys::KeyPurpose::IdToken,
        tuaton_core::SignatureAlgorithm::Es256,
        now,
    )
    .await
    .unwrap();
}

/// Registers `client_id`, a public client (PKCE, no DPoP, no PAR) with
/// `redirect` and the default scopes plus `scopes`, as a benchmark's agency.
pub async fn public_client(
    idm: &Idm,
    client_id: &str,
    redirect: &str,
    scopes: &[&str],
    now: OffsetDateTime,
) -> tuaton_oidc::ClientConfig {
    let mut client = tuaton_oidc::ClientConfig {
        name: "Benchmark agency".into(),
        redirect_uris: vec![Url::parse(redirect).unwrap()],
        token_auth: tuaton_oidc::TokenAuth::None,
        require_par: false,
        dpop_bound_access_tokens: false,
        ..tuaton_oidc::ClientConfig::new(client_id)
    };
    client.scopes.extend(scopes.iter().map(|s| (*s).to_owned()));
    idm.client_admin()
        .add(
            &tuaton_idm::Actor::Operator("bench".into()),
            client.clone(),
            now,
        )
        .await
        .unwrap();
    client
}

/// The phone's assertion for WebAuthn request `opts`.
pub fn answer(
    phone: &mut SoftPasskey,
    opts: &impl serde::Serialize,
) -> tuaton_idm::PublicKeyCredential {
    phone
        .do_authentication(Url::parse(ORIGIN).unwrap(), options(opts))
        .unwrap()
}

/// Asserts that the audit chain of `db` verifies end to end.
pub async fn audit_intact(db: &TestDb) {
    assert!(
        tuaton_store::audit::verify(&db.store)
            .await
            .unwrap()
            .is_intact()
    );
}
