"""Graded tests for k06 · The RNN API.

Every test runs in a fresh default tf.Graph (the harness). From TensorFlow 2.16 on the RNN cells need
tf_keras and TF_USE_LEGACY_KERAS=1: the autouse fixture below checks that first, so a missing
tf_keras gives one sentence naming the fix instead of an AttributeError deep inside TensorFlow.

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import importlib.util

import numpy as np
import pytest
import tensorflow as tf

from tfkata import load_kata, tfsetup

k06 = load_kata("k06_rnn_api")

B, T, D, H = 4, 6, 3, 5


@pytest.fixture(autouse=True)
def _legacy_rnn_available():
    tfsetup.require_legacy_rnn()


def _rnn_cell():
    return tf.compat.v1.nn.rnn_cell


def _inputs(b=B, t=T, d=D, seed=0):
    return np.random.RandomState(seed).randn(b, t, d).astype(np.float32)


def _first_line(exc, limit=120):
    text = str(getattr(exc, "message", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _assert_close(got, expected, message, rtol=1e-5, atol=1e-6):
    """One-line failure: ``message``, then the largest difference and where (float32 tolerances)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{message} (expected shape {expected.shape}, got {got.shape})"
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        diff = np.abs(got.astype(np.float64) - expected)
        where = tuple(int(i) for i in np.unravel_index(diff.argmax(), diff.shape))
        pytest.fail(f"{message} (max |diff| {diff.max():.3g} at {where})")


def _qualname(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_cell_class(cell, kind, cls_name):
    """make_cell(kind) must be tf.compat.v1.nn.rnn_cell.<cls_name>; say which module a look-alike came from."""
    expected = getattr(_rnn_cell(), cls_name)
    got = type(cell)
    if got is expected:
        return
    if got.__name__ == expected.__name__ or ("keras" in got.__module__ and "legacy" not in got.__module__):
        pytest.fail(
            f"make_cell({kind!r}) gave the Keras layer {got.__name__} (module {got.__module__}), not "
            f"tf.compat.v1.nn.rnn_cell.{cls_name} (module {expected.__module__}): use tf.compat.v1.nn.rnn_cell."
            f"{cls_name}; the Keras layer (tf.keras.layers) has no zero_state and graph-mode static_rnn / "
            "dynamic_rnn do not take it"
        )
    pytest.fail(
        f"make_cell({kind!r}) should give tf.compat.v1.nn.rnn_cell.{cls_name}, got {got.__name__} "
        f"(class {_qualname(got)})"
    )


def _zero_state_and_step(cell, x):
    """k06.zero_state_and_step, with a static batch size of None explained in one sentence."""
    try:
        return k06.zero_state_and_step(cell, x)
    except (ValueError, TypeError) as exc:
        if x.shape[0] is not None or "None" not in str(exc) or "same graph" in str(exc):
            raise  # another graph's tensor (a cell kept from an earlier graph) is not a batch size of None
        error = _first_line(exc)
    pytest.fail(  # outside the except block: no chained 100-line TensorFlow traceback
        "zero_state_and_step: the batch size came out None: use tf.shape(x_t)[0] (dynamic) not x_t.shape[0] "
        f"(static, None here: this x_t's batch size is only known at run time) (TensorFlow: {error})"
    )


def _kernel_and_bias(cell, sess):
    """The (kernel [D+H, H], bias [H]) of a BasicRNNCell, as numpy arrays."""
    by_name = {v.name.split("/")[-1].split(":")[0]: v for v in cell.trainable_variables}
    assert set(by_name) == {"kernel", "bias"}, f"expected a BasicRNNCell's kernel and bias, got {sorted(by_name)}"
    return sess.run([by_name["kernel"], by_name["bias"]])


def _numpy_rnn(x, lengths, kernel, bias):
    """The slide's pseudo-code for dynamic_rnn with sequence_length, for a vanilla RNN cell.

    for t in range(T):
        if t < length:  o_t = s_t = tanh([x_t, s_{t-1}] W + b)
        else:           o_t = 0;  s_t = s_{t-1}      (the state is copied through)
    """
    b, t_max, _ = x.shape
    h = kernel.shape[1]
    outputs = np.zeros((b, t_max, h), np.float32)
    state = np.zeros((b, h), np.float32)
    for t in range(t_max):
        new = np.tanh(np.concatenate([x[:, t], state], axis=1) @ kernel + bias)
        valid = (t < np.asarray(lengths))[:, None]
        outputs[:, t] = np.where(valid, new, 0.0)
        state = np.where(valid, new, state)
    return outputs, state


# --------------------------------------------------------------------------- cells
@pytest.mark.covers("make_cell")
@pytest.mark.parametrize(
    "kind, cls",
    [("rnn", "BasicRNNCell"), ("basic_lstm", "BasicLSTMCell"), ("lstm", "LSTMCell"), ("gru", "GRUCell")],
)
def test_make_cell_kinds(kind, cls):
    cell = k06.make_cell(kind, H)
    _check_cell_class(cell, kind, cls)
    assert k06.make_cell(kind, H) is not cell, (
        f"make_cell({kind!r}, {H}): a second call returned the same cell object: make a new cell on every call (a "
        "cached cell keeps the variables of the graph it was first called in; every model needs cells of its own)"
    )
    assert cell.output_size == H, (
        f"make_cell({kind!r}, {H}): expected {H} units (output_size), got {cell.output_size}: pass num_units"
    )
    made = [v.name for v in tf.compat.v1.global_variables()]
    assert not made, (
        f"make_cell({kind!r}, {H}): the cell should create no variables yet (its first call makes them, sized for "
        f"that input), the graph has {made}: return the cell without calling it"
    )


@pytest.mark.covers("make_cell")
@pytest.mark.parametrize("kind", ["basic_lstm", "lstm"])
def test_make_cell_keeps_the_lstm_defaults(kind, sess):
    """The cells as the slides made them: state (c, h) as an LSTMStateTuple, and forget_bias 1.0. With every
    weight 0, a zero input and c = 1, one step leaves c' = sigmoid(forget_bias): 0.731 (0.5 without the bias)."""
    cell = k06.make_cell(kind, 3)
    assert isinstance(cell.state_size, tf.compat.v1.nn.rnn_cell.LSTMStateTuple), (
        f"make_cell({kind!r}, 3): the state should be an LSTMStateTuple(c, h), the cell's state_size is "
        f"{cell.state_size!r}: keep state_is_tuple at its default True (a concatenated [c, h] is TF 1's deprecated form)"
    )
    state = tf.compat.v1.nn.rnn_cell.LSTMStateTuple(tf.ones([1, 3]), tf.zeros([1, 3]))
    _, new = cell(tf.zeros([1, 2]), state)
    sess.run(tf.compat.v1.global_variables_initializer())
    for v in tf.compat.v1.global_variables():
        sess.run(v.assign(tf.zeros_like(v)))
    c = float(sess.run(new.c)[0, 0])
    assert abs(c - 1.0 / (1.0 + np.exp(-1.0))) < 1e-5, (
        f"make_cell({kind!r}, 3): with every weight 0, a zero input and c = 1, one step gives c' = {c:.4f}, where the "
        "default forget_bias=1.0 gives sigmoid(1) = 0.7311: create the cell with num_units alone (no forget_bias of "
        "your own)"
    )


@pytest.mark.covers("make_cell")
def test_make_cell_rejects_unknown_kind():
    try:
        k06.make_cell("transformer", H)
    except ValueError as exc:
        assert "gru" in str(exc) and "lstm" in str(exc), (
            f"make_cell('transformer'): the ValueError should name the valid kinds (rnn, basic_lstm, lstm, gru), "
            f"it says: {_first_line(exc)}"
        )
        return
    except Exception as exc:  # noqa: BLE001 - a dict lookup's KeyError, ...: not the error the docstring names
        other = f"{type(exc).__name__}: {_first_line(exc)}"
        pytest.fail(f"make_cell('transformer') must raise ValueError naming the valid kinds (rnn, basic_lstm, lstm, gru), "
                    f"it raised {other[:80]}: check kind first and raise ValueError(...) yourself", pytrace=False)
    pytest.fail("make_cell('transformer') must raise ValueError naming the valid kinds: rnn, basic_lstm, lstm, gru")


@pytest.mark.covers("make_cell")
@pytest.mark.parametrize("kind", ["LSTM", None])
def test_make_cell_takes_only_the_kinds_as_written(kind):
    try:
        cell = k06.make_cell(kind, H)
    except ValueError:
        return
    except Exception as exc:  # noqa: BLE001 - kind.lower() on None: not the error the docstring names
        other = f"{type(exc).__name__}: {_first_line(exc)}"
        pytest.fail(f"make_cell({kind!r}) must raise ValueError naming the valid kinds, it raised {other[:80]}: "
                    "compare kind with CELL_KINDS as it is, before anything else", pytrace=False)
    pytest.fail(f"make_cell({kind!r}) gave a {type(cell).__name__}: kind is one of CELL_KINDS exactly as written "
                "(rnn, basic_lstm, lstm, gru); anything else, 'LSTM' too, raises ValueError (no .lower())")


# --------------------------------------------------------------------------- the setup guard
@pytest.mark.covers("make_cell")
@pytest.mark.parametrize("problem", ["tf_keras missing", "TF_USE_LEGACY_KERAS unset"])
def test_make_cell_on_a_setup_without_legacy_keras(monkeypatch, problem):
    # The kata's cells work with the real setup of this machine (after the cell tests above, so that a wrong
    # make_cell is told by them first) ...
    cell = k06.make_cell("lstm", H)
    _check_cell_class(cell, "lstm", "LSTMCell")
    # ... and on TensorFlow >= 2.16 without legacy Keras, the guard each test runs first names the fix.
    # Simulated (TF 2.21, nothing really uninstalled); monkeypatch undoes it after the test.
    monkeypatch.setattr(tfsetup, "tf_version", lambda: (2, 21))
    real_find_spec = importlib.util.find_spec
    present = problem != "tf_keras missing"

    def find_spec(name, *args, **kwargs):
        if name == "tf_keras":
            return object() if present else None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    if not present:
        expected = r"pip install 'tf_keras==2\.21\.\*'"
    else:
        monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
        expected = r"set TF_USE_LEGACY_KERAS=1 before TensorFlow is imported"
    with pytest.raises(tfsetup.LegacyKerasMissing, match=expected):
        tfsetup.require_legacy_rnn()


@pytest.mark.covers("zero_state_and_step", "make_cell")
@pytest.mark.parametrize("kind", ["rnn", "gru", "basic_lstm", "lstm"])
def test_zero_state_shapes_and_values(sess, kind):
    cell = k06.make_cell(kind, H)
    x = tf.compat.v1.placeholder(tf.float32, [None, D])  # batch size unknown until run time
    s0, o1, s1 = _zero_state_and_step(cell, x)
    parts = tf.nest.flatten(s0)
    fixed = sorted({p.shape[0] for p in parts if p.shape.rank and p.shape[0] is not None})
    assert not fixed, (
        f"zero_state_and_step: the zero state has the fixed batch size {fixed[0]}, but x_t's batch size is unknown "
        "(None) until run time: take it from the input, cell.zero_state(tf.shape(x_t)[0], x_t.dtype)"
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    for batch in (3, 7):  # any batch size must work: the zero state follows the fed x_t
        feed = {x: _inputs(b=batch)[:, 0]}
        if "lstm" in kind:
            assert isinstance(s0, _rnn_cell().LSTMStateTuple), (
                f"zero_state_and_step: an LSTM's zero state is an LSTMStateTuple(c, h), got {type(s0).__name__}"
            )
            c, h = sess.run([s0.c, s0.h], feed)
            assert c.shape == h.shape == (batch, H), (
                f"zero_state_and_step: for a batch of {batch} expected c and h of shape {(batch, H)}, got {c.shape}, {h.shape}"
            )
            assert not c.any() and not h.any(), "zero_state_and_step: s_0 must be the zero state (all zeros)"
        else:
            got = sess.run(s0, feed)
            assert got.shape == (batch, H), (
                f"zero_state_and_step: for a batch of {batch} expected a zero state of shape {(batch, H)}, got {got.shape}"
            )
            assert not got.any(), "zero_state_and_step: s_0 must be the zero state (all zeros)"


@pytest.mark.covers("zero_state_and_step", "make_cell")
def test_rnn_step_matches_formula(sess):
    cell = k06.make_cell("rnn", H)
    x = tf.compat.v1.placeholder(tf.float32, [None, D])
    _, o1, s1 = _zero_state_and_step(cell, x)
    assert o1.shape.as_list() == [None, H], f"zero_state_and_step: expected an output o_1 of shape [B, {H}], got {o1.shape}"
    sess.run(tf.compat.v1.global_variables_initializer())
    xv = _inputs()[:, 0]
    out, state = sess.run([o1, s1], {x: xv})
    kernel, bias = _kernel_and_bias(cell, sess)
    expected = np.tanh(np.concatenate([xv, np.zeros((B, H), np.float32)], axis=1) @ kernel + bias)
    twice = np.tanh(np.concatenate([xv, expected], axis=1) @ kernel + bias)
    _assert_close(out, expected, "zero_state_and_step: o_1 should be tanh([x_1, s_0] W + b) with s_0 = 0: "
                  + ("yours is a second step on the same x_t: call the cell ONCE, o_1, s_1 = cell(x_t, s_0)"
                     if np.allclose(out, twice, rtol=1e-5, atol=1e-6) else
                     "did the step start from cell.zero_state(...)? (one call of the cell, on x_t and s_0)"))
    _assert_close(state, out, "zero_state_and_step: a vanilla RNN's new state s_1 is its output o_1: "
                  "return (s_0, o_1, s_1) from o_1, s_1 = cell(x_t, s_0)")


@pytest.mark.covers("zero_state_and_step", "make_cell")
def test_gru_output_is_its_state(sess):
    cell = k06.make_cell("gru", H)
    x = tf.constant(_inputs()[:, 0])
    _, o1, s1 = _zero_state_and_step(cell, x)
    assert isinstance(s1, tf.Tensor), f"zero_state_and_step: a GRU's state is one [B, H] tensor, got {type(s1).__name__}"
    sess.run(tf.compat.v1.global_variables_initializer())
    out, state = sess.run([o1, s1])
    assert out.shape == (B, H), f"zero_state_and_step: expected o_1 of shape {(B, H)}, got {out.shape}"
    _assert_close(state, out, "zero_state_and_step: for a GRU the output o_1 is the new state s_1")
    assert np.abs(out).max() > 0, "zero_state_and_step: one GRU step on non-zero input should not stay at zero"


@pytest.mark.covers("zero_state_and_step", "make_cell")
@pytest.mark.parametrize("kind", ["basic_lstm", "lstm"])
def test_lstm_output_is_h_state_is_c_h(sess, kind):
    cell = k06.make_cell(kind, H)
    x = tf.constant(_inputs()[:, 0])
    _, o1, s1 = _zero_state_and_step(cell, x)
    assert isinstance(s1, _rnn_cell().LSTMStateTuple), (
        "zero_state_and_step: an LSTM's new state s_1 is an LSTMStateTuple(c, h), got "
        + ("a [B, H] tensor (the output o_1?)" if isinstance(s1, tf.Tensor) else type(s1).__name__)
        + ": return (s_0, o_1, s_1) in that order, from o_1, s_1 = cell(x_t, s_0)"
    )
    assert isinstance(o1, tf.Tensor), (
        f"zero_state_and_step: an LSTM's output o_1 is one [B, H] tensor, h, got {type(o1).__name__}"
        + (" (the state (c, h)?)" if isinstance(o1, tuple) else "") + ": return (s_0, o_1, s_1) from o_1, s_1 = cell(x_t, s_0)"
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    out, c, h = sess.run([o1, s1.c, s1.h])
    assert out.shape == c.shape == h.shape == (B, H), (
        f"zero_state_and_step: expected o_1, c and h of shape {(B, H)}, got {out.shape}, {c.shape}, {h.shape}"
    )
    _assert_close(out, h, "zero_state_and_step: an LSTM's output o_1 is h, the second half of its state s_1")
    assert not np.allclose(c, h), "zero_state_and_step: c and h should differ (h = o * tanh(c)): is s_1 really (c, h)?"


@pytest.mark.covers("top_output")
def test_top_output_reads_h_from_any_state(sess):
    lstm_tuple = _rnn_cell().LSTMStateTuple

    def rows(base, shape=(2, 3)):
        """A [B, H] state whose entries all differ (B != H), so a row or a column taken for the whole shows."""
        return base + np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 10

    cases = [
        ("a plain [B, H] = [2, 3] tensor (RNN, GRU)", rows(7.0), rows(7.0),
         "a tensor state is the output itself: return it whole (state[-1] of a tensor is its last batch row)"),
        ("a plain [1, 4] tensor (batch 1)", rows(9.0, (1, 4)), rows(9.0, (1, 4)),
         "a tensor state is the output itself: return it whole (state[-1] of a tensor is its last batch row)"),
        ("LSTMStateTuple(c, h)", lstm_tuple(c=rows(0.0), h=rows(1.0)), rows(1.0),
         "an LSTM's output is h (state.h), not c"),
        ("a MultiRNNCell state (LSTMStateTuple(c, h), LSTMStateTuple(c, h [2, 4]))",
         (lstm_tuple(c=rows(2.0), h=rows(3.0)), lstm_tuple(c=rows(4.0, (2, 4)), h=rows(5.0, (2, 4)))), rows(5.0, (2, 4)),
         "the top layer is the LAST entry of a MultiRNNCell state, and its output is h"),
        ("a MultiRNNCell state of GRU tensors ([2, 3], [2, 4])", (rows(6.0), rows(8.0, (2, 4))), rows(8.0, (2, 4)),
         "the top layer is the LAST entry of a MultiRNNCell state"),
        ("a MultiRNNCell state of three GRU layers ([2, 3], [2, 4], [2, 5])",
         (rows(6.0), rows(8.0, (2, 4)), rows(9.0, (2, 5))), rows(9.0, (2, 5)),
         "a stack may have more than two layers: the top layer is the LAST entry, state[-1], not state[1]"),
    ]
    for what, state, expected, fix in cases:
        try:
            top = k06.top_output(tf.nest.map_structure(tf.constant, state))
        except AttributeError as exc:  # .h or .c asked of a plain tensor: which state it was says why
            top, error = None, f"{exc}".splitlines()[0]
        else:
            error = None
        if error is not None:  # outside the except block: no chained traceback
            pytest.fail(f"top_output({what}) raised AttributeError ({error}): only an LSTMStateTuple has .h; a GRU or "
                        f"RNN layer's state is a plain tensor, its output: {fix}", pytrace=False)
        assert isinstance(top, tf.Tensor), (
            f"top_output({what}) should return one [B, H] tensor, got {type(top).__name__}: {fix}"
        )
        assert top.shape.as_list() == list(expected.shape), (
            f"top_output({what}) should return the [B, H] = {list(expected.shape)} tensor, got shape "
            f"{top.shape.as_list()}: {fix}"
        )
        got = sess.run(top)
        assert np.array_equal(got, expected), (
            f"top_output({what}) should give the top layer's output {np.round(expected.astype(float), 2).tolist()}, "
            f"got {np.round(got.astype(float), 2).tolist()}: {fix}"
        )


# --------------------------------------------------------------------------- stacking
@pytest.mark.covers("stacked_lstm")
@pytest.mark.points(2)
def test_stacked_lstm_shapes():
    x = tf.compat.v1.placeholder(tf.float32, [None, T, D])
    outputs, state = k06.stacked_lstm(x)
    assert outputs.shape.as_list() == [None, T, 256], (
        f"stacked_lstm(x [B, {T}, {D}]): expected outputs [B, {T}, 256] (the top layer, 256 units), got {outputs.shape}: "
        "MultiRNNCell([LSTMCell(n) for n in sizes]), bottom layer (128) first"
    )
    assert isinstance(state, tuple) and len(state) == 2, (
        f"stacked_lstm: a MultiRNNCell of two cells has a 2-tuple state, got {type(state).__name__} of {len(state)}"
    )
    for i, (layer, size) in enumerate(zip(state, (128, 256))):
        assert isinstance(layer, _rnn_cell().LSTMStateTuple), (
            f"stacked_lstm: each layer's state is an LSTMStateTuple, got {type(layer).__name__}"
        )
        got = (layer.c.shape.as_list(), layer.h.shape.as_list())
        assert got == ([None, size], [None, size]), (
            f"stacked_lstm: layer {i} ({'the bottom' if i == 0 else 'the top'}) should have {size} units (c, h of "
            f"[B, {size}]), got {got}: "
            + (f"the batch axis came out {T}, the number of time steps: the inputs are batch-major [B, T, D], so "
               "leave dynamic_rnn's time_major=False" if got == ([T, size], [T, size]) else
               "one LSTMCell(n) per entry of sizes, in order")
        )


@pytest.mark.covers("stacked_lstm")
def test_stacked_lstm_other_sizes_and_lstm_cells():
    x = tf.compat.v1.placeholder(tf.float32, [None, T, D])
    outputs, state = k06.stacked_lstm(x, sizes=(3, 7, 2))
    assert outputs.shape.as_list() == [None, T, 2], (
        f"stacked_lstm(x, sizes=(3, 7, 2)): expected outputs [B, {T}, 2] (the top layer's size), got {outputs.shape}: "
        "one LSTMCell per entry of sizes, bottom first"
    )
    got = [layer.h.shape.as_list()[-1] for layer in state] if isinstance(state, tuple) else state
    assert got == [3, 7, 2], f"stacked_lstm(x, sizes=(3, 7, 2)): expected layers of 3, 7, 2 units, got {got}"
    names = [v.op.name for v in tf.compat.v1.global_variables()]
    basic = [n for n in names if "basic_lstm_cell" in n]
    assert not basic, (
        f"stacked_lstm: expected LSTMCell layers (the slide's example), found BasicLSTMCell variables {basic[:2]}: "
        "use tf.compat.v1.nn.rnn_cell.LSTMCell(n)"
    )


@pytest.mark.covers("stacked_lstm")
def test_stacked_lstm_last_output_is_top_h(sess):
    x = tf.constant(_inputs())
    outputs, state = k06.stacked_lstm(x)
    sess.run(tf.compat.v1.global_variables_initializer())
    out, h_top = sess.run([outputs, state[1].h])
    _assert_close(out[:, -1], h_top, "stacked_lstm: without sequence_length, the last output is the top layer's final h")


# --------------------------------------------------------------------------- static vs dynamic
@pytest.mark.covers("unstack_time")
def test_unstack_time_gives_t_steps(sess):
    xv = _inputs()
    steps = k06.unstack_time(tf.constant(xv))
    assert isinstance(steps, list) and len(steps) == T, (
        f"unstack_time([B={B}, T={T}, D={D}]): expected a list of T={T} tensors (one per time step), got "
        f"{type(steps).__name__} of {len(steps)}: "
        + ("return a list (static_rnn's inputs), list(...) of the steps" if isinstance(steps, tuple) and len(steps) == T
           else "time is axis 1, tf.unstack(inputs, axis=1)")
    )
    shapes = {tuple(t.shape.as_list()) for t in steps}
    assert shapes == {(B, D)}, (
        f"unstack_time: each step should be a [B, D] = {[B, D]} tensor, got shapes {sorted(shapes)}: "
        "tf.unstack(inputs, axis=1) drops the time axis (tf.split keeps it as size 1)"
    )
    got = sess.run(steps)
    for t, step in enumerate(got):
        _assert_close(step, xv[:, t], f"unstack_time: element {t} should be x[:, {t}] (time is axis 1)", rtol=0, atol=0)


@pytest.mark.covers("run_static", "run_dynamic", "make_cell")
@pytest.mark.points(2)
def test_static_and_dynamic_share_weights_and_agree(sess):
    xv = _inputs()
    x = tf.constant(xv)
    cell = k06.make_cell("lstm", H)
    static_out, static_state = k06.run_static(cell, tf.unstack(x, axis=1))
    assert cell.trainable_variables, (
        "run_static must unroll the cell it is given: after run_static(cell, ...) that cell still has no weights, so "
        "another cell ran (a new cell made inside run_static?): static_rnn(cell, inputs, dtype=...)"
    )
    assert isinstance(static_out, (list, tuple)), (
        f"run_static: static_rnn gives a Python list of T={T} outputs [B, H]; return that list as it is, got a "
        f"{type(static_out).__name__} of shape {getattr(static_out, 'shape', '?')} (no tf.stack / tf.concat)"
    )
    unpacked = [getattr(getattr(t, "op", None), "type", None) for t in static_out]
    assert not unpacked or set(unpacked) != {"Unpack"}, (
        "run_static: its outputs are tf.unstack of one [B, T, H] tensor (a dynamic_rnn or another loop, unstacked): "
        "the docstring asks for static_rnn, which builds each of the T steps as its own ops: "
        "return tf.compat.v1.nn.static_rnn(cell, inputs, dtype=...)"
    )
    error = time_major = None
    try:
        dyn_out, dyn_state = k06.run_dynamic(cell, x)
    except ValueError as exc:
        if "already exists" not in str(exc):
            raise
        error = _first_line(exc)
    if error is None:
        try:
            tm_out, tm_state = k06.run_dynamic(cell, tf.transpose(x, [1, 0, 2]), time_major=True)
        except ValueError as exc:  # the batch-major call worked: this one is about the layout
            error, time_major = (_first_line(exc), None) if "already exists" in str(exc) else (None, _first_line(exc))
    if time_major is not None:
        pytest.fail(
            f"run_dynamic(..., time_major=True) failed on [T, B, D] = {[T, B, D]} inputs, where the batch-major call "
            "worked: with time_major=True the batch is axis 1 of inputs, so a zero state sized from axis 0 has T "
            "rows; give dynamic_rnn dtype=inputs.dtype and let it make the state (or use tf.shape(inputs)[1]) "
            f"(TensorFlow: {time_major})", pytrace=False
        )
    if error is not None:
        pytest.fail(
            "run_dynamic must run the cell it is given: one cell object holds one set of weights, so a new cell made "
            f"inside run_dynamic tries to create the same variables again (TensorFlow: {error})"
        )
    assert len(static_out) == T and static_out[0].shape.as_list() == [B, H], (
        f"run_static: static_rnn gives a list of T={T} outputs [B, H], got {len(static_out)} of {static_out[0].shape}"
    )
    assert dyn_out.shape.as_list() == [B, T, H], f"run_dynamic: batch-major outputs should be [B, T, H], got {dyn_out.shape}"
    assert tm_out.shape.as_list() == [T, B, H], (
        f"run_dynamic(..., time_major=True): outputs should be [T, B, H] = {[T, B, H]}, got {tm_out.shape.as_list()}"
        + (": the inputs are already [T, B, D]; pass time_major=True to dynamic_rnn instead of transposing "
           "(or transpose the outputs back)" if tm_out.shape.as_list() == [B, T, H] else "")
    )
    names = sorted(v.name for v in tf.compat.v1.trainable_variables())
    assert len(names) == 2, (
        f"run_static and run_dynamic with one cell object must share its one kernel and bias, got variables {names}"
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    # the given cell (its weights, already made) unrolled by TensorFlow itself: which of the two is off
    ref = tf.stack(tf.compat.v1.nn.static_rnn(cell, tf.unstack(x, axis=1), dtype=tf.float32)[0], axis=1)
    s, d, tm, r = sess.run([tf.stack(static_out, axis=1), dyn_out, tf.transpose(tm_out, [1, 0, 2]), ref])
    assert np.allclose(s, r, rtol=1e-5, atol=1e-6), (
        f"run_static: its outputs are not the given cell's run over the T steps in order from the zero state (max "
        f"|diff| {np.abs(s - r).max():.3g}): return static_rnn(cell, inputs, dtype=...) as it is"
    )
    for got, message in (
        (d, "run_dynamic (batch-major) should agree with run_static: both run the given cell from the zero state"),
        (tm, "run_dynamic(..., time_major=True) on the [T, B, D] inputs should agree with run_static: "
             "pass time_major=time_major to dynamic_rnn"),
    ):
        diff = np.abs(got - s)
        assert np.allclose(got, s, rtol=1e-5, atol=1e-6), f"{message} (max |diff| {diff.max():.3g})"
    assert isinstance(static_state, _rnn_cell().LSTMStateTuple), (
        f"run_static: an LSTM's final state is an LSTMStateTuple(c, h), got {type(static_state).__name__}"
        + (" (the last output?)" if isinstance(static_state, tf.Tensor) else "")
        + ": return the (outputs, state) static_rnn gives, as they are"
    )
    ss, ds = sess.run([static_state, dyn_state])
    assert np.allclose(ds.h, ss.h, rtol=1e-5, atol=1e-6) and np.allclose(ds.c, ss.c, rtol=1e-5, atol=1e-6), (
        "run_static and run_dynamic should end in the same final state (c, h)"
    )


def _built_for_any_batch(build):
    """``(build(), None)``, or ``((None, None), line)`` when building on inputs of unknown batch size failed
    because a batch size came out None (a static ``.shape[0]`` where ``tf.shape(...)[0]`` was needed)."""
    try:
        return build(), None
    except (ValueError, TypeError) as exc:
        if "None" not in str(exc) or "same graph" in str(exc):
            raise  # another graph's tensor (a cell kept from an earlier graph) is not a batch size of None
        return (None, None), _first_line(exc)


@pytest.mark.covers("run_static", "make_cell")
def test_run_static_any_batch_size(sess):
    cell = k06.make_cell("gru", H)
    xs = [tf.compat.v1.placeholder(tf.float32, [None, D]) for _ in range(T)]  # batch size unknown until run time
    (outputs, state), error = _built_for_any_batch(lambda: k06.run_static(cell, xs))
    if error is not None:
        pytest.fail(
            "run_static: a batch size came out None: the inputs are often placeholders [None, D]; give static_rnn "
            "dtype=inputs[0].dtype and let it make the zero state, or size it with tf.shape(inputs[0])[0] (dynamic), "
            f"not inputs[0].shape[0] (static, None here) (TensorFlow: {error})"
        )
    sess.run(tf.compat.v1.global_variables_initializer())
    data = _inputs(b=3)
    out, final = sess.run([outputs, state], {x: data[:, t] for t, x in enumerate(xs)})
    assert len(out) == T and out[0].shape == (3, H) and final.shape == (3, H), (
        f"run_static on T={T} placeholders [None, {D}] fed 3 rows: expected {T} outputs {(3, H)} and a final state "
        f"{(3, H)}, got {len(out)} of {out[0].shape} and {final.shape}"
    )


@pytest.mark.covers("run_dynamic", "make_cell")
def test_run_dynamic_any_batch_size(sess):
    cell = k06.make_cell("gru", H)
    x = tf.compat.v1.placeholder(tf.float32, [None, T, D])  # batch size unknown until run time
    (outputs, state), error = _built_for_any_batch(lambda: k06.run_dynamic(cell, x))
    if error is not None:
        pytest.fail(
            "run_dynamic: a batch size came out None: give dynamic_rnn dtype=inputs.dtype and let it make the zero "
            "state, or take the batch size from tf.shape(inputs) (dynamic), not inputs.shape (static, None here) "
            f"(TensorFlow: {error})"
        )
    sess.run(tf.compat.v1.global_variables_initializer())
    for batch in (2, 5):
        out, final = sess.run([outputs, state], {x: _inputs(b=batch)})
        assert out.shape == (batch, T, H) and final.shape == (batch, H), (
            f"run_dynamic on a [None, {T}, {D}] placeholder fed {batch} sequences: expected outputs {(batch, T, H)} "
            f"and a final state {(batch, H)}, got {out.shape} and {final.shape}"
        )


# --------------------------------------------------------------------------- sequence_length
LENGTHS = np.array([6, 3, 1, 0], np.int32)


@pytest.mark.covers("run_dynamic", "make_cell")
@pytest.mark.points(2)
def test_sequence_length_matches_numpy_reference(sess):
    xv = _inputs()
    cell = k06.make_cell("rnn", H)
    lengths = tf.compat.v1.placeholder(tf.int32, [None])
    outputs, state = k06.run_dynamic(cell, tf.constant(xv), sequence_length=lengths)
    sess.run(tf.compat.v1.global_variables_initializer())
    out, final = sess.run([outputs, state], {lengths: LENGTHS})
    kernel, bias = _kernel_and_bias(cell, sess)
    ref_out, ref_state = _numpy_rnn(xv, LENGTHS, kernel, bias)
    assert out.shape == ref_out.shape, f"run_dynamic: expected outputs {ref_out.shape}, got {out.shape}"
    for i, n in enumerate(LENGTHS):
        assert not out[i, n:].any(), (
            f"run_dynamic: sequence {i} has length {n}: its outputs from step {n} on must be zeros, got "
            f"{np.abs(out[i, n:]).max():.3g}: pass sequence_length to dynamic_rnn"
        )
    for i, n in enumerate(LENGTHS):
        assert n == 0 or out[i, n - 1].any() or not ref_out[i, n - 1].any(), (
            f"run_dynamic: sequence {i} has length {n}, but its output at its last valid step {n - 1} is zero: the "
            "outputs stop a step early; pass sequence_length as it is, the number of valid steps"
        )
    _assert_close(out, ref_out, "run_dynamic: the outputs differ from the slide's pseudo-code for a vanilla RNN")
    last_output = np.shape(final) == out[:, -1].shape and np.allclose(final, out[:, -1], rtol=1e-5, atol=1e-6)
    _assert_close(final, ref_state, "run_dynamic: the final state should be the state at each sequence's last valid "
                  "step (zeros for length 0): "
                  + ("yours is outputs[:, -1], the output at step T-1, which is zero for every shorter sequence: return "
                     "the state dynamic_rnn gives, which stops at each sequence's length" if last_output else
                     "pass sequence_length to dynamic_rnn and return the final state it gives"))
    # The same cell (its weights already made) on the time-major layout [T, B, D], with the same lengths.
    tm_outputs, tm_state = k06.run_dynamic(cell, tf.constant(xv.transpose(1, 0, 2)), sequence_length=lengths,
                                           time_major=True)
    tm_out, tm_final = sess.run([tm_outputs, tm_state], {lengths: LENGTHS})
    assert tm_out.shape == (T, B, H), (
        f"run_dynamic(..., time_major=True): outputs should be [T, B, H] = {[T, B, H]}, got {list(tm_out.shape)}: pass "
        "time_major=True to dynamic_rnn (the inputs are [T, B, D] and so are the outputs)"
    )
    for i, n in enumerate(LENGTHS):
        assert not tm_out[n:, i].any(), (
            f"run_dynamic(..., time_major=True): sequence {i} has length {n}: its outputs from step {n} on must be "
            f"zeros, got {np.abs(tm_out[n:, i]).max():.3g}: pass sequence_length to dynamic_rnn in the time-major "
            "case too"
        )
    _assert_close(tm_final, ref_state, "run_dynamic(..., time_major=True): the final state should be the state at "
                  "each sequence's last valid step: pass sequence_length and time_major to dynamic_rnn")


@pytest.mark.covers("run_dynamic", "make_cell", "top_output")
@pytest.mark.points(2)
def test_sequence_length_lstm_final_state_is_last_valid_step(sess):
    xv = _inputs()
    cell = k06.make_cell("lstm", H)
    outputs, state = k06.run_dynamic(cell, tf.constant(xv), sequence_length=tf.constant(LENGTHS))
    # The same cell on each sequence cut to its length, alone, without sequence_length.
    alone = [k06.run_dynamic(cell, tf.constant(xv[i : i + 1, :n]))[1] for i, n in enumerate(LENGTHS) if n > 0]
    sess.run(tf.compat.v1.global_variables_initializer())
    c, h, top = sess.run([state.c, state.h, k06.top_output(state)])
    out = sess.run(outputs)
    for k, (i, n) in enumerate((i, n) for i, n in enumerate(LENGTHS) if n > 0):
        ref = sess.run(alone[k])
        for got, want, part in ((c[i], ref.c[0], "c"), (h[i], ref.h[0], "h")):
            _assert_close(got, want, f"run_dynamic with sequence_length: the final {part} of sequence {i} (length {n}) "
                          f"should be its state after step {n - 1}, as if it ran alone on its first {n} steps")
        _assert_close(top[i], out[i, n - 1], f"top_output(final state) of sequence {i} should be h, its output at "
                      f"step {n - 1} (outputs[:, -1] is zeros past the length)")
    assert not c[LENGTHS == 0].any(), "run_dynamic: a length-0 sequence keeps the zero state"



# --------------------------------------------------------------------------- differential checks
# The net behind the concept tests above: each function against the reference (solutions/) on small inputs
# chosen to show what the concept tests' cases cannot (batch 1, B != T != D != H, three layers, T wider than
# the longest sequence, time_major together with sequence_length). Both sides get the same weights: the
# trainable variables, in the order they were made, are set to values drawn from their position and shape
# (names may differ: a cell's scope is the learner's choice). The cells are made here, not by make_cell,
# except in make_cell's own check.
from tfkata import fresh_graph  # noqa: E402
from tfkata.differential import Case, compare, reference  # noqa: E402

REF = reference("k06")


def _quick_session_config():
    """No graph rewriting before the first run (grappler): these small graphs run once, and rewriting them took
    longer than running them. Both sides run the same way."""
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    config.graph_options.optimizer_options.opt_level = tf.compat.v1.OptimizerOptions.L0
    return config


def _fixed_weights(build, feed=None):
    """Build in a fresh seeded graph, give the trainable variables fixed values by position, run what
    ``build`` returns (a nest of tensors)."""
    with fresh_graph() as graph:
        built = build()
        with tf.compat.v1.Session(graph=graph, config=_quick_session_config()) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            for i, var in enumerate(tf.compat.v1.trainable_variables()):
                rng = np.random.RandomState(100 + i)
                var.load((rng.standard_normal(var.shape.as_list()) * 0.5).astype(np.float32), s)
            return s.run(built, feed(built) if feed else None)


def _some_state(cell, batch, seed):
    """A non-zero state of ``cell``'s structure (from the zero state its forget gate would not show)."""
    rng = np.random.RandomState(seed)
    zero = cell.zero_state(batch, tf.float32)
    return tf.nest.pack_sequence_as(zero, [z + rng.standard_normal((batch, int(z.shape[-1]))).astype(np.float32)
                                           for z in tf.nest.flatten(zero)])


def _cell(kind, units):
    rnn_cell = _rnn_cell()
    return {"rnn": rnn_cell.BasicRNNCell, "basic_lstm": rnn_cell.BasicLSTMCell, "lstm": rnn_cell.LSTMCell,
            "gru": rnn_cell.GRUCell}[kind](units)


@pytest.mark.differential
@pytest.mark.covers("make_cell")
def test_make_cell_matches_reference():
    def run(mod, case):
        kind, units = case.args
        cell = None

        def build():
            nonlocal cell
            cell = mod.make_cell(kind, units)
            out, state = cell(tf.constant(_inputs(b=2, d=3, seed=7)[:, 0]), _some_state(cell, 2, seed=8))
            return out, (state)
        values = _fixed_weights(build)
        return type(cell).__name__, cell.output_size, values
    cases = [Case(f"make_cell({kind!r}, {units}), one step on x [2, 3] from a non-zero state", (kind, units))
             for kind, units in (("rnn", 1), ("basic_lstm", 4), ("lstm", 4), ("gru", 5))]
    compare("make_cell", k06, REF, cases, run)


@pytest.mark.differential
@pytest.mark.covers("zero_state_and_step")
def test_zero_state_and_step_matches_reference():
    def run(mod, case):
        kind, b, d, h = case.args
        return _fixed_weights(lambda: (mod.zero_state_and_step(_cell(kind, h), tf.constant(_inputs(b=b, d=d, seed=8)[:, 0]))))
    cases = [Case(f"a {kind} cell of {h} units on x_t [{b}, {d}] (s_0, o_1, s_1)", (kind, b, d, h))
             for kind, b, d, h in (("rnn", 1, 2, 3), ("lstm", 3, 2, 4), ("gru", 2, 5, 3))]
    compare("zero_state_and_step", k06, REF, cases, run)


@pytest.mark.differential
@pytest.mark.covers("top_output")
def test_top_output_matches_reference():
    lstm_tuple = _rnn_cell().LSTMStateTuple
    rng = np.random.RandomState(9)

    def t(b, h):
        return rng.standard_normal((b, h)).astype(np.float32)

    cases = [
        Case("a [1, 3] tensor (batch 1)", t(1, 3)),
        Case("an LSTMStateTuple of [3, 2] tensors", lstm_tuple(t(3, 2), t(3, 2))),
        Case("a MultiRNNCell state of three LSTM layers (H 2, 4, 5)",
             tuple(lstm_tuple(t(2, n), t(2, n)) for n in (2, 4, 5))),
        Case("a MultiRNNCell state of three GRU layers (H 3, 1, 4)", tuple(t(2, n) for n in (3, 1, 4))),
        Case("a MultiRNNCell state of one LSTM layer", (lstm_tuple(t(2, 3), t(2, 3)),)),
    ]
    compare("top_output", k06, REF, cases,
            lambda mod, c: _fixed_weights(lambda: mod.top_output(tf.nest.map_structure(tf.constant, c.args))))


@pytest.mark.differential
@pytest.mark.covers("stacked_lstm")
def test_stacked_lstm_matches_reference():
    def run(mod, case):
        (b, t, d), sizes = case.args
        return _fixed_weights(lambda: (mod.stacked_lstm(tf.constant(_inputs(b, t, d, seed=10)), sizes=sizes)))
    cases = [Case("x [1, 3, 4] (batch 1) with sizes (5, 2, 3)", ((1, 3, 4), (5, 2, 3)))]
    compare("stacked_lstm", k06, REF, cases, run)


@pytest.mark.differential
@pytest.mark.covers("unstack_time")
def test_unstack_time_matches_reference():
    cases = [Case("x [1, 1, 2]", _inputs(1, 1, 2, seed=11)), Case("x [2, 3, 4]", _inputs(2, 3, 4, seed=12))]
    compare("unstack_time", k06, REF, cases, lambda mod, c: _fixed_weights(lambda: mod.unstack_time(tf.constant(c.args))))


@pytest.mark.differential
@pytest.mark.covers("run_static")
def test_run_static_matches_reference():
    def run(mod, case):
        kind, (b, t, d), h = case.args
        return _fixed_weights(lambda: (mod.run_static(
            _cell(kind, h), tf.unstack(tf.constant(_inputs(b, t, d, seed=13)), axis=1))))
    cases = [Case("a rnn cell (3 units) over 1 step of [1, 2]", ("rnn", (1, 1, 2), 3)),
             Case("an lstm cell (4 units) over 3 steps of [2, 5]", ("lstm", (2, 3, 5), 4))]
    compare("run_static", k06, REF, cases, run)


@pytest.mark.differential
@pytest.mark.covers("run_dynamic")
def test_run_dynamic_matches_reference():
    def run(mod, case):
        kind, (b, t, d), h, lengths, time_major = case.args

        def build():
            x = _inputs(b, t, d, seed=14)
            x = np.transpose(x, (1, 0, 2)) if time_major else x
            seq = None if lengths is None else tf.constant(np.array(lengths, np.int32))
            return (mod.run_dynamic(_cell(kind, h), tf.constant(x), sequence_length=seq, time_major=time_major))
        return _fixed_weights(build)
    cases = [
        Case("a rnn cell (3 units), x [1, 2, 4], no lengths", ("rnn", (1, 2, 4), 3, None, False)),
        Case("an lstm cell (4 units), x [3, 5, 2] with lengths [2, 1, 3] (T wider than the longest)",
             ("lstm", (3, 5, 2), 4, [2, 1, 3], False)),
        Case("an lstm cell (3 units), time-major x [T=5, B=2, D=4] with lengths [3, 0]",
             ("lstm", (2, 5, 4), 3, [3, 0], True)),
    ]
    compare("run_dynamic", k06, REF, cases, run)
