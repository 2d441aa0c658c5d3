# Kata stub: replace each `raise NotImplementedError(...)` with your code, then run
#   kata run k06        (or: pytest tests/test_k06_rnn_api.py)
# Generated from solutions/k06_rnn_api.py by `python -m tfkata.stubs k06`; `kata reset k06` restores it.
"""k06 · The RNN API (RNN：TF 中的 RNN API).

The slides teach TensorFlow's RNN API in three layers:

1. a *cell* computes one time step, ``o_t, s_t = cell(x_t, s_{t-1})``, starting from
   ``cell.zero_state(batch_size, dtype)``;
2. cells stack: ``MultiRNNCell([cell_1, cell_2])`` is again a cell, whose state is a tuple with one
   entry per layer;
3. an *RNN function* runs a cell over a whole sequence: ``static_rnn`` unrolls it over a Python
   list of T tensors ``[B, D]``; ``dynamic_rnn`` loops over one tensor ``[B, T, D]`` (or ``[T, B, D]``
   with ``time_major=True``) and understands ``sequence_length``.

Output vs state: for a vanilla RNN and a GRU the output *is* the new state (one ``[B, H]``
tensor); an LSTM outputs ``h`` and carries the pair ``LSTMStateTuple(c, h)`` as its state.

Everything lives in ``tf.compat.v1.nn.rnn_cell`` and ``tf.compat.v1.nn``. From TensorFlow 2.16 on
these need the ``tf_keras`` package and ``TF_USE_LEGACY_KERAS=1`` (the harness sets it; see the
README). All functions build graph ops in the default graph; nothing runs until a session does.
"""
import tensorflow as tf

CELL_KINDS = ("rnn", "basic_lstm", "lstm", "gru")


def make_cell(kind, num_units):
    """A new RNN cell with ``num_units`` hidden units, chosen by ``kind`` (slide: 常用的 RNN cell).

    ``kind`` is one of ``CELL_KINDS``: ``"rnn"`` → ``BasicRNNCell``, ``"basic_lstm"`` →
    ``BasicLSTMCell``, ``"lstm"`` → ``LSTMCell``, ``"gru"`` → ``GRUCell``, all from
    ``tf.compat.v1.nn.rnn_cell``. Any other ``kind`` raises ``ValueError`` naming the valid kinds.
    The cell creates no variables yet: they appear the first time it is called.
    """
    cells = {"rnn": tf.compat.v1.nn.rnn_cell.BasicRNNCell,
             "basic_lstm": tf.compat.v1.nn.rnn_cell.BasicLSTMCell,
             "lstm": tf.compat.v1.nn.rnn_cell.LSTMCell,
             "gru": tf.compat.v1.nn.rnn_cell.GRUCell}
    if kind not in cells:
        raise ValueError(f"unknown kind {kind!r}; valid kinds: {CELL_KINDS}")
    return cells[kind](num_units)


def zero_state_and_step(cell, x_t):
    """Run ``cell`` for ONE time step on ``x_t`` (float32 ``[B, D]``), starting from its zero state.

    The batch size comes from ``x_t`` (it may be unknown until run time). Returns
    ``(s_0, o_1, s_1)``: the zero state, the output and the new state of
    ``o_1, s_1 = cell(x_1, s_0)``. States have the cell's state structure: one ``[B, H]`` tensor
    for BasicRNNCell and GRUCell, an ``LSTMStateTuple(c, h)`` of two ``[B, H]`` tensors for the
    LSTM cells.
    """
    batch = tf.shape(x_t)[0]
    s_0 = cell.zero_state(batch, tf.float32)
    o_1, s_1 = cell(x_t, s_0)
    return s_0, o_1, s_1


def top_output(state):
    """The output ``h`` of the top layer, read from a cell's (final) state.

    ``state`` is what a cell or an RNN function returned as state: a ``[B, H]`` tensor (vanilla RNN,
    GRU: the state is the output), an ``LSTMStateTuple(c, h)`` (the output is ``h``, not ``c``), or
    a tuple with one such state per layer (``MultiRNNCell``: the top layer is the last entry).
    Returns a ``[B, H]`` tensor. Note that ``LSTMStateTuple`` is itself a tuple.
    """
    if isinstance(state, tf.compat.v1.nn.rnn_cell.LSTMStateTuple):
        return state.h
    if isinstance(state, tuple):
        return top_output(state[-1])
    return state


def stacked_lstm(inputs, sizes=(128, 256)):
    """The slide's example 2: a ``MultiRNNCell`` of ``LSTMCell(128)`` and ``LSTMCell(256)``,
    run over ``inputs`` (float32 ``[B, T, D]``, batch-major) with ``dynamic_rnn``.

    One ``LSTMCell`` per entry of ``sizes``, bottom layer first; the initial state is the zero
    state (pass the dtype). Returns ``(outputs, state)``: outputs ``[B, T, sizes[-1]]`` (the top
    layer's h at every step) and a tuple of ``len(sizes)`` ``LSTMStateTuple``s, the one of layer k
    holding ``c`` and ``h`` of shape ``[B, sizes[k]]``.
    """
    cell = tf.compat.v1.nn.rnn_cell.MultiRNNCell(
        [tf.compat.v1.nn.rnn_cell.LSTMCell(n) for n in sizes])
    return tf.compat.v1.nn.dynamic_rnn(cell, inputs, dtype=tf.float32)


def unstack_time(inputs):
    """Turn a batch-major ``[B, T, D]`` tensor (T known) into the Python list of T tensors ``[B, D]``
    that ``static_rnn`` takes; element t is time step t.
    """
    return tf.unstack(inputs, axis=1)


def run_static(cell, inputs):
    """Unroll ``cell`` over ``inputs``, a Python list of T float32 tensors ``[B, D]`` (B may be unknown
    until run time: placeholders ``[None, D]``), with ``static_rnn`` from a zero initial state.

    Returns ``(outputs, state)``: a list of T outputs ``[B, H]`` and the final state. Calling this
    and :func:`run_dynamic` with the same cell object shares one set of weights.
    """
    return tf.compat.v1.nn.static_rnn(cell, inputs, dtype=tf.float32)


def run_dynamic(cell, inputs, sequence_length=None, time_major=False):
    """Run ``cell`` over ``inputs`` with ``dynamic_rnn`` from a zero initial state.

    ``inputs`` is float32 ``[B, T, D]``, or ``[T, B, D]`` when ``time_major`` is True; the outputs
    follow the same layout (``[B, T, H]`` or ``[T, B, H]``). ``sequence_length`` (int ``[B]`` or
    None) gives each sequence's true length (slide's pseudo-code: for ``t >= length`` the output is
    zeros and the state is copied through, so the final state is the state at step ``length - 1``).
    Returns ``(outputs, final_state)``.
    """
    return tf.compat.v1.nn.dynamic_rnn(cell, inputs, sequence_length=sequence_length,
                                       time_major=time_major, dtype=tf.float32)
