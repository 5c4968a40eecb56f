//! A SoftHSM2 token of its own for a benchmark binary (feature `testing`).
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when the PKCS#11 module initialises, and
//! the workspace forbids the `unsafe` `std::env::set_var`; so the binary
//! makes a token in a temporary directory and re-executes itself with the
//! variable set. Needs Debian's `softhsm2`.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

/// Where Debian installs SoftHSM2's module, unless `TUATON_PKCS11_MODULE`
/// names another.
pub fn softhsm_module() -> PathBuf {
    std::env::var_os("TUATON_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"))
}

/// Returns at once in the re-executed binary (`child_var` set), where the
/// token `label` with user PIN `pin` is ready. Otherwise makes that token
/// in a temporary directory, runs the binary again with the same
/// arguments beside it, and returns the exit status to end with; the
/// directory is removed before this returns.
pub fn in_own_softhsm_token(child_var: &str, label: &str, pin: &str) -> Result<(), i32> {
    if std::env::var_os(child_var).is_some() {
        return Ok(());
    }
    let made = (|| -> std::io::Result<i32> {
        let tmp = tempfile::tempdir()?;
        let tokens = tmp.path().join("tokens");
        std::fs::create_dir(&tokens)?;
        let conf = tmp.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nlog.level = ERROR\n",
                tokens.display()
            ),
        )?;
        let init = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", "so-bench", "--pin", pin])
            .output()?;
        let code = if init.status.success() {
            Command::new(std::env::current_exe()?)
                .args(std::env::args_os().skip(1))
                .env(child_var, "1")
                .env("SOFTHSM2_CONF", &conf)
                .status()?
                .code()
                .unwrap_or(1)
        } else {
            eprintln!(
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
            1
        };
        tmp.close()?;
        Ok(code)
    })();
    match made {
        Ok(code) => Err(code),
        Err(e) => {
            eprintln!("cannot make a SoftHSM2 token (apt-get install -y softhsm2): {e}");
            Err(1)
        }
    }
}

/// A session of the caller's own on `backend`'s token `label`, logged in
/// with `pin`, and the handle of `key`'s private key on it: for measuring
/// raw `C_Sign` beside the backend.
pub fn own_session(
    backend: &crate::Pkcs11Backend,
    label: &str,
    pin: &str,
    key: &crate::KeyRef,
) -> (cryptoki::session::Session, cryptoki::object::ObjectHandle) {
    use cryptoki::object::{Attribute, ObjectClass};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let ctx = backend.context();
    let slot = ctx
        .get_slots_with_token()
        .expect("the module lists its slots")
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|t| t.label() == label))
        .expect("the token is present");
    let session = ctx.open_ro_session(slot).expect("a session opens");
    // The backend has logged the application in already; login is per app.
    let _ = session.login(UserType::User, Some(&AuthPin::from(pin)));
    let (_, id) = key.pkcs11_id().expect("a PKCS#11 key reference");
    let handle = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.to_vec()),
        ])
        .expect("the key is found")[0];
    (session, handle)
}
