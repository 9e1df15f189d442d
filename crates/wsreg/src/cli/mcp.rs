//! `wsreg mcp`: the registry as an MCP server on stdin/stdout, for agents
//! (`wsreg::mcp`). stdout carries the protocol only; logs go to stderr.

use std::process::ExitCode;

use wsreg::Store;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Configure an MCP client with: {\"mcpServers\": {\"wsreg\": {\"command\": \"wsreg\", \"args\": [\"mcp\"]}}}"
)]
pub struct Args {}

pub fn run(store: Store, _args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(wsreg::mcp::serve_stdio(store))?;
    Ok(ExitCode::SUCCESS)
}
