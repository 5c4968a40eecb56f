//! A secret given in the environment (`TUATON_MASTER_KEY`,
//! `TUATON_PKCS11_PIN`) leaves it before the process does anything else.
//!
//! An environment is readable by the process's user for as long as it runs
//! (`/proc/PID/environ`) and is inherited by whatever it starts; removing a
//! variable in a running process (`unsetenv`) is not sound once threads
//! exist, and Tuaton has no unsafe code. So at start, while still
//! single-threaded, the binary re-executes itself in place (same process,
//! same id): the variable removed, its value handed over through a pipe on
//! standard input, and the matching `_FILE` setting pointing at
//! `/dev/stdin`, which the key backend reads once when it opens.

use std::process::ExitCode;

/// The secret variables and the file settings that stand in for them.
const HANDOVERS: [(&str, &str); 2] = [
    ("TUATON_MASTER_KEY", "TUATON_MASTER_KEY_FILE"),
    ("TUATON_PKCS11_PIN", "TUATON_PKCS11_PIN_FILE"),
];

/// Re-executes the binary without the one secret variable that is set (and
/// whose `_FILE` setting is not). Returns `None` when there is nothing to
/// do — none set, or a combination the settings will refuse with their own
/// sentence — and an exit code only when the re-execution failed.
#[cfg(unix)]
pub(crate) fn hand_over() -> Option<ExitCode> {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt as _;

    let set: Vec<&(&str, &str)> = HANDOVERS
        .iter()
        .filter(|(var, _)| std::env::var_os(var).is_some())
        .collect();
    let [(var, file_var)] = set[..] else {
        return None;
    };
    if std::env::var_os(file_var).is_some() {
        return None;
    }
    // Not valid UTF-8: left for the settings to refuse, naming the variable.
    let value = zeroize::Zeroizing::new(std::env::var(var).ok()?);
    let fail = |what: &str, e: std::io::Error| {
        eprintln!(
            "error: cannot take {var} out of the environment ({what}: {e}); give it as {file_var} instead"
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
    let e = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env_remove(var)
        .env(file_var, "/dev/stdin")
        .stdin(reader)
        .exec();
    fail("re-executing", e)
}

/// Elsewhere the variable stays (read when the backend opens).
#[cfg(not(unix))]
pub(crate) fn hand_over() -> Option<ExitCode> {
    None
}
