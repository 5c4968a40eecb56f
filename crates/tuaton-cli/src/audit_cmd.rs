//! `tuaton audit …`.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk the whole hash chain and report the first broken link.
    ///
    /// Exit 0 when the chain is intact, 1 when a link is broken, 64 when the check could not run.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(config: Option<&Path>, cmd: AuditCommand) -> ExitCode {
    let AuditCommand::Verify { json } = cmd;
    let (_, store) = match crate::open(config, false).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let report = tuaton_store::audit::verify(&store).await;
    store.close().await;
    let report = match report {
        Ok(r) => r,
        Err(e) => return crate::fail(format!("cannot read the audit log: {e}")),
    };
    if json {
        let out = serde_json::json!({
            "intact": report.is_intact(),
            "records_checked": report.records_checked,
            "last_good_hash": report.last_good_hash,
            "broken": report.broken.as_ref().map(|b| serde_json::json!({ "seq": b.seq(), "detail": b, "message": b.to_string() })),
        });
        println!("{out}");
    } else if let Some(b) = &report.broken {
        println!("audit chain BROKEN at record {}: {b}", b.seq());
        println!("{} record(s) before it verified", report.records_checked);
    } else {
        println!(
            "audit chain intact: {} record(s), head {}",
            report.records_checked, report.last_good_hash
        );
    }
    if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_FAILED)
    }
}
