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


# --------------------------------------------------------------------------- layers and cells
def make_layer(kind, units, return_sequences=False, return_state=False):
    """A Keras recurrent layer with ``units`` units (slide: 常用的 RNN cell, now as layers).

    ``kind`` is one of ``LAYER_KINDS``: ``"rnn"`` → ``keras.layers.SimpleRNN``, ``"lstm"`` →
    ``keras.layers.LSTM``, ``"gru"`` → ``keras.layers.GRU`` built with ``reset_after=False`` (TF 1's
    ``GRUCell`` applies the reset gate BEFORE the recurrent matrix; Keras's default
    ``reset_after=True`` applies it after, with a second bias, and computes other numbers). Any
    other ``kind`` raises ``ValueError`` naming the valid kinds. Pass ``return_sequences`` and
    ``return_state`` through. The layer creates its weights on its first call.
    """
    if kind == "rnn":
        return keras.layers.SimpleRNN(units, return_sequences=return_sequences, return_state=return_state)
    if kind == "lstm":
        return keras.layers.LSTM(units, return_sequences=return_sequences, return_state=return_state)
    if kind == "gru":
        return keras.layers.GRU(units, reset_after=False, return_sequences=return_sequences,
                                return_state=return_state)
    raise ValueError(f"unknown kind {kind!r}; valid kinds: {LAYER_KINDS}")


def make_rnn(kind, units, return_sequences=False, return_state=False):
    """The same layer built the long way: ``keras.layers.RNN`` around a one-step cell.

    The cell is ``keras.layers.SimpleRNNCell`` / ``LSTMCell`` / ``GRUCell(reset_after=False)`` for
    ``kind`` ``"rnn"`` / ``"lstm"`` / ``"gru"`` (``ValueError`` otherwise); ``keras.layers.RNN``
    runs it over the time axis (what ``dynamic_rnn`` did for a TF 1 cell). With the same weights it
    computes exactly what ``make_layer`` gives.
    """
    if kind == "rnn":
        cell = keras.layers.SimpleRNNCell(units)
    elif kind == "lstm":
        cell = keras.layers.LSTMCell(units)
    elif kind == "gru":
        cell = keras.layers.GRUCell(units, reset_after=False)
    else:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {LAYER_KINDS}")
    return keras.layers.RNN(cell, return_sequences=return_sequences, return_state=return_state)


def split_result(result):
    """Split what a ``return_state=True`` layer returned into ``(outputs, states)``.

    Keras returns one flat list (Keras 2) or tuple (Keras 3): the outputs first (``[B, T, H]``
    with ``return_sequences``, else ``[B, H]``), then the final states: ``[h]`` for SimpleRNN and
    GRU, ``[h, c]`` for an LSTM (h first!), and for ``keras.layers.RNN`` over a list of cells one
    ``[h, c]`` list per layer. Return ``outputs`` and a Python ``list`` of the rest, in order.
    """
    return result[0], list(result[1:])


def top_output(states):
    """The final output ``h`` of the top layer, read from ``states`` (k06's ``top_output``, Keras style).

    ``states`` is the list from :func:`split_result`: ``[h]`` (SimpleRNN, GRU: the state is the
    output), ``[h, c]`` (LSTM: the output is h, the FIRST entry — where TF 1's ``LSTMStateTuple``
    put it second), or one such list per layer (a stack: the top layer is the last entry). Returns
    a ``[B, H]`` tensor.
    """
    top = states[-1]
    if isinstance(top, (list, tuple)):
        return top[0]
    return states[0]


# --------------------------------------------------------------------------- stacking
def make_stack(sizes=(128, 256), kind="lstm"):
    """The slide's example 2 as Keras layers: one recurrent layer per entry of ``sizes``, bottom first.

    Each is ``make_layer(kind, n, return_sequences=True, return_state=True)``: every layer but the
    top must hand its whole sequence to the next one, and returning every layer's state gives what
    ``MultiRNNCell``'s tuple state held. Returns the list of layers (no weights yet).
    """
    return [make_layer(kind, n, return_sequences=True, return_state=True) for n in sizes]


def run_stack(layers, inputs, mask=None):
    """Run the stacked ``layers`` (from :func:`make_stack`) over ``inputs`` ``[B, T, D]``.

    Layer 1 reads ``inputs``, layer k+1 reads layer k's output sequence; pass ``mask`` (bool
    ``[B, T]`` or None) to every layer. Returns ``(outputs, states)``: the top layer's outputs
    ``[B, T, sizes[-1]]`` and a list with each layer's final states (a ``[h, c]`` list for LSTMs),
    bottom first — like ``MultiRNNCell``'s state, but each entry is ``[h, c]``, not ``(c, h)``.

    (Measured: a masked layer's eager outputs carry the mask along, and the next layer uses it when
    given none — Keras 3 even when called with ``mask=None``, Keras 2 only when ``mask`` is not
    passed at all. Any op between two layers hands on a plain tensor without it, and so do the
    tests' layers. Passing ``mask`` to every layer gives the same numbers everywhere.)
    """
    x = inputs
    states = []
    for layer in layers:
        out, st = split_result(layer(x, mask=mask))
        states.append(st)
        x = out
    return x, states


# --------------------------------------------------------------------------- masking vs sequence_length
def run_masked(layer, inputs, lengths):
    """Run ``layer`` over ``inputs`` ``[B, T, D]`` as ``dynamic_rnn(..., sequence_length=lengths)`` would.

    ``lengths`` (int ``[B]``) gives each sequence's true length: turn it into a boolean mask
    ``[B, T]`` (True at the valid steps ``t < length``; T read from ``inputs``) and pass it as the
    layer's ``mask`` argument. Returns whatever the layer returns. Measured: at a masked step the
    layer keeps its state and repeats its last valid output (zeros before the first valid step).
    """
    mask = tf.sequence_mask(lengths, tf.shape(inputs)[1])
    return layer(inputs, mask=mask)


def zero_after_length(outputs, lengths):
    """Keras's masked outputs ``[B, T, H]`` as ``dynamic_rnn`` gave them: zeros from step ``length`` on.

    Multiply by the mask of ``lengths`` (int ``[B]``), cast to the outputs' dtype, with a trailing
    axis so it broadcasts over H. The valid steps are left unchanged.
    """
    mask = tf.sequence_mask(lengths, tf.shape(outputs)[1], dtype=outputs.dtype)
    return outputs * mask[:, :, None]


def last_valid_output(outputs, lengths):
    """Each sequence's output at its last valid step ``length - 1``: ``[B, H]`` from ``[B, T, H]``.

    Works on any outputs, masked or not (an unmasked layer that ran over the padding has
    meaningless outputs after the length; ``dynamic_rnn``'s were zeros): pick ``outputs[b,
    lengths[b] - 1]`` for each b (``tf.gather`` with ``batch_dims=1``), and zeros for a sequence of
    length 0.
    """
    lengths = tf.convert_to_tensor(lengths)
    idx = tf.maximum(lengths - 1, 0)
    picked = tf.gather(outputs, idx, batch_dims=1)
    return tf.where((lengths > 0)[:, None], picked, tf.zeros_like(picked))


def make_embedding_rnn(vocab_size, embed_dim, units, kind="gru"):
    """A ``keras.Sequential`` that reads padded id sequences: ``Embedding`` then a recurrent layer.

    Input: int ids ``[B, T]``, where id 0 is padding (``keras.Input(shape=(None,), dtype="int32")``).
    ``keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True)`` makes the mask from the ids
    and Keras hands it to the next layer by itself; the recurrent layer is
    ``make_layer(kind, units, return_sequences=True)``. Output ``[B, T, units]``. A padded sequence
    then gives, at its valid steps, exactly what it gives alone without the padding.
    """
    return keras.Sequential([
        keras.Input(shape=(None,), dtype="int32"),
        keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True),
        make_layer(kind, units, return_sequences=True)])


def make_masking_rnn(input_dim, units, kind="lstm", mask_value=0.0):
    """A ``keras.Sequential`` for padded float sequences ``[B, T, input_dim]``: ``Masking`` then a layer.

    Start with ``keras.Input(shape=(None, input_dim))``, so the model is built (it has its weights)
    before its first call. ``keras.layers.Masking(mask_value)`` masks every step whose features ALL
    equal ``mask_value`` and passes the mask on to ``make_layer(kind, units, return_sequences=True)``.
    Output ``[B, T, units]``.
    """
    return keras.Sequential([
        keras.Input(shape=(None, input_dim)),
        keras.layers.Masking(mask_value),
        make_layer(kind, units, return_sequences=True)])


# --------------------------------------------------------------------------- porting k06's weights
def port_k06_weights(kind, weights, input_dim):
    """The weights of a k06 cell, as ``[kernel, recurrent_kernel, bias]`` for ``make_layer(kind, ...)``.

    ``weights`` maps the k06 cell's variable names, without the scopes in front and ``:0``, to
    numpy arrays (H units, D = ``input_dim``):

    - ``"rnn"`` (``BasicRNNCell``): ``"kernel"`` ``[D + H, H]``, ``"bias"`` ``[H]``;
    - ``"lstm"`` (``LSTMCell``): ``"kernel"`` ``[D + H, 4H]``, ``"bias"`` ``[4H]``;
    - ``"gru"`` (``GRUCell``): ``"gates/kernel"`` ``[D + H, 2H]``, ``"gates/bias"`` ``[2H]``,
      ``"candidate/kernel"`` ``[D + H, H]``, ``"candidate/bias"`` ``[H]``.

    A TF 1 cell multiplies the concatenation ``[x_t, h_{t-1}]`` by one matrix; Keras keeps a
    ``kernel`` ``[D, n]`` for ``x_t`` and a ``recurrent_kernel`` ``[H, n]`` for ``h_{t-1}``. Work out
    the rest from the cells' formulas: the LSTMCell's gate blocks come in the order i, j, f, o (j is
    the candidate) and it adds ``forget_bias=1.0`` to f inside the step; Keras's LSTM has the order
    i, f, c, o and adds nothing. The GRUCell's gates are r then u, and h_t = u h_{t-1} + (1 - u) c;
    Keras's GRU has the blocks z, r, h with h_t = z h_{t-1} + (1 - z) hh. Return float32 arrays;
    leave ``weights`` unchanged.
    """
    D = input_dim
    if kind == "rnn":
        k, b = weights["kernel"], weights["bias"]
        return [k[:D].astype(np.float32), k[D:].astype(np.float32), b.astype(np.float32)]
    if kind == "lstm":
        k, b = weights["kernel"], weights["bias"]
        H = b.shape[0] // 4
        def reorder(a):
            i, j, f, o = np.split(a, 4, axis=-1)
            return np.concatenate([i, f, j, o], axis=-1)
        b2 = b.copy()
        b2[2 * H:3 * H] = b2[2 * H:3 * H] + 1.0
        return [reorder(k[:D]).astype(np.float32), reorder(k[D:]).astype(np.float32),
                reorder(b2).astype(np.float32)]
    if kind == "gru":
        gk, gb = weights["gates/kernel"], weights["gates/bias"]
        ck, cb = weights["candidate/kernel"], weights["candidate/bias"]
        H = cb.shape[0]
        r_k, u_k = gk[:, :H], gk[:, H:]
        r_b, u_b = gb[:H], gb[H:]
        full = np.concatenate([u_k, r_k, ck], axis=1)
        bias = np.concatenate([u_b, r_b, cb])
        return [full[:D].astype(np.float32), full[D:].astype(np.float32), bias.astype(np.float32)]
    raise ValueError(f"unknown kind {kind!r}; valid kinds: {LAYER_KINDS}")


if __name__ == "__main__":
    keras.utils.set_random_seed(1234)
    x = np.random.RandomState(0).randn(3, 5, 2).astype(np.float32)
    lengths = np.array([5, 2, 0])
    for kind in LAYER_KINDS:
        outputs, states = split_result(run_masked(make_layer(kind, 4, True, True), x, lengths))
        print(f"{kind}: outputs {tuple(outputs.shape)}, states {[tuple(s.shape) for s in states]}")
        print("  sequence 1 (length 2), first unit by step:", np.round(np.asarray(outputs)[1, :, 0], 3))
        print("  as dynamic_rnn gave it:                  ", np.round(np.asarray(zero_after_length(outputs, lengths))[1, :, 0], 3))
