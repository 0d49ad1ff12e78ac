//! Prompts that refuse to ask when nobody can answer: without a terminal on stdin and stderr,
//! or with `--no-input`, they fail with a hint that names the flag to pass instead.

use std::io::IsTerminal;

use crate::error::{CliError, ExitKind, Result};

pub fn can_prompt(no_input: bool) -> bool {
    !no_input && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn interrupted(e: dialoguer::Error) -> CliError {
    let dialoguer::Error::IO(e) = e;
    if e.kind() == std::io::ErrorKind::Interrupted {
        CliError::new(ExitKind::Interrupted, "interrupted")
    } else {
        CliError::from(e)
    }
}

/// Confirms a destructive action: `--yes` skips, a terminal asks, anything else is refused.
pub fn confirm(yes: bool, no_input: bool, question: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !can_prompt(no_input) {
        return Err(
            CliError::usage(format!("refusing to {question} without confirmation"))
                .hint("pass --yes to confirm when not running at a terminal"),
        );
    }
    let ok = dialoguer::Confirm::new()
        .with_prompt(format!("{question}?"))
        .default(false)
        .interact()
        .map_err(interrupted)?;
    if ok {
        Ok(())
    } else {
        Err(CliError::failed("cancelled"))
    }
}

/// Reads a secret from a hidden prompt; `flag` names the non-interactive alternative.
pub fn secret(no_input: bool, prompt: &str, flag: &str) -> Result<String> {
    if !can_prompt(no_input) {
        return Err(CliError::usage(format!("{prompt}: no terminal to ask on"))
            .hint(format!("pass {flag} and give the secret on standard input")));
    }
    dialoguer::Password::new()
        .with_prompt(prompt)
        .interact()
        .map_err(interrupted)
}

/// Reads one line at a prompt; `None` at end of input (Ctrl-D).
pub fn line(prompt: &str) -> Result<Option<String>> {
    match dialoguer::Input::<String>::new()
        .with_prompt(prompt)
        .allow_empty(true)
        .interact_text()
    {
        Ok(text) => Ok(Some(text)),
        Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(interrupted(e)),
    }
}

/// Reads a secret from all of stdin, trimmed (a service-account JSON file spans many lines);
/// refuses an empty one.
pub fn secret_from_stdin(what: &str) -> Result<String> {
    let secret = std::io::read_to_string(std::io::stdin())?
        .trim()
        .to_string();
    if secret.is_empty() {
        return Err(
            CliError::usage(format!("no {what} on standard input")).hint(format!(
                "pipe the {what} into the command, e.g. `printenv OPENAI_API_KEY | tollgate ...`"
            )),
        );
    }
    Ok(secret)
}
