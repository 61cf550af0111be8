//! Where output goes: a terminal (bars, tables redrawn in place, fitted to its width) or a pipe
//! (plain lines, and a reader that may go away at any time, as `head` does).

use std::fmt;
use std::io::{self, IsTerminal, Write};

/// Prints one line on stdout. Unlike `println!`, a closed stdout is an error the caller
/// returns (and `main` turns into a quiet exit), not a panic with a backtrace.
macro_rules! out {
    ($($arg:tt)*) => {
        crate::term::line(format_args!($($arg)*))?
    };
}
pub(crate) use out;

pub fn line(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut o = io::stdout().lock();
    o.write_fmt(args)?;
    o.write_all(b"\n")?;
    o.flush()
}

/// Whether an error is a reader that went away (`| head`): the command ends quietly then.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

pub fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Columns of the terminal on stdout, or `None` when stdout is not one (then nothing is cut).
/// `COLUMNS` wins, as in other tools, so a width can be forced.
pub fn width() -> Option<usize> {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|v| v.parse().ok()) {
        return Some(c);
    }
    if !stdout_is_terminal() {
        return None;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_rows, cols)| usize::from(cols))
}

/// Rows of the terminal on stdout, for how many lines a live view may take.
pub fn height() -> Option<usize> {
    if !stdout_is_terminal() {
        return None;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(rows, _cols)| usize::from(rows))
}

/// Colour in logs only on a terminal, and never with `NO_COLOR` set (no-color.org): a log
/// file full of escape codes is hard to read and to grep.
pub fn log_colour() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (kill, systemd, a container stopping): both stop
/// `serve` and `lab` in order, so the lab's temporary directory goes too. The handlers are
/// installed when this is called, not when it is first awaited: call it before saying
/// "started", so that a signal sent right after that is not taken by the default action.
pub fn stop_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::interrupt())
            .and_then(|i| Ok((i, signal(SignalKind::terminate())?)))
            .ok()
    };
    async move {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = handlers {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Ctrl-C while following a transfer: the command stops, the transfer does not, and the
/// user is told so (`main` prints it and exits with 130, as shells expect after SIGINT).
#[derive(Debug)]
pub struct Interrupted(pub String);

impl Interrupted {
    pub fn goes_on(id: &str) -> Interrupted {
        Interrupted(format!(
            "stopped; transfer {id} goes on in the gateway (`junction transfers` shows it, \
             `junction cancel {id}` stops it)"
        ))
    }
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Resolves when stdout is a pipe whose reader has gone away. A command that waits for the
/// network between two writes (`cat` of a file still downloading, `transfers --watch` with
/// nothing changing) would otherwise notice only at its next write, seconds or minutes later.
/// On a terminal, a file, or anything epoll cannot watch, it never resolves.
pub async fn stdout_closed() {
    #[cfg(unix)]
    if let Some(pipe) = stdout_pipe() {
        // epoll always reports EPOLLERR on a pipe's write end once no reader is left.
        if pipe.ready(tokio::io::Interest::ERROR).await.is_ok() {
            return;
        }
    }
    std::future::pending::<()>().await
}

/// A duplicate of stdout registered with the runtime, when stdout is a pipe. Only its
/// readiness is used: writes still go through `std::io::stdout`, blocking as before.
#[cfg(unix)]
fn stdout_pipe() -> Option<tokio::net::unix::pipe::Sender> {
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::FileTypeExt;
    let file = std::fs::File::from(io::stdout().as_fd().try_clone_to_owned().ok()?);
    if !file.metadata().ok()?.file_type().is_fifo() {
        return None;
    }
    tokio::net::unix::pipe::Sender::from_owned_fd_unchecked(OwnedFd::from(file)).ok()
}

/// `1 hit`, `2 hits`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration in milliseconds as people read it: `850 ms`, `10.0 s`, `2 min 05 s`.
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        if s < 3600 {
            format!("{} min {:02} s", s / 60, s % 60)
        } else {
            format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
        }
    }
}

/// Cuts `s` to at most `w` columns (wide characters count two), ending in `…` when cut.
pub fn fit(s: &str, w: usize) -> String {
    if w == 0 {
        return String::new();
    }
    console::truncate_str(s, w, "…").into_owned()
}

/// How many columns `s` takes on a terminal.
pub fn columns(s: &str) -> usize {
    console::measure_text_width(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_as_words() {
        assert_eq!(plural(1, "hit", "hits"), "1 hit");
        assert_eq!(plural(0, "hit", "hits"), "0 hits");
        assert_eq!(plural(2, "hit", "hits"), "2 hits");
        assert_eq!(duration_ms(10_000), "10.0 s");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(125_000), "2 min 05 s");
        assert_eq!(duration_ms(7_260_000), "2 h 01 min");
    }

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 6), "abcdef");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abcdef", 0), "");
    }
}
