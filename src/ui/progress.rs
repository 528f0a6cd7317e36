//! Spinners and bars on stderr: their styles, when they are drawn, and the guards that take
//! them off the terminal however the work ends, so an error (`?`) or a panic between start and
//! finish never leaves a spinner behind. The guards say so themselves rather than lean on
//! indicatif's default for a dropped bar.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle, WeakProgressBar};

use super::Ui;

const TICK: Duration = Duration::from_millis(100);

/// Whether spinners are drawn, pure: only on a terminal, never with `-q` or `-v` (their lines
/// would tear the spinner) or `LABUP_NO_PROGRESS`.
pub(crate) fn wanted(stderr_terminal: bool, quiet: bool, verbose: bool, no_progress: bool) -> bool {
    stderr_terminal && !quiet && !verbose && !no_progress
}

/// The look of each kind of progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Look {
    /// One step of a command: `⠋ Syncing .venv 1s`.
    Step,
    /// One line per service: `⠋ jupyter starting 3s`.
    Service,
    /// A download: `pulling llama3 [=====>    ] 1.2 GiB/4.7 GiB 30 MiB/s 2m …`.
    Bytes,
}

impl Look {
    /// The indicatif template.
    pub(crate) fn template(self) -> &'static str {
        match self {
            Look::Step => "{spinner:.cyan} {msg} {elapsed:.dim}",
            Look::Service => "{spinner:.cyan} {prefix:.bold} {msg} {elapsed:.dim}",
            Look::Bytes => "{prefix:.bold} [{bar:30.cyan/dim}] {bytes}/{total_bytes} {bytes_per_sec} {eta} {msg:.dim}",
        }
    }

    /// The indicatif style.
    pub(crate) fn style(self) -> ProgressStyle {
        match self {
            Look::Step | Look::Service => {
                ProgressStyle::with_template(self.template()).unwrap_or_else(|_| ProgressStyle::default_spinner())
            }
            Look::Bytes => ProgressStyle::with_template(self.template())
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        }
    }
}

/// What is drawn on stderr now.
#[derive(Clone)]
enum Live {
    /// A step's spinner (weak: the step owns it).
    Bar(WeakProgressBar),
    /// The services' spinners.
    Group(MultiProgress),
}

impl Live {
    /// Runs `print` with the progress lifted and drawn again below what it printed.
    fn above<T>(&self, print: impl FnOnce() -> T) -> T {
        match self {
            Live::Bar(weak) => match weak.upgrade() {
                Some(bar) => bar.suspend(print),
                None => print(),
            },
            Live::Group(multi) => multi.suspend(print),
        }
    }
}

/// The progress on stderr, with the token of whoever drew it; one at a time (labup never runs
/// two steps at once).
static LIVE: Mutex<Option<(u64, Live)>> = Mutex::new(None);
static TOKENS: AtomicU64 = AtomicU64::new(1);

/// Makes `live` the progress lines go above; the token takes it down again.
fn show(live: Live) -> u64 {
    let token = TOKENS.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut slot) = LIVE.lock() {
        *slot = Some((token, live));
    }
    token
}

/// Forgets the progress `token` showed, unless another has taken its place.
fn hide(token: u64) {
    if let Ok(mut slot) = LIVE.lock() {
        if slot.as_ref().is_some_and(|(t, _)| *t == token) {
            *slot = None;
        }
    }
}

/// Runs `print` (a line to stderr) above the progress drawn now, so the line does not tear a
/// spinner; without one it just runs `print`.
pub(super) fn above<T>(print: impl FnOnce() -> T) -> T {
    // Cloned out of the lock: `print` may take a while, and must not hold it.
    let live = LIVE.lock().ok().and_then(|slot| slot.as_ref().map(|(_, live)| live.clone()));
    match live {
        Some(live) => live.above(print),
        None => print(),
    }
}

/// Where the bars of `ui` draw: stderr when progress is on, nowhere otherwise.
fn target(ui: &Ui) -> ProgressDrawTarget {
    if ui.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar that clears itself when dropped unfinished.
fn bar(len: Option<u64>, target: ProgressDrawTarget, look: Look) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(len, target).with_finish(ProgressFinish::AndClear);
    bar.set_style(look.style());
    bar
}

/// A running step: a spinner on a terminal, a `-v` line otherwise. Finish it with
/// [`Step::done`]; dropped without that (an error on the way), it clears its spinner and
/// prints nothing, since the error says what happened.
#[derive(Debug)]
pub(crate) struct Step {
    ui: Ui,
    bar: ProgressBar,
    started: Instant,
    /// Set while its spinner is the one lines go above.
    shown: Option<u64>,
}

impl Step {
    /// Starts a step of `ui`.
    pub(super) fn start(ui: Ui, message: String) -> Step {
        if ui.progress {
            let mut step = Step::drawn_on(ui, message, ProgressDrawTarget::stderr());
            step.shown = Some(show(Live::Bar(step.bar.downgrade())));
            step
        } else {
            ui.debug(format!("{message}…"));
            Step { ui, bar: ProgressBar::hidden(), started: Instant::now(), shown: None }
        }
    }

    /// A step whose spinner draws on `target`.
    fn drawn_on(ui: Ui, message: String, target: ProgressDrawTarget) -> Step {
        let bar = bar(None, target, Look::Step);
        bar.set_message(message);
        bar.enable_steady_tick(TICK);
        Step { ui, bar, started: Instant::now(), shown: None }
    }

    /// Ends the step with a summary line and its duration.
    pub(crate) fn done(mut self, message: impl AsRef<str>) {
        self.finish();
        let took = super::format_duration(self.started.elapsed());
        self.ui.info(format!(
            "{} {} {}",
            self.ui.paint("✓", "32"),
            message.as_ref(),
            self.ui.paint(&format!("in {took}"), "2")
        ));
    }

    /// Ends the step without a line (the error says what happened); the same as dropping it.
    pub(crate) fn abandon(self) {}

    fn finish(&mut self) {
        if let Some(token) = self.shown.take() {
            hide(token);
        }
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One spinner per service, drawn together; dropped, it clears every spinner still drawn.
#[derive(Debug)]
pub(crate) struct Spinners {
    bars: BTreeMap<String, ProgressBar>,
    multi: MultiProgress,
    shown: Option<u64>,
}

impl Spinners {
    /// A spinner for each name, drawn while `ui` shows progress.
    pub(crate) fn new<'a>(ui: &Ui, names: impl IntoIterator<Item = &'a str>) -> Spinners {
        let mut spinners = Spinners::drawn_on(target(ui), names);
        if ui.progress {
            spinners.shown = Some(show(Live::Group(spinners.multi.clone())));
        }
        spinners
    }

    fn drawn_on<'a>(target: ProgressDrawTarget, names: impl IntoIterator<Item = &'a str>) -> Spinners {
        let multi = MultiProgress::with_draw_target(target);
        let bars = names
            .into_iter()
            .map(|name| {
                // Made for stderr before the group takes it, so its colours follow stderr's.
                let spinner = multi.add(bar(None, ProgressDrawTarget::stderr(), Look::Service));
                spinner.set_prefix(name.to_string());
                spinner.enable_steady_tick(TICK);
                (name.to_string(), spinner)
            })
            .collect();
        Spinners { bars, multi, shown: None }
    }

    /// Sets what `name`'s spinner says.
    pub(crate) fn message(&self, name: &str, message: String) {
        if let Some(bar) = self.bars.get(name) {
            bar.set_message(message);
        }
    }

    /// Takes `name`'s spinner off the terminal (its outcome is printed as a line instead).
    pub(crate) fn finish(&self, name: &str) {
        if let Some(bar) = self.bars.get(name) {
            bar.finish_and_clear();
        }
    }

    /// Takes every spinner off the terminal.
    pub(crate) fn clear(&self) {
        for bar in self.bars.values() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        if let Some(token) = self.shown.take() {
            hide(token);
        }
        self.clear();
        let _ = self.multi.clear();
    }
}

/// A download bar (`prefix`, bytes done of total, rate, time left) that clears itself when
/// dropped; hidden unless `ui` shows progress.
pub(crate) fn bytes(ui: &Ui, prefix: String) -> ProgressBar {
    let bytes = bar(Some(0), target(ui), Look::Bytes);
    bytes.set_prefix(prefix);
    bytes
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    /// Just enough of a terminal to see what indicatif leaves on it: a grid of cells, a cursor
    /// that wraps after the last column (as terminals do), colour codes dropped.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Grid>>);

    #[derive(Debug, Default)]
    struct Grid {
        rows: Vec<Vec<char>>,
        row: usize,
        col: usize,
    }

    const WIDTH: usize = 60;

    impl Grid {
        fn put(&mut self, c: char) {
            match c {
                '\r' => self.col = 0,
                '\n' => {
                    self.row += 1;
                    self.col = 0;
                }
                c => {
                    if self.col == WIDTH {
                        self.row += 1;
                        self.col = 0;
                    }
                    while self.rows.len() <= self.row {
                        self.rows.push(vec![' '; WIDTH]);
                    }
                    self.rows[self.row][self.col] = c;
                    self.col += 1;
                }
            }
        }
    }

    impl Screen {
        fn with<T>(&self, f: impl FnOnce(&mut Grid) -> T) -> T {
            f(&mut self.0.lock().unwrap())
        }

        /// The lines with something on them.
        fn visible(&self) -> Vec<String> {
            self.with(|g| {
                g.rows
                    .iter()
                    .map(|r| r.iter().collect::<String>().trim_end().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            })
        }

        fn target(&self) -> ProgressDrawTarget {
            ProgressDrawTarget::term_like(Box::new(self.clone()))
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            WIDTH as u16
        }
        fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
            self.with(|g| g.row = g.row.saturating_sub(n));
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
            self.with(|g| g.row += n);
            Ok(())
        }
        fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
            self.with(|g| g.col = (g.col + n).min(WIDTH));
            Ok(())
        }
        fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
            self.with(|g| g.col = g.col.saturating_sub(n));
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            let plain = console::strip_ansi_codes(s);
            self.with(|g| plain.chars().for_each(|c| g.put(c)));
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.with(|g| {
                if let Some(r) = g.rows.get_mut(g.row) {
                    r.fill(' ');
                }
                g.col = 0;
            });
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Draws `bar` now: `tick` does nothing while a steady tick runs, a new message draws.
    fn redraw(bar: &ProgressBar) {
        bar.set_message(bar.message());
    }

    fn quiet_ui() -> Ui {
        Ui { quiet: true, verbose: false, color: false, progress: true }
    }

    #[test]
    fn progress_only_on_a_plain_terminal() {
        assert!(wanted(true, false, false, false));
        assert!(!wanted(false, false, false, false));
        assert!(!wanted(true, true, false, false));
        assert!(!wanted(true, false, true, false));
        assert!(!wanted(true, false, false, true));
    }

    #[test]
    fn the_screen_model_keeps_an_abandoned_bar() {
        // A bar dropped with `Abandon` stays drawn: the model must show that, or the tests below
        // prove nothing.
        let screen = Screen::default();
        let plain = ProgressBar::with_draw_target(None, screen.target()).with_finish(ProgressFinish::Abandon);
        plain.set_style(Look::Step.style());
        plain.set_message("syncing");
        plain.tick();
        drop(plain);
        let shown = screen.visible();
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(shown[0].contains("syncing"), "{shown:?}");
    }

    #[test]
    fn a_step_dropped_on_an_error_path_leaves_no_spinner() {
        let screen = Screen::default();
        let sync = |installer: Result<(), String>| -> Result<(), String> {
            let step = Step::drawn_on(quiet_ui(), "syncing the venv".into(), screen.target());
            redraw(&step.bar);
            assert!(screen.visible().iter().any(|l| l.contains("syncing the venv")), "{:?}", screen.visible());
            installer?;
            step.done("synced");
            Ok(())
        };
        assert!(sync(Err("uv failed".into())).is_err());
        assert_eq!(screen.visible(), Vec::<String>::new());
    }

    #[test]
    fn a_step_done_or_abandoned_leaves_no_spinner() {
        let screen = Screen::default();
        let step = Step::drawn_on(quiet_ui(), "locking".into(), screen.target());
        redraw(&step.bar);
        step.done("locked");
        assert_eq!(screen.visible(), Vec::<String>::new());
        let step = Step::drawn_on(quiet_ui(), "locking".into(), screen.target());
        redraw(&step.bar);
        step.abandon();
        assert_eq!(screen.visible(), Vec::<String>::new());
    }

    #[test]
    fn a_step_without_progress_draws_nothing() {
        let ui = Ui { progress: false, ..quiet_ui() };
        let step = Step::start(ui, "syncing".into());
        assert!(step.bar.is_hidden());
    }

    #[test]
    fn service_spinners_clear_each_and_all_on_drop() {
        let screen = Screen::default();
        let spinners = Spinners::drawn_on(screen.target(), ["jupyter", "web"]);
        spinners.message("jupyter", "starting".into());
        spinners.message("web", "backoff".into());
        spinners.message("unknown", "ignored".into());
        spinners.bars.values().for_each(redraw);
        let shown = screen.visible();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown[0].contains("jupyter starting"), "{shown:?}");
        assert!(shown[1].contains("web backoff"), "{shown:?}");
        spinners.finish("jupyter");
        let shown = screen.visible();
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(shown[0].contains("web backoff"), "{shown:?}");
        drop(spinners);
        assert_eq!(screen.visible(), Vec::<String>::new());
    }

    #[test]
    fn a_download_bar_dropped_unfinished_clears_itself() {
        let screen = Screen::default();
        let download = bar(Some(100), screen.target(), Look::Bytes);
        download.set_prefix("pulling llama3");
        download.set_position(40);
        let shown = screen.visible();
        assert!(shown.iter().any(|l| l.starts_with("pulling llama3 [")), "{shown:?}");
        drop(download);
        assert_eq!(screen.visible(), Vec::<String>::new());
    }

    #[test]
    fn a_line_printed_over_a_spinner_tears_it_in_the_model() {
        // The failure `above` prevents, shown on the model: the old spinner stays behind.
        let screen = Screen::default();
        let step = Step::drawn_on(quiet_ui(), "syncing".into(), screen.target());
        redraw(&step.bar);
        screen.write_line("rebuilding .venv").unwrap();
        redraw(&step.bar);
        let shown = screen.visible();
        assert_eq!(shown.iter().filter(|l| l.contains("syncing")).count(), 2, "{shown:?}");
    }

    #[test]
    fn a_line_goes_above_a_step_spinner() {
        let screen = Screen::default();
        let step = Step::drawn_on(quiet_ui(), "syncing".into(), screen.target());
        redraw(&step.bar);
        Live::Bar(step.bar.downgrade()).above(|| screen.write_line("rebuilding .venv: python changed").unwrap());
        redraw(&step.bar);
        let shown = screen.visible();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert_eq!(shown[0], "rebuilding .venv: python changed");
        assert!(shown[1].contains("syncing"), "{shown:?}");
        drop(step);
        assert_eq!(screen.visible(), vec!["rebuilding .venv: python changed".to_string()]);
    }

    #[test]
    fn a_line_goes_above_the_service_spinners() {
        let screen = Screen::default();
        let spinners = Spinners::drawn_on(screen.target(), ["jupyter", "web"]);
        spinners.bars.values().for_each(redraw);
        spinners.finish("web");
        Live::Group(spinners.multi.clone()).above(|| screen.write_line("✓ web is ready in 1.2s").unwrap());
        let shown = screen.visible();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert_eq!(shown[0], "✓ web is ready in 1.2s");
        assert!(shown[1].starts_with("⠁ jupyter") || shown[1].contains(" jupyter"), "{shown:?}");
        drop(spinners);
        assert_eq!(screen.visible(), vec!["✓ web is ready in 1.2s".to_string()]);
    }

    #[test]
    fn lines_go_above_the_progress_shown_last_until_it_ends() {
        // The only test that touches the registry (it is global to the process).
        let current = || LIVE.lock().unwrap().as_ref().map(|(t, _)| *t);
        let first = show(Live::Bar(WeakProgressBar::new()));
        let second = show(Live::Bar(WeakProgressBar::new()));
        assert_eq!(current(), Some(second));
        hide(first);
        assert_eq!(current(), Some(second), "an old token does not take down the newer progress");
        hide(second);
        assert_eq!(current(), None);
        // A step whose bar is gone, or none at all: the line is printed all the same.
        assert_eq!(above(|| 7), 7);
        let token = show(Live::Bar(WeakProgressBar::new()));
        assert_eq!(above(|| 8), 8);
        hide(token);
    }

    #[test]
    fn templates_parse() {
        for look in [Look::Step, Look::Service, Look::Bytes] {
            assert!(ProgressStyle::with_template(look.template()).is_ok(), "{look:?}");
        }
    }
}
