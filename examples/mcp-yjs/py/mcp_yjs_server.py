"""The Python twin of ../server.js: an MCP server (the `mcp` SDK 2.x, stdio transport)
that holds one Yjs document (pycrdt) -- an Array of strings, "notes" -- serves it over
the y-websocket protocol on a port the OS picks (websockets), registers it in the wsreg
registry with the repository's python/wsreg library (kind `yjs`), and offers the tools
`append_note` and `read_notes`. When the MCP client goes away (stdin ends), or on
SIGTERM/SIGINT, it unregisters, closes every WebSocket and exits.

Run it with examples/mcp-yjs/.venv/bin/python (setup-python.sh makes it) and python/ of
the repository on PYTHONPATH. Options (arguments win over the environment):
  --project P   WSREG_PROJECT   (default "mcp-yjs")
  --session S   WSREG_SESSION   (default none)
  --name N      WSREG_NAME      (default "mcp-yjs notes (python)")
  --room R                      the y-websocket room it serves (default "notes")
  WSREG_REGISTRY                the registry directory (default ~/.peer-plan/servers)

stdout is the MCP channel: everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import sys
from urllib.parse import urlsplit

import pycrdt
from mcp.server.mcpserver import MCPServer
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

import wsreg

MAX_NOTE = 10_000


def log(message: str) -> None:
    print(f"mcp-yjs-py: {message}", file=sys.stderr, flush=True)


def is_loopback_name(host: str) -> bool:
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed(request: Request) -> bool:
    """Loopback only: the Host must be a loopback name (DNS rebinding), an Origin, when
    sent, a loopback http(s) origin (cross-site WebSocket hijacking)."""
    try:
        host = urlsplit(f"http://{request.headers.get('Host', '')}").hostname or ""
        if not is_loopback_name(host):
            return False
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and is_loopback_name(parts.hostname or "")
    except ValueError:
        return False


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=os.environ.get("WSREG_PROJECT") or "mcp-yjs")
    parser.add_argument("--session", default=os.environ.get("WSREG_SESSION") or None)
    parser.add_argument("--name", default=os.environ.get("WSREG_NAME") or "mcp-yjs notes (python)")
    parser.add_argument("--room", default="notes")
    args = parser.parse_args()

    doc = pycrdt.Doc()
    notes = doc.get("notes", type=pycrdt.Array)
    clients: set[ServerConnection] = set()

    # Every change of the document, from a tool or from a page, goes to every client.
    def on_change(event: pycrdt.TransactionEvent) -> None:
        broadcast(clients, pycrdt.create_update_message(event.update))

    doc.observe(on_change)

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if not allowed(request):
            return connection.respond(403, "Forbidden\n")
        if urlsplit(request.path).path != f"/{args.room}":
            return connection.respond(404, f"a y-websocket server: connect to /{args.room}\n")
        return None

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            await ws.send(pycrdt.create_sync_message(doc))
            async for message in ws:
                if not isinstance(message, bytes) or not message:
                    continue
                if message[0] == pycrdt.YMessageType.SYNC:
                    reply = pycrdt.handle_sync_message(message[1:], doc)
                    if reply is not None:
                        await ws.send(reply)
                elif message[0] == pycrdt.YMessageType.AWARENESS:
                    # Presence is relayed as is to the others; this server keeps none.
                    broadcast(clients - {ws}, message)
        finally:
            clients.discard(ws)

    server = await serve(handler, "127.0.0.1", 0, process_request=process_request, max_size=16 * 1024 * 1024)
    port = next(iter(server.sockets)).getsockname()[1]
    registration = wsreg.register(
        kind="yjs", port=port, name=args.name, project=args.project, session=args.session,
        meta={"room": args.room, "mcp": "stdio"},
    )
    url = registration.entry["url"]
    session_part = f", session {args.session}" if args.session else ""
    log(f"notes served at {url.rstrip('/')}/{args.room} (project {args.project}{session_part}, id {registration.id})")

    mcp = MCPServer("wsreg-mcp-yjs-py", version="0.1.0", log_level="WARNING")

    @mcp.tool(description=f'Appends a line of text to the shared notes (a Yjs document shown live on every page connected to {url}, project "{args.project}").')
    def append_note(text: str) -> dict[str, int]:
        """Append a note: one line of text."""
        if not 1 <= len(text) <= MAX_NOTE:
            raise ValueError(f"text must be 1 to {MAX_NOTE} characters")
        notes.append(text.replace("\r\n", " ").replace("\n", " "))
        count = len(notes)
        return {"index": count - 1, "count": count}

    @mcp.tool(description="Returns every note of the shared document, oldest first (including those added by pages).")
    def read_notes() -> dict[str, list[str]]:
        """Read the notes."""
        return {"notes": [str(n) for n in notes]}

    why = "stdin closed"
    stdio = asyncio.ensure_future(mcp.run_stdio_async())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        def stop(sig: signal.Signals = sig) -> None:
            nonlocal why
            why = sig.name
            stdio.cancel()
        loop.add_signal_handler(sig, stop)
    try:
        await stdio
    except asyncio.CancelledError:
        pass
    finally:
        registration.close()  # first: the pages learn that the server is gone
        server.close()
        await server.wait_closed()
        log(f"{why}: unregistered {registration.id} and closed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
