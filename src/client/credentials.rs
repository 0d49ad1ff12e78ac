//! API keys for contexts: in the OS keyring (service `tollgate`, user = context name), or in a
//! 0600 `credentials.yaml` where no keyring is reachable. Lookup order: `TOLLGATE_API_KEY`,
//! keyring, file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::env;
use crate::error::{CliError, Result};

const SERVICE: &str = "tollgate";
pub const FILE: &str = "credentials.yaml";

/// Where a credential was found or stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env,
    Keyring,
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env => write!(f, "the {} environment variable", env::TOLLGATE_API_KEY),
            Source::Keyring => f.write_str("the OS keyring"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

fn file_path() -> PathBuf {
    env::config_dir().join(FILE)
}

fn keyring_enabled() -> bool {
    !env::flag(env::TOLLGATE_NO_KEYRING)
}

fn entry(context: &str) -> Option<keyring::Entry> {
    keyring_enabled()
        .then(|| keyring::Entry::new(SERVICE, context).ok())
        .flatten()
}

fn read_file() -> Result<BTreeMap<String, String>> {
    let path = file_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_yaml::from_str(&text)
            .map_err(|e| CliError::failed(format!("{} is not valid: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(CliError::failed(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn write_file(map: &BTreeMap<String, String>) -> Result<()> {
    let path = file_path();
    crate::store::secrets::create_private_dir(&env::config_dir())?;
    let text = serde_yaml::to_string(map)
        .map_err(|e| CliError::failed(format!("cannot encode credentials: {e}")))?;
    crate::store::secrets::write_private(&path, text.as_bytes())
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))
}

/// The key to use for `context`, and where it came from.
pub fn lookup(context: &str) -> Result<Option<(String, Source)>> {
    if let Some(key) = env::var(env::TOLLGATE_API_KEY) {
        return Ok(Some((key, Source::Env)));
    }
    if let Some(key) = entry(context).and_then(|e| e.get_password().ok()) {
        return Ok(Some((key, Source::Keyring)));
    }
    Ok(read_file()?
        .remove(context)
        .map(|key| (key, Source::File(file_path()))))
}

/// Stores `key` for `context`: in the keyring when one answers, else in the 0600 file (and
/// says so, once, on stderr).
pub fn store(context: &str, key: &str) -> Result<Source> {
    if let Some(entry) = entry(context) {
        if entry.set_password(key).is_ok() {
            // A key left in the file from an earlier fallback would shadow nothing, but it is
            // a stale secret on disk: remove it.
            remove_from_file(context)?;
            return Ok(Source::Keyring);
        }
    }
    let mut map = read_file()?;
    map.insert(context.to_string(), key.to_string());
    write_file(&map)?;
    if keyring_enabled() {
        eprintln!(
            "warning: no OS keyring is reachable; stored the key in {} (mode 0600)",
            file_path().display()
        );
    }
    Ok(Source::File(file_path()))
}

/// Removes the stored key of `context` from the keyring and the file. True if one existed.
pub fn remove(context: &str) -> Result<bool> {
    let in_keyring = entry(context).is_some_and(|e| e.delete_credential().is_ok());
    Ok(remove_from_file(context)? || in_keyring)
}

fn remove_from_file(context: &str) -> Result<bool> {
    let mut map = read_file()?;
    let existed = map.remove(context).is_some();
    if existed {
        write_file(&map)?;
    }
    Ok(existed)
}
