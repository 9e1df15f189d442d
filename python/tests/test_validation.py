"""Bad input is refused before anything is written: each bad argument raises an
EntryError — a ValueError — whose ``field`` and message name it, and the registry
directory is not even created; the largest values allowed pass the Rust reader. A
registry directory the caller named whose parent does not exist is an error saying so."""

import os
import unittest

import wsreg

from .support import TempRegistry, listed

CASES = [
    ("port", {"port": 0}, r"^port must be an integer from 1 to 65535 \(got 0\)$"),
    ("port", {"port": 65536}, r"got 65536"),
    ("port", {"port": "80"}, r"got '80'"),
    ("port", {"port": 80.0}, r"got 80\.0"),
    ("port", {"port": True}, r"got True"),
    ("kind", {"kind": "Echo"}, r"^kind must be a lowercase word of at most 32 bytes"),
    ("kind", {"kind": "k" * 33}, r"kind must be"),
    ("kind", {"kind": ""}, r"kind must be"),
    ("kind", {"kind": "a\n"}, r"kind must be"),
    ("name", {"name": "n" * 257}, r"^name is 257 bytes, over the limit of 256$"),
    ("name", {"name": "é" * 129}, r"^name is 258 bytes"),
    ("name", {"name": 42}, r"^name must be a string \(got int\)$"),
    ("name", {"name": "a\ud800b"}, r"^name is not valid UTF-8 text"),
    ("project", {"project": "p" * 257}, r"^project is 257 bytes"),
    ("session", {"session": "s" * 257}, r"^session is 257 bytes"),
    ("host", {"host": "h" * 256}, r"^host is 256 bytes, over the limit of 255$"),
    ("url", {"url": "http://127.0.0.1:1/"}, r"^url must start with ws:// or wss://"),
    ("url", {"url": "ws://" + "u" * 2048}, r"^url is 2053 bytes, over the limit of 2048$"),
    ("meta", {"meta": {"x": "m" * 4100}}, r"^meta is 4108 bytes, over the limit of 4096$"),
    ("meta", {"meta": [1]}, r"^meta must be a mapping"),
    ("meta", {"meta": {"x": float("nan")}}, r"^meta cannot be written as JSON"),
    ("meta", {"meta": {"x": object()}}, r"^meta cannot be written as JSON"),
    ("meta", {"meta": {"x": "\udc00"}}, r"^meta cannot be written as JSON"),
    ("registry", {"registry": 7}, r"^registry must be a path"),
]


class ValidationTest(unittest.TestCase):
    def setUp(self) -> None:
        self.reg = TempRegistry()
        self.addCleanup(self.reg.cleanup)

    def test_each_bad_argument_is_refused_and_nothing_written(self) -> None:
        for field, bad, message in CASES:
            with self.subTest(field=field, bad=repr(bad)[:60]):
                with self.assertRaisesRegex(ValueError, message) as caught:
                    wsreg.register(**{"port": 4000, "registry": self.reg.dir, **bad})
                self.assertIsInstance(caught.exception, wsreg.EntryError)
                self.assertEqual(caught.exception.field, field)
                self.assertFalse(os.path.exists(self.reg.dir), "the registry directory was created")

    def test_an_unknown_argument_is_a_type_error(self) -> None:
        with self.assertRaises(TypeError):
            wsreg.register(port=4000, registry=self.reg.dir, prot=1)  # type: ignore[call-arg]

    def test_the_largest_values_allowed_are_accepted(self) -> None:
        with wsreg.register(port=65535, registry=self.reg.dir, kind="k" + "-" * 31, name="é" * 128,
                            host="h" * 255, url="wss://" + "u" * 2042,
                            meta={"x": "m" * (4096 - len('{"x":""}'))}) as reg:
            self.assertEqual([s["id"] for s in listed(self.reg.dir)], [reg.id], "the Rust reader accepts it")
        self.assertEqual(os.listdir(self.reg.dir), [])

    def test_a_registry_whose_parent_does_not_exist_is_an_error_saying_so(self) -> None:
        directory = os.path.join(self.reg.root, "no-such-parent", "servers")
        with self.assertRaises(FileNotFoundError) as caught:
            wsreg.register(port=4000, registry=directory)
        self.assertEqual(str(caught.exception),
                         f"cannot create the registry directory {directory}: its parent does not exist "
                         "(create it first, or leave out registry= and WSREG_REGISTRY to use the default)")
        self.assertFalse(os.path.exists(os.path.dirname(directory)))


if __name__ == "__main__":
    unittest.main()
