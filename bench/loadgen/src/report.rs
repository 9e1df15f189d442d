//! The report: sections of tables, the targets of issue 6, and their rendering as
//! `docs/benchmarks.md`. Figures are formatted where they are measured; this file only
//! lays them out, so that the document has one shape whatever ran or failed.

use std::fmt::Write;

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy)]
pub enum Better {
    Lower,
    Higher,
}

/// "wsreg is N× better" as a number above 1 when wsreg wins, below 1 when it loses.
pub fn advantage(wsreg: f64, baseline: f64, better: Better) -> f64 {
    match better {
        Better::Higher => wsreg / baseline,
        Better::Lower => baseline / wsreg,
    }
}

/// "v2 is N× better than `other`" as the report prints it. `floor` is the resolution of
/// a lower-is-better figure: a v2 figure under it counts as `floor`, and the ratio is then
/// a lower bound (`≥ N×`).
pub fn vs(v2: f64, other: f64, better: Better, floor: f64) -> String {
    if !v2.is_finite() || !other.is_finite() {
        return "–".into();
    }
    match better {
        Better::Lower if v2 < floor || v2 <= 0.0 => {
            format!("≥ {}", times(other / floor.max(f64::MIN_POSITIVE)))
        }
        _ => ratio(advantage(v2, other, better)),
    }
}

/// An advantage in a comparison cell: a loss (below 1) is marked, not left to be read
/// off the digits.
pub fn ratio(x: f64) -> String {
    if x < 1.0 {
        format!("**{}: loses**", times(x))
    } else {
        times(x)
    }
}

/// A figure divided by its target, as the report prints it (at most 1 meets a
/// "≤" target, at least 1 a "≥" one).
pub fn of_target(measured: f64, target: f64) -> String {
    if !measured.is_finite() {
        return "–".into();
    }
    format!("{:.2}", measured / target)
}

/// An advantage as the report prints it.
pub fn times(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    if x >= 10.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.2}×")
    }
}

/// A number with a thousands separator and `decimals` places.
pub fn num(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

#[derive(Debug, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Appends a row `label` that divides row `theirs` by row `ours`, column by column
    /// from `first` on (the columns before it name the row), as "ours is N× better" where
    /// lower is better ([`ratio`]: a loss is marked). A cell that is not a figure (failed,
    /// not run, over a cap, zero) gets "–".
    pub fn compare(&mut self, label: &str, ours: usize, theirs: usize, first: usize) {
        let figure = |row: usize, col: usize| -> Option<f64> {
            let cell = self.rows.get(row)?.get(col)?;
            let x: f64 = cell
                .split_whitespace()
                .next()?
                .replace(',', "")
                .parse()
                .ok()?;
            (x.is_finite() && x > 0.0).then_some(x)
        };
        let mut cells = vec![label.to_owned()];
        cells.resize(first, String::new());
        for col in first..self.header.len() {
            cells.push(match (figure(ours, col), figure(theirs, col)) {
                (Some(a), Some(b)) => ratio(advantage(a, b, Better::Lower)),
                _ => "–".into(),
            });
        }
        self.rows.push(cells);
    }
}

#[derive(Debug)]
pub struct Section {
    pub title: String,
    /// Markdown paragraphs before the table: what was run and how to read it.
    pub text: String,
    pub table: Option<Table>,
}

/// One target of issue 6 or 11, checked against this run.
#[derive(Debug, Default)]
pub struct Target {
    /// The issue that set it: 11 (registry v2), 16 (the quality pass) or 6 (the rest;
    /// the default).
    pub issue: u32,
    pub name: String,
    pub goal: String,
    /// This tree's figure (registry v2).
    pub achieved: String,
    pub met: bool,
    /// Issue 11 only: the v1 build's and the Node baseline's figures from this run, the
    /// ratios ("v2 is N× better"), and the figure divided by the target.
    pub v1: String,
    pub node: String,
    pub vs_v1: String,
    pub vs_node: String,
    pub of_target: String,
    /// For a missed target: the measurement of this run that explains it.
    pub why: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub command: String,
    pub machine: Vec<(String, String)>,
    pub duration_secs: f64,
    pub targets: Vec<Target>,
    pub sections: Vec<Section>,
}

impl Report {
    pub fn render(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Benchmarks\n\n\
             wsreg against the Node prototype it replaces and, for the registry (issue 11), \
             against its own last registry-v1 build, every figure measured in the same run on \
             the same machine. Generated by `bench/run.sh`: do not edit by hand.\n\n\
             ## How to rerun\n\n\
             ```sh\n\
             bench/run.sh           # everything, about 10 minutes; rewrites this file\n\
             bench/run.sh --quick   # shorter runs of everything, about 5 minutes\n\
             ```\n\n\
             It builds in release mode (and, once, wsreg v1 from commit `3aeff1c` in a \
             worktree at `target/v1-src`, into `target/v1/`), installs `wrk` (Debian) and the \
             npm packages if they are missing, raises `ulimit -n`, and sends load to 127.0.0.1 \
             only. The baselines \
             are in `bench/baseline/`: the prototype's Node `ws` echo server (registers by an \
             unlocked read-modify-write of `{{\"servers\":[…]}}`), and a Vite dev server with \
             `vite-plugin-wsreg` as the registry endpoint.\n\n\
             This run: `{}`, {:.0} s.\n",
            self.command, self.duration_secs
        );
        md.push_str("\n## Machine\n\n");
        let mut machine = Table::new(&["", ""]);
        for (k, v) in &self.machine {
            machine.row(vec![k.clone(), v.clone()]);
        }
        render_table(&mut md, &machine);
        md.push_str(
            "\nThe machine has 2 cores shared with other developers' builds and tests: \
             absolute figures are noisy, and the load clients run on the same cores as the \
             server under test. The ratios, measured minutes apart in the same run, are the \
             figures to read.\n",
        );
        md.push_str(
            "\n## Targets of issue 11 (registry v2)\n\n\
             Each figure of this tree (v2) beside the same measurement of the last v1 build \
             (`3aeff1c`, built into `target/v1/`) and of the Node baseline, all from this run. \
             \"v2 vs …\" is how many times better v2 is (above 1: v2 wins; \"≥\" when v2's \
             figure is at the measurement's resolution, \">\" when the other side hit its \
             time cap); \"÷ target\" is v2's figure divided by the target (at most 1 meets \
             a \"≤\" target, at least 1 a \"≥\" one).\n\n",
        );
        let mut v2 = Table::new(&[
            "measure",
            "target",
            "v2 (this tree)",
            "v1 (3aeff1c)",
            "Node baseline",
            "v2 vs v1",
            "v2 vs Node",
            "÷ target",
            "met",
        ]);
        for t in self.targets.iter().filter(|t| t.issue == 11) {
            let dash = |s: &String| {
                if s.is_empty() {
                    "–".to_owned()
                } else {
                    s.clone()
                }
            };
            v2.row(vec![
                t.name.clone(),
                t.goal.clone(),
                t.achieved.clone(),
                dash(&t.v1),
                dash(&t.node),
                dash(&t.vs_v1),
                dash(&t.vs_node),
                dash(&t.of_target),
                if t.met { "yes" } else { "**no**" }.into(),
            ]);
        }
        render_table(&mut md, &v2);
        md.push_str("\n### Targets missed\n\n");
        let missed: Vec<_> = self.targets.iter().filter(|t| !t.met).collect();
        if missed.is_empty() {
            md.push_str("None in this run.\n");
        }
        for t in missed {
            let _ = write!(md, "- **{}** (target {}): {}", t.name, t.goal, t.achieved);
            if !t.why.is_empty() {
                let _ = write!(md, "; {}", t.why);
            }
            md.push_str(". The profile: see \"What the profiles say\" below.\n");
        }
        md.push_str("\n## Targets of issues 6 and 16\n\n");
        let mut targets = Table::new(&["target", "goal", "this run", "met"]);
        for t in self.targets.iter().filter(|t| t.issue != 11) {
            targets.row(vec![
                t.name.clone(),
                t.goal.clone(),
                t.achieved.clone(),
                if t.met { "yes" } else { "**no**" }.into(),
            ]);
        }
        render_table(&mut md, &targets);
        for s in &self.sections {
            let _ = writeln!(md, "\n## {}\n", s.title);
            if !s.text.is_empty() {
                let _ = writeln!(md, "{}\n", s.text.trim_end());
            }
            if let Some(t) = &s.table {
                render_table(&mut md, t);
            }
        }
        md
    }
}

fn render_table(md: &mut String, t: &Table) {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    md.push_str(&line(&t.header));
    md.push_str(&line(&vec!["---".to_string(); t.header.len()]));
    for r in &t.rows {
        md.push_str(&line(r));
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn compare_divides_figures_marks_losses_and_skips_the_rest() {
        let mut t = Table::new(&["side", "n", "a ms", "b ms", "c ms"]);
        t.row(vec![
            "ours".into(),
            "10".into(),
            "1,000.0".into(),
            "4.0".into(),
            "failed: x".into(),
        ]);
        t.row(vec![
            "theirs".into(),
            "10".into(),
            "2,000.0".into(),
            "2.0".into(),
            "3.0".into(),
        ]);
        t.compare("ours vs theirs", 0, 1, 2);
        assert_eq!(
            t.rows[2],
            ["ours vs theirs", "", "2.00×", "**0.50×: loses**", "–"]
        );
    }
}
