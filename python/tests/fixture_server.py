"""A real asyncio server process for the tests: it listens on a TCP port, registers
itself with wsreg, says what it registered as one JSON line on stdout, and then obeys
commands on stdin, one a line: ``close`` (close() every registration, answer
``closed``), ``exit`` (sys.exit(0)), ``raise`` (an uncaught exception), ``end`` (close
the server and return from main: a normal end with the registrations open).

WSREG_TEST_FIXTURE (JSON) says how: ``options`` (keyword arguments of register),
``count`` registrations (default 1), ``app_sigterm`` (the app handles SIGTERM itself,
installed before registering, and stays up), ``use_with`` (one registration in a
``with`` block, which ``end`` leaves: the fixture answers ``left`` and waits for one more
command before it ends).
"""

import asyncio
import json
import os
import signal
import sys
import threading

import wsreg

config = json.loads(os.environ.get("WSREG_TEST_FIXTURE", "{}"))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.read(1024))
    await writer.drain()
    writer.close()


def read_stdin(loop: asyncio.AbstractEventLoop, commands: "asyncio.Queue[str]") -> None:
    for line in sys.stdin:
        loop.call_soon_threadsafe(commands.put_nowait, line.strip())


def announce(registrations: "list[wsreg.Registration]", port: int) -> None:
    print(json.dumps({"entries": [dict(r.entry) for r in registrations],
                      "files": [r.file for r in registrations], "port": port}), flush=True)


async def obey(commands: "asyncio.Queue[str]", registrations: "list[wsreg.Registration]",
               server: asyncio.AbstractServer) -> None:
    while True:
        command = await commands.get()
        if command == "close":
            for r in registrations:
                r.close()
            print("closed", flush=True)
        elif command == "exit":
            sys.exit(0)
        elif command == "raise":
            raise RuntimeError("uncaught in the fixture")
        elif command == "end":
            server.close()
            await server.wait_closed()
            return


async def main() -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    if config.get("app_sigterm"):
        signal.signal(signal.SIGTERM, lambda *_: print("app got SIGTERM", flush=True))
    commands: "asyncio.Queue[str]" = asyncio.Queue()
    threading.Thread(target=read_stdin, args=(asyncio.get_running_loop(), commands), daemon=True).start()
    options = config.get("options", {})
    if config.get("use_with"):
        with wsreg.register(port=port, **options) as registration:
            announce([registration], port)
            await obey(commands, [registration], server)
        print("left", flush=True)
        await commands.get()
        return
    registrations = [wsreg.register(port=port, **options) for _ in range(config.get("count", 1))]
    announce(registrations, port)
    await obey(commands, registrations, server)


asyncio.run(main())
