//! Progress bars (indicatif) and the one-line summaries printed as each
//! stage ends.
//!
//! On a terminal the bars redraw in place and summaries print above them;
//! when output is not a terminal (`make test`, CI logs) indicatif hides the
//! bars by itself, and the summaries go to stdout as plain lines so the log
//! still tells what happened.

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// All bars of a run.
#[derive(Debug, Clone, Default)]
pub struct Bars {
    multi: MultiProgress,
}

/// One stage's bar.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Bars {
    pub fn new() -> Self {
        Self { multi: MultiProgress::new() }
    }

    /// A bar of `len` steps (a spinner when the length is unknown).
    pub fn stage(&self, label: &str, len: Option<u64>) -> Progress {
        let bar = match len {
            Some(len) => {
                let bar = ProgressBar::new(len);
                if let Ok(style) = ProgressStyle::with_template(
                    "{prefix:>22} [{elapsed_precise}] {wide_bar:.cyan/blue} {human_pos}/{human_len} {per_sec:>12} {msg}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar
            }
            None => {
                let bar = ProgressBar::new_spinner();
                if let Ok(style) = ProgressStyle::with_template("{prefix:>22} [{elapsed_precise}] {spinner} {msg}") {
                    bar.set_style(style);
                }
                bar
            }
        };
        let bar = self.multi.add(bar);
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress { bar }
    }

    /// Prints a line above the bars, or to stdout when bars are hidden.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.multi.is_hidden() || self.multi.println(line.as_ref()).is_err() {
            println!("{}", line.as_ref());
        }
    }
}

impl Progress {
    pub fn inc(&self, steps: u64) {
        self.bar.inc(steps);
    }

    pub fn set_position(&self, position: u64) {
        self.bar.set_position(position);
    }

    pub fn set_length(&self, len: u64) {
        self.bar.set_length(len);
    }

    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Leaves the bar on screen, complete, with a last message.
    pub fn finish(&self, message: impl Into<String>) {
        self.bar.finish_with_message(message.into());
    }
}
