//! Host keys: read from `HostKey` files, or made on first start for the embedded default.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use twine::conch::crypto::OsRandom;
use twine::conch::keys::{self, openssh, HostKeySigner, KeyError, KeySpec, PrivateKey};

/// Loads every readable host key (each key once); unreadable files and unsupported types
/// are logged and skipped, as sshd does.
pub(crate) fn load(paths: &[String]) -> Vec<Arc<dyn HostKeySigner>> {
    let mut out: Vec<Arc<dyn HostKeySigner>> = Vec::new();
    for path in paths {
        let contents = match std::fs::read(path) {
            Ok(contents) => contents,
            Err(err) => {
                log::error!("Unable to load host key: {path}: {err}");
                continue;
            }
        };
        match keys::load_private_key(&contents, &mut || None) {
            Ok(loaded) => {
                let key = loaded.key;
                if out.iter().any(|k| k.public_key() == key.public_key()) {
                    log::debug!("ignoring duplicate host key in {path}");
                    continue;
                }
                // A second key of a type is not used for key exchange (the first one is), but
                // is announced and proven for UpdateHostKeys, as sshd does.
                log::debug!(
                    "host key: {path} {} {}",
                    key.public_key().key_type().name(),
                    key.public_key().fingerprint(keys::FingerprintHash::Sha256)
                );
                out.push(Arc::new(key));
            }
            Err(KeyError::UnsupportedType(kind)) => {
                log::warn!(
                    "Unable to load host key \"{path}\": unsupported key type {kind}; skipped"
                );
            }
            Err(err) => log::error!("Unable to load host key \"{path}\": {err}"),
        }
    }
    out
}

/// The embedded default's keys in `dir`, made (Ed25519 and ECDSA P-256) if missing.
pub(crate) fn ensure(dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for (name, spec) in [
        ("ssh_host_ed25519_key", KeySpec::Ed25519),
        ("ssh_host_ecdsa_key", KeySpec::Ecdsa(keys::EcdsaCurve::P256)),
    ] {
        let path = dir.join(name);
        if !path.exists() {
            let mut rng = OsRandom::new();
            let key = PrivateKey::generate(spec, &mut rng).map_err(|e| e.to_string())?;
            let text = openssh::encode(&key, "conchd host key", None, &mut rng)
                .map_err(|e| e.to_string())?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            file.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
            let public = format!("{}\n", key.public_key().to_openssh());
            std::fs::write(dir.join(format!("{name}.pub")), public)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            log::info!("generated host key {}", path.display());
        }
        paths.push(path.display().to_string());
    }
    Ok(paths)
}
