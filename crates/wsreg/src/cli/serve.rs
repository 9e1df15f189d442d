//! `wsreg serve`: the registry endpoint — the HTTP API with live push, and the page (or
//! a user's built site with `--static`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use wsreg::Backend;
use wsreg::http::{self, Endpoint, Site};

use super::server::{self, EndpointArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    endpoint: EndpointArgs,
    /// Serve this directory (a built site) at / instead of the page; the API stays beside it
    #[arg(long = "static", value_name = "DIR")]
    static_dir: Option<PathBuf>,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    let site = match args.static_dir {
        None => Site::Page,
        Some(dir) if dir.is_dir() => Site::Static(dir),
        Some(dir) => bail!("--static {}: not a directory", dir.display()),
    };
    let endpoint = Endpoint::new(backend, args.endpoint.health_interval)
        .with_context(|| format!("cannot watch {}", backend.describe()))?;
    let app = http::router(endpoint, &site);
    let open = args.endpoint.open;
    server::run(backend, "serve", args.endpoint.launch(), app, |bound| {
        if open {
            server::open_browser(&bound.http_url());
        }
    })
}
