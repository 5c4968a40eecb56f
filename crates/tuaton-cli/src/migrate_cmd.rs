//! `tuaton migrate`: brings the schema up to date as its owner, and on
//! PostgreSQL grants the service role only what `tuaton serve` needs.

use std::path::Path;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct MigrateArgs {
    /// PostgreSQL: the role `tuaton serve` connects as; it is granted reading
    /// and writing of the ordinary tables, appending to the audit log and
    /// moving its head, and nothing it could use to drop a trigger.
    #[arg(long, value_name = "ROLE")]
    grant_to: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(config: Option<&Path>, args: MigrateArgs) -> ExitCode {
    // Opening the store applies what is pending (the URL must be the owner's).
    let (_, store) = match crate::open(config, false).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let granted = match &args.grant_to {
        Some(role) => match store.grant_service_role(role).await {
            Ok(()) => Some(role.clone()),
            Err(e) => {
                store.close().await;
                return crate::fail(format!("cannot grant the service role its rights: {e}"));
            }
        },
        None => None,
    };
    let version = store.schema_version();
    store.close().await;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "schema_version": version, "granted_to": granted })
        );
    } else {
        println!("the schema is up to date (migration {version})");
        if let Some(role) = granted {
            println!(
                "role {role} may read and write the service's tables, append to the audit log and nothing more"
            );
        }
    }
    ExitCode::SUCCESS
}
