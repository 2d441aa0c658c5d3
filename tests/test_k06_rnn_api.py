"""Graded tests for k06 · The RNN API.

Every test runs in a fresh default tf.Graph (the harness). From TensorFlow 2.16 on the RNN cells need
tf_keras and TF_USE_LEGACY_KERAS=1: the autouse fixture below checks that first, so a missing
tf_keras gives one sentence naming the fix instead of an AttributeError deep inside TensorFlow.
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


# --------------------------------------------------------------------------- the setup guard
@pytest.mark.parametrize("problem", ["tf_keras missing", "TF_USE_LEGACY_KERAS unset"])
def test_legacy_keras_problems_give_a_clear_message(monkeypatch, problem):
    # The kata's cells work with the real setup of this machine ...
    cell = k06.make_cell("lstm", H)
    assert isinstance(cell, _rnn_cell().LSTMCell), f"make_cell('lstm') gave {type(cell).__name__}"
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


# --------------------------------------------------------------------------- cells
@pytest.mark.parametrize(
    "kind, cls",
    [("rnn", "BasicRNNCell"), ("basic_lstm", "BasicLSTMCell"), ("lstm", "LSTMCell"), ("gru", "GRUCell")],
)
def test_make_cell_kinds(kind, cls):
    cell = k06.make_cell(kind, H)
    expected = getattr(_rnn_cell(), cls)
    assert type(cell) is expected, f"make_cell({kind!r}) should give a {cls}, got {type(cell).__name__}"
    assert cell.output_size == H, f"expected {H} units (output_size), got {cell.output_size}"


def test_make_cell_rejects_unknown_kind():
    with pytest.raises(ValueError, match="gru"):
        k06.make_cell("transformer", H)


@pytest.mark.parametrize("kind", ["rnn", "gru", "basic_lstm", "lstm"])
def test_zero_state_shapes_and_values(sess, kind):
    cell = k06.make_cell(kind, H)
    x = tf.compat.v1.placeholder(tf.float32, [None, D])  # batch size unknown until run time
    s0, o1, s1 = k06.zero_state_and_step(cell, x)
    feed = {x: _inputs()[:, 0]}
    sess.run(tf.compat.v1.global_variables_initializer())
    if "lstm" in kind:
        assert isinstance(s0, _rnn_cell().LSTMStateTuple), (
            f"an LSTM's zero state is an LSTMStateTuple(c, h), got {type(s0).__name__}"
        )
        c, h = sess.run([s0.c, s0.h], feed)
        assert c.shape == h.shape == (B, H), f"expected c and h of shape {(B, H)}, got {c.shape}, {h.shape}"
        assert not c.any() and not h.any(), "the zero state must be all zeros"
    else:
        got = sess.run(s0, feed)
        assert got.shape == (B, H), f"expected a zero state of shape {(B, H)}, got {got.shape}"
        assert not got.any(), "the zero state must be all zeros"


def test_rnn_step_matches_formula(sess):
    cell = k06.make_cell("rnn", H)
    x = tf.compat.v1.placeholder(tf.float32, [None, D])
    _, o1, s1 = k06.zero_state_and_step(cell, x)
    assert o1.shape.as_list() == [None, H], f"expected an output [B, {H}], got {o1.shape}"
    sess.run(tf.compat.v1.global_variables_initializer())
    xv = _inputs()[:, 0]
    out, state = sess.run([o1, s1], {x: xv})
    kernel, bias = _kernel_and_bias(cell, sess)
    expected = np.tanh(np.concatenate([xv, np.zeros((B, H), np.float32)], axis=1) @ kernel + bias)
    np.testing.assert_allclose(
        out, expected, rtol=1e-5, atol=1e-6,
        err_msg="o_1 should be tanh([x_1, s_0] W + b) with s_0 = 0: did the step start from zero_state?",
    )
    np.testing.assert_array_equal(state, out, err_msg="a vanilla RNN's new state is its output")


def test_gru_output_is_its_state(sess):
    cell = k06.make_cell("gru", H)
    x = tf.constant(_inputs()[:, 0])
    _, o1, s1 = k06.zero_state_and_step(cell, x)
    assert isinstance(s1, tf.Tensor), f"a GRU's state is one [B, H] tensor, got {type(s1).__name__}"
    sess.run(tf.compat.v1.global_variables_initializer())
    out, state = sess.run([o1, s1])
    assert out.shape == (B, H)
    np.testing.assert_array_equal(out, state, err_msg="for a GRU the output is the new state")
    assert np.abs(out).max() > 0, "one step on non-zero input should not stay at zero"


@pytest.mark.parametrize("kind", ["basic_lstm", "lstm"])
def test_lstm_output_is_h_state_is_c_h(sess, kind):
    cell = k06.make_cell(kind, H)
    x = tf.constant(_inputs()[:, 0])
    _, o1, s1 = k06.zero_state_and_step(cell, x)
    assert isinstance(s1, _rnn_cell().LSTMStateTuple), (
        f"an LSTM's state is an LSTMStateTuple(c, h), got {type(s1).__name__}"
    )
    sess.run(tf.compat.v1.global_variables_initializer())
    out, c, h = sess.run([o1, s1.c, s1.h])
    assert out.shape == c.shape == h.shape == (B, H)
    np.testing.assert_array_equal(out, h, err_msg="an LSTM's output is h, the second half of its state")
    assert not np.allclose(c, h), "c and h should differ (h = o * tanh(c)): is the state really (c, h)?"


def test_top_output_reads_h_from_any_state(sess):
    x = tf.constant(_inputs())
    outputs, state = k06.stacked_lstm(x, sizes=(4, H))
    gru_state = tf.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
    lstm_state = _rnn_cell().LSTMStateTuple(c=tf.zeros([2, 3]), h=tf.ones([2, 3]))
    sess.run(tf.compat.v1.global_variables_initializer())
    top = k06.top_output(state)
    assert top.shape.as_list()[-1] == H, (
        f"the top layer of a MultiRNNCell state is the LAST entry ({H} units), got shape {top.shape}"
    )
    np.testing.assert_array_equal(sess.run(top), sess.run(state[-1].h), err_msg="expected the top layer's h")
    np.testing.assert_array_equal(sess.run(k06.top_output(lstm_state)), np.ones([2, 3]),
                                  err_msg="for an LSTMStateTuple the output is h (ones here), not c (zeros)")
    np.testing.assert_array_equal(sess.run(k06.top_output(gru_state)), sess.run(gru_state),
                                  err_msg="a plain tensor state is the output itself")


# --------------------------------------------------------------------------- stacking
@pytest.mark.points(2)
def test_stacked_lstm_shapes():
    x = tf.compat.v1.placeholder(tf.float32, [None, T, D])
    outputs, state = k06.stacked_lstm(x)
    assert outputs.shape.as_list() == [None, T, 256], f"expected outputs [B, {T}, 256], got {outputs.shape}"
    assert isinstance(state, tuple) and len(state) == 2, (
        f"a MultiRNNCell of two cells has a 2-tuple state, got {type(state).__name__} of {len(state)}"
    )
    for layer, size in zip(state, (128, 256)):
        assert isinstance(layer, _rnn_cell().LSTMStateTuple), f"each layer's state is an LSTMStateTuple, got {type(layer).__name__}"
        got = (layer.c.shape.as_list(), layer.h.shape.as_list())
        assert got == ([None, size], [None, size]), f"expected c, h of [B, {size}], got {got}"


def test_stacked_lstm_last_output_is_top_h(sess):
    x = tf.constant(_inputs())
    outputs, state = k06.stacked_lstm(x)
    sess.run(tf.compat.v1.global_variables_initializer())
    out, h_top = sess.run([outputs, state[1].h])
    np.testing.assert_allclose(out[:, -1], h_top, rtol=1e-6,
                               err_msg="without sequence_length, the last output is the top layer's final h")


# --------------------------------------------------------------------------- static vs dynamic
def test_unstack_time_gives_t_steps(sess):
    xv = _inputs()
    steps = k06.unstack_time(tf.constant(xv))
    assert isinstance(steps, list) and len(steps) == T, (
        f"expected a list of T={T} tensors (one per time step), got {type(steps).__name__} of {len(steps)}"
    )
    got = sess.run(steps)
    for t, step in enumerate(got):
        np.testing.assert_array_equal(step, xv[:, t], err_msg=f"element {t} should be x[:, {t}] (axis=1, not 0)")


@pytest.mark.points(2)
def test_static_and_dynamic_share_weights_and_agree(sess):
    xv = _inputs()
    x = tf.constant(xv)
    cell = k06.make_cell("lstm", H)
    static_out, static_state = k06.run_static(cell, tf.unstack(x, axis=1))
    dyn_out, dyn_state = k06.run_dynamic(cell, x)
    tm_out, tm_state = k06.run_dynamic(cell, tf.transpose(x, [1, 0, 2]), time_major=True)
    assert len(static_out) == T and static_out[0].shape.as_list() == [B, H], (
        f"static_rnn gives a list of T [B, H] outputs, got {len(static_out)} of {static_out[0].shape}"
    )
    assert dyn_out.shape.as_list() == [B, T, H], f"batch-major outputs should be [B, T, H], got {dyn_out.shape}"
    assert tm_out.shape.as_list() == [T, B, H], f"time-major outputs should be [T, B, H], got {tm_out.shape}"
    names = sorted(v.name for v in tf.compat.v1.trainable_variables())
    assert len(names) == 2, f"one cell object means one kernel and one bias, got {names}"
    sess.run(tf.compat.v1.global_variables_initializer())
    s, d, tm = sess.run([tf.stack(static_out, axis=1), dyn_out, tf.transpose(tm_out, [1, 0, 2])])
    np.testing.assert_allclose(d, s, rtol=1e-6, atol=1e-7, err_msg="dynamic_rnn and static_rnn should agree")
    np.testing.assert_allclose(tm, s, rtol=1e-6, atol=1e-7, err_msg="time-major dynamic_rnn should agree too")
    ss, ds = sess.run([static_state, dyn_state])
    np.testing.assert_allclose(ds.h, ss.h, rtol=1e-6, atol=1e-7, err_msg="final states should agree")


# --------------------------------------------------------------------------- sequence_length
LENGTHS = np.array([6, 3, 1, 0], np.int32)


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
    assert out.shape == ref_out.shape, f"expected outputs {ref_out.shape}, got {out.shape}"
    for i, n in enumerate(LENGTHS):
        assert not out[i, n:].any(), (
            f"sequence {i} has length {n}: its outputs from step {n} on must be zeros, got "
            f"{np.abs(out[i, n:]).max():.3g}: pass sequence_length to dynamic_rnn"
        )
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6, err_msg="outputs differ from the pseudo-code")
    np.testing.assert_allclose(
        final, ref_state, rtol=1e-5, atol=1e-6,
        err_msg="the final state should be the state at each sequence's last valid step (zeros for length 0)",
    )


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
        np.testing.assert_allclose(c[i], ref.c[0], rtol=1e-5, atol=1e-6, err_msg=f"c of sequence {i} (length {n})")
        np.testing.assert_allclose(h[i], ref.h[0], rtol=1e-5, atol=1e-6, err_msg=f"h of sequence {i} (length {n})")
        np.testing.assert_allclose(
            top[i], out[i, n - 1], rtol=1e-6, atol=1e-7,
            err_msg=f"top_output(final state) of sequence {i} should be h, its output at step {n - 1} "
            "(outputs[:, -1] is zeros past the length)",
        )
    assert not c[LENGTHS == 0].any(), "a length-0 sequence keeps the zero state"
