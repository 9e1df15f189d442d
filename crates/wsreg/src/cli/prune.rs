//! `wsreg prune`: removes the files of dead entries (readers never show them anyway),
//! and invalid files and leftover temp files over a minute old.

use std::process::ExitCode;

use wsreg::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the removed files as JSON: [{"file":…,"id":…,"reason":…}]
    #[arg(long)]
    json: bool,
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let pruned = store.prune()?;
    if args.json {
        let removed: Vec<_> = pruned
            .iter()
            .map(|p| serde_json::json!({ "file": p.path, "id": p.id, "reason": p.reason }))
            .collect();
        println!("{}", serde_json::Value::Array(removed));
    } else {
        for p in &pruned {
            match &p.id {
                Some(id) => println!("removed {id} ({})", p.reason),
                None => println!("removed {} ({})", p.path.display(), p.reason),
            }
        }
        println!(
            "{} file{} removed",
            pruned.len(),
            if pruned.len() == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
