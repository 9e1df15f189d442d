"""How a registration ends, with real processes: SIGKILL leaves a file that readers no
longer list (liveness); SIGTERM, Ctrl-C (SIGINT), an uncaught exception, sys.exit(), a
normal return, close() and leaving a ``with`` block remove the file — and the process
ends exactly as it would have without wsreg (the signal's status, exit code 1, …). An app
with its own SIGTERM handler keeps running, and registered. A forked child's exit leaves
its parent's entry alone."""

import atexit
import os
import signal
import unittest
import warnings

import wsreg

from .support import RegistryTestCase, listed, listening_port


class LifecycleTest(RegistryTestCase):
    def is_listed(self, entry_id: str) -> bool:
        return any(s["id"] == entry_id for s in listed(self.reg.dir))

    def test_sigkill_leaves_a_file_readers_do_not_list(self) -> None:
        server = self.start()
        self.assertTrue(self.is_listed(server.entry["id"]))
        server.process.kill()
        self.assertEqual(server.wait(), -signal.SIGKILL)
        self.assertTrue(os.path.exists(server.file))
        self.assertFalse(self.is_listed(server.entry["id"]))
        [dead] = listed(self.reg.dir, "--all")
        self.assertEqual(dead["deadReason"], "no such process")

    def test_sigterm_removes_every_entry_and_the_process_dies_of_it(self) -> None:
        server = self.start(count=2)
        for entry in server.entries:
            self.assertTrue(self.is_listed(entry["id"]))
        server.process.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait(), -signal.SIGTERM)
        for file in server.files:
            self.assertFalse(os.path.exists(file), file)

    def test_sigterm_handled_by_the_app_keeps_it_running_and_registered(self) -> None:
        server = self.start(app_sigterm=True)
        server.process.send_signal(signal.SIGTERM)
        self.assertEqual(server.next_line(), "app got SIGTERM")
        self.assertTrue(self.is_listed(server.entry["id"]))
        server.send("exit")
        self.assertEqual(server.wait(), 0)
        self.assertFalse(os.path.exists(server.file))

    def test_ctrl_c_removes_the_entry_and_the_process_dies_of_sigint(self) -> None:
        server = self.start()
        server.process.send_signal(signal.SIGINT)
        self.assertEqual(server.wait(), -signal.SIGINT)
        self.assertFalse(os.path.exists(server.file))

    def test_uncaught_exception_removes_the_entry_and_still_fails(self) -> None:
        server = self.start()
        server.send("raise")
        self.assertEqual(server.wait(), 1)
        self.assertIn("RuntimeError: uncaught in the fixture", server.stderr())
        self.assertFalse(os.path.exists(server.file))

    def test_sys_exit_removes_the_entry(self) -> None:
        server = self.start()
        server.send("exit")
        self.assertEqual(server.wait(), 0)
        self.assertFalse(os.path.exists(server.file))

    def test_normal_return_with_the_registration_open_removes_it(self) -> None:
        server = self.start()
        server.send("end")
        self.assertEqual(server.wait(), 0)
        self.assertFalse(os.path.exists(server.file))

    def test_close_removes_the_entry_while_the_process_lives(self) -> None:
        server = self.start()
        server.send("close")
        self.assertEqual(server.next_line(), "closed")
        self.assertFalse(os.path.exists(server.file))
        self.assertFalse(self.is_listed(server.entry["id"]))
        server.process.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait(), -signal.SIGTERM)

    def test_leaving_the_with_block_removes_the_entry(self) -> None:
        server = self.start(use_with=True)
        self.assertTrue(self.is_listed(server.entry["id"]))
        server.send("end")
        self.assertEqual(server.next_line(), "left")
        self.assertFalse(os.path.exists(server.file))
        server.send("exit")
        self.assertEqual(server.wait(), 0)

    def test_a_forked_child_ending_leaves_its_parents_entry(self) -> None:
        with wsreg.register(port=listening_port(), registry=self.reg.dir) as reg:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
                pid = os.fork()
            if pid == 0:
                atexit._run_exitfuncs()  # what a normal end of the child runs
                os._exit(0)
            self.assertEqual(os.waitpid(pid, 0)[1], 0)
            self.assertTrue(os.path.exists(reg.file))
            self.assertEqual([s["id"] for s in listed(self.reg.dir)], [reg.id])


if __name__ == "__main__":
    unittest.main()
