//! `wrk` against an HTTP endpoint: requests per second, refusing a run with errors.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// `wrk -t1 -c{conns} -d{secs}s URL` and its requests per second.
pub fn requests_per_sec(url: &str, conns: u32, secs: u32) -> Result<f64> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), url])
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
    {
        bail!("wrk against {url}: {}", line.trim());
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output: {text}"))
}
