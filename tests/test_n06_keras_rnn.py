"""Graded tests for n06 · Keras RNN layers: sequences, states and masking (the TF 2 twin of k06).

Eager tests (the harness makes no graph for the "now" track; numpy, random, tf and Keras seeds are
set before each). Unit tests first: the layers and cells, what ``return_sequences`` /
``return_state`` give, stacking, masking (an explicit mask, ``Embedding(mask_zero=True)``,
``Masking``) and porting TF 1 cell weights, checked against numpy versions of TF 1's cell formulas.
Then the equivalence tests, which run the same target's k06 (``run_dynamic`` with
``sequence_length`` in a TF 1 session) and wait until k06 passes.

What is measured and taught (Keras 2.12 and Keras 3.15, TF 2.12 and 2.21, the same on both): at a
masked step a Keras layer keeps its state and REPEATS its last valid output (zeros before the first
valid step), where ``dynamic_rnn`` output zeros; the final state is the state at the last valid step
in both (zeros for length 0). Keras 3 returns a tuple from a ``return_state=True`` layer, Keras 2 a
list: the tests index it and accept both. No training here (k06 has none either).

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import numpy as np
import pytest

from tfkata import fresh_graph, load_kata, tfsetup
from tfkata.tfsetup import import_tensorflow
from tfkata.testing import where_max as _where

tf = import_tensorflow()  # quietly: without the CUDA/oneDNN lines a plain import prints
import keras  # noqa: E402  (after the quiet TensorFlow import; Keras 3 on TF >= 2.16, Keras 2 before)

n06 = load_kata("n06_keras_rnn")
k06 = load_kata("k06_rnn_api")

B, T, D, H = 4, 6, 3, 5
LENGTHS = np.array([6, 3, 1, 0], np.int32)
KINDS = ("rnn", "lstm", "gru")
LAYER_CLASS = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
CELL_CLASS = {"rnn": "SimpleRNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}
N_STATES = {"rnn": 1, "lstm": 2, "gru": 1}
# float32: Keras and TF 1 (or numpy in float64) sum in other orders; outputs are in (-1, 1).
ATOL = 2e-5


# --------------------------------------------------------------------------- helpers
def _inputs(b=B, t=T, d=D, seed=0):
    return np.random.RandomState(seed).randn(b, t, d).astype(np.float32)


def _np(value):
    return np.asarray(value, np.float64)


def _close(got, want, atol=ATOL):
    got, want = _np(got), _np(want)
    return got.shape == want.shape and np.allclose(got, want, rtol=0, atol=atol)


def _assert_close(got, want, message, atol=ATOL):
    got, want = _np(got), _np(want)
    assert got.shape == want.shape, f"{message} (expected shape {want.shape}, got {got.shape})"
    if not np.allclose(got, want, rtol=0, atol=atol):
        pytest.fail(f"{message} ({_where(np.abs(got - want))})")


def _built(layer, d=D):
    """Call ``layer`` once on zeros so that its weights exist (Keras creates them on the first call)."""
    layer(np.zeros((1, 2, d), np.float32))
    return layer


def _result_parts(result, what):
    """(outputs, states) of a return_state=True result, read here without the kata's split_result."""
    assert isinstance(result, (list, tuple)), (
        f"{what}: with return_state=True a Keras layer returns [outputs, *states] (a list in Keras 2, a tuple in "
        f"Keras 3), got one {type(result).__name__}: pass return_state=return_state to the layer"
    )
    return result[0], list(result[1:])


def _error_name(exc):
    """A short name for a TensorFlow / Keras error (its first line is often a long internal node name)."""
    text = str(getattr(exc, "message", None) or exc).strip()
    line = next((part.strip() for part in text.splitlines() if part.strip() and "{{" not in part), "")
    return f"{type(exc).__name__}: {line[:120]}" if line else type(exc).__name__


def _module_hint(obj):
    module = type(obj).__module__
    if module.startswith("tf_keras") or module.startswith("tensorflow.python.keras") or ".legacy" in module:
        return (
            f" (it comes from {module}: that is tf.keras / tf_keras, Keras 2 kept for the TF 1 track; the now-track "
            "uses `import keras` and keras.layers)"
        )
    return ""


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _tf1_weights(kind, d=D, h=H, seed=3):
    """Random weights with the variable layout of TF 1's BasicRNNCell / LSTMCell / GRUCell (non-zero biases)."""
    rng = np.random.RandomState(seed)

    def rand(*shape):
        return rng.uniform(-0.6, 0.6, shape).astype(np.float32)

    if kind == "rnn":
        return {"kernel": rand(d + h, h), "bias": rand(h)}
    if kind == "lstm":
        return {"kernel": rand(d + h, 4 * h), "bias": rand(4 * h)}
    return {"gates/kernel": rand(d + h, 2 * h), "gates/bias": rand(2 * h),
            "candidate/kernel": rand(d + h, h), "candidate/bias": rand(h)}


def _tf1_run(kind, w, x, lengths):
    """numpy (float64) version of dynamic_rnn(TF 1 cell, x, sequence_length=lengths) from the zero state.

    BasicRNNCell: h = tanh([x, h] K + b). LSTMCell: i, j, f, o = split([x, h] K + b, 4);
    c = sigmoid(f + 1.0) c + sigmoid(i) tanh(j); h = sigmoid(o) tanh(c). GRUCell: r, u =
    split(sigmoid([x, h] Kg + bg), 2); c = tanh([x, r h] Kc + bc); h = u h + (1 - u) c.
    Past a sequence's length: output zeros, state copied. Returns (outputs, {"h": ..., "c": ...}).
    """
    x = _np(x)
    b, t_max, _ = x.shape
    h_size = (w["kernel"].shape[1] // (4 if kind == "lstm" else 1)) if kind != "gru" else w["candidate/bias"].shape[0]
    h = np.zeros((b, h_size))
    c = np.zeros((b, h_size))
    outputs = np.zeros((b, t_max, h_size))
    for t in range(t_max):
        xt = x[:, t]
        if kind == "rnn":
            new_h, new_c = np.tanh(np.concatenate([xt, h], 1) @ _np(w["kernel"]) + _np(w["bias"])), c
        elif kind == "lstm":
            i, j, f, o = np.split(np.concatenate([xt, h], 1) @ _np(w["kernel"]) + _np(w["bias"]), 4, axis=1)
            new_c = _sigmoid(f + 1.0) * c + _sigmoid(i) * np.tanh(j)
            new_h = _sigmoid(o) * np.tanh(new_c)
        else:
            r, u = np.split(_sigmoid(np.concatenate([xt, h], 1) @ _np(w["gates/kernel"]) + _np(w["gates/bias"])), 2, axis=1)
            cand = np.tanh(np.concatenate([xt, r * h], 1) @ _np(w["candidate/kernel"]) + _np(w["candidate/bias"]))
            new_h, new_c = u * h + (1 - u) * cand, c
        valid = (t < np.asarray(lengths))[:, None]
        outputs[:, t] = np.where(valid, new_h, 0.0)
        h, c = np.where(valid, new_h, h), np.where(valid, new_c, c)
    return outputs, {"h": h, "c": c}


def _keras_layer(kind, h=H, **kwargs):
    """The test's own Keras layer of ``kind`` (not the kata's make_layer), built on D inputs."""
    if kind == "rnn":
        layer = keras.layers.SimpleRNN(h, **kwargs)
    elif kind == "lstm":
        layer = keras.layers.LSTM(h, **kwargs)
    else:
        layer = keras.layers.GRU(h, reset_after=False, **kwargs)
    return _built(layer)


def _alone(layer, x, i, n):
    """(outputs [n, H], states) of ``layer`` on sequence i cut to its first n steps, without a mask."""
    outputs, states = _result_parts(layer(x[i : i + 1, :n]), "the test's own call")
    return np.asarray(outputs)[0], [np.asarray(s)[0] for s in states]


# --------------------------------------------------------------------------- layers and cells
@pytest.mark.covers("make_layer")
@pytest.mark.parametrize("kind", KINDS)
def test_make_layer_kinds(kind):
    layer = n06.make_layer(kind, H)
    expected = getattr(keras.layers, LAYER_CLASS[kind])
    assert type(layer) is expected, (
        f"make_layer({kind!r}) should be keras.layers.{LAYER_CLASS[kind]}, got {type(layer).__name__}{_module_hint(layer)}"
    )
    assert layer.units == H, f"make_layer({kind!r}, {H}): expected {H} units, got {layer.units}: pass units"
    assert not layer.return_sequences and not layer.return_state, (
        f"make_layer({kind!r}, {H}) should keep Keras's defaults return_sequences=False, return_state=False, got "
        f"{layer.return_sequences}, {layer.return_state}"
    )
    both = n06.make_layer(kind, H, return_sequences=True, return_state=True)
    assert both.return_sequences and both.return_state, (
        f"make_layer({kind!r}, {H}, return_sequences=True, return_state=True) gave a layer with return_sequences="
        f"{both.return_sequences}, return_state={both.return_state}: pass both arguments to the layer"
    )
    for flags in ({"return_sequences": True}, {"return_state": True}):
        one = n06.make_layer(kind, H, **flags)
        got = {"return_sequences": one.return_sequences, "return_state": one.return_state}
        want = {"return_sequences": False, "return_state": False, **flags}
        assert got == want, (
            f"make_layer({kind!r}, {H}, {', '.join(f'{k}=True' for k in flags)}) gave a layer with {got}"
            + (": the two flags are swapped" if got == {k: not v for k, v in want.items()} else "")
            + ": return_sequences=return_sequences, return_state=return_state"
        )
    assert n06.make_layer(kind, H) is not layer, (
        f"make_layer({kind!r}, {H}): a second call returned the same layer object as the first: build a new layer on "
        "every call (a Keras layer is built for the first input it sees; a cached one is shared by every model that "
        "asks for one)"
    )
    if kind == "gru":
        assert getattr(layer.cell, "reset_after", None) is False, (
            "make_layer('gru') should build GRU(units, reset_after=False): TF 1's GRUCell applies the reset gate to "
            "h BEFORE multiplying by the recurrent matrix; Keras's default reset_after=True applies it after, with a "
            "second bias [2, 3H], and computes other numbers than k06's cell"
        )


@pytest.mark.covers("make_layer")
def test_make_layer_rejects_unknown_kind():
    for make in (n06.make_layer,):
        try:
            make("transformer", H)
        except ValueError as exc:
            assert all(k in str(exc) for k in KINDS), (
                f"make_layer('transformer'): the ValueError should name the valid kinds rnn, lstm, gru, it says: {exc}"
            )
            continue
        pytest.fail("make_layer('transformer') must raise ValueError naming the valid kinds: rnn, lstm, gru")


@pytest.mark.covers("make_rnn", "make_layer")
@pytest.mark.parametrize("kind", KINDS)
def test_make_rnn_wraps_a_cell(kind):
    rnn = n06.make_rnn(kind, H, return_sequences=True)
    assert type(rnn) is keras.layers.RNN, (
        f"make_rnn({kind!r}) should be keras.layers.RNN(cell), got {type(rnn).__name__}{_module_hint(rnn)}: "
        f"make_layer gives the ready-made {LAYER_CLASS[kind]}, make_rnn the general RNN around a cell"
    )
    cell_class = getattr(keras.layers, CELL_CLASS[kind])
    assert type(rnn.cell) is cell_class, (
        f"make_rnn({kind!r}): the RNN should run a keras.layers.{CELL_CLASS[kind]}, got {type(rnn.cell).__name__}"
    )
    assert rnn.return_sequences and not rnn.return_state, (
        f"make_rnn({kind!r}, {H}, return_sequences=True): expected return_sequences=True, return_state=False, got "
        f"{rnn.return_sequences}, {rnn.return_state}"
    )
    both = n06.make_rnn(kind, H, return_sequences=True, return_state=True)
    assert both.return_sequences and both.return_state, (
        f"make_rnn({kind!r}, {H}, return_sequences=True, return_state=True) gave an RNN with return_sequences="
        f"{both.return_sequences}, return_state={both.return_state}: pass both to keras.layers.RNN(cell, "
        "return_sequences=return_sequences, return_state=return_state)"
    )
    layer = _built(n06.make_layer(kind, H, return_sequences=True))
    _built(rnn)
    shapes = [w.shape for w in rnn.get_weights()], [w.shape for w in layer.get_weights()]
    if kind == "gru" and getattr(rnn.cell, "reset_after", None) is True:
        pytest.fail(
            f"make_rnn('gru') runs a GRUCell with Keras's default reset_after=True (its bias is {list(shapes[0][-1])}, a "
            "second bias row; make_layer's GRU has [15]): build GRUCell(units, reset_after=False), TF 1's GRUCell"
        )
    assert shapes[0] == shapes[1], (
        f"make_rnn({kind!r}) has weights {shapes[0]}, make_layer({kind!r}) {shapes[1]}: the same cell should hold the "
        "same kernel, recurrent_kernel and bias" + (" (GRUCell(units, reset_after=False) as in make_layer)" if kind == "gru" else "")
    )
    rnn.set_weights(layer.get_weights())
    x = _inputs()
    _assert_close(rnn(x), layer(x), f"make_rnn({kind!r}) with make_layer's weights should compute the same outputs")


# --------------------------------------------------------------------------- outputs and states
@pytest.mark.covers("make_layer")
@pytest.mark.parametrize("kind", KINDS)
def test_return_sequences_and_return_state(kind):
    x = _inputs()
    last = n06.make_layer(kind, H)(x)
    assert tuple(last.shape) == (B, H), (
        f"make_layer({kind!r}, {H}) on [B, T, D] = {[B, T, D]} should return only the last output [B, H], got "
        f"{tuple(last.shape)}: keep return_sequences=False by default"
    )
    layer = n06.make_layer(kind, H, return_sequences=True, return_state=True)
    outputs, states = _result_parts(layer(x), f"make_layer({kind!r}, ..., return_state=True)")
    assert tuple(outputs.shape) == (B, T, H), (
        f"make_layer({kind!r}, {H}, return_sequences=True): expected outputs [B, T, H] = {[B, T, H]}, got {tuple(outputs.shape)}"
    )
    assert len(states) == N_STATES[kind], (
        f"a return_state=True {LAYER_CLASS[kind]} returns {N_STATES[kind]} state(s) after its outputs, got {len(states)}"
    )
    _assert_close(states[0], np.asarray(outputs)[:, -1], f"{LAYER_CLASS[kind]}: the first state h is the last output")
    if kind == "lstm":
        assert not _close(states[1], states[0]), "LSTM: the second state c (the cell memory) should differ from h"


@pytest.mark.covers("split_result")
@pytest.mark.parametrize("kind", KINDS)
def test_split_result(kind):
    x = _inputs()
    for sequences in (True, False):
        layer = _keras_layer(kind, return_sequences=sequences, return_state=True)
        result = layer(x)
        outputs, states = n06.split_result(result)
        want_shape = (B, T, H) if sequences else (B, H)
        assert tuple(outputs.shape) == want_shape, (
            f"split_result: the outputs are the FIRST item of what the layer returned ({want_shape} here), got {tuple(outputs.shape)}"
        )
        assert isinstance(states, list), (
            f"split_result should return the states as a Python list, got {type(states).__name__}: list(result[1:]) "
            "(Keras 3 returns a tuple, Keras 2 a list)"
        )
        assert len(states) == N_STATES[kind] and all(_close(s, r) for s, r in zip(states, result[1:])), (
            f"split_result: for a {LAYER_CLASS[kind]} the states are the {N_STATES[kind]} item(s) after the outputs, in "
            f"order, got {len(states)} item(s): return result[0], list(result[1:])"
        )
    stacked = keras.layers.RNN([keras.layers.LSTMCell(3), keras.layers.LSTMCell(4)], return_state=True)
    outputs, states = n06.split_result(stacked(x))
    sizes = [[tuple(t.shape) for t in layer] for layer in states] if all(isinstance(s, (list, tuple)) for s in states) else None
    assert tuple(outputs.shape) == (B, 4) and sizes == [[(B, 3), (B, 3)], [(B, 4), (B, 4)]], (
        f"split_result on keras.layers.RNN over two LSTM cells (3 and 4 units) should give the outputs [B, 4] and one "
        f"[h, c] per layer, got outputs {tuple(outputs.shape)} and states {sizes or states}"
        + (": the layers are reversed; keep the states in the layer's order, first layer first: list(result[1:])"
           if sizes == [[(B, 4), (B, 4)], [(B, 3), (B, 3)]] else "")
    )


@pytest.mark.covers("top_output")
def test_top_output_reads_h_from_any_states():
    def const(value, shape=(2, 3)):
        return tf.constant(np.full(shape, value, np.float32))

    cases = [
        ("[h=7] (SimpleRNN, GRU)", [const(7.0)], 7.0, "the one state is the output: return states[0]"),
        ("[h=1, c=0] (LSTM)", [const(1.0), const(0.0)], 1.0,
         "a Keras LSTM's states are [h, c]: h comes FIRST (TF 1's LSTMStateTuple was (c, h))"),
        ("a stack [[h=3, c=2], [h=5, c=4]]", [[const(3.0), const(2.0)], [const(5.0, (2, 4)), const(4.0, (2, 4))]], 5.0,
         "the top layer is the LAST entry of a stack's states, and its output is its h, the first item"),
        ("a stack of GRUs [[h=6], [h=8]]", [[const(6.0)], [const(8.0, (2, 4))]], 8.0,
         "the top layer is the LAST entry of a stack's states"),
    ]
    for what, states, expected, fix in cases:
        top = n06.top_output(states)
        assert isinstance(top, tf.Tensor), f"top_output({what}) should return one [B, H] tensor, got {type(top).__name__}: {fix}"
        got = np.asarray(top)
        assert got.size and np.all(got == expected), (
            f"top_output({what}) should give the tensor of {expected:g}s, got values "
            f"{sorted(set(np.unique(got).tolist()))[:4]}: {fix}"
        )


# --------------------------------------------------------------------------- stacking
@pytest.mark.covers("make_stack", "run_stack")
def test_stack_shapes_and_chaining():
    layers = n06.make_stack(sizes=(3, 7, 2))
    assert isinstance(layers, list) and len(layers) == 3, (
        f"make_stack(sizes=(3, 7, 2)) should return a list of 3 layers, got {type(layers).__name__} of {len(layers)}"
    )
    for layer, size in zip(layers, (3, 7, 2)):
        assert type(layer) is keras.layers.LSTM and layer.units == size, (
            f"make_stack: expected keras.layers.LSTM layers of 3, 7, 2 units (bottom first), got "
            f"{[(type(l).__name__, getattr(l, 'units', None)) for l in layers]}"
        )
        assert layer.return_sequences and layer.return_state, (
            "make_stack: every layer needs return_sequences=True (the next layer reads the whole sequence) and "
            "return_state=True (to hand back every layer's state, as MultiRNNCell did)"
        )
    kinds = [type(layer).__name__ for layer in n06.make_stack(sizes=(2, 3), kind="rnn")]
    assert kinds == ["SimpleRNN", "SimpleRNN"], (
        f"make_stack(sizes=(2, 3), kind='rnn') built {kinds}: build every layer with make_layer(kind, n, "
        "return_sequences=True, return_state=True), the kind asked for"
    )
    x = _inputs(d=4)
    outputs, states = n06.run_stack(layers, x)
    inputs_seen = [layer.get_weights()[0].shape[0] for layer in layers]
    assert inputs_seen == [4, 3, 7], (
        f"run_stack: the layers were built on inputs of sizes {inputs_seen}, expected [4, 3, 7]: layer 1 reads the "
        "inputs (4 features), each next layer reads the OUTPUT SEQUENCE of the one below"
    )
    assert tuple(outputs.shape) == (B, T, 2), f"run_stack: expected the top layer's outputs [B, T, 2], got {tuple(outputs.shape)}"
    sizes = [[tuple(t.shape) for t in s] for s in states] if isinstance(states, list) else states
    assert sizes == [[(B, n), (B, n)] for n in (3, 7, 2)], (
        f"run_stack: expected one [h, c] list per layer, bottom first, of sizes 3, 7, 2, got {sizes}"
    )
    # The same layers chained here by hand must give the same numbers.
    y = x
    for layer in layers:
        y = layer(y)[0]
    _assert_close(outputs, y, "run_stack: the outputs should be the top layer's output sequence, layer k+1 reading layer k's")
    _assert_close(n06.top_output(states), np.asarray(outputs)[:, -1], "run_stack: the top layer's final h is its last output")


class _PlainOutputs:
    """A stack layer whose results are plain tensors: Keras's mask metadata stripped (``tf.identity``).

    Keras attaches a layer's output mask to its eager outputs and the next layer picks it up by itself (Keras 3
    even when called with ``mask=None``), which hides a mask given to the first layer only. Any op between two
    layers (a dropout, a projection, a ``tf.function`` boundary) hands on a plain tensor instead: then only a mask
    passed to every layer reaches the upper ones."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, inputs, *args, **kwargs):
        result = self.layer(inputs, *args, **kwargs)
        if isinstance(result, (list, tuple)):
            return type(result)(tf.identity(t) for t in result)
        return tf.identity(result)

    def __getattr__(self, name):
        return getattr(self.layer, name)


@pytest.mark.covers("run_stack", "make_stack")
def test_run_stack_passes_the_mask_to_every_layer():
    layers = n06.make_stack(sizes=(3, 4), kind="gru")
    lengths = np.array([2, 5, 1], np.int32)  # T = 7 is wider than the longest sequence; every row differs
    x = _inputs(b=3, t=7, d=4)
    outputs, states = n06.run_stack([_PlainOutputs(layer) for layer in layers], x, mask=tf.sequence_mask(lengths, 7))
    got = np.asarray(outputs)
    for i, n in enumerate(lengths):
        y = x[i : i + 1, :n]
        alone = []
        for layer in layers:
            y = layer(y)[0]
            alone.append(np.asarray(y)[0])
        _assert_close(got[i, :n], alone[-1], f"run_stack with a mask: the valid steps of padded sequence {i} (length {n}) "
                      "should equal the sequence run alone without its padding: pass mask=mask to EVERY layer")
        for k in (0, 1):
            _assert_close(states[k][0][i], alone[k][-1], f"run_stack with a mask: layer {k + 1}'s final h for sequence {i} "
                          f"(length {n} of T = 7) should be its state at the last valid step: pass mask=mask to EVERY "
                          "layer, not only the first (Keras hands the mask on by itself only while nothing comes between "
                          "two layers)")
        _assert_close(got[i, n:], np.broadcast_to(alone[-1][-1], got[i, n:].shape),
                      f"run_stack with a mask: past length {n} the top layer should repeat its last valid output for "
                      f"sequence {i}: pass mask=mask to EVERY layer")


# --------------------------------------------------------------------------- masking
def _run_masked(layer, x, lengths):
    """n06.run_masked, with a mask of the wrong length explained in one sentence."""
    try:
        return n06.run_masked(layer, x, lengths), None
    except (ValueError, tf.errors.OpError) as exc:
        return None, _error_name(exc)


@pytest.mark.covers("run_masked")
@pytest.mark.parametrize("kind", KINDS)
def test_run_masked_keeps_state_and_repeats_last_output(kind):
    x = _inputs()
    layer = _keras_layer(kind, return_sequences=True, return_state=True)
    lengths = np.array([3, 2, 1, 0], np.int32)  # the longest is shorter than T: the mask must still cover T steps
    result, error = _run_masked(layer, x, lengths)
    if error is not None:
        pytest.fail(
            "run_masked: the mask must be [B, T] with T = the inputs' time steps, tf.sequence_mask(lengths, "
            f"maxlen=tf.shape(inputs)[1]), not only as long as the longest sequence (the layer rejected it: {error})"
        )
    outputs, states = _result_parts(result, "run_masked")
    outputs = np.asarray(outputs)
    mask = tf.sequence_mask(lengths, T)
    for given, why in ((None, "the layer ran without a mask, reading the padding: pass it, layer(inputs, mask=mask)"),
                       (tf.logical_not(mask), "the mask is inverted (True at the padding): True must mark the valid "
                                              "steps t < length, tf.sequence_mask(lengths, maxlen=T)"),
                       (tf.sequence_mask(lengths + 1, T), "the mask is one step too long (True at t = length too): "
                                                          "True exactly for t < length, tf.sequence_mask(lengths, maxlen=T)"),
                       (tf.sequence_mask(np.maximum(lengths - 1, 0), T), "the mask is one step too short (False at t = "
                        "length - 1): True exactly for t < length, tf.sequence_mask(lengths, maxlen=T)")):
        if _close(outputs, _result_parts(layer(x, mask=given), "the test's own call")[0]):
            pytest.fail(f"run_masked with lengths {lengths.tolist()} of T = {T}: {why}")
    for i, n in enumerate(lengths):
        if n == 0:
            assert not outputs[i].any() and not np.asarray(states[0])[i].any(), (
                "run_masked: a sequence of length 0 should keep the zero state and output zeros at every step"
            )
            continue
        alone, alone_states = _alone(layer, x, i, n)
        _assert_close(outputs[i, :n], alone, f"run_masked: sequence {i} (length {n}) should give, at its valid steps, what it "
                      "gives alone; build the mask from lengths (True at t < length) and pass it as mask=")
        _assert_close(outputs[i, n:], np.broadcast_to(alone[-1], outputs[i, n:].shape),
                      f"run_masked: past its length {n} a masked step of sequence {i} repeats the last valid output "
                      "(Keras carries it forward; dynamic_rnn gave zeros): mask those steps")
        for s, (got, want) in enumerate(zip(states, alone_states)):
            _assert_close(np.asarray(got)[i], want, f"run_masked: final state {s} of sequence {i} should be its state after "
                          f"step {n - 1}, the last valid one")


@pytest.mark.covers("run_masked")
def test_run_masked_takes_a_tensor_of_lengths():
    x = _inputs()
    layer = _keras_layer("gru", return_sequences=True)
    result, error = _run_masked(layer, tf.constant(x), tf.constant(LENGTHS))
    assert error is None, f"run_masked with tensors for inputs and lengths failed: {error}"
    _assert_close(np.asarray(result)[1, LENGTHS[1]:], np.broadcast_to(np.asarray(result)[1, LENGTHS[1] - 1], (T - LENGTHS[1], H)),
                  "run_masked: steps past the length should repeat the last valid output")


@pytest.mark.covers("zero_after_length")
def test_zero_after_length():
    outputs = np.random.RandomState(1).randn(B, T, H).astype(np.float32)
    lengths = np.array([4, 3, 1, 0], np.int32)  # no sequence fills all T steps: the mask must still cover them
    try:
        got = n06.zero_after_length(tf.constant(outputs), lengths)
    except (ValueError, tf.errors.OpError) as exc:
        error = _error_name(exc)
    else:
        error = None
    if error is not None:
        pytest.fail(
            f"zero_after_length on outputs [B, T, H] = {[B, T, H]} with lengths {lengths.tolist()} failed ({error}): "
            "the mask must have T steps, tf.sequence_mask(lengths, maxlen=T), and a trailing axis [B, T, 1] to broadcast over H"
        )
    assert tuple(got.shape) == (B, T, H), f"zero_after_length: expected [B, T, H] = {[B, T, H]}, got {tuple(got.shape)}"
    dtype = getattr(getattr(got, "dtype", None), "name", str(getattr(got, "dtype", type(got).__name__)))
    assert dtype == "float32", (
        f"zero_after_length: the result should be float32 like the outputs, got {dtype}"
        + (": the mask is bool; make it in the outputs' dtype, tf.sequence_mask(lengths, T, dtype=outputs.dtype)"
           if dtype == "bool" else "")
    )
    got = np.asarray(got)
    valid = (np.arange(T)[None, :] < lengths[:, None])[:, :, None]
    assert not np.array_equal(got, outputs * ~valid), (
        "zero_after_length: the mask is inverted: the valid steps were zeroed and the padding kept; multiply by "
        "tf.sequence_mask(lengths, T) (1.0 at t < length), not by 1 - mask"
    )
    for i, n in enumerate(lengths):
        changed = [t for t in range(n) if not np.array_equal(got[i, t], outputs[i, t])]
        assert not changed, (
            f"zero_after_length: sequence {i} has length {n}: its valid steps 0..{n - 1} must stay unchanged, yours "
            f"changed step(s) {changed}"
            + (": the mask is one step too short; True exactly for t < length, tf.sequence_mask(lengths, T) (not "
               "lengths - 1)" if changed == [n - 1] and not got[i, n - 1].any() else
               ": multiply by the mask only, tf.sequence_mask(lengths, T) cast to the outputs' dtype")
        )
        assert not got[i, n:].any(), (
            f"zero_after_length: sequence {i} has length {n}: steps {n}.. must be zeros, as dynamic_rnn gave them "
            "(multiply by tf.sequence_mask(lengths, T) cast to float, with a trailing axis [B, T, 1])"
        )
    try:
        wide = n06.zero_after_length(tf.constant(outputs.astype(np.float64)), lengths)
    except (TypeError, tf.errors.InvalidArgumentError) as exc:
        error = _error_name(exc)
    else:
        error = None
    if error is not None:  # outside the except block: no chained TensorFlow traceback
        pytest.fail(f"zero_after_length on float64 outputs failed ({error}): make the mask in the outputs' dtype, "
                    "tf.sequence_mask(lengths, T, dtype=outputs.dtype), not float32", pytrace=False)
    n06.zero_after_length(outputs.copy(), lengths)  # a numpy array, as a caller may pass: it must stay as it was
    assert wide.dtype == tf.float64 and np.allclose(np.asarray(wide), got, atol=1e-6), (
        f"zero_after_length on float64 outputs: expected float64 outputs with the same values, got "
        f"{wide.dtype.name}: make the mask in the outputs' dtype, tf.sequence_mask(lengths, T, dtype=outputs.dtype), "
        "and leave the outputs' dtype as it is"
    )


@pytest.mark.covers("last_valid_output")
def test_last_valid_output():
    outputs = np.random.RandomState(2).randn(B, T, H).astype(np.float32)
    got = n06.last_valid_output(tf.constant(outputs), tf.constant(LENGTHS))
    assert tuple(got.shape) == (B, H), f"last_valid_output: expected [B, H] = {[B, H]}, got {tuple(got.shape)}"
    got = np.asarray(got)
    for i, n in enumerate(LENGTHS):
        want = outputs[i, n - 1] if n else np.zeros(H, np.float32)
        if not np.array_equal(got[i], want):
            found = [t for t in range(T) if np.array_equal(got[i], outputs[i, t])]
            if not n and found:
                why = ("a sequence of length 0 has no valid step, and gathering at max(lengths - 1, 0) picks step 0: "
                       "zero those rows, multiply by tf.cast(lengths > 0, outputs.dtype)[:, tf.newaxis]")
            elif found and found[0] == n:
                why = ("that is one past the last valid step: gather outputs[b, lengths[b] - 1] with "
                       "tf.gather(..., batch_dims=1)")
            elif found and found[0] == T - 1:
                why = ("outputs[:, -1] is past the length (zeros in dynamic_rnn, meaningless without a mask): gather "
                       "outputs[b, lengths[b] - 1] with tf.gather(..., batch_dims=1)")
            else:
                why = "gather outputs[b, lengths[b] - 1] with tf.gather(..., batch_dims=1), and zeros for length 0"
            pytest.fail(
                f"last_valid_output: sequence {i} (length {n}) should give "
                + (f"its output at step {n - 1}" if n else "zeros (length 0: no valid step)")
                + (f", got its output at step {found[0]}" if found else ", got another vector")
                + f": {why}"
            )


@pytest.mark.covers("make_embedding_rnn")
def test_embedding_rnn_masks_id_zero():
    model = n06.make_embedding_rnn(vocab_size=12, embed_dim=4, units=H)
    assert isinstance(model, keras.Model), f"make_embedding_rnn should return a keras.Sequential, got {type(model).__name__}"
    assert model.weights, (
        "make_embedding_rnn: the model has no weights before its first call (it is not built): start the Sequential "
        "with keras.Input(shape=(None,), dtype='int32'), so it knows its input and builds its layers"
    )
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Embedding", "GRU"], f"make_embedding_rnn: expected the layers Embedding, GRU, got {kinds}"
    embedding = model.layers[0]
    assert embedding.mask_zero, "make_embedding_rnn: Embedding(..., mask_zero=True), so id 0 marks padding"
    assert embedding.input_dim == 12, (
        f"make_embedding_rnn(vocab_size=12, ...) made an Embedding of {embedding.input_dim} rows: the ids run 0..11 and "
        "the padding id 0 is one of them, so Embedding(vocab_size, embed_dim, mask_zero=True), no extra row"
    )
    ids = np.array([[3, 7, 1, 0, 0, 0], [5, 0, 0, 0, 0, 0], [2, 2, 4, 9, 11, 6]], np.int32)
    out = np.asarray(model(ids))
    assert out.shape == (3, T, H), f"make_embedding_rnn on ids [3, {T}]: expected outputs [3, {T}, {H}], got {out.shape}"
    for i, n in ((0, 3), (1, 1)):
        alone = np.asarray(model(ids[i : i + 1, :n]))[0]
        _assert_close(out[i, :n], alone, f"make_embedding_rnn: padded sequence {i} should give, at its {n} valid steps, what "
                      "it gives without its padding: Embedding(mask_zero=True) then a GRU with return_sequences=True")
        _assert_close(out[i, n:], np.broadcast_to(alone[-1], out[i, n:].shape),
                      f"make_embedding_rnn: the padding (id 0) of sequence {i} should be masked: the GRU repeats its last "
                      "valid output there")


@pytest.mark.covers("make_embedding_rnn")
def test_embedding_rnn_uses_its_kind():
    model = n06.make_embedding_rnn(vocab_size=12, embed_dim=4, units=H, kind="lstm")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Embedding", "LSTM"], (
        f"make_embedding_rnn(..., kind='lstm'): expected the layers Embedding, LSTM, got {kinds}: make the recurrent "
        "layer with make_layer(kind, units, return_sequences=True), the kind argument"
    )


@pytest.mark.covers("make_masking_rnn")
def test_masking_rnn_masks_padding_steps():
    for mask_value in (0.0, -1.0):
        model = n06.make_masking_rnn(D, H, mask_value=mask_value)
        assert model.weights, (
            "make_masking_rnn: the model has no weights before its first call (it is not built): start the Sequential "
            "with keras.Input(shape=(None, input_dim)), so it knows its input and builds its layers"
        )
        kinds = [type(layer).__name__ for layer in model.layers]
        assert kinds == ["Masking", "LSTM"], f"make_masking_rnn: expected the layers Masking, LSTM, got {kinds}"
        x = _inputs()
        x[1, 2:] = mask_value
        x[2, 4:] = mask_value
        x[3, 1, 0] = mask_value  # only one feature equal to mask_value: not a padding step
        out = np.asarray(model(x))
        assert out.shape == (B, T, H), f"make_masking_rnn: expected outputs [B, T, H] = {[B, T, H]}, got {out.shape}"
        for i, n in ((1, 2), (2, 4)):
            alone = np.asarray(model(x[i : i + 1, :n]))[0]
            _assert_close(out[i, n:], np.broadcast_to(alone[-1], out[i, n:].shape),
                          f"make_masking_rnn(mask_value={mask_value:g}): the steps whose features all equal {mask_value:g} "
                          "should be masked (the LSTM repeats its last valid output): Masking(mask_value=mask_value)")
        assert not _close(out[3, 1], out[3, 0], atol=1e-6), (
            "make_masking_rnn: a step where only ONE feature equals mask_value is not padding and must be read"
        )
    kinds = [type(layer).__name__ for layer in n06.make_masking_rnn(D, H, kind="gru").layers]
    assert kinds == ["Masking", "GRU"], (
        f"make_masking_rnn(..., kind='gru') built the layers {kinds}: the recurrent layer is make_layer(kind, units, "
        "return_sequences=True), the kind asked for"
    )


# --------------------------------------------------------------------------- porting TF 1 weights
def _expected_port(kind, w, d=D):
    """The right mapping, block by block (used to NAME what a wrong port got wrong)."""
    if kind == "rnn":
        return [w["kernel"][:d], w["kernel"][d:], w["bias"]]
    if kind == "lstm":
        def re(m):
            i, j, f, o = np.split(m, 4, axis=-1)
            return np.concatenate([i, f, j, o], axis=-1)
        i, j, f, o = np.split(w["bias"], 4)
        return [re(w["kernel"][:d]), re(w["kernel"][d:]), np.concatenate([i, f + 1.0, j, o])]
    g, c = w["gates/kernel"], w["candidate/kernel"]
    r_b, u_b = np.split(w["gates/bias"], 2)

    def zrh(gates, cand):
        r, u = np.split(gates, 2, axis=-1)
        return np.concatenate([u, r, cand], axis=-1)

    return [zrh(g[:d], c[:d]), zrh(g[d:], c[d:]), np.concatenate([u_b, r_b, w["candidate/bias"]])]


BLOCKS = {"rnn": ("h",), "lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h")}
MAPPING = {
    "rnn": "rows 0..D-1 of the TF 1 kernel (x's) are Keras's kernel, rows D.. (h's) its recurrent_kernel; the bias as is",
    "lstm": "split the kernel's rows (x's: kernel, h's: recurrent_kernel), reorder the column blocks from TF 1's "
            "i, j, f, o to Keras's i, f, c(=j), o, and add forget_bias 1.0 to the f block of the bias",
    "gru": "split gates/kernel and candidate/kernel by rows (x's: kernel, h's: recurrent_kernel); Keras's blocks are "
           "z(= TF 1's u), r, h(= candidate), and the biases follow the same order",
}


def _tf1_blocks(kind, w, d=D):
    """TF 1's column blocks of the x rows, by name, in TF 1's order."""
    if kind == "lstm":
        return dict(zip(("i", "j", "f", "o"), np.split(w["kernel"][:d], 4, axis=-1)))
    r, u = np.split(w["gates/kernel"][:d], 2, axis=-1)
    return {"r": r, "u": u, "candidate": w["candidate/kernel"][:d]}


KERAS_ORDER = {"lstm": (("i", "f", "j", "o"), "Keras's LSTM wants i, f, c(=j), o"),
               "gru": (("u", "r", "candidate"), "Keras's GRU wants z(= TF 1's u), r, h(= candidate)")}


def _port_diagnosis(kind, ported, w, d=D):
    """One line naming the first block of the first array that differs from the right mapping, or None."""
    names = ("kernel", "recurrent_kernel", "bias")
    kernel = np.asarray(ported[0])
    if kind == "rnn" and kernel.shape == (d, w["kernel"].shape[1]):
        rows = [r for r in range(1, w["kernel"].shape[0] - d + 1) if np.allclose(kernel, w["kernel"][r : r + d], atol=1e-6)]
        if rows:
            return (f"kernel is rows {rows[0]}..{rows[0] + d - 1} of the TF 1 kernel, h's rows: TF 1 multiplies "
                    "[x_t, h_{t-1}], so x's rows come first")
    rows = np.asarray(w.get("kernel", np.zeros([0, 0])))
    if rows.shape[0] > d:  # x's rows taken from the end: [h rows ; x rows] read as [x ; h]
        from_end = _expected_port(kind, dict(w, kernel=np.concatenate([rows[-d:], rows[:-d]])), d)
        if all(np.shape(g) == np.shape(e) and np.allclose(g, e, atol=1e-6) for g, e in zip(ported[:2], from_end[:2])):
            return (f"kernel holds the LAST {d} rows of the TF 1 kernel and recurrent_kernel the first: TF 1 multiplies "
                    f"[x_t, h_(t-1)], so x's {d} rows come first: kernel from rows [:{d}], recurrent_kernel from rows [{d}:]")
    if kind in KERAS_ORDER:
        blocks, (want, words) = _tf1_blocks(kind, w, d), KERAS_ORDER[kind]
        size = kernel.shape[-1] // len(want) if kernel.ndim == 2 else 0
        order = []
        for k in range(len(want)):
            part = kernel[:, k * size : (k + 1) * size] if size else None
            order.append(next((n for n, b in blocks.items() if part is not None and part.shape == b.shape
                               and np.allclose(part, b, atol=1e-6)), None))
        if None not in order and tuple(order) != want:
            return f"kernel's column blocks are TF 1's {', '.join(order)}, in that order: {words}"
    for name, got, want in zip(names, ported, _expected_port(kind, w, d)):
        got = np.asarray(got)
        if got.shape != want.shape:
            return f"{name} should have shape {want.shape}, got {got.shape}"
        for k, block in enumerate(BLOCKS[kind]):
            size = want.shape[-1] // len(BLOCKS[kind])
            g, e = got[..., k * size : (k + 1) * size], want[..., k * size : (k + 1) * size]
            if not np.allclose(g, e, atol=1e-6):
                extra = ""
                if kind == "lstm" and name == "bias" and block == "f" and np.allclose(g + 1.0, e, atol=1e-6):
                    extra = " (it lacks the +1.0: TF 1's LSTMCell adds forget_bias=1.0 inside the step, Keras does not)"
                return f"{name}'s {block} block differs from what the TF 1 cell computes{extra}"
    return None


@pytest.mark.covers("port_k06_weights")
@pytest.mark.parametrize("kind", KINDS)
def test_port_k06_weights_computes_the_tf1_cell(kind):
    w = _tf1_weights(kind)
    given = {k: v.copy() for k, v in w.items()}
    ported = n06.port_k06_weights(kind, given, D)
    changed = sorted(k for k in w if not np.array_equal(given[k], w[k]))
    assert not changed, (
        f"port_k06_weights({kind!r}) changed the caller's arrays {changed} in place: leave weights as they are (copy "
        "before adding the forget bias or reordering, np.array(..., np.float32)); porting the same weights twice "
        "must give the same layer"
    )
    assert isinstance(ported, (list, tuple)) and len(ported) == 3, (
        f"port_k06_weights({kind!r}) should return [kernel, recurrent_kernel, bias] for set_weights, got "
        f"{type(ported).__name__} of {len(ported) if hasattr(ported, '__len__') else '?'}"
    )
    layer = _keras_layer(kind, return_sequences=True, return_state=True)
    want_shapes = [tuple(a.shape) for a in layer.get_weights()]
    got_shapes = [tuple(np.shape(a)) for a in ported]
    dtypes = [str(np.asarray(a).dtype) for a in ported]
    assert dtypes == ["float32"] * 3, (
        f"port_k06_weights({kind!r}): return float32 arrays (the docstring's dtype, the layer's), got {dtypes}: "
        "np.asarray(..., np.float32), no float64 on the way"
    )
    from_64 = [str(np.asarray(a).dtype) for a in n06.port_k06_weights(kind, {k: v.astype(np.float64) for k, v in w.items()}, D)]
    assert from_64 == ["float32"] * 3, (
        f"port_k06_weights({kind!r}) given float64 weights (as np.random gives them) returned {from_64}: return "
        "float32 arrays whatever the input's dtype: np.asarray(..., np.float32) on every array you return"
    )
    assert got_shapes == want_shapes, (
        f"port_k06_weights({kind!r}): a Keras {LAYER_CLASS[kind]} with D={D}, H={H} takes arrays of shapes {want_shapes}, "
        f"got {got_shapes}: {MAPPING[kind]}"
    )
    layer.set_weights([np.asarray(a, np.float32) for a in ported])
    x = _inputs()
    outputs, states = _result_parts(layer(x), "the test's layer")
    ref_out, ref_state = _tf1_run(kind, w, x, np.full(B, T))
    diff = float(np.abs(_np(outputs) - ref_out).max())
    if diff > ATOL:
        why = _port_diagnosis(kind, ported, w)
        pytest.fail(
            f"port_k06_weights({kind!r}): the Keras layer with the ported weights does not compute TF 1's "
            f"{'BasicRNNCell' if kind == 'rnn' else CELL_CLASS[kind]} (max |output diff| {diff:.3g}): "
            f"{why + '; ' if why else ''}{MAPPING[kind]}"
        )
    if kind == "lstm":
        _assert_close(states[1], ref_state["c"], "port_k06_weights('lstm'): the final c differs from TF 1's LSTMCell")
    print(f"n06 port_k06_weights({kind!r}) vs numpy TF 1 {kind} cell: max |diff| {diff:.3g}")


# --------------------------------------------------------------------------- equivalence with k06
K06_CELL_CLASS = {"rnn": "BasicRNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}


def _k06_run(kind, x, lengths):
    """The same target's k06: make_cell(kind) run by run_dynamic with sequence_length, in its own graph.

    The cell's biases are set to non-zero values (TF 1 starts them at 0 or 1, which would hide a missing
    bias). Returns (weights {name without scopes: array}, outputs [B, T, H], final state {"h", "c"}).
    """
    tfsetup.require_legacy_rnn()
    with fresh_graph():
        cell = k06.make_cell(kind, H)
        outputs, state = k06.run_dynamic(cell, tf.constant(x), sequence_length=tf.constant(lengths))
        variables = {"/".join(v.op.name.split("/")[2:]): v for v in cell.trainable_variables}
        rng = np.random.RandomState(11)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for name, v in variables.items():
                if name.endswith("bias"):
                    v.load(rng.uniform(-0.5, 0.5, v.shape.as_list()).astype(np.float32), sess)
            weights, out, final = sess.run([variables, outputs, state])
    if kind == "lstm":
        final = {"h": final.h, "c": final.c}
    else:
        final = {"h": final}
    return weights, out, final


def _n06_run(kind, weights, x, lengths):
    """n06's make_layer + port_k06_weights + run_masked + split_result on the same inputs.

    Returns (the ported arrays, outputs, states)."""
    layer = _built(n06.make_layer(kind, H, return_sequences=True, return_state=True))
    ported = n06.port_k06_weights(kind, {k: v.copy() for k, v in weights.items()}, D)
    layer.set_weights([np.asarray(a, np.float32) for a in ported])
    outputs, states = n06.split_result(n06.run_masked(layer, x, lengths))
    return ported, outputs, states


def _port_problem(kind, weights, ported, k06_out, k06_final, outputs, states, lengths):
    """None when n06's layer computes k06's numbers (valid steps, final states), else one line naming the mapping."""
    valid = (np.arange(T)[None, :] < lengths[:, None])[..., None]
    got = _np(outputs) * valid
    diff = np.abs(got - _np(k06_out))
    if diff.max() > ATOL:
        why = _port_diagnosis(kind, ported, weights)
        return f"the outputs at the valid steps differ from k06's ({_where(diff)}): {why + '; ' if why else ''}{MAPPING[kind]}"
    names = ["h", "c"] if kind == "lstm" else ["h"]
    for name, state in zip(names, states):
        d = np.abs(_np(state) - _np(k06_final[name]))
        if d.max() > ATOL:
            return (f"the final {name} differs from k06's ({_where(d)}): Keras returns [h, c], TF 1 LSTMStateTuple(c, h); "
                    f"{MAPPING[kind]}")
    return None


@pytest.mark.needs("k06")
@pytest.mark.covers("port_k06_weights", "make_layer", "run_masked", "split_result", "zero_after_length")
@pytest.mark.parametrize("kind", KINDS)
def test_same_numbers_as_k06(kind):
    x = _inputs()
    weights, k06_out, k06_final = _k06_run(kind, x, LENGTHS)
    ported, outputs, states = _n06_run(kind, weights, x, LENGTHS)
    problem = _port_problem(kind, weights, ported, k06_out, k06_final, outputs, states, LENGTHS)
    assert problem is None, f"n06 {LAYER_CLASS[kind]} vs k06's {K06_CELL_CLASS[kind]}: {problem}"
    like_k06 = np.asarray(n06.zero_after_length(outputs, LENGTHS))
    diff = float(np.abs(_np(like_k06) - _np(k06_out)).max())
    assert diff <= ATOL, (
        f"zero_after_length(n06's outputs) should be k06's dynamic_rnn outputs, zeros past each length included "
        f"(max |diff| {diff:.3g})"
    )
    state_diff = max(float(np.abs(_np(s) - _np(k06_final[n])).max()) for s, n in zip(states, ("h", "c")))
    print(f"n06 {LAYER_CLASS[kind]} vs k06 {K06_CELL_CLASS[kind]} with sequence_length {LENGTHS.tolist()}: "
          f"max |output diff| {diff:.3g}, max |final state diff| {state_diff:.3g}")


@pytest.mark.needs("k06")
@pytest.mark.covers("run_masked", "make_layer")
@pytest.mark.parametrize("kind", KINDS)
def test_masked_steps_keras_vs_dynamic_rnn(kind):
    """The lesson, measured on the same weights: past a length dynamic_rnn outputs zeros, Keras its last valid output."""
    x = _inputs()
    weights, k06_out, k06_final = _k06_run(kind, x, LENGTHS)
    _, outputs, states = _n06_run(kind, weights, x, LENGTHS)
    outputs = np.asarray(outputs)
    for i, n in enumerate(LENGTHS):
        if n in (0, T):
            continue
        assert not k06_out[i, n:].any(), f"k06's run_dynamic should output zeros past length {n} (sequence {i})"
        _assert_close(outputs[i, n:], np.broadcast_to(k06_out[i, n - 1], outputs[i, n:].shape),
                      f"n06: past length {n} the Keras layer should repeat k06's last valid output (step {n - 1}) for "
                      f"sequence {i}: run_masked must pass the mask, and Keras carries the output forward")
    _assert_close(outputs[:, -1], states[0], "n06: with a mask, a Keras layer's outputs[:, -1] IS the final h")
    _assert_close(k06_final["h"], states[0], "n06: the final h should equal k06's final state h (the state at the last "
                  "valid step, zeros for length 0)")
    print(f"n06 {kind}: dynamic_rnn outputs zeros past a length, Keras repeats the last valid output; final states agree")


def _wrong_ports(kind, w):
    """Deliberately wrong ports: (what is wrong, [kernel, recurrent_kernel, bias], a word the message must name)."""
    right = [a.copy() for a in _expected_port(kind, w)]
    ports = []
    if kind == "rnn":
        ports.append(("the rows read as [h, x] instead of [x, h]", [w["kernel"][H:], w["kernel"][:H], w["bias"]], "x's rows come first"))
        ports.append(("the bias left out", [right[0], right[1], np.zeros_like(right[2])], "bias's h block"))
    if kind == "lstm":
        kernel = w["kernel"]
        ports.append(("TF 1's gate order i, j, f, o kept", [kernel[:D], kernel[D:], right[2]], "TF 1's i, j, f, o"))
        no_forget = right[2].copy()
        no_forget[H : 2 * H] -= 1.0
        ports.append(("forget_bias 1.0 not added", [right[0], right[1], no_forget], "forget_bias=1.0"))
        ports.append(("the bias left out", [right[0], right[1], np.zeros_like(right[2])], "bias's i block"))
    if kind == "gru":
        z, r, h = np.split(right[0], 3, axis=1)
        zr, rr, hr = np.split(right[1], 3, axis=1)
        zb, rb, hb = np.split(right[2], 3)
        ports.append(("TF 1's r, u order kept", [np.concatenate([r, z, h], 1), np.concatenate([rr, zr, hr], 1),
                                                  np.concatenate([rb, zb, hb])], "TF 1's r, u, candidate"))
    return ports


@pytest.mark.needs("k06")
@pytest.mark.covers("port_k06_weights")
@pytest.mark.points(0)  # a check of the equivalence check: it calls no function of n06
def test_wrong_ports_are_rejected():
    """The equivalence check above must be able to fail: each wrong port is caught, and the message names the mapping."""
    x = _inputs()
    for kind in KINDS:
        weights, k06_out, k06_final = _k06_run(kind, x, LENGTHS)
        for what, arrays, named in _wrong_ports(kind, weights):
            layer = _keras_layer(kind, return_sequences=True, return_state=True)
            layer.set_weights([np.asarray(a, np.float32) for a in arrays])
            outputs, states = _result_parts(layer(x, mask=tf.sequence_mask(LENGTHS, T)), "the wrong port")
            problem = _port_problem(kind, weights, arrays, k06_out, k06_final, outputs, states, LENGTHS)
            assert problem is not None, f"the equivalence check accepted a wrong {kind} port: {what}"
            assert named in problem, f"for {what} the message should name {named!r}, got: {problem}"
            print(f"n06 wrong {kind} port rejected ({what}): {problem[:150]}")


# --------------------------------------------------------------------------- differential checks (reference)
# The learner's function against solutions/ on generated cases, smallest first (tfkata.differential): the net
# behind the concept tests above. Keras weights are random: a layer or model is built, then given arrays drawn
# from one RandomState by order and shape (the same for two layers whose weights have the same shapes).
from tfkata.differential import Case, compare, eager_outputs, reference  # noqa: E402

REF = reference("n06")


def _fixed(layer, seed=0, scale=0.5):
    """Give every weight of ``layer`` (built) fixed uniform values, by order; returns the weights' shapes."""
    rng = np.random.RandomState(seed)
    shapes = [tuple(w.shape) for w in layer.get_weights()]
    layer.set_weights([rng.uniform(-scale, scale, shape).astype(np.float32) for shape in shapes])
    return [str(list(s)) for s in shapes]


def _layer_case(make, case):
    kind, units, sequences, state, (b, t, d) = case.args

    def call():
        layer = make(kind, units, return_sequences=sequences, return_state=state)
        layer(np.zeros((1, 2, d), np.float32))
        shapes = _fixed(layer)
        return {"layer": type(layer).__name__, "weight shapes": shapes, "result": layer(_inputs(b, t, d, seed=5))}

    return eager_outputs(call)


LAYER_CASES = [
    Case("kind 'rnn', 2 units, on x [1, 1, 3] (batch 1, one step)", ("rnn", 2, False, False, (1, 1, 3))),
    Case("kind 'lstm', 3 units, return_sequences=True, return_state=True, on x [2, 4, 5]", ("lstm", 3, True, True, (2, 4, 5))),
    Case("kind 'gru', 2 units, return_state=True (last output and state), on x [2, 5, 3]", ("gru", 2, False, True, (2, 5, 3))),
]


@pytest.mark.differential
@pytest.mark.covers("make_layer")
def test_make_layer_matches_reference():
    compare("make_layer", n06, REF, LAYER_CASES, lambda mod, case: _layer_case(mod.make_layer, case),
            hint="SimpleRNN / LSTM / GRU(reset_after=False) with units, return_sequences and return_state passed through")


@pytest.mark.differential
@pytest.mark.covers("make_rnn")
def test_make_rnn_matches_reference():
    compare("make_rnn", n06, REF, LAYER_CASES, lambda mod, case: _layer_case(mod.make_rnn, case),
            hint="keras.layers.RNN(SimpleRNNCell / LSTMCell / GRUCell(reset_after=False), return_sequences=..., "
                 "return_state=...)")


def _run_split_result(mod, case):
    def call():
        if case.args == "cells":
            layer = keras.layers.RNN([keras.layers.LSTMCell(2), keras.layers.GRUCell(3, reset_after=False)],
                                     return_state=True)
        else:
            layer = _keras_layer(case.args[0], h=2, return_sequences=case.args[1], return_state=True)
        layer(np.zeros((1, 2, D), np.float32))
        _fixed(layer)
        outputs, states = mod.split_result(layer(_inputs(2, 3, D, seed=6)))
        return {"outputs": outputs, "states": states, "states is a": type(states).__name__}

    return eager_outputs(call)


SPLIT_RESULT_CASES = [
    Case("a SimpleRNN(2) with return_state=True on x [2, 3, 3]", ("rnn", False)),
    Case("an LSTM(2) with return_sequences=True, return_state=True", ("lstm", True)),
    Case("keras.layers.RNN over [LSTMCell(2), GRUCell(3)] with return_state=True", "cells"),
]


@pytest.mark.differential
@pytest.mark.covers("split_result")
def test_split_result_matches_reference():
    compare("split_result", n06, REF, SPLIT_RESULT_CASES, _run_split_result,
            hint="(result[0], list(result[1:])): the outputs, then a Python list of the states in order")


def _run_top_output(mod, case):
    rng = np.random.RandomState(7)

    def build(spec):
        if isinstance(spec, list):
            return [build(s) for s in spec]
        return tf.constant(rng.uniform(-1, 1, (2, spec)).astype(np.float32))

    return eager_outputs(lambda: mod.top_output(build(case.args)))


TOP_OUTPUT_CASES = [
    Case("[h] with h [2, 3] (SimpleRNN, GRU)", [3]),
    Case("[h, c] with h and c [2, 4] (LSTM)", [4, 4]),
    Case("a stack of LSTMs [[h, c] of 3 units, [h, c] of 5 units]", [[3, 3], [5, 5]]),
    Case("a stack [[h] of 2 units (GRU), [h, c] of 4 units (LSTM)]", [[2], [4, 4]]),
]


@pytest.mark.differential
@pytest.mark.covers("top_output")
def test_top_output_matches_reference():
    compare("top_output", n06, REF, TOP_OUTPUT_CASES, _run_top_output,
            hint="the top layer is the LAST entry of a stack's states; its output is h, the FIRST of [h, c]")


def _chain(layers, x, mask=None):
    """The layers run by the test itself (not the kata's run_stack): outputs and each layer's states."""
    states = []
    for layer in layers:
        result = layer(x, mask=mask)
        x, layer_states = result[0], list(result[1:])
        states.append(layer_states)
    return x, states


def _run_make_stack(mod, case):
    args, (b, t, d) = case.args

    def call():
        layers = mod.make_stack(*args)
        _chain(layers, np.zeros((1, 2, d), np.float32))
        shapes = [_fixed(layer, seed=i) for i, layer in enumerate(layers)]
        outputs, states = _chain(layers, _inputs(b, t, d, seed=8))
        return {"layers": [f"{type(layer).__name__}({layer.units})" for layer in layers], "weight shapes": shapes,
                "return_sequences, return_state": [[layer.return_sequences, layer.return_state] for layer in layers],
                "top outputs": outputs, "states": states}

    return eager_outputs(call)


MAKE_STACK_CASES = [
    Case("make_stack((2,), 'rnn') on x [1, 2, 3]", (((2,), "rnn"), (1, 2, 3))),
    Case("make_stack((3, 5), 'gru') on x [2, 4, 2]", (((3, 5), "gru"), (2, 4, 2))),
    Case("make_stack() with its defaults (128, 256) LSTMs, on x [1, 2, 3]", ((), (1, 2, 3))),
]


@pytest.mark.differential
@pytest.mark.covers("make_stack")
def test_make_stack_matches_reference():
    compare("make_stack", n06, REF, MAKE_STACK_CASES, _run_make_stack,
            hint="[make_layer(kind, n, return_sequences=True, return_state=True) for n in sizes], bottom first")


def _run_run_stack(mod, case):
    sizes, kind, (b, t, d), lengths = case.args

    def call():
        layers = REF.make_stack(sizes, kind)  # the reference's layers with fixed weights: only run_stack differs
        _chain(layers, np.zeros((1, 2, d), np.float32))
        for i, layer in enumerate(layers):
            _fixed(layer, seed=i)
        x = _inputs(b, t, d, seed=9)
        if lengths is None:
            return mod.run_stack(layers, x)
        return mod.run_stack(layers, x, mask=tf.sequence_mask(lengths, t))

    return eager_outputs(call)


RUN_STACK_CASES = [
    Case("two GRU layers (2, 3) on x [1, 3, 2], no mask", ((2, 3), "gru", (1, 3, 2), None)),
    Case("two LSTM layers (3, 2) on x [3, 6, 4] with lengths [2, 4, 0] (T = 6 wider than the longest)",
         ((3, 2), "lstm", (3, 6, 4), [2, 4, 0])),
]


@pytest.mark.differential
@pytest.mark.covers("run_stack")
def test_run_stack_matches_reference():
    compare("run_stack", n06, REF, RUN_STACK_CASES, _run_run_stack,
            hint="layer k+1 reads layer k's output sequence, mask=mask for every layer; return (top outputs, "
                 "[each layer's states], bottom first)")


def _run_run_masked(mod, case):
    kind, (b, t), lengths, as_tensors = case.args

    def call():
        layer = _keras_layer(kind, h=3, return_sequences=True, return_state=True)
        _fixed(layer)
        x = _inputs(b, t, D, seed=10)
        if as_tensors:
            return mod.run_masked(layer, tf.constant(x), tf.constant(lengths))
        return mod.run_masked(layer, x, np.array(lengths, np.int32))

    return eager_outputs(call)


RUN_MASKED_CASES = [
    Case("a GRU(3) on x [1, 2, 3] with lengths [1]", ("gru", (1, 2), [1], False)),
    Case("an LSTM(3) on x [4, 5, 3] with lengths [3, 4, 1, 0] (T = 5 wider than the longest)",
         ("lstm", (4, 5), [3, 4, 1, 0], False)),
    Case("a SimpleRNN(3) on a tensor x [2, 4, 3] with int64 tensor lengths [4, 2]", ("rnn", (2, 4), [4, 2], True)),
]


@pytest.mark.differential
@pytest.mark.covers("run_masked")
def test_run_masked_matches_reference():
    compare("run_masked", n06, REF, RUN_MASKED_CASES, _run_run_masked,
            hint="layer(inputs, mask=tf.sequence_mask(lengths, maxlen=tf.shape(inputs)[1]))")


def _run_on_outputs(fn_name):
    def run(mod, case):
        (b, t, h), lengths, as_tensor = case.args
        outputs = np.random.RandomState(b * 10 + t).randn(b, t, h).astype(np.float32)
        lengths = tf.constant(lengths, tf.int64) if as_tensor else np.array(lengths, np.int32)
        return eager_outputs(lambda: getattr(mod, fn_name)(tf.constant(outputs), lengths))

    return run


OUTPUT_CASES = [
    Case("outputs [1, 3, 2] with lengths [3]", ((1, 3, 2), [3], False)),
    Case("outputs [4, 6, 5] with lengths [4, 3, 1, 0] (T = 6 wider than the longest)", ((4, 6, 5), [4, 3, 1, 0], False)),
    Case("outputs [3, 5, 2] with int64 tensor lengths [5, 2, 2] (a repeated length)", ((3, 5, 2), [5, 2, 2], True)),
]


@pytest.mark.differential
@pytest.mark.covers("zero_after_length")
def test_zero_after_length_matches_reference():
    compare("zero_after_length", n06, REF, OUTPUT_CASES, _run_on_outputs("zero_after_length"),
            hint="outputs * tf.sequence_mask(lengths, maxlen=T, dtype=outputs.dtype)[:, :, tf.newaxis]")


@pytest.mark.differential
@pytest.mark.covers("last_valid_output")
def test_last_valid_output_matches_reference():
    compare("last_valid_output", n06, REF, OUTPUT_CASES, _run_on_outputs("last_valid_output"),
            hint="outputs[b, lengths[b] - 1] with tf.gather(..., batch_dims=1), zeros where the length is 0")


def _run_sequential(make, inputs):
    def run(mod, case):
        kwargs, x = case.args

        def call():
            model = getattr(mod, make)(**kwargs)
            shapes = _fixed(model, scale=0.4)
            return {"layers": [type(layer).__name__ for layer in model.layers], "weight shapes": shapes,
                    "outputs": model(inputs(x))}

        return eager_outputs(call)

    return run


EMBEDDING_CASES = [
    Case("make_embedding_rnn(5, 2, 3) on ids [[4, 1, 0]] (id 0 is padding)",
         (dict(vocab_size=5, embed_dim=2, units=3), [[4, 1, 0]])),
    Case("make_embedding_rnn(9, 3, 2, kind='lstm') on ids [[3, 8, 0, 0], [5, 0, 0, 0], [1, 2, 7, 8]] (kind matters)",
         (dict(vocab_size=9, embed_dim=3, units=2, kind="lstm"), [[3, 8, 0, 0], [5, 0, 0, 0], [1, 2, 7, 8]])),
]


@pytest.mark.differential
@pytest.mark.covers("make_embedding_rnn")
def test_make_embedding_rnn_matches_reference():
    compare("make_embedding_rnn", n06, REF, EMBEDDING_CASES,
            _run_sequential("make_embedding_rnn", lambda ids: tf.constant(ids, tf.int32)),
            hint="Sequential([Input((None,), int32), Embedding(vocab_size, embed_dim, mask_zero=True), "
                 "make_layer(kind, units, return_sequences=True)])")


def _padded(spec):
    """float inputs [B, T, D] from (B, T, D, lengths, mask_value): steps past each length all equal mask_value."""
    b, t, d, lengths, value = spec
    x = _inputs(b, t, d, seed=11)
    for i, n in enumerate(lengths):
        x[i, n:] = value
    return tf.constant(x)


MASKING_CASES = [
    Case("make_masking_rnn(2, 3) on x [1, 3, 2] padded with 0.0 after step 2",
         (dict(input_dim=2, units=3), (1, 3, 2, [2], 0.0))),
    Case("make_masking_rnn(3, 2, kind='gru', mask_value=-1.0) on x [3, 5, 3] padded with -1 after lengths [5, 2, 1]",
         (dict(input_dim=3, units=2, kind="gru", mask_value=-1.0), (3, 5, 3, [5, 2, 1], -1.0))),
]


@pytest.mark.differential
@pytest.mark.covers("make_masking_rnn")
def test_make_masking_rnn_matches_reference():
    compare("make_masking_rnn", n06, REF, MASKING_CASES, _run_sequential("make_masking_rnn", _padded),
            hint="Sequential([Input((None, input_dim)), Masking(mask_value), make_layer(kind, units, return_sequences=True)])")


def _run_port(mod, case):
    kind, d, h = case.args
    weights = _tf1_weights(kind, d=d, h=h, seed=d + h)
    return eager_outputs(lambda: [np.asarray(a, np.float32) for a in mod.port_k06_weights(kind, weights, d)])


PORT_CASES = [
    Case("'rnn' with D = 1, H = 2", ("rnn", 1, 2)),
    Case("'lstm' with D = 3, H = 2", ("lstm", 3, 2)),
    Case("'gru' with D = 2, H = 3", ("gru", 2, 3)),
    Case("'lstm' with D = 4, H = 1", ("lstm", 4, 1)),
]


@pytest.mark.differential
@pytest.mark.covers("port_k06_weights")
def test_port_k06_weights_matches_reference():
    compare("port_k06_weights", n06, REF, PORT_CASES, _run_port,
            hint="split the rows (x's: kernel, h's: recurrent_kernel); LSTM blocks i, j, f, o -> i, f, c, o with "
                 "forget_bias 1.0 on f; GRU blocks r, u -> z (= u), r, then the candidate")
