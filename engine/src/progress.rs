//! Progress on long stages: a spinner on a terminal, nothing otherwise (indicatif hides itself
//! when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

pub fn spinner(stage: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(stage.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
