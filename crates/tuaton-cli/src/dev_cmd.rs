//! `tuaton dev …`: development-only material.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use ring::rand::{SecureRandom, SystemRandom};
use tuaton_idm::custody::DEV_MASTER_KEY;

#[derive(Subcommand)]
pub(crate) enum DevCommand {
    /// Create the development key material in keys-dev/ (never used outside `serve --dev`).
    ///
    /// Writes the development master key that seals software keys. Existing
    /// material is kept unless --force is given; replacing the master key makes
    /// software keys sealed under the old one unreadable.
    Init {
        /// The keys-dev directory.
        #[arg(long, default_value = "keys-dev", value_name = "DIR")]
        dir: PathBuf,
        /// Replace existing material.
        #[arg(long)]
        force: bool,
    },
}

pub(crate) async fn run(cmd: DevCommand) -> ExitCode {
    let DevCommand::Init { dir, force } = cmd;
    match init(&dir, force) {
        Ok(created) => {
            for line in created {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(e),
    }
}

fn init(dir: &Path, force: bool) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut report = Vec::new();
    let key_path = dir.join(DEV_MASTER_KEY);
    if key_path.exists() && !force {
        report.push(format!(
            "kept {} (use --force to replace)",
            key_path.display()
        ));
    } else {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| "the system random source failed".to_owned())?;
        let text = format!("{}\n", hex::encode(key));
        write_private(&key_path, text.as_bytes())?;
        report.push(format!(
            "wrote {} (development master key; never use it in production)",
            key_path.display()
        ));
    }
    Ok(report)
}

/// Writes a file readable only by its owner.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict {}: {e}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
