//! Key lifecycle on both engines: forward-only states, one active key per
//! purpose, an audit record per transition, and a tick that several processes
//! can run at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use time::{Duration, OffsetDateTime};
use tuaton_store::keys::{
    self, KeyPurpose, KeyState, KeysError, ManagedKey, NewKey, RETIRING_GRACE, RotationPlan,
    TransitionError,
};
use tuaton_store::{Store, StoreError, audit, engine_tests, new_id};

const OPERATOR: &str = "operator:test";

fn t0() -> OffsetDateTime {
    // Whole milliseconds, as the database keeps them.
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

/// Rotates `purpose` as `tuaton keys rotate` does, with a made-up backend reference.
async fn rotate(
    store: &Store,
    purpose: KeyPurpose,
    now: OffsetDateTime,
    prepublish: Duration,
) -> ManagedKey {
    rotate_line(
        store,
        purpose,
        tuaton_core::SignatureAlgorithm::Es256,
        now,
        prepublish,
    )
    .await
}

/// Rotates `purpose`'s line of `alg` keys: plans, records and applies what is due.
async fn rotate_line(
    store: &Store,
    purpose: KeyPurpose,
    alg: tuaton_core::SignatureAlgorithm,
    now: OffsetDateTime,
    prepublish: Duration,
) -> ManagedKey {
    let all = keys::list(store.conn().await.unwrap().conn())
        .await
        .unwrap();
    let plan = RotationPlan::new(purpose, alg, &all, now, prepublish).unwrap();
    let mut tx = store.begin().await.unwrap();
    let key = keys::insert_pending(
        &mut tx,
        &plan.new_key("soft", &format!("soft:{}", new_id())),
        now,
        OPERATOR,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    keys::tick(store, now).await.unwrap();
    keys::by_id(store.conn().await.unwrap().conn(), &key.id)
        .await
        .unwrap()
        .unwrap()
}

async fn state(store: &Store, id: &str) -> KeyState {
    keys::by_id(store.conn().await.unwrap().conn(), id)
        .await
        .unwrap()
        .unwrap()
        .state
}

async fn key_records(store: &Store, id: &str) -> Vec<(String, String)> {
    audit::list(store, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.target == id)
        .map(|r| (r.action, r.outcome))
        .collect()
}

fn ids(keys: &[ManagedKey]) -> Vec<&str> {
    keys.iter().map(|k| k.id.as_str()).collect()
}

engine_tests! {
    async fn a_plan_made_against_a_since_replaced_active_key_is_refused(store: &Store) {
        let now = t0();
        // Two processes plan the first id-token key at once; one records and activates it.
        let seen_by_both = RotationPlan::new(KeyPurpose::IdToken, tuaton_core::SignatureAlgorithm::Es256, &[], now, Duration::days(1)).unwrap();
        let first = rotate(store, KeyPurpose::IdToken, now, Duration::days(1)).await;
        assert_eq!(first.state, KeyState::Active);
        // The other's plan said "nothing active: sign at once"; recording it would
        // retire the first key the moment it started. Refused, nothing written.
        let before = audit::list(store, 0, 1000).await.unwrap().len();
        let mut tx = store.begin().await.unwrap();
        let e = keys::insert_pending(&mut tx, &seen_by_both.new_key("soft", "soft:late"), now, OPERATOR)
            .await
            .unwrap_err();
        drop(tx);
        assert!(matches!(e, KeysError::PlanStale { purpose: KeyPurpose::IdToken }), "{e:?}");
        assert!(!e.is_refusal(), "a race to retry, not a policy refusal");
        assert_eq!(keys::list(store.conn().await.unwrap().conn()).await.unwrap().len(), 1);
        assert_eq!(audit::list(store, 0, 1000).await.unwrap().len(), before);
    }

    async fn a_schedule_prepublishes_so_the_next_key_takes_over_on_time(store: &Store) {
        let (every, prepublish) = (Duration::days(90), Duration::days(2));
        let due = |all: &[ManagedKey]| keys::next_scheduled_rotation(KeyPurpose::IdToken, tuaton_core::SignatureAlgorithm::Es256, all, every, prepublish);
        assert_eq!(due(&[]), Some(OffsetDateTime::UNIX_EPOCH), "no key at all: make one now");
        let now = t0();
        let first = rotate(store, KeyPurpose::IdToken, now, prepublish).await;
        let all = keys::list(store.conn().await.unwrap().conn()).await.unwrap();
        assert_eq!(due(&all), Some(now + Duration::days(88)));
        // Another purpose's keys do not count.
        assert_eq!(keys::next_scheduled_rotation(KeyPurpose::Tsa, tuaton_core::SignatureAlgorithm::Es256, &all, every, prepublish), Some(OffsetDateTime::UNIX_EPOCH));
        let next = rotate(store, KeyPurpose::IdToken, now + Duration::days(88), prepublish).await;
        assert_eq!(next.activate_after, now + every, "the new key signs exactly `every` after the first");
        assert_eq!(due(&keys::list(store.conn().await.unwrap().conn()).await.unwrap()), None, "pending: nothing more to do");
        keys::tick(store, now + every).await.unwrap();
        assert_eq!(state(store, &first.id).await, KeyState::Retiring);
        assert_eq!(due(&keys::list(store.conn().await.unwrap().conn()).await.unwrap()), Some(now + every + Duration::days(88)));
    }

    async fn first_key_activates_at_once_and_a_rotation_prepublishes_the_next(store: &Store) {
        let now = t0();
        let first = rotate(store, KeyPurpose::IdToken, now, Duration::days(1)).await;
        assert_eq!(first.state, KeyState::Active, "nothing to protect: the first key signs at once");
        assert_eq!(keys::signing_key(store.conn().await.unwrap().conn(), KeyPurpose::IdToken, now).await.unwrap().unwrap().id, first.id);

        let next = rotate(store, KeyPurpose::IdToken, now, Duration::days(1)).await;
        assert_eq!(next.state, KeyState::Pending);
        assert_eq!(next.activate_after, now + Duration::days(1));
        // Published before it signs anything; the old key still signs.
        let published = keys::publishable(store.conn().await.unwrap().conn(), KeyPurpose::IdToken).await.unwrap();
        assert_eq!(ids(&published), vec![first.id.as_str(), next.id.as_str()]);
        let signer = keys::signing_key(store.conn().await.unwrap().conn(), KeyPurpose::IdToken, now + Duration::hours(23)).await.unwrap().unwrap();
        assert_eq!(signer.id, first.id);
        assert!(keys::due_for_activation(store.conn().await.unwrap().conn(), now + Duration::hours(23)).await.unwrap().is_empty());

        // A second rotation while one is pending is refused, before anything is generated.
        let all = keys::list(store.conn().await.unwrap().conn()).await.unwrap();
        let again = RotationPlan::new(KeyPurpose::IdToken, tuaton_core::SignatureAlgorithm::Es256, &all, now, Duration::days(1));
        assert!(matches!(again, Err(KeysError::AlreadyPending { ref id, .. }) if *id == next.id), "{again:?}");

        let later = now + Duration::days(1);
        assert_eq!(ids(&keys::due_for_activation(store.conn().await.unwrap().conn(), later).await.unwrap()), vec![next.id.as_str()]);
        let report = keys::tick(store, later).await.unwrap();
        assert_eq!(report.applied.len(), 2, "{report:?}");
        assert_eq!(state(store, &first.id).await, KeyState::Retiring);
        assert_eq!(state(store, &next.id).await, KeyState::Active);
        assert_eq!(keys::signing_key(store.conn().await.unwrap().conn(), KeyPurpose::IdToken, later).await.unwrap().unwrap().id, next.id);
        // Both still published: the old one verifies what it signed.
        assert_eq!(keys::publishable(store.conn().await.unwrap().conn(), KeyPurpose::IdToken).await.unwrap().len(), 2);
    }

    async fn at_most_one_active_key_per_purpose(store: &Store) {
        let now = t0();
        let a = rotate(store, KeyPurpose::Signer, now, Duration::ZERO).await;
        let b = rotate(store, KeyPurpose::Signer, now, Duration::ZERO).await;
        let c = rotate(store, KeyPurpose::Signer, now, Duration::ZERO).await;
        let other = rotate(store, KeyPurpose::Tsa, now, Duration::ZERO).await;
        let all = keys::list(store.conn().await.unwrap().conn()).await.unwrap();
        let active: Vec<_> = all.iter().filter(|k| k.state == KeyState::Active).map(|k| (k.purpose, k.id.as_str())).collect();
        assert_eq!(active, vec![(KeyPurpose::Signer, c.id.as_str()), (KeyPurpose::Tsa, other.id.as_str())]);
        assert_eq!(state(store, &a.id).await, KeyState::Retiring);
        assert_eq!(state(store, &b.id).await, KeyState::Retiring);
        // The database itself refuses a second active key, whatever the code does.
        let forced = sqlx::query("UPDATE managed_keys SET state = 'active', activated_ms = 1 WHERE id = $1")
            .bind(&b.id)
            .execute(store.conn().await.unwrap().conn())
            .await
            .map_err(StoreError::from);
        assert!(matches!(forced, Err(StoreError::Conflict { .. })), "{forced:?}");
        // And a second pending one.
        let all = keys::list(store.conn().await.unwrap().conn()).await.unwrap();
        let plan = RotationPlan::new(KeyPurpose::Signer, tuaton_core::SignatureAlgorithm::Es256, &all, now, Duration::days(1)).unwrap();
        for _ in 0..2 {
            let mut tx = store.begin().await.unwrap();
            let r = keys::insert_pending(&mut tx, &plan.new_key("soft", &format!("soft:{}", new_id())), now, OPERATOR).await;
            tx.commit().await.unwrap();
            if let Err(e) = r {
                assert!(matches!(e, KeysError::AlreadyPending { .. }), "{e:?}");
            }
        }
        let pending = keys::list(store.conn().await.unwrap().conn()).await.unwrap().into_iter().filter(|k| k.state == KeyState::Pending).count();
        assert_eq!(pending, 1);
    }

    async fn a_purpose_keeps_a_line_per_algorithm_and_rotating_one_leaves_the_others(store: &Store) {
        use tuaton_core::SignatureAlgorithm::{Es256, Ps256};
        let now = t0();
        let es = rotate_line(store, KeyPurpose::IdToken, Es256, now, Duration::ZERO).await;
        let ps = rotate_line(store, KeyPurpose::IdToken, Ps256, now, Duration::ZERO).await;
        assert_eq!((es.state, ps.state), (KeyState::Active, KeyState::Active), "each line's first key signs at once");
        let signer = |alg| async move {
            keys::signing_key_for(store.conn().await.unwrap().conn(), KeyPurpose::IdToken, alg, now)
                .await
                .unwrap()
                .map(|k| k.id)
        };
        assert_eq!(signer(Es256).await, Some(es.id.clone()));
        assert_eq!(signer(Ps256).await, Some(ps.id.clone()));
        // Rotating the PS256 line retires its key only.
        let next = rotate_line(store, KeyPurpose::IdToken, Ps256, now, Duration::ZERO).await;
        assert_eq!(state(store, &ps.id).await, KeyState::Retiring);
        assert_eq!(state(store, &es.id).await, KeyState::Active);
        assert_eq!(signer(Ps256).await, Some(next.id));
        assert_eq!(keys::publishable(store.conn().await.unwrap().conn(), KeyPurpose::IdToken).await.unwrap().len(), 3);
        let all = keys::list(store.conn().await.unwrap().conn()).await.unwrap();
        assert!(keys::next_scheduled_rotation(KeyPurpose::IdToken, tuaton_core::SignatureAlgorithm::Rs256, &all, Duration::days(90), Duration::ZERO)
            == Some(OffsetDateTime::UNIX_EPOCH), "an RS256 line has no key yet");
    }

    async fn states_only_move_forward(store: &Store) {
        let now = t0();
        let old = rotate(store, KeyPurpose::Ocsp, now, Duration::ZERO).await;
        let new = rotate(store, KeyPurpose::Ocsp, now, Duration::days(1)).await;
        // Pending cannot retire (it never signed), active cannot jump to retired.
        let e = keys::retire(store, &new.id, now, OPERATOR, None).await.unwrap_err();
        assert!(matches!(e, KeysError::Transition { source: TransitionError::Skips { .. }, .. }), "{e:?}");
        keys::tick(store, now + Duration::days(1)).await.unwrap();
        let later = now + Duration::days(1) + RETIRING_GRACE + Duration::seconds(1);
        keys::retire(store, &old.id, later, OPERATOR, None).await.unwrap();
        assert_eq!(state(store, &old.id).await, KeyState::Retired);
        // Retiring a retired key again, or an active one back, is refused.
        let e = keys::retire(store, &old.id, later, OPERATOR, None).await.unwrap_err();
        assert!(matches!(e, KeysError::Transition { .. }), "{e:?}");
        keys::destroy(store, &old.id, later, OPERATOR, None).await.unwrap();
        for r in [
            keys::destroy(store, &old.id, later, OPERATOR, None).await,
            keys::retire(store, &old.id, later, OPERATOR, Some("again")).await,
        ] {
            assert!(matches!(r, Err(KeysError::Transition { .. })), "{r:?}");
        }
        assert_eq!(state(store, &old.id).await, KeyState::Destroyed);
        // Nothing ever brings a destroyed key back.
        let all = keys::list(store.conn().await.unwrap().conn()).await.unwrap();
        assert!(keys::due_transitions(&all, later + Duration::days(365)).iter().all(|d| !matches!(d, keys::DueTransition::Activate { id } if *id == old.id)));
        assert!(matches!(keys::retire(store, "nope", later, OPERATOR, None).await, Err(KeysError::NotFound { .. })));
    }

    async fn every_transition_writes_an_audit_record(store: &Store) {
        let now = t0();
        let old = rotate(store, KeyPurpose::AuditAnchor, now, Duration::ZERO).await;
        let new = rotate(store, KeyPurpose::AuditAnchor, now, Duration::hours(1)).await;
        keys::tick(store, now + Duration::hours(1)).await.unwrap();
        keys::tick(store, now + Duration::hours(2)).await.unwrap();
        keys::destroy(store, &old.id, now + Duration::hours(3), OPERATOR, None).await.unwrap();
        let ok = |a: &str| (a.to_owned(), "success".to_owned());
        assert_eq!(
            key_records(store, &old.id).await,
            vec![ok("key.pending"), ok("key.active"), ok("key.retiring"), ok("key.retired"), ok("key.destroyed")]
        );
        assert_eq!(key_records(store, &new.id).await, vec![ok("key.pending"), ok("key.active")]);
        let recs = audit::list(store, 0, 1000).await.unwrap();
        let activation = recs.iter().find(|r| r.target == new.id && r.action == "key.active").unwrap();
        assert_eq!(activation.actor, "system");
        assert!(activation.details.contains(&old.id), "{}", activation.details);
        assert!(audit::verify(store).await.unwrap().is_intact());
    }

    async fn tick_is_idempotent_when_two_processes_run_it_at_once(store: &Store) {
        let now = t0();
        let old = rotate(store, KeyPurpose::IdToken, now, Duration::ZERO).await;
        let new = rotate(store, KeyPurpose::IdToken, now, Duration::minutes(10)).await;
        let tsa_old = rotate(store, KeyPurpose::Tsa, now, Duration::ZERO).await;
        let tsa_new = rotate(store, KeyPurpose::Tsa, now, Duration::minutes(10)).await;
        let due = now + Duration::minutes(10);
        for round in 0..3 {
            let (a, b) = tokio::join!(keys::tick(store, due), keys::tick(store, due));
            let applied = a.unwrap().applied.len() + b.unwrap().applied.len();
            assert_eq!(applied, if round == 0 { 4 } else { 0 }, "round {round}");
        }
        for (id, s) in [(&old.id, KeyState::Retiring), (&new.id, KeyState::Active), (&tsa_old.id, KeyState::Retiring), (&tsa_new.id, KeyState::Active)] {
            assert_eq!(state(store, id).await, s);
        }
        let activations = audit::list(store, 0, 1000).await.unwrap().into_iter().filter(|r| r.action == "key.active" && (r.target == new.id || r.target == tsa_new.id)).count();
        assert_eq!(activations, 2, "each activation audited exactly once");
        assert!(audit::verify(store).await.unwrap().is_intact());
    }

    async fn verify_until_only_grows_and_only_for_signing_keys(store: &Store) {
        let now = t0();
        let k = rotate(store, KeyPurpose::IdToken, now, Duration::ZERO).await;
        keys::extend_verify_until(store, &k.id, now + Duration::hours(2)).await.unwrap();
        keys::extend_verify_until(store, &k.id, now + Duration::hours(1)).await.unwrap();
        let got = keys::by_id(store.conn().await.unwrap().conn(), &k.id).await.unwrap().unwrap();
        assert_eq!(got.verify_until, Some(now + Duration::hours(2)));
        let pending = rotate(store, KeyPurpose::IdToken, now, Duration::days(1)).await;
        let e = keys::extend_verify_until(store, &pending.id, now).await.unwrap_err();
        assert!(matches!(e, KeysError::NotSigning { state: KeyState::Pending, .. }), "{e:?}");
        assert!(matches!(keys::extend_verify_until(store, "missing", now).await, Err(KeysError::NotFound { .. })));
    }

    async fn a_retiring_key_stays_published_until_what_it_signed_expires(store: &Store) {
        let now = t0();
        let old = rotate(store, KeyPurpose::IdToken, now, Duration::ZERO).await;
        keys::extend_verify_until(store, &old.id, now + Duration::hours(5)).await.unwrap();
        let new = rotate(store, KeyPurpose::IdToken, now, Duration::hours(1)).await;
        keys::tick(store, now + Duration::hours(1)).await.unwrap();
        // The retiring key still signs nothing but may be extended by a signer that raced the switch.
        keys::extend_verify_until(store, &old.id, now + Duration::hours(6)).await.unwrap();
        keys::tick(store, now + Duration::hours(5) + Duration::minutes(30)).await.unwrap();
        assert_eq!(state(store, &old.id).await, KeyState::Retiring, "still needed until hour 6");
        let published = keys::publishable(store.conn().await.unwrap().conn(), KeyPurpose::IdToken).await.unwrap();
        assert_eq!(ids(&published), vec![old.id.as_str(), new.id.as_str()]);
        keys::tick(store, now + Duration::hours(6) + Duration::seconds(1)).await.unwrap();
        assert_eq!(state(store, &old.id).await, KeyState::Retired);
        assert_eq!(ids(&keys::publishable(store.conn().await.unwrap().conn(), KeyPurpose::IdToken).await.unwrap()), vec![new.id.as_str()]);
        let e = keys::extend_verify_until(store, &old.id, now + Duration::hours(7)).await.unwrap_err();
        assert!(matches!(e, KeysError::NotSigning { state: KeyState::Retired, .. }), "{e:?}");
    }

    async fn destroy_is_refused_while_verifiable_unless_forced_with_a_reason(store: &Store) {
        let now = t0();
        let old = rotate(store, KeyPurpose::DocumentCa, now, Duration::ZERO).await;
        // A certificate it issued is valid for a year.
        keys::extend_verify_until(store, &old.id, now + Duration::days(365)).await.unwrap();
        let e = keys::destroy(store, &old.id, now, OPERATOR, None).await.unwrap_err();
        assert!(matches!(e, KeysError::StillActive { .. }), "{e:?}");
        rotate(store, KeyPurpose::DocumentCa, now, Duration::ZERO).await;
        let e = keys::destroy(store, &old.id, now + Duration::days(1), OPERATOR, None).await.unwrap_err();
        assert!(matches!(e, KeysError::StillVerifiable { until, .. } if until == now + Duration::days(365)), "{e:?}");
        assert!(e.is_refusal());
        assert!(e.to_string().contains("force"), "{e}");
        let e = keys::destroy(store, &old.id, now + Duration::days(1), OPERATOR, Some("  ")).await.unwrap_err();
        assert!(matches!(e, KeysError::ReasonRequired), "{e:?}");
        assert_eq!(state(store, &old.id).await, KeyState::Retiring);

        let done = keys::destroy(store, &old.id, now + Duration::days(1), OPERATOR, Some("HSM partition compromised")).await.unwrap();
        assert_eq!(done.state, KeyState::Destroyed);
        assert_eq!(done.destroy_reason.as_deref(), Some("HSM partition compromised"));
        let recs = audit::list(store, 0, 1000).await.unwrap();
        let mine: Vec<_> = recs.iter().filter(|r| r.target == old.id && r.action.starts_with("key.destroy")).collect();
        assert_eq!(mine.iter().filter(|r| r.outcome == "failure").count(), 3, "refusals are audited");
        let forced = mine.iter().find(|r| r.outcome == "success").unwrap();
        assert_eq!(forced.action, "key.destroyed");
        assert!(forced.details.contains("HSM partition compromised") && forced.details.contains("\"forced\":true"), "{}", forced.details);
    }

    async fn per_account_keys_need_an_account_and_are_not_rotated_by_purpose(store: &Store) {
        let now = t0();
        let plan = RotationPlan::new(KeyPurpose::UserSigning, tuaton_core::SignatureAlgorithm::Es256, &[], now, Duration::ZERO);
        assert!(matches!(plan, Err(KeysError::AccountMismatch { .. })), "{plan:?}");
        let mut accounts = Vec::new();
        for _ in 0..2 {
            let id = new_id();
            sqlx::query("INSERT INTO accounts (id, user_handle, state, ial, created_ms, updated_ms) VALUES ($1, $2, 'active', '2.1', 0, 0)")
                .bind(&id)
                .bind(new_id())
                .execute(store.conn().await.unwrap().conn())
                .await
                .unwrap();
            accounts.push(tuaton_core::AccountId::parse(&id).unwrap());
        }
        let new = |account_id: Option<tuaton_core::AccountId>| NewKey {
            purpose: KeyPurpose::UserSigning,
            account_id,
            algorithm: tuaton_core::SignatureAlgorithm::Es256,
            backend: "soft".into(),
            key_ref: format!("soft:{}", new_id()),
            activate_after: now,
            replaces: None,
        };
        let mut tx = store.begin().await.unwrap();
        let e = keys::insert_pending(&mut tx, &new(None), now, OPERATOR).await.unwrap_err();
        assert!(matches!(e, KeysError::AccountMismatch { .. }), "{e:?}");
        for a in &accounts {
            keys::insert_pending(&mut tx, &new(Some(a.clone())), now, OPERATOR).await.unwrap();
        }
        tx.commit().await.unwrap();
        keys::tick(store, now).await.unwrap();
        for a in &accounts {
            let k = keys::user_signing_key(store.conn().await.unwrap().conn(), a, now).await.unwrap().unwrap();
            assert_eq!(k.account_id.as_ref(), Some(a));
            // A user's own key may be retired without force: no service depends on it.
            keys::retire(store, &k.id, now, "account:x", None).await.unwrap();
        }
        assert!(keys::signing_key(store.conn().await.unwrap().conn(), KeyPurpose::UserSigning, now).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_from_two_connection_pools_on_postgres_applies_once() {
    // Two `Store`s on one database: what two `tuaton serve` processes look like.
    let Some(db) = tuaton_store::testing::TestDb::postgres().await else {
        return;
    };
    let other = Store::connect(&db.url(), &Default::default())
        .await
        .unwrap();
    let now = t0();
    let mut pairs = Vec::new();
    for p in [
        KeyPurpose::IdToken,
        KeyPurpose::Signer,
        KeyPurpose::Tsa,
        KeyPurpose::Ocsp,
    ] {
        let old = rotate(&db.store, p, now, Duration::ZERO).await;
        let new = rotate(&db.store, p, now, Duration::minutes(5)).await;
        pairs.push((old, new));
    }
    let due = now + Duration::minutes(5);
    let (a, b) = tokio::join!(keys::tick(&db.store, due), keys::tick(&other, due));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.applied.len() + b.applied.len(), 8, "{a:?} {b:?}");
    for (old, new) in &pairs {
        assert_eq!(state(&db.store, &old.id).await, KeyState::Retiring);
        assert_eq!(state(&db.store, &new.id).await, KeyState::Active);
        assert_eq!(key_records(&db.store, &new.id).await.len(), 2);
    }
    assert!(audit::verify(&db.store).await.unwrap().is_intact());
    other.close().await;
    db.cleanup().await;
}
