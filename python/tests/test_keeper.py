"""A live server defends its own file (docs/registry-format.md, "Keeping an entry
present"): deleted, corrupted in place, replaced by another entry, or gone with its whole
directory, the file comes back with the same bytes within the keeper's one-second look
(plus slack), and readers list the entry again. Each case runs against a real
registered asyncio process."""

import json
import os
import shutil
import time
import unittest
from typing import Callable

from .support import Fixture, TempRegistry, listed, wait_for


class KeeperTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.reg = TempRegistry()
        cls.server = Fixture(cls.reg.dir, {"options": {"kind": "mcp", "name": "kept"}})
        with open(cls.server.file, encoding="utf-8") as f:
            cls.original = f.read()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.kill()
        cls.reg.cleanup()

    def holds_original(self) -> bool:
        try:
            with open(self.server.file, encoding="utf-8") as f:
                return f.read() == self.original
        except FileNotFoundError:
            return False

    def restored_after(self, what: str, damage: Callable[[], None]) -> None:
        """Does ``damage`` (after which the file is missing or holds something else) and waits
        until the file holds the entry again."""
        t0 = time.monotonic()
        damage()
        wait_for(self.holds_original, f"the entry file to be restored after: {what}", timeout=3.0)
        print(f"\n  {what} → restored in {(time.monotonic() - t0) * 1000:.0f} ms", end=" ")
        self.assertEqual([s["id"] for s in listed(self.reg.dir)], [self.server.entry["id"]])
        self.assertEqual(os.listdir(self.reg.dir), [f"{self.server.entry['id']}.json"], "no temp file is left")

    def test_deleted_file_comes_back(self) -> None:
        self.restored_after("unlink", lambda: os.unlink(self.server.file))

    def test_file_corrupted_in_place_is_rewritten(self) -> None:
        def corrupt() -> None:
            with open(self.server.file, "w", encoding="utf-8") as f:
                f.write('{"version":2,"id":')
        self.restored_after("garbage written in place", corrupt)

    def test_file_replaced_by_another_entry_is_rewritten(self) -> None:
        def replace() -> None:
            tmp = os.path.join(self.reg.dir, ".replace.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({**json.loads(self.original), "port": 1}, f)
            os.rename(tmp, self.server.file)
        self.restored_after("replaced by rename with port 1", replace)

    def test_deleted_registry_directory_comes_back(self) -> None:
        def remove_dir() -> None:
            # Moved aside first: a plain rmtree races with the keeper writing the file back.
            os.rename(self.reg.dir, self.reg.dir + ".old")
            shutil.rmtree(self.reg.dir + ".old")
        self.restored_after("rm -r of the registry directory", remove_dir)
        self.assertEqual(os.stat(self.reg.dir).st_mode & 0o777, 0o700)


if __name__ == "__main__":
    unittest.main()
