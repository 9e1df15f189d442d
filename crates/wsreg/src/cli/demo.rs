//! `wsreg demo`: the 30-second tour — the registry endpoint and page plus three echo
//! servers, in this one process. Ctrl-C stops them all; each echo server unregisters as
//! it stops, so the registry is left as it was found.

use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use wsreg::Backend;
use wsreg::http::{self, Endpoint, Site};
use wsreg::servers::{Listing, echo, socket::DEFAULT_MAX_MESSAGE, terminate_signal};

use super::server::{self, EndpointArgs};

/// How many echo servers the demo starts.
const ECHO_SERVERS: usize = 3;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    endpoint: EndpointArgs,
    /// The project the echo servers are listed under
    #[arg(long, default_value = "demo", value_name = "P")]
    project: String,
}

pub fn run(backend: &Backend, args: Args) -> anyhow::Result<ExitCode> {
    let page_launch = args.endpoint.launch();
    let EndpointArgs {
        listen,
        open,
        health_interval,
        ..
    } = args.endpoint;
    server::runtime()?.block_on(async {
        let signal = terminate_signal().context("cannot install signal handlers")?;
        let endpoint = Endpoint::new(backend, health_interval)
            .with_context(|| format!("cannot watch {}", backend.describe()))?;
        // The page's port is the one that can be taken: bind it before registering anything.
        let page = page_launch.bind(backend).await?;
        let mut echoes = Vec::with_capacity(ECHO_SERVERS);
        for n in 1..=ECHO_SERVERS {
            let listing = Listing {
                kind: echo::KIND.to_owned(),
                name: Some(format!("echo {n}")),
                project: Some(args.project.clone()),
                url: None,
            };
            let bound = listen
                .clone()
                .launch(0, Some(listing))
                .bind(backend)
                .await?;
            server::announce(echo::KIND, &bound);
            echoes.push(bound);
        }
        server::announce("serve", &page);
        let link = match page.token() {
            Some(token) => format!("{}?token={}", page.http_url(), token.as_str()),
            None => page.http_url(),
        };
        println!("open {link} — Ctrl-C stops everything");
        if open {
            server::open_browser(&link);
        }

        let stop = CancellationToken::new();
        let mut running = tokio::task::JoinSet::new();
        for bound in echoes {
            let stopped = stop.clone().cancelled_owned();
            running.spawn(bound.serve(echo::router(DEFAULT_MAX_MESSAGE), stopped));
        }
        let stopped = stop.clone().cancelled_owned();
        running.spawn(page.serve(http::router(endpoint, &Site::Page), stopped));
        tokio::select! {
            () = signal => {}
            Some(ended) = running.join_next() => {
                ended.context("a demo server panicked")??;
            }
        }
        stop.cancel();
        while let Some(ended) = running.join_next().await {
            ended.context("a demo server panicked")??;
        }
        Ok(ExitCode::SUCCESS)
    })
}
