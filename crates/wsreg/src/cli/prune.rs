//! `wsreg prune`: drop dead entries from the file (readers never show them anyway).

use std::process::ExitCode;

use wsreg::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the removed entries as JSON: [{"id":…,"reason":…}]
    #[arg(long)]
    json: bool,
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<ExitCode> {
    let dead = store.prune()?;
    if args.json {
        let removed: Vec<_> = dead
            .iter()
            .map(|(e, why)| serde_json::json!({ "id": e.id, "reason": why.to_string() }))
            .collect();
        println!("{}", serde_json::Value::Array(removed));
    } else {
        for (e, why) in &dead {
            println!("removed {} ({why})", e.id);
        }
        println!(
            "{} dead entr{} removed",
            dead.len(),
            if dead.len() == 1 { "y" } else { "ies" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
