//! A long phase (build, push) on the terminal: a spinner with the latest line, plain lines
//! elsewhere, and each line also a JSON event.

use super::Output;
use serde_json::json;

/// A long phase (build, push): a spinner with the latest line on a terminal, plain lines elsewhere
/// (indicatif draws nothing, and drops its own println, when stderr is not a terminal).
pub(crate) struct Phase<'a> {
    out: &'a Output,
    kind: &'static str,
    bar: Option<indicatif::ProgressBar>,
}

impl Phase<'_> {
    /// A line worth keeping on screen (a build step).
    pub(crate) fn keep(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("    {message}")),
            None => self.out.line(&format!("    {}: ", self.kind), message),
        }
        self.out
            .event(json!({"event": self.kind, "message": message}));
    }

    /// A passing line: replaces the spinner's message on a terminal, a plain line elsewhere.
    pub(crate) fn update(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => self.out.line(&format!("    {}: ", self.kind), message),
        }
        self.out
            .event(json!({"event": self.kind, "message": message}));
    }
}

impl Phase<'_> {
    /// The spinner's message only (terminal); nothing is printed or recorded.
    pub(crate) fn status(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }
}

impl Drop for Phase<'_> {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            *self
                .out
                .active
                .lock()
                .expect("no thread panics while holding the spinner") = None;
        }
    }
}

impl Output {
    /// Starts a long phase of this kind (`build`, `push`).
    pub(crate) fn phase(&self, kind: &'static str) -> Phase<'_> {
        let bar = self.tty.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("    {spinner} {prefix}: {wide_msg}")
                    .expect("a valid indicatif template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            );
            bar.set_prefix(kind);
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
            bar
        });
        Phase {
            out: self,
            kind,
            bar,
        }
    }
}
