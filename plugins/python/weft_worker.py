# SPDX-License-Identifier: MIT
"""Write a weft task in Python: the worker side of weft's worker protocol 1.

weft (``plugin = worker``) starts one long-lived worker process per worker
thread, hands it the job's fixed arguments once, then one item at a time
(docs/worker-protocol.md is the contract).  This module does the talking; you
write one function::

    # tasks.py
    import weft_worker

    @weft_worker.task
    def process(item, size: int = 100, outdir: str = "out"):
        return {"index": item.index, "size": size}

    if __name__ == "__main__":
        weft_worker.run()

and a config::

    [run]
    plugin = worker
    items = 0..2000
    output = results.jsonl

    [args]
    command = python3 -u tasks.py      ; run by /bin/sh -c in the config's folder

    [task]
    size = 200                         ; becomes process(item, size=200, ...)

``python3 -m weft_worker tasks.py`` (or ``tasks.py:FUNC``) runs a file's
@task (or FUNC) without the ``run()`` boilerplate.

The item
    ``item.index`` (0-based position in the input), ``item.number`` (a
    range's number, else the index), ``item.text`` (the item's text, None for
    range items), ``item.bytes`` (the text's original bytes: a file name that
    is not valid UTF-8 round-trips through ``surrogateescape``),
    ``item.seed`` (a 64-bit int) and ``item.rng()``.

Arguments
    Every ``[task]`` value arrives as a string and is converted once, at
    start, to the parameter's annotation (int, float, bool, str,
    pathlib.Path; ``Optional[X]`` counts as X), else to the type of its
    default value, else left a str.  int takes 0x hex too; bool takes true/false, yes/no, on/off,
    1/0 in any case.  A misspelt key, a missing required parameter or a value
    that does not convert stops the run at start with a message saying which.
    ``**kwargs`` accepts any key (as str).  ``weft_worker.context`` holds
    hello's fields: the worker's number, the run seed, the config folder.

Seeds
    ``item.seed`` depends only on the run's seed and the item's index, never
    on the worker or the order items run in.  ``item.rng()`` is
    ``numpy.random.default_rng(item.seed)`` (``random.Random(item.seed)``
    without numpy): draw from it and a re-run or resumed item gets the same
    numbers.

Results
    The return value is the item's value, sent as JSON: numpy scalars and
    arrays, pathlib paths, tuples and sets are converted; NaN and infinities
    become null; strings that cannot be UTF-8 get U+FFFD.  An exception fails
    the item with ``TypeName: message`` (the traceback goes to standard
    error); the worker then takes the next item.

Printing
    Standard output belongs to the protocol, so the worker points file
    descriptor 1 (``print()``, C libraries) at standard error and standard
    input at /dev/null (``input()`` gets EOF).  weft shows each line of
    standard error with the item it came from.

Files
    ``with weft_worker.atomic_output(path) as tmp:`` write ``tmp``; it is
    renamed to ``path`` when the block succeeds and removed when it raises,
    so a killed or failed item never leaves a partial file under the final
    name.  The temporary keeps the extension (``.NAME.tmp-PID-N.EXT``), for
    writers that pick the format from it (cv2.imwrite, numpy.save).

Once per worker
    ``@weft_worker.setup`` registers a function called once, after the
    arguments are known, with those of them it declares (an exception stops
    the run with its message); ``@weft_worker.teardown`` one called with no
    arguments when the input ends.
"""

import codecs
import contextlib
import itertools
import json
import math
import os
import pathlib
import signal
import sys
import threading
import time
import types

__all__ = ["task", "setup", "teardown", "run", "atomic_output", "Item", "context"]

PROTOCOL = 1
_MAX_MESSAGE = 2000  # characters of a fail message; weft shows it on one line

# What the decorators registered (lists, so that two @task can be reported).
_tasks = []
_setups = []
_teardowns = []

# Filled from hello: the worker's number, the run seed, the config's folder
# and the raw [task] strings.
context = types.SimpleNamespace(worker=None, run_seed=None, config_dir=None, args={})


def task(fn):
    """Register ``fn(item, **args)`` as the task: called once per item."""
    _tasks.append(fn)
    return fn


def setup(fn):
    """Register ``fn(**args)``: called once per worker, before the first item."""
    _setups.append(fn)
    return fn


def teardown(fn):
    """Register ``fn()``: called once per worker, when the input ends."""
    _teardowns.append(fn)
    return fn


# --- the item ----------------------------------------------------------------

_numpy_random = None  # numpy.random once imported, False if numpy is missing


class Item:
    """One item: what weft's ``item`` frame carries."""

    __slots__ = ("index", "number", "text", "seed")

    def __init__(self, index, number, text, seed):
        self.index = index
        self.number = number
        self.text = text
        self.seed = seed

    @property
    def bytes(self):
        """The text's original bytes (None for a range item)."""
        t = self.text
        return None if t is None else t.encode("utf-8", "surrogateescape")

    def rng(self):
        """A generator seeded with the item's seed: the same draws on every run."""
        global _numpy_random
        if _numpy_random is None:  # once per process, not per item
            try:
                import numpy.random
                _numpy_random = numpy.random
            except ImportError:
                _numpy_random = False
        if _numpy_random:
            return _numpy_random.default_rng(self.seed)
        import random
        return random.Random(self.seed)

    def __repr__(self):
        return (f"Item(index={self.index!r}, number={self.number!r}, "
                f"text={self.text!r}, seed={self.seed!r})")


# --- files -------------------------------------------------------------------

_tmp_counter = itertools.count()


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The temporary is ``.STEM.tmp-PID-N.EXT`` in the same folder (so the
    rename stays on one file system and is atomic), hidden, and keeps the
    extension for writers that choose the format from it.  On an exception it
    is removed and the exception goes on.  It yields a str, or a
    pathlib.Path when given one.  No fsync: the data is safe from a killed
    worker, not from a power cut.
    """
    final = os.fspath(path)
    folder, name = os.path.split(final)
    if not name:
        raise ValueError(f"atomic_output needs a file name, not {final!r}")
    stem, ext = os.path.splitext(name)
    tmp = os.path.join(folder, f".{stem}.tmp-{os.getpid()}-{next(_tmp_counter)}{ext}")
    try:
        yield pathlib.Path(tmp) if isinstance(path, pathlib.PurePath) else tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- results -----------------------------------------------------------------

def _fffd(err):
    # A lone surrogate (an undecodable byte of an input, usually) cannot be
    # UTF-8: U+FFFD for each, so the reply is always valid UTF-8.  (As
    # bytes: the UTF-8 encoder takes only ASCII replacement text.)
    if isinstance(err, UnicodeEncodeError):
        return b"\xef\xbf\xbd" * (err.end - err.start), err.end
    raise err


codecs.register_error("weft_worker.fffd", _fffd)


def _to_json(obj):
    """json's ``default``: the common non-JSON types, else TypeError."""
    np = sys.modules.get("numpy")  # only if the task imported it
    if np is not None:
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        try:
            return sorted(obj)  # a set's order is not stable across runs
        except TypeError:
            return list(obj)
    raise TypeError(f"value of type {type(obj).__name__} is not JSON serializable")


def _finite(obj):
    """A copy of ``obj`` with NaN and infinities as None (the slow retry path)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int)) or obj is None:  # bool is an int
        return obj
    if isinstance(obj, dict):
        return {(None if isinstance(k, float) and not math.isfinite(k) else k): _finite(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return _finite(_to_json(obj))


_INT64 = 1 << 63
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                           allow_nan=False, default=_to_json).encode


def _ok_frame(value):
    """The reply for a value: ``ok JSON`` (or ``fail`` when it is not JSON)."""
    if value is None:
        return b"ok\n"
    if type(value) is int and -_INT64 <= value < _INT64:  # the cheapest common case
        return b"ok %d\n" % value
    try:
        try:
            text = _encode(value)
        except ValueError as e:
            if "Out of range float" not in str(e):  # a circular reference
                raise
            text = _encode(_finite(value))
    except (TypeError, ValueError, RecursionError) as e:
        return _fail_frame(str(e))
    except Exception as e:  # a conversion that broke: the item fails, not the worker
        return _fail_frame(f"cannot encode the value: {_exception_message(e)}")
    return b"ok " + text.encode("utf-8", "weft_worker.fffd") + b"\n"


def _fail_frame(message):
    message = message.replace("\r", " ").replace("\n", " ")
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE - 3] + "..."
    return b"fail " + message.encode("utf-8", "weft_worker.fffd") + b"\n"


def _exception_message(e):
    try:
        text = str(e)
    except Exception:  # a broken __str__ must not take the worker down
        text = ""
    name = type(e).__name__
    return f"{name}: {text}" if text else name


# --- the protocol streams ----------------------------------------------------

_proto_in = None   # buffered binary reader of weft's frames
_proto_out = None  # buffered binary writer of ours


def _protect_streams():
    """Move the protocol off fds 0 and 1, so nothing else can write to it.

    fd 0 becomes /dev/null and fd 1 a copy of fd 2 (standard error);
    sys.stdin and sys.stdout are rebound to them.  Idempotent.
    """
    global _proto_in, _proto_out
    if _proto_out is not None:
        return
    in_fd = os.dup(0)   # dup's fds are not inherited by the task's children
    out_fd = os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    # Text the old sys.stdout still buffers now goes to standard error; the
    # new one is line buffered so that weft sees each line with its item.
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    enc = getattr(sys.stderr, "encoding", None) or "utf-8"
    sys.stdout = open(1, "w", buffering=1, encoding=enc, errors="backslashreplace",
                      closefd=False)
    sys.stdin = open(0, "r", closefd=False)
    _proto_in = open(in_fd, "rb", buffering=65536)
    _proto_out = open(out_fd, "wb", buffering=65536)


def _send(frame):
    _proto_out.write(frame)
    _proto_out.flush()


def _flush_user_streams():
    # A partial line printed by the item reaches weft before the reply.
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass


# --- arguments ---------------------------------------------------------------

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _to_int(s):
    try:
        return int(s)
    except ValueError:
        # 0x hex too, as weft's own int arguments take it
        if s.strip().lstrip("+-")[:2].lower() == "0x":
            return int(s, 16)
        raise


def _to_bool(s):
    v = s.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError


# type -> (converter, the name messages use)
_CONVERTERS = {
    int: (_to_int, "int"),
    float: (float, "float"),
    bool: (_to_bool, "bool (true/false, yes/no, on/off, 1/0)"),
    str: (str, "str"),
    pathlib.Path: (pathlib.Path, "pathlib.Path"),
}
_BY_NAME = {"int": int, "float": float, "bool": bool, "str": str,
            "Path": pathlib.Path, "pathlib.Path": pathlib.Path}


def _supported(annotation):
    """The type of _CONVERTERS an annotation names, or None."""
    import typing
    if isinstance(annotation, str):  # an unresolved string annotation
        annotation = _BY_NAME.get(annotation.strip(), annotation)
    args = typing.get_args(annotation)
    union = typing.get_origin(annotation)
    if (union is typing.Union or union is getattr(types, "UnionType", typing.Union)) \
            and len(args) == 2 and type(None) in args:
        annotation = args[0] if args[1] is type(None) else args[1]  # Optional[X]
    if isinstance(annotation, type) and issubclass(annotation, pathlib.PurePath):
        return pathlib.Path  # PosixPath, PurePath...: a Path
    return annotation if annotation in _CONVERTERS else None


class _Signature:
    """What a function accepts: precomputed once, used by hello's checks."""

    def __init__(self, fn, takes_item):
        import inspect
        import typing
        self.fn = fn
        name = getattr(fn, "__name__", None) or type(fn).__name__
        sig = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolvable annotations: use them as written
            hints = {}
        params = list(sig.parameters.values())
        positional = (inspect.Parameter.POSITIONAL_ONLY,
                      inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if takes_item:
            if not params or params[0].kind not in positional:
                raise _StartError(f"the task {name}() must take the item as its "
                                  f"first parameter: def {name}(item, ...)")
        self.var_kw = False
        self.params = {}  # name -> (type, default or inspect.Parameter.empty)
        shown = [params[0].name] if takes_item else []
        for p in params[1:] if takes_item else params:
            if p.kind == inspect.Parameter.VAR_KEYWORD:
                self.var_kw = True
                shown.append("**" + p.name)
                continue
            if p.kind == inspect.Parameter.VAR_POSITIONAL:
                shown.append("*" + p.name)
                continue
            if p.kind == inspect.Parameter.POSITIONAL_ONLY:
                if p.default is p.empty:
                    raise _StartError(f"{name}(): parameter '{p.name}' is positional-only, "
                                      f"so [task] cannot set it")
                continue
            t = _supported(hints.get(p.name, p.annotation))
            if t is None and p.default is not p.empty and p.default is not None:
                t = _supported(type(p.default))
            self.params[p.name] = (t or str, p.default)
            shown.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
        text = f"{name}({', '.join(shown)})"
        if len(text) > 200:
            text = text[:195] + ", ...)"
        self.text = text


class _StartError(Exception):
    """The worker cannot start: the message goes to hello as ``fail``."""


def _bind(sigs, raw):
    """Convert hello's args: one kwargs dict per signature, or _StartError."""
    import difflib
    import inspect
    declared = {}  # name -> (type, signature text)
    for s in sigs:
        for name, (t, _) in s.params.items():
            if name in declared and declared[name][0] is not t:
                raise _StartError(
                    f"parameter '{name}' is {_CONVERTERS[declared[name][0]][1]} in "
                    f"{declared[name][1]} but {_CONVERTERS[t][1]} in {s.text}")
            declared.setdefault(name, (t, s.text))
    any_var_kw = any(s.var_kw for s in sigs)
    where = " or ".join(s.text for s in sigs)
    errors, values = [], {}
    for key, text in raw.items():
        if key not in declared:
            if any_var_kw:
                values[key] = text
                continue
            close = difflib.get_close_matches(key, list(declared), n=1)
            hint = (f"did you mean '{close[0]}'?" if close else
                    f"it takes {', '.join(declared)}" if declared else
                    "it takes no arguments")
            errors.append(f"unknown argument '{key}' for {where}; {hint}")
            continue
        t = declared[key][0]
        convert, tname = _CONVERTERS[t]
        try:
            values[key] = convert(text)
        except (TypeError, ValueError):
            errors.append(f"argument '{key}': expected {tname}, got {text!r}")
    kwargs = []
    for s in sigs:
        for name, (_, default) in s.params.items():
            if default is inspect.Parameter.empty and name not in raw:
                errors.append(f"missing argument '{name}' for {s.text}: set it in [task]")
        kwargs.append(dict(values) if s.var_kw else
                      {k: v for k, v in values.items() if k in s.params})
    if errors:
        raise _StartError("; ".join(errors))
    return kwargs


# --- the loop ----------------------------------------------------------------

def _pick(registered, what, hint):
    if len(registered) > 1:
        names = ", ".join(getattr(f, "__name__", repr(f)) for f in registered)
        raise _StartError(f"more than one @{what} function ({names}){hint}")
    return registered[0] if registered else None


def _start(hello_payload, fn, load_error):
    """Answer hello; return the task's kwargs, or exit after ``fail``."""
    try:
        if load_error is not None:
            raise _StartError(load_error)
        try:
            hello = json.loads(hello_payload)
            version = hello["protocol"]
        except (ValueError, TypeError, KeyError):
            raise _StartError(f"weft_worker.py: cannot read hello {hello_payload[:200]!r}")
        if version != PROTOCOL:
            raise _StartError(f"weft_worker.py speaks worker protocol {PROTOCOL}, "
                              f"weft speaks protocol {version}: update one of them")
        raw = hello.get("args") or {}
        context.worker = hello.get("worker")
        context.run_seed = hello.get("run_seed")
        context.config_dir = hello.get("config_dir")
        context.args = dict(raw)
        if fn is None:
            fn = _pick(_tasks, "task", "; pick one: python3 -m weft_worker FILE:FUNC")
        if fn is None:
            raise _StartError("no task: decorate a function with @weft_worker.task "
                              "before calling weft_worker.run()")
        setup_fn = _pick(_setups, "setup", "")
        sigs = [_Signature(fn, True)]
        if setup_fn is not None:
            sigs.append(_Signature(setup_fn, False))
        kwargs = _bind(sigs, raw)
        if setup_fn is not None:
            try:
                setup_fn(**kwargs[1])
            except Exception as e:
                _print_traceback(e)
                raise _StartError(f"setup {sigs[1].text}: {_exception_message(e)}")
        _flush_user_streams()
    except _StartError as e:
        _send(_fail_frame(str(e)))
        _quit(2)
    _send(b"ready\n")
    return fn, kwargs[0]


def _print_traceback(e):
    import traceback
    tb = e.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next  # the user's frames only, not this module's call
    traceback.print_exception(type(e), e, tb, file=sys.stderr)
    _flush_user_streams()


def _quit(status):
    """Leave now: no atexit flushes into a protocol stream that is gone."""
    _flush_user_streams()
    os._exit(status)


def _serve(fn, kwargs):
    """The item loop: read a frame, run the task, write one reply."""
    readline = _proto_in.readline
    write = _proto_out.write
    flush = _proto_out.flush
    loads = json.loads
    flush_user = _flush_user_streams
    while True:
        line = readline()
        if not line.endswith(b"\n"):
            return  # end of input (a partial frame means weft went away)
        verb, _, payload = line.partition(b" ")
        if verb != b"item":
            sys.stderr.write(f"weft_worker: unexpected frame {line[:100]!r} "
                             f"(only 'item' after hello)\n")
            _quit(2)
        try:
            d = loads(payload)
            index = d["index"]
            item = Item(index, d.get("number", index), d.get("text"), d.get("seed", 0))
        except (ValueError, TypeError, KeyError) as e:
            write(_fail_frame(f"weft_worker.py: cannot read item frame ({e})"))
            flush()
            continue
        try:
            value = fn(item, **kwargs)
        except Exception as e:  # KeyboardInterrupt and SystemExit go on
            _print_traceback(e)
            frame = _fail_frame(_exception_message(e))
        else:
            frame = _ok_frame(value)
        flush_user()
        write(frame)
        flush()


def run(fn=None):
    """Serve weft: answer hello, then each item, until the input ends.

    Never returns: exits 0 at the end of the input (after @teardown), 130 on
    Ctrl-C (weft sends SIGINT on to its workers), 2 when it cannot start.
    ``fn`` overrides the @task function.
    """
    _run(fn, None)


def _watch_parent():
    """End this worker when weft dies, even in the middle of a long item.

    weft killed by SIGKILL cannot kill its workers; one waiting for its
    next frame sees the end of its input and exits, but one busy in an item
    would run on under PID 1.  A daemon thread checks every half second
    whether its parent (weft, which started it) is still the same process.
    """
    parent = os.getppid()
    if parent <= 1:
        return  # started by something else (a test, a shell pipeline's end)

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="weft_worker.watch_parent", daemon=True).start()


def _run(fn, load_error):
    _protect_streams()
    if os.environ.get("WEFT_WORKER"):
        _watch_parent()
    # weft forwards Ctrl-C: make sure it can reach us even if a parent left
    # SIGINT ignored or blocked (both survive exec).
    with contextlib.suppress(Exception):
        signal.pthread_sigmask(signal.SIG_UNBLOCK,
                               {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        line = _proto_in.readline()
        if not line:
            _quit(0)  # weft went away before hello
        verb, _, payload = line.rstrip(b"\r\n").partition(b" ")
        if verb != b"hello":
            _send(_fail_frame(f"weft_worker.py: expected hello, got {line[:100]!r}"))
            _quit(2)
        fn, kwargs = _start(payload, fn, load_error)
        _serve(fn, kwargs)
        td = _pick(_teardowns, "teardown", "")
        if td is not None:
            try:
                td()
            except Exception as e:
                _print_traceback(e)
                _quit(1)
    except KeyboardInterrupt:
        _quit(130)  # quietly: weft knows why, and the item is recorded not run
    except BrokenPipeError:
        _quit(1)  # weft is gone
    _quit(0)


def _main(argv):
    """``python3 -m weft_worker FILE.py[:FUNC]``."""
    import importlib.util
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: python3 -m weft_worker FILE.py[:FUNC]\n"
                         "  runs FILE's @weft_worker.task (or FUNC) as a weft worker\n")
        sys.exit(0 if len(argv) == 2 else 2)
    spec_text = argv[1]
    path, func = spec_text, None
    if not os.path.exists(path) and ":" in path:
        path, _, func = spec_text.rpartition(":")
    # Take the protocol streams before the file runs: its top level may print.
    _protect_streams()
    sys.argv = [path]  # what the file would see run as a script
    fn, error = None, None
    try:
        name = os.path.splitext(os.path.basename(path))[0] or "task"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None:
            raise ImportError(f"not a Python file: {path!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # so pickle and dataclasses find it
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        spec.loader.exec_module(module)
        if func is not None:
            fn = getattr(module, func, None)
            if not callable(fn):
                raise _StartError(f"{path} has no function {func!r}")
        elif not _tasks and callable(getattr(module, "process", None)):
            fn = module.process  # a plain def process(item, ...) will do
    except KeyboardInterrupt:
        _quit(130)
    except _StartError as e:
        error = str(e)
    except BaseException as e:  # SystemExit too: report it, do not vanish
        _print_traceback(e)
        error = f"cannot load {path}: {_exception_message(e)}"
    _run(fn, error)


# Under WEFT_WORKER (set by weft) take the streams at import, before the
# script's own top level can print into the protocol.
if os.environ.get("WEFT_WORKER") and __name__ != "__main__":
    _protect_streams()

if __name__ == "__main__":
    # "-m weft_worker": the task file imports weft_worker by name, so hand over
    # to that copy of the module, where its decorators register.
    import weft_worker as _self
    _self._main(sys.argv)
