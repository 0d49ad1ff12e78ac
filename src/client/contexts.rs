//! Contexts: named control planes (a URL and a default output format), kept in
//! `contexts.yaml` in the config dir. Their secrets live elsewhere (see `credentials`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};
use crate::output::Format;

pub const LOCAL: &str = "local";
pub const FILE: &str = "contexts.yaml";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Contexts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Format>,
}

pub fn path() -> PathBuf {
    crate::env::config_dir().join(FILE)
}

impl Contexts {
    pub fn load() -> Result<Contexts> {
        let path = path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| {
                CliError::failed(format!("{} is not valid: {e}", path.display()))
                    .hint("fix or delete the file; `tollgate context add` recreates entries")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contexts::default()),
            Err(e) => Err(CliError::failed(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn save(&self) -> Result<()> {
        let dir = crate::env::config_dir();
        crate::store::secrets::create_private_dir(&dir)
            .map_err(|e| CliError::failed(format!("cannot create {}: {e}", dir.display())))?;
        let text = serde_yaml::to_string(self)
            .map_err(|e| CliError::failed(format!("cannot encode contexts: {e}")))?;
        crate::store::secrets::write_private(&path(), text.as_bytes())
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path().display())))
    }

    /// The current context's name: the one set with `context use`, else `local`.
    pub fn current_name(&self) -> &str {
        self.current.as_deref().unwrap_or(LOCAL)
    }
}
