//! The checked-in completions, CLI reference and man pages match the clap definitions.
//! `TOLLGATE_UPDATE_GENERATED=1 cargo test --test it generated` rewrites them.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compares `expected` with the file, or rewrites the file in update mode. Returns the stale path.
fn check(path: &Path, expected: &[u8]) -> Option<String> {
    if std::env::var_os("TOLLGATE_UPDATE_GENERATED").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, expected).unwrap();
        return None;
    }
    match std::fs::read(path) {
        Ok(actual) if actual == expected => None,
        _ => Some(path.strip_prefix(root()).unwrap().display().to_string()),
    }
}

fn expected_files() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![(
        root().join("docs/cli.md"),
        tollgate::cli::markdown_reference().into_bytes(),
    )];
    for (shell, name) in [
        (Shell::Bash, "tollgate.bash"),
        (Shell::Zsh, "_tollgate"),
        (Shell::Fish, "tollgate.fish"),
        (Shell::PowerShell, "_tollgate.ps1"),
        (Shell::Elvish, "tollgate.elv"),
    ] {
        files.push((
            root().join("completions").join(name),
            tollgate::cli::write_completions(shell),
        ));
    }
    for (name, page) in tollgate::cli::man_pages() {
        files.push((root().join("docs/man").join(name), page));
    }
    files
}

#[test]
fn generated_files_are_current() {
    let stale: Vec<String> = expected_files()
        .iter()
        .filter_map(|(path, expected)| check(path, expected))
        .collect();
    assert!(
        stale.is_empty(),
        "stale generated files (run `TOLLGATE_UPDATE_GENERATED=1 cargo test --test it generated`): {stale:?}"
    );
}

#[test]
fn no_man_page_is_left_from_a_removed_command() {
    let expected: Vec<String> = tollgate::cli::man_pages()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let dir = root().join("docs/man");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("{} is missing", dir.display());
    };
    let extra: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !expected.contains(n))
        .collect();
    assert!(
        extra.is_empty(),
        "man pages of commands that no longer exist: {extra:?}"
    );
}
