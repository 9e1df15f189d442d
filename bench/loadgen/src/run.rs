//! `wsreg-bench run`: every benchmark of issues 6 and 11 in turn, then the report.
//!
//! Benchmarks run one after another, never side by side, each against a fresh registry
//! path in a scratch directory under `target/`, so that no figure pays for another's
//! load and no run touches the user's own registry. A benchmark that fails is reported
//! as failed in its section and the others still run. `bench/notes.md`, the analysis
//! written by hand, is appended as it is.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::machine;
use crate::report::{Report, Section};
use crate::suite::{self, Env};

/// Hand-written notes appended to the generated report.
const NOTES: &str = "bench/notes.md";

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Shorter runs of everything (about 5 minutes)
    #[arg(long)]
    pub quick: bool,
    /// The repository's root
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The report to rewrite
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// Load-client processes for the 50-connection echo loads
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    /// Run only these benchmarks (for working on one; the report then holds only them)
    #[arg(long, value_delimiter = ',', value_enum)]
    pub only: Vec<suite::Bench>,
    /// The command line to quote in the report
    #[arg(long, default_value = "bench/run.sh")]
    pub command: String,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let env = Env::new(&args.repo, args.quick, args.clients)?;
    let mut report = Report {
        command: args.command.clone(),
        machine: machine::describe(&env.repo),
        ..Report::default()
    };
    for bench in suite::Bench::ALL {
        if !args.only.is_empty() && !args.only.contains(&bench) {
            continue;
        }
        eprintln!("==> {}", bench.title());
        let bench_started = Instant::now();
        match bench.run(&env) {
            Ok(mut outcome) => {
                report.targets.append(&mut outcome.targets);
                report.sections.append(&mut outcome.sections);
            }
            Err(e) => {
                eprintln!("    failed: {e:#}");
                report.sections.push(Section {
                    title: bench.title().into(),
                    text: format!("Not measured in this run: `{e:#}`"),
                    table: None,
                });
            }
        }
        eprintln!("    {:.0} s", bench_started.elapsed().as_secs_f64());
    }
    report.duration_secs = started.elapsed().as_secs_f64();
    let out = env.repo.join(&args.out);
    let mut doc = report.render();
    // The analysis (profiles, what changed) is written by hand and kept with the code.
    if let Ok(notes) = std::fs::read_to_string(env.repo.join(NOTES)) {
        doc.push('\n');
        doc.push_str(&notes);
    }
    // Sections other benchmarks put in the file (bench/section.sh) stay as they were.
    if let Ok(previous) = std::fs::read_to_string(&out) {
        for block in kept_sections(&previous) {
            doc.push('\n');
            doc.push_str(block);
        }
    }
    std::fs::write(&out, doc).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {} in {:.0} s", out.display(), report.duration_secs);
    Ok(())
}

/// The `<!-- section NAME -->` … `<!-- /section NAME -->` blocks of a report, each with
/// its closing line.
fn kept_sections(doc: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find("<!-- section ") {
        let from = &rest[start..];
        let Some(name) = from["<!-- section ".len()..].split(" -->").next() else {
            break;
        };
        let close = format!("<!-- /section {name} -->\n");
        let Some(end) = from.find(&close) else { break };
        blocks.push(&from[..end + close.len()]);
        rest = &from[end + close.len()..];
    }
    blocks
}

#[cfg(test)]
mod tests {
    #[test]
    fn kept_sections_are_found_whole() {
        let doc = "# report\n<!-- section yjs -->\n| a |\n<!-- /section yjs -->\ntext\n<!-- section etcd -->\nx\n<!-- /section etcd -->\n<!-- section open -->\n";
        assert_eq!(
            super::kept_sections(doc),
            [
                "<!-- section yjs -->\n| a |\n<!-- /section yjs -->\n",
                "<!-- section etcd -->\nx\n<!-- /section etcd -->\n"
            ]
        );
    }
}
