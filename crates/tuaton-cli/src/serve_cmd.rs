//! `tuaton serve`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use tuaton_core::SystemClock;
use tuaton_server::settings::LogFormat;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Development mode: SQLite in the data directory, software keys and fictional registries from keys-dev/.
    #[arg(long)]
    dev: bool,
    /// Write logs as JSON lines (same as TUATON_LOG_FORMAT=json).
    #[arg(long)]
    log_json: bool,
}

pub(crate) async fn run(config: Option<&Path>, args: ServeArgs) -> ExitCode {
    let (mut settings, store) = match crate::open(config, args.dev).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    if args.log_json {
        settings.log_format = LogFormat::Json;
    }
    tuaton_server::telemetry::init_logging(settings.log_format);
    if settings.dev {
        tracing::warn!(
            "development mode: keys and registries from keys-dev/ are for development only"
        );
    }
    let listener = match tokio::net::TcpListener::bind(settings.listen).await {
        Ok(l) => l,
        Err(e) => {
            return crate::fail(format!(
                "cannot listen on {} (TUATON_LISTEN): {e}",
                settings.listen
            ));
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(listen = %addr, public_url = %settings.public_url, engine = ?store.engine(), "serving");
    let grace = settings.shutdown_grace;
    let limits = settings.connection_limits();
    let state = match tuaton_server::AppState::from_settings(
        settings,
        store.clone(),
        Arc::new(SystemClock),
    ) {
        Ok(s) => s,
        Err(e) => return crate::fail(e),
    };
    // A sealing key made at this start seals every passkey row as it
    // stands (the rows stored before sealing began); a failure stops the
    // start, since unsealed rows would not log in.
    if state.services().passkey_seal.1 {
        match state.idm().seal_every_passkey().await {
            Ok(n) => tracing::info!(
                rows = n,
                "a new passkey sealing key: every passkey row sealed"
            ),
            Err(e) => {
                let _ = std::fs::remove_file(&state.settings().passkey_seal_file);
                return crate::fail(format!("cannot seal the passkey rows: {e}"));
            }
        }
    }
    if state.services().card_registry.is_none() {
        tracing::warn!(
            "no card-status registry configured (TUATON_CARD_REGISTRY_URL): proofing answers 503 until one is"
        );
    }
    let metrics = match state.settings().metrics_listen {
        Some(at) => match tokio::net::TcpListener::bind(at).await {
            Ok(l) => {
                tracing::info!(listen = %at, "serving /metrics on its own listener");
                let router = tuaton_server::health::metrics_router(state.clone());
                Some(tokio::spawn(tuaton_server::serve(
                    l,
                    router,
                    std::future::pending(),
                    grace,
                    limits,
                )))
            }
            Err(e) => {
                return crate::fail(format!(
                    "cannot listen on {at} (TUATON_METRICS_LISTEN): {e}"
                ));
            }
        },
        None => None,
    };
    if state.settings().dev {
        // A development server publishes an id-token key from its first start.
        let made = tuaton_idm::custody::ensure_active(
            state.store(),
            &state.services().keys,
            tuaton_store::keys::KeyPurpose::IdToken,
            tuaton_core::SignatureAlgorithm::Es256,
            time::OffsetDateTime::now_utc(),
        )
        .await;
        if let Err(e) = made {
            return crate::fail(format!("cannot make the development id-token key: {e}"));
        }
        // And a CA hierarchy, so time-stamping and signing work at once.
        let made = state
            .idm()
            .certify_hierarchy(time::OffsetDateTime::now_utc(), "system", true)
            .await;
        if let Err(e) = made {
            return crate::fail(format!("cannot make the development CA hierarchy: {e}"));
        }
    }
    let upkeep = tuaton_server::maintenance::spawn(state.clone());
    let app = tuaton_server::build_router(state.clone());
    let result = tuaton_server::serve(listener, app, shutdown_signal(), grace, limits).await;
    upkeep.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    // The last word of the chain this process saw, signed outside the database.
    tuaton_server::maintenance::anchor_audit(&state, true).await;
    store.close().await;
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(format!("server error: {e}")),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
