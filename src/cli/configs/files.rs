//! Reading config files: one file, `-` for stdin, or every YAML/JSON file in a folder.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{CliError, Result};
use crate::gateway::config;

/// A config document read from somewhere, with the name it will be saved under.
pub struct Desired {
    pub source: String,
    pub name: String,
    pub config: Value,
}

/// The text of a file, or of standard input for `-`.
pub fn read_text(source: &str) -> Result<String> {
    if source == "-" {
        return std::io::read_to_string(std::io::stdin())
            .map_err(|e| CliError::failed(format!("cannot read standard input: {e}")));
    }
    std::fs::read_to_string(source).map_err(|e| {
        CliError::failed(format!("cannot read {source}: {e}"))
            .hint("give the path of a YAML or JSON file, or - for standard input")
    })
}

/// Parses YAML or JSON from a file or stdin.
pub fn read_value(source: &str) -> Result<Value> {
    config::parse_document(&read_text(source)?)
        .map_err(|e| CliError::failed(format!("{source}: {e}")))
}

/// Validates a config locally, failing with every error and its path.
pub fn check(source: &str, value: &Value) -> Result<()> {
    config::validate(value).map_err(|errors| {
        CliError::failed(format!(
            "{source}: invalid config ({} errors)",
            errors.len()
        ))
        .details(errors.iter().map(ToString::to_string).collect())
        .hint("fix the fields named above; `tollgate configs validate -f FILE` checks offline")
    })
}

/// The config inside a `{name, config, ...}` document (what `configs get -o yaml` prints), or
/// the document itself when it is a bare config.
pub fn unwrap_document(value: Value) -> Value {
    match value {
        Value::Object(mut map) if map.contains_key("name") && map.contains_key("config") => {
            map.remove("config").unwrap_or_default()
        }
        other => other,
    }
}

/// A document with `name` and `config` (as `configs get -o yaml` prints) names itself; a bare
/// config is named after its file.
fn desired(source: &str, value: Value) -> Result<Desired> {
    if let Some(Value::String(name)) = value.get("name").filter(|_| value.get("config").is_some()) {
        return Ok(Desired {
            source: source.into(),
            name: name.clone(),
            config: unwrap_document(value),
        });
    }
    let stem = Path::new(source).file_stem().and_then(|s| s.to_str());
    match stem {
        Some(stem) if source != "-" => Ok(Desired {
            source: source.into(),
            name: stem.into(),
            config: value,
        }),
        _ => Err(CliError::usage(format!(
            "{source}: a config read from standard input needs a name"
        ))
        .hint("wrap it as {name: ..., config: {...}}, the shape `configs get -o yaml` prints")),
    }
}

fn folder_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::usage(format!(
            "{} holds no .yaml, .yml or .json files",
            dir.display()
        )));
    }
    Ok(files)
}

/// The files `source` names: itself, or every YAML/JSON file of a folder, sorted.
pub fn sources(source: &str) -> Result<Vec<String>> {
    if source != "-" && Path::new(source).is_dir() {
        Ok(folder_files(Path::new(source))?
            .iter()
            .map(|p| p.display().to_string())
            .collect())
    } else {
        Ok(vec![source.to_string()])
    }
}

/// Reads and validates every config named by `source` (file, folder or `-`). Fails with every
/// problem of every file before anything is applied.
pub fn read_all(source: &str) -> Result<Vec<Desired>> {
    let mut all = Vec::new();
    let mut problems = Vec::new();
    for source in &sources(source)? {
        match read_value(source).and_then(|v| desired(source, v)) {
            Ok(d) => match config::validate(&d.config) {
                Ok(()) => all.push(d),
                Err(errors) => problems.extend(errors.iter().map(|e| format!("{source}: {e}"))),
            },
            Err(e) => problems.push(e.message),
        }
    }
    if let Some(dup) = all
        .iter()
        .enumerate()
        .find_map(|(i, d)| all[..i].iter().find(|o| o.name == d.name).map(|o| (o, d)))
    {
        problems.push(format!(
            "{} and {} both define the config {:?}",
            dup.0.source, dup.1.source, dup.1.name
        ));
    }
    if problems.is_empty() {
        Ok(all)
    } else {
        Err(
            CliError::failed("some config files are invalid; nothing was changed")
                .details(problems)
                .hint("fix the problems above and run the command again"),
        )
    }
}
