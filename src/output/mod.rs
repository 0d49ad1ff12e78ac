//! Everything the CLI shows. Data goes to stdout only; progress, prompts, notes, warnings and
//! errors go to stderr. Piping never switches the format, it only drops colour and progress.

pub mod progress;
pub mod prompt;

use std::io::{IsTerminal, Write};

use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;

use crate::error::{CliError, ExitKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
    Ndjson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use clap::ValueEnum;
        s.serialize_str(
            self.to_possible_value()
                .expect("no skipped variants")
                .get_name(),
        )
    }
}

impl<'de> serde::Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use clap::ValueEnum;
        let s = String::deserialize(d)?;
        Format::from_str(&s, true).map_err(serde::de::Error::custom)
    }
}

/// A resource shown as one row of a list table.
pub trait Row {
    const HEADERS: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

/// A resource shown alone, as a two-column field/value table.
pub trait Fields {
    fn fields(&self) -> Vec<(&'static str, String)>;
}

pub struct Printer {
    pub format: Format,
    pub quiet: bool,
    /// Colour on stderr (errors, notes).
    pub color: bool,
}

impl Printer {
    pub fn new(format: Format, quiet: bool, color: ColorChoice) -> Printer {
        let color = use_color(color, std::io::stderr().is_terminal());
        Printer {
            format,
            quiet,
            color,
        }
    }

    /// A list: a table, a JSON or YAML array, or one JSON object per line.
    pub fn list<T: Serialize + Row>(&self, items: &[T]) -> Result<()> {
        match self.format {
            Format::Table => self.table(T::HEADERS, items.iter().map(Row::cells).collect()),
            Format::Ndjson => items.iter().try_for_each(|i| self.line(i)),
            _ => self.document(&items),
        }
    }

    /// Rows already made into cells, as a table; `(none)` on stderr when there are none.
    pub fn table(&self, headers: &[&str], rows: Vec<Vec<String>>) -> Result<()> {
        if rows.is_empty() {
            self.note("(none)");
            return Ok(());
        }
        let mut table = new_table();
        table.set_header(headers.to_vec());
        for row in rows {
            table.add_row(row);
        }
        write_out(&format!("{table}\n"))
    }

    /// One resource: a field/value table, or the object as a document.
    pub fn one<T: Serialize + Fields>(&self, item: &T) -> Result<()> {
        match self.format {
            Format::Table => {
                let mut table = new_table();
                for (field, value) in item.fields() {
                    table.add_row(vec![field.to_string(), value]);
                }
                write_out(&format!("{table}\n"))
            }
            _ => self.document(item),
        }
    }

    /// Any value as a JSON/YAML document (and as pretty JSON for `table`, which has no better
    /// shape for free-form data).
    pub fn document<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let text = match self.format {
            Format::Yaml => to_yaml(value)?,
            Format::Ndjson => return self.line(value),
            Format::Json | Format::Table => {
                serde_json::to_string_pretty(value).map_err(encode_error)? + "\n"
            }
        };
        write_out(&text)
    }

    /// One JSON object on one line, flushed.
    pub fn line<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        write_out(&(serde_json::to_string(value).map_err(encode_error)? + "\n"))
    }

    /// Plain text to stdout (for `table` output of things that are text, like a diff).
    pub fn text(&self, text: &str) -> Result<()> {
        write_out(text)
    }

    /// A note for a person, on stderr; silent with `-q`.
    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    pub fn warn(&self, message: &str) {
        eprintln!("{}: {message}", self.paint("warning", "33"));
    }

    pub fn paint(&self, text: &str, ansi: &str) -> String {
        paint(self.color, text, ansi)
    }

    /// Prints an error as `error:`, its details, and `hint:` on stderr; with `-o json` also as
    /// one JSON object.
    pub fn error(&self, err: &CliError) {
        let mut text = format!("{}: {}\n", self.paint("error", "1;31"), err.message);
        for d in &err.details {
            text.push_str(&format!("  {d}\n"));
        }
        if let Some(h) = &err.hint {
            text.push_str(&format!("{}: {h}\n", self.paint("hint", "1;36")));
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
        if self.format == Format::Json {
            let json = serde_json::json!({"error": {
                "message": err.message,
                "exit_code": err.exit_code(),
                "details": err.details,
                "hint": err.hint,
            }});
            eprintln!("{json}");
        }
    }
}

/// Whether to colour a stream: `--color`, else not with NO_COLOR, else only on a terminal.
pub fn use_color(choice: ColorChoice, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => crate::env::var(crate::env::NO_COLOR).is_none() && terminal,
    }
}

/// `text` in an ANSI style such as `1;31` when `on`, else as is.
pub fn paint(on: bool, text: &str, ansi: &str) -> String {
    if on {
        format!("\x1b[{ansi}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn to_yaml<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_yaml::to_string(value).map_err(encode_error)
}

fn encode_error(e: impl std::fmt::Display) -> CliError {
    CliError::failed(format!("cannot encode output: {e}"))
}

fn new_table() -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if let Some(width) = crate::env::var(crate::env::COLUMNS).and_then(|c| c.parse().ok()) {
        table.set_width(width);
    }
    table
}

/// Writes to stdout; a closed pipe (`| head`) ends the command quietly with success.
fn write_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                CliError::new(ExitKind::BrokenPipe, "")
            } else {
                CliError::from(e)
            }
        })
}

/// Shows an optional value in a table cell.
pub fn cell(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}
