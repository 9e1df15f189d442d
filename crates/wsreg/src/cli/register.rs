//! `wsreg register`: registers a server run by another process, for servers written in
//! languages that cannot link the library. The entry is written once; it is dropped when
//! that process dies (use `wsreg run` to have it kept present while it lives).
//!
//! The entry names the process that holds the LISTEN socket on the port — `--pid` (by
//! default the caller) or one of its descendants — since readers show an entry only
//! while its process listens on its port. A port nobody listens on, or a stranger's, is
//! refused: register after the server listens.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;
use wsreg::registry::sockets::{self, Listener};
use wsreg::registry::{ProcessState, ProcessTable, SystemProcesses};
use wsreg::{Backend, Server};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The port the server listens on
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// The server's process. Default: the PARENT of `wsreg register`, i.e. the shell or
    /// program that runs it (not the short-lived wsreg process itself): from a script,
    /// the entry lives as long as the script does
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// What the server is: a lowercase word
    #[arg(long, default_value = "ws")]
    kind: String,
    /// A label shown on the page
    #[arg(long)]
    name: Option<String>,
    /// A namespace readers can filter on
    #[arg(long)]
    project: Option<String>,
    /// A session label
    #[arg(long)]
    session: Option<String>,
    /// The URL to connect to [default: ws://127.0.0.1:PORT/]
    #[arg(long)]
    url: Option<String>,
    /// Extra metadata, KEY=VALUE (repeatable; VALUE is JSON when it parses, else a string)
    #[arg(long, value_name = "KEY=VALUE")]
    meta: Vec<String>,
    /// Make the entry a lease of this many seconds (renew by registering again)
    #[arg(long, value_name = "SECS")]
    ttl: Option<u64>,
    /// Print the whole entry as JSON instead of the id
    #[arg(long)]
    json: bool,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    let parent = || rustix::process::getppid().map_or(1, |p| p.as_raw_nonzero().get() as u32);
    let asked = args.pid.unwrap_or_else(parent);
    if !matches!(
        SystemProcesses::default().probe(asked),
        ProcessState::Running { .. }
    ) {
        bail!("no running process with pid {asked}");
    }
    let port = args.port;
    let pid = match sockets::listener_in_tree(asked, port) {
        Listener::Ours(owner) => {
            if owner != asked {
                eprintln!(
                    "wsreg: port {port} is held by{}, a descendant of pid {asked}: registering it",
                    sockets::describe(owner)
                );
            }
            owner
        }
        Listener::Unchecked => asked,
        Listener::Stranger(owner) => bail!(
            "port {port} is held by another process{}, not by pid {asked} or its children: not registered",
            owner.map(sockets::describe).unwrap_or_default(),
        ),
        Listener::Nobody => bail!(
            "nothing listens on port {port}, so not process{} either: not registered \
             (register a server after it listens)",
            sockets::describe(asked)
        ),
    };
    let mut server = Server::for_pid(&args.kind, args.port, pid);
    if let Some(v) = args.name {
        server = server.name(v);
    }
    if let Some(v) = args.project {
        server = server.project(v);
    }
    if let Some(v) = args.session {
        server = server.session(v);
    }
    if let Some(v) = args.url {
        server = server.url(v);
    }
    if let Some(secs) = args.ttl {
        server = server.lease(std::time::Duration::from_secs(secs));
    }
    for kv in &args.meta {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--meta {kv:?}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        server = server.meta(k, value);
    }
    let entry = backend
        .register_once(server)
        .with_context(|| format!("cannot register in {}", backend.describe()))?;
    match args.json {
        true => println!("{}", serde_json::to_string(&entry)?),
        false => println!("{}", entry.id),
    }
    Ok(ExitCode::SUCCESS)
}
