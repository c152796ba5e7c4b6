//! A progress line for interactive runs: `[12/34 done, 1m20s]` kept under the per-case lines on a terminal, and
//! nothing at all when stderr is not one (CI logs, pipes) or `CI` is set.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// The run's progress, drawn on stderr.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    done: usize,
    started: Instant,
    draw: bool,
}

impl Progress {
    /// Progress over `total` cases; drawn only on an interactive terminal.
    pub fn new(total: usize) -> Progress {
        let draw = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let p = Progress { total, done: 0, started: Instant::now(), draw };
        p.redraw();
        p
    }

    /// Prints one finished case's line above the progress line and advances it.
    pub fn finished(&mut self, line: &str) {
        self.done += 1;
        let mut err = std::io::stderr().lock();
        if self.draw {
            // Erase the progress line, print the case line, draw the progress line again.
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{line}");
        drop(err);
        self.redraw();
    }

    /// Removes the progress line (before the report is printed).
    pub fn clear(&self) {
        if self.draw {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }

    /// The progress text, e.g. `[3/10 done, 42s]`.
    pub fn text(&self) -> String {
        let secs = self.started.elapsed().as_secs();
        let elapsed = if secs >= 60 { format!("{}m{:02}s", secs / 60, secs % 60) } else { format!("{secs}s") };
        format!("[{}/{} done, {elapsed}]", self.done, self.total)
    }

    fn redraw(&self) {
        if self.draw && self.done < self.total {
            let _ = write!(std::io::stderr(), "{}", self.text());
            let _ = std::io::stderr().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_finished_cases() {
        let mut p = Progress { total: 3, done: 0, started: Instant::now(), draw: false };
        p.finished("pass a (1.0s)");
        assert!(p.text().starts_with("[1/3 done, "), "{}", p.text());
    }
}
