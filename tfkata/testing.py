"""Small helpers the graded tests share: float32-tolerant comparisons that say where two arrays differ
(instead of an array dump), and the few MNIST slices several katas' tests use."""
from __future__ import annotations

import contextlib

import numpy as np


def where_max(diff) -> str:
    """``'max |diff| D at (i, j)'`` for an array of absolute differences."""
    diff = np.asarray(diff)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return f"max |diff| {float(diff[index]):.3g} at {tuple(int(i) for i in index)}"


def mismatch(got, expected, atol: float = 1e-6, rtol: float = 1e-5) -> str | None:
    """None if ``got`` matches ``expected`` within float32 tolerances, else one line saying where they
    differ most: ``'max |diff| D at index I (got G, expected E; N of M differ)'``."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return f"shape {got.shape} instead of {expected.shape}"
    diff = np.abs(got - expected)
    bad = diff > atol + rtol * np.abs(expected)
    nan_got, nan_expected = np.isnan(got), np.isnan(expected)
    bad |= nan_got != nan_expected  # NaN matches only NaN (a NaN compares as "not greater" otherwise)
    diff = np.where(nan_got != nan_expected, np.inf, np.nan_to_num(diff))
    if not bad.any():
        return None
    where = np.unravel_index(int(np.argmax(np.where(bad, diff, -1))), diff.shape)
    return (
        f"max |diff| {float(diff[where]):.3g} at index {tuple(int(i) for i in where)} "
        f"(got {float(got[where]):.6g}, expected {float(expected[where]):.6g}; {int(bad.sum())} of {bad.size} differ)"
    )


def mnist_flat(n_train: int, n_test: int):
    """(x_train [n_train, 784] float32 in [0, 1], y_train int64, x_test [n_test, 784], y_test)."""
    from tfkata.data.mnist import load_mnist

    mnist = load_mnist()

    def flat(a):
        return (a.reshape(len(a), -1) / 255.0).astype(np.float32)

    return (flat(mnist["x_train"][:n_train]), mnist["y_train"][:n_train].astype(np.int64),
            flat(mnist["x_test"][:n_test]), mnist["y_test"][:n_test].astype(np.int64))


def mnist_images(n: int):
    """The first n training digits as uint8 [n, 28, 28, 1] (what a Dataset pipeline takes)."""
    from tfkata.data.mnist import load_mnist

    return np.ascontiguousarray(load_mnist()["x_train"][:n, :, :, None])


# --------------------------------------------------------------------------- beam search on hand-made tables
# Tokens 0 (EOS), 1, 2, 3. Greedy takes 1 (0.40), then EOS: 0.136. The best sequence is 3 EOS: 0.25;
# width 2 drops 3 at the first step and ends with (1, 0), (2, 0); width 3 keeps it.
BEAM_TRAP = {
    (): {1: 0.40, 2: 0.35, 3: 0.25},
    (1,): {0: 0.34, 1: 0.26, 2: 0.20, 3: 0.20},
    (2,): {0: 0.34, 1: 0.26, 2: 0.20, 3: 0.20},
    (3,): {0: 1.0},
}
UNIFORM_4 = {0: 0.25, 1: 0.25, 2: 0.25, 3: 0.25}


def table_model(table: dict, default: dict, calls: list | None = None):
    """A ``next_log_probs(prefixes) -> [N, 4] log-probabilities`` from a dict prefix -> {token: prob}
    (unknown prefixes get ``default``); the prefixes asked for are appended to ``calls``."""

    def next_log_probs(prefixes):
        if calls is not None:
            calls.extend(tuple(p) for p in prefixes)
        rows = []
        for p in prefixes:
            probs = np.full(4, 1e-12)
            for tok, pr in table.get(tuple(p), default).items():
                probs[tok] = pr
            rows.append(np.log(probs / probs.sum()))
        return np.array(rows)

    return next_log_probs


def greedy(next_log_probs, max_steps: int) -> tuple:
    """The greedy sequence of a ``next_log_probs`` model, stopping at EOS (0)."""
    seq = ()
    for _ in range(max_steps):
        seq += (int(np.argmax(next_log_probs([seq])[0])),)
        if seq[-1] == 0:
            break
    return seq


def beam_order_problem(results) -> str | None:
    """What is wrong with the order of beam_search's ``[(tokens, score)]`` (best first by the summed score), or
    None: ranked by score per token (a length normalisation) is told so."""
    scores = [float(s) for _, s in results]
    if scores == sorted(scores, reverse=True):
        return None
    per_token = [float(s) / max(len(t), 1) for t, s in results]
    if per_token == sorted(per_token, reverse=True):
        return (f"beam_search: the results are ranked by score per token (score / length: a length normalisation), "
                f"got scores {scores} for lengths {[len(t) for t, _ in results]}: rank them by the summed "
                "log-probability itself, best first")
    return f"beam_search: results must be sorted best first, got scores {scores}"


def beam_eos_problem(beam_search) -> str | None:
    """What is wrong with ``beam_search``'s use of its ``eos`` argument, or None. With eos=2, 2 ends a hypothesis
    and 0 is an ordinary token: width 2 keeps (0,) and (2,), then (0, 0) over (0, 2), and (0, 0, 2) p=0.35 beats
    (2,) p=0.3 (k08's and n08's beam_search take the same argument)."""
    table = {(): {0: 0.5, 2: 0.3, 1: 0.2}, (0,): {0: 0.7, 2: 0.3}, (0, 0): {2: 1.0}}
    calls = []
    got = beam_search(table_model(table, {2: 0.7, 3: 0.3}, calls), beam_width=2, max_steps=4, eos=2)
    shown = [(tuple(int(t) for t in tokens), round(float(np.exp(score)), 3)) for tokens, score in got]
    extended = sorted({tuple(p) for p in calls if p and p[-1] == 2})
    if not extended and [t for t, _ in shown] == [(0, 0, 2), (2,)]:
        return None
    ends_at_2 = all(2 not in t[:-1] for t, _ in shown)  # no hypothesis runs on past a 2
    ended_at_0 = any(t[-1:] == (0,) for t, _ in shown if len(t) < 3)  # (0,) or (0, 0) treated as finished
    if not extended and ends_at_2 and not ended_at_0 and any(t == (2,) for t, _ in shown):  # the beam is off
        return (f"beam_search(..., eos=2, beam_width=2): expected [(0, 0, 2) p=0.35, (2,) p=0.3], got {shown}: a "
                "finished hypothesis stays in the beam, taking one of its beam_width places and competing with the "
                "expansions of the unfinished ones (set aside in a list of its own, it no longer competes)")
    if not extended and ends_at_2 and not ended_at_0 and (0, 2) in dict(shown) and (2,) not in dict(shown):
        return (f"beam_search(..., eos=2, beam_width=2): expected [(0, 0, 2) p=0.35, (2,) p=0.3], got {shown}: every "
                "hypothesis ends at eos=2 as it should, but (0, 2) p=0.15 was kept over (2,) p=0.3: a hypothesis' "
                "score is the SUM of its log-probabilities, never divided by its length, and a finished one stays a "
                "candidate")
    return (f"beam_search(..., eos=2) must end hypotheses at 2, the argument, not at the module's EOS 0 (an ordinary "
            f"token here): expected [(0, 0, 2) p=0.35, (2,) p=0.3], got {shown}"
            + (f"; it asked next_log_probs to extend {extended}, which already ended with eos" if extended else ""))


def beam_stop_problem(beam_search) -> str | None:
    """What is wrong with when ``beam_search`` stops, or None. Width 2: after one step the best, (0,) = EOS with
    p=0.5, is finished but (1,) p=0.3 is not; the search must go on until every kept hypothesis is finished:
    (1, 0) p=0.27 then takes the second place (k08's and n08's beam_search stop the same way)."""
    table = {(): {0: 0.5, 1: 0.3, 2: 0.2}, (1,): {0: 0.9, 3: 0.1}, (2,): {0: 0.5, 3: 0.5}}
    got = beam_search(table_model(table, {0: 1.0}), beam_width=2, max_steps=5)
    shown = [(tuple(int(t) for t in tokens), round(float(np.exp(score)), 3)) for tokens, score in got]
    if [t for t, _ in shown] == [(0,), (1, 0)]:
        return None
    unfinished = [t for t, _ in shown if not t or t[-1] != 0]
    return (f"beam_search(beam_width=2): expected [(0,) p=0.5, (1, 0) p=0.27], got {shown}"
            + (f": it stopped with {unfinished} unfinished: go on until EVERY kept hypothesis is finished (or "
               "max_steps), not only the best" if unfinished and len(shown[0][0]) == 1 else ""))


def printed_examples(printed: str, x, len_x) -> int:
    """How many of the evaluation inputs ``x`` (int [N, T], lengths ``len_x``) ``printed`` shows, whatever the
    layout (the tutorial's 2-D blocks, one line per example, lists or arrays): input i counts when some printed
    line's integers start with ``x[i, :len_x[i]]``. (Targets hold no odd number and every input does, so a target
    or prediction line never counts as an input.)"""
    import re

    lines = [tuple(int(v) for v in re.findall(r"-?\d+", line)) for line in printed.splitlines()]
    rows = [tuple(int(v) for v in np.asarray(x)[i, : int(n)]) for i, n in enumerate(np.asarray(len_x))]
    return sum(any(line[: len(row)] == row for line in lines) for row in rows)


def mask_off_by_one(xent, lengths) -> list[tuple[float, str]]:
    """(loss, what went wrong) for a masked mean cross entropy whose mask is one step short or one too long
    (``tf.sequence_mask(lengths - 1, T)`` / ``lengths + 1``): k07's and n07's masked_loss tests name it."""
    xent, lengths = np.asarray(xent), np.asarray(lengths)
    out = []
    for shift, what in ((-1, "one short: each sequence's last valid step (its EOS) is left out"),
                        (1, "one too long: a padding step after each sequence counts")):
        mask = np.arange(xent.shape[1])[None, :] < (lengths + shift)[:, None]
        if mask.sum():
            out.append(((xent * mask).sum() / mask.sum(),
                        f"the mask is {what}: tf.sequence_mask(lengths, T) covers steps 0 .. length - 1, the last "
                        "valid step included"))
    return out


def must_raise(call, error: type, message: str) -> None:
    """``call()`` must raise ``error``; otherwise fail the test with ``message`` (pytest.raises would say only
    "DID NOT RAISE")."""
    import pytest

    try:
        call()
    except error:
        return
    pytest.fail(message, pytrace=False)


def dataset_stages(dataset) -> list[str]:
    """The names of a tf.data pipeline's stages, LAST first (PrefetchDataset -> 'Prefetch'; a parallel map
    reads 'Map'), by following each stage's input."""
    names = []
    while dataset is not None and len(names) < 20:
        names.append(type(dataset).__name__.lstrip("_").replace("Dataset", "").replace("ParallelMap", "Map"))
        dataset = getattr(dataset, "_input_dataset", None)
    return names


def check_optimizer_used(optimizer, steps: int) -> None:
    """n05's and n07's make_train_step: after ``steps`` steps the optimizer the test passed in has applied ``steps``
    updates (``optimizer.iterations``, Keras 2 and 3 alike), so the step did not make an optimizer of its own."""
    used = int(np.asarray(optimizer.iterations))
    assert used == steps, (
        f"make_train_step: after {steps} step(s) the optimizer it was given has applied {used} updates: apply the "
        "gradients with that optimizer, optimizer.apply_gradients(...) (the argument, made once by the caller), not "
        "one made inside make_train_step"
    )


def check_reported_loss(result: dict) -> None:
    """k07's and n07's train: the returned 'loss' is the mean of the last 100 losses (the figure train prints),
    not another slice of ``result['losses']``."""
    losses = np.asarray(result["losses"], np.float64)
    want = float(np.mean(losses[-100:]))
    got = result.get("loss")
    assert got is not None and abs(float(got) - want) <= 1e-4 * max(1.0, abs(want)), (
        f"train: 'loss' should be the mean of the last 100 steps' losses, {want:.4f}, got {got}"
        + (": that is the mean of the FIRST 100; take losses[-100:]" if got is not None
           and abs(float(got) - float(np.mean(losses[:100]))) <= 1e-6 * max(1.0, abs(want)) else "")
    )


def plot_problem(images: list, source, output) -> str | None:
    """What is wrong with a heatmap drawn by ``plot_attention(source, output, alignments [T_out, T_src], ...)``,
    given the images its ``imshow`` calls made (see :func:`recording_imshow`), or None: ONE image of
    ``[T_out, T_src]`` (rows = output steps) on axes whose x ticks are the source tokens."""
    if len(images) != 1:
        return f"draw the weights with ONE ax.imshow(alignments, ...), got {len(images)} images"
    shape = tuple(np.shape(images[0].get_array()))
    want = (len(output), len(source))
    if shape != want:
        return (f"the image is {list(shape)}, the alignments are [T_out, T_src] = {list(want)}"
                + (": it is drawn transposed; draw alignments as given (rows = output steps, columns = source tokens)"
                   if shape == want[::-1] else ""))
    ticks = [t.get_text() for t in images[0].axes.get_xticklabels()]
    source_text = [str(int(s)) for s in source]
    if ticks != source_text:
        return (f"the x axis is labelled {ticks}, it should be the source tokens {source_text} (the y axis the "
                "output tokens): set_xticks(range(len(source))) with the source as labels")
    return None


@contextlib.contextmanager
def recording_imshow():
    """Patch matplotlib's ``Axes.imshow`` to record every image drawn: ``with recording_imshow() as images: ...``."""
    import pytest
    from matplotlib.axes import Axes

    images = []
    real = Axes.imshow

    def imshow(self, *args, **kwargs):
        images.append(real(self, *args, **kwargs))
        return images[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Axes, "imshow", imshow)
        yield images


def pyplot_figures_left(call):
    """Run ``call()`` and return how many pyplot figures it left open (they are closed here): the katas draw on
    ``matplotlib.figure.Figure`` with the Agg canvas, without pyplot. Returns ``(call's result, count)``."""
    import sys

    before = set(sys.modules["matplotlib.pyplot"].get_fignums()) if "matplotlib.pyplot" in sys.modules else set()
    result = call()
    pyplot = sys.modules.get("matplotlib.pyplot")
    left = sorted(set(pyplot.get_fignums()) - before) if pyplot else []
    for number in left:
        pyplot.close(number)
    return result, len(left)


PYPLOT_LEFT = ("pyplot figure(s) open: draw on matplotlib.figure.Figure(...) with FigureCanvasAgg, as the docstring "
               "says, not plt.figure() (pyplot keeps every figure it made, and on a machine with a display it needs a "
               "window backend)")


@contextlib.contextmanager
def recording_session_runs(feeds: bool = False):
    """Patch ``tf.compat.v1.Session.run`` to record what every run fetched: ``with recording_session_runs() as
    runs: ...`` (each entry the ``fetches`` argument as given; with ``feeds``, the pair ``(fetches, feed_dict)``,
    the feed a dict, empty when none was given)."""
    import pytest
    from tensorflow.python.client import session as session_lib

    runs = []
    real = session_lib.BaseSession.run

    def run(self, *args, **kwargs):
        fetches = args[0] if args else kwargs.get("fetches")
        feed = args[1] if len(args) > 1 else kwargs.get("feed_dict")
        runs.append((fetches, dict(feed or {})) if feeds else fetches)
        return real(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(session_lib.BaseSession, "run", run)
        yield runs


@contextlib.contextmanager
def recording_sessions():
    """Record every ``tf.compat.v1`` session created inside: ``with recording_sessions() as opened: ...``; after
    it, ``[s for s in opened if not s._closed]`` are those left open."""
    import pytest
    from tensorflow.python.client import session as session_lib

    opened = []
    real = session_lib.BaseSession.__init__

    def init(self, *args, **kwargs):
        opened.append(self)
        real(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(session_lib.BaseSession, "__init__", init)
        yield opened


def recording_argument(monkeypatch, module, name: str, argument: str) -> list:
    """Replace the function ``module.<name>`` (which the learner's code calls by its global name) with one that
    records the value its parameter ``argument`` gets in each call, defaults applied, then calls the real one.
    Returns the list of values; ``monkeypatch`` undoes it."""
    import inspect

    real, seen = getattr(module, name), []

    def recording(*args, **kwargs):
        bound = inspect.signature(real).bind(*args, **kwargs)
        bound.apply_defaults()
        seen.append(bound.arguments.get(argument))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return seen


@contextlib.contextmanager
def numpy_global_rng_kept(message: str):
    """Fail with ``message`` when the block changes numpy's global random state: a function told to draw from its
    own generator (``np.random.RandomState(seed)``, ``np.random.default_rng(seed)``) must not seed or draw from
    ``np.random``, whose numbers are the caller's."""
    before = np.random.get_state()
    yield
    after = np.random.get_state()
    assert after[2] == before[2] and np.array_equal(after[1], before[1]), message


def logits_read_as_probabilities(onehot, logits, axis: int = -1) -> list:
    """The per-example cross entropies a Keras loss gives when handed logits with ``from_logits=False`` (its
    default): the logits read as probabilities. Two forms, as Keras versions compute them (measured, Keras 2.12
    and 3): normalised by their sum then clipped to [1e-7, 1 - 1e-7] (categorical), or clipped then normalised
    (sparse on Keras 2). ``onehot``: the labels one-hot, shaped like ``logits``."""
    eps = 1e-7
    logits = np.asarray(logits, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.clip(logits / logits.sum(axis, keepdims=True), eps, 1 - eps)
        clipped = np.clip(logits, eps, 1 - eps)
        second = clipped / clipped.sum(axis, keepdims=True)
        return [-(np.asarray(onehot) * np.log(p)).sum(axis) for p in (first, second)]
