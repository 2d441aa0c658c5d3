"""Graded tests for k05 · A character language model (RNN：字符语言模型).

Order: vocabulary and batches, the LSTM cell, the unrolled model and its saved state, the optimizer,
perplexity and sampling, then training: on the offline corpus (Python's help texts), on a synthetic
corpus whose lowest possible perplexity is known exactly (the leak detector), and, with --runslow,
the tutorial's full schedule on text8 when text8.zip is present.

Training figures (seeded, CPU, TF 2.12-2.21; the measurements are listed in bench/k05_train.py): the
thresholds below come from those runs with headroom; every run prints what it reached.

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import contextlib
import math
import random
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

from tfkata import fresh_graph, load_kata
from tfkata.feedback.curves import explain_curve
from tfkata.data import text as corpora
from tfkata.differential import Case, compare, graph_outputs, reference
from tfkata.loader import seed_everything
from tfkata.testing import logits_read_as_probabilities, recording_session_runs
from tfkata.tfsetup import SEED

k05 = load_kata("k05_char_lm")

V = 27  # vocabulary: ' ' and a-z

# ---- training settings and thresholds (measured: see the docstring of bench/k05_train.py)
# The tutorial's schedule cut to 1001 steps (summaries every 100, samples every 1000) to keep CI short:
# validation perplexity (first 1000 chars) at step 1000 3.71 on TF 2.21 and 2.12 (19.3 at step 0, a uniform guess 27;
# 3.51 at step 2000, 3.39-3.44 at step 3000 on TF 2.12-2.21). Cut from 2001 steps to halve the run.
OFFLINE_STEPS = 1001
OFFLINE_MAX_PERPLEXITY = 4.3
OFFLINE_MEASURED = 3.71  # the reference at step 1000 (TF 2.21; quoted in the failure message)
SYNTHETIC_STEPS = 1001
SYNTHETIC_TRAIN_CHARS = 1_000_000
SYNTHETIC_VALID_CHARS = 5_000
# The oracle's (the chain's own) perplexity on 5,000-character texts has a standard deviation of
# 0.0064 around the floor (300 seeded texts): 0.03 below the floor is ~4.7 sigma. No model, however
# good, lands lower without seeing its labels.
FLOOR_TOLERANCE = 0.03
# How close a correct model gets in SYNTHETIC_STEPS steps: measured at step 1000 validation 1.3436 and
# training 1.3443 (mean of steps 501-1000) against the floor 1.3181 (+0.026 / +0.026, TF 2.21; 2.12: 1.3435 /
# 1.3443; the leaking generator: training 1.1654 on 2.21, 1.1615 on 2.12; at step
# 500 validation 1.36, at step 0 13.8; at step 2000 1.3290 / 1.3364, every TF version); a model that has
# not learnt the chain stays far above, a model that sees its labels falls far below (1.0001 with labels = inputs).
FLOOR_DISTANCE = 0.08
LEAK_STEPS = 1001
TEXT8_STEPS = 7001
TEXT8_MAX_PERPLEXITY = 4.3  # the tutorial reports 4.27 at step 7000


# --------------------------------------------------------------------------- numpy references
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_cell(i, o, state, p):
    """The slide's LSTM equations in numpy, for ``p`` a dict of arrays."""
    gate = lambda g: i @ p[g + "x"] + o @ p[g + "m"] + p[g + "b"]  # noqa: E731
    input_gate, forget_gate, output_gate = _sigmoid(gate("i")), _sigmoid(gate("f")), _sigmoid(gate("o"))
    state = forget_gate * state + input_gate * np.tanh(gate("c"))
    return output_gate * np.tanh(state), state


def _np_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _random_params(rng, num_nodes, vocabulary_size=V):
    p = {}
    for g in "ifco":
        p[g + "x"] = rng.uniform(-0.5, 0.5, size=(vocabulary_size, num_nodes)).astype(np.float32)
        p[g + "m"] = rng.uniform(-0.5, 0.5, size=(num_nodes, num_nodes)).astype(np.float32)
        p[g + "b"] = rng.uniform(-0.5, 0.5, size=(1, num_nodes)).astype(np.float32)
    p["w"] = rng.uniform(-0.5, 0.5, size=(num_nodes, vocabulary_size)).astype(np.float32)
    p["b"] = rng.uniform(-0.5, 0.5, size=(vocabulary_size,)).astype(np.float32)
    return p


def _one_hot_batches(rng, count, batch_size):
    return [np.eye(V, dtype=np.float32)[rng.randint(0, V, size=batch_size)] for _ in range(count)]


def _load_params(sess, params, values):
    sess.run([params[k].assign(values[k]) for k in values])


# --------------------------------------------------------------------------- vocabulary
@pytest.mark.covers("char2id")
def test_char2id_maps_space_and_letters():
    got = [k05.char2id(c) for c in " az"]
    assert got == [0, 1, 26], f"expected ' ' -> 0, 'a' -> 1, 'z' -> 26, got {got}"
    ids = [k05.char2id(c) for c in "abcdefghijklmnopqrstuvwxyz"]
    assert ids == list(range(1, 27)), f"a..z must map to 1..26 in order, got {ids}"
    assert all(type(i) is int for i in ids), "char2id must return Python ints (use ord(), not a numpy value)"


@pytest.mark.covers("char2id")
def test_char2id_warns_on_unexpected_character():
    # The kata is called outside any pytest.warns block: a TODO or an import error shows as itself.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = k05.char2id("ï")
    assert got == 0, f"an unexpected character maps to 0 (the space), got {got}"
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    naming = [w for w in caught if issubclass(w.category, UserWarning) and "ï" in str(w.message)]
    fix = ("warn, do not print" if not caught else
           "put the character in the message" if any(issubclass(w.category, UserWarning) for w in caught) else
           "a UserWarning, warnings.warn(message) with no category")
    assert naming, (
        f"char2id('ï') should warn with warnings.warn(...) (a UserWarning whose message contains the character), "
        f"got {messages or 'no warning'}: {fix}"
    )


@pytest.mark.covers("char2id")
def test_char2id_warns_on_upper_case_and_neighbours():
    # Upper case and the ASCII neighbours of a..z have no id either: lower-casing, or a range test on ord(), gives
    # them one. The kata is called outside any pytest.warns block: a TODO shows as itself.
    for char, kind in (("A", "an upper-case letter"), ("Z", "an upper-case letter"), ("`", "the symbol before 'a'"),
                       ("{", "the symbol after 'z'"), ("7", "a digit")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = k05.char2id(char)
        warned = any(issubclass(w.category, UserWarning) and char in str(w.message) for w in caught)
        fix = " (do not lower-case it)" if char.isupper() else ""
        assert got == 0 and warned, (
            f"char2id({char!r}): {kind} is an unexpected character: char2id warns and gives 0{fix}, got {got!r} "
            f"{'with' if warned else 'without'} a warning naming it: only ' ' and 'a'..'z' have ids"
        )


@pytest.mark.covers("id2char", "char2id")
def test_id2char_inverts_char2id():
    assert k05.id2char(0) == " ", f"id 0 is the space, got {k05.id2char(0)!r}"
    back = "".join(k05.id2char(k05.char2id(c)) for c in " abcxyz")
    assert back == " abcxyz", f"id2char(char2id(c)) should give c back, got {back!r}: is 'a' id 1 (0 is the space)?"


# --------------------------------------------------------------------------- batches
ALPHABET = "abcdefghijklmnopqrstuvwxyz"  # 26 characters, batch 4 -> segments of 6: cursors 0, 6, 12, 18
SYMBOLS = " abcdefghijklmnopqrstuvwxyz"


def _rows(batches):
    """The strings read across ``batches`` (row b: argmax of row b of every batch), without the kata's helpers."""
    ids = np.argmax(np.stack([np.asarray(b) for b in batches]), axis=-1)  # [num_batches, B]
    return ["".join(SYMBOLS[i] for i in column) for column in ids.T]


def _stuck_rows(rows):
    return all(len(set(r)) == 1 for r in rows)


@pytest.mark.covers("BatchGenerator", "char2id")
def test_batch_generator_shapes_and_one_hot():
    batches = k05.BatchGenerator(ALPHABET, 4, 3).next()
    assert isinstance(batches, list) and len(batches) == 4, (
        f"next() returns a list of num_unrollings + 1 = 4 batches, got {type(batches).__name__} of "
        f"length {len(batches) if hasattr(batches, '__len__') else '?'}"
    )
    for k, b in enumerate(batches):
        assert b.shape == (4, V), f"batch {k}: expected shape [batch_size, 27] = (4, 27), got {b.shape}"
        assert b.dtype == np.float32, (
            f"BatchGenerator: batch {k} is {b.dtype.name!r} instead of 'float32': make the one-hot batch with "
            "np.zeros((batch_size, 27), dtype=np.float32), the dtype of the train_data placeholders"
        )
        assert np.array_equal(b.sum(axis=1), np.ones(4)) and set(np.unique(b)) <= {0.0, 1.0}, (
            f"batch {k} must be one-hot: exactly one 1.0 per row"
        )


@pytest.mark.covers("BatchGenerator")
def test_batch_generator_cursors_start_at_segments():
    gen = k05.BatchGenerator(ALPHABET, 4, 3)
    assert hasattr(gen, "_cursor"), "BatchGenerator keeps its cursors in self._cursor (a list of batch_size ints)"
    got = [int(c) for c in gen._cursor]
    want = [1, 7, 13, 19]  # segments start at 0, 6, 12, 18 and __init__ has read the first batch
    if got == [0, 6, 12, 18]:
        why = ("the segments are right but no cursor has moved: __init__ must read the first batch "
               "(self._last_batch = self._next_batch()) and _next_batch must move every cursor one on, "
               "cursor = (cursor + 1) % len(text)")
    elif len(got) == 4 and all(b - a == 6 for a, b in zip(got, got[1:])):
        why = (f"the segments are right (6 apart) but cursor 0 is at {got[0]}, not 1: __init__ reads exactly one "
               "batch and each batch moves every cursor by one")
    elif len(got) != 4:
        why = f"expected one cursor per row (batch_size = 4), got {len(got)}"
    else:
        why = ("cursor b must start at b * segment, segment = len(text) // batch_size = 26 // 4 = 6, and move one "
               "on as __init__ reads the first batch")
    assert got == want, f"expected cursors {want} after __init__, got {got}: {why}"


@pytest.mark.covers("BatchGenerator", "char2id")
def test_batch_generator_first_call_strings():
    batches = k05.BatchGenerator(ALPHABET, 4, 3).next()
    if len(batches) > 1 and all(b is batches[0] for b in batches):
        pytest.fail("BatchGenerator: next() returned the same array object for every batch: _next_batch fills one "
                    "buffer and returns it again, so each batch overwrites the previous one: make a new np.zeros "
                    "array on every call", pytrace=False)
    if len(batches) > 2 and all(b is batches[1] for b in batches[1:]):
        pytest.fail("BatchGenerator.next: the num_unrollings new batches are one array object repeated ([x] * n "
                    "calls _next_batch once): call self._next_batch() once per unrolling, in a loop", pytrace=False)
    got = _rows(batches)
    if _stuck_rows(got):
        pytest.fail(f"BatchGenerator: every row repeats one character, got {got}: _next_batch must move each cursor one on "
                    "after reading its character", pytrace=False)
    if got == ["bcde", "hijk", "nopq", "tuvw"]:
        pytest.fail(f"the first call skipped the batch __init__ read, got {got}: next() starts with "
                    "self._last_batch (the batch read last), then reads num_unrollings new ones", pytrace=False)
    assert got == ["abcd", "ghij", "mnop", "stuv"], (
        f"BatchGenerator: expected ['abcd', 'ghij', 'mnop', 'stuv'] (4 rows reading the 4 segments, 3 unrollings + 1), got {got}"
    )


@pytest.mark.covers("BatchGenerator", "char2id")
def test_batch_generator_continues_with_last_batch():
    gen = k05.BatchGenerator(ALPHABET, 4, 3)
    first = _rows(gen.next())
    second = _rows(gen.next())
    if second == ["efgh", "klmn", "qrst", "wxyz"]:
        why = ("the first batch of a call must repeat the LAST batch of the previous call (labels of one call "
               "overlap the inputs of the next): start with self._last_batch, then num_unrollings new ones")
    elif second == first:
        why = "the second call repeated the first: keep the cursors and self._last_batch between calls"
    else:
        why = "each call starts with the LAST batch of the previous call, then num_unrollings new ones"
    assert second == ["defg", "jklm", "pqrs", "vwxy"], (
        f"second call: expected ['defg', 'jklm', 'pqrs', 'vwxy'], got {second} (first call {first}): {why}"
    )


@pytest.mark.covers("BatchGenerator", "char2id")
def test_batch_generator_wraps_around():
    gen = k05.BatchGenerator(ALPHABET, 4, 3)
    gen.next()
    gen.next()
    third = _rows(gen.next())
    assert third == ["ghij", "mnop", "stuv", "yzab"], (
        f"third call: expected ['ghij', 'mnop', 'stuv', 'yzab'] (row 3 runs past 'z' and wraps to the start), "
        f"got {third}: cursor = (cursor + 1) % len(text)"
    )


@pytest.mark.covers("characters", "id2char")
def test_characters_takes_the_most_likely():
    probs = np.full((3, V), 0.01)
    probs[0, 0], probs[1, 1], probs[2, 26] = 0.5, 0.5, 0.5
    got = k05.characters(probs)
    assert isinstance(got, list), (
        f"characters should return a list of one-character strings, got {type(got).__name__}"
        + (": build a list ([id2char(i) for i in ...]), not a numpy array" if isinstance(got, np.ndarray) else "")
    )
    assert got == [" ", "a", "z"], f"expected [' ', 'a', 'z'] (argmax of each row), got {got}"


@pytest.mark.covers("batches2string", "characters", "id2char")
def test_batches2string_reads_rows_across_batches():
    eye = np.eye(V, dtype=np.float32)
    batches = [eye[[8, 0]], eye[[0, 15]], eye[[13, 9]]]  # row 0: ids 8, 0, 13; row 1: ids 0, 15, 9
    got = k05.batches2string(batches)
    assert got == ["h m", " oi"], f"expected ['h m', ' oi'], got {got}: row b is the b-th character of every batch, joined"
    wide = k05.batches2string([eye[[1, 2, 3]], eye[[4, 5, 6]]])  # 2 batches of 3 rows: 3 strings of 2 characters
    assert wide == ["ad", "be", "cf"], (
        f"batches2string: 2 batches of 3 rows should give 3 strings (one per ROW of a batch), got {wide}"
        + (": make one string per row, batches[0].shape[0], not one per batch" if len(wide) == 2 else "")
    )


# --------------------------------------------------------------------------- the LSTM cell
@pytest.mark.covers("create_parameters")
def test_create_parameters_shapes():
    for vocabulary, nodes in ((5, 3), (V, 16)):
        # each size in a graph of its own: get_variable (k02's API) is as right as tf.Variable here
        with fresh_graph() if nodes == 3 else contextlib.nullcontext():
            params = k05.create_parameters(vocabulary, nodes)
        expected = {}
        for g in "ifco":
            expected.update({g + "x": [vocabulary, nodes], g + "m": [nodes, nodes], g + "b": [1, nodes]})
        expected.update({"w": [nodes, vocabulary], "b": [vocabulary]})
        assert set(params) == set(expected), (
            f"create_parameters: expected the keys {sorted(expected)}, got {sorted(params)}"
        )
        for key, shape in expected.items():
            got = params[key].shape.as_list()
            assert got == shape, (
                f"create_parameters({vocabulary}, {nodes}): params[{key!r}]: expected shape {shape}, got {got}: "
                + ("a gate's bias is a ROW, [1, num_nodes], as the docstring gives it (tf.zeros([1, num_nodes]))"
                   if len(shape) == 2 and shape[0] == 1 and got == shape[1:] else
                   "size the weights by the vocabulary_size and num_nodes arguments")
            )
            assert params[key].dtype.base_dtype == tf.float32, f"create_parameters: params[{key!r}] must be float32"
    trainable = {v.ref() for v in tf.compat.v1.trainable_variables()}
    assert all(params[k].ref() in trainable for k in expected), "all parameters must be trainable tf.Variables"
    shared = [(a, b) for i, a in enumerate(sorted(params)) for b in sorted(params)[i + 1:] if params[a] is params[b]]
    assert not shared, (
        f"create_parameters: params[{shared[0][0]!r}] and params[{shared[0][1]!r}] are one variable: every gate needs "
        "weights and a bias of its own, 14 variables in all" if shared else ""
    )


@pytest.mark.covers("create_parameters")
def test_create_parameters_biases_start_at_zero(sess):
    params = k05.create_parameters(V, 16)
    sess.run(tf.compat.v1.global_variables_initializer())
    values = sess.run(params)
    for key in ("ib", "fb", "cb", "ob", "b"):
        assert not values[key].any(), f"{key} is a bias: it starts as zeros"
    for key in ("ix", "im", "w"):
        assert values[key].std() > 0.01, f"{key} is a weight: it starts random (truncated_normal), not constant"


@pytest.mark.covers("create_parameters")
def test_create_parameters_weights_are_truncated_normal(sess):
    # truncated_normal(shape, -0.1, 0.1) is positionally mean -0.1, stddev 0.1, cut at 2 stddev: every draw lies in
    # [-0.3, 0.1] and the spread is about 0.088. A uniform(-0.1, 0.1), a mean of 0 or an uncut normal differ.
    params = k05.create_parameters(V, 16)
    sess.run(tf.compat.v1.global_variables_initializer())
    values = sess.run(params)
    for key in [g + m for g in "ifco" for m in "xm"] + ["w"]:
        v = values[key]
        mean, std = float(v.mean()), float(v.std())
        assert abs(mean + 0.1) < 0.03, (
            f"create_parameters: {key} has mean {mean:.3f}: weights start as tf.random.truncated_normal(shape, "
            "-0.1, 0.1), which is mean -0.1 and stddev 0.1 (the positional arguments are mean and stddev, not a range)"
        )
        assert 0.07 < std < 0.105, (
            f"create_parameters: {key} has stddev {std:.3f}, expected about 0.088: tf.random.truncated_normal(shape, "
            "-0.1, 0.1) (mean -0.1, stddev 0.1, cut at 2 stddev)"
        )
        assert v.min() >= -0.3 - 1e-6 and v.max() <= 0.1 + 1e-6, (
            f"create_parameters: {key} has values from {v.min():.3f} to {v.max():.3f}, beyond 2 stddev of the mean "
            "-0.1 ([-0.3, 0.1]): use tf.random.truncated_normal(shape, -0.1, 0.1), not tf.random.normal"
        )


@pytest.mark.covers("lstm_cell")
def test_lstm_cell_shapes():
    rng = np.random.RandomState(0)
    params = {k: tf.constant(v) for k, v in _random_params(rng, 8).items()}
    i = tf.constant(_one_hot_batches(rng, 1, 5)[0])
    output, state = k05.lstm_cell(i, tf.zeros([5, 8]), tf.zeros([5, 8]), params)
    assert output.shape.as_list() == [5, 8] and state.shape.as_list() == [5, 8], (
        f"expected output and state of shape [B, N] = [5, 8], got {output.shape.as_list()} and {state.shape.as_list()}"
    )


_GATE_NAMES = {"i": "input gate", "f": "forget gate", "c": "update", "o": "output gate"}


def _np_cell_variant(i, o, state, p, act=None, weights=None, update_act=np.tanh, output_state="new",
                     output_act=np.tanh, swap_if=False):
    """The slide's cell with one thing changed (for naming a learner's mistake)."""
    act = {"i": _sigmoid, "f": _sigmoid, "o": _sigmoid, **(act or {})}
    weights = {g: g for g in "ifco"} | (weights or {})
    z = {g: i @ p[weights[g] + "x"] + o @ p[weights[g] + "m"] + p[weights[g] + "b"] for g in "ifco"}
    input_gate, forget_gate, output_gate = act["i"](z["i"]), act["f"](z["f"]), act["o"](z["o"])
    if swap_if:
        input_gate, forget_gate = forget_gate, input_gate
    new_state = forget_gate * state + input_gate * update_act(z["c"])
    out = output_gate * output_act(new_state if output_state == "new" else state)
    return out, new_state


def _cell_variants():
    ident = lambda x: x  # noqa: E731
    variants = []
    for g in "ifo":
        variants.append((f"the {_GATE_NAMES[g]} goes through tanh: the three gates use sigmoid (tanh is only for "
                         "the update and for the new state in the output)", dict(act={g: np.tanh})))
    variants.append(("the update goes through sigmoid: state = forget_gate * state + input_gate * TANH(update)",
                     dict(update_act=_sigmoid)))
    variants.append(("the update has no tanh: state = forget_gate * state + input_gate * tanh(update)",
                     dict(update_act=ident)))
    variants.append(("the input and forget gates are swapped: the forget gate multiplies the OLD state, the input "
                     "gate the tanh(update)", dict(swap_if=True)))
    variants.append(("the output uses the OLD state: output = output_gate * tanh(NEW state)", dict(output_state="old")))
    variants.append(("the output has no tanh: output = output_gate * tanh(state)", dict(output_act=ident)))
    for g in "ifco":
        for src in "ifco":
            if src != g:
                variants.append((f"the {_GATE_NAMES[g]} is computed with the {src}x / {src}m / {src}b weights: "
                                 f"check which weights feed which gate ({g}x, {g}m, {g}b for the {_GATE_NAMES[g]})",
                                 dict(weights={g: src})))
    return variants


@pytest.mark.covers("lstm_cell")
def test_lstm_cell_matches_gate_equations(sess):
    rng = np.random.RandomState(1)
    p = _random_params(rng, 8)
    i = _one_hot_batches(rng, 1, 5)[0]
    o = rng.uniform(-1, 1, size=(5, 8)).astype(np.float32)
    s = rng.uniform(-1, 1, size=(5, 8)).astype(np.float32)
    output, state = k05.lstm_cell(tf.constant(i), tf.constant(o), tf.constant(s), {k: tf.constant(v) for k, v in p.items()})
    got_output, got_state = sess.run([output, state])
    want_output, want_state = _np_cell(i, o, s, p)
    tol = 1e-5
    if np.abs(got_state - want_state).max() <= tol and np.abs(got_output - want_output).max() <= tol:
        return
    if np.abs(got_output - want_state).max() <= tol and np.abs(got_state - want_output).max() <= tol:
        pytest.fail("lstm_cell: the two values it returns are swapped: return (output, state), the output "
                    "(output_gate * tanh(new state)) first, then the new state", pytrace=False)
    for why, change in _cell_variants():
        v_out, v_state = _np_cell_variant(i, o, s, p, **change)
        if np.abs(got_state - v_state).max() <= 1e-4 and np.abs(got_output - v_out).max() <= 1e-4:
            pytest.fail(f"lstm_cell: {why}", pytrace=False)
    d_state = np.abs(got_state - want_state)
    if d_state.max() > tol and np.abs(got_state - np.tanh(want_state)).max() <= 1e-4:
        pytest.fail("lstm_cell: the new state returned is tanh of the right one: the tanh belongs to the output only "
                    "(output = output_gate * tanh(state)); return the state itself, forget_gate * state + "
                    "input_gate * tanh(update)", pytrace=False)
    if d_state.max() > tol:
        # Which term is off? With the previous state at zero the forget gate plays no part.
        zero_state = _np_cell(i, o, np.zeros_like(s), p)[1]
        got_zero = sess.run(k05.lstm_cell(tf.constant(i), tf.constant(o), tf.zeros_like(s),
                                          {k: tf.constant(v) for k, v in p.items()})[1])
        if np.abs(got_zero - zero_state).max() <= tol:
            part = ("with a zero previous state yours is right, so the forget_gate * state term is off "
                    "(forget_gate = sigmoid(i @ fx + o @ fm + fb))")
        else:
            part = "even from a zero previous state it differs, so input_gate * tanh(update) is off"
        where = np.unravel_index(d_state.argmax(), d_state.shape)
        pytest.fail(f"lstm_cell: the new state should be forget_gate * state + input_gate * tanh(update), "
                    f"max |diff| {d_state.max():.3g} at {tuple(int(k) for k in where)}: {part}", pytrace=False)
    d_out = np.abs(got_output - want_output)
    where = np.unravel_index(d_out.argmax(), d_out.shape)
    pytest.fail(f"lstm_cell: the state is right but the output is not (max |diff| {d_out.max():.3g} at "
                f"{tuple(int(k) for k in where)}): output = sigmoid(i @ ox + o @ om + ob) * tanh(new state)",
                pytrace=False)


# --------------------------------------------------------------------------- the unrolled model
def _small_model(sess, seed=2, batch_size=4, num_unrollings=3, num_nodes=8):
    params = k05.create_parameters(V, num_nodes)
    model = k05.build_training_model(params, batch_size=batch_size, num_unrollings=num_unrollings)
    sess.run(tf.compat.v1.global_variables_initializer())
    values = _random_params(np.random.RandomState(seed), num_nodes)
    _load_params(sess, params, values)
    return params, model, values


def _np_unroll(values, batches, output, state):
    outputs = []
    for x in batches[:-1]:
        output, state = _np_cell(x, output, state, values)
        outputs.append(output)
    logits = np.concatenate(outputs) @ values["w"] + values["b"]
    labels = np.concatenate(batches[1:])
    loss = float(np.mean(-np.sum(labels * np.log(_np_softmax(logits)), axis=1)))
    return loss, logits, output, state


def _np_xent(logits, labels):
    """Per-row softmax cross-entropy of ``logits`` [N, 27] against one-hot ``labels`` [N, 27] (float64)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.sum(np.asarray(labels, np.float64) * logp, axis=1)


@pytest.mark.covers("build_training_model", "create_parameters")
def test_training_model_shapes():
    params = k05.create_parameters(V, 8)
    try:
        model = k05.build_training_model(params, batch_size=4, num_unrollings=3)
    except (ValueError, tf.errors.InvalidArgumentError):
        fixed = [op for op in tf.compat.v1.get_default_graph().get_operations() if op.type == "Placeholder"
                 and op.outputs[0].shape.rank == 2 and op.outputs[0].shape.as_list()[0] not in (None, 4)]
        if fixed:
            pytest.fail(f"build_training_model: the train_data placeholders are {fixed[0].outputs[0].shape.as_list()} but "
                        "batch_size=4: make them [batch_size, 27] with the argument, not BATCH_SIZE", pytrace=False)
        trainable = {v.ref() for v in tf.compat.v1.trainable_variables()}
        rows = [v for v in tf.compat.v1.global_variables() if v.ref() not in trainable and v.shape.rank == 2
                and v.shape.as_list()[0] != 4]
        if rows:
            pytest.fail(f"build_training_model: saved_output / saved_state are {rows[0].shape.as_list()} but batch_size=4: "
                        "make them [batch_size, N] with the argument, not BATCH_SIZE", pytrace=False)
        sized = [v for v in tf.compat.v1.global_variables() if v.ref() not in trainable and v.shape.rank == 2
                 and v.shape.as_list()[0] == 4 and v.shape.as_list()[1] != 8]
        if sized:
            pytest.fail(f"build_training_model: saved_output / saved_state are {sized[0].shape.as_list()} but params "
                        "hold 8 nodes (a [27, 8] ix): take N from params, params['im'].shape[0], not NUM_NODES",
                        pytrace=False)
        raise
    assert len(model["train_data"]) == 4, (
        f"build_training_model(..., num_unrollings=3): expected num_unrollings + 1 = 4 placeholders, got "
        f"{len(model['train_data'])}: use the num_unrollings argument"
    )
    for k, ph in enumerate(model["train_data"]):
        assert ph.op.type == "Placeholder" and ph.shape.as_list() == [4, V], (
            f"build_training_model(..., batch_size=4): train_data[{k}]: expected a float32 placeholder [4, 27], got "
            f"{ph.op.type} {ph.shape.as_list()}: use the batch_size argument"
        )
    assert model["logits"].shape.as_list() == [12, V], (
        f"logits: expected [num_unrollings * batch_size, 27] = [12, 27], got {model['logits'].shape.as_list()}: "
        "concatenate the outputs along axis 0"
    )
    assert model["loss"].shape.as_list() == [], f"loss must be a scalar (reduce_mean), got {model['loss'].shape.as_list()}"
    assert model["train_prediction"].shape.as_list() == [12, V], (
        f"train_prediction: expected softmax(logits) [12, 27], got {model['train_prediction'].shape.as_list()}"
    )
    for key in ("saved_output", "saved_state"):
        var = model[key]
        assert var.shape.as_list() == [4, 8], f"{key}: expected [batch_size, num_nodes] = [4, 8], got {var.shape.as_list()}"
        assert var.ref() not in {v.ref() for v in tf.compat.v1.trainable_variables()}, (
            f"{key} must be created with trainable=False: the optimizer must not change it"
        )


@pytest.mark.covers("build_training_model", "lstm_cell", "create_parameters")
def test_training_logits_match_numpy_unroll(sess):
    params, model, values = _small_model(sess)
    batches = _one_hot_batches(np.random.RandomState(3), 4, 4)
    logits, prediction = sess.run([model["logits"], model["train_prediction"]], dict(zip(model["train_data"], batches)))
    zeros = np.zeros((4, 8), np.float32)
    _, want_logits, _, _ = _np_unroll(values, batches, zeros, zeros)
    if np.abs(logits - want_logits).max() > 1e-4:
        _, from_labels, _, _ = _np_unroll(values, batches[1:] + batches[:1], zeros, zeros)
        batch_major = want_logits.reshape(3, 4, V).transpose(1, 0, 2).reshape(12, V)
        if np.abs(logits - from_labels).max() <= 1e-4:
            why = "the cell reads train_data[1:]: the inputs are the FIRST num_unrollings batches, train_data[:num_unrollings]"
        elif np.abs(logits - batch_major).max() <= 1e-4:
            why = ("the rows are in batch-major order: concatenate the step outputs along axis 0 "
                   "(tf.concat(outputs, 0): step 0's batch first, then step 1's, ...)")
        else:
            d = np.abs(logits - want_logits)
            where = np.unravel_index(d.argmax(), d.shape)
            why = (f"max |diff| {d.max():.3g} at row {int(where[0])} (step {int(where[0]) // 4}): run lstm_cell over "
                   "train_data[:num_unrollings] from saved_output / saved_state, concatenate the outputs along axis 0, "
                   "then xw_plus_b(outputs, w, b)")
        pytest.fail(f"logits differ from the unrolled reference: {why}", pytrace=False)
    np.testing.assert_allclose(prediction, _np_softmax(logits.astype(np.float64)), atol=1e-5,
                               err_msg="train_prediction should be tf.nn.softmax(logits), each row a distribution")


@pytest.mark.covers("build_training_model", "lstm_cell", "create_parameters")
def test_training_loss_scores_the_next_character(sess):
    params, model, values = _small_model(sess)
    # the classifier 20 times sharper: near-uniform logits score any labels alike (labels in another order passed)
    sess.run(params["w"].assign(params["w"] * 20.0))
    batches = _one_hot_batches(np.random.RandomState(3), 4, 4)
    loss, logits = sess.run([model["loss"], model["logits"]], dict(zip(model["train_data"], batches)))
    # Scored against the model's own logits, so a logits mistake is reported by the test above, not here.
    xent_next = _np_xent(logits, np.concatenate(batches[1:]))
    want = float(xent_next.mean())
    if abs(loss - want) <= 1e-4 * max(1.0, abs(want)):
        return
    unshifted = float(_np_xent(logits, np.concatenate(batches[:-1])).mean())
    if abs(loss - unshifted) <= 1e-4 * max(1.0, abs(unshifted)):
        why = ("the labels are the inputs themselves: each step must predict the NEXT character, "
               "labels = train_data[1:] (inputs = train_data[:num_unrollings])")
    elif abs(loss - float(_np_xent(logits, np.stack(batches[1:], 1).reshape(-1, V)).mean())) <= 1e-4 * max(1.0, abs(want)):
        why = ("the labels are in batch-major order (each row's steps together) while the logits are time-major: "
               "labels = tf.concat(train_data[1:], 0), step 1's batch first, then step 2's, ... as the outputs")
    elif abs(loss - xent_next.sum()) <= 1e-3 * xent_next.sum():
        why = "the loss is the SUM over the 12 predictions: take the mean (tf.reduce_mean)"
    elif abs(loss - want / V) <= 1e-4:
        why = ("the loss is also averaged over the 27 columns: reduce_mean of softmax_cross_entropy_with_logits "
               "(one value per row), not of labels * log(p)")
    elif any(abs(loss - float(read.mean())) <= 1e-4 * max(1.0, abs(float(read.mean())))
             for read in logits_read_as_probabilities(np.concatenate(batches[1:]), logits)):
        why = ("the logits were read as probabilities (a Keras loss's default from_logits=False): "
               "tf.nn.softmax_cross_entropy_with_logits(labels=..., logits=logits), or from_logits=True")
    else:
        why = ("the loss should be reduce_mean(softmax_cross_entropy_with_logits(labels=..., logits=logits)) with "
               "labels = tf.concat(train_data[1:], 0), the inputs shifted by one step")
    pytest.fail(f"build_training_model: {why} (loss {loss:.6f}, expected {want:.6f}: the mean cross-entropy of your "
                "logits against the next characters)", pytrace=False)


@pytest.mark.covers("build_training_model", "lstm_cell", "create_parameters")
def test_state_carries_across_batches(sess):
    params, model, values = _small_model(sess)
    rng = np.random.RandomState(4)
    first, second = _one_hot_batches(rng, 4, 4), _one_hot_batches(rng, 4, 4)
    zeros = np.zeros((4, 8), np.float32)
    _, _, out1, state1 = _np_unroll(values, first, zeros, zeros)
    sess.run(model["loss"], dict(zip(model["train_data"], first)))  # running the loss alone must save the state
    saved_output, saved_state = sess.run([model["saved_output"], model["saved_state"]])
    assert np.abs(saved_state).max() > 0, (
        "build_training_model: saved_state is still zero after running the loss: build logits and loss inside "
        "tf.control_dependencies([saved_output.assign(output), saved_state.assign(state)])"
    )
    if np.abs(saved_output - state1).max() <= 1e-5 and np.abs(saved_output - out1).max() > 1e-3:
        pytest.fail("build_training_model: saved_output holds the last cell STATE: save the last OUTPUT there (the "
                    "first value lstm_cell returns) and the state in saved_state", pytrace=False)
    np.testing.assert_allclose(saved_state, state1, atol=1e-5, err_msg="build_training_model: saved_state must hold the LAST step's state")
    np.testing.assert_allclose(saved_output, out1, atol=1e-5, err_msg="build_training_model: saved_output must hold the LAST step's output")
    loss2 = sess.run(model["loss"], dict(zip(model["train_data"], second)))
    want_carried, _, _, _ = _np_unroll(values, second, out1, state1)
    want_fresh, _, _, _ = _np_unroll(values, second, zeros, zeros)
    rows = sum(len(b) for b in second[1:])  # the predictions the loss scores
    if abs(loss2 - rows * want_carried) < 1e-3 * rows * want_carried:
        pytest.fail(f"build_training_model: second batch: loss {loss2:.6f} is {rows} x the expected {want_carried:.6f}: "
                    f"the loss is the SUM over the {rows} predictions: take the mean (tf.reduce_mean)", pytrace=False)
    if abs(loss2 - want_fresh) < 1e-4:
        pytest.fail(f"build_training_model: second batch: loss {loss2:.6f} is the loss from a ZERO state, expected {want_carried:.6f} "
                    "(continuing from the first batch): start the unrolled loop from saved_output / saved_state",
                    pytrace=False)
    assert abs(loss2 - want_carried) < 1e-4, (
        f"build_training_model: second batch: loss {loss2:.6f}, expected {want_carried:.6f} (continuing from the saved state); "
        f"from a zero state it would be {want_fresh:.6f}: start the loop from saved_output / saved_state"
    )


@pytest.mark.covers("build_training_model", "lstm_cell", "create_parameters")
def test_predictions_alone_carry_the_state(sess):
    # logits (and so train_prediction) are built under the control dependencies too, not only the loss: a run that
    # fetches the predictions alone moves the saved state as a run of the loss does
    params, model, values = _small_model(sess)
    batches = _one_hot_batches(np.random.RandomState(5), 4, 4)
    zeros = np.zeros((4, 8), np.float32)
    _, _, _, state1 = _np_unroll(values, batches, zeros, zeros)
    for key in ("train_prediction", "logits"):
        sess.run([model["saved_output"].initializer, model["saved_state"].initializer])
        sess.run(model[key], dict(zip(model["train_data"], batches)))
        saved_state = sess.run(model["saved_state"])
        assert np.abs(saved_state - state1).max() <= 1e-5, (
            f"build_training_model: a run of {key} alone left saved_state "
            f"{'at zero' if not np.abs(saved_state).max() else 'away from the last step state'}: build the logits "
            "inside tf.control_dependencies([saved_output.assign(output), saved_state.assign(state)]) too, with the "
            "loss, so every run of the model carries its state forward (train_prediction = softmax(logits))"
        )


# --------------------------------------------------------------------------- the optimizer
@pytest.mark.covers("build_optimizer")
def test_learning_rate_schedule(sess):
    v = tf.Variable(1.0)
    opt = k05.build_optimizer(tf.square(v))
    sess.run(tf.compat.v1.global_variables_initializer())
    got = {}
    for step in (0, 4999, 5000, 9999, 10000, 15000):
        sess.run(opt["global_step"].assign(step))
        got[step] = float(sess.run(opt["learning_rate"]))
    want = {0: 10.0, 4999: 10.0, 5000: 1.0, 9999: 1.0, 10000: 0.1, 15000: 0.01}
    if abs(got[4999] - 10.0 * 0.1 ** (4999 / 5000)) < 1e-4:
        pytest.fail(f"the learning rate decays smoothly ({got[4999]:.4f} at step 4999), expected 10 until step 4999 "
                    "then 1: exponential_decay(..., staircase=True)", pytrace=False)
    assert all(abs(got[s] - want[s]) < 1e-5 * want[s] for s in want), (
        f"learning rate by step: expected {want}, got {got}: "
        "exponential_decay(10.0, global_step, 5000, 0.1, staircase=True)"
    )


@pytest.mark.covers("build_optimizer")
def test_gradients_clipped_to_global_norm(sess):
    v = tf.Variable([1.0, 2.0, 2.0])
    u = tf.Variable([4.0])
    # gradients 200 v (norm 600) and 200 u (norm 800): global norm 1000
    opt = k05.build_optimizer(100.0 * (tf.reduce_sum(tf.square(v)) + tf.reduce_sum(tf.square(u))))
    sess.run(tf.compat.v1.global_variables_initializer())
    grads, norm = sess.run([opt["gradients"], opt["global_norm"]])
    assert len(grads) == 2, f"expected one clipped gradient per trainable variable (2), got {len(grads)}"
    assert abs(float(norm) - 1000.0) < 1e-1, f"global_norm should be the norm BEFORE clipping (1000), got {norm}"
    each = [math.sqrt(float(np.sum(np.square(g)))) for g in grads]
    clipped = math.sqrt(sum(n * n for n in each))
    if all(abs(n - 1.25) < 1e-3 for n in each):
        pytest.fail(f"each gradient was clipped on its own to norm 1.25 (global norm {clipped:.3f}): "
                    "clip_by_global_norm(gradients, 1.25) scales them all by the same factor", pytrace=False)
    assert abs(clipped - 1.25) < 1e-3, (
        f"the clipped gradients should have global norm 1.25, got {clipped:.5f}: "
        "clip_by_global_norm(gradients, 1.25) clips all of them together"
    )
    sess.run(opt["train_op"])
    got_v, got_u, step = sess.run([v, u, opt["global_step"]])
    want_v = np.array([1.0, 2.0, 2.0]) * (1.0 - 10.0 * 200.0 * 1.25 / 1000.0)
    unclipped_v = np.array([1.0, 2.0, 2.0]) * (1.0 - 10.0 * 200.0)
    if np.allclose(got_v, unclipped_v, rtol=1e-4):
        pytest.fail("train_op applied the UNCLIPPED gradients: apply_gradients(zip(clipped_gradients, variables), "
                    "global_step=global_step)", pytrace=False)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-4, atol=1e-4,
                               err_msg="train_op must apply the CLIPPED gradients with learning rate 10")
    np.testing.assert_allclose(got_u, [4.0 * (1.0 - 2.5)], rtol=1e-4, atol=1e-4,
                               err_msg="train_op must update every trainable variable with its clipped gradient")
    assert step == 1, f"train_op must increment global_step (apply_gradients(..., global_step=global_step)), got {step}"


@pytest.mark.covers("build_optimizer")
def test_gradients_clipped_to_the_clip_norm_given(sess):
    v = tf.Variable([1.0, 2.0, 2.0])
    u = tf.Variable([4.0])
    # global norm 1000 as above, clipped to the clip_norm passed in, 5.0 (not the default 1.25)
    opt = k05.build_optimizer(100.0 * (tf.reduce_sum(tf.square(v)) + tf.reduce_sum(tf.square(u))), clip_norm=5.0)
    sess.run(tf.compat.v1.global_variables_initializer())
    grads = sess.run(opt["gradients"])
    clipped = math.sqrt(sum(float(np.sum(np.square(g))) for g in grads))
    each = [math.sqrt(float(np.sum(np.square(g)))) for g in grads]
    assert abs(clipped - 5.0) < 1e-3, (
        f"build_optimizer(loss, clip_norm=5.0): the clipped gradients have global norm {clipped:.4f}, expected 5.0: "
        + (f"each gradient was clipped on its own (norms {', '.join(f'{n:.4g}' for n in each)}): "
           "clip_by_global_norm(gradients, clip_norm) scales them all by one factor"
           if all(abs(n - 5.0) < 1e-3 for n in each) else
           "pass the argument through, clip_by_global_norm(gradients, clip_norm)")
    )


@pytest.mark.covers("build_optimizer")
def test_small_gradients_are_not_clipped(sess):
    v = tf.Variable([1.0, 2.0])
    opt = k05.build_optimizer(0.01 * tf.reduce_sum(tf.square(v)))
    sess.run(tf.compat.v1.global_variables_initializer())
    grads = sess.run(opt["gradients"])
    np.testing.assert_allclose(grads[0], [0.02, 0.04], atol=1e-6, err_msg="a gradient whose norm is under 1.25 stays as it is")


# --------------------------------------------------------------------------- perplexity & sampling
@pytest.mark.covers("logprob")
def test_logprob_matches_numpy():
    rng = np.random.RandomState(5)
    predictions = _np_softmax(rng.normal(size=(6, V)))
    labels = np.eye(V)[rng.randint(0, V, size=6)]
    want = float(np.mean(-np.log(np.sum(predictions * labels, axis=1))))
    got = k05.logprob(predictions.copy(), labels)
    if abs(got - want / V) < 1e-6:
        pytest.fail(f"logprob {got:.6f} is the mean over all N * 27 entries: sum -labels * log(predictions) and "
                    f"divide by N (rows), expected {want:.6f}", pytrace=False)
    if abs(got - want * len(labels) / V) < 1e-6:
        pytest.fail(f"logprob: {got:.6f} is the sum divided by 27 (labels.shape[1], the columns): divide by N, the "
                    f"number of rows (labels.shape[0] = {len(labels)}), expected {want:.6f}", pytrace=False)
    assert abs(got - want) < 1e-6 * want, f"logprob: expected the mean negative log-probability of the labels {want:.6f}, got {got}"


@pytest.mark.covers("logprob")
def test_logprob_floors_zero_probabilities():
    predictions = np.array([[0.0, 1.0], [0.5, 0.5]])
    keep = predictions.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        got = k05.logprob(predictions, np.array([[1.0, 0.0], [1.0, 0.0]]))
    want = (-math.log(1e-10) - math.log(0.5)) / 2
    assert np.isfinite(got), f"logprob gave {got} for a zero probability: count probabilities below 1e-10 as 1e-10"
    assert abs(got - want) < 1e-5, f"a zero probability counts as 1e-10: expected {want:.4f}, got {got}"
    assert np.array_equal(predictions, keep), "logprob must not change the caller's predictions array"
    above = k05.logprob(np.array([[3e-10, 1.0 - 3e-10]]), np.array([[1.0, 0.0]]))
    assert abs(above + math.log(3e-10)) < 1e-5, (
        f"logprob: a probability of 3e-10, above the floor, counts as it is: expected {-math.log(3e-10):.4f}, got "
        f"{above:.4f}" + (": that is -log(p + 1e-10); floor with np.maximum(p, 1e-10), do not add"
                          if abs(above + math.log(4e-10)) < 1e-4 else "")
    )


@pytest.mark.covers("logprob")
def test_uniform_predictor_has_perplexity_27():
    labels = np.eye(V)[np.random.RandomState(6).randint(0, V, size=50)]
    got = math.exp(k05.logprob(np.full((50, V), 1.0 / V), labels))
    assert abs(got - 27.0) < 1e-4, f"a model that spreads probability evenly over 27 symbols has perplexity 27, got {got}"


@pytest.mark.covers("sample_distribution")
def test_sample_distribution_frequencies():
    p = np.array([0.5, 0.25, 0.0, 0.15, 0.1])
    n = 5000  # 20,000 calls took 7.6 s (30 s on a busy machine: a right answer timed out in review Z9)
    draws = [k05.sample_distribution(p) for _ in range(n)]
    assert all(isinstance(d, (int, np.integer)) and 0 <= d < len(p) for d in draws), (
        f"sample_distribution returns an int index into the distribution, got {draws[:5]}"
    )
    counts = np.bincount(draws, minlength=len(p))
    assert counts[2] == 0, f"index 2 has probability 0 but was drawn {counts[2]} times"
    nz = p > 0
    chi2 = float(np.sum((counts[nz] - n * p[nz]) ** 2 / (n * p[nz])))
    print(f"sample_distribution: counts {counts.tolist()} for p {p.tolist()}, chi-square {chi2:.2f} (3 dof)")
    # 3 degrees of freedom: P(chi2 > 21.1) = 1e-4 for a correct sampler
    assert chi2 < 21.1, f"frequencies {counts.tolist()} do not follow {p.tolist()} (chi-square {chi2:.1f} > 21.1)"


@pytest.mark.covers("sample_distribution")
def test_sample_distribution_follows_random_seed():
    # The tests (and train's samples) are reproduced by random.seed: the draw must come from Python's random module.
    # numpy's generator is set to a different state before each run, so a draw from np.random shows.
    p = np.array([0.1, 0.0, 0.6, 0.3])
    runs = []
    for np_seed in (1, 2):
        random.seed(SEED)
        np.random.seed(np_seed)
        runs.append([int(k05.sample_distribution(p)) for _ in range(40)])
    differ = sum(a != b for a, b in zip(*runs))
    assert not differ, (
        f"sample_distribution: draw with Python's random module (random.uniform(0, 1)): after the same "
        f"random.seed, two runs of 40 draws differ in {differ} places (random.seed does not reach np.random)"
    )
    random.seed(SEED)
    uniforms = [random.uniform(0, 1) for _ in range(40)]
    want = [int(np.searchsorted(np.cumsum(p), r)) for r in uniforms]
    assert runs[0] == want, (
        f"sample_distribution: with Python's random module, each draw is the first index whose cumulative sum "
        f"reaches one random.uniform(0, 1): after random.seed expected {want[:12]}..., got {runs[0][:12]}..."
    )


@pytest.mark.covers("sample_distribution")
def test_sample_distribution_gives_the_last_index_past_a_short_sum():
    # float32 rounding can leave a prediction's sum a little below 1 (a review saw 1 draw in 200,000 land past 0.99999); a
    # row summing to 0.6 makes those draws common: they give the last index, never None or len(distribution)
    p = np.array([0.2, 0.1, 0.3], np.float32)
    random.seed(SEED)
    got = [k05.sample_distribution(p) for _ in range(60)]
    random.seed(SEED)
    draws = [random.uniform(0, 1) for _ in range(60)]
    past = [g for g, r in zip(got, draws) if r > 0.6 + 1e-6]
    bad = [g for g in past if not isinstance(g, (int, np.integer)) or g != len(p) - 1]
    assert past and not bad, (
        f"sample_distribution: on {p.tolist()} (a sum below 1, as float32 rounding can leave a prediction's) a draw "
        f"past the sum gave {bad[0] if bad else None!r}: once the walk ends, return the last index, "
        "len(distribution) - 1, so the result is always an int in range(len(distribution))"
    )




@pytest.mark.covers("sample", "sample_distribution")
def test_sample_is_one_hot_of_the_draw():
    prediction = np.zeros((1, V))
    prediction[0, 7] = 1.0
    got = np.asarray(k05.sample(prediction))
    assert got.shape == (1, V), f"sample: expected a [1, 27] one-hot array, got shape {got.shape}"
    assert got[0, 7] == 1.0 and got.sum() == 1.0, (
        f"sample: a prediction certain of id 7 must give the one-hot of 7, got {np.argmax(got)}"
    )
    assert got.dtype == np.float32, (
        f"sample: expected a float32 one-hot (the docstring's dtype, what the sample_input placeholder takes), got "
        f"{got.dtype}: np.zeros(shape=[1, 27], dtype=np.float32)"
    )


@pytest.mark.covers("sample", "sample_distribution")
def test_sample_draws_from_the_prediction():
    prediction = np.zeros((1, V))
    prediction[0, 3], prediction[0, 9] = 0.6, 0.4
    ids = [int(np.argmax(k05.sample(prediction))) for _ in range(300)]
    counts = {k: ids.count(k) for k in sorted(set(ids))}
    assert set(ids) <= {3, 9}, f"only ids 3 and 9 have probability, got draws {counts}"
    assert counts.get(9, 0) > 0, (
        f"300 samples of a 0.6 / 0.4 prediction were all id 3 (the most likely): sample must DRAW with "
        f"sample_distribution(prediction[0]), not take the argmax"
    )


@pytest.mark.covers("random_distribution")
def test_random_distribution_is_a_distribution():
    a, b = k05.random_distribution(), k05.random_distribution()
    assert a.shape == (1, V), f"expected shape [1, 27], got {a.shape}"
    assert (a > 0).all() and abs(a.sum() - 1.0) < 1e-6, f"expected positive entries summing to 1, got sum {a.sum()}"
    assert not np.allclose(a, b), "two calls should give different random distributions"


def _sampler_with_values(sess, num_nodes=8, seed=7):
    params = k05.create_parameters(V, num_nodes)
    n_trainable = len(tf.compat.v1.trainable_variables())
    try:
        sampler = k05.build_sampling_model(params)
    except (ValueError, tf.errors.InvalidArgumentError):
        constant = k05.NUM_NODES  # what a learner may write where params' size is meant
        sized = [v for v in tf.compat.v1.global_variables() if v.shape.as_list() == [1, constant]]
        if sized and num_nodes != constant:
            pytest.fail(f"build_sampling_model: saved_sample_output / saved_sample_state are [1, {constant}] but "
                        f"params hold {num_nodes} nodes: take N from params, params['im'].shape[0], not NUM_NODES",
                        pytrace=False)
        raise
    sess.run(tf.compat.v1.global_variables_initializer())
    values = _random_params(np.random.RandomState(seed), num_nodes)
    _load_params(sess, params, values)
    return params, sampler, values, n_trainable


@pytest.mark.covers("build_sampling_model", "lstm_cell", "create_parameters")
def test_sampling_model_reuses_weights_and_steps(sess):
    params, sampler, values, n_trainable = _sampler_with_values(sess)
    assert len(tf.compat.v1.trainable_variables()) == n_trainable, (
        "build_sampling_model created new trainable variables: it must reuse params (the trained weights); "
        "the saved sample output/state are trainable=False"
    )
    assert sampler["sample_input"].shape.as_list() == [1, V], "sample_input must be a [1, 27] placeholder"
    x = np.eye(V, dtype=np.float32)[[5]]
    zeros = np.zeros((1, 8), np.float32)
    o1, s1 = _np_cell(x, zeros, zeros, values)
    o2, _ = _np_cell(x, o1, s1, values)
    got1 = sess.run(sampler["sample_prediction"], {sampler["sample_input"]: x})
    got2 = sess.run(sampler["sample_prediction"], {sampler["sample_input"]: x})
    np.testing.assert_allclose(got1, _np_softmax(o1 @ values["w"] + values["b"]), atol=1e-5,
                               err_msg="first prediction: softmax(xw_plus_b(lstm_cell(input, 0, 0) output, w, b))")
    if np.allclose(got2, got1, atol=1e-6):
        pytest.fail("the second prediction equals the first: each run must move the model one character on, so build "
                    "sample_prediction under tf.control_dependencies([saved_sample_output.assign(...), "
                    "saved_sample_state.assign(...)])", pytrace=False)
    np.testing.assert_allclose(got2, _np_softmax(o2 @ values["w"] + values["b"]), atol=1e-5,
                               err_msg="second prediction must continue from the saved sample output/state "
                               "(tf.control_dependencies on assigning them)")


@pytest.mark.covers("build_sampling_model", "lstm_cell", "create_parameters")
def test_reset_sample_state_zeroes_it(sess):
    params, sampler, values, _ = _sampler_with_values(sess)
    x = np.eye(V, dtype=np.float32)[[3]]
    first = sess.run(sampler["sample_prediction"], {sampler["sample_input"]: x})
    sess.run(sampler["sample_prediction"], {sampler["sample_input"]: x})
    sess.run(sampler["reset_sample_state"])
    out, state = sess.run([sampler["saved_sample_output"], sampler["saved_sample_state"]])
    assert not out.any() and not state.any(), "reset_sample_state must set the saved sample output AND state to zeros"
    again = sess.run(sampler["sample_prediction"], {sampler["sample_input"]: x})
    np.testing.assert_allclose(again, first, atol=1e-6, err_msg="after a reset the model must predict as from the start")
    reset = sampler["reset_sample_state"]
    assert isinstance(reset, tf.Operation), (
        f"build_sampling_model: reset_sample_state should be ONE op, tf.group(saved_sample_output.assign(...), "
        f"saved_sample_state.assign(...)), got a {type(reset).__name__}: the slides run it as reset_sample_state.run()"
    )


class _FakeSampler:
    """A session and a sampler dict without TensorFlow: the "model" predicts, for sure, the letter after
    the one it is fed (' ' -> 'a', 'a' -> 'b', ..., 'z' -> 'a'). It records resets and predictions."""

    KEYS = ("sample_input", "saved_sample_output", "saved_sample_state", "reset_sample_state", "sample_prediction")

    class _Handle:
        def __init__(self, name):
            self.name = name

        def __repr__(self):
            return f"sampler[{self.name!r}]"

        def run(self, feed_dict=None, session=None):  # Operation.run, as the slides reset the state
            return self._through(session, feed_dict, "run")

        def eval(self, feed_dict=None, session=None):  # Tensor.eval, as the slides run sample_prediction
            return self._through(session, feed_dict, "eval")

        def _through(self, session, feed_dict, how):
            session = session or (_FakeSampler.default[-1] if _FakeSampler.default else None)
            assert session is not None, (
                f"generate: sampler[{self.name!r}].{how}() without session=: there is no default session here, "
                f"pass the one generate is given, .{how}(session=session), or use session.run(...)")
            return session.run(self, feed_dict)

    default = []  # the stand-in sessions entered with as_default(), innermost last

    @contextlib.contextmanager
    def as_default(self):  # `with session.as_default():` then .run() / .eval() without session=, as the slides
        _FakeSampler.default.append(self)
        try:
            yield self
        finally:
            _FakeSampler.default.pop()

    def __init__(self):
        self.sampler = {k: self._Handle(k) for k in self.KEYS}
        self.calls = []  # "reset" or the id fed to sample_prediction
        self.fed = []  # the arrays fed to sample_input, in order
        self.starts = []  # indices into fed of each sample's first row (after a reset)

    def run(self, fetches, feed_dict=None, **kwargs):
        if isinstance(fetches, (list, tuple)):
            return [self.run(f, feed_dict) for f in fetches]
        if fetches is self.sampler["reset_sample_state"]:
            self.calls.append("reset")
            return None
        if fetches is self.sampler["sample_prediction"]:
            fed = (feed_dict or {}).get(self.sampler["sample_input"])
            assert fed is not None, "generate ran sample_prediction without feeding sampler['sample_input']"
            fed = np.asarray(fed)
            assert fed.shape == (1, V), f"generate fed sample_input an array of shape {fed.shape}, expected (1, 27)"
            if not self.calls or self.calls[-1] == "reset":
                self.starts.append(len(self.fed))  # the first row a sample feeds: its drawn first character
            self.fed.append(fed)
            k = int(np.argmax(fed))
            self.calls.append(k)
            # the next letter, all but certain: every other character keeps 1e-9, so a prediction fed back as it is
            # is not a one-hot row (sampling from it gives the next letter but once in ~40 million draws)
            prediction = np.full((1, V), 1e-9, np.float32)
            prediction[0, k % 26 + 1] = 1.0 - (V - 1) * 1e-9
            return prediction
        raise AssertionError(f"generate ran {fetches!r}: it needs only sampler['reset_sample_state'] and "
                             "sampler['sample_prediction']")


@pytest.mark.covers("generate", "sample", "random_distribution", "characters")
def test_generate_feeds_back_each_sample_and_resets():
    fake = _FakeSampler()
    samples = k05.generate(fake, fake.sampler, num_samples=3, length=6)
    assert isinstance(samples, list) and len(samples) == 3, f"generate: expected a list of 3 strings, got {samples!r}"
    assert all(isinstance(s, str) and len(s) == 6 for s in samples), (
        f"generate: expected 3 strings of 6 characters, got {[len(s) if isinstance(s, str) else type(s).__name__ for s in samples]}"
        + next((f": the first character counts, so sample length - 1 = 5 more (one {'too many' if n > 6 else 'too few'})"
                for n in sorted({len(s) for s in samples if isinstance(s, str)}) if abs(n - 6) == 1), "")
    )
    following = {c: SYMBOLS[SYMBOLS.index(c) % 26 + 1] for c in SYMBOLS}
    for s in samples:
        wrong = [k for k in range(1, 6) if s[k] != following[s[k - 1]]]
        assert not wrong, (
            f"generate: with a model that always predicts the next letter, a sample starting with {s[0]!r} reads "
            f"{s[0] + ''.join(_walk(s[0], 5))!r}, got {s!r}: feed back the "
            "character you just sampled (sample(prediction)) as the next input"
        )
    not_one_hot = [k for k, f in enumerate(fake.fed) if not (set(np.unique(f)) <= {0.0, 1.0} and f.sum() == 1.0)]
    if any(k in fake.starts for k in not_one_hot):
        pytest.fail("generate: the first character must be drawn and fed one-hot, feed = sample(random_distribution()), "
                    "not the distribution itself", pytrace=False)
    assert not not_one_hot, (
        f"generate: feed back the character you sampled as a one-hot row, feed = sample(prediction), not the "
        f"prediction itself: sample_input got a row with {int(np.count_nonzero(fake.fed[not_one_hot[0]])) if not_one_hot else 0} "
        "non-zero entries"
    )
    groups, current = [], None
    for call in fake.calls:
        if call == "reset":
            current = []
            groups.append(current)
        elif current is None:
            pytest.fail("generate ran sample_prediction before resetting the sampling state: run "
                        "sampler['reset_sample_state'] at the start of each sample", pytrace=False)
        else:
            current.append(call)
    assert len(groups) == 3, (
        f"generate: the sampling state was reset {len(groups)} times for 3 samples: reset it at the start of EACH sample, "
        "so one sample does not continue from the previous one"
    )
    assert all(len(g) in (5, 6) for g in groups), (
        f"generate: each 6-character sample needs 5 predictions (the first character comes from random_distribution), "
        f"got {[len(g) for g in groups]}"
    )


@pytest.mark.covers("generate", "sample", "characters")
def test_generate_samples_the_first_character(monkeypatch):
    # random_distribution is swapped for a fixed 0.6 / 0.4 row over 'c' and 'i': the first characters must be
    # DRAWN from it (both letters appear), and the model is fed one-hot characters, never a probability row.
    start = np.zeros((1, V))
    start[0, 3], start[0, 9] = 0.6, 0.4
    module = sys.modules[k05.generate.__module__]
    monkeypatch.setattr(module, "random_distribution", lambda: start.copy())
    fake = _FakeSampler()
    samples = k05.generate(fake, fake.sampler, num_samples=40, length=2)
    firsts = "".join(s[0] for s in samples if isinstance(s, str) and s)
    assert set(firsts) == {"c", "i"}, (
        f"generate: the first character must be drawn, feed = sample(random_distribution()): from a 0.6 / 0.4 "
        f"distribution over 'c' and 'i', 40 samples started with {firsts!r}"
        + (": draw it anew for EACH sample, inside the loop over samples" if len(set(firsts)) == 1 and len(firsts) > 1
           else "")
    )
    not_one_hot = [f for f in fake.fed if not (set(np.unique(f)) <= {0.0, 1.0} and f.sum() == 1.0)]
    assert not not_one_hot, (
        f"generate: feed the model one-hot characters, feed = sample(random_distribution()) and then "
        f"sample(prediction), not a probability row (it was fed a row summing to {not_one_hot[0].sum() if not_one_hot else 0:.3f} "
        f"with {int(np.count_nonzero(not_one_hot[0])) if not_one_hot else 0} non-zero entries)"
    )


def _walk(c, n):
    out = []
    for _ in range(n):
        c = SYMBOLS[SYMBOLS.index(c) % 26 + 1]
        out.append(c)
    return out


@pytest.mark.covers("generate", "build_sampling_model", "sample", "random_distribution", "characters")
def test_generate_gives_strings_of_the_vocabulary(sess):
    _, sampler, _, _ = _sampler_with_values(sess)
    samples = k05.generate(sess, sampler, num_samples=3, length=20)
    assert len(samples) == 3 and all(isinstance(s, str) and len(s) == 20 for s in samples), (
        f"expected 3 strings of 20 characters, got {[len(s) for s in samples]}"
    )
    assert set("".join(samples)) <= set(SYMBOLS), f"samples must use the 27 symbols: {samples}"


@pytest.mark.covers("validation_perplexity", "build_sampling_model", "logprob", "BatchGenerator")
def test_validation_perplexity_matches_numpy(sess):
    _, sampler, values, _ = _sampler_with_values(sess)
    text = "the cat sat on the mat"
    sess.run(sampler["sample_prediction"], {sampler["sample_input"]: np.eye(V, dtype=np.float32)[[1]]})  # dirty state
    got = k05.validation_perplexity(sess, sampler, text)
    ids = [0 if c == " " else ord(c) - 96 for c in text]

    def probabilities(reset):
        """Per character: the probability given to the next character, and to the character just fed."""
        o = s = np.zeros((1, 8), np.float32)
        if not reset:  # continue from the dirty state: one step on 'a' (id 1) from zeros
            o, s = _np_cell(np.eye(V, dtype=np.float32)[[1]], o, s, values)
        out = []
        for k in range(len(text)):  # each character predicts the next; the last one wraps to the first
            o, s = _np_cell(np.eye(V, dtype=np.float32)[[ids[k]]], o, s, values)
            p = _np_softmax(o @ values["w"] + values["b"])[0]
            out.append((float(p[ids[(k + 1) % len(text)]]), float(p[ids[k]])))
        return out

    def reference(reset):
        return math.exp(-sum(math.log(n) for n, _ in probabilities(reset)) / len(text))

    want = reference(reset=True)
    if abs(got - want) >= 1e-3 * want and abs(got - reference(reset=False)) < 1e-3 * want:
        pytest.fail(f"perplexity {got:.4f} continues from the state the sampler was left in, expected {want:.4f}: "
                    "run sampler['reset_sample_state'] first", pytrace=False)
    terms = probabilities(reset=True)
    short = [math.log(n) for n, _ in terms[:-1]]
    variants = [
        ([math.exp(-sum(short) / len(short)), math.exp(-sum(short) / len(text))],
         f"it scores {len(text) - 1} predictions: the last character predicts the first too (the batches wrap around), "
         "so feed every one of the len(valid_text) characters"),
        ([float(np.mean([1.0 / n for n, _ in terms]))],
         "that is the mean of the per-character perplexities: take exp of the MEAN log-probability, "
         "exp(sum of logprob(predictions, b[1]) / len(valid_text))"),
        ([math.exp(-sum(math.log(f) for _, f in terms) / len(text))],
         "each prediction is scored against the character just fed, b[0]: score it against the NEXT one, b[1]"),
        ([math.log(want)], "that is the mean log-probability itself, log of the perplexity: return exp of it"),
    ]
    for values_, why in variants:
        if abs(got - want) >= 1e-3 * want and any(abs(got - v) < 1e-4 * v for v in values_):
            pytest.fail(f"validation_perplexity: expected perplexity {want:.4f}, got {got:.4f}: {why}", pytrace=False)
    assert abs(got - want) < 1e-3 * want, (
        f"expected perplexity {want:.4f}, got {got:.4f}: reset the sampling state first, feed each character "
        "and score the prediction against the NEXT one, len(valid_text) times"
    )
    assert isinstance(got, float), (
        f"validation_perplexity: returned a {type(got).__module__}.{type(got).__name__}, where the docstring says a "
        "float: return float(np.exp(...)) (a numpy float32 is no Python float, and json cannot write it)")
    before = sess.graph.version
    k05.validation_perplexity(sess, sampler, text)
    grown = sess.graph.version - before
    assert grown == 0, (
        f"validation_perplexity: a second call added {grown} ops to the graph: run the sampler's own ops "
        "(sampler['reset_sample_state'], sampler['sample_prediction']) and build nothing here (a "
        "variables_initializer or tf.identity built inside is a new op at every call; train calls it at every summary)"
    )


@pytest.mark.covers("validation_perplexity", "build_sampling_model", "logprob", "BatchGenerator")
def test_uniform_model_validation_perplexity_is_27(sess):
    params, sampler, _, _ = _sampler_with_values(sess)
    sess.run([params["w"].assign(tf.zeros_like(params["w"])), params["b"].assign(tf.zeros_like(params["b"]))])
    got = k05.validation_perplexity(sess, sampler, "any text will do")
    assert abs(got - 27.0) < 1e-3, f"with a zero classifier every prediction is uniform: perplexity 27, got {got:.4f}"


# --------------------------------------------------------------------------- train's summaries
class _ChainBatches:
    """A stand-in for BatchGenerator (the last batch of a call first in the next): seeded one-hot batches whose rows
    mostly step to the next id (c -> c + 1 with probability 0.9), so predictions scored against the labels and
    against the inputs soon differ."""

    def __init__(self, batch_size, num_unrollings, seed=0):
        self._rng, self._b, self._u = np.random.RandomState(seed), batch_size, num_unrollings
        self.given = []  # every call's batches, in order
        self._ids = self._rng.randint(0, V, batch_size)
        self._last = self._one()

    def _one(self):
        jump = self._rng.randint(0, V, self._b)
        self._ids = np.where(self._rng.uniform(size=self._b) < 0.9, (self._ids + 1) % V, jump)
        return np.eye(V, dtype=np.float32)[self._ids]

    def next(self):
        batches = [self._last] + [self._one() for _ in range(self._u)]
        self._last = batches[-1]
        self.given.append(batches)
        return batches


def _watched_train(monkeypatch, num_steps, summary_frequency, sample_frequency=1000):
    """train() on a small model (8 nodes, batch 8, 3 unrollings) with every run of its loss recorded.

    The learner's train calls create_parameters / build_training_model / generate by name: the test swaps in a
    smaller model whose loss tensor records its value each time a session run computes it, and a generate that
    skips the 400 sampling runs. What train got from each step's session.run is then known exactly.
    """
    losses, fed = [], []  # each run of the loss: its value, and the first and last batch fed to train_data
    build, create = k05.build_training_model, k05.create_parameters
    watched, logged = {}, []  # the model and optimizer dicts train got; what it logged

    def recorded(value, first, last):
        losses.append(float(value))
        fed.append((first, last))
        return value

    def small_model(params, *args, **kwargs):
        model = build(params, batch_size=8, num_unrollings=3)
        loss, data = model["loss"], model["train_data"]
        record = tf.compat.v1.numpy_function(recorded, [loss, data[0], data[-1]], loss.dtype)
        with tf.control_dependencies([record]):
            watched["model"] = dict(model, loss=tf.identity(loss))
            return watched["model"]

    module = sys.modules[k05.train.__module__]  # the module itself (a kata's stand-in is read-only)
    optimizer = module.build_optimizer

    def build_optimizer(*args, **kwargs):
        watched["opt"] = optimizer(*args, **kwargs)
        return watched["opt"]

    monkeypatch.setattr(module, "create_parameters", lambda *args, **kwargs: create(num_nodes=8))
    monkeypatch.setattr(module, "build_training_model", small_model)
    monkeypatch.setattr(module, "build_optimizer", build_optimizer)
    monkeypatch.setattr(module, "generate", lambda *args, **kwargs: ["a" * 80] * 5)
    measured = []  # the global_step at each validation perplexity train asked for (a stand-in: 27.0)

    def validation_perplexity(session, *args, **kwargs):
        opt = watched.get("opt")
        measured.append(int(session.run(opt["global_step"])) if isinstance(opt, dict) and "global_step" in opt else None)
        return 27.0

    monkeypatch.setattr(module, "validation_perplexity", validation_perplexity)
    # the sizes as constants too, for a train that writes BATCH_SIZE / NUM_UNROLLINGS where the docstring names them
    for name, value in (("BATCH_SIZE", 8), ("NUM_UNROLLINGS", 3), ("NUM_NODES", 8)):
        monkeypatch.setattr(module, name, value)
    source = _ChainBatches(8, 3)
    try:
        with recording_session_runs() as runs:
            history = k05.train("unused: train_batches is given", "the cat sat", num_steps=num_steps,
                                summary_frequency=summary_frequency, sample_frequency=sample_frequency,
                                train_batches=source, log=lambda *args: logged.append(" ".join(map(str, args))))
    except (ValueError, IndexError, tf.errors.OpError) as exc:
        if source.given or "shape" not in str(exc):
            raise
        pytest.fail("train: it never took a batch from train_batches (the test passes a small generator), then a feed "
                    f"failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}): when train_batches is given, "
                    "each step's batches come from train_batches.next(); build a BatchGenerator only when it is None",
                    pytrace=False)
    assert losses, ("train never ran the loss of build_training_model(params): build the model with "
                    "create_parameters() and build_training_model(params) and run its loss every step")
    assert len(losses) == num_steps, (
        f"train ran the loss {len(losses)} times in {num_steps} steps: run the train op, the loss, the predictions "
        "and the learning rate together, in ONE session.run per step"
    )
    _one_run_per_step(runs, watched, num_steps)
    assert len(source.given) == num_steps, (
        f"train: {len(source.given)} calls of train_batches.next() in {num_steps} steps: when train_batches is given, "
        "each step's batches come from train_batches.next() (build a BatchGenerator only when it is None)"
    )
    for k, ((first, last), given) in enumerate(zip(fed, source.given)):
        if np.array_equal(first, given[0]) and np.array_equal(last, given[-1]):
            continue
        how = ("in reverse order (train_data[0] got the last)" if np.array_equal(first, given[-1])
               else "not as train_batches.next() returned them")
        pytest.fail(f"train: step {k} fed its batches to train_data {how}: feed train_data[i] the i-th batch of that "
                    "step's train_batches.next(), dict(zip(model['train_data'], batches))", pytrace=False)
    samples = {"a" * 80}
    told = [line for line in logged if line.strip() not in samples and len(set(line.strip())) > 1]  # not a sample, not "===="
    summaries = len(history.get("step", [])) if isinstance(history, dict) else 0
    assert len(told) >= summaries, (
        f"train: log got {len(told)} lines besides the samples for {summaries} summaries: log(...) each summary's "
        "mean loss, learning rate and perplexities (log, not print: the caller decides where the lines go)"
    )
    sampled = len(history.get("samples", {})) if isinstance(history, dict) else 0
    shown = sum(line.strip() in samples for line in logged)
    assert shown >= 5 * sampled, (
        f"train: {sampled * 5} samples were generated but {shown} passed to log: log each of the 5 samples (the "
        "tutorial shows them between two lines of '=')"
    )
    steps = list(history.get("step", [])) if isinstance(history, dict) else []
    if steps and measured == steps != [s + 1 for s in steps]:
        pytest.fail(f"train: the validation perplexity of the summaries at steps {steps} was measured at global_step "
                    f"{measured}, before each step's update: measure it after the step's session.run, so it scores the "
                    "model the summary reports", pytrace=False)
    return history, losses


def _one_run_per_step(runs, watched, num_steps):
    """Each step's train op ran in the same session.run as the loss, the predictions and the learning rate."""
    model, opt = watched.get("model"), watched.get("opt")
    if not isinstance(model, dict) or not isinstance(opt, dict) or "train_op" not in opt:
        return  # the tests of build_optimizer and build_training_model say what is missing
    step_op = opt["train_op"]
    wanted = {"the loss": model.get("loss"), "the predictions": model.get("train_prediction"),
              "the learning rate": opt.get("learning_rate")}

    def has(run, tensor):
        return any(f is tensor or (isinstance(f, str) and getattr(tensor, "name", None) in (f, f + ":0"))
                   for f in tf.nest.flatten(run))

    steps = [run for run in runs if has(run, step_op)]
    assert len(steps) == num_steps, (
        f"train ran build_optimizer's train_op in {len(steps)} session.runs in {num_steps} steps: run it once per step, "
        "together with the loss, the predictions and the learning rate"
    )
    missing = [name for name, tensor in wanted.items() if tensor is not None and not has(steps[0], tensor)]
    if missing:
        pytest.fail(f"train: the session.run of the train op did not fetch {' and '.join(missing)}: run the train op, "
                    "the loss, the predictions and the learning rate in ONE session.run per step (a second run computes "
                    "the model again from the state the step just saved, so its loss and predictions are not the "
                    "step's, and the rate it reads is the next step's)", pytrace=False)


@pytest.mark.covers("train")
def test_train_summaries_report_their_interval(monkeypatch):
    frequency, num_steps = 4, 9  # summaries at steps 0, 4, 8
    history, losses = _watched_train(monkeypatch, num_steps, frequency)
    steps = list(history.get("step", []))
    assert steps == [0, 4, 8], (
        f"train: with summary_frequency={frequency} and num_steps={num_steps} the summaries are at steps [0, 4, 8] "
        f"(every summary_frequency steps, step 0 included), got {steps}"
    )
    means = [float(m) for m in history["mean_loss"]]
    ppl = [float(p) for p in history["minibatch_perplexity"]]
    assert len(means) == len(ppl) == len(steps), (
        f"train: one mean_loss and one minibatch_perplexity per summary ({len(steps)}), got {len(means)} and {len(ppl)}"
    )
    for i, step in enumerate(steps):
        first = steps[i - 1] + 1 if i else 0
        interval = losses[first : step + 1]
        want, got = float(np.mean(interval)), means[i]
        if abs(got - want) <= 1e-4 * max(1.0, abs(want)):
            continue
        should = (f"the loss of step 0 is {want:.4f}" if step == 0 else
                  f"the mean of the losses of steps {first}-{step} (the steps since the previous summary) is {want:.4f}")
        head = f"train: the mean loss of the summary at step {step} is {got:.4f}, but {should}"
        close = lambda v: abs(got - v) <= 1e-4 * max(1.0, abs(v))  # noqa: E731
        if step == 0 and close(interval[0] / frequency):
            why = (f"at step 0 ONE loss was summed, yet it was divided by summary_frequency ({frequency}), so the "
                   "first summary sits far below the loss at step 0: divide the sum by the number of steps summed "
                   "(a count: 1 at step 0, summary_frequency after)")
        elif i and any(close(v) for v in (float(np.mean(losses[: step + 1])), sum(losses[: step + 1]) / len(interval),
                                    (means[i - 1] + sum(interval)) / len(interval),
                                    (means[i - 1] + sum(interval)) / (len(interval) + 1))):
            why = ("it still holds losses of earlier intervals: reset the running sum (and the count) to 0 after "
                   "each summary")
        elif any(close(sum(interval) / n) for n in range(1, 2 * frequency + 2)):
            why = (f"{len(interval)} losses were summed but divided by another number: divide by the number of "
                   "steps summed (the count)")
        else:
            why = ("add every step's loss, and at each summary divide the sum by the number of steps added, log it, "
                   "then reset both to 0")
        pytest.fail(f"{head}: {why}", pytrace=False)
    for i, step in enumerate(steps):
        want, got = math.exp(losses[step]), ppl[i]
        if abs(got - want) <= 1e-4 * want:  # logprob and the loss agree to ~1e-6
            continue
        if abs(got - losses[step]) <= 1e-3 * max(1.0, losses[step]):
            why = "that is the log-probability itself: the perplexity is exp(logprob(predictions, labels))"
        else:
            why = ("score that step's predictions against its LABELS, np.concatenate(batches[1:]) (the inputs "
                   "shifted by one), not against the inputs batches[:-1]: exp(logprob(predictions, labels))")
        pytest.fail(f"train: the minibatch perplexity at step {step} is {got:.3f}, but exp of that step's loss is "
                    f"{want:.3f}: {why}", pytrace=False)


@pytest.mark.covers("train")
def test_train_logs_the_learning_rate_it_ran(monkeypatch):
    # build_optimizer's learning_rate is swapped for a tensor that gives 7.0, 7.25, 7.5, ... one value per run
    # that computes it: the rate logged at a summary must be one the session gave, not a number train made up
    module = sys.modules[k05.train.__module__]  # the module itself (a kata's stand-in is read-only)
    real, rates = module.build_optimizer, []

    def next_rate():
        rates.append(7.0 + 0.25 * len(rates))
        return np.float32(rates[-1])

    def build_optimizer(loss, *args, **kwargs):
        opt = real(loss, *args, **kwargs)
        return dict(opt, learning_rate=tf.compat.v1.numpy_function(next_rate, [], tf.float32))

    monkeypatch.setattr(module, "build_optimizer", build_optimizer)
    history, _ = _watched_train(monkeypatch, 9, 4)  # summaries at steps 0, 4, 8
    logged = [float(v) for v in history.get("learning_rate", [])]
    made_up = [v for v in logged if not any(abs(v - r) < 1e-6 for r in rates)]
    assert len(logged) == 3 and not made_up, (
        f"train: history['learning_rate'] is {logged}, but build_optimizer's learning_rate gave "
        f"{[rates[s] for s in (0, 4, 8) if s < len(rates)] or rates} at steps 0, 4 and 8: log the rate fetched "
        "with that step's session.run (k05's falls from 10 to 1 at step 5000), not a number of your own"
    )


@pytest.mark.covers("train")
def test_train_samples_every_sample_frequency_steps(monkeypatch):
    history, _ = _watched_train(monkeypatch, 9, 2, sample_frequency=4)  # summaries at 0, 2, 4, 6, 8
    got = sorted(history.get("samples", {}))
    assert got == [0, 4, 8], (
        f"train: with summary_frequency=2 and sample_frequency=4 the samples belong to steps [0, 4, 8] (every "
        f"sample_frequency steps, step 0 included), got {got}"
        + (": that is every summary; generate only when step % sample_frequency == 0" if got == [0, 2, 4, 6, 8] else "")
    )


# --------------------------------------------------------------------------- differential checks (reference)
# Yours against solutions/ on generated cases, smallest first (tfkata.differential). Functions that build
# graphs get constant params (or one seeded set of values), so both sides compute with the same numbers;
# the random ones (sample_distribution, sample, random_distribution, generate) run after the same seeds.
# Skipped: train (the training loop; the training tests below run it).
REF = reference("k05")
_ONE_HOT = np.eye(V, dtype=np.float32)


def _warned(call, char):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = call()
    # the character as it is or as repr shows it ('\n' for a newline): either way the message names it
    named = (char, repr(char)[1:-1])
    return got, type(got).__name__, any(issubclass(w.category, UserWarning) and any(n in str(w.message) for n in named)
                                        for w in caught)


def _run_char2id(mod, case):
    return [_warned(lambda: mod.char2id(c), c) for c in case.args]


CHAR2ID_CASES = [
    Case("' ', 'a', 'm' and 'z'", " amz"),
    Case("'A' (upper case is unexpected: warn, 0)", "A"),
    Case("'{' and '`' (just after 'z' and just before 'a' in ASCII)", "{`"),
    Case("the digit '7' and the newline '\\n'", "7\n"),
]


@pytest.mark.differential
@pytest.mark.covers("char2id")
def test_char2id_matches_reference():
    compare("char2id", k05, REF, CHAR2ID_CASES, _run_char2id,
            hint="(id, type, warned) per character: only ' ' and a..z have ids; anything else warns and gives 0")


@pytest.mark.differential
@pytest.mark.covers("id2char")
def test_id2char_matches_reference():
    cases = [Case("id 0", [0]), Case("ids 1 and 26", [1, 26]), Case("the numpy ids [13, 0, 5]", list(np.array([13, 0, 5])))]
    compare("id2char", k05, REF, cases, lambda mod, case: [mod.id2char(i) for i in case.args],
            hint="0 -> ' ', 1..26 -> 'a'..'z'")


def _run_batch_generator(mod, case):
    text, batch_size, num_unrollings, calls = case.args
    gen = mod.BatchGenerator(text, batch_size, num_unrollings)
    got = [[int(c) for c in gen._cursor]]
    for _ in range(calls):
        batches = gen.next()
        got.append(([np.asarray(b) for b in batches], [np.asarray(b).dtype.name for b in batches],
                    [int(c) for c in gen._cursor]))
    return got


BATCH_GENERATOR_CASES = [
    Case("text 'ab c', batch_size 1, num_unrollings 1, 3 calls", ("ab c", 1, 1, 3)),
    Case("text 'hello world' (11 characters), batch_size 3 (segments of 3, one character left over), "
         "num_unrollings 2, 3 calls", ("hello world", 3, 2, 3)),
    Case("text 'the quick brown fox' (19), batch_size 4, num_unrollings 3, 4 calls (every row wraps)",
         ("the quick brown fox", 4, 3, 4)),
]


@pytest.mark.differential
@pytest.mark.covers("BatchGenerator")
def test_batch_generator_matches_reference():
    compare("BatchGenerator", k05, REF, BATCH_GENERATOR_CASES, _run_batch_generator,
            hint="(cursors after __init__, then per next(): the float32 batches and the cursors); cursor b starts at "
                 "b * (len(text) // batch_size), moves one per batch, modulo len(text)")


_PROBS = np.random.RandomState(8).uniform(0.0, 1.0, (3, V)).astype(np.float32)
_PROBS[1, [4, 19]] = 2.0  # a tie: the first maximum wins


@pytest.mark.differential
@pytest.mark.covers("characters")
def test_characters_matches_reference():
    cases = [Case("one one-hot row [1, 27] (id 0)", _ONE_HOT[[0]]),
             Case("3 rows of probabilities [3, 27], row 1 tied between ids 4 and 19", _PROBS)]
    compare("characters", k05, REF, cases, lambda mod, case: mod.characters(case.args.copy()),
            hint="np.argmax(probabilities, 1) per row (the first maximum on a tie), then id2char")


@pytest.mark.differential
@pytest.mark.covers("batches2string")
def test_batches2string_matches_reference():
    cases = [Case("one batch of one row (id 3)", [_ONE_HOT[[3]]]),
             Case("2 batches of 2 rows (ids [1, 2] then [3, 0])", [_ONE_HOT[[1, 2]], _ONE_HOT[[3, 0]]]),
             Case("4 batches of 3 rows", [_ONE_HOT[[i, 26 - i, 13]] for i in range(4)]),
             Case("2 batches of 5 rows", [_ONE_HOT[[i, i + 1, 26 - i, 13, 0]] for i in range(2)])]
    compare("batches2string", k05, REF, cases, lambda mod, case: mod.batches2string(case.args),
            hint="row b of the result reads row b of every batch, in order")


def _run_create_parameters(mod, case):
    """What the init determines: the keys, shapes, dtypes, trainability, and per weight its mean and stddev
    to one decimal and whether all of it lies within 2 stddev (0.2) of the mean -0.1 (truncated)."""
    vocabulary_size, num_nodes = case.args

    def summary(values):
        return (round(float(values.mean()), 1) + 0.0, round(float(values.std()), 1) + 0.0,
                bool(np.all(np.abs(values + 0.1) <= 0.2 + 1e-6)))

    with fresh_graph() as graph:
        params = mod.create_parameters(vocabulary_size, num_nodes)
        trainable = {v.ref() for v in tf.compat.v1.trainable_variables()}
        meta = {k: (v.shape.as_list(), v.dtype.base_dtype.name, v.ref() in trainable) for k, v in params.items()}
        with tf.compat.v1.Session(graph=graph) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            values = s.run(params)
    return {k: meta[k] + summary(values[k]) for k in params}


@pytest.mark.differential
@pytest.mark.covers("create_parameters")
def test_create_parameters_matches_reference():
    cases = [Case("vocabulary_size 40, num_nodes 30", (40, 30))]  # each weight has >= 900 entries: stable stats
    compare("create_parameters", k05, REF, cases, _run_create_parameters,
            hint="per key (shape, dtype, trainable, mean, stddev, within 0.2 of -0.1): weights "
                 "tf.random.truncated_normal(shape, -0.1, 0.1) (mean -0.1, stddev 0.1), biases zeros")


def _params(seed, num_nodes, vocabulary_size=V):
    return _random_params(np.random.RandomState(seed), num_nodes, vocabulary_size)


def _run_lstm_cell(mod, case):
    i, o, s, p = case.args
    return graph_outputs(lambda: mod.lstm_cell(tf.constant(i), tf.constant(o), tf.constant(s),
                                               {k: tf.constant(v) for k, v in p.items()}))


def _cell_case(seed, batch, num_nodes, one_hot=True, zero=False):
    rng = np.random.RandomState(seed)
    i = _one_hot_batches(rng, 1, batch)[0] if one_hot else rng.uniform(-1, 1, (batch, V)).astype(np.float32)
    o, s = (rng.uniform(-1, 1, (batch, num_nodes)).astype(np.float32) * (0.0 if zero else 1.0) for _ in range(2))
    return i, o, s, _params(seed + 100, num_nodes)


LSTM_CELL_CASES = [
    Case("batch 1, num_nodes 3, a one-hot input", _cell_case(0, 1, 3)),
    Case("batch 3, num_nodes 4, zero previous output and state", _cell_case(1, 3, 4, zero=True)),
    Case("batch 2, num_nodes 5, an input with negative values (not one-hot)", _cell_case(2, 2, 5, one_hot=False)),
]


@pytest.mark.differential
@pytest.mark.covers("lstm_cell")
def test_lstm_cell_matches_reference():
    compare("lstm_cell", k05, REF, LSTM_CELL_CASES, _run_lstm_cell,
            hint="(output, state): the slide's gate equations, output = output_gate * tanh(new state)")


def _run_training_model(mod, case):
    """Two calls of the loss with two sets of batches (the state carries), on constant params."""
    batch_size, num_unrollings, num_nodes, seed = case.args
    rng = np.random.RandomState(seed)
    values = _params(seed, num_nodes)
    feeds = [_one_hot_batches(rng, num_unrollings + 1, batch_size) for _ in range(2)]
    with fresh_graph() as graph:
        model = mod.build_training_model({k: tf.constant(v) for k, v in values.items()}, batch_size=batch_size,
                                         num_unrollings=num_unrollings)
        fetch = [model[k] for k in ("logits", "loss", "train_prediction")]
        with tf.compat.v1.Session(graph=graph) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            got = []
            for batches in feeds:
                got.append(s.run(fetch, dict(zip(model["train_data"], batches))))
                got.append(s.run([model["saved_output"], model["saved_state"]]))
    return got


TRAINING_MODEL_CASES = [
    Case("batch_size 1, num_unrollings 1, num_nodes 3, the loss run twice", (1, 1, 3, 0)),
    Case("batch_size 2, num_unrollings 3, num_nodes 5, the loss run twice", (2, 3, 5, 1)),
]


@pytest.mark.differential
@pytest.mark.covers("build_training_model")
def test_build_training_model_matches_reference():
    compare("build_training_model", k05, REF, TRAINING_MODEL_CASES, _run_training_model,
            hint="per run: [logits, loss, train_prediction], then [saved_output, saved_state]; inputs "
                 "train_data[:num_unrollings], labels train_data[1:], outputs concatenated time-major")


def _run_optimizer(mod, case):
    scale, clip_norm = case.args
    with fresh_graph() as graph:
        v = tf.Variable([1.0, -2.0, 2.0])
        u = tf.Variable([[4.0, 0.5]])
        loss = scale * (tf.reduce_sum(tf.square(v)) + tf.reduce_sum(tf.square(u)))
        opt = mod.build_optimizer(loss) if clip_norm is None else mod.build_optimizer(loss, clip_norm=clip_norm)
        with tf.compat.v1.Session(graph=graph) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            grads, norm = s.run([opt["gradients"], opt["global_norm"]])
            s.run(opt["train_op"])
            after = s.run([v, u, opt["global_step"]])
            step = tf.compat.v1.placeholder(opt["global_step"].dtype.base_dtype, [])
            set_step = opt["global_step"].assign(step)
            rates = []
            for k in (0, 4999, 5000, 12345):
                s.run(set_step, {step: k})
                rates.append(s.run(opt["learning_rate"]))
    return grads, norm, after, rates


OPTIMIZER_CASES = [
    Case("loss 10 * |params|^2 (global norm 100, clipped to the default 1.25)", (10.0, None)),
    Case("loss 10 * |params|^2 with clip_norm=5.0", (10.0, 5.0)),
]


@pytest.mark.differential
@pytest.mark.covers("build_optimizer")
def test_build_optimizer_matches_reference():
    compare("build_optimizer", k05, REF, OPTIMIZER_CASES, _run_optimizer,
            hint="(clipped gradients, norm before clipping, [v, u, global_step] after one train_op, learning rates "
                 "at steps 0, 4999, 5000, 12345): clip_by_global_norm(gradients, clip_norm)")


def _run_sampling_model(mod, case):
    num_nodes, ids = case.args
    values = _params(num_nodes, num_nodes)
    with fresh_graph() as graph:
        sampler = mod.build_sampling_model({k: tf.constant(v) for k, v in values.items()})
        with tf.compat.v1.Session(graph=graph) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            got = []
            for k in ids:
                if k is None:
                    s.run(sampler["reset_sample_state"])
                else:
                    got.append(s.run(sampler["sample_prediction"], {sampler["sample_input"]: _ONE_HOT[[k]]}))
            got.append(s.run([sampler["saved_sample_output"], sampler["saved_sample_state"]]))
    return got


SAMPLING_MODEL_CASES = [
    Case("num_nodes 3, feeding id 5 once", (3, [5])),
    Case("num_nodes 4, feeding ids 3, 3, 0, a reset, then 3", (4, [3, 3, 0, None, 3])),
]


@pytest.mark.differential
@pytest.mark.covers("build_sampling_model")
def test_build_sampling_model_matches_reference():
    compare("build_sampling_model", k05, REF, SAMPLING_MODEL_CASES, _run_sampling_model,
            hint="one prediction per fed id (each run moves one step on; reset zeroes both saved tensors), then "
                 "[saved_sample_output, saved_sample_state]")


def _float_or_type(value):
    """"float" for a Python float or a subclass of it (np.float64 is one: "Returns a float" allows it), else the type's name."""
    return "float" if isinstance(value, float) else type(value).__name__


def _run_logprob(mod, case):
    predictions, labels = case.args
    mine = predictions.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        value = mod.logprob(mine, labels)
    return value, _float_or_type(value), mine


LOGPROB_CASES = [
    Case("one row: p = 0.25 on the label", (np.array([[0.25, 0.75]]), np.array([[1.0, 0.0]]))),
    Case("3 rows, one label with probability 0 and one with 1e-12", (
        np.array([[0.0, 1.0, 0.0], [1e-12, 0.5, 0.5], [0.2, 0.3, 0.5]]),
        np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))),
    Case("6 rows of 27 (softmax predictions, one-hot labels)", (
        _np_softmax(np.random.RandomState(9).normal(size=(6, V))), _ONE_HOT[[0, 5, 5, 26, 1, 13]].astype(np.float64))),
]


@pytest.mark.differential
@pytest.mark.covers("logprob")
def test_logprob_matches_reference():
    compare("logprob", k05, REF, LOGPROB_CASES, _run_logprob,
            hint="(value, its type, your predictions array afterwards): sum of -labels * log(max(p, 1e-10)) / N, "
                 "a float, the caller's array unchanged")


def _seeded(call):
    seed_everything(SEED)
    return call()


@pytest.mark.differential
@pytest.mark.covers("sample_distribution")
def test_sample_distribution_matches_reference():
    cases = [Case("[1.0] (one entry)", [1.0]),
             Case("[0.0, 0.0, 1.0] (all on the last)", [0.0, 0.0, 1.0]),
             Case("[0.5, 0.5] (a tie)", [0.5, 0.5]),
             Case("[0.1, 0.0, 0.6, 0.3]", [0.1, 0.0, 0.6, 0.3])]
    compare("sample_distribution", k05, REF, cases,
            lambda mod, case: _seeded(lambda: [int(mod.sample_distribution(np.array(case.args))) for _ in range(8)]),
            hint="8 draws after random.seed: one random.uniform(0, 1) per draw, walk the cumulative sum until it "
                 "reaches the draw (Python's random module, not numpy's)")


def _run_sample(mod, case):
    def draws():
        return [(lambda p: (np.asarray(p), np.asarray(p).dtype.name))(mod.sample(case.args)) for _ in range(4)]

    return _seeded(draws)


@pytest.mark.differential
@pytest.mark.covers("sample")
def test_sample_matches_reference():
    spread = _np_softmax(np.random.RandomState(10).normal(size=(1, V)) * 2)
    cases = [Case("a prediction certain of id 26", _ONE_HOT[[26]].astype(np.float64)),
             Case("a prediction spread over all 27 ids", spread)]
    compare("sample", k05, REF, cases, _run_sample,
            hint="4 draws after the same seeds: a float32 [1, 27] one-hot of sample_distribution(prediction[0])")


@pytest.mark.differential
@pytest.mark.covers("random_distribution")
def test_random_distribution_matches_reference():
    compare("random_distribution", k05, REF, [Case("three calls after np.random.seed", None)],
            lambda mod, case: _seeded(lambda: [mod.random_distribution() for _ in range(3)]),
            hint="np.random.uniform(0, 1, [1, 27]), divided by its row sum")


def _reference_sampler(num_nodes, seed):
    values = _params(seed, num_nodes)
    return REF.build_sampling_model({k: tf.constant(v) for k, v in values.items()})


def _run_generate(mod, case):
    num_samples, length = case.args
    with fresh_graph() as graph:
        sampler = _reference_sampler(4, 11)
        with tf.compat.v1.Session(graph=graph) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            return _seeded(lambda: mod.generate(s, sampler, num_samples=num_samples, length=length))


@pytest.mark.differential
@pytest.mark.covers("generate")
def test_generate_matches_reference():
    cases = [Case("num_samples 1, length 1", (1, 1)), Case("num_samples 3, length 12", (3, 12))]
    compare("generate", k05, REF, cases, _run_generate,
            hint="the same seeds must give the same samples: per sample, feed = sample(random_distribution()), reset, "
                 "then length - 1 times predict from feed and sample(prediction)")


def _run_validation_perplexity(mod, case):
    with fresh_graph() as graph:
        sampler = _reference_sampler(5, 12)
        with tf.compat.v1.Session(graph=graph) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            s.run(sampler["sample_prediction"], {sampler["sample_input"]: _ONE_HOT[[7]]})  # a dirty state
            value = mod.validation_perplexity(s, sampler, case.args)
            return value, _float_or_type(value)


@pytest.mark.differential
@pytest.mark.covers("validation_perplexity")
def test_validation_perplexity_matches_reference():
    cases = [Case("valid_text 'a' (one character)", "a"), Case("valid_text 'hello world'", "hello world")]
    compare("validation_perplexity", k05, REF, cases, _run_validation_perplexity,
            hint="reset, then len(valid_text) steps of BatchGenerator(valid_text, 1, 1): exp of the mean logprob")


# --------------------------------------------------------------------------- training: offline corpus
# The function to read first for each kind of curve (tfkata.feedback.curves.KINDS): "Stuck?" names it.
SUSPECTS = {"rate": "build_optimizer", "init": "create_parameters", "loop": "train", "eval": "validation_perplexity",
            "leak": "BatchGenerator", "measure": "validation_perplexity"}


def _curve(history):
    return explain_curve(history.get("mean_loss", []), n_classes=V, suspects=SUSPECTS)


def _train_vs_valid(history):
    """A hint when training worked but validation did not (the sampler is the suspect then)."""
    losses, valid = history.get("mean_loss", []), history.get("valid_perplexity", [])
    if losses and valid and math.exp(losses[-1]) < 0.5 * valid[-1]:
        return (f" The training perplexity fell to {math.exp(losses[-1]):.2f} but validation is {valid[-1]:.2f}: "
                "build_sampling_model must get the very params the training model uses (one create_parameters call).")
    return ""


@pytest.fixture(scope="module")
def offline_run():
    """The tutorial's model and schedule on the offline corpus, cut to OFFLINE_STEPS steps."""
    valid, train = corpora.split_valid(corpora.offline_corpus())
    with fresh_graph():
        return k05.train(train, valid, num_steps=OFFLINE_STEPS)


@pytest.mark.training
@pytest.mark.covers("train", "BatchGenerator", "char2id", "id2char", "characters", "create_parameters", "lstm_cell",
                    "build_training_model", "build_optimizer", "build_sampling_model", "logprob",
                    "sample_distribution", "sample", "random_distribution", "generate", "validation_perplexity")
@pytest.mark.points(4)
@pytest.mark.timeout(300)
def test_offline_training_reaches_perplexity(offline_run):
    ppl = offline_run["valid_perplexity"]
    steps = offline_run["step"]
    print(f"offline corpus: validation perplexity {ppl[0]:.2f} at step 0 -> {ppl[-1]:.2f} at step {steps[-1]}")
    assert steps[-1] == OFFLINE_STEPS - 1, f"expected summaries up to step {OFFLINE_STEPS - 1}, got {steps[-1]}"
    assert ppl[-1] < OFFLINE_MAX_PERPLEXITY, (
        f"validation perplexity {ppl[-1]:.2f} after {steps[-1]} steps, expected < {OFFLINE_MAX_PERPLEXITY} "
        f"(the reference reaches {OFFLINE_MEASURED:.2f}; a uniform guess is 27). The pieces pass their unit tests, "
        f"so compare train() with its docstring. Curve: {_curve(offline_run)}.{_train_vs_valid(offline_run)}"
    )


@pytest.mark.training
@pytest.mark.covers("train", "BatchGenerator", "char2id", "id2char", "characters", "create_parameters", "lstm_cell",
                    "build_training_model", "build_optimizer", "build_sampling_model", "logprob",
                    "sample_distribution", "sample", "random_distribution", "generate", "validation_perplexity")
@pytest.mark.points(1)
@pytest.mark.timeout(300)
def test_offline_training_summaries_and_samples(offline_run):
    steps = offline_run["step"]
    assert steps == list(range(0, OFFLINE_STEPS, 100)), f"summaries every 100 steps from 0, got {steps[:5]}..."
    assert sorted(offline_run["samples"]) == list(range(0, OFFLINE_STEPS, 1000)), (
        f"samples every 1000 steps (0 included), got {sorted(offline_run['samples'])}"
    )
    for step, samples in sorted(offline_run["samples"].items()):
        print(f"samples at step {step}:\n  " + "\n  ".join(samples))
        assert len(samples) == 5 and all(len(s) == 80 for s in samples), (
            f"step {step}: expected 5 samples of 80 characters, got {[len(s) for s in samples]}"
        )
    first, last = offline_run["mean_loss"][0], offline_run["mean_loss"][-1]
    assert last < first - 1.0, (
        f"mean loss should fall far below the start ({first:.3f} -> {last:.3f}): {_curve(offline_run)}"
    )


# --------------------------------------------------------------------------- training: the leak detector
@pytest.fixture(scope="module")
def chain():
    return corpora.synthetic_chain()


def _floor_violations(train_ppl, valid_ppl, floor, history):
    """The leak detector: a model's perplexities against the chain's exact entropy floor."""
    problems = []
    if train_ppl < floor - FLOOR_TOLERANCE:
        problems.append(
            f"training perplexity {train_ppl:.4f} is below the entropy floor {floor:.4f} - {FLOOR_TOLERANCE}: "
            "no model can do that honestly, so the labels leak into the inputs (check BatchGenerator.next: "
            "each call is the previous last batch + num_unrollings NEW batches, and labels = train_data[1:])"
        )
    if valid_ppl < floor - FLOOR_TOLERANCE:
        problems.append(
            f"validation perplexity {valid_ppl:.4f} is below the entropy floor {floor:.4f} - {FLOOR_TOLERANCE}: "
            "validation scores characters the model was fed (feed b[0], score against b[1])"
        )
    if valid_ppl > floor + FLOOR_DISTANCE:
        problems.append(
            f"validation perplexity {valid_ppl:.4f} is not within {FLOOR_DISTANCE} of the entropy floor "
            f"{floor:.4f} (a correct model gets within 0.026 in {SYNTHETIC_STEPS - 1} steps): the model has not "
            f"learnt the chain. Curve: {_curve(history)}.{_train_vs_valid(history)}"
        )
    return problems


def _synthetic_run(chain, train_batches=None, steps=SYNTHETIC_STEPS, valid_chars=SYNTHETIC_VALID_CHARS):
    train = chain.generate(SYNTHETIC_TRAIN_CHARS, seed=1)
    valid = chain.generate(valid_chars, seed=2)
    if train_batches is not None:
        train_batches = train_batches(train)
    with fresh_graph():
        history = k05.train(train, valid, num_steps=steps, summary_frequency=1000 if steps > 1001 else 500,
                            train_batches=train_batches, log=lambda *a: None)
    return math.exp(history["mean_loss"][-1]), history["valid_perplexity"][-1], history


@pytest.mark.training
@pytest.mark.covers("train", "BatchGenerator", "char2id", "id2char", "characters", "create_parameters", "lstm_cell",
                    "build_training_model", "build_optimizer", "build_sampling_model", "logprob",
                    "sample_distribution", "sample", "random_distribution", "generate", "validation_perplexity")
@pytest.mark.points(4)
@pytest.mark.timeout(300)
def test_synthetic_perplexity_sits_at_the_entropy_floor(chain):
    floor = chain.perplexity_floor
    train_ppl, valid_ppl, history = _synthetic_run(chain)
    print(
        f"synthetic corpus: entropy floor {floor:.4f} (rate {chain.entropy_rate:.4f} nats/char); after "
        f"{SYNTHETIC_STEPS - 1} steps training perplexity {train_ppl:.4f}, validation {valid_ppl:.4f} "
        f"(allowed: >= floor - {FLOOR_TOLERANCE}, validation <= floor + {FLOOR_DISTANCE})"
    )
    problems = _floor_violations(train_ppl, valid_ppl, floor, history)
    assert not problems, "; ".join(problems)


@pytest.mark.training
@pytest.mark.covers("train", "BatchGenerator", "char2id", "id2char", "characters", "create_parameters", "lstm_cell",
                    "build_training_model", "build_optimizer", "build_sampling_model", "logprob",
                    "sample_distribution", "sample", "random_distribution", "generate", "validation_perplexity")
@pytest.mark.points(0)
@pytest.mark.timeout(300)
def test_leak_detector_catches_a_leaking_generator(chain):
    """Check of the test above: a generator whose labels leak into the inputs must fail it.

    The leaking generator stutters: it reads the text with every character doubled ("tthhee  ccaatt"),
    so every other label is a copy of its input. A model that learns copies it and its training
    perplexity drops to about sqrt(floor), far under the floor; on clean validation text it is lost.
    """
    floor = chain.perplexity_floor
    used = []

    def stuttering(text):
        gen = k05.BatchGenerator("".join(c + c for c in text), k05.BATCH_SIZE, k05.NUM_UNROLLINGS)
        original = gen.next

        def next_batches():
            used.append(1)
            return original()

        gen.next = next_batches
        return gen

    train_ppl, valid_ppl, history = _synthetic_run(chain, stuttering, steps=LEAK_STEPS, valid_chars=500)
    print(f"leaking generator: training perplexity {train_ppl:.4f}, validation {valid_ppl:.4f}, floor {floor:.4f}")
    assert used, (
        "train(..., train_batches=gen) never called gen.next(): when train_batches is given, every step must feed "
        "train_batches.next() (this check trains on a leaking generator and needs train() to use it)"
    )
    problems = _floor_violations(train_ppl, valid_ppl, floor, history)
    assert any("below the entropy floor" in p for p in problems), (
        f"trained on text with every character doubled (half the labels equal their input), your model's "
        f"training perplexity is {train_ppl:.4f}, not below the floor {floor:.4f} - {FLOOR_TOLERANCE} as a model "
        f"that learns from its inputs gets (the reference: about sqrt(floor)). Curve: {_curve(history)}"
    )


# --------------------------------------------------------------------------- slow: text8
@pytest.mark.slow
@pytest.mark.training
@pytest.mark.covers("train", "BatchGenerator", "char2id", "id2char", "characters", "create_parameters", "lstm_cell",
                    "build_training_model", "build_optimizer", "build_sampling_model", "logprob",
                    "sample_distribution", "sample", "random_distribution", "generate", "validation_perplexity")
@pytest.mark.points(3)
@pytest.mark.timeout(3600)
def test_text8_full_schedule():
    try:
        path = corpora.text8_path(download=False)  # no network in tests: place the file to run this
    except corpora.DataUnavailable as exc:
        pytest.skip(f"text8 is not available: {exc}")
    valid, train = corpora.split_valid(corpora.read_zip_text(path))
    with fresh_graph():
        history = k05.train(train, valid, num_steps=TEXT8_STEPS)
    ppl = history["valid_perplexity"][-1]
    print(f"text8: validation perplexity {ppl:.2f} after {TEXT8_STEPS - 1} steps (tutorial: 4.27)")
    assert ppl <= TEXT8_MAX_PERPLEXITY, (
        f"validation perplexity {ppl:.2f}, expected <= {TEXT8_MAX_PERPLEXITY} (tutorial: 4.27). Curve: {_curve(history)}"
    )
