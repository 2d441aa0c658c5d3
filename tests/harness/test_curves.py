"""tfkata.feedback.curves.explain_curve: each diagnosis on a made-up curve that shows it (no TensorFlow)."""
import math

import numpy as np
import pytest

from tfkata.feedback.curves import explain_curve

LN10 = math.log(10)


def _noisy(curve, scale=0.02, seed=0):
    rng = np.random.default_rng(seed)
    return list(np.asarray(curve) * (1 + scale * rng.standard_normal(len(curve))))


def _healthy(n=600):
    t = np.arange(n)
    return _noisy(0.08 + (LN10 - 0.08) * np.exp(-t / 40.0))


def _one_sentence(text):
    assert text and "\n" not in text, text
    assert text.count(". ") == 0, f"expected one sentence, got: {text}"


def test_nan_names_learning_rate_and_unstable_loss():
    losses = list(np.linspace(2.3, 1.0, 50)) + [float("nan")] * 10
    text = explain_curve(losses, n_classes=10)
    _one_sentence(text)
    assert "NaN" in text and "entry 51 of 60" in text
    assert "learning rate" in text and "softmax_cross_entropy_with_logits" in text


def test_inf_is_reported_as_infinite():
    text = explain_curve([2.3, 2.0, float("inf")])
    assert "infinite" in text and "entry 3 of 3" in text


def test_exploding_loss():
    losses = list(2.3 * np.exp(np.linspace(0, 6, 100)))  # 2.3 -> ~900, finite
    text = explain_curve(losses, n_classes=10)
    _one_sentence(text)
    assert "exploded" in text and "learning rate is too high" in text


def test_flat_at_uniform_loss_says_dead_logits():
    losses = _noisy(np.full(600, LN10), scale=0.005)
    text = explain_curve(losses, n_classes=10, picture="kata-output/k04/report.png")
    _one_sentence(text)
    assert "ln(10) = 2.303" in text and "uniform" in text
    assert "ReLU on the output layer" in text and "no gradient" in text
    assert text.endswith("(open kata-output/k04/report.png to see the curve)")


def test_flat_elsewhere_says_weights_not_updated():
    losses = _noisy(np.full(200, 3.7), scale=0.003)
    text = explain_curve(losses, n_classes=10)
    _one_sentence(text)
    assert "does not move" in text and "uniform" not in text
    assert "learning rate is 0" in text


def test_flat_without_n_classes_is_not_called_uniform():
    text = explain_curve(_noisy(np.full(200, LN10), scale=0.003))
    assert "does not move" in text and "ln(" not in text


def test_rising_loss():
    text = explain_curve(list(np.linspace(1.0, 3.0, 100)))
    _one_sentence(text)
    assert "rises" in text and "learning rate is too high" in text


def test_still_steep_at_the_end_says_too_slow():
    losses = _noisy(np.linspace(LN10, 1.4, 600), scale=0.01)  # a straight line: no levelling off
    text = explain_curve(losses, n_classes=10)
    _one_sentence(text)
    assert "still falling steeply" in text
    assert "learning rate too small" in text and "stddev" in text


def test_still_steep_with_six_logged_means():
    """k04 logs a mean loss every 100 steps: 6 entries for the graded run."""
    text = explain_curve([2.29, 2.2, 2.05, 1.9, 1.72, 1.55], n_classes=10)
    assert "still falling steeply" in text


def test_healthy_curve_with_six_logged_means_is_called_healthy():
    text = explain_curve([0.95, 0.22, 0.15, 0.12, 0.10, 0.09], n_classes=10, valid_metric=0.985)
    _one_sentence(text)
    assert "levelled off" in text and "healthy" in text and "0.9850" in text
    assert "steep" not in text and "uniform" not in text


def test_healthy_long_curve():
    text = explain_curve(_healthy(), n_classes=10)
    assert "levelled off" in text and "healthy" in text


def test_train_good_valid_poor_says_evaluated_differently():
    text = explain_curve(_healthy(), n_classes=10, train_metric=0.99, valid_metric=0.81)
    _one_sentence(text)
    assert "0.9900" in text and "0.8100" in text
    assert "dropout" in text and "preprocessing" in text


def test_small_gap_is_not_blamed_on_dropout():
    text = explain_curve(_healthy(), n_classes=10, train_metric=0.99, valid_metric=0.975)
    assert "dropout" not in text and "healthy" in text


def test_metrics_as_sequences_use_the_last_value():
    text = explain_curve(_healthy(), train_metric=[0.5, 0.99], valid_metric=np.array([0.4, 0.7]))
    assert "0.9900" in text and "0.7000" in text


@pytest.mark.parametrize("losses", [[], [2.0]])
def test_degenerate_inputs(losses):
    text = explain_curve(losses, n_classes=10, picture="x.png")
    _one_sentence(text)
    assert text.endswith("(open x.png to see the curve)")


def test_accepts_numpy_float32():
    text = explain_curve(np.full(50, LN10, dtype=np.float32), n_classes=10)
    assert "uniform" in text


# Curves measured in real k04 runs (solutions/ with one mistake, 200 steps x 50, Adam 1e-3 unless said,
# a mean loss every 20 steps; TF 2.21), used here as fixed data.
REAL = {
    "reference": [3.441, 0.712, 0.472, 0.376, 0.288, 0.273, 0.228, 0.212, 0.229, 0.145],
    "relu-on-logits": [2.895, 2.303, 2.302, 2.303, 2.303, 2.303, 2.303, 2.303, 2.303, 2.303],
    "stddev-0.01": [2.313, 2.313, 2.311, 2.305, 2.306, 2.312, 2.308, 2.304, 2.306, 2.305],
    "lr-0.5": [242522.875, 2.335, 2.336, 2.313, 2.325, 2.327, 2.324, 2.325, 2.329, 2.339],
    "lr-1e-5": [10.16, 8.636, 7.687, 6.949, 6.466, 6.064, 5.64, 5.418, 5.318, 4.729],
}


def test_real_reference_run_is_healthy():
    text = explain_curve(REAL["reference"], n_classes=10, train_metric=0.9590, valid_metric=0.9656)
    assert "healthy" in text, text


@pytest.mark.parametrize("name", ["relu-on-logits", "stddev-0.01"])
def test_real_dead_or_silent_network_is_uniform(name):
    text = explain_curve(REAL[name], n_classes=10)
    _one_sentence(text)
    assert "ln(10)" in text and "uniform" in text and "ReLU on the output layer" in text and "stddev" in text, text


def test_real_learning_rate_far_too_high():
    text = explain_curve(REAL["lr-0.5"], n_classes=10)
    _one_sentence(text)
    assert "started huge" in text and "ln(10)" in text and "learning rate is too high" in text, text


def test_real_learning_rate_far_too_low():
    text = explain_curve(REAL["lr-1e-5"], n_classes=10)
    _one_sentence(text)
    assert "still falling steeply" in text and "learning rate too small" in text, text


def test_real_dropout_left_on_at_evaluation():
    """The reference curve with evaluate feeding keep_prob 0.1: validation 0.7726, training accuracy 0.9590."""
    text = explain_curve(REAL["reference"], n_classes=10, train_metric=0.9590, valid_metric=0.7726)
    assert "dropout left on at evaluation" in text, text


def test_fell_but_stopped_high():
    text = explain_curve([3.0, 2.0, 1.6, 1.5, 1.5, 1.5, 1.5, 1.5], n_classes=10)
    assert "stopped there" in text and "healthy" not in text, text


def test_label_leak_is_not_told_learning_rate():
    """A decoder fed its own targets: the loss goes to ~0, exact match stays at 0 (issue: told 'learning
    rate too high' before)."""
    losses = [2.9, 1.2, 0.3, 0.05, 0.01, 0.004, 0.003, 0.002]
    line = explain_curve(losses, n_classes=18, valid_metric=0.0)
    assert "label leak" in line and "learning rate" not in line, line


def test_slow_learning_against_the_reference_loss():
    """Adam at its default 1e-4 instead of 1e-3: a smooth curve that levels off 3x above the reference's
    final loss is too slow, not 'healthy'."""
    losses = [2.3, 1.6, 1.2, 1.0, 0.92, 0.9, 0.89, 0.885]
    healthy = explain_curve(losses)
    assert "healthy" in healthy, healthy
    line = explain_curve(losses, reference_loss=0.29, valid_metric=0.71)
    assert "learns too slowly" in line and "3.1x the reference's" in line and "healthy" not in line, line
    assert "healthy" in explain_curve(losses, reference_loss=0.8), "within 1.5x of the reference: no blame"
    # A real run: k07's solution trained at Adam 1e-3 instead of 3e-3 (TF 2.21; the 100-step means of its
    # 3000 steps; exact match 62.6 %, the reference 91.6 %). Its shape alone reads healthy.
    k07_slow = [1.816, 1.524, 1.37, 1.247, 1.198, 1.052, 0.899, 0.828, 0.738, 0.739, 0.611, 0.571, 0.503, 0.536,
                0.487, 0.437, 0.389, 0.376, 0.395, 0.394, 0.294, 0.373, 0.309, 0.258, 0.267, 0.314, 0.259, 0.236,
                0.238, 0.209]
    assert "healthy" in explain_curve(k07_slow, n_classes=11)
    line = explain_curve(k07_slow, n_classes=11, reference_loss=0.08, suspects={"rate": "decayed_learning_rate"})
    assert line.startswith("look at decayed_learning_rate first:") and "learns too slowly" in line, line


SUSPECTS = {"rate": "build_training", "init": "model", "loop": "train", "eval": "evaluate", "leak": "next_batch",
            "measure": "evaluate"}


@pytest.mark.parametrize("curve, kind", [
    (lambda: list(np.linspace(2.3, 1.0, 50)) + [float("nan")] * 10, "rate"),
    (lambda: _noisy([LN10] * 200, 0.005), "init"),
    (lambda: _noisy([1.7] * 200, 0.001), "loop"),
    (lambda: list(np.linspace(0.5, 2.0, 60)), "rate"),
])
def test_suspects_put_the_implicated_function_first(curve, kind):
    """`suspects` maps each kind of cause to the kata function to read first; the sentence starts with it
    (the failure's "Stuck? kata hint K -f F" takes the first function a message names)."""
    text = explain_curve(curve(), n_classes=10, suspects=SUSPECTS)
    _one_sentence(text)
    assert text.startswith(f"look at {SUSPECTS[kind]} first: the training loss"), text
    assert explain_curve(curve(), n_classes=10) == text.split(" first: ", 1)[1], "the sentence itself is unchanged"


def test_suspects_for_evaluation_and_a_healthy_curve():
    text = explain_curve(_healthy(), n_classes=10, train_metric=0.96, valid_metric=0.77, suspects=SUSPECTS)
    assert text.startswith("look at evaluate first:") and "dropout" in text, text
    text = explain_curve(_healthy(), n_classes=10, suspects={"rate": "build_training"})
    assert not text.startswith("look at"), f"a healthy curve with no `measure` suspect names none: {text}"


def test_unknown_suspect_kind_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown kind.*'lr'.*rate, init"):
        explain_curve([1.0, 0.5], suspects={"lr": "build_training"})


def test_every_training_tests_suspects_name_functions_of_its_kata():
    """A `SUSPECTS = {...}` table in a kata's test file maps curve kinds to that kata's hint keys (a typo would
    send "Stuck? kata hint K -f F" to a function that does not exist)."""
    import ast
    from pathlib import Path

    from tfkata import registry
    from tfkata.feedback.curves import KINDS

    tests = Path(__file__).resolve().parents[1]
    seen = 0
    for kata in registry.katas():
        path = tests.parent / kata.test_file
        if not path.is_file():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SUSPECTS" for t in node.targets):
                table = ast.literal_eval(node.value)
                assert set(table) <= set(KINDS), f"{kata.test_file}: unknown kinds {set(table) - set(KINDS)}"
                wrong = {f for f in table.values() if f not in kata.hints}
                assert not wrong, f"{kata.test_file}: SUSPECTS names {wrong}, not functions of {kata.id}"
                seen += 1
    assert seen >= 3, f"expected the training tests' SUSPECTS tables, found {seen}"
