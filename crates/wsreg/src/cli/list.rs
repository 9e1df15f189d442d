//! `wsreg list`: the live servers as a table, or as the API's JSON document; with
//! `--health`, each probed once as the endpoint probes it.

use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use serde_json::Value;
use wsreg::health::probe::probe;
use wsreg::health::{Health, PROBE_TIMEOUT};
use wsreg::registry::model::{HealthCheck, Timestamp};
use wsreg::registry::{Judge, Verdict, model};
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
    /// Probe each listed server once, as `wsreg serve` does (at most 1 s), and show its
    /// health (the JSON gains each entry's `health`, as the API has it)
    #[arg(long)]
    health: bool,
    #[command(flatten)]
    filter: FilterArgs,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    let entries = backend.entries()?;
    let filter = Filter::from(args.filter);
    let judge = Judge::system();
    let rows: Vec<(&Entry, Verdict)> = filter
        .apply(&entries)
        .map(|e| (e, judge.verdict(e)))
        .filter(|(_, verdict)| args.all || !matches!(verdict, Verdict::Dead(_)))
        .collect();
    let health = match args.health {
        true => Some(probe_all(&rows)?),
        false => None,
    };
    match (args.json, args.all, &health) {
        (true, false, None) => println!("{}", model::to_json(rows.iter().map(|(e, _)| *e))),
        (true, _, _) => println!("{}", json_with_status(&rows, args.all, health.as_deref())),
        (false, _, _) => print_table(&rows, args.all, health.as_deref()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Each live row's health, probed all at once (dead rows are not probed: `unknown`).
fn probe_all(rows: &[(&Entry, Verdict)]) -> anyhow::Result<Vec<Health>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(
        runtime.block_on(futures_util::future::join_all(rows.iter().map(
            |(entry, verdict)| async move {
                match (entry.health, verdict) {
                    (_, Verdict::Dead(_)) => Health::UNKNOWN,
                    (HealthCheck::None, _) => Health::NONE,
                    (HealthCheck::Probe, _) => {
                        let (at, started) = (Timestamp::now(), Instant::now());
                        let result = probe(entry, PROBE_TIMEOUT).await;
                        Health::probed(&result, at, started.elapsed())
                    }
                }
            },
        ))),
    )
}

/// The document, with `health` per entry when probed, and with `--all` three more
/// fields: `live` (shown by readers), `deadReason`, and `unknownReason` (live, but its
/// process could not be checked).
fn json_with_status(rows: &[(&Entry, Verdict)], all: bool, health: Option<&[Health]>) -> Value {
    let servers: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, (entry, verdict))| {
            let mut v = serde_json::to_value(entry).expect("entries serialise");
            if let Some(health) = health {
                v["health"] = serde_json::from_str(&health[i].to_json()).expect("health is JSON");
            }
            if !all {
                return v;
            }
            let (dead, unknown) = match verdict {
                Verdict::Live => (None, None),
                Verdict::Unknown(why) => (None, Some(why.clone())),
                Verdict::Dead(reason) => (Some(reason.to_string()), None),
            };
            v["live"] = Value::Bool(dead.is_none());
            v["deadReason"] = dead.map_or(Value::Null, Value::String);
            v["unknownReason"] = unknown.map_or(Value::Null, Value::String);
            v
        })
        .collect();
    serde_json::json!({ "version": 1, "servers": servers })
}

fn print_table(rows: &[(&Entry, Verdict)], all: bool, health: Option<&[Health]>) {
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
    if health.is_some() {
        table[0].push("HEALTH".into());
    }
    for (i, (e, verdict)) in rows.iter().enumerate() {
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
            row.push(match verdict {
                Verdict::Live => "live".into(),
                Verdict::Unknown(why) => format!("unknown: {why}"),
                Verdict::Dead(reason) => format!("dead: {reason}"),
            });
        }
        if let Some(health) = health {
            row.push(match health[i].latency_us {
                Some(us) => format!("{} {:.1} ms", health[i].state.as_str(), us as f64 / 1000.0),
                None => health[i].state.as_str().to_owned(),
            });
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
