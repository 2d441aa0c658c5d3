"""Graded tests for k05 · A character language model (RNN：字符语言模型).

Order: vocabulary and batches, the LSTM cell, the unrolled model and its saved state, the optimizer,
perplexity and sampling, then training: on the offline corpus (Python's help texts), on a synthetic
corpus whose lowest possible perplexity is known exactly (the leak detector), and, with --runslow,
the tutorial's full schedule on text8 when text8.zip is present.

Training figures (seeded, CPU, TF 2.12-2.21; the measurements are listed in bench/k05_train.py): the
thresholds below come from those runs with headroom; every run prints what it reached.
"""
import math

import numpy as np
import pytest
import tensorflow as tf

from tfkata import fresh_graph, load_kata
from tfkata.data import text as corpora

k05 = load_kata("k05_char_lm")

V = 27  # vocabulary: ' ' and a-z

# ---- training settings and thresholds (measured: see the docstring of bench/k05_train.py)
# The tutorial's schedule cut to 2001 steps (summaries every 100, samples every 1000) to keep CI short:
# measured 3.50 at step 2000 on TF 2.21 (3.39-3.44 at step 3000 on TF 2.12-2.21; valid: first 1000 chars).
OFFLINE_STEPS = 2001
OFFLINE_MAX_PERPLEXITY = 4.3
SYNTHETIC_STEPS = 2001
SYNTHETIC_TRAIN_CHARS = 1_000_000
SYNTHETIC_VALID_CHARS = 5_000
# The oracle's (the chain's own) perplexity on 5,000-character texts has a standard deviation of
# 0.0064 around the floor (300 seeded texts): 0.03 below the floor is ~4.7 sigma. No model, however
# good, lands lower without seeing its labels.
FLOOR_TOLERANCE = 0.03
# How close a correct model gets in SYNTHETIC_STEPS steps: measured validation 1.3290 and training
# 1.3364 against the floor 1.3181 (+0.011 / +0.018, every TF version); a model that has not learnt the
# chain stays far above, a model that sees its labels falls far below (1.0001 with labels = inputs).
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
def test_char2id_maps_space_and_letters():
    got = [k05.char2id(c) for c in " az"]
    assert got == [0, 1, 26], f"expected ' ' -> 0, 'a' -> 1, 'z' -> 26, got {got}"
    ids = [k05.char2id(c) for c in "abcdefghijklmnopqrstuvwxyz"]
    assert ids == list(range(1, 27)), f"a..z must map to 1..26 in order, got {ids}"
    assert all(type(i) is int for i in ids), "char2id must return Python ints (use ord(), not a numpy value)"


def test_char2id_warns_on_unexpected_character():
    with pytest.warns(UserWarning, match="ï") as caught:
        got = k05.char2id("ï")
    assert got == 0, f"an unexpected character maps to 0 (the space), got {got}"
    assert len(caught) >= 1, "warn with warnings.warn(...), do not print"


def test_id2char_inverts_char2id():
    assert k05.id2char(0) == " ", f"id 0 is the space, got {k05.id2char(0)!r}"
    back = "".join(k05.id2char(k05.char2id(c)) for c in " abcxyz")
    assert back == " abcxyz", f"id2char(char2id(c)) should give c back, got {back!r}: is 'a' id 1 (0 is the space)?"


# --------------------------------------------------------------------------- batches
ALPHABET = "abcdefghijklmnopqrstuvwxyz"  # 26 characters, batch 4 -> segments of 6: cursors 0, 6, 12, 18


def test_batch_generator_shapes_and_one_hot():
    batches = k05.BatchGenerator(ALPHABET, 4, 3).next()
    assert isinstance(batches, list) and len(batches) == 4, (
        f"next() returns a list of num_unrollings + 1 = 4 batches, got {type(batches).__name__} of "
        f"length {len(batches) if hasattr(batches, '__len__') else '?'}"
    )
    for k, b in enumerate(batches):
        assert b.shape == (4, V), f"batch {k}: expected shape [batch_size, 27] = (4, 27), got {b.shape}"
        assert np.issubdtype(b.dtype, np.floating), f"batch {k}: expected a float array, got {b.dtype}"
        assert np.array_equal(b.sum(axis=1), np.ones(4)) and set(np.unique(b)) <= {0.0, 1.0}, (
            f"batch {k} must be one-hot: exactly one 1.0 per row"
        )


def test_batch_generator_cursors_start_at_segments():
    gen = k05.BatchGenerator(ALPHABET, 4, 3)
    # __init__ reads the first batch, so every cursor has moved one past its segment start
    assert list(gen._cursor) == [1, 7, 13, 19], (
        f"expected cursors [1, 7, 13, 19] after __init__ (segments start at 0, 6, 12, 18 and the first "
        f"batch has been read), got {list(gen._cursor)}: segment = len(text) // batch_size"
    )


def test_batch_generator_first_call_strings():
    got = k05.batches2string(k05.BatchGenerator(ALPHABET, 4, 3).next())
    assert got == ["abcd", "ghij", "mnop", "stuv"], (
        f"expected ['abcd', 'ghij', 'mnop', 'stuv'] (4 rows reading the 4 segments, 3 unrollings + 1), got {got}"
    )


def test_batch_generator_continues_with_last_batch():
    gen = k05.BatchGenerator(ALPHABET, 4, 3)
    first = k05.batches2string(gen.next())
    second = k05.batches2string(gen.next())
    assert second == ["defg", "jklm", "pqrs", "vwxy"], (
        f"second call: expected ['defg', 'jklm', 'pqrs', 'vwxy'], got {second}: each call starts with "
        "the LAST batch of the previous call, then num_unrollings new ones"
    )
    assert [s[0] for s in second] == [s[-1] for s in first], "the first batch of a call must repeat the last of the previous one"


def test_batch_generator_wraps_around():
    gen = k05.BatchGenerator(ALPHABET, 4, 3)
    gen.next()
    gen.next()
    third = k05.batches2string(gen.next())
    assert third == ["ghij", "mnop", "stuv", "yzab"], (
        f"third call: expected ['ghij', 'mnop', 'stuv', 'yzab'] (row 3 runs past 'z' and wraps to the start), "
        f"got {third}: cursor = (cursor + 1) % len(text)"
    )


def test_characters_takes_the_most_likely():
    probs = np.full((3, V), 0.01)
    probs[0, 0], probs[1, 1], probs[2, 26] = 0.5, 0.5, 0.5
    got = k05.characters(probs)
    assert got == [" ", "a", "z"], f"expected [' ', 'a', 'z'] (argmax of each row), got {got}"


def test_batches2string_reads_rows_across_batches():
    eye = np.eye(V, dtype=np.float32)
    batches = [eye[[8, 0]], eye[[0, 15]], eye[[13, 9]]]  # row 0: ids 8, 0, 13; row 1: ids 0, 15, 9
    got = k05.batches2string(batches)
    assert got == ["h m", " oi"], f"expected ['h m', ' oi'], got {got}: row b is the b-th character of every batch, joined"


# --------------------------------------------------------------------------- the LSTM cell
def test_create_parameters_shapes():
    params = k05.create_parameters(V, 16)
    expected = {}
    for g in "ifco":
        expected.update({g + "x": [V, 16], g + "m": [16, 16], g + "b": [1, 16]})
    expected.update({"w": [16, V], "b": [V]})
    assert set(params) == set(expected), f"expected the keys {sorted(expected)}, got {sorted(params)}"
    for key, shape in expected.items():
        got = params[key].shape.as_list()
        assert got == shape, f"params[{key!r}]: expected shape {shape}, got {got}"
        assert params[key].dtype.base_dtype == tf.float32, f"params[{key!r}] must be float32"
    trainable = {v.ref() for v in tf.compat.v1.trainable_variables()}
    assert all(params[k].ref() in trainable for k in expected), "all parameters must be trainable tf.Variables"


def test_create_parameters_biases_start_at_zero(sess):
    params = k05.create_parameters(V, 16)
    sess.run(tf.compat.v1.global_variables_initializer())
    values = sess.run(params)
    for key in ("ib", "fb", "cb", "ob", "b"):
        assert not values[key].any(), f"{key} is a bias: it starts as zeros"
    for key in ("ix", "im", "w"):
        assert values[key].std() > 0.01, f"{key} is a weight: it starts random (truncated_normal), not constant"


def test_lstm_cell_shapes():
    rng = np.random.RandomState(0)
    params = {k: tf.constant(v) for k, v in _random_params(rng, 8).items()}
    i = tf.constant(_one_hot_batches(rng, 1, 5)[0])
    output, state = k05.lstm_cell(i, tf.zeros([5, 8]), tf.zeros([5, 8]), params)
    assert output.shape.as_list() == [5, 8] and state.shape.as_list() == [5, 8], (
        f"expected output and state of shape [B, N] = [5, 8], got {output.shape.as_list()} and {state.shape.as_list()}"
    )


def test_lstm_cell_matches_gate_equations(sess):
    rng = np.random.RandomState(1)
    p = _random_params(rng, 8)
    i = _one_hot_batches(rng, 1, 5)[0]
    o = rng.uniform(-1, 1, size=(5, 8)).astype(np.float32)
    s = rng.uniform(-1, 1, size=(5, 8)).astype(np.float32)
    output, state = k05.lstm_cell(tf.constant(i), tf.constant(o), tf.constant(s), {k: tf.constant(v) for k, v in p.items()})
    got_output, got_state = sess.run([output, state])
    want_output, want_state = _np_cell(i, o, s, p)
    np.testing.assert_allclose(
        got_state, want_state, atol=1e-5,
        err_msg="state should be forget_gate * state + input_gate * tanh(update): check which weights feed which gate",
    )
    np.testing.assert_allclose(
        got_output, want_output, atol=1e-5,
        err_msg="output should be output_gate * tanh(new state) (the new state, not the old one)",
    )


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


def test_training_model_shapes():
    params = k05.create_parameters(V, 8)
    model = k05.build_training_model(params, batch_size=4, num_unrollings=3)
    assert len(model["train_data"]) == 4, f"expected num_unrollings + 1 = 4 placeholders, got {len(model['train_data'])}"
    for k, ph in enumerate(model["train_data"]):
        assert ph.op.type == "Placeholder" and ph.shape.as_list() == [4, V], (
            f"train_data[{k}]: expected a float32 placeholder [4, 27], got {ph.op.type} {ph.shape.as_list()}"
        )
    assert model["logits"].shape.as_list() == [12, V], (
        f"logits: expected [num_unrollings * batch_size, 27] = [12, 27], got {model['logits'].shape.as_list()}: "
        "concatenate the outputs along axis 0"
    )
    assert model["loss"].shape.as_list() == [], f"loss must be a scalar (reduce_mean), got {model['loss'].shape.as_list()}"
    assert model["train_prediction"].shape.as_list() == [12, V]
    for key in ("saved_output", "saved_state"):
        var = model[key]
        assert var.shape.as_list() == [4, 8], f"{key}: expected [batch_size, num_nodes] = [4, 8], got {var.shape.as_list()}"
        assert var.ref() not in {v.ref() for v in tf.compat.v1.trainable_variables()}, (
            f"{key} must be created with trainable=False: the optimizer must not change it"
        )


def test_training_loss_matches_numpy_unroll(sess):
    params, model, values = _small_model(sess)
    batches = _one_hot_batches(np.random.RandomState(3), 4, 4)
    loss, logits = sess.run([model["loss"], model["logits"]], dict(zip(model["train_data"], batches)))
    zeros = np.zeros((4, 8), np.float32)
    want_loss, want_logits, _, _ = _np_unroll(values, batches, zeros, zeros)
    np.testing.assert_allclose(
        logits, want_logits, atol=1e-4,
        err_msg="logits differ from the unrolled reference: inputs are train_data[:num_unrollings], "
        "outputs concatenated along axis 0 in time order, then xw_plus_b(outputs, w, b)",
    )
    assert abs(loss - want_loss) < 1e-4, (
        f"loss {loss:.6f}, expected {want_loss:.6f}: the labels are train_data[1:] (the inputs shifted by one), "
        "and the loss is the MEAN softmax cross-entropy"
    )


def test_state_carries_across_batches(sess):
    params, model, values = _small_model(sess)
    rng = np.random.RandomState(4)
    first, second = _one_hot_batches(rng, 4, 4), _one_hot_batches(rng, 4, 4)
    zeros = np.zeros((4, 8), np.float32)
    _, _, out1, state1 = _np_unroll(values, first, zeros, zeros)
    sess.run(model["loss"], dict(zip(model["train_data"], first)))  # running the loss alone must save the state
    saved_output, saved_state = sess.run([model["saved_output"], model["saved_state"]])
    assert np.abs(saved_state).max() > 0, (
        "saved_state is still zero after running the loss: build logits and loss inside "
        "tf.control_dependencies([saved_output.assign(output), saved_state.assign(state)])"
    )
    np.testing.assert_allclose(saved_state, state1, atol=1e-5, err_msg="saved_state must hold the LAST step's state")
    np.testing.assert_allclose(saved_output, out1, atol=1e-5, err_msg="saved_output must hold the LAST step's output")
    loss2 = sess.run(model["loss"], dict(zip(model["train_data"], second)))
    want_carried, _, _, _ = _np_unroll(values, second, out1, state1)
    want_fresh, _, _, _ = _np_unroll(values, second, zeros, zeros)
    assert abs(loss2 - want_carried) < 1e-4, (
        f"second batch: loss {loss2:.6f}, expected {want_carried:.6f} (continuing from the saved state); "
        f"from a zero state it would be {want_fresh:.6f}: start the loop from saved_output / saved_state"
    )


# --------------------------------------------------------------------------- the optimizer
def test_learning_rate_schedule(sess):
    v = tf.Variable(1.0)
    opt = k05.build_optimizer(tf.square(v))
    sess.run(tf.compat.v1.global_variables_initializer())
    got = {}
    for step in (0, 4999, 5000, 9999, 10000, 15000):
        sess.run(opt["global_step"].assign(step))
        got[step] = float(sess.run(opt["learning_rate"]))
    want = {0: 10.0, 4999: 10.0, 5000: 1.0, 9999: 1.0, 10000: 0.1, 15000: 0.01}
    assert all(abs(got[s] - want[s]) < 1e-6 * want[s] + 1e-9 for s in want), (
        f"learning rate by step: expected {want}, got {got}: "
        "exponential_decay(10.0, global_step, 5000, 0.1, staircase=True)"
    )


def test_gradients_clipped_to_global_norm(sess):
    v = tf.Variable([1.0, 2.0, 2.0])
    opt = k05.build_optimizer(100.0 * tf.reduce_sum(tf.square(v)))  # gradient 200 v, norm 600
    sess.run(tf.compat.v1.global_variables_initializer())
    grads, norm = sess.run([opt["gradients"], opt["global_norm"]])
    assert abs(float(norm) - 600.0) < 1e-2, f"global_norm should be the norm BEFORE clipping (600), got {norm}"
    clipped = math.sqrt(sum(float(np.sum(np.square(g))) for g in grads))
    assert abs(clipped - 1.25) < 1e-4, (
        f"the clipped gradients should have global norm 1.25, got {clipped:.5f}: "
        "clip_by_global_norm(gradients, 1.25) clips all of them together"
    )
    sess.run(opt["train_op"])
    got_v, step = sess.run([v, opt["global_step"]])
    want_v = np.array([1.0, 2.0, 2.0]) - 10.0 * 1.25 * np.array([1.0, 2.0, 2.0]) / 3.0
    np.testing.assert_allclose(got_v, want_v, atol=1e-4, err_msg="train_op must apply the CLIPPED gradients with learning rate 10")
    assert step == 1, f"train_op must increment global_step (apply_gradients(..., global_step=global_step)), got {step}"


def test_small_gradients_are_not_clipped(sess):
    v = tf.Variable([1.0, 2.0])
    opt = k05.build_optimizer(0.01 * tf.reduce_sum(tf.square(v)))
    sess.run(tf.compat.v1.global_variables_initializer())
    grads = sess.run(opt["gradients"])
    np.testing.assert_allclose(grads[0], [0.02, 0.04], atol=1e-6, err_msg="a gradient whose norm is under 1.25 stays as it is")


# --------------------------------------------------------------------------- perplexity & sampling
def test_logprob_matches_numpy():
    rng = np.random.RandomState(5)
    predictions = _np_softmax(rng.normal(size=(6, V)))
    labels = np.eye(V)[rng.randint(0, V, size=6)]
    want = float(np.mean(-np.log(np.sum(predictions * labels, axis=1))))
    got = k05.logprob(predictions.copy(), labels)
    assert abs(got - want) < 1e-9, f"expected the mean negative log-probability of the labels {want:.6f}, got {got}"


def test_logprob_floors_zero_probabilities():
    predictions = np.array([[0.0, 1.0], [0.5, 0.5]])
    keep = predictions.copy()
    got = k05.logprob(predictions, np.array([[1.0, 0.0], [1.0, 0.0]]))
    want = (-math.log(1e-10) - math.log(0.5)) / 2
    assert abs(got - want) < 1e-6, f"a zero probability counts as 1e-10: expected {want:.4f}, got {got}"
    assert np.array_equal(predictions, keep), "logprob must not change the caller's predictions array"


def test_uniform_predictor_has_perplexity_27():
    labels = np.eye(V)[np.random.RandomState(6).randint(0, V, size=50)]
    got = math.exp(k05.logprob(np.full((50, V), 1.0 / V), labels))
    assert abs(got - 27.0) < 1e-6, f"a model that spreads probability evenly over 27 symbols has perplexity 27, got {got}"


def test_sample_distribution_frequencies():
    p = np.array([0.5, 0.25, 0.0, 0.15, 0.1])
    n = 20000
    draws = [k05.sample_distribution(p) for _ in range(n)]
    assert all(type(d) is int and 0 <= d < len(p) for d in draws), "sample_distribution returns an int index into the distribution"
    counts = np.bincount(draws, minlength=len(p))
    assert counts[2] == 0, f"index 2 has probability 0 but was drawn {counts[2]} times"
    nz = p > 0
    chi2 = float(np.sum((counts[nz] - n * p[nz]) ** 2 / (n * p[nz])))
    print(f"sample_distribution: counts {counts.tolist()} for p {p.tolist()}, chi-square {chi2:.2f} (3 dof)")
    # 3 degrees of freedom: P(chi2 > 21.1) = 1e-4 for a correct sampler
    assert chi2 < 21.1, f"frequencies {counts.tolist()} do not follow {p.tolist()} (chi-square {chi2:.1f} > 21.1)"


def test_sample_is_one_hot_of_the_draw():
    prediction = np.zeros((1, V))
    prediction[0, 7] = 1.0
    got = k05.sample(prediction)
    assert got.shape == (1, V), f"expected a [1, 27] one-hot array, got shape {got.shape}"
    assert got[0, 7] == 1.0 and got.sum() == 1.0, f"a prediction certain of id 7 must give the one-hot of 7, got {np.argmax(got)}"


def test_random_distribution_is_a_distribution():
    a, b = k05.random_distribution(), k05.random_distribution()
    assert a.shape == (1, V), f"expected shape [1, 27], got {a.shape}"
    assert (a > 0).all() and abs(a.sum() - 1.0) < 1e-9, f"expected positive entries summing to 1, got sum {a.sum()}"
    assert not np.allclose(a, b), "two calls should give different random distributions"


def _sampler_with_values(sess, num_nodes=8, seed=7):
    params = k05.create_parameters(V, num_nodes)
    n_trainable = len(tf.compat.v1.trainable_variables())
    sampler = k05.build_sampling_model(params)
    sess.run(tf.compat.v1.global_variables_initializer())
    values = _random_params(np.random.RandomState(seed), num_nodes)
    _load_params(sess, params, values)
    return params, sampler, values, n_trainable


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
    np.testing.assert_allclose(got2, _np_softmax(o2 @ values["w"] + values["b"]), atol=1e-5,
                               err_msg="second prediction must continue from the saved sample output/state "
                               "(tf.control_dependencies on assigning them)")


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


def test_generate_gives_strings_of_the_vocabulary(sess):
    _, sampler, _, _ = _sampler_with_values(sess)
    samples = k05.generate(sess, sampler, num_samples=3, length=20)
    assert len(samples) == 3 and all(isinstance(s, str) and len(s) == 20 for s in samples), (
        f"expected 3 strings of 20 characters, got {[len(s) for s in samples]}"
    )
    assert set("".join(samples)) <= set(" abcdefghijklmnopqrstuvwxyz"), f"samples must use the 27 symbols: {samples}"


def test_validation_perplexity_matches_numpy(sess):
    _, sampler, values, _ = _sampler_with_values(sess)
    text = "the cat sat on the mat"
    sess.run(sampler["sample_prediction"], {sampler["sample_input"]: np.eye(V, dtype=np.float32)[[1]]})  # dirty state
    got = k05.validation_perplexity(sess, sampler, text)
    ids = [0 if c == " " else ord(c) - 96 for c in text]
    o = s = np.zeros((1, 8), np.float32)
    nats = 0.0
    for k in range(len(text)):  # each character predicts the next; the last one wraps to the first
        o, s = _np_cell(np.eye(V, dtype=np.float32)[[ids[k]]], o, s, values)
        nats -= math.log(_np_softmax(o @ values["w"] + values["b"])[0, ids[(k + 1) % len(text)]])
    want = math.exp(nats / len(text))
    assert abs(got - want) < 1e-3 * want, (
        f"expected perplexity {want:.4f}, got {got:.4f}: reset the sampling state first, feed each character "
        "and score the prediction against the NEXT one, len(valid_text) times"
    )


def test_uniform_model_validation_perplexity_is_27(sess):
    params, sampler, _, _ = _sampler_with_values(sess)
    sess.run([params["w"].assign(tf.zeros_like(params["w"])), params["b"].assign(tf.zeros_like(params["b"]))])
    got = k05.validation_perplexity(sess, sampler, "any text will do")
    assert abs(got - 27.0) < 1e-3, f"with a zero classifier every prediction is uniform: perplexity 27, got {got:.4f}"


# --------------------------------------------------------------------------- training: offline corpus
@pytest.fixture(scope="module")
def offline_run():
    """The tutorial's model and schedule on the offline corpus, cut to OFFLINE_STEPS steps."""
    valid, train = corpora.split_valid(corpora.offline_corpus())
    with fresh_graph():
        return k05.train(train, valid, num_steps=OFFLINE_STEPS)


@pytest.mark.points(4)
def test_offline_training_reaches_perplexity(offline_run):
    ppl = offline_run["valid_perplexity"]
    steps = offline_run["step"]
    print(f"offline corpus: validation perplexity {ppl[0]:.2f} at step 0 -> {ppl[-1]:.2f} at step {steps[-1]}")
    assert steps[-1] == OFFLINE_STEPS - 1, f"expected summaries up to step {OFFLINE_STEPS - 1}, got {steps[-1]}"
    assert ppl[-1] < OFFLINE_MAX_PERPLEXITY, (
        f"validation perplexity {ppl[-1]:.2f} after {steps[-1]} steps, expected < {OFFLINE_MAX_PERPLEXITY} "
        "(a correct model reaches about 3.4; a uniform guess is 27): check the clipping, the learning rate "
        "and that the state is carried between batches"
    )


@pytest.mark.points(1)
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
    assert last < first - 1.0, f"mean loss should fall far below the start ({first:.3f} -> {last:.3f})"


# --------------------------------------------------------------------------- training: the leak detector
@pytest.fixture(scope="module")
def chain():
    return corpora.synthetic_chain()


def _floor_violations(train_ppl, valid_ppl, floor):
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
            f"{floor:.4f}: the model has not learnt the chain (is the state carried between batches?)"
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


@pytest.mark.points(4)
def test_synthetic_perplexity_sits_at_the_entropy_floor(chain):
    floor = chain.perplexity_floor
    train_ppl, valid_ppl, _ = _synthetic_run(chain)
    print(
        f"synthetic corpus: entropy floor {floor:.4f} (rate {chain.entropy_rate:.4f} nats/char); after "
        f"{SYNTHETIC_STEPS - 1} steps training perplexity {train_ppl:.4f}, validation {valid_ppl:.4f} "
        f"(allowed: >= floor - {FLOOR_TOLERANCE}, validation <= floor + {FLOOR_DISTANCE})"
    )
    problems = _floor_violations(train_ppl, valid_ppl, floor)
    assert not problems, "; ".join(problems)


@pytest.mark.points(0)
def test_leak_detector_catches_a_leaking_generator(chain):
    """Harness check of the test above: a generator whose labels leak into the inputs must fail it.

    The leaking generator stutters: it reads the text with every character doubled ("tthhee  ccaatt"),
    so every other label is a copy of its input. The model learns to copy and its training perplexity
    drops to about sqrt(floor), far under the floor; on clean validation text it is lost.
    """
    floor = chain.perplexity_floor

    def stuttering(text):
        return k05.BatchGenerator("".join(c + c for c in text), k05.BATCH_SIZE, k05.NUM_UNROLLINGS)

    train_ppl, valid_ppl, _ = _synthetic_run(chain, stuttering, steps=LEAK_STEPS, valid_chars=500)
    print(f"leaking generator: training perplexity {train_ppl:.4f}, validation {valid_ppl:.4f}, floor {floor:.4f}")
    problems = _floor_violations(train_ppl, valid_ppl, floor)
    assert any("below the entropy floor" in p for p in problems), (
        f"the leak detector let a leaking generator through: training perplexity {train_ppl:.4f}, "
        f"floor {floor:.4f} - {FLOOR_TOLERANCE}"
    )


# --------------------------------------------------------------------------- slow: text8
@pytest.mark.slow
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
    assert ppl <= TEXT8_MAX_PERPLEXITY, f"validation perplexity {ppl:.2f}, expected <= {TEXT8_MAX_PERPLEXITY} (tutorial: 4.27)"
