//! `tuaton pki …`: the certificate authority's hierarchy for operators.
//!
//! The keys are the key lifecycle's (`tuaton keys`); this command makes the
//! certificates that go with them, through `tuaton_idm::pki`, which a
//! server's upkeep runs too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use time::OffsetDateTime;
use tuaton_store::certificates::{self, StoredCertificate};

use crate::keys_cmd::{Common, open_backend, print_json, rfc3339};

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
    /// Make the CA hierarchy: a root, an issuing CA, the time-stamping
    /// authority and the OCSP responder, each key in the key backend.
    ///
    /// A purpose without an active key gets one; every key without a
    /// current certificate gets one. Running it again makes only what is
    /// missing (after `tuaton keys rotate document-ca`, say). Needs
    /// TUATON_CA_ORGANIZATION and TUATON_CA_POLICY outside development mode.
    Init {
        #[command(flatten)]
        common: Common,
    },
    /// List the hierarchy's certificates (not signers').
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a signer's, the TSA's or the OCSP responder's certificate by
    /// its serial number (hex, as `tuaton pki list` shows it); the CRL and
    /// the OCSP responder answer with it at once. Audited.
    Revoke {
        /// The certificate's serial number, hex.
        serial: String,
        /// Why, as RFC 5280 names it: keyCompromise (a lost or stolen
        /// device), affiliationChanged, superseded, cessationOfOperation,
        /// certificateHold, privilegeWithdrawn or unspecified.
        #[arg(long, default_value = "unspecified")]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// Take a certificate off hold (revoked with certificateHold) by its
    /// serial number: it is valid again, and the CRL and the OCSP
    /// responder say so at once. A certificate revoked for another reason
    /// stays revoked. Audited.
    Release {
        /// The certificate's serial number, hex.
        serial: String,
        #[command(flatten)]
        common: Common,
    },
    /// Write the root certificate valid now, PEM, for relying parties to
    /// install as their trust anchor.
    Root {
        /// The file to write; standard output when left out.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

pub(crate) async fn run(config: Option<&Path>, cmd: PkiCommand) -> ExitCode {
    match cmd {
        PkiCommand::Init { common } => init(config, &common).await,
        PkiCommand::List { common } => list(config, &common).await,
        PkiCommand::Root { out, common } => root(config, out.as_deref(), &common).await,
        PkiCommand::Revoke {
            serial,
            reason,
            common,
        } => revoke(config, &serial, &reason, &common).await,
        PkiCommand::Release { serial, common } => release(config, &serial, &common).await,
    }
}

async fn release(config: Option<&Path>, serial: &str, common: &Common) -> ExitCode {
    let (_, store) = match crate::open(config, common.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let released = tuaton_idm::pki::release_certificate(
        &store,
        serial,
        &crate::operator_actor(),
        OffsetDateTime::now_utc(),
    )
    .await;
    store.close().await;
    match released {
        Ok(cert) => {
            print(std::slice::from_ref(&cert), common.json);
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(e),
    }
}

async fn revoke(config: Option<&Path>, serial: &str, reason: &str, common: &Common) -> ExitCode {
    let (_, store) = match crate::open(config, common.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let revoked = tuaton_idm::pki::revoke_certificate(
        &store,
        serial,
        reason,
        &crate::operator_actor(),
        OffsetDateTime::now_utc(),
    )
    .await;
    store.close().await;
    match revoked {
        Ok(cert) => {
            print(std::slice::from_ref(&cert), common.json);
            if !common.json && cert.role != certificates::CertificateRole::Signer {
                println!(
                    "its key is not certified again: rotate it (tuaton keys rotate --purpose {})",
                    cert.role
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(e),
    }
}

fn print(certs: &[StoredCertificate], json: bool) {
    if json {
        print_json(&certs);
        return;
    }
    if certs.is_empty() {
        println!("no certificates");
    }
    for c in certs {
        let revoked = c
            .revoked
            .as_ref()
            .map(|r| format!("  revoked {} ({})", rfc3339(r.at), r.reason))
            .unwrap_or_default();
        println!(
            "{}  {:<10}  key {}  serial {}  valid {} to {}{revoked}",
            c.id,
            c.role,
            c.key_id,
            c.serial_hex,
            rfc3339(c.not_before),
            rfc3339(c.not_after)
        );
    }
}

async fn init(config: Option<&Path>, common: &Common) -> ExitCode {
    let (settings, store) = match crate::open(config, common.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let Some(plan) = settings.ca.clone() else {
        store.close().await;
        return crate::fail(
            "no certificate authority is configured: set TUATON_CA_ORGANIZATION and TUATON_CA_POLICY (docs/operators/pki.md)",
        );
    };
    let backend = match open_backend(&settings) {
        Ok(b) => b,
        Err(e) => {
            store.close().await;
            return crate::fail(e);
        }
    };
    let made = tuaton_idm::pki::certify_hierarchy(
        &store,
        &backend,
        &plan,
        OffsetDateTime::now_utc(),
        &crate::operator_actor(),
        true,
    )
    .await;
    store.close().await;
    match made {
        Ok(certs) => {
            if !common.json && certs.is_empty() {
                println!("the hierarchy is complete; nothing was made");
                return ExitCode::SUCCESS;
            }
            print(&certs, common.json);
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(e),
    }
}

async fn list(config: Option<&Path>, common: &Common) -> ExitCode {
    let (_, store) = match crate::open(config, common.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let certs = async { certificates::hierarchy(store.conn().await?.conn()).await }.await;
    store.close().await;
    match certs {
        Ok(certs) => {
            print(&certs, common.json);
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(e),
    }
}

async fn root(config: Option<&Path>, out: Option<&Path>, common: &Common) -> ExitCode {
    let (_, store) = match crate::open(config, common.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let current = tuaton_idm::pki::current(
        &store,
        tuaton_store::keys::KeyPurpose::RootCa,
        OffsetDateTime::now_utc(),
    )
    .await;
    store.close().await;
    let (_, cert) = match current {
        Ok(v) => v,
        Err(e) => return crate::fail(e),
    };
    let pem = tuaton_idm::pki::pem(&cert.der);
    match out {
        None => print!("{pem}"),
        Some(path) => {
            if let Err(e) = std::fs::write(path, pem) {
                return crate::fail(format!("cannot write {}: {e}", path.display()));
            }
            if !common.json {
                println!(
                    "wrote the root certificate {} to {}",
                    cert.id,
                    path.display()
                );
            }
        }
    }
    if common.json {
        print_json(&cert);
    }
    ExitCode::SUCCESS
}
