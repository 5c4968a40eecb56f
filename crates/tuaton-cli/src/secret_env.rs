//! A secret given in the environment (`TUATON_MASTER_KEY`,
//! `TUATON_PKCS11_PIN`) leaves it before the process does anything else.
//!
//! An environment is readable by the process's user for as long as it runs
//! (`/proc/PID/environ`) and is inherited by whatever it starts; removing a
//! variable in a running process (`unsetenv`) is not sound once threads
//! exist, and Tuaton has no unsafe code. So at start, while still
//! single-threaded, the binary re-executes itself in place (same process,
//! same id): the variable removed, its value handed over through a pipe on
//! standard input, and `TUATON_SECRET_ON_STDIN` naming the variable it
//! stands for. The settings then see the variable as given (so every rule
//! about combining it with other settings still applies) and the key
//! backend reads it, once, from there (`tuaton_keys::secret_env`).

use std::process::ExitCode;

/// The secret variables.
const SECRET_VARS: [&str; 2] = ["TUATON_MASTER_KEY", "TUATON_PKCS11_PIN"];

/// Re-executes the binary without the one secret variable that is set.
/// Returns `None` when there is nothing to do — none set, or both (a
/// combination the settings refuse with their own sentence) — and an exit
/// code only when the re-execution failed.
#[cfg(unix)]
pub(crate) fn hand_over() -> Option<ExitCode> {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt as _;

    let set: Vec<&str> = SECRET_VARS
        .into_iter()
        .filter(|var| std::env::var_os(var).is_some())
        .collect();
    let [var] = set[..] else {
        return None;
    };
    // Not valid UTF-8: left for the settings to refuse, naming the variable.
    let value = zeroize::Zeroizing::new(std::env::var(var).ok()?);
    let fail = |what: &str, e: std::io::Error| {
        eprintln!(
            "error: cannot take {var} out of the environment ({what}: {e}); give it as {var}_FILE instead"
        );
        Some(ExitCode::from(crate::EXIT_USAGE))
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail("finding this binary", e),
    };
    let (reader, mut writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return fail("making a pipe", e),
    };
    if let Err(e) = writer.write_all(value.as_bytes()) {
        return fail("writing the pipe", e);
    }
    drop(writer);
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let e = command
        .args(args)
        .env_remove(var)
        .env(tuaton_keys::secret_env::HANDED_OVER, var)
        .stdin(reader)
        .exec();
    fail("re-executing", e)
}

/// Elsewhere the variable stays (read when the backend opens).
#[cfg(not(unix))]
pub(crate) fn hand_over() -> Option<ExitCode> {
    None
}
