"""Read a training curve and say, in one sentence, what it looks like and which causes fit it.

A training test that only says "validation accuracy after 600 steps is 0.8586, expected >= 0.97"
leaves the learner guessing. :func:`explain_curve` looks at the recorded training losses (and, when
given, the final training and validation metric) and names the shape of the curve:

* NaN / inf, or a loss that explodes: learning rate too high or an unstable loss
  (``log(softmax)`` written by hand instead of ``softmax_cross_entropy_with_logits``);
* huge at the start (then possibly stuck at ``ln(n_classes)``): learning rate far too high, or
  weights initialised far too large;
* flat at ``ln(n_classes)`` (at least over the second half): the model predicts a uniform
  distribution (dead logits: a ReLU on the output layer; weights initialised to zero or far too
  small; no gradient reaching the weights);
* flat elsewhere: the weights are not being updated;
* rising: learning rate too high, or the optimiser maximises the loss;
* training metric fine but validation poor: dropout or preprocessing differ between training and
  evaluation;
* still falling steeply at the end: learning too slowly (learning rate, initialisation scale);
* fell and stopped far above a working model's loss (with ``n_classes``): stopped learning early;
* a training loss near 0 with a poor validation figure: a label leak (the answer among the inputs);
* ended well above the reference's final loss on the same budget (``reference_loss``): too slow
  (measured: k07 and k08 at Adam 1e-3 instead of 3e-3 level off 4x and 13x above the reference, and the
  shape alone reads "healthy");
* fell and levelled off: a healthy curve (the sentence says so, so nobody hunts a training bug).

The thresholds were checked on real k04 runs with one mistake each (their curves are fixed data in
tests/harness/test_curves.py): a ReLU on the logits and weights of stddev 0.01 both sit at ln(10);
learning rate 0.5 starts at 2.4e5 and then sits at ln(10); learning rate 1e-5 is still falling from
10.2 to 4.7 after 200 steps; evaluate with dropout on gives validation 0.77 against training 0.96.

The API is shared by the training tests of k04, k05, k07 and k08; keep it as it is::

    explain_curve(losses, *, n_classes=None, train_metric=None, valid_metric=None, picture=None,
                  reference_loss=None, suspects=None) -> str

No TensorFlow here: it is plain arithmetic on a list of floats, tested in tests/harness/test_curves.py.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Optional, Sequence, Union

__all__ = ["explain_curve", "KINDS"]

Number = Union[int, float]

# How close to ln(n_classes) a loss must stay to count as "the uniform distribution's loss".
_UNIFORM_REL = 0.05
# A loss whose smoothed start and end differ by less than this fraction of its size "does not move".
_FLAT_REL = 0.02
# Late slope / average slope above this: the curve is still falling steeply at the end.
_STEEP_RATIO = 0.5
# ... or above this while the loss is still high (above _HIGH * ln(n_classes)).
_STEEP_RATIO_HIGH = 0.3
_HIGH = 0.5
# A finite loss this many times its start (or above _HUGE) has exploded.
_EXPLODE_FACTOR = 10.0
_HUGE = 1e4
# Training metric above validation metric by more than this: they are measured differently.
_GAP = 0.05
# A label leak: the loss ends below this and below this fraction of its start, validation below this.
_LEAK_LOSS = 0.05
_LEAK_REL = 0.02
_LEAK_VALID = 0.5
# A final loss more than this many times the reference's (same budget) learned too slowly.
_SLOW_FACTOR = 1.5


def _last(metric) -> Optional[float]:
    """A metric given as a number or as a sequence (its last finite value); None if absent."""
    if metric is None:
        return None
    if isinstance(metric, (int, float)):
        value = float(metric)
        return value if math.isfinite(value) else None
    try:
        values = [float(v) for v in metric]
    except TypeError:
        value = float(metric)  # a numpy scalar
        return value if math.isfinite(value) else None
    finite = [v for v in values if math.isfinite(v)]
    return finite[-1] if finite else None


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:.4g}" if abs(x) >= 1 else f"{x:.3f}"


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _picture(picture: Optional[str]) -> str:
    return f" (open {picture} to see the curve)" if picture else ""


def explain_curve(
    losses: Iterable[Number],
    *,
    n_classes: Optional[int] = None,
    train_metric=None,
    valid_metric=None,
    picture: Optional[str] = None,
    reference_loss: Optional[float] = None,
    suspects: Optional[Mapping[str, str]] = None,
) -> str:
    """One sentence: what the training curve ``losses`` looks like and the causes that fit it.

    ``losses``: the training loss in order (per step, or a mean per logging interval), floats or
    numpy scalars; NaN and inf are allowed. ``n_classes``: for a softmax classifier, lets the
    sentence recognise the loss of a uniform prediction, ``ln(n_classes)``. ``train_metric`` /
    ``valid_metric``: the final accuracy-like figure (higher is better) on training and validation
    data, as a number or a sequence (its last finite value is used). ``picture``: a path to mention
    ("open kata-output/k04/report.png ..."). ``reference_loss``: the reference solution's final training
    loss on the same budget (measured; the test knows it): a curve that ends well above it learned too
    slowly, however healthy its shape. ``suspects``: the kata function to look at first for each kind of
    cause — ``rate`` (learning rate, optimiser), ``init`` (the model's output layer and initial weights),
    ``loop`` (the training loop: the train op not run), ``eval`` (evaluation differs from training),
    ``leak`` (the inputs hold the answer), ``measure`` (a healthy curve: what is measured); the sentence
    then starts "look at F first:", so the failure's "Stuck?" line names that function.
    """
    unknown = set(suspects or {}) - set(KINDS)
    if unknown:
        raise ValueError(f"explain_curve: suspects has unknown kind(s) {sorted(unknown)}; use {', '.join(KINDS)}")
    kind, sentence = _read(losses, n_classes=n_classes, train_metric=train_metric, valid_metric=valid_metric,
                           picture=picture, reference_loss=reference_loss)
    function = (suspects or {}).get(kind)
    return f"look at {function} first: {sentence}" if function else sentence


KINDS = ("rate", "init", "loop", "eval", "leak", "measure")


def _read(losses, *, n_classes, train_metric, valid_metric, picture, reference_loss) -> tuple[str, str]:
    """(kind of cause, one sentence): see :func:`explain_curve`."""
    values = [float(v) for v in losses]
    see = _picture(picture)
    n = len(values)
    if n == 0:
        return "loop", f"no training loss was recorded: did the training loop run any step and record its loss?{see}"

    # 1. NaN / inf.
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        i = bad[0]
        what = "NaN" if math.isnan(values[i]) else "infinite"
        before = [v for v in values[:i]]
        trend = ""
        if len(before) >= 2 and before[-1] > before[0] * 1.5:
            trend = f" after rising from {_fmt(before[0])} to {_fmt(before[-1])}"
        elif before:
            trend = f" (it was {_fmt(before[-1])} just before)"
        return "rate", (
            f"the training loss became {what} at entry {i + 1} of {n}{trend}: the learning rate is too high, "
            f"or the loss is numerically unstable (a log of a softmax that underflowed to 0: use "
            f"softmax_cross_entropy_with_logits on the logits instead){see}"
        )

    k = max(1, n // 4)
    start, end = _mean(values[:k]), _mean(values[-k:])
    scale = max(abs(start), abs(end), 1e-12)
    peak = max(values)
    j = values.index(peak)
    uniform = math.log(n_classes) if n_classes and n_classes > 1 else None
    tail = values[n // 2 :] if n >= 2 else values
    at_uniform = uniform is not None and all(abs(v - uniform) <= _UNIFORM_REL * uniform for v in tail)

    # 2. Exploding, or huge from the start.
    if n >= 2 and j > 0 and (peak > _HUGE or (values[0] > 0 and peak > _EXPLODE_FACTOR * values[0])):
        return "rate", (
            f"the training loss exploded from {_fmt(values[0])} to {_fmt(peak)} (entry {j + 1} of {n}): "
            f"the learning rate is too high, or the loss is numerically unstable (compute it from the "
            f"logits with softmax_cross_entropy_with_logits){see}"
        )
    huge_start = peak > _HUGE or (uniform is not None and peak > _EXPLODE_FACTOR * uniform)
    if n >= 2 and j == 0 and (huge_start or peak > _EXPLODE_FACTOR * max(values[1], 1e-12)):
        then = (
            f"then sat at {_fmt(end)} ≈ ln({n_classes}), the loss of a uniform prediction (the first steps blew the "
            f"weights up and the units died)"
            if at_uniform
            else f"then came down to {_fmt(end)}"
        )
        return "rate", (
            f"the training loss started huge ({_fmt(peak)}) and {then}: the learning rate is too high, or the "
            f"weights start far too large (check the stddev){see}"
        )

    # 3. Flat at the uniform distribution's loss.
    if at_uniform:
        how = (
            f"stays at {_fmt(end)} ≈ ln({n_classes}) = {uniform:.3f}"
            if start - end <= _UNIFORM_REL * uniform
            else f"falls from {_fmt(start)} to {_fmt(end)} ≈ ln({n_classes}) = {uniform:.3f} and stays there"
        )
        return "init", (
            f"the training loss {how}, the loss of "
            f"a uniform prediction: the model gives every class the same probability whatever the input (dead "
            f"logits: a ReLU on the output layer; weights initialised to zero or far too small, check the "
            f"stddev; or no gradient reaching the weights){see}"
        )

    # 4. Not moving at all.
    if n >= 2 and abs(start - end) <= _FLAT_REL * scale and (peak - min(values)) <= 4 * _FLAT_REL * scale:
        return "loop", (
            f"the training loss does not move ({_fmt(values[0])} → {_fmt(values[-1])} over {n} entries): the "
            f"weights are not being updated (the train op is not run, the learning rate is 0, or the "
            f"variables are not trainable){see}"
        )

    # 5. A label leak: the training loss goes to ~0 while validation stays poor.
    valid_now = _last(valid_metric)
    if (n >= 2 and end < _LEAK_LOSS and start > 0 and end <= _LEAK_REL * start and valid_now is not None
            and valid_now < _LEAK_VALID):
        return "leak", (
            f"the training loss fell to almost 0 ({_fmt(start)} → {_fmt(end)}) but validation reaches only "
            f"{valid_now:.4f}: the model sees the answer while training (a label leak: targets not shifted, the "
            f"decoder fed the targets, or labels among the inputs), so it copies instead of learning{see}"
        )

    # 6. Rising.
    if n >= 2 and end > start * 1.1 + 1e-12:
        return "rate", (
            f"the training loss rises from {_fmt(start)} to {_fmt(end)}: the learning rate is too high, or "
            f"the optimiser maximises the loss (a sign error){see}"
        )

    # 7. Training fine, validation poor.
    train, valid = _last(train_metric), _last(valid_metric)
    if train is not None and valid is not None and train - valid > _GAP:
        return "eval", (
            f"the training loss falls ({_fmt(start)} → {_fmt(end)}) and the training metric is {train:.4f}, "
            f"but validation reaches only {valid:.4f}: the model is evaluated differently from how it is "
            f"trained (dropout left on at evaluation, keep_prob not 1.0, or preprocessing such as pixel "
            f"scaling that differs between training and evaluation){see}"
        )

    # 8. Ended far above the reference's loss on the same budget: too slow, whatever the shape.
    if reference_loss is not None and reference_loss > 0 and start > end and end > _SLOW_FACTOR * reference_loss:
        rising = ""
        if valid is not None:
            rising = f" (validation {valid:.4f})"
        return "rate", (
            f"the training loss fell from {_fmt(start)} to {_fmt(end)}{rising}, {end / reference_loss:.1f}x the "
            f"reference's {_fmt(reference_loss)} on the same budget: it learns too slowly (a learning rate below "
            f"the one the kata gives, e.g. an optimizer's default instead of it, or weights initialised too "
            f"small){see}"
        )

    # 9. Still falling steeply at the end (a high loss, with n_classes: well above a working model's).
    if n >= 3 and start > end:
        before_end = _mean(values[-2 * k : -k]) if n >= 2 * k + 1 else values[0]
        late_slope = (before_end - end) / k
        mean_slope = (start - end) / max(n - k, 1)
        high = uniform is not None and end > _HIGH * uniform
        if late_slope > _STEEP_RATIO * mean_slope or (high and late_slope > _STEEP_RATIO_HIGH * mean_slope):
            return "rate", (
                f"the training loss is still falling steeply at the end ({_fmt(start)} → {_fmt(end)}): it "
                f"learns too slowly (learning rate too small, or weights initialised too small: check the "
                f"stddev) and would need many more steps{see}"
            )

    # 10. Fell and levelled off.
    metric = ""
    if valid is not None:
        metric = f", validation {valid:.4f}"
    if start > end and uniform is not None and end > _HIGH * uniform:
        return "rate", (
            f"the training loss fell from {_fmt(start)} to {_fmt(end)} and stopped there, far above what a working "
            f"model reaches (ln({n_classes}) = {uniform:.3f} is a uniform guess){metric}: it stopped learning "
            f"early: check the learning rate and the initialisation scale{see}"
        )
    if start > end:
        return "measure", (
            f"the training loss fell from {_fmt(start)} to {_fmt(end)} and levelled off{metric}: a healthy "
            f"curve, so look at what is measured (the evaluation loop, the labels) or at the model's "
            f"capacity rather than at the optimiser{see}"
        )
    return "measure", f"the training loss went from {_fmt(start)} to {_fmt(end)}{metric}{see}"
