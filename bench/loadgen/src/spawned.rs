//! A process the benchmarks started: a server under test, or a load client.
//!
//! It is stopped by its own PID when dropped (SIGTERM, then SIGKILL after two seconds),
//! never by name. Its stdout is read by a thread into a channel, so that waiting for a
//! line can time out and the pipe never fills.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct Spawned {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Just before `spawn`.
    pub started: Instant,
}

impl Spawned {
    /// Starts `cmd` with stdin and stdout piped; `what` names it in errors.
    pub fn start(mut cmd: Command, what: &str) -> Result<Spawned> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Spawned {
            what: what.to_owned(),
            child,
            stdin,
            lines,
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line of stdout, waiting at most `timeout`.
    pub fn line(&mut self, timeout: Duration) -> Result<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("{} printed nothing for {timeout:?}", self.what)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                bail!("{} closed its output (exit: {status:?})", self.what)
            }
        }
    }

    /// The lines printed since the last call, without waiting.
    pub fn ready_lines(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// The first `ws://`, `http://` or `tcp://` URL on the listening line
    /// (`listening URL …`).
    pub fn listening_url(&mut self, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.line(deadline.saturating_duration_since(Instant::now()))?;
            if let Some(url) = line.split_whitespace().find(|w| {
                ["ws://", "http://", "tcp://"]
                    .iter()
                    .any(|s| w.starts_with(s))
            }) {
                return Ok(url.to_owned());
            }
        }
    }

    /// Writes a line to the process's stdin.
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        writeln!(stdin, "{line}").with_context(|| format!("cannot write to {}", self.what))
    }

    /// Whether the process has exited (it is reaped if so).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Closes stdin (load clients take that as "stop").
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit by itself and returns all it printed after the
    /// lines already read.
    pub fn finish(mut self, timeout: Duration) -> Result<Vec<String>> {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => out.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => bail!("{} did not finish", self.what),
            }
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!("{} failed: {status}", self.what);
        }
        Ok(out)
    }

    /// Sends `sig` to the process (by its PID, which is still ours: it is not reaped).
    pub fn signal(&mut self, sig: libc::c_int) {
        if !self.exited() {
            signal(self.pid(), sig);
        }
    }

    /// Sends SIGTERM and waits; SIGKILL if it is still there after two seconds.
    pub fn stop(&mut self) {
        if self.exited() {
            return;
        }
        signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(self.pid(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Stops many processes at once: `sig` to each (by PID), up to `grace` for all of them to
/// exit, then SIGKILL to those still there. Bounded whatever the processes do.
pub fn stop_all(procs: &mut [Spawned], sig: libc::c_int, grace: Duration) {
    for p in procs.iter_mut() {
        p.signal(sig);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !procs.iter_mut().all(|p| p.exited()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in procs.iter_mut() {
        if !p.exited() {
            signal(p.pid(), libc::SIGKILL);
            let _ = p.child.wait();
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `sig` to `pid`, our own unreaped child (so the PID cannot have been reused).
/// A child that has already exited is not an error here.
fn signal(pid: u32, sig: libc::c_int) {
    use rustix::process::{Pid, Signal, kill_process};
    if let (Some(pid), Some(sig)) = (Pid::from_raw(pid as i32), Signal::from_named_raw(sig)) {
        let _ = kill_process(pid, sig);
    }
}
