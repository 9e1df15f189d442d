//! What every server subcommand shares: the listening options, the registry listing
//! options, and running a server until SIGINT/SIGTERM with the one line that says where
//! it listens (scripts and tests wait for that line).

use std::process::ExitCode;

use anyhow::Context;
use axum::Router;
use wsreg::Backend;
use wsreg::http::Guard;
use wsreg::servers::{Bound, Launch, Listing, terminate_signal};

/// Where a server listens and whom it accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct ListenArgs {
    /// The address to listen on
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub host: String,
    /// Also accept requests whose Host is this name (repeatable)
    #[arg(long = "allowed-host", value_name = "H")]
    pub allowed_hosts: Vec<String>,
    /// Also accept requests and WebSocket upgrades from this origin, e.g.
    /// https://tool.example (repeatable)
    #[arg(long = "allowed-origin", value_name = "O")]
    pub allowed_origins: Vec<String>,
    /// `token`: every request must carry the per-user secret kept in auth-token beside
    /// the registry (made at first use); see docs/security.md
    #[arg(long, value_enum, default_value_t = AuthArg::None, value_name = "MODE")]
    pub auth: AuthArg,
}

/// `--auth`: none, or the per-user token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthArg {
    None,
    Token,
}

impl ListenArgs {
    /// The launch options for `port`, listed as `listing` (or not listed).
    pub fn launch(self, port: u16, listing: Option<Listing>) -> Launch {
        Launch {
            host: self.host,
            port,
            next_ports: 0,
            guard: Guard {
                allowed_hosts: self.allowed_hosts,
                // Browsers send the scheme and host in lowercase, and origins are
                // compared exactly: `--allowed-origin HTTPS://Tool.Example` still matches.
                allowed_origins: self
                    .allowed_origins
                    .into_iter()
                    .map(|o| o.to_ascii_lowercase())
                    .collect(),
            },
            token_auth: self.auth == AuthArg::Token,
            listing,
        }
    }
}

/// The options of a registered server (`echo`, `yjs`): its port, where it listens, and
/// how it is listed.
#[derive(Debug, Clone, clap::Args)]
pub struct RegisteredArgs {
    /// The port to listen on; 0 lets the OS choose a free one
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub listing: ListingArgs,
}

impl RegisteredArgs {
    /// The launch options of a server of `kind`.
    pub fn launch(self, kind: &str) -> Launch {
        self.listen
            .launch(self.port, Some(self.listing.listing(kind)))
    }
}

/// The port a registry endpoint tries first when none is given.
pub const DEFAULT_ENDPOINT_PORT: u16 = 5173;
/// How many ports after it are tried when it is taken (a Vite app often holds 5173).
const NEXT_ENDPOINT_PORTS: u16 = 20;

/// The options of a registry endpoint (`serve`, `demo`): its port, where it listens, and
/// whether to open the page.
#[derive(Debug, Clone, clap::Args)]
pub struct EndpointArgs {
    /// The port of the page and API [default: 5173, or the next free one after it, as
    /// Vite does; a port given here is used or the command fails]
    #[arg(long)]
    pub port: Option<u16>,
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Open the page in the default browser once listening
    #[arg(long)]
    pub open: bool,
    /// How often each listed server is probed while a page (or any SSE client) is
    /// subscribed, e.g. 5s, 500ms; 0 turns probing off
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_interval)]
    pub health_interval: std::time::Duration,
}

/// A duration like `5s` or `500ms`, or `0` (off).
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    match s.trim() {
        "0" => Ok(std::time::Duration::ZERO),
        s => {
            humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 5s, 500ms, or 0 for off)"))
        }
    }
}

impl EndpointArgs {
    /// The launch options of the endpoint (not listed in the registry).
    pub fn launch(&self) -> Launch {
        let port = self.port.unwrap_or(DEFAULT_ENDPOINT_PORT);
        let next_ports = match self.port {
            Some(_) => 0,
            None => NEXT_ENDPOINT_PORTS,
        };
        Launch {
            next_ports,
            ..self.listen.clone().launch(port, None)
        }
    }
}

/// How a registered server is labelled on the page.
#[derive(Debug, Clone, clap::Args)]
pub struct ListingArgs {
    /// A label shown on the page
    #[arg(long, value_name = "S")]
    pub name: Option<String>,
    /// A namespace readers can filter on
    #[arg(long, value_name = "P")]
    pub project: Option<String>,
    /// The URL other machines connect to, when it is not the bound address's (a server
    /// on 0.0.0.0 behind a host name, a proxy)
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
}

impl ListingArgs {
    pub fn listing(self, kind: &str) -> Listing {
        Listing {
            kind: kind.to_owned(),
            name: self.name,
            project: self.project,
            url: self.advertise,
        }
    }
}

/// A multi-threaded tokio runtime for a server command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

/// Prints the listening line: `<label> listening on <url>[ id <id>]`; with token auth, an
/// HTTP server then prints its tokenised link: `open <url>?token=<token>`.
pub fn announce(label: &str, bound: &Bound) {
    match bound.id() {
        Some(id) => println!("{label} listening on {} id {id}", bound.ws_url()),
        None => {
            println!("{label} listening on {}", bound.http_url());
            if let Some(token) = bound.token() {
                println!("open {}?token={}", bound.http_url(), token.as_str());
            }
        }
    }
}

/// Runs one server: bind (and register), announce, call `on_listening`, serve until
/// SIGINT or SIGTERM, unregister, exit 0.
pub fn run(
    backend: &Backend,
    label: &str,
    launch: Launch,
    app: Router,
    on_listening: impl FnOnce(&Bound),
) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let stop = terminate_signal().context("cannot install signal handlers")?;
        let bound = launch.bind(backend).await?;
        announce(label, &bound);
        on_listening(&bound);
        bound.serve(app, stop).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Opens `url` in the desktop's browser; a failure is reported, not fatal.
pub fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        tracing::warn!("cannot open a browser with {opener}: {e}; open {url} yourself");
    }
}
