//! Every environment variable tollgate reads, in one place.

pub const TOLLGATE_ADDR: &str = "TOLLGATE_ADDR";
pub const TOLLGATE_DATA_DIR: &str = "TOLLGATE_DATA_DIR";
pub const TOLLGATE_DATABASE_URL: &str = "TOLLGATE_DATABASE_URL";
pub const TOLLGATE_CONFIG_DIR: &str = "TOLLGATE_CONFIG_DIR";
pub const TOLLGATE_MASTER_KEY: &str = "TOLLGATE_MASTER_KEY";
pub const TOLLGATE_CONTEXT: &str = "TOLLGATE_CONTEXT";
pub const TOLLGATE_URL: &str = "TOLLGATE_URL";
pub const TOLLGATE_API_KEY: &str = "TOLLGATE_API_KEY";
pub const TOLLGATE_OUTPUT: &str = "TOLLGATE_OUTPUT";
pub const TOLLGATE_NO_KEYRING: &str = "TOLLGATE_NO_KEYRING";
pub const TOLLGATE_TIMEOUT: &str = "TOLLGATE_TIMEOUT";
pub const NO_COLOR: &str = "NO_COLOR";
pub const COLUMNS: &str = "COLUMNS";

/// A variable's value, treating an empty string as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// True for `1`, `true`, `yes` (any case).
pub fn flag(name: &str) -> bool {
    var(name).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

fn home() -> std::path::PathBuf {
    var("HOME").map(Into::into).unwrap_or_else(|| ".".into())
}

/// `$TOLLGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tollgate`, else `~/.config/tollgate`.
pub fn config_dir() -> std::path::PathBuf {
    var(TOLLGATE_CONFIG_DIR).map(Into::into).unwrap_or_else(|| {
        var("XDG_CONFIG_HOME")
            .map(Into::into)
            .unwrap_or_else(|| home().join(".config"))
            .join("tollgate")
    })
}

/// `$XDG_DATA_HOME/tollgate`, else `~/.local/share/tollgate` (the server's default data dir).
pub fn default_data_dir() -> std::path::PathBuf {
    var("XDG_DATA_HOME")
        .map(Into::into)
        .unwrap_or_else(|| home().join(".local/share"))
        .join("tollgate")
}
