//! Tables for people: search results sorted by score, transfers with their progress, both
//! fitted to the terminal's width, and redrawn in place while they change.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use proto::v1 as pb;

use crate::output::{self, size};
use crate::term::{columns, duration_ms, fit, plural};

/// A search as it stands: every merged item (an update replaces it), and each network's
/// latest progress.
pub struct SearchView {
    started: Instant,
    items: Vec<pb::Item>,
    progress: Vec<pb::NetworkProgress>,
    finished: Option<pb::Finished>,
}

impl Default for SearchView {
    fn default() -> Self {
        SearchView {
            started: Instant::now(),
            items: Vec::new(),
            progress: Vec::new(),
            finished: None,
        }
    }
}

impl SearchView {
    pub fn apply(&mut self, ev: pb::search_event::Event) {
        use pb::search_event::Event;
        match ev {
            Event::Item(i) | Event::Update(i) => match self.items.iter_mut().find(|x| x.id == i.id)
            {
                Some(x) => *x = i,
                None => self.items.push(i),
            },
            Event::Progress(p) => match self.progress.iter_mut().find(|x| x.network == p.network) {
                Some(x) => *x = p,
                None => self.progress.push(p),
            },
            Event::Finished(f) => self.finished = Some(f),
        }
    }

    /// Best first: by the gateway's score, then by sources, then by name, so that equal
    /// scores do not swap places between two redraws.
    fn sorted(&self) -> Vec<&pb::Item> {
        let mut v: Vec<&pb::Item> = self.items.iter().collect();
        let sources = |i: &pb::Item| i.availability.iter().map(|a| a.sources).sum::<u32>();
        v.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| sources(b).cmp(&sources(a)))
                .then_with(|| a.name.cmp(&b.name))
        });
        v
    }

    /// The header and one row per item; nothing when there is no item. `width` cuts names
    /// (and sources, if they crowd the name out); `None` (a pipe) cuts nothing.
    pub fn table(&self, width: Option<usize>) -> Vec<String> {
        let items = self.sorted();
        if items.is_empty() {
            return Vec::new();
        }
        let rows: Vec<[String; 4]> = items
            .iter()
            .map(|i| {
                [
                    i.id.clone(),
                    size(i.size),
                    output::availability(i),
                    i.file_type.clone(),
                ]
            })
            .collect();
        let widest = |k: usize, title: &str| {
            rows.iter()
                .map(|r| columns(&r[k]))
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let id_w = widest(0, "ID");
        let size_w = widest(1, "SIZE");
        let mut src_w = widest(2, "SOURCES");
        let with_type = width.is_none_or(|w| w >= 100);
        let type_w = if with_type { widest(3, "TYPE") + 2 } else { 0 };
        if let Some(w) = width {
            // The name matters most: sources give way down to their title's width first.
            let fixed = id_w + 2 + size_w + 2 + type_w + 2;
            let room = w.saturating_sub(fixed + MIN_NAME + 1);
            src_w = src_w.min(room.max("SOURCES".len()));
        }
        let line = |id: &str, sz: &str, src: &str, ty: &str, name: &str| {
            let mut l = format!(
                "{:<id_w$}  {:>size_w$}  {}  ",
                id,
                sz,
                pad(&fit(src, src_w), src_w)
            );
            if with_type {
                l.push_str(&pad(ty, type_w));
            }
            l.push_str(name);
            match width {
                // One column short of the edge: a line filling it exactly wraps on some
                // terminals, and a redraw would then count lines wrong.
                Some(w) => fit(&l, w.saturating_sub(1)),
                None => l,
            }
        };
        let mut out = vec![line("ID", "SIZE", "SOURCES", "TYPE", "NAME")];
        for (i, r) in items.iter().zip(&rows) {
            out.push(line(&r[0], &r[1], &r[2], &r[3], &i.name));
        }
        out
    }

    /// What a terminal shows while the search runs: a status line, then the best items
    /// that fit on the screen.
    pub fn live_lines(&self, width: Option<usize>, height: Option<usize>) -> Vec<String> {
        let nets = self
            .progress
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p.network,
                    format!("{:?}", p.state()).to_lowercase().replace('_', " ")
                )
            })
            .collect::<Vec<_>>()
            .join(" · ");
        let mut status = format!(
            "searching… {} so far, {}",
            plural(self.items.len() as u64, "item", "items"),
            duration_ms(self.started.elapsed().as_millis() as u64 / 100 * 100)
        );
        if !nets.is_empty() {
            status.push_str(&format!("  ({nets})"));
        }
        let mut lines = vec![match width {
            Some(w) => fit(&status, w.saturating_sub(1)),
            None => status,
        }];
        let mut table = self.table(width);
        // Room for the status line and the prompt line below.
        let rows = height.unwrap_or(24).saturating_sub(3).max(3);
        table.truncate(rows);
        lines.extend(table);
        lines
    }

    /// One line per network, then the total: the end of a human search.
    pub fn status_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.progress.iter().map(output::progress_line).collect();
        if let Some(f) = &self.finished {
            lines.push(format!(
                "{} in {}",
                plural(f.items.into(), "item", "items"),
                duration_ms(f.elapsed_ms)
            ));
        }
        lines
    }
}

/// The shortest name column worth showing.
const MIN_NAME: usize = 30;

fn pad(s: &str, w: usize) -> String {
    let n = columns(s);
    format!("{s}{}", " ".repeat(w.saturating_sub(n)))
}

/// The transfers table of `transfers --watch` on a terminal: a title, a header, then one
/// row per transfer (as many as fit), in the order given. The name takes what the other
/// columns leave; below 120 columns, size and networks give way to it.
pub fn transfers(all: &[pb::Transfer], width: Option<usize>, height: Option<usize>) -> Vec<String> {
    let active = all
        .iter()
        .filter(|t| t.state() == pb::transfer::State::Active)
        .count();
    let mut lines = vec![format!(
        "{}, {active} active (Ctrl-C stops watching; transfers go on)",
        plural(all.len() as u64, "transfer", "transfers"),
    )];
    if all.is_empty() {
        return lines;
    }
    let wide = width.is_none_or(|w| w >= 120);
    // Everything but the name; size and networks when wide.
    let others = 16 + 2 + 2 + 8 + 1 + 6 + 2 + 10 + 2 + 10 + 2 + 5;
    let others = others + if wide { 2 + 10 + 2 + 12 } else { 0 };
    let longest = all
        .iter()
        .map(|t| columns(&t.name))
        .max()
        .unwrap_or(0)
        .max(4);
    let name_w = match width {
        Some(w) => w.saturating_sub(others + 1).clamp(12, longest.max(12)),
        None => longest,
    };
    let row = |c: [&str; 9]| {
        let mut l = format!(
            "{:<16}  {}  {:<8} {:>6}  {:>10}  {:>10}  {:>5}",
            c[0],
            pad(&fit(c[1], name_w), name_w),
            c[2],
            c[3],
            c[4],
            c[5],
            c[6]
        );
        if wide {
            l.push_str(&format!("  {:>10}  {}", c[7], c[8]));
        }
        l
    };
    lines.push(row([
        "ID", "NAME", "STATE", "DONE", "RATE", "ETA", "PEERS", "SIZE", "NETWORKS",
    ]));
    for t in all {
        // Those delivering now; once none is (finished, paused), those it came from.
        let nets: Vec<&str> = if t.networks.is_empty() {
            t.per_network
                .iter()
                .filter(|n| n.bytes_verified > 0)
                .map(|n| output::short_net(&n.network))
                .collect()
        } else {
            t.networks.iter().map(|n| output::short_net(n)).collect()
        };
        lines.push(row([
            &t.id,
            &t.name,
            &output::state(t),
            &format!("{:.1}%", output::percent(t)),
            &output::rate(t),
            &output::eta(t),
            &t.peers.to_string(),
            &size(t.size),
            &nets.join(","),
        ]));
    }
    let rows = height.unwrap_or(24).saturating_sub(1).max(3);
    if lines.len() > rows {
        let hidden = lines.len() - rows + 1;
        lines.truncate(rows - 1);
        lines.push(format!(
            "… and {hidden} more (`junction transfers` lists all)"
        ));
    }
    if let Some(w) = width {
        for l in &mut lines {
            *l = fit(l.trim_end(), w.saturating_sub(1));
        }
    }
    lines
}

/// Lines drawn in place: each draw moves back over the previous one and clears it.
#[derive(Default)]
pub struct Redraw {
    lines: usize,
    last: Option<Instant>,
}

impl Redraw {
    /// Time since the last draw; long ago if never.
    pub fn since(&self) -> Duration {
        self.last.map_or(Duration::MAX, |t| t.elapsed())
    }

    pub fn draw(&mut self, lines: &[String]) -> io::Result<()> {
        let mut buf = String::new();
        if self.lines > 0 {
            // To the start of the first line drawn last time, then clear to the end.
            buf.push_str(&format!("\x1b[{}F", self.lines));
        }
        buf.push_str("\x1b[J");
        for l in lines {
            buf.push_str(l);
            buf.push('\n');
        }
        let mut o = io::stdout().lock();
        o.write_all(buf.as_bytes())?;
        o.flush()?;
        self.lines = lines.len();
        self.last = Some(Instant::now());
        Ok(())
    }

    pub fn clear(&mut self) -> io::Result<()> {
        self.draw(&[])
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
