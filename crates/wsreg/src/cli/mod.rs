//! The command line: one file per subcommand, each a thin layer over the library.
//! Errors are reported here, at the edge, as one line with their context.

mod backend;
mod demo;
mod echo;
mod list;
mod mcp;
mod prune;
mod register;
mod run;
mod serve;
mod server;
mod unregister;
mod watch;
mod yjs;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Parser, Subcommand};
use wsreg::{Filter, Store};

/// Find and talk to every WebSocket server on this machine.
#[derive(Debug, Parser)]
#[command(name = "wsreg", version, propagate_version = true)]
pub struct Cli {
    /// The registry directory [default: $WSREG_REGISTRY, else ~/.peer-plan/servers/]; a
    /// path ending in .json names a version 1 file, whose directory is that path without
    /// .json (docs/registry-format.md)
    #[arg(long, global = true, value_name = "PATH")]
    registry: Option<PathBuf>,

    #[command(flatten)]
    backend: backend::BackendArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the live servers (a table, or the API's JSON document with --json)
    List(list::Args),
    /// Print the live list again at every change, until interrupted
    Watch(watch::Args),
    /// Remove dead entries from the registry file
    Prune(prune::Args),
    /// Register a server run by another process (prints the new id)
    Register(register::Args),
    /// Remove an entry by id
    Unregister(unregister::Args),
    /// Run a server written in any language with a free port in $PORT, registered while it lives
    Run(run::Args),
    /// A y-websocket compatible Yjs sync server (one document per path), registered as kind yjs
    Yjs(yjs::Args),
    /// Run a registered WebSocket echo server
    Echo(echo::Args),
    /// Serve the registry API with live push, and the page (or your own site with --static)
    Serve(serve::Args),
    /// Serve the page plus three echo servers: the 30-second tour
    Demo(demo::Args),
    /// An MCP server on stdin/stdout for agents: list and wait for servers, watch the live list
    Mcp(mcp::Args),
}

/// `--project` and `--kind`, shared by the readers.
#[derive(Debug, Clone, clap::Args)]
struct FilterArgs {
    /// Only servers of this project
    #[arg(long, value_name = "P")]
    project: Option<String>,
    /// Only servers of this kind
    #[arg(long, value_name = "K")]
    kind: Option<String>,
}

impl From<FilterArgs> for Filter {
    fn from(a: FilterArgs) -> Filter {
        Filter {
            project: a.project,
            kind: a.kind,
        }
    }
}

/// Logs go to stderr; `WSREG_LOG` sets the level (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WSREG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Yjs(_) = cli.command {
        // Before anything starts: this may replace the process (see its docs).
        wsreg::yjs::heap::restart_with_tunables();
    }
    let backend = cli.backend.backend(Store::locate(cli.registry)?)?;
    let dir_only = |command: &str| match backend.is_etcd() {
        true => bail!("{command} works on the local directory only, not with --backend etcd"),
        false => Ok(backend.store().clone()),
    };
    match cli.command {
        Command::List(args) => list::run(&backend, args),
        Command::Watch(args) => watch::run(&backend, args),
        Command::Prune(args) => prune::run(&dir_only("prune")?, args),
        Command::Register(args) => register::run(&backend, args),
        Command::Unregister(args) => unregister::run(&backend, args),
        Command::Run(args) => run::run(&backend, args),
        Command::Yjs(args) => yjs::run(&backend, args),
        Command::Echo(args) => echo::run(&backend, args),
        Command::Serve(args) => serve::run(&backend, args),
        Command::Demo(args) => demo::run(&backend, args),
        Command::Mcp(args) => mcp::run(dir_only("mcp")?, args),
    }
}

/// A duration as a person reads it: `42s`, `3m12s`, `5h02m`, `2d04h`.
fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}
