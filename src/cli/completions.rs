//! Shell completions, and the generated CLI reference and man pages (checked in under
//! completions/ and docs/, kept current by a test).

use clap::Args;
use clap_complete::Shell;

use crate::error::Result;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tollgate completions bash > ~/.local/share/bash-completion/completions/tollgate\n  tollgate completions zsh > \"${fpath[1]}/_tollgate\""
)]
pub struct CompletionsArgs {
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> Result<()> {
    use std::io::Write;
    std::io::stdout().write_all(&write_completions(args.shell))?;
    Ok(())
}

pub fn write_completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut super::command(), "tollgate", &mut out);
    out
}

/// The command tree with a fixed help width, so generated files do not depend on the terminal.
fn fixed_width_command() -> clap::Command {
    super::command().term_width(100)
}

/// One man page per command and subcommand: (file name, roff text).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut pages = Vec::new();
    collect_man(fixed_width_command(), "tollgate", &mut pages);
    pages
}

fn collect_man(cmd: clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let cmd = cmd.name(name.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .expect("rendering to memory cannot fail");
    pages.push((format!("{name}.1"), out));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect_man(sub.clone(), &format!("{name}-{}", sub.get_name()), pages);
    }
}

/// The CLI reference in Markdown: every command's usage, options and help.
pub fn markdown_reference() -> String {
    let mut cmd = fixed_width_command();
    cmd.build();
    let mut out = String::from(
        "# tollgate CLI reference\n\nGenerated from the command definitions; do not edit by hand \
         (regenerate with `TOLLGATE_UPDATE_GENERATED=1 cargo test --test it generated`).\n",
    );
    write_markdown(&cmd, "tollgate", &mut out);
    out
}

fn write_markdown(cmd: &clap::Command, path: &str, out: &mut String) {
    let mut cmd = cmd.clone().bin_name(path.to_string());
    out.push_str(&format!("\n## `{path}`\n\n```text\n"));
    out.push_str(&cmd.render_long_help().to_string());
    out.push_str("```\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_markdown(sub, &format!("{path} {}", sub.get_name()), out);
    }
}
