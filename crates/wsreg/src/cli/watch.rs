//! `wsreg watch`: one line per change of the live list, until interrupted.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;

use wsreg::registry::model;
use wsreg::{Backend, Entry, Filter};

use super::FilterArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the whole live list as the API's JSON document at each change
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    filter: FilterArgs,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let watch = backend.watch()?;
        let mut rx = watch.subscribe();
        let filter = Filter::from(args.filter);
        let mut shown: Vec<Arc<Entry>> = Vec::new();
        let mut first = true;
        loop {
            let list: Vec<Arc<Entry>> = filter
                .apply(&rx.borrow_and_update().live)
                .cloned()
                .collect();
            if args.json {
                if first || list != shown {
                    println!("{}", model::to_json(list.iter().map(|e| &**e)));
                }
            } else {
                print_diff(&shown, &list, first);
            }
            shown = list;
            first = false;
            tokio::select! {
                changed = rx.changed() => changed?,
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}

fn print_diff(before: &[Arc<Entry>], after: &[Arc<Entry>], first: bool) {
    let old: HashSet<&str> = before.iter().map(|e| e.id.as_str()).collect();
    let new: HashSet<&str> = after.iter().map(|e| e.id.as_str()).collect();
    for e in before.iter().filter(|e| !new.contains(e.id.as_str())) {
        println!("- {} {} {}", e.id, e.kind, e.url);
    }
    for e in after.iter().filter(|e| !old.contains(e.id.as_str())) {
        println!("+ {} {} {}", e.id, e.kind, e.url);
    }
    if first && after.is_empty() {
        println!("(no live servers; watching)");
    }
}
