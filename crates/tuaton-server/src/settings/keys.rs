//! The key backend's inputs and the unattended rotation schedule. What they
//! mean is `crate::custody`'s; this only gathers them.

use std::path::PathBuf;

use crate::custody::{
    ENV_MASTER_KEY, ENV_PKCS11_PIN, KeyBackendInputs, KeyBackendSettings, RotationSchedule,
    parse_schedules,
};

use super::SettingsError;
use super::fields::Fields;

/// The key backend the settings choose; in development mode, the software
/// keys in `TUATON_DEV_KEYS_DIR` when nothing else is set.
pub(super) fn key_backend(f: &Fields, dev: bool) -> Result<KeyBackendSettings, SettingsError> {
    let dev_keys_dir = f
        .path("TUATON_DEV_KEYS_DIR")
        .unwrap_or_else(|| PathBuf::from("keys-dev"));
    KeyBackendInputs {
        master_key_file: f.path("TUATON_MASTER_KEY_FILE"),
        master_key_in_env: f.secret_is_given(ENV_MASTER_KEY),
        pkcs11_module: f.path("TUATON_PKCS11_MODULE"),
        pkcs11_token: f.text("TUATON_PKCS11_TOKEN"),
        pkcs11_pin_file: f.path("TUATON_PKCS11_PIN_FILE"),
        pkcs11_pin_in_env: f.secret_is_given(ENV_PKCS11_PIN),
    }
    .choose(dev, &dev_keys_dir)
    .map_err(SettingsError::KeyBackend)
}

/// `TUATON_ROTATION`: the purposes rotated unattended; none by default.
pub(super) fn rotation(f: &Fields) -> Result<Vec<RotationSchedule>, SettingsError> {
    let rotation = f.get(
        "TUATON_ROTATION",
        "PURPOSE:ALG:EVERY:PREPUBLISH items separated by commas, such as id-token:ES256:90d:2d",
        parse_schedules,
    )?;
    Ok(rotation.unwrap_or_default())
}
