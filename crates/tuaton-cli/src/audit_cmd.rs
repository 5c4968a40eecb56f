//! `tuaton audit …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use tuaton_idm::anchors::{self, AnchorFile, Anchored};
use tuaton_keys::KeyBackend;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk the whole hash chain, check it against the signed anchors kept
    /// outside the database, and report the first broken link.
    ///
    /// Exit 0 when the chain and every anchor verify, 1 when a link is broken
    /// or an anchor is damaged, 64 when the check could not run.
    Verify {
        /// The anchor file (default: TUATON_AUDIT_ANCHOR_FILE, or
        /// audit-anchors.jsonl in the data dir). Give it more than once for the
        /// files of several instances.
        #[arg(long, value_name = "FILE")]
        anchors: Vec<PathBuf>,
        /// Fail when there is no anchor at all (a deployment that anchors).
        #[arg(long)]
        require_anchors: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign the chain's head now and append the anchor (upkeep does this every
    /// TUATON_AUDIT_ANCHOR_INTERVAL_SECS and at shutdown).
    Anchor {
        /// Use the development key backend (keys-dev), as `tuaton serve --dev` does.
        #[arg(long)]
        dev: bool,
        /// Print the anchor as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(config: Option<&Path>, cmd: AuditCommand) -> ExitCode {
    match cmd {
        AuditCommand::Verify {
            anchors,
            require_anchors,
            json,
        } => verify(config, anchors, require_anchors, json).await,
        AuditCommand::Anchor { dev, json } => anchor(config, dev, json).await,
    }
}

async fn anchor(config: Option<&Path>, dev: bool, json: bool) -> ExitCode {
    let (settings, store) = match crate::open(config, dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let backend: Arc<dyn KeyBackend> = match crate::keys_cmd::open_backend(&settings) {
        Ok(b) => b,
        Err(e) => return crate::fail(format!("cannot open the key backend: {e}")),
    };
    let file = AnchorFile::new(&settings.audit_anchor_file);
    let now = time::OffsetDateTime::now_utc();
    let outcome = anchors::anchor_now(&store, &backend, &file, None, now).await;
    store.close().await;
    match outcome {
        Ok(Anchored::Written(a)) => {
            if json {
                println!("{}", serde_json::to_string(&a).unwrap_or_default());
            } else {
                println!(
                    "anchored record {} ({}) in {}",
                    a.seq,
                    a.hash,
                    file.path().display()
                );
            }
            ExitCode::SUCCESS
        }
        Ok(Anchored::Unchanged(_)) => {
            println!("the audit chain is empty: nothing to anchor");
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(format!("cannot anchor the audit chain: {e}")),
    }
}

async fn verify(
    config: Option<&Path>,
    files: Vec<PathBuf>,
    require_anchors: bool,
    json: bool,
) -> ExitCode {
    let (settings, store) = match crate::open(config, false).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let files = if files.is_empty() {
        vec![settings.audit_anchor_file.clone()]
    } else {
        files
    };
    // The backend confirms the anchors' keys where it still holds them; an
    // auditor's machine without it checks with the keys the anchors carry.
    let backend = crate::keys_cmd::open_backend(&settings).ok();
    let mut reports = Vec::new();
    for path in &files {
        let file = AnchorFile::new(path);
        match anchors::verify(&store, backend.as_ref(), &file).await {
            Ok(r) => reports.push((path.clone(), r)),
            Err(e) => {
                store.close().await;
                return crate::fail(format!("cannot check the audit log: {e}"));
            }
        }
    }
    store.close().await;
    let anchored: usize = reports.iter().map(|(_, r)| r.anchors_checked).sum();
    // Only an anchor that matched a record counts as one.
    let missing_anchors =
        require_anchors && reports.iter().all(|(_, r)| r.chain.last_anchored.is_none());
    let intact = reports.iter().all(|(_, r)| r.is_intact()) && !missing_anchors;
    if json {
        let broken = reports.iter().find_map(|(_, r)| r.chain.broken.as_ref());
        let first = reports.first().map(|(_, r)| r);
        let out = serde_json::json!({
            "intact": intact,
            "records_checked": first.map(|r| r.chain.records_checked),
            "last_good_hash": first.map(|r| r.chain.last_good_hash.clone()),
            "broken": broken.map(|b| serde_json::json!({ "seq": b.seq(), "detail": b, "message": b.to_string() })),
            "anchors_checked": anchored,
            "files": reports.iter().map(|(path, r)| serde_json::json!({
                "anchor_file": path,
                "records_checked": r.chain.records_checked,
                "last_good_hash": r.chain.last_good_hash,
                "last_anchored": r.chain.last_anchored,
                "last_anchor_at": r.last_anchor_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
                "anchors_checked": r.anchors_checked,
                "anchors_confirmed_by_backend": r.anchors_confirmed_by_backend,
                "bad_anchors": r.bad_anchors.iter().map(|(line, why)| serde_json::json!({ "line": line, "reason": why })).collect::<Vec<_>>(),
                "broken": r.chain.broken.as_ref().map(|b| serde_json::json!({ "seq": b.seq(), "detail": b, "message": b.to_string() })),
            })).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        for (path, r) in &reports {
            print_report(path, r);
        }
        if missing_anchors {
            println!("no anchor found, and --require-anchors was given");
        }
    }
    if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_FAILED)
    }
}

fn print_report(path: &Path, r: &anchors::AnchoredReport) {
    let anchored = match r.chain.last_anchored {
        Some(seq) => format!("last anchored position {seq}"),
        None => "no anchored position reached".to_owned(),
    };
    if r.anchors_checked == 0 && r.bad_anchors.is_empty() {
        println!("no anchor in {} (is this the anchor file?)", path.display());
    }
    for (line, why) in &r.bad_anchors {
        println!("anchor file {} line {line}: {why}", path.display());
    }
    match &r.chain.broken {
        Some(b) => {
            println!("audit chain BROKEN at record {}: {b}", b.seq());
            println!(
                "{} record(s) before it verified; {anchored}",
                r.chain.records_checked
            );
        }
        None => println!(
            "audit chain intact: {} record(s), head {}; {} anchor(s) from {} checked ({} confirmed by the key backend), {anchored}",
            r.chain.records_checked,
            r.chain.last_good_hash,
            r.anchors_checked,
            path.display(),
            r.anchors_confirmed_by_backend,
        ),
    }
}
