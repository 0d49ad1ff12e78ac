//! Progress bars for long work, shown only on a terminal, in `table` format, without `-q`.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Format, Printer};

pub fn bar(printer: &Printer, len: u64, message: &str) -> ProgressBar {
    if printer.quiet || printer.format != Format::Table || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}
