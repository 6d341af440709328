//! Progress on long stages, on a terminal only: a spinner per stage, and a bar for the
//! record-level pass (records or bytes of the total, rate, time left). All are drawn by one
//! `MultiProgress`, so they share the screen instead of overwriting each other; when stderr is
//! not a terminal nothing is drawn.

use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

fn screen() -> &'static MultiProgress {
    static SCREEN: OnceLock<MultiProgress> = OnceLock::new();
    SCREEN.get_or_init(|| {
        if std::io::stderr().is_terminal() {
            MultiProgress::new()
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        }
    })
}

pub fn spinner(stage: &str) -> ProgressBar {
    let bar = screen().add(ProgressBar::new_spinner());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(stage.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// A bar of `total` records, or bytes when `bytes` is set.
pub fn bar(total: u64, bytes: bool) -> ProgressBar {
    let bar = screen().add(ProgressBar::new(total));
    let template = if bytes {
        "  reading {bar:32} {bytes}/{total_bytes} {bytes_per_sec}, {eta} left"
    } else {
        "  reading {bar:32} {human_pos}/{human_len} records, {per_sec}, {eta} left"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
