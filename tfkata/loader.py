"""One way for a test to get the module it grades: ``cnn = load_kata("k04_cnn_mnist")``.

The target is ``katas`` (what the learner edits) or ``solutions``: the pytest plugin resolves it once
per run (``--solutions`` / ``TFKATA_TARGET``) and sets it here with :func:`set_target`; outside pytest
it is read from ``TFKATA_TARGET`` once. The module is imported on first use, so a kata file with a
syntax error fails its own tests with a clear message instead of stopping the whole run at collection.
Seeding lives here too (:func:`seed_everything`, :func:`fresh_graph`).
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import random
import sys
from pathlib import Path

from tfkata import graphgrowth, registry, returned, rigged, untouched
from tfkata.paths import reference_file, repo_root
from tfkata.tfsetup import SEED, import_tensorflow

TARGETS = ("katas", "solutions")


class KataImportError(ImportError):
    pass


_target: list[str] = []


def set_target(value: str) -> None:
    """Set the run's target (the plugin does, once per run)."""
    if value not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {value!r}")
    _target[:] = [value]


def target_from_env() -> str:
    """``TFKATA_TARGET`` (default katas); a bad value is one clear error."""
    value = os.environ.get("TFKATA_TARGET", "katas").strip() or "katas"
    if value not in TARGETS:
        raise ValueError(f"TFKATA_TARGET must be 'katas' or 'solutions', got {value!r}: unset it or fix the value")
    return value


def target() -> str:
    """The run's target; outside pytest, ``TFKATA_TARGET`` (default katas), read once."""
    if not _target:
        _target.append(target_from_env())
    return _target[0]


def ensure_on_path(root: Path) -> None:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


class _LazyKata:
    """Stands for ``<target>.<module>`` and imports it on first attribute access. Its plain functions come
    guarded (:mod:`tfkata.untouched`): one that changes an array or list it was given fails the test, and so
    does one that returns an object equal to anything (:mod:`tfkata.rigged`), or None where its reference
    always returns a value (:mod:`tfkata.returned`); a TF 1 kata's function that builds new ops between its
    Session.run calls, again and again, fails too (:mod:`tfkata.graphgrowth`)."""

    def __init__(self, kata: registry.Kata):
        self.__dict__["_kata"] = kata
        self.__dict__["_module"] = None
        self.__dict__["_guarded"] = {}  # name -> (function, the function guarded)

    def _load(self):
        if self._module is None:
            import_tensorflow()  # quietly, with the environment set, before the kata imports it
            name = f"{target()}.{self._kata.module}"
            ensure_on_path(repo_root())
            try:
                module = importlib.import_module(name)
            except Exception as exc:
                raise KataImportError(_import_problem(exc, self._kata)) from exc
            self.__dict__["_module"] = module
        return self._module

    def __getattr__(self, name):
        if name.startswith("_"):  # pytest probes module attributes at collection: do not import for that
            raise AttributeError(name)
        if _uses is not None:
            _uses.add((self._kata.id, name))
        module = self._load()
        value = getattr(module, name)
        if not inspect.isfunction(value) or value.__module__ != module.__name__:
            return value  # a class, or a function the kata imported (TensorFlow's, another kata's): as it is
        seen = self._guarded.get(name)
        if seen is None or seen[0] is not value:  # a function replaced (monkeypatched, blocked) is guarded anew
            around = graphgrowth.watching if self._kata.track == "then" else None  # TF 1: no graph grown in a loop
            seen = self._guarded[name] = (value, untouched.guarded(value, after=self._after, around=around))
        return seen[1]

    def _after(self, name: str, result) -> None:
        """What every guarded call's result is checked for."""
        rigged.check(name, result)
        returned.check(name, result, reference_file(self._kata.module))

    def __setattr__(self, name, value):
        raise AttributeError("kata modules are read-only in tests")

    def __repr__(self) -> str:
        return f"<kata {target()}.{self._kata.module} (lazy)>"


def _import_problem(exc: Exception, kata: registry.Kata) -> str:
    """One sentence naming the file that really failed (k08 importing a broken k07 names k07)."""
    import traceback

    root = repo_root() / target()
    culprit, line = None, getattr(exc, "lineno", None)
    filename = getattr(exc, "filename", None)
    if isinstance(exc, SyntaxError) and filename:
        culprit = Path(filename)
    else:
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            path = Path(frame.f_code.co_filename)
            if root in path.resolve().parents:
                culprit, line = path, lineno
    culprit_kata = registry.for_source_file(culprit) if culprit else None
    where = f"{target()}/{culprit.name}" if culprit and culprit_kata else f"{target()}/{kata.module}.py"
    at = f" (line {line})" if line else ""
    text = f"{where} cannot be imported{at}: {type(exc).__name__}: {exc}."
    if culprit_kata is not None and culprit_kata.id != kata.id:
        return f"{text} {kata.id} imports your {culprit_kata.id}: fix {culprit_kata.path(target())} first."
    return f"{text} Fix that first; every test of this kata needs it."


class Blocked(BaseException):
    """A function that did not return in an earlier test of this run, called again: the test waits. Not an
    Exception, so that neither a learner's nor a test's ``except Exception`` (a test checking what a function
    raises) takes it for the function's own error."""


_blocked: dict[tuple[str, str], str] = {}


def block(kata_id: str, function: str, reason: str) -> None:
    """Stop calling ``function`` (``name`` or ``Class.method``) of the run's module for ``kata_id``: it
    did not return in an earlier test. Calls from tests and from the kata's own code raise
    :class:`Blocked` with ``reason``; tests that cover it wait (the plugin asks :func:`blocked`)."""
    _blocked[(kata_id, function)] = reason
    module = sys.modules.get(f"{target()}.{registry.get(kata_id).module}")
    if module is None:
        return
    owner, name = module, function
    if "." in function:
        cls_name, name = function.split(".", 1)
        owner = getattr(module, cls_name, None)
    if owner is None or not callable(getattr(owner, name, None)):
        return

    def refuse(*args, **kwargs):
        raise Blocked(reason)

    setattr(owner, name, refuse)


def blocked(kata_id: str, function: str) -> str | None:
    """Why ``function`` is not called again in this run, or None."""
    return _blocked.get((kata_id, function)) or _blocked.get((kata_id, function.split(".")[0]))


_uses: set | None = None


def record_uses() -> None:
    """From now on, note every kata function a test reads from a :func:`load_kata` module."""
    global _uses
    _uses = set()


def uses(kata_id: str) -> list[str]:
    """The functions of ``kata_id`` read since :func:`record_uses` (what a test called or built on)."""
    return sorted(name for kid, name in (_uses or ()) if kid == kata_id)


def load_kata(key: str) -> _LazyKata:
    """The module under test for a kata id, alias or module name, from the current target."""
    return _LazyKata(registry.get(key))


def seed_everything(seed: int = SEED, *, keras: bool = False) -> None:
    """numpy, ``random`` and TensorFlow seeds (the graph-level seed of the default graph when one is
    active, else the global eager seed); ``keras=True`` also seeds Keras 3's own generator."""
    tf = import_tensorflow()
    import numpy as np

    np.random.seed(seed)
    random.seed(seed)
    tf.compat.v1.set_random_seed(seed)
    if keras:
        import keras as keras_module

        keras_module.utils.set_random_seed(seed)


@contextlib.contextmanager
def fresh_graph(seed: int = SEED):
    """A new default ``tf.Graph`` with graph-level, numpy and random seeds fixed.

    Every graded kNN test runs inside one (the plugin's autouse fixture); a module-scoped fixture that
    trains a model once for several tests uses it directly.
    """
    tf = import_tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        seed_everything(seed)
        yield graph
