//! `tuaton audit …` against a database writer: the chain is signed into an
//! anchor file outside the database (by `tuaton audit anchor` and by a
//! serving process at shutdown), and `tuaton audit verify` catches what the
//! chain alone cannot — a consistently re-hashed rewrite, an emptied table
//! with a reset head — and a damaged or forged anchor line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use tuaton_store::audit;

mod common;
use common::*;

fn anchor_file(s: &Setup) -> std::path::PathBuf {
    std::path::Path::new(&s.data_dir()).join("audit-anchors.jsonl")
}

fn anchors(s: &Setup) -> Vec<Value> {
    std::fs::read_to_string(anchor_file(s))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rotate(s: &Setup, purpose: &str) {
    let o = s.run(&["keys", "rotate", "--purpose", purpose], &[]);
    assert!(o.status.success(), "{}", text(&o));
}

fn verify(s: &Setup) -> (Option<i32>, String, Value) {
    let o = s.run(&["audit", "verify"], &[]);
    let j = s.run(&["audit", "verify", "--json"], &[]);
    let v = serde_json::from_slice(&j.stdout).unwrap();
    (o.status.code(), text(&o), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_catch_a_re_hashed_rewrite_and_an_emptied_chain() {
    let s = Setup::new();
    rotate(&s, "id-token");
    let o = s.run(&["audit", "anchor"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    // The first anchor made the audit-anchor key (itself an audited step).
    let first = anchors(&s);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["alg"], "ES256");

    // A serving process signs the head once more when it stops.
    rotate(&s, "tsa");
    {
        let served = Served::start(&s, &[]);
        assert!(
            within(std::time::Duration::from_secs(20), || async {
                served.get("/healthz").await.is_some()
            })
            .await
        );
    }
    let all = anchors(&s);
    let store = s.store().await;
    let (last_seq, _) = audit::last_record(&store).await.unwrap().unwrap();
    assert_eq!(
        all.last().unwrap()["seq"],
        serde_json::json!(last_seq),
        "the shutdown anchor names the chain's end: {all:?}"
    );
    let (code, out, v) = verify(&s);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["intact"], true);
    assert_eq!(v["files"][0]["anchors_confirmed_by_backend"], all.len());
    assert!(
        out.contains(&format!("last anchored position {last_seq}")),
        "{out}"
    );

    // A database writer rewrites a record and re-hashes everything after it:
    // the chain verifies by itself, not against its anchors.
    let mut conn = store.conn().await.unwrap();
    for t in ["audit_log_no_update", "audit_log_no_delete"] {
        sqlx::query(&format!("DROP TRIGGER {t}"))
            .execute(conn.conn())
            .await
            .unwrap();
    }
    drop(conn);
    let records = audit::list(&store, 0, 1000).await.unwrap();
    let mut prev = audit::GENESIS_HASH.to_owned();
    for mut r in records {
        if r.seq == 1 {
            r.actor = "operator:someone-else".into();
        }
        r.prev_hash = prev.clone();
        r.hash = r.recomputed_hash();
        sqlx::query("UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&r.actor)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(r.seq)
            .execute(store.conn().await.unwrap().conn())
            .await
            .unwrap();
        prev = r.hash;
    }
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(store.conn().await.unwrap().conn())
        .await
        .unwrap();
    assert!(audit::verify(&store).await.unwrap().is_intact());
    let (code, out, v) = verify(&s);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the chain was rewritten"), "{out}");
    assert_eq!(v["broken"]["detail"]["kind"], "anchor_mismatch");

    // Or empties it and resets the head: an empty chain verifies by itself.
    sqlx::query("DELETE FROM audit_log")
        .execute(store.conn().await.unwrap().conn())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET seq = 0, hash = $1 WHERE id = 1")
        .bind(audit::GENESIS_HASH)
        .execute(store.conn().await.unwrap().conn())
        .await
        .unwrap();
    let (code, out, v) = verify(&s);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("records removed"), "{out}");
    assert_eq!(v["broken"]["detail"]["kind"], "truncated");
    assert_eq!(v["broken"]["detail"]["anchored_seq"], last_seq);
    store.close().await;
}

#[test]
fn a_damaged_or_forged_anchor_line_fails_the_check() {
    let s = Setup::new();
    rotate(&s, "id-token");
    assert!(s.run(&["audit", "anchor"], &[]).status.success());
    let mut line: Value = anchors(&s).remove(0);
    // A forger names a hash of their choosing under the real key.
    line["hash"] = Value::String("ab".repeat(32));
    let mut text_lines = std::fs::read_to_string(anchor_file(&s)).unwrap();
    text_lines.push_str(&format!("{line}\nnot json at all\n"));
    std::fs::write(anchor_file(&s), text_lines).unwrap();
    let (code, out, v) = verify(&s);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("line 2: its signature does not verify"),
        "{out}"
    );
    assert!(out.contains("line 3: not an anchor"), "{out}");
    assert_eq!(v["files"][0]["bad_anchors"].as_array().unwrap().len(), 2);

    // With --require-anchors, a deployment with none at all fails too.
    let fresh = Setup::new();
    rotate(&fresh, "id-token");
    let o = fresh.run(&["audit", "verify", "--require-anchors"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = fresh.run(&["audit", "verify"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
