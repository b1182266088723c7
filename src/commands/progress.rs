//! Progress bars on stderr, shown only when stderr is a terminal and `-q` is not given, and the
//! Ctrl-C flag that lets a run stop cleanly (temporary files removed, nothing half-written).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static INTERRUPTED: OnceLock<&'static AtomicBool> = OnceLock::new();

/// Installs the Ctrl-C handler (once). Later checks go through [`interrupted`].
pub fn install_interrupt_handler() {
    let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    if INTERRUPTED.set(flag).is_ok() {
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
}

/// True once the user pressed Ctrl-C.
pub fn interrupted() -> bool {
    INTERRUPTED.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Columns of the bar's label (the file name).
const LABEL_WIDTH: usize = 20;

/// A file name shortened to `width` columns from the left (`…ers/notes-2026.txt`), because
/// its end, the file's own name, is what says which file is running.
pub fn label(name: &str, width: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= width {
        return name.to_string();
    }
    let keep = width.saturating_sub(1);
    std::iter::once('…')
        .chain(chars[chars.len() - keep..].iter().copied())
        .collect()
}

/// A byte-count progress bar that stays hidden for non-terminals and quiet runs, and only
/// appears once work has taken longer than a moment.
pub fn bar(total: Option<u64>, message: &str, quiet: bool) -> ProgressBar {
    let visible = !quiet && std::io::stderr().is_terminal();
    let pb = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::hidden()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:20} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} ETA {eta}",
        )
        .expect("valid template"),
    );
    pb.set_message(label(message, LABEL_WIDTH));
    if visible {
        // Drawing starts after a short delay so quick runs print nothing but their summary.
        let shown = pb.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            if !shown.is_finished() {
                shown.set_draw_target(ProgressDrawTarget::stderr());
            }
        });
    }
    pb
}

#[cfg(test)]
mod tests {
    use super::label;

    /// Regression: the bar cut long paths at their end, so the file name disappeared.
    #[test]
    fn long_labels_keep_the_file_name() {
        assert_eq!(label("notes.txt", 20), "notes.txt");
        let long = "/home/someone/projects/corpora/2026/notes-final.txt";
        let short = label(long, 20);
        assert_eq!(short.chars().count(), 20);
        assert!(
            short.starts_with('…') && short.ends_with("notes-final.txt"),
            "{short}"
        );
        assert_eq!(label("ąęść/żółw-długi-plik.txt", 10).chars().count(), 10);
    }
}
