//! The audit chain on both engines: appends, concurrency, and tampering caught.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use time::OffsetDateTime;
use tuaton_store::audit::{self, AuditEvent, BrokenLink};
use tuaton_store::{Engine, Store, engine_tests};

async fn append_n(store: &Store, n: usize) {
    for i in 0..n {
        let ev = AuditEvent::success("operator:test", "test.event", format!("target-{i}"))
            .with_details(json!({ "i": i }));
        audit::append_alone(store, OffsetDateTime::now_utc(), &ev)
            .await
            .unwrap();
    }
}

/// Removes the append-only triggers, as an attacker with DDL rights could.
async fn drop_guards(store: &Store) {
    let stmts: &[&str] = match store.engine() {
        Engine::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        Engine::Postgres => &["DROP TRIGGER audit_log_no_change ON audit_log"],
    };
    for s in stmts {
        sqlx::query(s)
            .execute(store.conn().await.unwrap().conn())
            .await
            .unwrap();
    }
}

async fn broken(store: &Store) -> BrokenLink {
    let report = audit::verify(store).await.unwrap();
    report.broken.expect("tampering must be detected")
}

engine_tests! {
    async fn empty_chain_verifies(store: &Store) {
        let r = audit::verify(store).await.unwrap();
        assert!(r.is_intact());
        assert_eq!(r.records_checked, 0);
    }

    async fn appended_records_link_to_their_predecessor(store: &Store) {
        append_n(store, 5).await;
        let recs = audit::list(store, 0, 100).await.unwrap();
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[0].prev_hash, audit::GENESIS_HASH);
        for w in recs.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash);
            assert_eq!(w[1].seq, w[0].seq + 1);
        }
        let r = audit::verify(store).await.unwrap();
        assert!(r.is_intact(), "{r:?}");
        assert_eq!(r.records_checked, 5);
        assert_eq!(r.last_good_hash, recs[4].hash);
    }

    async fn a_rolled_back_change_leaves_no_record(store: &Store) {
        append_n(store, 1).await;
        let mut tx = store.begin().await.unwrap();
        audit::append(&mut tx, OffsetDateTime::now_utc(), &AuditEvent::success("system", "x", "y")).await.unwrap();
        tx.rollback().await.unwrap();
        append_n(store, 1).await;
        let recs = audit::list(store, 0, 10).await.unwrap();
        assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert!(audit::verify(store).await.unwrap().is_intact());
    }

    async fn concurrent_writers_keep_one_chain(store: &Store) {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let ev = AuditEvent::success(format!("operator:w{w}"), "test.concurrent", format!("{i}"));
                    audit::append_alone(&store, OffsetDateTime::now_utc(), &ev).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let r = audit::verify(store).await.unwrap();
        assert!(r.is_intact(), "{r:?}");
        assert_eq!(r.records_checked, 80);
    }

    async fn the_log_refuses_update_and_delete(store: &Store) {
        append_n(store, 2).await;
        assert!(sqlx::query("UPDATE audit_log SET actor = 'x' WHERE seq = 1").execute(store.conn().await.unwrap().conn()).await.is_err());
        assert!(sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(store.conn().await.unwrap().conn()).await.is_err());
        assert!(audit::verify(store).await.unwrap().is_intact());
    }

    async fn a_record_that_skips_the_head_is_refused(store: &Store) {
        append_n(store, 2).await;
        let recs = audit::list(store, 0, 10).await.unwrap();
        // A forged third record carrying a plausible link, inserted without taking the head.
        let forged = sqlx::query(
            "INSERT INTO audit_log (seq, at_ms, actor, action, target, outcome, details, prev_hash, hash) \
             VALUES (3, 0, 'operator:x', 'x', 'y', 'success', '{}', $1, $2)",
        )
        .bind(&recs[1].hash)
        .bind(audit::GENESIS_HASH)
        .execute(store.conn().await.unwrap().conn())
        .await;
        assert!(forged.is_err(), "an insert that does not follow the head must fail");
        let r = audit::verify(store).await.unwrap();
        assert!(r.is_intact(), "{r:?}");
        assert_eq!(r.records_checked, 2);
        // The head names the last record's hash (moved on by the insert itself).
        assert_eq!(r.last_good_hash, recs[1].hash);
    }

    async fn verify_catches_an_edited_row(store: &Store) {
        append_n(store, 5).await;
        drop_guards(store).await;
        sqlx::query("UPDATE audit_log SET outcome = 'failure' WHERE seq = 3").execute(store.conn().await.unwrap().conn()).await.unwrap();
        assert_eq!(broken(store).await, BrokenLink::ContentChanged { seq: 3 });
    }

    async fn verify_catches_an_edit_with_a_recomputed_hash(store: &Store) {
        // A forger who recomputes the edited row's own hash still breaks the next link.
        append_n(store, 5).await;
        drop_guards(store).await;
        sqlx::query("UPDATE audit_log SET hash = 'ab' WHERE seq = 2").execute(store.conn().await.unwrap().conn()).await.unwrap();
        let b = broken(store).await;
        assert_eq!(b, BrokenLink::ContentChanged { seq: 2 });
    }

    async fn verify_catches_a_deleted_row(store: &Store) {
        append_n(store, 5).await;
        drop_guards(store).await;
        sqlx::query("DELETE FROM audit_log WHERE seq = 3").execute(store.conn().await.unwrap().conn()).await.unwrap();
        assert_eq!(broken(store).await, BrokenLink::Gap { expected: 3, found: 4 });
    }

    async fn verify_catches_a_deleted_tail(store: &Store) {
        append_n(store, 5).await;
        drop_guards(store).await;
        sqlx::query("DELETE FROM audit_log WHERE seq = 5").execute(store.conn().await.unwrap().conn()).await.unwrap();
        assert_eq!(broken(store).await, BrokenLink::HeadMismatch { head_seq: 5, last_seq: 4 });
    }

    async fn verify_catches_reordered_rows(store: &Store) {
        append_n(store, 5).await;
        drop_guards(store).await;
        // Swap records 2 and 4 by renumbering them through a free number.
        for (from, to) in [(2, 100), (4, 2), (100, 4)] {
            sqlx::query("UPDATE audit_log SET seq = $1 WHERE seq = $2").bind(to).bind(from).execute(store.conn().await.unwrap().conn()).await.unwrap();
        }
        let b = broken(store).await;
        assert_eq!(b.seq(), 2, "{b:?}");
    }

    async fn verify_catches_a_renumbered_deletion(store: &Store) {
        // Delete record 2 and shift the rest down so there is no gap.
        append_n(store, 4).await;
        drop_guards(store).await;
        sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(store.conn().await.unwrap().conn()).await.unwrap();
        for s in 3..=4 {
            sqlx::query("UPDATE audit_log SET seq = $1 WHERE seq = $2").bind(s - 1).bind(s).execute(store.conn().await.unwrap().conn()).await.unwrap();
        }
        assert_eq!(broken(store).await, BrokenLink::ContentChanged { seq: 2 });
    }

    async fn verify_catches_a_re_hashed_row_by_the_next_link(store: &Store) {
        // A forger who edits record 3 and gives it the right hash for its new
        // content breaks the link from record 4.
        append_n(store, 5).await;
        drop_guards(store).await;
        let mut rec = audit::list(store, 2, 1).await.unwrap().remove(0);
        rec.outcome = "failure".into();
        let forged = rec.recomputed_hash();
        sqlx::query("UPDATE audit_log SET outcome = 'failure', hash = $1 WHERE seq = 3")
            .bind(&forged)
            .execute(store.conn().await.unwrap().conn())
            .await
            .unwrap();
        assert_eq!(broken(store).await, BrokenLink::LinkBroken { seq: 4 });
    }

    async fn a_chain_re_hashed_from_an_edit_onwards_passes_alone_but_not_its_anchor(store: &Store) {
        append_n(store, 5).await;
        let anchor = audit::last_record(store).await.unwrap().unwrap();
        assert_eq!(anchor.0, 5);
        let early = audit::list(store, 1, 1).await.unwrap().remove(0);
        let early = (early.seq, early.hash);
        drop_guards(store).await;
        rewrite_from(store, 3).await;
        assert!(audit::verify(store).await.unwrap().is_intact(), "consistent by itself");
        let r = audit::verify_against(store, &[early.clone(), anchor]).await.unwrap();
        assert_eq!(r.broken, Some(BrokenLink::AnchorMismatch { seq: 5 }));
        assert_eq!(r.last_anchored, Some(2), "the last position still as anchored");
    }

    async fn an_emptied_chain_with_a_reset_head_is_caught_by_its_anchor(store: &Store) {
        append_n(store, 4).await;
        let anchor = audit::last_record(store).await.unwrap().unwrap();
        drop_guards(store).await;
        let mut conn = store.conn().await.unwrap();
        sqlx::query("DELETE FROM audit_log").execute(conn.conn()).await.unwrap();
        sqlx::query("UPDATE audit_head SET seq = 0, hash = $1 WHERE id = 1")
            .bind(audit::GENESIS_HASH)
            .execute(conn.conn())
            .await
            .unwrap();
        drop(conn);
        assert!(audit::verify(store).await.unwrap().is_intact(), "an empty chain verifies by itself");
        let r = audit::verify_against(store, &[anchor]).await.unwrap();
        assert_eq!(r.broken, Some(BrokenLink::Truncated { anchored_seq: 4, last_seq: 0 }));
        assert_eq!(r.last_anchored, None);
    }
}

/// Rewrites every record from `from` on with new content and a consistent
/// chain of hashes, and moves the head to match: what a database writer who
/// knows the encoding can do.
async fn rewrite_from(store: &Store, from: i64) {
    let records = audit::list(store, 0, 1000).await.unwrap();
    let mut prev = audit::GENESIS_HASH.to_owned();
    let mut conn = store.conn().await.unwrap();
    for mut rec in records {
        if rec.seq >= from {
            if rec.seq == from {
                rec.details = "{\"i\":999}".into();
            }
            rec.prev_hash = prev.clone();
            rec.hash = rec.recomputed_hash();
            sqlx::query(
                "UPDATE audit_log SET details = $1, prev_hash = $2, hash = $3 WHERE seq = $4",
            )
            .bind(&rec.details)
            .bind(&rec.prev_hash)
            .bind(&rec.hash)
            .bind(rec.seq)
            .execute(conn.conn())
            .await
            .unwrap();
        }
        prev = rec.hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(conn.conn())
        .await
        .unwrap();
}
