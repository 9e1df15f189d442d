//! The machine note: what ran the benchmarks, and with which versions.

use std::process::Command;

/// (label, value) pairs for the report.
pub fn describe(repo: &std::path::Path) -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let read =
        |p: &str| std::fs::read_to_string(p).map_or("unknown".into(), |s| s.trim().to_owned());
    let package = |name: &str| {
        std::fs::read_to_string(repo.join("node_modules").join(name).join("package.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "missing".into())
    };
    vec![
        ("CPU".into(), format!("{cpu}, {cores} cores (nproc)")),
        ("kernel".into(), read("/proc/sys/kernel/osrelease")),
        ("load average at start".into(), read("/proc/loadavg")),
        ("rustc".into(), first_line("rustc", &["--version"])),
        ("node".into(), first_line("node", &["--version"])),
        (
            "npm ws / vite".into(),
            format!("{} / {}", package("ws"), package("vite")),
        ),
        ("wrk".into(), first_line("wrk", &["-v"])),
    ]
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "missing".into())
}
