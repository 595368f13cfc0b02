//! Progress on stderr: a spinner line per in-flight resource on a terminal, plain log lines
//! otherwise (no spinners in CI logs), nothing with `-q`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use matih_plans::{Event, Observer, Phase};

pub struct Progress {
    mode: Mode,
    bars: Mutex<HashMap<String, ProgressBar>>,
    multi: MultiProgress,
    /// Plain-line mode: the last status said per resource, and when, so a wait's unchanged
    /// status is repeated at most every half minute.
    said: Mutex<HashMap<String, (String, std::time::Instant)>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    Lines,
    Bars,
}

impl Progress {
    pub fn new(quiet: bool, tty: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if tty {
            Mode::Bars
        } else {
            Mode::Lines
        };
        let multi = MultiProgress::with_draw_target(if mode == Mode::Bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Self { mode, bars: Mutex::default(), multi, said: Mutex::default() }
    }

    /// A line of its own (above the bars on a terminal).
    pub fn line(&self, msg: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => eprintln!("{msg}"),
            Mode::Bars => {
                let _ = self.multi.println(msg);
            }
        }
    }
}

fn verb(action: matih_plans::Action, phase: Phase, done: bool) -> &'static str {
    use matih_plans::Action::*;
    match (action, phase, done) {
        (Delete, _, false) | (_, Phase::Destroy, false) => "deleting",
        (Delete, _, true) | (_, Phase::Destroy, true) => "deleted",
        (Update, _, false) => "updating",
        (Update, _, true) => "updated",
        (_, _, false) => "creating",
        (_, _, true) => "created",
    }
}

impl Observer for Progress {
    fn event(&self, e: Event<'_>) {
        if self.mode == Mode::Quiet {
            if let Event::Failed { addr, error, .. } = e {
                eprintln!("{addr}: failed: {}", crate::exit::one_line(error));
            }
            return;
        }
        match e {
            Event::Refreshing { rtype, count } => self.line(&format!("refreshing {count} × {rtype}")),
            Event::IntentResolved { addr, adopted } => self.line(&format!(
                "{addr}: {}",
                if adopted {
                    "adopted (created by an interrupted run)"
                } else {
                    "forgotten (an interrupted create never happened)"
                }
            )),
            Event::Started { addr, action, phase } => {
                let key = format!("{addr}/{phase:?}");
                let msg = format!("{addr}: {}…", verb(action, phase, false));
                if self.mode == Mode::Bars {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").unwrap());
                    bar.set_message(msg);
                    bar.enable_steady_tick(Duration::from_millis(120));
                    self.bars.lock().unwrap().insert(key, bar);
                } else {
                    self.line(&msg);
                }
            }
            Event::Finished { addr, action, phase, elapsed } => {
                if let Some(bar) = self.bars.lock().unwrap().remove(&format!("{addr}/{phase:?}")) {
                    bar.finish_and_clear();
                }
                self.line(&format!("{addr}: {} ({:.1}s)", verb(action, phase, true), elapsed.as_secs_f64()));
            }
            Event::Failed { addr, error, phase, .. } => {
                if let Some(bar) = self.bars.lock().unwrap().remove(&format!("{addr}/{phase:?}")) {
                    bar.finish_and_clear();
                }
                self.line(&format!("{addr}: failed: {}", crate::exit::one_line(error)));
            }
            Event::Skipped { addr, because } => self.line(&format!("{addr}: skipped (upstream {because} failed)")),
            Event::Status { addr, status } => {
                let bars = self.bars.lock().unwrap();
                match bars.iter().find(|(k, _)| k.starts_with(&format!("{addr}/"))) {
                    Some((_, bar)) => bar.set_message(format!("{addr}: {status}")),
                    None => {
                        drop(bars);
                        let mut said = self.said.lock().unwrap();
                        let key = addr.to_string();
                        let now = std::time::Instant::now();
                        let repeat = said
                            .get(&key)
                            .is_some_and(|(s, at)| s == status && now.duration_since(*at) < Duration::from_secs(30));
                        if !repeat {
                            said.insert(key, (status.to_string(), now));
                            drop(said);
                            self.line(&format!("{addr}: {status}"));
                        }
                    }
                }
            }
        }
    }
}
