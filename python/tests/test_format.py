"""What a Python server writes is what the Rust library writes: a real asyncio process
registers a real listening server, ``wsreg list --json`` (the Rust reader) lists it with
every field right (pidStartTime included), and the file's bytes are those ``wsreg
register`` writes for the same fields (but for the id and the start time, which are the
writer's own)."""

import json
import os
import socket
import stat
import unittest
from datetime import datetime, timezone

import wsreg

from .support import RegistryTestCase, TempRegistry, listed, listening_port, run_wsreg, start_time_of

OPTIONS = {
    "kind": "mcp",
    "name": 'a "quoted" <b>name</b> é ✓ \t\x01\x7f \u2028',
    "project": "alpha",
    "session": "s-1",
    "meta": {"room": 'a"b\\c', "n": 3, "nested": {"list": [1, 2.5, True, None], "s": "ü"}},
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FormatTest(RegistryTestCase):
    def test_listed_by_wsreg_list_with_every_field(self) -> None:
        before = now_iso()
        server = self.start(options=OPTIONS)
        after = now_iso()
        [found] = listed(self.reg.dir)
        self.assertRegex(found["id"], r"^mcp-[0-9a-hjkmnp-tv-z]{22}$")
        self.assertRegex(found["startedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertTrue(before <= found["startedAt"] <= after, (before, found["startedAt"], after))
        self.assertEqual(found, {
            "id": found["id"],
            "kind": "mcp",
            "name": OPTIONS["name"],
            "project": "alpha",
            "session": "s-1",
            "host": socket.gethostname(),
            "port": server.port,
            "url": f"ws://127.0.0.1:{server.port}/",
            "pid": server.pid,
            "pidStartTime": start_time_of(server.pid),
            "startedAt": found["startedAt"],
            "ttlSecs": None,
            "heartbeatAt": None,
            "meta": OPTIONS["meta"],
        })
        self.assertEqual(found, server.entry)
        # The port is the one the server got: it answers there.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(b"ping")
            self.assertEqual(s.recv(16), b"ping")
        # The file is private, alone (no temp file left), in a private directory.
        self.assertEqual(os.listdir(self.reg.dir), [f"{found['id']}.json"])
        self.assertEqual(stat.S_IMODE(os.stat(self.reg.dir).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(server.file).st_mode), 0o600)

    def test_bytes_equal_what_wsreg_register_writes(self) -> None:
        url = "wss://example.test:8443/x?y=1"
        server = self.start(options={**OPTIONS, "url": url})
        rust = TempRegistry()
        self.addCleanup(rust.cleanup)
        with open(server.file, encoding="utf-8") as f:
            mine = f.read()
        meta = [arg for k, v in OPTIONS["meta"].items() for arg in ("--meta", f"{k}={json.dumps(v)}")]
        rust_id = run_wsreg("register", "--registry", rust.dir, "--pid", str(server.pid),
                            "--port", str(server.port), "--kind", OPTIONS["kind"], "--name", OPTIONS["name"],
                            "--project", OPTIONS["project"], "--session", OPTIONS["session"],
                            "--url", url, *meta).strip()
        with open(os.path.join(rust.dir, f"{rust_id}.json"), encoding="utf-8") as f:
            theirs = f.read()
        expected = (theirs.replace(f'"id":"{rust_id}"', f'"id":"{server.entry["id"]}"')
                    .replace(f'"startedAt":"{json.loads(theirs)["startedAt"]}"',
                             f'"startedAt":"{server.entry["startedAt"]}"'))
        self.assertEqual(mine, expected)
        self.assertTrue(mine.endswith("}\n"))

    def test_registry_path_ending_in_json_names_the_directory(self) -> None:
        with wsreg.register(port=listening_port(), registry=self.reg.dir + ".json") as reg:
            self.assertEqual(reg.file, os.path.join(self.reg.dir, f"{reg.id}.json"))
            self.assertEqual([s["id"] for s in listed(self.reg.dir)], [reg.id])
        self.assertFalse(os.path.exists(reg.file))

    def test_default_location_is_made_with_private_parents(self) -> None:
        home = os.path.join(self.reg.root, "home")
        os.mkdir(home)
        saved = {k: os.environ.get(k) for k in ("HOME", "WSREG_REGISTRY")}

        def restore() -> None:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.addCleanup(restore)
        os.environ["HOME"] = home
        os.environ.pop("WSREG_REGISTRY", None)
        with wsreg.register(port=4321) as reg:
            self.assertEqual(reg.file, os.path.join(home, ".peer-plan", "servers", f"{reg.id}.json"))
            for d in (os.path.join(home, ".peer-plan"), os.path.join(home, ".peer-plan", "servers")):
                self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700, d)


if __name__ == "__main__":
    unittest.main()
