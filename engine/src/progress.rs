//! Progress on long stages, on a terminal only: a spinner per stage, and a bar for the
//! record-level pass (records or bytes of the total, rate, time left). All are drawn by one
//! `MultiProgress`, so they share the screen instead of overwriting each other; when stderr is
//! not a terminal nothing is drawn. [`snapshot`] tells an observer that draws its own (a notebook)
//! where the latest stage is.

use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};

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
    watch(Some(stage), &bar, false);
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
    watch(None, &bar, bytes);
    bar
}

/// The stage under way and its bar, for an observer that draws its own progress (the Python
/// module polls [`snapshot`] while a run goes on in another thread).
struct Watched {
    stage: String,
    bar: ProgressBar,
    bytes: bool,
}

fn watched() -> &'static Mutex<Option<Watched>> {
    static WATCHED: OnceLock<Mutex<Option<Watched>>> = OnceLock::new();
    WATCHED.get_or_init(|| Mutex::new(None))
}

fn watch(stage: Option<&str>, bar: &ProgressBar, bytes: bool) {
    if let Ok(mut w) = watched().lock() {
        let stage = match (stage, w.as_ref()) {
            (Some(s), _) => s.to_string(),
            (None, Some(previous)) => previous.stage.clone(),
            (None, None) => String::new(),
        };
        *w = Some(Watched {
            stage,
            bar: bar.clone(),
            bytes,
        });
    }
}

/// Where the latest stage of this process is: its name, how far its bar has come and of how
/// much (records, or bytes of the file, `unit` says), `None` for a stage without a bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub stage: String,
    pub done: u64,
    pub total: Option<u64>,
    pub unit: &'static str,
}

/// The latest stage's progress (see [`Snapshot`]); `None` before any stage has started.
pub fn snapshot() -> Option<Snapshot> {
    let w = watched().lock().ok()?;
    let w = w.as_ref()?;
    Some(Snapshot {
        stage: w.stage.clone(),
        done: w.bar.position(),
        total: w.bar.length(),
        unit: if w.bytes { "bytes" } else { "records" },
    })
}
