//! The JSON handlers hold no flow of their own: they extract, call the
//! service layer, and map the result. This test reads their source and
//! fails if one opens a transaction, builds or writes an audit record, or
//! reaches the store, the database driver or a protocol crate directly.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

/// What a handler may not name, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("begin(", "opens a transaction"),
    ("begin_with(", "opens a transaction"),
    (".commit(", "commits a transaction"),
    ("AuditEvent", "builds an audit record"),
    ("audit::", "writes an audit record"),
    ("tuaton_store", "reaches the store around the service layer"),
    ("sqlx", "reaches the database driver"),
    ("tuaton_passkeys", "runs a WebAuthn ceremony itself"),
    ("tuaton_proofing::check_card", "asks a registry itself"),
    ("tuaton_proofing::decide", "decides a level itself"),
];

#[test]
fn api_handlers_leave_transactions_audit_records_and_storage_to_the_service_layer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut read = 0;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        read += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (needle, what) in FORBIDDEN {
                if code.contains(needle) {
                    found.push(format!(
                        "{}:{}: {what}: {}",
                        path.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        read >= 4,
        "read only {read} handler files in {}",
        dir.display()
    );
    assert!(
        found.is_empty(),
        "handlers doing the service layer's work:\n{}",
        found.join("\n")
    );
}
