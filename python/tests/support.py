"""What the tests share: the Rust ``wsreg`` binary (the reference reader and writer:
$WSREG_BIN, else target/debug/wsreg of this repository), a private temp registry, the
fixture server process (fixture_server.py) with its line protocol, a process's start
time from /proc, and bounded polling for conditions (no sleep is used to synchronise)."""

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import Any, Callable, Dict, List, Optional, TypeVar

T = TypeVar("T")

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(PYTHON_DIR)
WSREG_BIN = os.path.abspath(os.environ.get("WSREG_BIN") or os.path.join(REPO_ROOT, "target", "debug", "wsreg"))
FIXTURE = os.path.join(PYTHON_DIR, "tests", "fixture_server.py")


def run_wsreg(*args: str) -> str:
    if not os.path.exists(WSREG_BIN):
        raise RuntimeError(f"the wsreg binary is missing at {WSREG_BIN}: run `cargo build` first, or set WSREG_BIN")
    env = {**os.environ, "WSREG_LOG": "error"}
    return subprocess.run([WSREG_BIN, *args], check=True, capture_output=True, text=True, env=env, timeout=20).stdout


def listening_port() -> int:
    """A loopback port this test process listens on until it exits: readers list an entry
    only while its process listens on the entry's port."""
    server = socket.create_server(("127.0.0.1", 0))
    _LISTENERS.append(server)
    return int(server.getsockname()[1])


_LISTENERS: List[socket.socket] = []


def listed(directory: str, *flags: str) -> List[Dict[str, Any]]:
    """The servers of the registry, as `wsreg list --json` prints them (live ones only,
    unless ``--all``)."""
    return json.loads(run_wsreg("list", "--json", "--registry", directory, *flags))["servers"]


class TempRegistry:
    """A fresh private temp directory ``root``; the registry ``dir`` (root/servers) is not made."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="wsreg-py-")
        self.dir = os.path.join(self.root, "servers")

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(check: Callable[[], Optional[T]], what: str, timeout: float = 5.0) -> T:
    """Polls ``check`` every 10 ms until it returns a truthy value, for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def start_time_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return int(stat[stat.rindex(b")") + 1:].split()[19])


class Fixture:
    """fixture_server.py, registered in ``registry``, once it has said what it registered."""

    def __init__(self, registry: str, config: Dict[str, Any]) -> None:
        env = {**os.environ, "WSREG_REGISTRY": registry, "WSREG_TEST_FIXTURE": json.dumps(config),
               "PYTHONPATH": PYTHON_DIR}
        self.process = subprocess.Popen([sys.executable, FIXTURE], env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        registered = json.loads(self.next_line())
        self.entries: List[Dict[str, Any]] = registered["entries"]
        self.files: List[str] = registered["files"]
        self.entry = self.entries[0]
        self.file = self.files[0]
        self.port: int = registered["port"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float = 10.0) -> str:
        line = self._lines.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"the fixture ended before writing a line: {self.stderr()}")
        return line

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def wait(self, timeout: float = 10.0) -> int:
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read() if self.process.poll() is not None else ""

    def kill(self) -> None:
        """Kills the process if it still runs, and closes its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class RegistryTestCase(unittest.TestCase):
    """A test with a fresh registry, and fixture processes killed when it ends."""

    def setUp(self) -> None:
        self.reg = TempRegistry()
        self.addCleanup(self.reg.cleanup)

    def start(self, **config: object) -> "Fixture":
        fixture = Fixture(self.reg.dir, config)
        self.addCleanup(fixture.kill)
        return fixture
