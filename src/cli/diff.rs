//! Unified diffs of two documents, coloured on a terminal; shared by `configs diff` and
//! `prompts diff`.

use std::io::IsTerminal;

use super::ctx::Ctx;
use crate::error::{CliError, ExitKind, Result};
use crate::output::ColorChoice;

/// Prints the unified diff of `before` (named `from`) and `after` (named `to`) and fails with
/// exit 1 and no message, the "changes" outcome of every `diff`.
pub fn show(ctx: &Ctx, before: &str, after: &str, from: &str, to: &str) -> Result<()> {
    let text = similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .header(from, to)
        .to_string();
    ctx.printer.text(&colour(ctx, &text))?;
    Err(CliError::new(ExitKind::Failed, ""))
}

fn colour(ctx: &Ctx, text: &str) -> String {
    let colour = !matches!(ctx.global.color, ColorChoice::Never)
        && crate::env::var(crate::env::NO_COLOR).is_none()
        && (std::io::stdout().is_terminal() || matches!(ctx.global.color, ColorChoice::Always));
    if !colour {
        return text.to_string();
    }
    text.lines()
        .map(|line| match line.chars().next() {
            Some('+') if !line.starts_with("+++") => format!("\x1b[32m{line}\x1b[0m\n"),
            Some('-') if !line.starts_with("---") => format!("\x1b[31m{line}\x1b[0m\n"),
            Some('@') => format!("\x1b[36m{line}\x1b[0m\n"),
            _ => format!("{line}\n"),
        })
        .collect()
}
