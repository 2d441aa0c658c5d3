# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run n06        (or: pytest tests/test_n06_keras_rnn.py)
# Generated from solutions/n06_keras_rnn.py by `python -m tfkata.stubs n06`; `kata reset n06` restores it.
"""n06 · Keras RNN layers: sequences, states and masking (the TF 2 twin of k06).

Then → now. In k06 a *cell* from ``tf.compat.v1.nn.rnn_cell`` computed one step, ``MultiRNNCell``
stacked cells, and ``static_rnn`` / ``dynamic_rnn`` ran a cell over a sequence from its
``zero_state``; ``dynamic_rnn``'s ``sequence_length`` cut each sequence short, giving ZEROS as the
output past its length and the state of its last valid step as the final state. Now one Keras layer
does all of that: ``keras.layers.SimpleRNN`` / ``LSTM`` / ``GRU`` (or ``keras.layers.RNN(cell)``
around a one-step cell) own their weights, start from zeros unless given ``initial_state``, return
the last output or, with ``return_sequences=True``, every output, and with ``return_state=True``
also the final state(s) — as a FLAT list ``[outputs, *states]``, and for an LSTM the states come as
``[h, c]``, the reverse of TF 1's ``LSTMStateTuple(c, h)``. Stacking is feeding one layer's
sequence to the next (``return_sequences=True`` below the top). ``sequence_length`` became a
*mask*: a boolean ``[B, T]`` passed as ``mask=``, made by ``Embedding(mask_zero=True)`` (id 0 is
padding) or by ``Masking`` (an all-``mask_value`` step is padding). Gained: one object, no scopes,
no session, the mask travels with the tensors through a model. Lost (and measured below): a masked
step does NOT output zeros as ``dynamic_rnn`` did — Keras carries the last valid output forward, so
``outputs[:, -1]`` is the last valid output; the final state is the same in both (the state at the
last valid step; zeros for a sequence of length 0). The proof that the port is right: give a Keras
layer the weights of YOUR k06 cell and get the same numbers, once the outputs past each length are
zeroed as ``dynamic_rnn`` does.

Shapes: B batch, T time steps, D input features, H units. Inputs are float32 ``[B, T, D]``
(batch-major, Keras's only layout: ``time_major`` is gone). Everything runs eagerly.

Keras 2 and Keras 3 (``import keras``: Keras 3 from TensorFlow 2.16 on, Keras 2 on 2.12–2.15) behave
the same here (measured on 2.12 and 2.21): the same carried-forward outputs and final states, the
same weight layouts. What differs: a ``return_state=True`` layer returns a tuple in Keras 3 and a
list in Keras 2 (index it, do not compare its type), and Keras 2 names weights
``"lstm/lstm_cell/kernel:0"`` where Keras 3 says ``"kernel"``: use ``get_weights`` / ``set_weights``
(order: kernel, recurrent_kernel, bias), not names.
"""
import keras
import numpy as np
import tensorflow as tf

LAYER_KINDS = ("rnn", "lstm", "gru")


def _check(kind):
    if kind not in LAYER_KINDS:
        raise ValueError(f"kind must be one of {LAYER_KINDS}, got {kind!r}")


def make_layer(kind, units, return_sequences=False, return_state=False):
    _check(kind)
    kw = dict(return_sequences=return_sequences, return_state=return_state)
    if kind == "rnn":
        return keras.layers.SimpleRNN(units, **kw)
    if kind == "lstm":
        return keras.layers.LSTM(units, **kw)
    return keras.layers.GRU(units, reset_after=False, **kw)


def make_rnn(kind, units, return_sequences=False, return_state=False):
    _check(kind)
    if kind == "rnn":
        cell = keras.layers.SimpleRNNCell(units)
    elif kind == "lstm":
        cell = keras.layers.LSTMCell(units)
    else:
        cell = keras.layers.GRUCell(units, reset_after=False)
    return keras.layers.RNN(cell, return_sequences=return_sequences, return_state=return_state)


def split_result(result):
    return result[0], list(result[1:])


def top_output(states):
    top = states[-1] if isinstance(states[-1], (list, tuple)) else states
    return top[0]


def make_stack(sizes=(128, 256), kind="lstm"):
    return [make_layer(kind, n, return_sequences=True, return_state=True) for n in sizes]


def run_stack(layers, inputs, mask=None):
    x = inputs
    states = []
    for layer in layers:
        out, st = split_result(layer(x, mask=mask))
        states.append(st)
        x = out
    return x, states


def run_masked(layer, inputs, lengths):
    T = tf.shape(inputs)[1]
    mask = tf.sequence_mask(lengths, maxlen=T)
    return layer(inputs, mask=mask)


def zero_after_length(outputs, lengths):
    mask = tf.sequence_mask(lengths, maxlen=tf.shape(outputs)[1], dtype=outputs.dtype)
    return outputs * mask[:, :, None]


def last_valid_output(outputs, lengths):
    lengths = tf.convert_to_tensor(lengths)
    idx = tf.maximum(lengths - 1, 0)
    picked = tf.gather(outputs, idx, axis=1, batch_dims=1)
    valid = tf.cast(lengths > 0, outputs.dtype)[:, None]
    return picked * valid


def make_embedding_rnn(vocab_size, embed_dim, units, kind="gru"):
    return keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
        make_layer(kind, units, return_sequences=True),
    ])


def make_masking_rnn(input_dim, units, kind="lstm", mask_value=0.0):
    return keras.Sequential([
        keras.Input(shape=(None, input_dim)),
        keras.layers.Masking(mask_value),
        make_layer(kind, units, return_sequences=True),
    ])


def port_k06_weights(kind, weights, input_dim):
    _check(kind)
    D = input_dim
    if kind in ("rnn", "lstm"):
        k = np.asarray(weights["kernel"], np.float32)
        b = np.array(weights["bias"], np.float32)
        kernel, rec = k[:D], k[D:]
        if kind == "lstm":
            H = k.shape[1] // 4
            order = [0, 2, 1, 3]  # i, f, c(j), o from i, j, f, o
            kernel = np.concatenate([kernel[:, i * H:(i + 1) * H] for i in order], axis=1)
            rec = np.concatenate([rec[:, i * H:(i + 1) * H] for i in order], axis=1)
            b = np.concatenate([b[i * H:(i + 1) * H] for i in order])
            b[H:2 * H] += 1.0
        return [kernel.astype(np.float32), rec.astype(np.float32), b.astype(np.float32)]
    gk = np.asarray(weights["gates/kernel"], np.float32)
    gb = np.asarray(weights["gates/bias"], np.float32)
    ck = np.asarray(weights["candidate/kernel"], np.float32)
    cb = np.asarray(weights["candidate/bias"], np.float32)
    H = ck.shape[1]
    r_k, u_k = gk[:, :H], gk[:, H:]
    r_b, u_b = gb[:H], gb[H:]
    full = np.concatenate([u_k, r_k, ck], axis=1)
    bias = np.concatenate([u_b, r_b, cb])
    return [full[:D].copy(), full[D:].copy(), bias.astype(np.float32)]


if __name__ == "__main__":
    keras.utils.set_random_seed(1234)
    x = np.random.RandomState(0).randn(3, 5, 2).astype(np.float32)
    lengths = np.array([5, 2, 0])
    for kind in LAYER_KINDS:
        outputs, states = split_result(run_masked(make_layer(kind, 4, True, True), x, lengths))
        print(f"{kind}: outputs {tuple(outputs.shape)}, states {[tuple(s.shape) for s in states]}")
        print("  sequence 1 (length 2), first unit by step:", np.round(np.asarray(outputs)[1, :, 0], 3))
        print("  as dynamic_rnn gave it:                  ", np.round(np.asarray(zero_after_length(outputs, lengths))[1, :, 0], 3))
