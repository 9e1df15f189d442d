//! `wsreg list`: the live servers as a table, or as the API's JSON document.

use std::process::ExitCode;
use std::time::SystemTime;

use serde_json::Value;
use wsreg::registry::{Judge, model};
use wsreg::{Backend, Entry, Filter};

use super::{FilterArgs, human_duration};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print exactly what GET /api/registry answers: {"version":1,"servers":[…]}
    #[arg(long)]
    json: bool,
    /// Also show dead entries, each with the reason it is dead
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    filter: FilterArgs,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    let entries = backend.entries()?;
    let filter = Filter::from(args.filter);
    let judge = Judge::system();
    let rows: Vec<(&Entry, Option<String>)> = filter
        .apply(&entries)
        .map(|e| (e, judge.check(e).err().map(|r| r.to_string())))
        .filter(|(_, dead)| args.all || dead.is_none())
        .collect();
    match (args.json, args.all) {
        (true, false) => println!("{}", model::to_json(rows.iter().map(|(e, _)| *e))),
        (true, true) => println!("{}", json_with_status(&rows)),
        (false, _) => print_table(&rows, args.all),
    }
    Ok(ExitCode::SUCCESS)
}

/// The document with two more fields per entry: `live` and `deadReason`.
fn json_with_status(rows: &[(&Entry, Option<String>)]) -> Value {
    let servers: Vec<Value> = rows
        .iter()
        .map(|(entry, dead)| {
            let mut v = serde_json::to_value(entry).expect("entries serialise");
            v["live"] = Value::Bool(dead.is_none());
            v["deadReason"] = dead.clone().map_or(Value::Null, Value::String);
            v
        })
        .collect();
    serde_json::json!({ "version": 1, "servers": servers })
}

fn print_table(rows: &[(&Entry, Option<String>)], all: bool) {
    if rows.is_empty() {
        println!("no {}servers", if all { "" } else { "live " });
        return;
    }
    let now = SystemTime::now();
    let mut table: Vec<Vec<String>> = vec![
        [
            "ID", "KIND", "NAME", "PROJECT", "PORT", "PID", "UPTIME", "URL",
        ]
        .map(String::from)
        .to_vec(),
    ];
    if all {
        table[0].push("STATUS".into());
    }
    for (e, dead) in rows {
        let uptime = now
            .duration_since(e.started_at.0)
            .map_or(0, |d| d.as_secs());
        let mut row = vec![
            e.id.clone(),
            e.kind.clone(),
            e.name.clone().unwrap_or_else(|| "-".into()),
            e.project.clone().unwrap_or_else(|| "-".into()),
            e.port.to_string(),
            e.pid.to_string(),
            human_duration(uptime),
            e.url.clone(),
        ];
        if all {
            row.push(
                dead.as_ref()
                    .map_or_else(|| "live".into(), |r| format!("dead: {r}")),
            );
        }
        table.push(row);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{:<w$}", printable(cell), w = *w))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

/// Registry text is untrusted: control characters (terminal escapes) are shown escaped.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            }
        })
        .collect()
}
