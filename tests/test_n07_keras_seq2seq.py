"""Graded tests for n07 · seq2seq with Keras layers and a tf.function decoder (the TF 2 twin of k07).

Order: k07's weights in Keras's layout, the layers, the encoder and the two decoders (checked
against a numpy LSTM written here, and greedy decoding on hand-made next-token tables as in k07),
the loss, the optimizer and the ``tf.function`` step (small layers: a few seconds each), then the
equivalence tests against the same target's k07 (``needs("k07")``: they wait until k07 passes) and
the graded training run last (it draws k07's data, so it needs k07 too).

The harness runs every n07 test eagerly with numpy, random, tf and Keras seeds set (1234).

Graded training (seeded 1234): k07's budget and schedule, 3000 steps of bucketed batches of 64,
Adam 3e-3 constant; exact match on 500 fresh sequences >= 80 % as k07 (figures at TRAIN_STEPS).

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import re

import numpy as np
import pytest

from tfkata import fresh_graph, load_kata
from tfkata.feedback.curves import explain_curve
from tfkata.tfsetup import import_tensorflow, require_legacy_rnn
from tfkata.testing import check_optimizer_used, check_reported_loss, mask_off_by_one, printed_examples, where_max as _where

tf = import_tensorflow()  # quietly: without the CUDA/oneDNN lines a plain import prints
import keras  # noqa: E402  (after the quiet TensorFlow import; Keras 3 on TF >= 2.16, Keras 2 before)

n07 = load_kata("n07_keras_seq2seq")
k07 = load_kata("k07_seq2seq")

V = 11  # vocabulary: 0 (PAD = EOS = GO) and 1..10

# Graded training: k07's budget (3000 steps, Adam 3e-3 constant, bucketed batches of 64, seed 1234).
# Measured side by side in one process (exact match on 500 fresh sequences, training seconds, shared 2-core box at a
# load of about 5): TF 2.21 / Keras 3.15: n07 91.4 % in 120 s, k07 91.6 % in 82 s; TF 2.12 / Keras 2.12: n07 94.4 %
# in 95 s, k07 92.2 % in 96 s. Under a load of 11: n07 up to 353 s (2.21). Each figure repeats bit for bit per line.
TRAIN_STEPS = 3000
MIN_ACCURACY = 0.80



# --------------------------------------------------------------------------- helpers (numpy references)
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_lstm_step(x, h, c, kernel, recurrent, bias):
    """One step of a Keras LSTM (gates i, f, c, o; no forget bias) in numpy float64."""
    z = x @ kernel + h @ recurrent + bias
    i, f, g, o = np.split(z, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def _np_basic_lstm_step(x, h, c, kernel, bias, forget_bias=1.0):
    """One step of TF 1's BasicLSTMCell (one kernel over [x, h]; gates i, j, f, o; forget bias) in numpy."""
    z = np.concatenate([x, h], axis=-1) @ kernel + bias
    i, j, f, o = np.split(z, 4, axis=-1)
    c = _sigmoid(f + forget_bias) * c + _sigmoid(i) * np.tanh(j)
    return _sigmoid(o) * np.tanh(c), c


def _weights(layer):
    return [np.asarray(w, np.float64) for w in layer.get_weights()]


def _np_decoder(layers, tokens_bt, states, lstms=None, embedding=None):
    """The decoder in numpy: teacher forcing over tokens [B, T] from states [(h, c), ...]; logits [B, T, V]
    (``embedding``: another layer's table in place of the decoder's)."""
    emb = _weights(layers.decoder_embedding if embedding is None else embedding)[0]
    out_k, out_b = _weights(layers.output_layer)
    states = [(np.asarray(h, np.float64), np.asarray(c, np.float64)) for h, c in states]
    logits = []
    for t in range(tokens_bt.shape[1]):
        x = emb[tokens_bt[:, t]]
        new = []
        for lstm, (h, c) in zip(layers.decoder_lstms if lstms is None else lstms, states):
            h, c = _np_lstm_step(x, h, c, *_weights(lstm))
            new.append((h, c))
            x = h
        states = new
        logits.append(x @ out_k + out_b)
    return np.stack(logits, axis=1), states


def _np_step_unchained(layers, tokens_b, states, reads):
    """One numpy decoder step whose layers above the first read ``reads(i, below, states)`` instead of the new
    output of the layer below: the logits [B, V] of a decoder wired the wrong way."""
    emb = _weights(layers.decoder_embedding)[0]
    out_k, out_b = _weights(layers.output_layer)
    prev = [(np.asarray(h, np.float64), np.asarray(c, np.float64)) for h, c in states]
    x = emb[tokens_b]
    for i, (lstm, (h, c)) in enumerate(zip(layers.decoder_lstms, prev)):
        h, c = _np_lstm_step(x if i == 0 else reads(i, x, prev), h, c, *_weights(lstm))
        x = h
    return x @ out_k + out_b


def _small_layers(hidden=8, layers=2, embed=6):
    return n07.build_layers(vocab_size=V, embed_size=embed, hidden_units=hidden, num_layers=layers)


def _random_states(batch, hidden=8, layers=2, seed=0):
    rng = np.random.RandomState(seed)
    return [(tf.constant(rng.uniform(-0.5, 0.5, [batch, hidden]).astype(np.float32)),
             tf.constant(rng.uniform(-0.5, 0.5, [batch, hidden]).astype(np.float32))) for _ in range(layers)]


def _toy_batch(n=5, seed=4):
    """Padded inputs like k07's (made here, so the unit tests do not depend on k07)."""
    rng = np.random.RandomState(seed)
    lx = rng.randint(2, 9, n).astype(np.int32)
    x = np.zeros([n, lx.max()], np.int32)
    for i in range(n):
        x[i, : lx[i]] = rng.randint(1, 11, lx[i])
    ly = rng.randint(2, 6, n).astype(np.int32)
    y = np.zeros([n, ly.max()], np.int32)
    for i in range(n):
        y[i, : ly[i] - 1] = rng.randint(1, 11, ly[i] - 1)
    y_in = np.concatenate([np.zeros([n, 1], np.int32), y[:, :-1]], axis=1)
    return x, lx, y_in, y, ly


def _chain_table(chain, no_eos=False):
    """A next-token table that, from GO, makes greedy decoding emit ``chain`` (ending with EOS)."""
    table = np.full([V, V], -5.0, dtype=np.float32)
    prev = 0
    for token in chain:
        table[prev, token] = 5.0
        prev = token
    if no_eos:
        table[:, 0] = -50.0
    return table


class _TableStep:
    """step(tokens, states) -> (logits, states): logits = table[tokens] + states at the first step only.

    Counts its calls: inside a tf.function, a tf.range loop calls it once (one traced body); a Python
    ``range`` calls it max_steps times (the loop unrolled into the graph).
    """

    def __init__(self, table):
        self.table = tf.constant(np.asarray(table, np.float32))
        self.calls = 0
        self.fed = []  # the tokens of each call, when called eagerly

    def __call__(self, tokens, states):
        self.calls += 1
        if hasattr(tokens, "numpy"):
            self.fed.append(np.asarray(tokens).tolist())
        return tf.gather(self.table, tokens) + states, tf.zeros_like(states)


# --------------------------------------------------------------------------- k07's weights in Keras's layout
def _labelled_cell(d=3, h=2):
    """A BasicLSTMCell kernel [d + h, 4h] whose entries tell row, gate and unit: 100*row + 10*gate + unit."""
    rows = np.arange(d + h)[:, None, None] * 100.0
    gates = np.arange(4)[None, :, None] * 10.0  # k07's order: 0 = i, 1 = j, 2 = f, 3 = o
    units = np.arange(h)[None, None, :]
    kernel = (rows + gates + units).reshape(d + h, 4 * h).astype(np.float32)
    bias = (np.arange(4)[:, None] * 10.0 + np.arange(h)[None, :]).reshape(4 * h).astype(np.float32)
    return kernel, bias


@pytest.mark.covers("lstm_weights_from_k07")
def test_lstm_weights_from_k07_layout():
    kernel, bias = _labelled_cell()
    given = (kernel.copy(), bias.copy())
    got = n07.lstm_weights_from_k07(kernel, bias)
    changed = [name for name, now, before in (("kernel", kernel, given[0]), ("bias", bias, given[1]))
               if not np.array_equal(now, before)]
    assert not changed, (
        f"lstm_weights_from_k07 changed the caller's {' and '.join(changed)} array in place (np.asarray of a float32 "
        "array is that same array): copy it before adding forget_bias or reordering, bias = np.array(bias, "
        "np.float32), so k07's weights stay as they were"
    )
    assert isinstance(got, (list, tuple)) and len(got) == 3, (
        f"expected [kernel, recurrent_kernel, bias] (what LSTM.set_weights takes), got {type(got).__name__} of "
        f"{len(got) if hasattr(got, '__len__') else '?'}"
    )
    k, r, b = (np.asarray(a) for a in got)
    assert (k.shape, r.shape, b.shape) == ((3, 8), (2, 8), (8,)), (
        f"for D = 3 inputs and H = 2 units expected kernel [3, 8], recurrent_kernel [2, 8], bias [8], got "
        f"{list(k.shape)}, {list(r.shape)}, {list(b.shape)}: the first D rows of k07's kernel act on the input, the "
        "last H rows on h"
    )
    rows = np.round(np.concatenate([k, r])[:, 0] / 100.0).astype(int).tolist()
    assert rows == [0, 1, 2, 3, 4], (
        f"lstm_weights_from_k07: the rows came out in the order {rows} of k07's kernel: k07 multiplies [x, h] by one kernel, so its first D "
        "rows are Keras's kernel (input) and the last H rows its recurrent_kernel"
    )
    gate_of = {0: "i", 1: "j", 2: "f", 3: "o"}
    order = [gate_of.get(int(round(v)) // 10 % 10, "?") for v in k[0, ::2]]
    assert order == ["i", "f", "j", "o"], (
        f"lstm_weights_from_k07: the columns hold k07's gates in the order {order}; Keras's LSTM wants i, f, c, o, i.e. k07's i, f, j, o "
        "(BasicLSTMCell's order is i, j, f, o: swap the middle two blocks of H columns)"
    )
    assert np.array_equal(k, kernel[:3].reshape(3, 4, 2)[:, [0, 2, 1, 3]].reshape(3, 8)), (
        "the gate blocks are in the right order but the units inside a block moved: split the 4H columns into 4 blocks "
        "of H (np.split(kernel, 4, axis=1)) and reorder whole blocks"
    )
    want_b = bias.reshape(4, 2)[[0, 2, 1, 3]].reshape(8)
    if np.array_equal(b, want_b):
        pytest.fail("lstm_weights_from_k07: the bias is reordered but the forget gate's bias lacks forget_bias: BasicLSTMCell added "
                    "forget_bias (1.0) to f at every step and Keras has no such term, so add it to the f block",
                    pytrace=False)
    added = (b - want_b).reshape(4, 2)
    wrong_block = [name for name, block in zip("ifco", added) if np.allclose(block, 1.0)]
    if wrong_block and wrong_block != ["f"] and np.allclose(added.sum(), 2.0):
        pytest.fail(f"lstm_weights_from_k07: forget_bias went to the {wrong_block[0]} block of the bias (Keras's order is "
                    "i, f, c, o): add it to the f block, the second, after the reorder", pytrace=False)
    want_b = want_b + np.array([0, 0, 1, 1, 0, 0, 0, 0], np.float32)
    assert np.allclose(b, want_b), (
        f"lstm_weights_from_k07: expected the bias in Keras's order i, f, c, o with forget_bias 1.0 added to f: "
        f"{want_b.tolist()}, got {b.tolist()}"
    )
    b2 = np.asarray(n07.lstm_weights_from_k07(kernel, bias, forget_bias=0.0)[2])
    assert np.allclose(b2, bias.reshape(4, 2)[[0, 2, 1, 3]].reshape(8)), (
        "lstm_weights_from_k07(..., forget_bias=0.0): nothing must be added to the bias: use the argument, not a "
        "constant 1.0"
    )


@pytest.mark.covers("lstm_weights_from_k07")
def test_lstm_weights_from_k07_computes_the_same_step():
    rng = np.random.RandomState(0)
    d, h = 4, 3
    kernel = rng.uniform(-1, 1, [d + h, 4 * h]).astype(np.float32)
    bias = rng.uniform(-1, 1, [4 * h]).astype(np.float32)
    x, h0, c0 = rng.uniform(-1, 1, [2, d]), rng.uniform(-1, 1, [2, h]), rng.uniform(-1, 1, [2, h])
    want_h, want_c = _np_basic_lstm_step(x, h0, c0, kernel.astype(np.float64), bias.astype(np.float64))
    got_h, got_c = _np_lstm_step(x, h0, c0, *[np.asarray(a, np.float64) for a in n07.lstm_weights_from_k07(kernel, bias)])
    diff = max(np.abs(got_h - want_h).max(), np.abs(got_c - want_c).max())
    print(f"one BasicLSTMCell step vs the Keras-layout step: max |diff| {diff:.3g}")
    assert diff < 1e-5, f"with the mapped weights a Keras LSTM step differs from k07's BasicLSTMCell step ({diff:.3g})"


# --------------------------------------------------------------------------- the layers
@pytest.mark.covers("build_layers")
def test_build_layers():
    layers = n07.build_layers()
    assert isinstance(layers, n07.Seq2SeqLayers), f"build_layers should return a Seq2SeqLayers, got {type(layers).__name__}"
    for name in ("encoder_embedding", "decoder_embedding"):
        layer = getattr(layers, name)
        assert isinstance(layer, keras.layers.Embedding), f"{name} should be a keras.layers.Embedding, got {type(layer).__name__}"
        assert layer.weights, f"{name} has no weights yet: build it in build_layers (layer.build((None, None)))"
        assert tuple(layer.weights[0].shape) == (V, 30), f"{name} should be [11, 30], got {tuple(layer.weights[0].shape)}"
        emb = np.asarray(layer.weights[0])
        assert np.abs(emb).max() <= 0.2 + 1e-6 and 0.05 < emb.std() < 0.12, (
            f"{name} should start from a truncated normal with stddev 0.1 (values within 0.2), got std {emb.std():.3f}, "
            f"max |value| {np.abs(emb).max():.3f}: embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.1)"
        )
    assert layers.encoder_embedding is not layers.decoder_embedding, "the encoder and the decoder need their own embedding"
    for side in ("encoder_lstms", "decoder_lstms"):
        stack = list(getattr(layers, side))
        assert len(stack) == 2, f"{side} should hold num_layers = 2 LSTM layers, got {len(stack)}"
        for i, lstm in enumerate(stack):
            assert isinstance(lstm, keras.layers.LSTM), f"{side}[{i}] should be a keras.layers.LSTM, got {type(lstm).__name__}"
            assert lstm.return_sequences and lstm.return_state, (
                f"{side}[{i}] needs return_sequences=True (the next layer reads every step) and return_state=True "
                "(the final (h, c) starts the decoder)"
            )
            assert lstm.weights, f"{side}[{i}] has no weights yet: build it in build_layers (lstm.build((None, None, D)))"
            shapes = [tuple(w.shape) for w in lstm.get_weights()]
            d = 30 if i == 0 else 50
            assert shapes == [(d, 200), (50, 200), (200,)], (
                f"{side}[{i}] should be LSTM(50) reading {d} features: weights [{d}, 200], [50, 200], [200], got {shapes}"
            )
        assert stack[0] is not stack[1], f"{side}: both layers are the same object: make a new LSTM for each layer"
    assert not set(map(id, layers.encoder_lstms)) & set(map(id, layers.decoder_lstms)), (
        "build_layers: the decoder reuses the encoder's LSTM layers: k07's encoder and decoder have separate weights"
    )
    out = layers.output_layer
    assert isinstance(out, keras.layers.Dense) and out.units == V and out.weights, (
        f"output_layer should be a built keras.layers.Dense({V}), got {type(out).__name__}"
    )
    probe = np.asarray(out(tf.constant(np.full([1, 50], -3.0, np.float32))))
    kernel, b = out.get_weights()
    assert np.allclose(probe, -3.0 * kernel.sum(0) + b, atol=1e-4), (
        "output_layer is not linear (an activation changes the logits): Dense(vocab_size) with no activation"
    )


@pytest.mark.covers("build_layers")
def test_build_layers_uses_its_arguments():
    layers = n07.build_layers(vocab_size=7, embed_size=4, hidden_units=3, num_layers=1)
    counts = (len(list(layers.encoder_lstms)), len(list(layers.decoder_lstms)))
    assert counts == (1, 1), (
        f"build_layers(num_layers=1) should make one layer per side, got {counts[0]} encoder and {counts[1]} decoder "
        "LSTMs: use the arguments (range(num_layers)), not the module's NUM_LAYERS"
    )
    shapes = {"encoder_embedding": tuple(layers.encoder_embedding.weights[0].shape),
              "encoder_lstms[0]": [tuple(w.shape) for w in layers.encoder_lstms[0].get_weights()],
              "output_layer": [tuple(w.shape) for w in layers.output_layer.get_weights()]}
    want = {"encoder_embedding": (7, 4), "encoder_lstms[0]": [(4, 12), (3, 12), (12,)], "output_layer": [(3, 7), (7,)]}
    wrong = {k: v for k, v in shapes.items() if v != want[k]}
    assert not wrong, (
        f"build_layers(vocab_size=7, embed_size=4, hidden_units=3, num_layers=1): expected the weights {want}, got "
        f"{shapes}: use the arguments, not the module's VOCAB_SIZE, EMBED_SIZE and HIDDEN_UNITS"
    )


def _roles(d=30, h=50, v=V, layers=2, seed=0):
    rng = np.random.RandomState(seed)
    roles = {"encoder/embedding": rng.randn(v, d), "decoder/embedding": rng.randn(v, d),
             "output/kernel": rng.randn(h, v), "output/bias": rng.randn(v)}
    for side in ("encoder", "decoder"):
        for i in range(layers):
            roles[f"{side}/cell_{i}/kernel"] = rng.randn((d if i == 0 else h) + h, 4 * h)
            roles[f"{side}/cell_{i}/bias"] = rng.randn(4 * h)
    return {k: a.astype(np.float32) for k, a in roles.items()}


def _keras_layout(kernel, bias, forget_bias=1.0):
    """The test's own mapping of a BasicLSTMCell into Keras's layout."""
    h = kernel.shape[1] // 4
    k = kernel.reshape(-1, 4, h)[:, [0, 2, 1, 3]].reshape(-1, 4 * h)
    b = bias.reshape(4, h)[[0, 2, 1, 3]]
    b[1] += forget_bias
    return [k[: kernel.shape[0] - h], k[kernel.shape[0] - h:], b.reshape(-1)]


@pytest.mark.covers("load_k07_weights", "build_layers", "lstm_weights_from_k07")
def test_load_k07_weights_places_every_array():
    roles = _roles()
    layers = n07.build_layers()
    back = n07.load_k07_weights(layers, dict(roles))
    assert back is layers, "load_k07_weights should return the layers it filled"
    for side in ("encoder", "decoder"):
        got = np.asarray(getattr(layers, f"{side}_embedding").get_weights()[0])
        assert np.array_equal(got, roles[f"{side}/embedding"]), f"{side}_embedding should hold '{side}/embedding' unchanged"
        for i, lstm in enumerate(getattr(layers, f"{side}_lstms")):
            want = _keras_layout(roles[f"{side}/cell_{i}/kernel"], roles[f"{side}/cell_{i}/bias"])
            for name, g, w in zip(("kernel", "recurrent_kernel", "bias"), lstm.get_weights(), want):
                assert np.allclose(g, w, atol=1e-6), (
                    f"{side}_lstms[{i}]'s {name} is not '{side}/cell_{i}' mapped by lstm_weights_from_k07 "
                    f"({_where(np.abs(np.asarray(g) - w)) if np.shape(g) == w.shape else f'shape {np.shape(g)}'})"
                )
    n07.load_k07_weights(layers, dict(roles), forget_bias=0.0)
    got, want = layers.encoder_lstms[0].get_weights()[2], _keras_layout(roles["encoder/cell_0/kernel"],
                                                                         roles["encoder/cell_0/bias"], 0.0)[2]
    assert np.allclose(got, want, atol=1e-6), (
        "load_k07_weights(..., forget_bias=0.0): encoder_lstms[0]'s bias should be k07's bias with nothing added to "
        "its forget gate: pass forget_bias on, lstm_weights_from_k07(kernel, bias, forget_bias)"
    )
    k, b = layers.output_layer.get_weights()
    assert np.array_equal(k, roles["output/kernel"]) and np.array_equal(b, roles["output/bias"]), (
        "output_layer should hold 'output/kernel' [H, V] and 'output/bias' unchanged (Dense keeps [in, out] as k07)"
    )


# --------------------------------------------------------------------------- encoder and decoders
@pytest.mark.covers("encode", "build_layers")
def test_encode_masks_the_padding():
    layers = _small_layers()
    x, lx, _, _, _ = _toy_batch()
    outputs, states = n07.encode(layers, tf.constant(x), tf.constant(lx))
    assert tuple(outputs.shape) == (5, x.shape[1], 8), f"outputs should be [B, T, H] = (5, {x.shape[1]}, 8), got {tuple(outputs.shape)}"
    assert isinstance(states, (list, tuple)) and len(states) == 2 and all(len(s) == 2 for s in states), (
        f"states should be a list of num_layers = 2 pairs (h, c), got {type(states).__name__} "
        f"{[len(s) if hasattr(s, '__len__') else s for s in states] if hasattr(states, '__iter__') else states}"
    )
    outputs = np.asarray(outputs)
    for i in range(len(x)):
        alone_out, alone = n07.encode(layers, tf.constant(x[i : i + 1, : lx[i]]), tf.constant(lx[i : i + 1]))
        for layer, ((h, c), (ha, ca)) in enumerate(zip(states, alone)):
            diff = max(np.abs(np.asarray(h)[i] - np.asarray(ha)[0]).max(), np.abs(np.asarray(c)[i] - np.asarray(ca)[0]).max())
            assert diff < 1e-5, (
                f"encode: row {i} (length {lx[i]} padded to {x.shape[1]}): layer {layer}'s final state differs from the same "
                f"sequence without padding ({diff:.3g}): pass mask=tf.sequence_mask(lengths, T) to every LSTM call, "
                "so the padding does not run through the cell"
            )
        top_h = np.asarray(states[-1][0])[i]
        if np.allclose(np.asarray(states[-1][1])[i], outputs[i, lx[i] - 1], atol=1e-6):
            pytest.fail("encode: the pairs are (c, h): k07's LSTMStateTuple is (c, h), but a Keras LSTM returns "
                        "[output, h, c] and takes initial_state=[h, c]: keep each layer's state as (h, c)", pytrace=False)
        assert np.allclose(top_h, outputs[i, lx[i] - 1], atol=1e-6), (
            f"row {i}: the top layer's h should be its output at the last valid step {lx[i] - 1}"
        )
    # The same batch padded two columns wider than its longest sequence (a batch cut from a wider pool).
    wide = np.concatenate([x, np.zeros([len(x), 2], np.int32)], axis=1)
    where = f"on x padded wider than its longest sequence (T = {wide.shape[1]}, longest length {lx.max()})"
    try:
        _, wide_states = n07.encode(layers, tf.constant(wide), tf.constant(lx))
    except (ValueError, tf.errors.OpError) as exc:  # Keras 3: an OutOfRangeError from inside LSTM.call
        pytest.fail(f"encode: {where} the mask and the inputs differ in width: tf.sequence_mask(lengths) is only "
                    "max(lengths) wide, pass maxlen=T (tf.sequence_mask(lengths, tf.shape(inputs)[1])) "
                    f"(TensorFlow: {str(exc).strip().splitlines()[0][:120]})", pytrace=False)
    diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for pair, wide_pair in zip(states, wide_states) for a, b in zip(pair, wide_pair))
    assert diff < 1e-5, (
        f"encode: {where} the final states differ from the same batch padded to its longest sequence ({diff:.3g}): "
        "the mask must be T wide, tf.sequence_mask(lengths, maxlen=T), so the extra padding does not run through the cells"
    )
    # The same batch with tokens, not zeros, past each length: lengths say where a sequence ends, whatever lies after.
    filled = np.where(np.arange(x.shape[1])[None, :] < lx[:, None], x, 3).astype(np.int32)
    _, filled_states = n07.encode(layers, tf.constant(filled), tf.constant(lx))
    diff = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for pair, filled_pair in zip(states, filled_states) for a, b in zip(pair, filled_pair))
    assert diff < 1e-5, (
        f"encode: with token 3 instead of 0 past each length (lengths {lx.tolist()}) the final states changed ({diff:.3g}): "
        "the mask comes from the lengths argument, tf.sequence_mask(lengths, T), not from the zeros in inputs"
    )


@pytest.mark.covers("teacher_forced_logits", "build_layers")
def test_teacher_forced_logits_match_a_numpy_lstm():
    layers = _small_layers()
    table = _weights(layers.decoder_embedding)[0]  # a decoder table unlike the encoder's, whatever the seeds drew
    layers.decoder_embedding.set_weights([np.random.RandomState(9).uniform(-0.5, 0.5, table.shape).astype(np.float32)])
    _, _, y_in, _, _ = _toy_batch()
    states = _random_states(5)
    got = n07.teacher_forced_logits(layers, tf.constant(y_in), states)
    assert tuple(got.shape) == (5, y_in.shape[1], V), f"logits should be [B, T, V] = (5, {y_in.shape[1]}, {V}), got {tuple(got.shape)}"
    want, _ = _np_decoder(layers, y_in, states)
    zero, _ = _np_decoder(layers, y_in, [(np.zeros([5, 8]), np.zeros([5, 8]))] * 2)
    got = np.asarray(got, np.float64)
    if np.abs(got - zero).max() < 1e-5:
        pytest.fail("teacher_forced_logits: the decoder ignores the encoder's states: pass initial_state=[h, c] of states[i] to decoder LSTM i",
                    pytrace=False)
    swapped, _ = _np_decoder(layers, y_in, [(c, h) for h, c in states])
    if np.abs(got - swapped).max() < 1e-5:
        pytest.fail("h and c are swapped: a Keras LSTM takes initial_state=[h, c] (k07's LSTMStateTuple was (c, h))",
                    pytrace=False)
    encoder_table, _ = _np_decoder(layers, y_in, states, embedding=layers.encoder_embedding)
    if np.abs(got - encoder_table).max() < 1e-5:
        pytest.fail("teacher_forced_logits: the decoder inputs were embedded with encoder_embedding: embed them with "
                    "layers.decoder_embedding (the two vocabularies have tables of their own)", pytrace=False)
    if len(states) > 1:
        zeros = (np.zeros_like(np.asarray(states[0][0])), np.zeros_like(np.asarray(states[0][1])))
        from_zeros, _ = _np_decoder(layers, y_in, [states[0]] + [zeros] * (len(states) - 1))
        if np.abs(got - from_zeros).max() < 1e-5:
            pytest.fail("teacher_forced_logits: only decoder LSTM 0 started from the encoder's state, the others from "
                        "zeros: every layer i starts from states[i], lstm(x, initial_state=list(states[i]))", pytrace=False)
    first_only, _ = _np_decoder(layers, y_in, [states[0]] * len(states))
    if np.abs(got - first_only).max() < 1e-5:
        pytest.fail("teacher_forced_logits: every decoder layer started from states[0], the encoder's first layer's "
                    "state: decoder LSTM i starts from states[i], initial_state=list(states[i])", pytrace=False)
    diff = np.abs(got - want)
    assert diff.max() < 1e-4, (
        f"teacher-forced logits differ from a numpy LSTM decoder ({_where(diff)}): embed decoder_inputs with "
        "decoder_embedding, run decoder LSTM i from states[i] feeding each layer's outputs to the next, then output_layer"
    )


@pytest.mark.covers("decoder_step", "teacher_forced_logits")
def test_decoder_step_is_one_step_of_the_same_decoder():
    layers = _small_layers()
    _, _, y_in, _, _ = _toy_batch()
    states = _random_states(5)
    logits, new_states = n07.decoder_step(layers, tf.constant(y_in[:, 0]), states)
    assert tuple(logits.shape) == (5, V), f"one step's logits should be [B, V] = (5, {V}), got {tuple(logits.shape)}"
    assert isinstance(new_states, (list, tuple)) and len(new_states) == 2, (
        f"decoder_step should return the new states as a list of 2 (h, c) pairs, got {type(new_states).__name__}"
    )
    kinds = [type(pair).__name__ for pair in new_states]
    assert all(isinstance(pair, tuple) and len(pair) == 2 for pair in new_states), (
        f"decoder_step: new_states must be shaped like states, a list of (h, c) TUPLES, got a list of {kinds}: "
        "append (h, c), not [h, c] (greedy_decode's tf.while_loop needs the same structure at every step)"
    )
    want, want_states = _np_decoder(layers, y_in[:, :1], states)
    diff = np.abs(np.asarray(logits, np.float64) - want[:, 0])
    if diff.max() >= 1e-4:
        on_encoder = _np_decoder(layers, y_in[:, :1], states, lstms=layers.encoder_lstms)[0]
        if np.abs(np.asarray(logits, np.float64) - on_encoder[:, 0]).max() < 1e-4:
            pytest.fail("decoder_step: the step ran the ENCODER's LSTM cells: step layers.decoder_lstms[i].cell "
                        "(the decoder's own weights, shared with teacher_forced_logits)", pytrace=False)
        for reads, what in ((lambda i, below, prev: prev[i][0], "its own previous h"),
                            (lambda i, below, prev: prev[i - 1][0], "the layer below's PREVIOUS h")):
            if np.abs(np.asarray(logits, np.float64) - _np_step_unchained(layers, y_in[:, 0], states, reads)).max() < 1e-4:
                pytest.fail(f"decoder_step: layer 1 read {what}: each layer above the first reads the NEW output of the "
                            "layer below in this step (x = the h it just returned), as teacher_forced_logits feeds each "
                            "layer's outputs to the next", pytrace=False)
    assert diff.max() < 1e-4, (
        f"one decoder step differs from a numpy LSTM step ({_where(diff)}): call each decoder LSTM's cell, "
        "lstm.cell(x, [h, c]), starting from states[i], and apply output_layer to the top output"
    )
    def same(pair, want):
        return all(np.shape(g) == np.shape(w) and np.abs(np.asarray(g) - w).max() < 1e-4 for g, w in zip(pair, want))

    if not all(same(got, w) for got, w in zip(new_states, want_states)):
        if all(same(got, w) for got, w in zip(new_states, want_states[::-1])):
            pytest.fail("decoder_step: the new states are in reverse layer order (the top layer's first): return them "
                        "first layer first, as states came", pytrace=False)
        if all(same(got, (w[1], w[0])) for got, w in zip(new_states, want_states)):
            pytest.fail("decoder_step: each layer's new state is (c, h): return (h, c), as an LSTM cell's state list "
                        "[h, c] holds them", pytrace=False)
    for i, ((h, c), (wh, wc)) in enumerate(zip(new_states, want_states)):
        assert np.abs(np.asarray(h) - wh).max() < 1e-4 and np.abs(np.asarray(c) - wc).max() < 1e-4, (
            f"decoder_step: layer {i}'s new state is not (h, c) after the step: return each layer's (h, c) in order"
        )
    # Chained steps give the teacher-forced logits: the two decoders share their weights.
    chained, s = [], states
    for t in range(y_in.shape[1]):
        step_logits, s = n07.decoder_step(layers, tf.constant(y_in[:, t]), s)
        chained.append(np.asarray(step_logits))
    forced = np.asarray(n07.teacher_forced_logits(layers, tf.constant(y_in), states))
    diff = np.abs(np.stack(chained, 1) - forced)
    assert diff.max() < 1e-4, (
        f"decoder_step chained over the inputs differs from teacher_forced_logits ({_where(diff)}): both must use the "
        "same layers (decoder_embedding, the decoder LSTMs' cells, output_layer) and pass the states along"
    )


@pytest.mark.covers("greedy_decode")
def test_greedy_decode_feeds_back_its_own_predictions():
    chain = [3, 7, 2, 9, 0]
    step = _TableStep(_chain_table(chain))
    ids, lengths = n07.greedy_decode(step, tf.zeros([2, V]), 2, max_steps=20)
    ids, lengths = np.asarray(ids), np.asarray(lengths)
    if step.fed and step.fed[0] != [0, 0]:
        pytest.fail(f"greedy_decode: the first step was fed {step.fed[0]}, not GO: start every row from GO (token 0), "
                    "tf.fill([batch_size], GO), then feed each step's argmax back", pytrace=False)
    if ids.ndim == 2 and ids.shape[1] == 1 and len(step.fed) > 1:
        pytest.fail(f"greedy_decode: the loop ran {len(step.fed)} steps but the ids hold one column, {ids.tolist()}: each "
                    "step must write its own position and move on (the step counter t += 1 inside the loop)",
                    pytrace=False)
    assert ids.dtype == np.int32 and lengths.dtype == np.int32, f"ids and lengths should be int32, got {ids.dtype}, {lengths.dtype}"
    assert ids.ndim == 2 and ids.shape[0] == 2, f"ids should be [B, T_out] = [2, ...], got {list(ids.shape)}: transpose the stacked [T, B]"
    if ids[0, : len(chain)].tolist() != chain and ids.reshape(ids.shape[::-1]).T[0, : len(chain)].tolist() == chain:
        pytest.fail(f"greedy_decode: the right ids in the wrong layout (row 0 is {ids[0].tolist()}): the stacked "
                    "tokens are [T, B]; transpose them to [B, T] (tf.transpose): a reshape to [batch, -1] mixes the "
                    "rows", pytrace=False)
    assert ids[0, : len(chain)].tolist() == chain, (
        f"greedy_decode: from GO the table leads to {chain}, got {ids[0].tolist()}: feed each step's argmax back as the next input "
        "(a decoder that keeps feeding GO gives [3, 3, 3, ...])"
    )
    assert ids.shape[1] == len(chain), (
        f"greedy_decode: both rows emitted EOS at step {len(chain)}, but the loop ran {ids.shape[1]} steps (of max_steps = 20): leave "
        "the loop as soon as every sequence is finished (if tf.reduce_all(finished): break)"
    )
    assert lengths.tolist() == [5, 5], (
        f"greedy_decode: lengths count up to and including EOS: expected [5, 5], got {lengths.tolist()}")


@pytest.mark.covers("greedy_decode")
def test_greedy_decode_stops_at_eos():
    chain = [3, 7, 2, 9, 0]
    states = np.zeros([2, V], np.float32)
    states[1, 0] = 100.0  # row 1 emits EOS at its first step
    ids, lengths = n07.greedy_decode(_TableStep(_chain_table(chain)), tf.constant(states), 2, max_steps=20)
    ids, lengths = np.asarray(ids), np.asarray(lengths)
    if ids.ndim == 2 and ids.shape[1] >= 1 and ids[1, 0] != 0:
        pytest.fail(f"row 1's states make EOS its first token, got {ids[1].tolist()}: start from the given states",
                    pytrace=False)
    assert ids.shape == (2, 5), (
        f"the loop should stop once every sequence has emitted EOS: expected [2, 5], got {list(ids.shape)} "
        "(break when tf.reduce_all(finished))"
    )
    assert ids[1].tolist() == [0, 0, 0, 0, 0], (
        f"greedy_decode: row 1 emitted EOS at its first step, then {ids[1, 1:].tolist()}: after EOS a finished sequence emits PAD (0) "
        "(tf.where(finished, PAD, argmax))"
    )
    assert lengths.tolist() == [5, 1], (
        f"greedy_decode: lengths count up to and including EOS: expected [5, 1], got {lengths.tolist()}")


@pytest.mark.covers("greedy_decode")
def test_greedy_decode_is_bounded():
    ids, lengths = n07.greedy_decode(_TableStep(_chain_table([3, 7, 3, 7], no_eos=True)), tf.zeros([3, V]), 3, max_steps=6)
    assert tuple(np.shape(ids)) == (3, 6), (
        f"greedy_decode(..., max_steps=6): without EOS the loop must stop after max_steps = 6 steps, got shape "
        f"{tuple(np.shape(ids))}: stop at the max_steps argument"
    )
    assert np.asarray(lengths).tolist() == [6, 6, 6], (
        f"a sequence that never emits EOS has length max_steps, got {np.asarray(lengths).tolist()}"
    )


@pytest.mark.covers("greedy_decode")
def test_greedy_decode_in_tf_function_is_one_while_loop():
    chain = [3, 7, 2, 9, 0]
    step = _TableStep(_chain_table(chain))

    @tf.function(input_signature=[tf.TensorSpec([None, V], tf.float32)])
    def decode(states):
        return n07.greedy_decode(step, states, tf.shape(states)[0], max_steps=40)

    n07.greedy_decode(_TableStep(_chain_table(chain)), tf.zeros([1, V]), 1, max_steps=8)  # eagerly first: a stub says TODO
    problem = None
    try:
        ids, lengths = decode(tf.zeros([3, V]))
    except Exception as exc:  # AutoGraph refuses some loops; say why in one line (outside this block)
        if "n07:" in str(exc):
            raise
        lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.strip().startswith("See ")]
        problem = next((line for line in lines if "Error:" in line), lines[-1] if lines else type(exc).__name__)
    if problem is not None:
        changed = re.search(r"'(\w+)' has shape (\S+) before the loop, but shape (\S+) after one iteration", problem)
        pytest.fail(
            f"greedy_decode fails inside a tf.function ({problem[:200]}): "
            + (f"the loop variable '{changed.group(1)}' must keep its shape {changed.group(2)} in every step; what it is "
               "made from lost its [B] shape (a tf.squeeze, a reduce without axis): keep the step's ids [B], "
               "tf.argmax(logits, axis=-1)" if changed else
               "loop over tf.range(max_steps) (a Python range cannot leave early on a tensor condition), keeping every "
               "loop variable a tensor of fixed shape and dtype"), pytrace=False)
    assert step.calls <= 2, (
        f"greedy_decode: tracing the decoder called the step {step.calls} times: the loop was unrolled into the graph (a Python "
        "range). Loop over tf.range(max_steps) so AutoGraph makes ONE tf.while_loop whose body holds one step"
    )
    ids = np.asarray(ids)
    assert ids.tolist() == [chain] * 3, (
        f"inside a tf.function the decoder should give {chain} for every row and stop there, got {ids.tolist()}"
    )
    assert np.asarray(lengths).tolist() == [5, 5, 5], (
        f"inside a tf.function the decoder should give lengths [5, 5, 5] (EOS counted), got {np.asarray(lengths).tolist()}"
    )


@pytest.mark.covers("make_greedy_decoder", "encode", "decoder_step", "greedy_decode")
def test_make_greedy_decoder_traces_once():
    layers = _small_layers(layers=1)
    decode = n07.make_greedy_decoder(layers, max_steps=7)
    assert hasattr(decode, "get_concrete_function"), f"make_greedy_decoder should return a tf.function, got {type(decode).__name__}"
    x, lx, _, _, _ = _toy_batch()
    ids, lengths = decode(tf.constant(x), tf.constant(lx))
    ids = np.asarray(ids)
    assert ids.dtype == np.int32 and ids.shape[0] == 5 and 1 <= ids.shape[1] <= 7, (
        f"make_greedy_decoder(layers, max_steps=7): ids should be int32 [5, <= max_steps = 7], got {ids.dtype} "
        f"{list(ids.shape)}: pass max_steps on to greedy_decode"
    )
    count = decode.experimental_get_tracing_count()
    decode(tf.constant(x[:3, :4]), tf.constant(np.minimum(lx[:3], 4)))
    assert decode.experimental_get_tracing_count() == count, (
        "make_greedy_decoder: a batch of another shape traced the decoder again: give the tf.function "
        "input_signature=(TensorSpec([None, None], tf.int32), TensorSpec([None], tf.int32))"
    )
    _, states = n07.encode(layers, tf.constant(x), tf.constant(lx))
    eager_ids, _ = n07.greedy_decode(lambda t, s: n07.decoder_step(layers, t, s), states, 5, max_steps=7)
    if not np.array_equal(ids, np.asarray(eager_ids)):
        _, padded = n07.encode(layers, tf.constant(x), tf.constant([x.shape[1]] * len(x), tf.int32))
        padded_ids, _ = n07.greedy_decode(lambda t, s: n07.decoder_step(layers, t, s), padded, 5, max_steps=7)
        if np.array_equal(ids, np.asarray(padded_ids)):
            pytest.fail("make_greedy_decoder: the decoder encoded every row over the batch's full padded width: pass "
                        "the lengths it is called with on to encode(layers, inputs, lengths)", pytrace=False)
    assert np.array_equal(ids, np.asarray(eager_ids)), (
        f"make_greedy_decoder: the tf.function decoded {ids.tolist()}, the eager greedy_decode(decoder_step) from encode's states "
        f"{np.asarray(eager_ids).tolist()}: decode = encode, then greedy_decode with decoder_step on the same layers"
    )


@pytest.mark.covers("greedy_decode", "decoder_step", "teacher_forced_logits", "encode")
def test_inference_shares_training_weights():
    layers = _small_layers(hidden=16)
    x, lx, _, _, _ = _toy_batch(8, seed=6)
    _, states = n07.encode(layers, tf.constant(x), tf.constant(lx))
    ids = np.asarray(n07.greedy_decode(lambda t, s: n07.decoder_step(layers, t, s), states, 8, max_steps=10)[0])
    dec_in = np.concatenate([np.zeros([8, 1], np.int32), ids[:, :-1]], axis=1)
    again = np.asarray(n07.teacher_forced_logits(layers, tf.constant(dec_in), states)).argmax(-1)
    for i in range(8):
        n = (ids[i].tolist().index(0) + 1) if 0 in ids[i] else ids.shape[1]
        assert again[i, :n].tolist() == ids[i, :n].tolist(), (
            f"row {i}: greedy decoding gave {ids[i, :n].tolist()} but teacher forcing on those tokens predicts "
            f"{again[i, :n].tolist()}: both decoders must use the same layers and start from encode's states"
        )


# --------------------------------------------------------------------------- loss, optimizer, one step
@pytest.mark.covers("masked_loss")
def test_masked_loss_matches_numpy():
    rng = np.random.RandomState(0)
    logits = rng.randn(3, 5, V).astype(np.float32)
    targets = rng.randint(0, V, size=[3, 5]).astype(np.int32)
    lengths = np.array([5, 2, 3], dtype=np.int32)
    got = n07.masked_loss(tf.constant(logits), tf.constant(targets), tf.constant(lengths))
    assert tuple(np.shape(got)) == (), f"the loss should be a scalar, got shape {tuple(np.shape(got))}"
    got = float(got)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    xent = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    mask = np.arange(5)[None, :] < lengths[:, None]
    want = (xent * mask).sum() / mask.sum()
    if abs(got - want) > 1e-5 * abs(want):
        candidates = [
            ((xent * mask).mean(), "divided by every position B * T, padding included (what a Keras loss object with "
                                   "sample_weight=mask does): divide by the number of valid steps, tf.reduce_sum(mask)"),
            (xent.mean(), "the padded steps count: multiply the per-step cross entropy by "
                          "tf.sequence_mask(lengths, T, dtype=tf.float32) before summing"),
            (((xent * mask).sum(1) / lengths).mean(), "each sequence was averaged first: divide the masked sum over the "
                                                      "whole batch by the total number of valid steps"),
        ]
        as_probabilities = np.asarray(keras.losses.sparse_categorical_crossentropy(targets, logits), np.float64)
        candidates.append(((as_probabilities * mask).sum() / mask.sum(),
                           "that is the cross entropy of the logits read as probabilities: pass from_logits=True "
                           "(the decoder's output layer has no softmax)"))
        candidates += mask_off_by_one(xent, lengths)
        why = next((text for value, text in candidates if abs(got - value) <= 1e-4 * abs(value)),
                   "expected sum(xent * mask) / sum(mask) with xent the per-step sparse cross entropy from logits")
        pytest.fail(f"masked_loss: the loss is {got:.6f}, expected {want:.6f}: {why}", pytrace=False)


@pytest.mark.covers("masked_loss")
def test_masked_loss_ignores_large_logits_at_padded_steps():
    """The docstring: padded positions with any finite logits must not change the result (a log of a softmax gives
    log(0) = -inf at logits of +-1000, and 0 * inf is NaN under the mask)."""
    rng = np.random.RandomState(3)
    logits = rng.randn(2, 4, V).astype(np.float32)
    targets = rng.randint(0, V, size=[2, 4]).astype(np.int32)
    lengths = np.array([4, 2], dtype=np.int32)
    base = float(n07.masked_loss(tf.constant(logits), tf.constant(targets), tf.constant(lengths)))
    large = logits.copy()
    large[1, 2:] = 1000.0 * np.sign(rng.randn(2, V))
    got = float(n07.masked_loss(tf.constant(large), tf.constant(targets), tf.constant(lengths)))
    assert np.isfinite(got) and abs(got - base) <= 1e-5 * abs(base), (
        f"masked_loss: logits of +-1000 (large, finite) at the padded steps made the loss {got}, where the mask "
        f"leaves {base:.6f}: the log of a softmax gives log(0) = -inf there, and 0 * inf is NaN even under the mask; "
        "take the cross entropy from the logits (sparse_categorical_crossentropy(..., from_logits=True))"
    )


@pytest.mark.covers("masked_loss")
def test_masked_loss_batch_padded_wider():
    """Targets padded wider than the longest length (T = 6, lengths [2, 4]): a batch cut from a wider pool."""
    rng = np.random.RandomState(2)
    logits = rng.randn(2, 6, V).astype(np.float32)
    targets = rng.randint(0, V, size=[2, 6]).astype(np.int32)
    lengths = np.array([2, 4], dtype=np.int32)
    where = "on targets padded wider than the longest length (T = 6, lengths [2, 4])"
    try:
        got = float(n07.masked_loss(tf.constant(logits), tf.constant(targets), tf.constant(lengths)))
    except (ValueError, tf.errors.OpError) as exc:
        error = str(exc).strip().splitlines()[0][:120]
    else:
        error = None
    if error is not None:
        pytest.fail(f"masked_loss: {where} the mask and the [B, T] cross entropy differ in width: tf.sequence_mask(lengths) "
                    "is only max(lengths) wide, pass maxlen=T (tf.sequence_mask(lengths, tf.shape(targets)[1])) "
                    f"(TensorFlow: {error})", pytrace=False)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    xent = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    mask = np.arange(6)[None, :] < lengths[:, None]
    want = (xent * mask).sum() / mask.sum()
    over_all = (xent * mask).sum() / mask.size  # divided by every position, padding included
    assert abs(got - want) <= 1e-5 * abs(want), (
        f"masked_loss: {where} expected sum(xent * mask) / sum(mask) = {want:.6f}, got {got:.6f}"
        + (": that is divided by every position B * T, padding included; divide by the number of valid steps, "
           "tf.reduce_sum(mask)" if abs(got - over_all) <= 1e-5 * abs(over_all) else
           ": the mask must be T wide (tf.sequence_mask(lengths, maxlen=T)) and count only the valid steps")
    )


@pytest.mark.covers("make_optimizer")
def test_make_optimizer_is_k07s_adam():
    opt = n07.make_optimizer(3e-3)
    assert isinstance(opt, keras.optimizers.Adam), f"expected keras.optimizers.Adam, got {type(opt).__name__}"
    config = opt.get_config()
    assert np.isclose(float(config["learning_rate"]), 3e-3), f"learning rate should be 3e-3, got {config['learning_rate']}"
    assert np.isclose(config["epsilon"], 1e-8, rtol=1e-3), (
        f"make_optimizer: epsilon should be 1e-8 as TF 1's AdamOptimizer, got {config['epsilon']:g} (Keras's default is 1e-7)"
    )
    assert np.isclose(config["beta_1"], 0.9) and np.isclose(config["beta_2"], 0.999), "keep beta_1 0.9 and beta_2 0.999"
    other = float(n07.make_optimizer(0.05).get_config()["learning_rate"])
    assert np.isclose(other, 0.05), (
        f"make_optimizer(0.05) should use the learning rate 0.05, got {other:g}: pass learning_rate on, do not hard-code 3e-3"
    )


# Tracing a step with gradients through two Keras LSTM loops is the slowest thing a unit test does here: measured
# 8-20 s on TF 2.21 and up to 40 s on 2.12 (Keras 2's LSTM traces a CPU and a GPU variant) under a load of 11 on the
# 2-core box; the step itself then runs in milliseconds. Hence its own limit.
@pytest.mark.timeout(120)
@pytest.mark.covers("make_train_step", "encode", "teacher_forced_logits", "masked_loss", "make_optimizer")
def test_make_train_step():
    layers = _small_layers(hidden=8, layers=1)
    x, lx, y_in, y, ly = _toy_batch(6, seed=1)
    _, states = n07.encode(layers, tf.constant(x), tf.constant(lx))
    want = float(n07.masked_loss(n07.teacher_forced_logits(layers, tf.constant(y_in), states), tf.constant(y), tf.constant(ly)))
    before = {id(v): v.numpy().copy() for item in layers for layer in (item if isinstance(item, list) else [item])
              for v in layer.trainable_variables}
    optimizer = n07.make_optimizer(3e-2)
    step = n07.make_train_step(layers, optimizer)
    assert hasattr(step, "get_concrete_function"), f"make_train_step should return a tf.function, got {type(step).__name__}"
    loss = step(x, lx, y_in, y, ly)
    check_optimizer_used(optimizer, 1)
    assert np.isclose(float(loss), want, rtol=1e-4), (
        f"the step returned {float(loss):.5f}, the masked loss before the update is {want:.5f}: return the loss "
        "computed under the tape"
    )
    unchanged = [field + (f"[{k}]" if isinstance(item, list) else "")
                 for field, item in zip(layers._fields, layers)
                 for k, layer in enumerate(item if isinstance(item, list) else [item])
                 if all(np.array_equal(v.numpy(), before[id(v)]) for v in layer.trainable_variables)]
    assert not unchanged, (
        f"make_train_step: one step left these layers' weights unchanged: {unchanged}: take the gradients with respect to the "
        "trainable variables of EVERY layer of the Seq2SeqLayers (both embeddings, both LSTM stacks, the output layer) and "
        "apply them"
    )
    moved = max((float(np.abs(v.numpy() - before[id(v)]).max()), layer.name) for item in layers
                for layer in (item if isinstance(item, list) else [item]) for v in layer.trainable_variables)
    if moved[0] > 3e-2 * 1.01:
        pytest.fail(f"make_train_step: the first Adam step moved a weight of {moved[1]} by {moved[0]:.4f}, more than the learning rate "
                    "3e-2 (Adam's first step never does): the embeddings' gradients are tf.IndexedSlices with repeated "
                    "ids, which Keras 3's Adam applies unlike TF 1; make each gradient dense (tf.convert_to_tensor) "
                    "before apply_gradients", pytrace=False)
    count = step.experimental_get_tracing_count()
    for n, t in ((4, 5), (3, 2)):
        xs, lxs, y_ins, ys, lys = _toy_batch(n, seed=n + t)
        step(xs, lxs, y_ins, ys, lys)
    assert step.experimental_get_tracing_count() == count, (
        f"make_train_step: batches of other shapes traced the step again ({step.experimental_get_tracing_count() - count} more traces): "
        "use tf.function(input_signature=BATCH_SIGNATURE) so bucketed batches of every length share one graph"
    )
    first = float(step(x, lx, y_in, y, ly))
    for _ in range(25):
        last = float(step(x, lx, y_in, y, ly))
    # Measured: 2.41 -> 0.46 (Adam 3e-2, H = 8, one batch of 6).
    assert last < 0.5 * first, (
        f"30 steps on one batch should fit it, but the loss went {first:.3f} -> {last:.3f}: does the step apply the "
        "gradients of the loss (not of something else) with the optimizer it was given?"
    )


# --------------------------------------------------------------------------- equivalence with k07
def _role(name):
    """The role of one of k07's variables, from its name (encoder variables live under 'encoder/')."""
    side = "encoder" if name.startswith("encoder/") else "decoder"
    if "embedding" in name:
        return f"{side}/embedding"
    found = re.search(r"cell_(\d+)/.*(kernel|bias)", name)
    if found:
        return f"{side}/cell_{found.group(1)}/{found.group(2)}"
    return "output/" + ("kernel" if "kernel" in name else "bias")


def _k07_network(x, lx, y_in, ly, train_batch=None):
    """The SAME target's k07 pieces in their own graph, with non-trivial weights: (roles, final states (c, h),
    teacher-forced logits, greedy ids, and with ``train_batch`` the roles after one Adam 3e-3 step and the loss)."""
    require_legacy_rnn()
    with fresh_graph():
        enc_in = tf.compat.v1.placeholder(tf.int32, [None, None])
        enc_len = tf.compat.v1.placeholder(tf.int32, [None])
        dec_in = tf.compat.v1.placeholder(tf.int32, [None, None])
        dec_out = tf.compat.v1.placeholder(tf.int32, [None, None])
        dec_len = tf.compat.v1.placeholder(tf.int32, [None])
        _, state = k07.encoder(enc_in, enc_len)
        parts = k07.decoder_parts()
        logits = k07.training_decoder(parts, dec_in, dec_len, state)
        ids, _ = k07.greedy_decoder(parts, state, tf.shape(enc_in)[0])
        loss = k07.masked_loss(logits, dec_out, dec_len)
        train_op = tf.compat.v1.train.AdamOptimizer(3e-3).minimize(loss)
        variables = {_role(v.name): v for v in tf.compat.v1.trainable_variables()}
        rng = np.random.RandomState(3)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for role, v in variables.items():  # zero biases would hide a missing bias: make them differ, and sharpen
                if role.endswith("bias"):
                    v.load(rng.uniform(-0.5, 0.5, v.shape.as_list()).astype(np.float32), sess)
                else:
                    v.load(3.0 * sess.run(v), sess)
            roles = sess.run(variables)
            feed = {enc_in: x, enc_len: lx, dec_in: y_in, dec_len: ly}
            states, forced, greedy = sess.run([state, logits, ids], feed)
            after = None
            if train_batch is not None:
                bx, blx, by_in, by, bly = train_batch
                first_loss, _ = sess.run([loss, train_op], {enc_in: bx, enc_len: blx, dec_in: by_in, dec_out: by, dec_len: bly})
                after = (sess.run(variables), float(first_loss))
    return roles, states, forced, greedy, after


def _k07_batch(n=24, seed=11):
    x, y, lx, ly = k07.generate_data(n, rng=np.random.RandomState(seed))
    y_in, y_out = k07.get_decoder_input_and_output(y)
    return x, lx, y_in, y_out, ly


# The checks in order, each with the mapping that makes it pass.
_MAPPINGS = {
    "states": "each BasicLSTMCell's kernel [D + H, 4H] goes to the LSTM layer split into kernel (first D rows) and "
              "recurrent_kernel (last H rows), gate columns i, j, f, o reordered to Keras's i, f, c, o, and "
              "forget_bias 1.0 added to the f block of the bias (lstm_weights_from_k07); k07's state (c, h) is "
              "Keras's [h, c]",
    "logits": "the decoder cells map as the encoder's; output/kernel [H, V] and output/bias go into output_layer "
              "unchanged; decoder/embedding into decoder_embedding",
    "greedy": "greedy decoding must take k07's argmax path with the same weights",
}


def _port_problem(k07_states, k07_logits, k07_greedy, layers, x, lx, y_in, ly, atol=1e-4):
    """None when the Keras layers compute k07's numbers, else one line naming the mapping."""
    _, states = n07.encode(layers, tf.constant(x), tf.constant(lx))
    for i, (keras_state, k07_state) in enumerate(zip(states, k07_states)):
        for name, got, want in (("h", keras_state[0], k07_state.h), ("c", keras_state[1], k07_state.c)):
            diff = np.abs(np.asarray(got) - want)
            if diff.max() > atol:
                return f"encoder layer {i}'s final {name} differs from k07's ({_where(diff)}): {_MAPPINGS['states']}"
    logits = np.asarray(n07.teacher_forced_logits(layers, tf.constant(y_in), states))
    valid = np.arange(y_in.shape[1])[None, :] < ly[:, None]
    diff = np.where(valid[..., None], np.abs(logits - k07_logits), 0.0)
    if diff.max() > atol * max(1.0, float(np.abs(k07_logits).max())):
        return f"teacher-forced logits differ from k07's at valid steps ({_where(diff)}): {_MAPPINGS['logits']}"
    ids = np.asarray(n07.greedy_decode(lambda t, s: n07.decoder_step(layers, t, s), states, len(x))[0])  # eagerly
    if ids.shape != k07_greedy.shape or not np.array_equal(ids, k07_greedy):
        return f"greedy ids differ from k07's ({ids.shape} vs {k07_greedy.shape}): {_MAPPINGS['greedy']}"
    return None


# The equivalence tests build k07's graph and trace Keras's LSTM loops at full size: 10-30 s each under load
# (measured on the shared 2-core box), hence their own limit.
@pytest.mark.timeout(120)
@pytest.mark.needs("k07")
@pytest.mark.covers("load_k07_weights", "lstm_weights_from_k07", "build_layers", "encode", "teacher_forced_logits",
                    "decoder_step", "greedy_decode")
def test_same_numbers_as_k07():
    x, lx, y_in, _, ly = _k07_batch()
    roles, states, forced, greedy, _ = _k07_network(x, lx, y_in, ly)
    layers = n07.load_k07_weights(n07.build_layers(), dict(roles))
    problem = _port_problem(states, forced, greedy, layers, x, lx, y_in, ly)
    assert problem is None, problem
    _, ours = n07.encode(layers, tf.constant(x), tf.constant(lx))
    state_diff = max(float(np.abs(np.asarray(ours[i][0]) - states[i].h).max()) for i in range(len(states)))
    logits = np.asarray(n07.teacher_forced_logits(layers, tf.constant(y_in), ours))
    valid = np.arange(y_in.shape[1])[None, :] < ly[:, None]
    logit_diff = float(np.abs(logits - forced)[valid].max())
    print(f"n07 vs k07 on 24 sequences: max |h diff| {state_diff:.3g}, max |logits diff| {logit_diff:.3g} "
          f"(logits up to {np.abs(forced).max():.3g}), greedy ids equal on {greedy.shape}")


def _wrong_ports(roles):
    """Deliberately wrong ports of k07's weights: (what is wrong, per-cell mapping)."""

    def k07_order(kernel, bias):  # gate columns left in BasicLSTMCell's order i, j, f, o
        h = kernel.shape[1] // 4
        b = bias.copy().reshape(4, h)
        b[2] += 1.0
        return [kernel[: kernel.shape[0] - h], kernel[kernel.shape[0] - h:], b.reshape(-1)]

    def no_forget_bias(kernel, bias):
        return _keras_layout(kernel, bias, forget_bias=0.0)

    def rows_swapped(kernel, bias):  # the h rows taken as the first rows of k07's kernel
        h = kernel.shape[1] // 4
        k = np.concatenate([kernel.reshape(-1, 4, h)[:, [0, 2, 1, 3]].reshape(-1, 4 * h)])
        _, _, b = _keras_layout(kernel, bias)
        return [k[h:], k[:h], b]

    def bias_left_out(kernel, bias):
        k, r, b = _keras_layout(kernel, bias)
        return [k, r, np.zeros_like(b)]

    return (("gate columns left in BasicLSTMCell's order i, j, f, o", k07_order),
            ("forget_bias not added to the forget gate", no_forget_bias),
            ("the recurrent kernel cut from the first H rows (k07's kernel is [x rows ; h rows])", rows_swapped),
            ("the bias left out (zeros)", bias_left_out))


@pytest.mark.timeout(120)
@pytest.mark.needs("k07")
@pytest.mark.covers("build_layers")
def test_wrong_ports_are_rejected():
    """The equivalence check above must be able to fail: each wrong port is caught, and the message names the mapping."""
    x, lx, y_in, _, ly = _k07_batch(8)
    roles, states, forced, greedy, _ = _k07_network(x, lx, y_in, ly)
    for what, mapping in _wrong_ports(roles):
        layers = n07.build_layers()
        for name, value in roles.items():
            if name.endswith("embedding"):
                getattr(layers, name.replace("/", "_")).set_weights([value])
        layers.output_layer.set_weights([roles["output/kernel"], roles["output/bias"]])
        for side in ("encoder", "decoder"):
            for i, lstm in enumerate(getattr(layers, f"{side}_lstms")):
                lstm.set_weights(mapping(roles[f"{side}/cell_{i}/kernel"], roles[f"{side}/cell_{i}/bias"]))
        problem = _port_problem(states, forced, greedy, layers, x, lx, y_in, ly)
        assert problem is not None, f"the equivalence check accepted a wrong port: {what}"
        assert "i, f, c, o" in problem and "forget_bias" in problem, f"the message should name the mapping: {problem}"
        print(f"n07 wrong port rejected ({what}): {problem[:110]}...")


@pytest.mark.timeout(120)
@pytest.mark.needs("k07")
@pytest.mark.covers("make_train_step", "make_optimizer", "masked_loss", "load_k07_weights", "lstm_weights_from_k07",
                    "build_layers", "encode", "teacher_forced_logits")
def test_one_step_as_k07():
    x, lx, y_in, y_out, ly = _k07_batch(8)
    batch = _k07_batch(32, seed=12)
    roles, _, _, _, (after, k07_loss) = _k07_network(x, lx, y_in, ly, train_batch=batch)
    layers = n07.load_k07_weights(n07.build_layers(), dict(roles))
    loss = float(n07.make_train_step(layers, n07.make_optimizer(3e-3))(*batch))
    assert np.isclose(loss, k07_loss, rtol=1e-4), f"the first step's loss {loss:.6f} differs from k07's {k07_loss:.6f}"
    want = n07.load_k07_weights(n07.build_layers(), dict(after))
    worst = (0.0, "")
    for got_item, want_item, name in zip(layers, want, n07.Seq2SeqLayers._fields):
        got_layers = got_item if isinstance(got_item, list) else [got_item]
        want_layers = want_item if isinstance(want_item, list) else [want_item]
        for g_layer, w_layer in zip(got_layers, want_layers):
            for g, w in zip(g_layer.get_weights(), w_layer.get_weights()):
                d = float(np.abs(np.asarray(g) - np.asarray(w)).max())
                worst = max(worst, (d, f"{name} {g_layer.name}"))
    print(f"n07 vs k07 after one Adam 3e-3 step: loss {loss:.6f} vs {k07_loss:.6f}, max |weight diff| {worst[0]:.3g} ({worst[1]})")
    # Adam's first step moves every weight by lr * g / (|g| + eps), i.e. by about +-lr = 3e-3 unless |g| is near eps;
    # there float32 noise in g shows: measured max |diff| 5.3e-6 (TF 2.21) and 2.3e-5 (TF 2.12). A weight left out, a
    # wrong rate or a gradient of another sign differs by ~lr or more: the limit is lr / 10.
    assert worst[0] < 3e-4, (
        f"after one step the weights differ from k07's by {worst[0]:.3g} in {worst[1]}: the step must be k07's: the "
        "masked loss, gradients of every layer's weights, Adam 3e-3 with epsilon 1e-8"
    )


# --------------------------------------------------------------------------- train, in two steps
def _weights_of(layers):
    return [np.asarray(w, np.float64) for item in layers
            for layer in (item if isinstance(item, (list, tuple)) else [item]) for w in layer.get_weights()]


def _stand_ins(monkeypatch, batches):
    """train's helpers replaced by quick stand-ins (tracing the real step and decoder takes 6-10 s a run, measured),
    which keep what train must seed: real Keras layers, built, whose initial weights come from Keras's random state;
    the step's 'loss' and the decoder's ids are plain functions of those weights and of the batch. The step appends
    each batch's (x, decoder_inputs) to ``batches``."""
    def build_layers(*args, **kwargs):
        def embedding():
            layer = keras.layers.Embedding(V, 3)
            layer.build((None, None))
            return layer

        def lstm():
            layer = keras.layers.LSTM(3, return_sequences=True, return_state=True)
            layer.build((None, None, 3))
            return layer

        output = keras.layers.Dense(V)
        output.build((None, 3))
        return n07.Seq2SeqLayers(embedding(), [lstm()], embedding(), [lstm()], output)

    def make_train_step(layers, optimizer):
        def step(x, len_x, decoder_inputs, decoder_targets, len_y):
            batches.append((np.array(x), np.array(decoder_inputs)))
            weights = _weights_of(layers)
            loss = (sum(float(np.sum(w * w)) for w in weights) + float(weights[0][np.asarray(x)].mean())
                    + 0.01 * float(np.asarray(decoder_targets).sum()))
            return tf.constant(loss, tf.float32)
        return step

    def make_greedy_decoder(layers, max_steps=None):
        def decode(inputs, lengths):
            emb, kernel = layers.decoder_embedding.get_weights()[0], layers.output_layer.get_weights()[0]
            ids = np.argmax(emb[np.asarray(inputs)] @ kernel, axis=-1).astype(np.int32)
            return tf.constant(ids), tf.constant(np.asarray(lengths, np.int32))
        return decode

    import sys

    module = sys.modules[n07.train.__module__]  # the module itself (a kata's stand-in is read-only)
    monkeypatch.setattr(module, "build_layers", build_layers)
    monkeypatch.setattr(module, "make_optimizer", lambda *args, **kwargs: "the optimizer")
    monkeypatch.setattr(module, "make_train_step", make_train_step)
    monkeypatch.setattr(module, "make_greedy_decoder", make_greedy_decoder)


@pytest.mark.needs("k07")
@pytest.mark.covers("train")
def test_train_is_reproducible(monkeypatch):
    """train(seed=s) twice gives the same run, whatever the global random state; another seed another run."""
    import random

    batches = []
    _stand_ins(monkeypatch, batches)

    def run(seed, salt):
        del batches[:]
        random.seed(1000 + salt)  # what train must not depend on: Python's, numpy's and TensorFlow's global state
        np.random.seed(2000 + salt)
        tf.random.set_seed(3000 + salt)
        random.random(), np.random.rand(), tf.random.uniform([1])
        result = n07.train(steps=2, batch_size=4, eval_samples=4, seed=seed, num_print=0)
        assert isinstance(result, dict) and "losses" in result, (
            f"train: should return a dict with 'losses' (every step's loss), got "
            f"{sorted(result) if isinstance(result, dict) else type(result).__name__}"
        )
        return [round(float(v), 5) for v in result["losses"]], result.get("accuracy"), list(batches)

    first, again, other = run(7, salt=1), run(7, salt=2), run(8, salt=1)
    assert first[:2] == again[:2], (
        "train is not reproducible: seed random/numpy/TF with `seed` at the start (keras.utils.set_random_seed(seed) "
        "before build_layers: Keras draws the initial weights from that state; the batches from "
        "np.random.RandomState(seed)): two runs of train(steps=2, seed=7), with Python's, numpy's and TensorFlow's "
        f"global random state changed in between, gave the losses {first[0]} and {again[0]}"
    )
    assert first[:2] != other[:2], (
        f"train ignores its seed: seeds 7 and 8 gave the same run (losses {first[0]}): pass the `seed` argument to "
        "keras.utils.set_random_seed and np.random.RandomState, not a fixed number"
    )
    rng = np.random.RandomState(7)  # k07.train's batches: bucketed pools of 32 * batch_size, popped from the end
    queue = k07.bucketed_batches(*k07.generate_data(32 * 4, rng=rng), batch_size=4, rng=rng)
    want, front = [queue[-1][0], queue[-2][0]], [queue[0][0], queue[1][0]]
    got = [x for x, _ in first[2]]
    same = len(got) == 2 and all(np.array_equal(g, w) for g, w in zip(got, want))
    from_front = len(got) == 2 and all(np.array_equal(g, w) for g, w in zip(got, front))
    assert same, (
        "train: the batches are not k07.train's: "
        + ("they are popped from the FRONT of the queue (queue.pop(0)); k07.train pops from the end, queue.pop()"
           if from_front else
           "rng = np.random.RandomState(seed), then pop each batch from the end (queue.pop()) of "
           "k07.bucketed_batches(*k07.generate_data(32 * batch_size, rng=rng), batch_size=batch_size, rng=rng) (a new "
           f"pool when the queue is empty); with seed 7 and batch_size 4 the first two batches' x have the shapes "
           f"{[w.shape for w in want]}, got {[np.shape(g) for g in got[:2]]}")
    )


@pytest.mark.needs("k07")
@pytest.mark.covers("train")
def test_train_reports_the_mean_of_the_last_100_losses(monkeypatch):
    _stand_ins(monkeypatch, [])
    result = n07.train(steps=102, batch_size=4, eval_samples=4, seed=3, num_print=0)
    assert isinstance(result, dict) and len(result.get("losses", ())) == 102, (
        f"train(steps=102) should return a dict whose 'losses' has 102 entries, got "
        f"{len(result.get('losses', ())) if isinstance(result, dict) else type(result).__name__}"
    )
    check_reported_loss(result)


@pytest.mark.needs("k07")
@pytest.mark.covers("train")
def test_train_evaluates_fresh_sequences_and_records_floats(monkeypatch):
    _stand_ins(monkeypatch, [])
    result = n07.train(steps=3, batch_size=4, eval_samples=5, seed=7, num_print=0)
    losses = result.get("losses", []) if isinstance(result, dict) else []
    kinds = sorted({type(v).__name__ for v in losses if not isinstance(v, float)})
    assert not kinds, (
        f"train: 'losses' should hold Python floats (float(loss) each step), got {', '.join(kinds)}: a tensor per step "
        "keeps TensorFlow objects alive and is no number to plot or average"
    )
    x_eval = np.asarray(result["eval"][0]) if isinstance(result, dict) and result.get("eval") is not None else None
    want = k07.generate_data(5, rng=np.random.RandomState(8))[0]
    assert x_eval is not None and x_eval.shape == want.shape and np.array_equal(x_eval, want), (
        "train: the evaluation sequences should be k07.generate_data(eval_samples, rng=np.random.RandomState(seed + 1)) "
        "as k07.train's, fresh ones: with seed 7 and eval_samples 5 their first row is "
        f"{want[0].tolist()}, got {None if x_eval is None else np.asarray(x_eval)[0].tolist()} (the training rng's "
        "data, or another draw, measures something else)"
    )

@pytest.mark.needs("k07")
@pytest.mark.covers("train")
def test_train_passes_its_arguments_on(monkeypatch, capsys):
    import sys

    batches, rates = [], []
    _stand_ins(monkeypatch, batches)
    module = sys.modules[n07.train.__module__]
    monkeypatch.setattr(module, "make_optimizer", lambda learning_rate=3e-3: rates.append(learning_rate) or "opt")
    capsys.readouterr()
    n07.train(steps=2, learning_rate=0.02, batch_size=5, use_buckets=False, eval_samples=3, seed=4, num_print=2)
    printed = capsys.readouterr().out
    assert rates == [0.02], (
        f"train(learning_rate=0.02): make_optimizer got the learning rates {rates}: make one optimizer, "
        "make_optimizer(learning_rate), with the argument"
    )
    first = k07.generate_data(5, rng=np.random.RandomState(4))[0]
    got = [x for x, _ in batches]
    assert len(got) == 2 and got[0].shape == first.shape and np.array_equal(got[0], first), (
        f"train(steps=2, batch_size=5, use_buckets=False, seed=4): the first batch should come straight from "
        f"k07.generate_data(5, rng=np.random.RandomState(4)) (shape {first.shape}), got "
        f"{[np.shape(x) for x in got]}: with use_buckets=False draw each batch of batch_size from k07.generate_data, "
        "no bucketed_batches"
    )
    evaluated = k07.generate_data(3, rng=np.random.RandomState(5))
    shown = printed_examples(printed, evaluated[0], evaluated[2])
    assert shown == 2, (
        f"train(num_print=2): print 2 of the evaluation sequences as k07 does (Sample x: / Expected y: / Greedy "
        f"Decoding result:), it printed {shown} of them: use the num_print argument, x[:num_print]"
    )

# --------------------------------------------------------------------------- differential checks (reference)
# The learner's functions against solutions/ on generated cases, smallest first (tfkata.differential).
# Functions that take the layers get layers built by the REFERENCE's build_layers with fixed weights
# (E = 4, H = 3: every matrix non-square), so each check compares one function. The two tf.functions
# (make_greedy_decoder, make_train_step) run with tf.config.run_functions_eagerly(True): the same numbers
# without tracing a gradient graph twice more (6-13 s a trace, measured); their tracing is the concept
# tests' business above.
import contextlib  # noqa: E402
import functools  # noqa: E402

from tfkata.differential import Case, compare, eager_outputs, reference  # noqa: E402


def _ref():
    return reference("n07")


def _every_layer(layers):
    for item in layers:
        yield from (item if isinstance(item, (list, tuple)) else [item])


def _reference_layers(num_layers=2, embed=4, hidden=3, seed=0, scale=0.8, eos_bias=0.0, fresh=False):
    """The reference's layers with fixed weights (uniform on +-scale, eos_bias added to EOS's output bias); shared
    by every case that only reads them (fresh=True: new ones)."""
    if not fresh:
        return _shared_reference_layers(num_layers, embed, hidden, seed, scale, eos_bias)
    layers = _ref().build_layers(vocab_size=V, embed_size=embed, hidden_units=hidden, num_layers=num_layers)
    rng = np.random.RandomState(seed)
    for layer in _every_layer(layers):
        layer.set_weights([rng.uniform(-scale, scale, np.shape(w)).astype(np.float32) for w in layer.get_weights()])
    kernel, bias = layers.output_layer.get_weights()
    bias[0] += eos_bias
    layers.output_layer.set_weights([kernel, bias])
    return layers


@functools.lru_cache(maxsize=None)
def _shared_reference_layers(num_layers, embed, hidden, seed, scale, eos_bias):
    return _reference_layers(num_layers, embed, hidden, seed, scale, eos_bias, fresh=True)


@contextlib.contextmanager
def _eagerly():
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


def _padded(lengths, width, seed, low=1):
    """int32 [B, width] ids in low..10 up to each length, PAD (0) after."""
    rng = np.random.RandomState(seed)
    x = np.zeros([len(lengths), width], np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.randint(low, V, n)
    return x, np.asarray(lengths, np.int32)


def _cell(d, h, seed, dtype=np.float32):
    rng = np.random.RandomState(seed)
    return rng.uniform(-1, 1, [d + h, 4 * h]).astype(dtype), rng.uniform(-1, 1, [4 * h]).astype(dtype)


LSTM_WEIGHTS_CASES = [
    Case("D = 1 input and H = 1 unit (kernel [2, 4], bias [4])", (_cell(1, 1, 1), 1.0)),
    Case("D = 3, H = 2 (kernel [5, 8]) with forget_bias 0.0", (_cell(3, 2, 2), 0.0)),
    Case("D = 2, H = 2 (square blocks) in float64 with forget_bias 2.5", (_cell(2, 2, 3, np.float64), 2.5)),
]


@pytest.mark.differential
@pytest.mark.covers("lstm_weights_from_k07")
def test_lstm_weights_from_k07_matches_reference():
    def run(mod, case):
        (kernel, bias), forget_bias = case.args
        got = mod.lstm_weights_from_k07(kernel.copy(), bias.copy(), forget_bias=forget_bias)
        return [np.asarray(a) for a in got]

    compare("lstm_weights_from_k07", n07, _ref(), LSTM_WEIGHTS_CASES, run,
            hint="kernel = the first D rows, recurrent_kernel = the last H rows, gate blocks i, j, f, o -> i, f, j, o, "
                 "forget_bias added to the f block of the bias")


def _layer_summary(layer):
    out = {"type": type(layer).__name__, "weights": [list(np.shape(w)) for w in layer.get_weights()]}
    if isinstance(layer, keras.layers.LSTM):
        out.update(units=layer.units, return_sequences=bool(layer.return_sequences), return_state=bool(layer.return_state))
    if isinstance(layer, keras.layers.Dense):
        out.update(units=layer.units, activation=getattr(layer.activation, "__name__", str(layer.activation)))
    return out


def _run_build_layers(mod, case):
    layers = mod.build_layers(*case.args)
    out = {field: ([_layer_summary(layer) for layer in item] if isinstance(item, (list, tuple)) else _layer_summary(item))
           for field, item in zip(type(layers)._fields, layers)}
    out["distinct layer objects"] = len({id(layer) for layer in _every_layer(layers)})
    return out


BUILD_LAYERS_CASES = [
    Case("build_layers(5, 2, 3, 1): V 5, E 2, H 3, one layer", (5, 2, 3, 1)),
    Case("build_layers(7, 4, 3, 3): V 7, E 4, H 3, three layers", (7, 4, 3, 3)),
]


@pytest.mark.differential
@pytest.mark.covers("build_layers")
def test_build_layers_matches_reference():
    compare("build_layers", n07, _ref(), BUILD_LAYERS_CASES, _run_build_layers,
            hint="use the arguments: Embedding(vocab_size, embed_size) x 2, num_layers LSTM(hidden_units) per side "
                 "(the first reads embed_size, the others hidden_units), Dense(vocab_size), all built")


def _run_load(mod, case):
    num_layers, embed, hidden, forget_bias, seed = case.args
    layers = _ref().build_layers(vocab_size=V, embed_size=embed, hidden_units=hidden, num_layers=num_layers)
    back = mod.load_k07_weights(layers, _roles(d=embed, h=hidden, layers=num_layers, seed=seed), forget_bias=forget_bias)
    return {"returns the layers": back is layers,
            "weights": {f"{field}{'' if isinstance(item, keras.layers.Layer) else ' ' + str(i)}": layer.get_weights()
                        for field, item in zip(type(layers)._fields, layers)
                        for i, layer in enumerate(item if isinstance(item, (list, tuple)) else [item])}}


LOAD_CASES = [
    Case("one layer, E 2, H 3, forget_bias 1.0", (1, 2, 3, 1.0, 4)),
    Case("three layers, E 4, H 3, forget_bias 0.5", (3, 4, 3, 0.5, 5)),
]


@pytest.mark.differential
@pytest.mark.covers("load_k07_weights")
def test_load_k07_weights_matches_reference():
    compare("load_k07_weights", n07, _ref(), LOAD_CASES, _run_load,
            hint="embeddings and output layer unchanged; each '<side>/cell_<i>' through lstm_weights_from_k07 with the "
                 "forget_bias given, into <side>_lstms[i]")


def _run_encode(mod, case):
    num_layers, lengths, width, seed = case.args
    layers = _reference_layers(num_layers)
    x, lx = _padded(lengths, width, seed)
    return eager_outputs(lambda: mod.encode(layers, tf.constant(x), tf.constant(lx)))


ENCODE_CASES = [
    Case("x of shape [1, 1] with lengths [1] (two layers)", (2, [1], 1, 11)),
    Case("x of shape [3, 6] padded wider than its longest sequence, lengths [5, 1, 3] (two layers)", (2, [5, 1, 3], 6, 12)),
    Case("x of shape [2, 4] with lengths [4, 2] (three layers)", (3, [4, 2], 4, 13)),
]


@pytest.mark.differential
@pytest.mark.covers("encode")
def test_encode_matches_reference():
    compare("encode", n07, _ref(), ENCODE_CASES, _run_encode, atol=1e-5,
            hint="mask = tf.sequence_mask(lengths, maxlen=T) with T = tf.shape(inputs)[1] (the padded width), passed to "
                 "every LSTM; return (top outputs, [(h, c) per layer])")


def _run_teacher_forced(mod, case):
    num_layers, batch, steps, seed = case.args
    layers = _reference_layers(num_layers)
    tokens = np.random.RandomState(seed).randint(0, V, [batch, steps]).astype(np.int32)
    states = _random_states(batch, hidden=3, layers=num_layers, seed=seed)
    return eager_outputs(lambda: mod.teacher_forced_logits(layers, tf.constant(tokens), states))


TEACHER_FORCED_CASES = [
    Case("decoder inputs [1, 1] from random states (two layers)", (2, 1, 1, 21)),
    Case("decoder inputs [3, 4] from random states (two layers)", (2, 3, 4, 22)),
    Case("decoder inputs [2, 3] from random states (three layers)", (3, 2, 3, 23)),
]


@pytest.mark.differential
@pytest.mark.covers("teacher_forced_logits")
def test_teacher_forced_logits_matches_reference():
    compare("teacher_forced_logits", n07, _ref(), TEACHER_FORCED_CASES, _run_teacher_forced, atol=1e-5,
            hint="decoder_embedding, then decoder LSTM i from initial_state=[h, c] of states[i], then output_layer")


def _run_decoder_step(mod, case):
    num_layers, tokens, seed = case.args
    layers = _reference_layers(num_layers)
    states = _random_states(len(tokens), hidden=3, layers=num_layers, seed=seed)
    return eager_outputs(lambda: mod.decoder_step(layers, tf.constant(tokens, tf.int32), states))


DECODER_STEP_CASES = [
    Case("tokens [0] (GO) from random states (two layers)", (2, [0], 31)),
    Case("tokens [4, 4, 10] (a repeated id) from random states (two layers)", (2, [4, 4, 10], 32)),
    Case("tokens [1, 9] from random states (three layers)", (3, [1, 9], 33)),
]


@pytest.mark.differential
@pytest.mark.covers("decoder_step")
def test_decoder_step_matches_reference():
    compare("decoder_step", n07, _ref(), DECODER_STEP_CASES, _run_decoder_step, atol=1e-5,
            hint="decoder_embedding(tokens), then each decoder LSTM's cell once, lstm.cell(x, [h, c]), then output_layer; "
                 "new states as a list of (h, c)")


def _greedy_table():
    """GO -> 3 -> 7 -> EOS; 9 -> 9 forever; row 2 of the table is a tie between 4 and 5."""
    table = np.full([V, V], -5.0, np.float32)
    table[0, 3], table[3, 7], table[7, 0], table[9, 9] = 5.0, 5.0, 5.0, 5.0
    table[2, 4] = table[2, 5] = 5.0
    table[4, 0] = table[5, 0] = 5.0
    return table


def _start(rows):
    """Start states for _TableStep: row i's first logits get +100 on rows[i] (None: follow the table from GO)."""
    states = np.zeros([len(rows), V], np.float32)
    for i, token in enumerate(rows):
        if token is not None:
            states[i, token] = 100.0
    return states


GREEDY_CASES = [
    Case("batch 1 following GO -> 3 -> 7 -> EOS, max_steps 5", ([None], 5)),
    Case("batch 1, max_steps 1", ([None], 1)),
    Case("batch 4: rows that finish after 3 steps, at once, after 2 steps (a tie between 4 and 5 "
         "after 2), and never (max_steps 6)", ([None, 0, 2, 9], 6)),
]


@pytest.mark.differential
@pytest.mark.covers("greedy_decode")
def test_greedy_decode_matches_reference():
    def run(mod, case):
        rows, max_steps = case.args
        ids, lengths = mod.greedy_decode(_TableStep(_greedy_table()), tf.constant(_start(rows)), len(rows),
                                         max_steps=max_steps)
        return {"ids": np.asarray(ids), "lengths": np.asarray(lengths),
                "dtypes": [str(np.asarray(ids).dtype), str(np.asarray(lengths).dtype)]}

    compare("greedy_decode", n07, _ref(), GREEDY_CASES, run,
            hint="from GO: argmax (int32) fed back, PAD once finished, lengths counting EOS (max_steps without one), "
                 "stop when every row has emitted EOS; ids [B, T_out]")


def _run_greedy_decoder(mod, case):
    lengths, width, seed = case.args
    # Sharp weights and a nudge towards EOS: the rows decode differently and stop at different steps
    # (measured: ids [[6, 8, 8, 0, 0], [6, 6, 8, 8, 0], [6, 8, 8, 0, 0]], lengths [4, 5, 4] on the second case).
    layers = _reference_layers(1, seed=1, scale=2.5, eos_bias=1.0)
    x, lx = _padded(lengths, width, seed)
    with _eagerly():
        decode = mod.make_greedy_decoder(layers, max_steps=5)
        return eager_outputs(lambda: decode(tf.constant(x), tf.constant(lx)))


GREEDY_DECODER_CASES = [
    Case("x of shape [1, 1] with lengths [1], max_steps 5", ([1], 1, 41)),
    Case("x of shape [3, 6] padded wider than its longest sequence, lengths [5, 1, 3], max_steps 5", ([5, 1, 3], 6, 42)),
]


@pytest.mark.differential
@pytest.mark.covers("make_greedy_decoder")
def test_make_greedy_decoder_matches_reference():
    compare("make_greedy_decoder", n07, _ref(), GREEDY_DECODER_CASES, _run_greedy_decoder,
            hint="decode(inputs, lengths) = encode, then greedy_decode with decoder_step on the same layers, "
                 "batch size tf.shape(inputs)[0]")


def _confident(targets, wrong):
    """Logits [B, T, V]: +30 on the target, or on another id where ``wrong`` is set."""
    targets = np.asarray(targets)
    logits = np.zeros(targets.shape + (V,), np.float32)
    picked = np.where(np.asarray(wrong), (targets + 1) % V, targets)
    np.put_along_axis(logits, picked[..., None], 30.0, axis=-1)
    return logits


MASKED_LOSS_CASES = [
    Case("logits [1, 1, 11], target [[3]], lengths [1]", (np.random.RandomState(51).randn(1, 1, V), [[3]], [1])),
    Case("logits [3, 6, 11] padded wider than the longest target, lengths [5, 1, 3]",
         (np.random.RandomState(52).randn(3, 6, V) * 2, np.random.RandomState(53).randint(0, V, [3, 6]), [5, 1, 3])),
    Case("all-zero logits [2, 3, 11] (ties) with lengths [3, 0] (an empty row)",
         (np.zeros([2, 3, V]), [[1, 2, 0], [0, 0, 0]], [3, 0])),
    Case("confident logits [2, 3, 11] wrong only at padded steps, lengths [1, 2]",
         (_confident([[4, 0, 0], [5, 6, 0]], [[0, 1, 1], [0, 0, 1]]), [[4, 0, 0], [5, 6, 0]], [1, 2])),
]


@pytest.mark.differential
@pytest.mark.covers("masked_loss")
def test_masked_loss_matches_reference():
    def run(mod, case):
        logits, targets, lengths = case.args
        return eager_outputs(lambda: mod.masked_loss(tf.constant(logits, tf.float32), tf.constant(targets, tf.int32),
                                                     tf.constant(lengths, tf.int32)))

    compare("masked_loss", n07, _ref(), MASKED_LOSS_CASES, run,
            hint="sum(xent * tf.sequence_mask(lengths, maxlen=T, dtype=tf.float32)) / sum(mask), T = the targets' padded "
                 "width")


def _run_optimizer(mod, case):
    optimizer = mod.make_optimizer() if case.args is None else mod.make_optimizer(case.args)
    v = tf.Variable([1.0, -2.0, 0.5])
    values = []
    for g in ([0.1, -0.3, 0.0], [1e-6, 2.0, -1e-5], [0.2, 0.2, 0.2]):
        optimizer.apply_gradients([(tf.constant(g), v)])
        values.append(v.numpy())
    return values


OPTIMIZER_CASES = [
    Case("make_optimizer() for three steps (one gradient of 1e-6, where epsilon shows)", None),
    Case("make_optimizer(0.1) for the same three steps", 0.1),
]


@pytest.mark.differential
@pytest.mark.covers("make_optimizer")
def test_make_optimizer_matches_reference():
    compare("make_optimizer", n07, _ref(), OPTIMIZER_CASES, _run_optimizer,
            hint="keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)")


def _run_train_step(mod, case):
    lengths_x, width_x, lengths_y, width_y, steps = case.args
    layers = _reference_layers(1, seed=61, fresh=True)  # the step changes them
    x, lx = _padded(lengths_x, width_x, 62)
    y, ly = _padded([n - 1 for n in lengths_y], width_y, 63)  # EOS (0) at position n - 1
    y_in = np.concatenate([np.zeros([len(y), 1], np.int32), y[:, :-1]], axis=1)
    with _eagerly():
        step = mod.make_train_step(layers, keras.optimizers.Adam(learning_rate=0.05, epsilon=1e-8))
        losses = [step(x, lx, y_in, y, np.asarray(lengths_y, np.int32)) for _ in range(steps)]
        return eager_outputs(lambda: {"losses": losses,
                                      "weights after": [layer.get_weights() for layer in _every_layer(layers)]})


TRAIN_STEP_CASES = [
    Case("two steps on x [2, 4] padded wider than lengths [3, 1], targets [2, 3] with lengths [3, 2]",
         ([3, 1], 4, [3, 2], 3, 2)),
]


@pytest.mark.differential
@pytest.mark.covers("make_train_step")
def test_make_train_step_matches_reference():
    compare("make_train_step", n07, _ref(), TRAIN_STEP_CASES, _run_train_step, atol=1e-5, rtol=1e-4,
            hint="under a tape: encode, teacher_forced_logits, masked_loss; the dense gradients of EVERY layer's "
                 "weights applied; return the loss before the update")


# --------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def trained():
    return n07.train(steps=TRAIN_STEPS)


# The reference's training loss at the end of the graded run (the mean of the last quarter of the 100-step means,
# what explain_curve compares): 0.045 on TF 2.21; the bar is 0.08 as in k07 (the same task and budget), so only a
# run ending above 0.12 is told "learns too slowly" (k07 at Adam 1e-3 instead of 3e-3 ends at 0.254).
REFERENCE_LOSS = 0.08
# The function to read first for each kind of curve (tfkata.feedback.curves.KINDS): "Stuck?" names it.
SUSPECTS = {"rate": "make_optimizer", "init": "build_layers", "loop": "train", "eval": "greedy_decode",
            "leak": "teacher_forced_logits", "measure": "greedy_decode"}


def _curve(result):
    losses = result.get("losses")
    if not losses:
        return "train() returned no 'losses' (every step's loss, in order), so the curve cannot be described"
    chunks = [float(np.mean(losses[k : k + 100])) for k in range(0, len(losses), 100)]
    return explain_curve(chunks, n_classes=V, reference_loss=REFERENCE_LOSS, suspects=SUSPECTS)


@pytest.mark.training
@pytest.mark.needs("k07")
@pytest.mark.covers("train", "build_layers", "encode", "teacher_forced_logits", "decoder_step", "greedy_decode",
                    "make_greedy_decoder", "masked_loss", "make_optimizer", "make_train_step")
@pytest.mark.points(5)
@pytest.mark.timeout(900)
def test_training_reaches_exact_match(trained):
    for key in ("accuracy", "steps", "seconds", "losses", "eval"):
        assert key in trained, f"train() should return a dict with {key!r}, got keys {sorted(trained)}"
    acc = trained["accuracy"]
    print(f"n07 exact match after {trained['steps']} steps: {acc:.1%} on 500 fresh sequences "
          f"({trained['seconds']:.1f} s of training, {trained.get('eval_seconds', float('nan')):.1f} s decoding, "
          f"loss {trained.get('loss', float('nan')):.4f})")
    assert trained["steps"] == TRAIN_STEPS and len(trained["losses"]) == TRAIN_STEPS, (
        f"train(steps={TRAIN_STEPS}) should run and record {TRAIN_STEPS} steps, got {trained['steps']} / {len(trained['losses'])}"
    )
    check_reported_loss(trained)
    assert acc >= MIN_ACCURACY, (
        f"expected >= {MIN_ACCURACY:.0%} exact match after {TRAIN_STEPS} steps (Adam 3e-3 as k07; see the figures at "
        f"TRAIN_STEPS), got {acc:.1%}. The pieces pass their unit tests, so compare train() with its docstring. "
        f"Curve: {_curve(trained)}"
    )


@pytest.mark.training
@pytest.mark.needs("k07")
@pytest.mark.covers("train", "build_layers", "encode", "teacher_forced_logits", "decoder_step", "greedy_decode",
                    "make_greedy_decoder", "masked_loss", "make_optimizer", "make_train_step")
@pytest.mark.timeout(900)
def test_trained_decoder_agrees_with_exact_match(trained):
    x, y, lx, ly, predictions = trained["eval"]
    again = np.asarray(n07.make_greedy_decoder(trained["layers"])(tf.constant(x[:50]), tf.constant(lx[:50]))[0])
    assert np.array_equal(again, np.asarray(predictions)[:50, : again.shape[1]]), (
        "decoding the first 50 evaluation sequences again gave other ids than train() reported: evaluate with "
        "make_greedy_decoder on the trained layers"
    )
    right = k07.exact_match(predictions, y)
    assert abs(right - trained["accuracy"]) < 1e-9, f"accuracy {trained['accuracy']} is not exact_match of the predictions, {right}"
