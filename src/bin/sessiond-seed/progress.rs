//! Progress of the long steps, for whoever watches a seed run: drawn on
//! standard error only when it is a terminal. Piped or redirected (scripts,
//! CI, the tests), it shows nothing, and standard output, which scripts
//! read, never carries any of it.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Standard error when it is a terminal; nowhere otherwise. (indicatif
/// hides a standard error that is not a terminal by itself; this makes sure
/// of it, whatever the terminal library guesses.)
fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar for a step that counts `len` rows.
pub fn bar(step: &'static str, len: usize) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{msg:<18} [{bar:32}] {human_pos}/{human_len} in {elapsed} (about {eta} left)",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(len as u64), target())
        .with_style(style)
        .with_message(step)
}

/// A spinner for a step that has nothing to count.
pub fn spinner(step: impl Into<Cow<'static, str>>) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{msg:<18} {spinner} {elapsed}").expect("a valid template");
    let spinner = ProgressBar::with_draw_target(None, target())
        .with_style(style)
        .with_message(step);
    if !spinner.is_hidden() {
        spinner.enable_steady_tick(Duration::from_millis(120));
    }
    spinner
}
