//! Audit appends per second: SQLite and PostgreSQL, one writer and eight.
//!
//! Each append is its own committed transaction (the worst case: in real use
//! the record rides in the transaction of the change it records). SQLite runs
//! in WAL mode with `synchronous = FULL` (every commit fsynced); PostgreSQL
//! with its defaults (`fsync = on`, `synchronous_commit = on`). PostgreSQL is
//! measured when `TUATON_TEST_POSTGRES_URL` is set (scripts/bench sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use time::OffsetDateTime;
use tuaton_store::Store;
use tuaton_store::audit::{self, AuditEvent};
use tuaton_store::testing::TestDb;

fn event(i: u64) -> AuditEvent {
    AuditEvent::success("account:bench", "bench.append", format!("target-{i}"))
        .with_details(serde_json::json!({ "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" }))
}

async fn appends(store: &Store, writers: u64, per_writer: u64) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                audit::append_alone(
                    &store,
                    OffsetDateTime::now_utc(),
                    &event(w * per_writer + i),
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

fn bench_engine(c: &mut Criterion, name: &str, rt: &tokio::runtime::Runtime, db: &TestDb) {
    let mut g = c.benchmark_group(format!("audit_append/{name}"));
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    for writers in [1u64, 8] {
        g.throughput(Throughput::Elements(writers * 50));
        g.bench_function(format!("{writers}_writers"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += appends(&db.store, writers, 50).await;
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

fn audit_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sqlite = rt.block_on(TestDb::sqlite());
    bench_engine(c, "sqlite_wal_sync_full", &rt, &sqlite);
    rt.block_on(sqlite.cleanup());
    if let Some(pg) = rt.block_on(TestDb::postgres()) {
        bench_engine(c, "postgres_fsync_on", &rt, &pg);
        let report = rt.block_on(audit::verify(&pg.store)).unwrap();
        assert!(report.is_intact());
        rt.block_on(pg.cleanup());
    }
}

criterion_group!(benches, audit_benches);
criterion_main!(benches);
