"""Running a kata as a script: a quiet TensorFlow import and a progress line.

``python katas/k04_cnn_mnist.py --steps 2000`` used to start with ten lines of TensorFlow start-up
noise on stderr (oneDNN, "Could not find cuda drivers", CPU instructions, and at the first session
an ``E0000 ... failed call to cuInit`` that looks like a failure but only means "no GPU") and then
ran for minutes without a sign of life. This module fixes both.

Quiet import: the noise is printed while TensorFlow is *imported* and when the first session starts,
and it can only be turned off before the import (``TF_CPP_MIN_LOG_LEVEL`` is read once, and a few
lines ignore it and must be filtered at the file-descriptor level). So the kata module itself
imports TensorFlow through :func:`quiet_tensorflow` at its top, in place of
``import tensorflow as tf``::

    from tfkata.script import quiet_tensorflow
    tf = quiet_tensorflow()  # import tensorflow as tf, without the start-up noise

Doing it inside the ``if __name__ == "__main__":`` block would be too late: by then the module's
top has already run ``import tensorflow``. Under pytest the harness has imported TensorFlow the same
quiet way already, and ``quiet_tensorflow()`` just returns that module. Set ``TF_CPP_MIN_LOG_LEVEL=0``
yourself to see every line again.

Progress: :class:`Progress` prints ``step 1200/2000 · loss 0.0712 · 1,850 examples/s · 0:26 left`` on
one refreshing line when stderr is a terminal, and plain lines (about ten per run) when it is not
(a log file, CI). Lines printed on stdout meanwhile (the training loop's own log) appear above the
progress line instead of being mixed into it.
"""
from __future__ import annotations

import io
import sys
import time
from typing import Optional, TextIO

from tfkata.tfsetup import import_tensorflow

__all__ = ["quiet_tensorflow", "Progress"]


def quiet_tensorflow():
    """``import tensorflow as tf`` without the start-up noise; returns the module.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless you set it), ``TF_USE_LEGACY_KERAS=1`` when ``tf_keras``
    is installed, filters the few C++ lines printed before logging starts and quiets TensorFlow's
    Python logger and its deprecation warnings (see :mod:`tfkata.tfsetup`). Errors still show.
    It also runs one tiny session while stderr is filtered: TF 2.16-2.19 print two more lines at the
    first session run. If TensorFlow was imported already, returns it as it is.
    """
    return import_tensorflow(warm_up=True)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _LineSafeStdout(io.TextIOBase):
    """A stdout that clears the progress line before other output and redraws it afterwards."""

    def __init__(self, stdout: TextIO, progress: "Progress"):
        self._stdout = stdout
        self._progress = progress

    def write(self, text: str) -> int:
        self._progress._clear()
        n = self._stdout.write(text)
        if text.endswith("\n"):
            self._stdout.flush()
            self._progress._draw()
        return n

    def flush(self) -> None:
        self._stdout.flush()

    def isatty(self) -> bool:
        return self._stdout.isatty()

    def __getattr__(self, name):
        return getattr(self._stdout, name)


class _CountingDataset:
    def __init__(self, dataset, progress: "Progress"):
        self._dataset = dataset
        self._progress = progress

    def next_batch(self, batch_size, *args, **kwargs):
        batch = self._dataset.next_batch(batch_size, *args, **kwargs)
        self._progress.update(self._progress.step + 1, examples=batch_size)
        return batch

    def __getattr__(self, name):
        return getattr(self._dataset, name)


class Progress:
    """A progress report for a training run of ``total_steps`` steps.

    Call :meth:`update` after each step (or every few); use it as a context manager, or call
    :meth:`close` at the end::

        with Progress(2000, every=10) as progress:
            for step in range(1, 2001):
                loss = ...
                progress.update(step, loss=loss, examples=batch_size)

    ``examples``: how many examples this update covers (the batch size when called every step); the
    rate is examples per second since the start. On a terminal the line is redrawn every ``every``
    steps; elsewhere a plain line is printed every ``plain_every`` steps (default: a tenth of the
    run, at least ``every``) and at the last step. ``stream`` defaults to ``sys.stderr``.
    """

    def __init__(
        self,
        total_steps: int,
        every: int = 10,
        *,
        stream: Optional[TextIO] = None,
        plain_every: Optional[int] = None,
        label: str = "step",
    ):
        self.total = max(1, int(total_steps))
        self.every = max(1, int(every))
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.plain_every = max(self.every, int(plain_every) if plain_every else self.total // 10 or 1)
        self.label = label
        self.step = 0
        self.loss: Optional[float] = None
        self.examples = 0
        self.start = time.perf_counter()
        self._shown = ""
        self._saved_stdout: Optional[TextIO] = None
        self._closed = False
        if self.terminal and self.stream is sys.stderr and getattr(sys.stdout, "isatty", lambda: False)():
            self._saved_stdout = sys.stdout
            sys.stdout = _LineSafeStdout(sys.stdout, self)

    # ------------------------------------------------------------------ reporting
    def line(self) -> str:
        """The current report, e.g. ``step 1200/2000 · loss 0.0712 · 1,850 examples/s · 0:26 left``."""
        elapsed = time.perf_counter() - self.start
        parts = [f"{self.label} {self.step}/{self.total}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.examples and elapsed > 0:
            parts.append(f"{self.examples / elapsed:,.0f} examples/s")
        if 0 < self.step < self.total:
            parts.append(f"{_duration(elapsed / self.step * (self.total - self.step))} left")
        elif self.step >= self.total:
            parts.append(f"done in {_duration(elapsed)}")
        return " · ".join(parts)

    def update(self, step: int, loss=None, examples: int = 0) -> None:
        """Record that ``step`` (1-based) is done, with its ``loss`` and the ``examples`` it used."""
        self.step = int(step)
        if loss is not None:
            self.loss = float(loss)
        self.examples += int(examples)
        last = self.step >= self.total
        if self.terminal:
            if last or self.step % self.every == 0:
                self._draw()
        elif last or self.step % self.plain_every == 0:
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def counting(self, dataset):
        """``dataset`` with a ``next_batch`` that reports one step (and its examples) per call.

        For a training loop you do not want to touch: ``train(..., data._replace(train=
        progress.counting(data.train)))`` shows the progress of a loop that draws one batch a step.
        Every other attribute is the dataset's own.
        """
        return _CountingDataset(dataset, self)

    def close(self) -> None:
        """End the refreshing line (a newline) and give stdout back."""
        if self._closed:
            return
        self._closed = True
        if self._saved_stdout is not None:
            sys.stdout = self._saved_stdout
            self._saved_stdout = None
        if self.terminal and self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = ""

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ terminal drawing
    def _draw(self) -> None:
        if self._closed:
            return
        self._shown = self.line()
        self.stream.write("\r\033[K" + self._shown)
        self.stream.flush()

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = ""
