# SPDX-License-Identifier: MIT
"""weft_worker.py (plugins/python) speaks protocol 1: driven over pipes, no weft.

Each test writes a tiny task script to a temporary folder, starts it as weft
would (its own process group, stdin/stdout pipes, PYTHONPATH at the helper's
folder) and plays weft's side of docs/worker-protocol.md by hand.

    python3 tests/plugins/test_weft_worker.py      (meson: the weft_worker_py test)

WEFT_WORKER_PY_DIR names the folder of weft_worker.py (default: the source
tree's plugins/python).  numpy tests are skipped when numpy is missing.
"""

import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER_DIR = os.environ.get("WEFT_WORKER_PY_DIR") or os.path.join(HERE, "..", "..", "plugins", "worker")
HELPER_DIR = os.path.abspath(HELPER_DIR)
TIMEOUT = 20.0  # seconds any one reply may take (a loaded CI machine)
# Importing weft_worker under WEFT_WORKER takes fds 0 and 1: not in this process.
os.environ.pop("WEFT_WORKER", None)

try:
    import numpy  # noqa: F401  (only to know whether the worker can use it)
    HAVE_NUMPY = True
except ImportError:
    HAVE_NUMPY = False


class Worker:
    """One worker process and weft's end of its pipes."""

    def __init__(self, folder, argv, env=None):
        self.stderr_path = os.path.join(folder, f"stderr-{time.monotonic_ns()}.txt")
        self._stderr = open(self.stderr_path, "wb")  # a file: never blocks the worker
        full_env = dict(os.environ)
        full_env.pop("WEFT_WORKER", None)
        full_env["PYTHONPATH"] = HELPER_DIR
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable] + argv, cwd=folder, env=full_env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True)  # its own process group, as weft starts it
        self._buf = b""

    def send(self, line):
        self.proc.stdin.write(line.encode("utf-8", "surrogatepass") + b"\n")
        self.proc.stdin.flush()

    def readline(self, timeout=TIMEOUT):
        """One line of the worker's stdout (bytes, without \\n); b"" at EOF."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no reply within {timeout} s; stderr: {self.stderr()!r}")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    rest, self._buf = self._buf, b""
                    return rest
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def hello(self, args=None, protocol=1, **extra):
        frame = {"protocol": protocol, "worker": 0, "workers": 1, "run_seed": 0,
                 "config_dir": os.getcwd(), "args": args or {}}
        frame.update(extra)
        self.send("hello " + json.dumps(frame))
        return self.readline().decode("utf-8")

    def item(self, index=0, number=None, text=None, seed=0):
        frame = {"index": index, "number": index if number is None else number, "seed": seed}
        if text is not None:
            frame["text"] = text
        # ensure_ascii: lone surrogates travel as \\udcXX escapes, as weft sends them
        self.send("item " + json.dumps(frame))
        return self.readline()

    def value(self, **item):
        """An item's reply, which must be ok: its JSON value."""
        reply = self.item(**item)
        if reply == b"ok":
            return None
        if not reply.startswith(b"ok "):
            raise AssertionError(f"expected ok, got {reply!r}; stderr: {self.stderr()!r}")
        return json.loads(reply[3:].decode("utf-8"))  # strict: bytes must be UTF-8

    def close(self, timeout=TIMEOUT):
        """End the input; the exit status."""
        self.proc.stdin.close()
        return self.wait(timeout)

    def wait(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout)
        finally:
            self._stderr.close()

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()
        self._stderr.close()


class WorkerTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="weft_worker_test.")
        self.dir = self._tmp.name
        self.workers = []

    def tearDown(self):
        for w in self.workers:
            w.kill()
        self._tmp.cleanup()

    def script(self, body, name="task.py", run=True):
        """Write a task script (weft_worker imported; run() at the end)."""
        text = "import weft_worker\n" + textwrap.dedent(body)
        if run:
            text += '\nif __name__ == "__main__":\n    weft_worker.run()\n'
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return name

    def start(self, body, argv=None, env=None, **kw):
        name = self.script(body, **kw)
        w = Worker(self.dir, argv or [name], env)
        self.workers.append(w)
        return w

    def started(self, body, args=None, **kw):
        """A worker that answered ready."""
        w = self.start(body, **kw)
        self.assertEqual(w.hello(args), "ready", w.stderr())
        return w


ADD_ONE = """
@weft_worker.task
def process(item):
    return item.number + 1
"""


class Handshake(WorkerTest):
    def test_ready_then_values_then_exit_0_at_eof(self):
        w = self.started(ADD_ONE)
        self.assertEqual(w.item(index=0, number=41), b"ok 42")
        self.assertEqual(w.item(index=1, number=-5), b"ok -4")
        self.assertEqual(w.close(), 0)
        self.assertEqual(w.readline(), b"")  # nothing after the last reply

    def test_eof_before_hello_exits_0(self):
        w = self.start(ADD_ONE)
        self.assertEqual(w.close(), 0)

    def test_protocol_mismatch_fails_naming_both_versions(self):
        w = self.start(ADD_ONE)
        reply = w.hello(protocol=2)
        self.assertTrue(reply.startswith("fail "), reply)
        self.assertIn("protocol 1", reply)
        self.assertIn("protocol 2", reply)
        self.assertNotEqual(w.wait(), 0)

    def test_unknown_hello_keys_and_item_keys_are_ignored(self):
        w = self.start(ADD_ONE)
        self.assertEqual(w.hello(future_key={"x": 1}), "ready")
        w.send('item {"index":0,"number":7,"seed":1,"later":[1,2]}')
        self.assertEqual(w.readline(), b"ok 8")

    def test_context_holds_hello_fields(self):
        w = self.start("""
            @weft_worker.task
            def process(item):
                c = weft_worker.context
                return [c.worker, c.run_seed, c.config_dir, c.args]
            """)
        w.send('hello {"protocol":1,"worker":3,"workers":4,"run_seed":9,'
                                 '"config_dir":"/x","args":{}}')
        self.assertEqual(w.readline(), b"ready")
        self.assertEqual(w.value(), [3, 9, "/x", {}])

    def test_no_task_fails_hello(self):
        w = self.start("x = 1\n")
        reply = w.hello()
        self.assertTrue(reply.startswith("fail ") and "@weft_worker.task" in reply, reply)

    def test_two_tasks_fail_hello(self):
        w = self.start("""
            @weft_worker.task
            def a(item): return 1
            @weft_worker.task
            def b(item): return 2
            """)
        reply = w.hello()
        self.assertTrue(reply.startswith("fail ") and "a, b" in reply, reply)


ECHO_ARGS = """
import pathlib
from typing import Optional

@weft_worker.task
def process(item, n: int, x: float = 0.5, flag: bool = False, name: str = "a",
            where: pathlib.Path = pathlib.Path("."), by_default=3, by_float=1.0,
            plain=None, opt: Optional[int] = None):
    return {k: [type(v).__name__, str(v)] for k, v in dict(
        n=n, x=x, flag=flag, name=name, where=where, by_default=by_default,
        by_float=by_float, plain=plain, opt=opt).items()}
"""


class Arguments(WorkerTest):
    def test_each_type_converts(self):
        w = self.started(ECHO_ARGS, {
            "n": "12", "x": "2.5", "flag": "yes", "name": "7", "where": "out/a",
            "by_default": "-4", "by_float": "3", "plain": "001", "opt": "5"})
        self.assertEqual(w.value(), {
            "n": ["int", "12"], "x": ["float", "2.5"], "flag": ["bool", "True"],
            "name": ["str", "7"], "where": ["PosixPath", "out/a"],
            "by_default": ["int", "-4"], "by_float": ["float", "3.0"],
            "plain": ["str", "001"], "opt": ["int", "5"]})

    def test_defaults_stay_when_not_set(self):
        w = self.started(ECHO_ARGS, {"n": "1"})
        v = w.value()
        self.assertEqual(v["x"], ["float", "0.5"])
        self.assertEqual(v["plain"], ["NoneType", "None"])

    def test_path_default_and_item_name_in_messages(self):
        w = self.start("""
            import pathlib

            @weft_worker.task
            def process(it, where=pathlib.Path("a"), n=1):
                return [type(where).__name__, str(where)]
            """)
        self.assertEqual(w.hello({"where": "b/c", "n": "x"}),
                         "fail argument 'n': expected int, got 'x'")
        w = self.started("""
            import pathlib

            @weft_worker.task
            def process(it, where=pathlib.Path("a")):
                return [type(where).__name__, str(where)]
            """, {"where": "b/c"})
        self.assertEqual(w.value(), ["PosixPath", "b/c"])
        w = self.start("""
            @weft_worker.task
            def process(it, size=1):
                return 0
            """)
        self.assertIn("for process(it, size=1);", w.hello({"sizes": "2"}))

    def test_int_takes_hex_as_weft_does(self):
        w = self.started("""
            @weft_worker.task
            def process(item, n: int = 0):
                return n
            """, {"n": "0x1F"})
        self.assertEqual(w.value(), 31)

    def test_bool_spellings(self):
        for text, want in [("true", True), ("FALSE", False), ("Yes", True), ("no", False),
                           ("ON", True), ("off", False), ("1", True), ("0", False)]:
            w = self.started("""
                @weft_worker.task
                def process(item, flag: bool = None):
                    return flag
                """, {"flag": text})
            self.assertIs(w.value(), want, text)
            w.close()

    def test_unknown_argument_suggests_the_close_one(self):
        w = self.start("""
            @weft_worker.task
            def process(item, size=100, outdir="out"):
                return 0
            """)
        self.assertEqual(
            w.hello({"sise": "3"}),
            "fail unknown argument 'sise' for process(item, size=100, outdir='out'); "
            "did you mean 'size'?")

    def test_unknown_argument_without_close_match_lists_the_parameters(self):
        w = self.start("""
            @weft_worker.task
            def process(item, size=100):
                return 0
            """)
        reply = w.hello({"zzz": "3"})
        self.assertTrue(reply.startswith("fail unknown argument 'zzz'"), reply)
        self.assertIn("it takes size", reply)

    def test_var_kwargs_take_any_key_as_str(self):
        w = self.started("""
            @weft_worker.task
            def process(item, size: int = 1, **rest):
                return [size, rest]
            """, {"size": "2", "other": "3"})
        self.assertEqual(w.value(), [2, {"other": "3"}])

    def test_missing_required_argument(self):
        w = self.start("""
            @weft_worker.task
            def process(item, size: int):
                return 0
            """)
        reply = w.hello({})
        self.assertTrue(reply.startswith("fail missing argument 'size'"), reply)
        self.assertNotEqual(w.wait(), 0)

    def test_bad_value(self):
        w = self.start("""
            @weft_worker.task
            def process(item, size: int = 100):
                return 0
            """)
        self.assertEqual(w.hello({"size": "abc"}), "fail argument 'size': expected int, got 'abc'")

    def test_bad_bool(self):
        w = self.start("""
            @weft_worker.task
            def process(item, flag=False):
                return 0
            """)
        reply = w.hello({"flag": "maybe"})
        self.assertTrue(reply.startswith("fail argument 'flag': expected bool"), reply)

    def test_setup_runs_once_with_its_arguments(self):
        w = self.started("""
            calls = []

            @weft_worker.setup
            def prepare(model: str, size: int = 0):
                calls.append((model, size))

            @weft_worker.task
            def process(item, size: int = 0):
                return [calls, size]
            """, {"model": "m.bin", "size": "4"})
        self.assertEqual(w.value(index=0), [[["m.bin", 4]], 4])
        self.assertEqual(w.value(index=1), [[["m.bin", 4]], 4])

    def test_setup_exception_fails_hello(self):
        w = self.start("""
            @weft_worker.setup
            def prepare():
                raise RuntimeError("no GPU here")

            @weft_worker.task
            def process(item):
                return 0
            """)
        reply = w.hello()
        self.assertTrue(reply.startswith("fail ") and "RuntimeError: no GPU here" in reply, reply)
        self.assertNotEqual(w.wait(), 0)
        self.assertIn("Traceback", w.stderr())

    def test_teardown_runs_at_eof(self):
        w = self.started("""
            @weft_worker.teardown
            def done():
                open("teardown.txt", "w").write("done")

            @weft_worker.task
            def process(item):
                return 0
            """)
        self.assertEqual(w.close(), 0)
        with open(os.path.join(self.dir, "teardown.txt")) as f:
            self.assertEqual(f.read(), "done")


class Failures(WorkerTest):
    def test_exception_fails_the_item_and_the_worker_goes_on(self):
        w = self.started("""
            @weft_worker.task
            def process(item):
                if item.index == 1:
                    raise KeyError("no\\nsuch key")
                return item.index
            """)
        self.assertEqual(w.item(index=0), b"ok 0")
        self.assertEqual(w.item(index=1), b"fail KeyError: 'no\\nsuch key'")
        self.assertEqual(w.item(index=2), b"ok 2")
        self.assertEqual(w.close(), 0)
        err = w.stderr()
        self.assertIn("Traceback (most recent call last)", err)
        self.assertIn("in process", err)
        self.assertNotIn("_serve", err)  # the user's frames, not the helper's

    def test_message_newlines_become_spaces_and_long_ones_are_cut(self):
        w = self.started("""
            @weft_worker.task
            def process(item):
                raise ValueError("a\\nb\\r\\nc" if item.index == 0 else "x" * 5000)
            """)
        self.assertEqual(w.item(index=0), b"fail ValueError: a b  c")
        long = w.item(index=1)
        self.assertTrue(long.startswith(b"fail ValueError: xxx"), long[:40])
        self.assertLessEqual(len(long), 2010)
        self.assertTrue(long.endswith(b"..."))

    def test_exception_without_message_is_its_type(self):
        w = self.started("""
            @weft_worker.task
            def process(item):
                raise ZeroDivisionError
            """)
        self.assertEqual(w.item(), b"fail ZeroDivisionError")

    def test_unserializable_value(self):
        w = self.started("""
            class Blob:
                pass

            @weft_worker.task
            def process(item):
                return {"a": [1, Blob()]} if item.index == 0 else item.index
            """)
        self.assertEqual(w.item(index=0), b"fail value of type Blob is not JSON serializable")
        self.assertEqual(w.item(index=1), b"ok 1")

    def test_sigint_during_a_task_exits_130_without_a_reply(self):
        w = self.started("""
            import time

            @weft_worker.task
            def process(item):
                open("started", "w").close()
                time.sleep(60)
                return 1
            """)
        w.send('item {"index":0,"number":0,"seed":0}')
        marker = os.path.join(self.dir, "started")
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(marker):
            self.assertLess(time.monotonic(), deadline, "the task never started")
            time.sleep(0.01)
        os.killpg(w.proc.pid, signal.SIGINT)  # as weft forwards Ctrl-C
        self.assertEqual(w.wait(), 130)
        self.assertEqual(w.readline(), b"")  # no reply at all
        self.assertNotIn("Traceback", w.stderr())  # quietly

    def test_sigint_between_items_exits_130(self):
        w = self.started(ADD_ONE)
        self.assertEqual(w.item(), b"ok 1")
        os.killpg(w.proc.pid, signal.SIGINT)
        self.assertEqual(w.wait(), 130)

    def test_load_error_of_a_file_under_m_fails_hello(self):
        self.script("import no_such_module_here\n", name="broken.py", run=False)
        w = Worker(self.dir, ["-m", "weft_worker", "broken.py"])
        self.workers.append(w)
        reply = w.hello()
        self.assertTrue(reply.startswith("fail cannot load broken.py: ModuleNotFoundError"), reply)


class Streams(WorkerTest):
    def test_print_and_fd_1_go_to_stderr_not_the_protocol(self):
        w = self.started("""
            import os, sys

            @weft_worker.task
            def process(item):
                print("printed by the task")
                sys.stdout.write("partial line, no newline")
                os.write(1, b"written to fd 1\\n")  # what a C library does
                return "value"
            """)
        self.assertEqual(w.item(), b'ok "value"')
        self.assertEqual(w.close(), 0)
        self.assertEqual(w.readline(), b"")
        err = w.stderr()
        for text in ("printed by the task", "partial line, no newline", "written to fd 1"):
            self.assertIn(text, err)

    def test_top_level_print_under_weft_goes_to_stderr(self):
        # weft sets WEFT_WORKER: importing the helper takes the streams at once.
        w = self.start('print("hello from the top level")\n' + ADD_ONE,
                       env={"WEFT_WORKER": "1.0"})
        self.assertEqual(w.hello(), "ready")
        self.assertIn("hello from the top level", w.stderr())

    def test_input_gets_eof(self):
        w = self.started("""
            @weft_worker.task
            def process(item):
                try:
                    input()
                except EOFError:
                    return "eof"
                return "read something"
            """)
        w.send('item {"index":0,"number":0,"seed":0}')
        self.assertEqual(w.readline(), b'ok "eof"')

    def test_children_do_not_inherit_the_protocol_pipes(self):
        w = self.started("""
            import subprocess

            @weft_worker.task
            def process(item):
                # a child that prints and reads: stdout lands on stderr, stdin is empty
                return subprocess.run(["sh", "-c", "echo from-child; cat"], check=True).returncode
            """)
        self.assertEqual(w.item(), b"ok 0")
        self.assertEqual(w.close(), 0)
        self.assertIn("from-child", w.stderr())


class Values(WorkerTest):
    def test_surrogateescape_round_trip(self):
        w = self.started("""
            @weft_worker.task
            def process(item):
                return {"bytes": list(item.bytes), "text": item.text}
            """)
        # b"caf\\xe9.txt" is Latin-1, not UTF-8: weft sends \\udce9
        v = w.value(text="caf\udce9.txt")
        self.assertEqual(bytes(v["bytes"]), b"caf\xe9.txt")
        self.assertEqual(v["text"], "caf\ufffd.txt")  # valid UTF-8 on the way back

    def test_range_item_has_no_text(self):
        w = self.started("""
            @weft_worker.task
            def process(item):
                return [item.index, item.number, item.text, item.bytes, item.seed]
            """)
        self.assertEqual(w.value(index=3, number=13, seed=2**64 - 1), [3, 13, None, None, 2**64 - 1])

    def test_non_finite_floats_become_null(self):
        w = self.started("""
            @weft_worker.task
            def process(item):
                return [float("nan"), {"x": float("inf")}, (1.5, -float("inf"))]
            """)
        self.assertEqual(w.item(), b'ok [null,{"x":null},[1.5,null]]')

    def test_common_types(self):
        w = self.started("""
            import pathlib

            @weft_worker.task
            def process(item):
                return {"path": pathlib.Path("a/b.png"), "tuple": (1, 2), "set": {3, 1, 2},
                        "none": None, "big": 2**70, "unicode": "h\\u00e9\\u4e16"}
            """)
        reply = w.item()
        self.assertEqual(json.loads(reply[3:].decode("utf-8")),
                         {"path": "a/b.png", "tuple": [1, 2], "set": [1, 2, 3], "none": None,
                          "big": 2**70, "unicode": "h\u00e9\u4e16"})
        self.assertIn("h\u00e9\u4e16".encode("utf-8"), reply)  # raw UTF-8, not \\u escapes

    def test_none_and_circular(self):
        w = self.started("""
            @weft_worker.task
            def process(item):
                if item.index == 0:
                    return None
                loop = []
                loop.append(loop)
                return loop
            """)
        self.assertIn(w.item(index=0), (b"ok", b"ok null"))
        self.assertTrue(w.item(index=1).startswith(b"fail "))
        self.assertEqual(w.close(), 0)

    @unittest.skipUnless(HAVE_NUMPY, "numpy is not installed")
    def test_numpy_scalars_and_arrays(self):
        w = self.started("""
            import numpy as np

            @weft_worker.task
            def process(item):
                return {"i": np.int64(7), "f": np.float32(0.5), "b": np.bool_(True),
                        "a": np.arange(4, dtype=np.uint8).reshape(2, 2),
                        "nan": np.array([1.0, np.nan]), "s": np.float64("inf")}
            """)
        self.assertEqual(w.value(), {"i": 7, "f": 0.5, "b": True, "a": [[0, 1], [2, 3]],
                                     "nan": [1.0, None], "s": None})

    @unittest.skipUnless(HAVE_NUMPY, "numpy is not installed")
    def test_rng_is_numpy_seeded_by_the_item_seed(self):
        w = self.started("""
            @weft_worker.task
            def process(item):
                return [type(item.rng()).__name__, item.rng().integers(0, 2**32, 4).tolist()]
            """)
        import numpy as np
        want = np.random.default_rng(12345).integers(0, 2**32, 4).tolist()
        self.assertEqual(w.value(seed=12345), ["Generator", want])
        self.assertNotEqual(w.value(seed=12346)[1], want)

    def test_rng_without_numpy_is_random_random(self):
        # numpy hidden by a module that refuses to import
        with open(os.path.join(self.dir, "numpy.py"), "w") as f:
            f.write("raise ImportError('hidden for the test')\n")
        w = self.started("""
            import random

            @weft_worker.task
            def process(item):
                r = item.rng()
                return [type(r).__name__, r.random()]
            """)
        self.assertEqual(w.value(seed=99), ["Random", random.Random(99).random()])


class ModuleMain(WorkerTest):
    BODY = """
        @weft_worker.task
        def process(item):
            return "task"

        def other(item, k: int = 0):
            return ["other", k]
        """

    def test_m_runs_the_files_task(self):
        self.script(self.BODY, name="tasks.py", run=False)
        w = Worker(self.dir, ["-m", "weft_worker", "tasks.py"])
        self.workers.append(w)
        self.assertEqual(w.hello(), "ready")
        self.assertEqual(w.value(), "task")
        self.assertEqual(w.close(), 0)

    def test_m_file_func_runs_that_function_with_its_arguments(self):
        self.script(self.BODY, name="tasks.py", run=False)
        w = Worker(self.dir, ["-m", "weft_worker", "tasks.py:other"])
        self.workers.append(w)
        self.assertEqual(w.hello({"k": "5"}), "ready")
        self.assertEqual(w.value(), ["other", 5])

    def test_m_unknown_func(self):
        self.script(self.BODY, name="tasks.py", run=False)
        w = Worker(self.dir, ["-m", "weft_worker", "tasks.py:nope"])
        self.workers.append(w)
        reply = w.hello()
        self.assertTrue(reply.startswith("fail ") and "nope" in reply, reply)


class AtomicOutput(WorkerTest):
    BODY = """
        import os

        @weft_worker.task
        def process(item):
            final = os.path.join("out", f"f{item.index}.txt")
            with weft_worker.atomic_output(final) as tmp:
                assert os.path.dirname(tmp) == "out" and tmp.endswith(".txt"), tmp
                with open(tmp, "w") as f:
                    f.write("data")
                assert not os.path.exists(final)  # not visible before the block ends
                if item.index == 1:
                    raise OSError("disk full")
            return sorted(os.listdir("out"))
        """

    def test_success_renames_failure_removes(self):
        os.mkdir(os.path.join(self.dir, "out"))
        w = self.started(self.BODY)
        self.assertEqual(w.value(index=0), ["f0.txt"])
        self.assertEqual(w.item(index=1), b"fail OSError: disk full")
        self.assertEqual(sorted(os.listdir(os.path.join(self.dir, "out"))), ["f0.txt"])
        with open(os.path.join(self.dir, "out", "f0.txt")) as f:
            self.assertEqual(f.read(), "data")

    def test_in_process_path_type_and_name(self):
        sys.path.insert(0, HELPER_DIR)
        try:
            import pathlib
            import weft_worker
            target = pathlib.Path(self.dir) / "a.png"
            with weft_worker.atomic_output(target) as tmp:
                self.assertIsInstance(tmp, pathlib.Path)
                self.assertEqual(tmp.parent, target.parent)
                self.assertRegex(tmp.name, r"^\.a\.tmp-%d-\d+\.png$" % os.getpid())
                tmp.write_bytes(b"x")
            self.assertEqual(target.read_bytes(), b"x")
            self.assertEqual(os.listdir(self.dir), ["a.png"])
        finally:
            sys.path.remove(HELPER_DIR)


if __name__ == "__main__":
    unittest.main(verbosity=2)
