//! `wsreg run -- CMD…`: starts a server written in any language with a free port in
//! `$PORT`, keeps it registered while it lives and exits with its exit status (also when
//! it exits before it listens: the error is printed and its status passed on).

use std::ffi::OsString;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use wsreg::Backend;
use wsreg::supervise::{self, SuperviseError, Supervised};

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// A label shown on the page
    #[arg(long)]
    name: Option<String>,
    /// What the server is: a lowercase word
    #[arg(long, default_value = "ws")]
    kind: String,
    /// A namespace readers can filter on
    #[arg(long)]
    project: Option<String>,
    /// The environment variable that gives CMD its port
    #[arg(long, value_name = "VAR", default_value = "PORT")]
    port_env: String,
    /// The address CMD listens on (the port is free there; the entry's URL uses it)
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Seconds CMD may take to accept connections on its port
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    ready_timeout: u64,
    /// The command and its arguments (after `--`)
    #[arg(required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    let spec = Supervised {
        command: args.command,
        kind: args.kind,
        name: args.name,
        project: args.project,
        port_env: args.port_env,
        host: args.host,
        ready_timeout: Duration::from_secs(args.ready_timeout),
    };
    let result = supervise::run(&spec, backend, |registration| {
        let entry = registration.entry();
        tracing::info!("registered {} ({}, pid {})", entry.id, entry.url, entry.pid);
    });
    match result {
        Ok(outcome) => {
            tracing::info!("{} ended: {outcome}", spec.command[0].to_string_lossy());
            Ok(ExitCode::from(outcome.exit_code()))
        }
        // CMD's own failure: say so, and pass its status on (1 if it claimed success).
        Err(err @ SuperviseError::ExitedEarly { status, .. }) => {
            eprintln!("wsreg: {err}");
            Ok(ExitCode::from(status.exit_code().max(1)))
        }
        Err(err) => Err(err.into()),
    }
}
