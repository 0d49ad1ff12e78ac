//! CLI errors: each carries the exit code it maps to and an optional hint. `main` renders them.

use std::fmt;

/// The exit codes of docs/output.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// stdout was closed by the reader (`| head`): not an error, exit 0 quietly.
    BrokenPipe = 0,
    Failed = 1,
    Usage = 2,
    Auth = 3,
    NotFound = 4,
    Conflict = 5,
    Unreachable = 6,
    Limited = 7,
    Interrupted = 130,
}

#[derive(Debug)]
pub struct CliError {
    pub kind: ExitKind,
    pub message: String,
    pub hint: Option<String>,
    /// Itemised problems, e.g. every validation error of a config, printed one per line.
    pub details: Vec<String>,
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        CliError {
            kind,
            message: message.into(),
            hint: None,
            details: Vec::new(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Failed, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Usage, message)
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
    pub fn exit_code(&self) -> u8 {
        self.kind as u8
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::failed(e.to_string())
    }
}
