"""Graded tests for n02 · Variables owned by objects (the TF 2 twin of k02).

Eager tests (the harness makes no graph for the "now" track). Unit tests first, then the
equivalence tests: the learner's MLP, given the weights of the same target's k02 ``mlp``, must
compute the same outputs (they wait until k02 passes). Keras: only what Keras 2 (TF 2.12-2.15) and
Keras 3 (TF 2.16+) share is checked (weights built on the first call and reused afterwards); variable
names of Keras layers differ between the two and are not checked.

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import collections.abc
import re

import numpy as np
import pytest
import tensorflow as tf

from tfkata import fresh_graph, load_kata
from tfkata.feedback.facts import first_line

n02 = load_kata("n02_modules_layers")
k02 = load_kata("k02_variables_scopes")

X = np.random.RandomState(7).standard_normal((6, 5)).astype(np.float32)
SIZES = [4, 3, 2]


def _names(obj):
    return sorted(v.name for v in obj.trainable_variables)


def _numpy_mlp(x, weights):
    """weights: [(W, b), ...]; relu after every layer but the last."""
    h = x
    for i, (w, b) in enumerate(weights):
        h = h @ w + b
        if i < len(weights) - 1:
            h = np.maximum(h, 0.0)
    return h


def _random_weights(sizes, in_features, seed=3):
    rng = np.random.RandomState(seed)
    out, size_in = [], in_features
    for size in sizes:
        out.append((rng.standard_normal((size_in, size)).astype(np.float32),
                    rng.standard_normal(size).astype(np.float32)))
        size_in = size
    return out


def _max_diff(got, want):
    diff = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
    where = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape)) if diff.size else ()
    return float(diff.max()) if diff.size else 0.0, where


# --------------------------------------------------------------------------- Linear (tf.Module)
@pytest.mark.covers("Linear")
def test_linear_variables_shapes_and_names():
    lin = n02.Linear(3, 4)
    assert isinstance(lin, tf.Module), "Linear should subclass tf.Module"
    kinds = {name: type(getattr(lin, name, None)).__name__ for name in ("w", "b")}
    missing = [name for name in ("w", "b") if not isinstance(getattr(lin, name, None), tf.Variable)]
    assert not missing, (
        f"Linear: after __init__ self.{missing[0]} is {kinds[missing[0]]}, not a tf.Variable: create w and b in "
        "__init__ (self.w = tf.Variable(...)); __call__ creates nothing"
    )
    assert tuple(lin.w.shape) == (3, 4), (
        f"Linear: w should be [in_features, out_features] = [3, 4] so that x @ w works, got {list(lin.w.shape)}"
    )
    assert tuple(lin.b.shape) == (4,), f"b should be [out_features] = [4], got {list(lin.b.shape)}"
    assert _names(lin) == ["linear/b:0", "linear/w:0"], (
        f"Linear: expected the variables linear/w:0 and linear/b:0, got {_names(lin)}: create them inside "
        "`with self.name_scope:` with name='w' and name='b'"
    )
    named = n02.Linear(2, 2, name="dense_like")
    assert _names(named) == ["dense_like/b:0", "dense_like/w:0"], (
        f"Linear(2, 2, name='dense_like'): expected the variables dense_like/w:0 and dense_like/b:0, got "
        f"{_names(named)}: pass name on, super().__init__(name=name), so the module's name scope carries it"
    )
    dtypes = {name: getattr(v, "dtype", None) for name, v in (("w", lin.w), ("b", lin.b))}
    wrong = {name: getattr(d, "name", d) for name, d in dtypes.items() if d != tf.float32}
    assert not wrong, (
        f"Linear: w and b should be float32 variables, got {wrong}"
        + (": numpy draws float64; draw with tf.random.uniform(..., dtype=tf.float32) or .astype(np.float32)"
           if "float64" in wrong.values() else "")
    )
    assert not np.any(lin.b.numpy()), f"b should start at zeros, got {lin.b.numpy()}"
    w, limit = lin.w.numpy(), (6.0 / 7.0) ** 0.5
    assert np.all(np.abs(w) <= limit) and np.std(w) > 0.1, (
        f"Linear: w should be Glorot uniform on +-{limit:.3f} (k02's default initializer); got min {w.min():.3f}, "
        f"max {w.max():.3f}, std {np.std(w):.3f}"
    )
    # 60,000 draws: a uniform on +-limit reaches within 0.1 % of it and has std limit / sqrt(3)
    big = n02.Linear(200, 300).w.numpy().astype(np.float64)
    limit = (6.0 / 500.0) ** 0.5
    reach, spread = float(np.abs(big).max()), float(big.std())
    assert reach <= limit * 1.0001 and reach > 0.99 * limit and abs(spread - limit / 3 ** 0.5) < 0.03 * limit / 3 ** 0.5, (
        f"Linear(200, 300): w should be uniform on +-sqrt(6 / (in + out)) = +-{limit:.4f} (std {limit / 3 ** 0.5:.4f}); "
        f"got |w| up to {reach:.4f}, std {spread:.4f}"
        + (f": that is the range +-{reach:.4f}, sqrt({6 * (reach / limit) ** 2:.2g} / (in + out)): the Glorot limit is "
           "sqrt(6 / (in_features + out_features))" if reach < 0.99 * limit and abs(spread - reach / 3 ** 0.5) < 0.03 * spread
           else "")
    )


@pytest.mark.covers("Linear")
def test_linear_layers_start_from_their_own_random_weights():
    first, second = n02.Linear(3, 4), n02.Linear(3, 4)
    assert not np.allclose(first.w.numpy(), second.w.numpy()), (
        "Linear: two Linear(3, 4) started with the same w: draw it with tf.random.uniform (the global seed's "
        "stream), not from a fixed seed (a stateless op, seed=..., or tf.random.set_seed(...) in __init__, which "
        "restarts the global stream at every construction), or every layer of one shape starts equal"
    )


@pytest.mark.covers("Linear")
def test_linear_call_uses_its_own_variables():
    lin = n02.Linear(5, 3, name="dense_like")
    (w, b), = _random_weights([3], 5)
    lin.w.assign(w)
    lin.b.assign(b)
    w_var, b_var = lin.w, lin.b
    made = []

    def counting(next_creator, **kwargs):
        made.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(counting):
        first = lin(tf.constant(X)).numpy()
        second = lin(tf.constant(X)).numpy()
    assert not made, (
        f"Linear.__call__ created {len(made)} variable(s) in two calls (names {made}): __call__ creates nothing: "
        "make every variable once in __init__, never in __call__ (it only uses self.w and self.b)"
    )
    assert lin.w is w_var and lin.b is b_var and len(lin.trainable_variables) == 2, (
        f"Linear: calling the module must reuse the w and b made in __init__ (after two calls self.w is "
        f"{'the same' if lin.w is w_var else 'a new'} variable): create variables in __init__, never in __call__"
    )
    assert first.shape == (len(X), 3), (
        f"Linear(5, 3)(x) on x [{len(X)}, 5] should give [{len(X)}, 3] (x @ w + b with w [5, 3], b [3]), got "
        f"{list(first.shape)}: use all of self.w and self.b"
    )
    diff, where = _max_diff(first, X @ w + b)
    no_bias = _max_diff(first, X @ w)[0] < 1e-4
    assert diff < 1e-4, (
        f"Linear(x) should be x @ w + b: max |diff| {diff:.3g} at {where}"
        + (": it equals x @ w, the bias is missing: return tf.matmul(x, self.w) + self.b" if no_bias else "")
    )
    assert np.array_equal(first, second), "two calls on the same input must give the same output"


# --------------------------------------------------------------------------- MLP (tf.Module of modules)
def _layers(mlp):
    """mlp.layers, which must be the list of its Linear layers in order."""
    layers = getattr(mlp, "layers", None)
    if isinstance(layers, collections.abc.Mapping):
        kind = "a dict (iterating over it gives its keys)"
    elif isinstance(layers, list):
        kind = f"a list of {', '.join(sorted({type(x).__name__ for x in layers})) or 'nothing'}"
    else:
        kind = type(layers).__name__
    assert isinstance(layers, list) and layers and all(isinstance(x, n02.Linear) for x in layers), (
        f"MLP: self.layers should be the list of its Linear layers, in order, got {kind}: self.layers = [] in "
        "__init__, then self.layers.append(Linear(...)) for each size"
    )
    return layers


@pytest.mark.covers("MLP", "Linear")
def test_mlp_layers_and_variable_names():
    mlp = n02.MLP(5, SIZES)
    want = sorted(f"mlp/layer{i}/{v}:0" for i in (1, 2, 3) for v in ("w", "b"))
    assert _names(mlp) == want, (
        f"MLP: expected the variables {want}, got {_names(mlp)}: build layer i as Linear(..., name=f'layer{{i}}') "
        "inside `with self.name_scope:` and keep the layers in self.layers"
    )
    shapes = [tuple(layer.w.shape) for layer in _layers(mlp)]
    assert shapes == [(5, 4), (4, 3), (3, 2)], (
        f"MLP(5, [4, 3, 2]): the kernels should chain [5, 4], [4, 3], [3, 2], got {shapes}: each layer's input "
        "size is the previous layer's output size (in_features only for the first)"
    )
    # sizes that repeat: still one Linear, with variables of its own, per entry of layer_sizes
    repeated = n02.MLP(4, [4, 4, 2])
    layers = _layers(repeated)
    want = sorted(f"mlp/layer{i}/{v}:0" for i in (1, 2, 3) for v in ("w", "b"))
    assert len(layers) == 3 and len({id(x) for x in layers}) == 3 and _names(repeated) == want, (
        f"MLP(4, [4, 4, 2]) should hold three different Linear layers, one per entry of layer_sizes, with the "
        f"variables {want}; it holds {len({id(x) for x in layers})} different ones in {len(layers)} places and the "
        f"variables {_names(repeated)}: make a new Linear for every size, even a repeated one (no cache keyed by shape)"
    )


@pytest.mark.covers("MLP", "Linear")
def test_mlp_output_matches_numpy():
    mlp = n02.MLP(5, SIZES)
    weights = _random_weights(SIZES, 5)
    for layer, (w, b) in zip(_layers(mlp), weights):
        layer.w.assign(w)
        layer.b.assign(b)
    try:
        got = mlp(tf.constant(X)).numpy()
    except tf.errors.InvalidArgumentError as exc:  # the layers' own tests pass: a layer got the wrong input
        shapes = re.search(r"In\[0\]: (\[[^\]]*\]), In\[1\]: (\[[^\]]*\])", str(exc))
        error = f"a matmul of {shapes[1]} and {shapes[2]}" if shapes else first_line(exc, 120)
    else:
        error = None
    if error is not None:  # outside the except block: no chained TensorFlow traceback
        pytest.fail(f"MLP: calling it on x [6, 5] failed inside a layer ({error}): apply each layer of self.layers "
                    "once, in order, to the previous layer's output (relu between them, none after the last)",
                    pytrace=False)
    want = _numpy_mlp(X, weights)
    assert got.shape == want.shape, (
        f"MLP: expected output shape {list(want.shape)}, got {list(got.shape)}"
        + (f": that is layer 1's width ({SIZES[0]}), not the last layer's: apply every layer of self.layers, in order"
           if got.shape[-1:] == (SIZES[0],) else ""))
    diff, where = _max_diff(got, want)
    if np.all(got >= 0) and np.any(want < 0):
        hint = " (is the last layer ReLU'd? it must stay linear)"
    elif _max_diff(got, _numpy_mlp(np.maximum(X, 0.0), weights))[0] < 1e-4:
        hint = " (it equals the MLP on relu(x): no relu before the first layer, only between layers)"
    else:
        hint = ""
    assert diff < 1e-4, f"MLP(x) differs from relu(x @ w1 + b1) ... @ w3 + b3: max |diff| {diff:.3g} at {where}{hint}"


# --------------------------------------------------------------------------- Dense (Keras layer)
@pytest.mark.covers("Dense")
def test_dense_builds_on_first_call_and_reuses():
    layer = n02.Dense(3)
    assert not layer.weights, (
        f"Dense.__init__ should create no weights yet (it does not know the input's width): Dense(3) owns "
        f"{[tuple(w.shape) for w in layer.weights]} before its first call; create them in build(input_shape)")
    x = tf.constant(X)
    try:
        first = np.asarray(layer(x))
    except Exception:
        kernel = getattr(layer, "kernel", None)
        shape = [int(d) for d in kernel.shape] if kernel is not None else None
        if shape is not None and shape != [5, 3]:
            batch = " (input_shape[0] is the batch axis)" if shape[0] == X.shape[0] else ""
            pytest.fail(
                f"Dense.build: on x of shape [6, 5] the kernel must be [input_shape[-1], units] = [5, 3], build made "
                f"{shape}{batch}: use shape=(input_shape[-1], self.units)", pytrace=False)
        raise
    assert first.shape == (6, 3), f"Dense(3) on [6, 5] should give [6, 3], got {list(first.shape)}"
    second = np.asarray(layer(x))
    shapes = sorted(tuple(v.shape) for v in layer.trainable_weights)
    assert shapes == [(3,), (5, 3)], (
        f"Dense: after two calls the layer should own exactly a [5, 3] kernel and a [3] bias, it owns {shapes}: "
        + ("the kernel is transposed: add_weight(shape=(input_shape[-1], self.units)), then x @ kernel"
           if shapes == [(3,), (3, 5)] else
           "create them once in build() with self.add_weight(...) (a tf.Variable you assign yourself is not "
           "tracked as the layer's weight on every Keras; and build, not call, makes them)")
    )
    assert np.array_equal(first, second), "calling the same layer twice must give the same output (same weights)"
    other = n02.Dense(3)
    again = np.asarray(other(x))
    if np.array_equal(again, first):
        shared = any(v is w for v in other.trainable_weights for w in layer.trainable_weights)
        pytest.fail("Dense: a new Dense(3) gave the same output as the first one: "
                    + ("it uses the first layer's variables: create its own in build() with self.add_weight"
                       if shared else
                       "its kernel started with the same values (its own variables, the same draw): no fixed seed "
                       "in the initializer (GlorotUniform(seed=...)) or tf.random.set_seed in build; "
                       "initializer='glorot_uniform' draws anew for every layer"), pytrace=False)


@pytest.mark.covers("Dense")
def test_dense_kernel_follows_the_input_width():
    for width in (3, 7):  # not the 5 of the other tests: a width written into build shows
        layer = n02.Dense(2)
        x = tf.constant(np.random.RandomState(width).standard_normal((2, width)).astype(np.float32))
        try:
            out = np.asarray(layer(x))
        except Exception:  # noqa: BLE001 - a kernel of the wrong width fails in the matmul; its shape says why
            out = None
        kernel = getattr(layer, "kernel", None)
        shape = [int(d) for d in kernel.shape] if kernel is not None else None
        assert shape == [width, 2] and out is not None and out.shape == (2, 2), (
            f"Dense.build: on x of shape [2, {width}] the kernel must be [input_shape[-1], units] = [{width}, 2], "
            f"got {shape}: read the input's width from input_shape[-1] (not a number written into build)")


@pytest.mark.covers("Dense")
def test_dense_passes_kwargs_to_the_base_class():
    named = n02.Dense(3, name="proj")
    assert named.name == "proj", (
        f"Dense: Dense(3, name='proj').name is {named.name!r}, not 'proj': __init__ must pass its keyword arguments to "
        "the base class: super().__init__(**kwargs)")
    frozen = n02.Dense(3, trainable=False)
    frozen(tf.constant(X))
    assert not frozen.trainable and not frozen.trainable_weights, (
        f"Dense: Dense(3, trainable=False) should be frozen (trainable False, no trainable weights), it has "
        f"trainable={frozen.trainable} and {len(frozen.trainable_weights)} trainable weights: __init__ must pass its "
        "keyword arguments to the base class: super().__init__(**kwargs)")


@pytest.mark.covers("Dense")
def test_dense_initial_values_and_output():
    layer = n02.Dense(4)
    layer(tf.constant(X))
    assert not np.any(np.asarray(layer.bias)), (
        f"Dense: the bias should start at zeros (initializer='zeros'), got {np.asarray(layer.bias)}")
    kernel = np.asarray(layer.kernel)
    limit = (6.0 / 9.0) ** 0.5
    assert kernel.shape == (5, 4) and np.all(np.abs(kernel) <= limit) and np.std(kernel) > 0.1, (
        f"the kernel should be [5, 4] glorot_uniform (|k| <= {limit:.3f}), got shape {kernel.shape}, "
        f"std {np.std(kernel):.3f}"
    )
    names = sorted(w.name.split("/")[-1].split(":")[0] for w in layer.weights)
    assert names == ["bias", "kernel"], (
        f"Dense: the weights should be named kernel and bias, got {names}: add_weight(name='kernel', ...) and "
        "add_weight(name='bias', ...) (checkpoints and Keras 3's paths such as dense/kernel read the names)"
    )
    (w, b), = _random_weights([4], 5, seed=11)
    layer.kernel.assign(w)
    layer.bias.assign(b)
    got = np.asarray(layer(tf.constant(X)))
    diff, where = _max_diff(got, X @ w + b)
    relu = _max_diff(got, np.maximum(X @ w + b, 0.0))[0] < 1e-4
    assert diff < 1e-4, (f"Dense(x) should be x @ kernel + bias: max |diff| {diff:.3g} at {where}"
                         + (": it equals relu(x @ kernel + bias), and Dense has no activation" if relu else ""))


# --------------------------------------------------------------------------- increment, counting, checkpoints
@pytest.mark.covers("increment")
def test_increment_changes_the_variable_now():
    v = tf.Variable(1.0)
    got = n02.increment(v, 2.5)
    now = float(v.numpy())
    if now == 2.5:
        pytest.fail("increment: after increment(v, 2.5) v should be 3.5 (1.0 + 2.5), it is 2.5, the amount alone: "
                    "v.assign(amount) replaces the value, v.assign_add(amount) adds to it", pytrace=False)
    assert now == 3.5, (
        f"increment: after increment(v, 2.5) v should be 3.5 at once, it is {now}: "
        + ("use v.assign_add(amount), not v + amount (which computes a new tensor and leaves v alone)" if now == 1.0
           else f"amount was added {round((now - 1.0) / 2.5)} times: call assign_add ONCE"
           if now > 1.0 and float((now - 1.0) / 2.5).is_integer() else
           f"add amount (2.5), not a constant ({now - 1.0:g})")
    )
    assert float(np.asarray(got)) == 3.5, f"increment should return the new value 3.5, got {got}"
    assert isinstance(got, (tf.Tensor, tf.Variable)), (
        f"increment should return what assign_add gives back (a TensorFlow value), got {type(got).__name__}: "
        "no .numpy() or float(), the caller keeps it as a tensor"
    )
    n02.increment(v, 2.5)
    assert float(v.numpy()) == 6.0, f"increment: a second increment should give 6.0, got {float(v.numpy())}"
    # any dtype and shape: an int32 scalar and a float32 vector
    for start, amount, want, what in (
            (7, 2, 9, "an int32 variable 7 incremented by 2"),
            (np.array([1.0, 2.0, 3.0], np.float32), np.array([0.5, -1.0, 0.0], np.float32), [1.5, 1.0, 3.0],
             "a float32 vector variable [1, 2, 3] incremented by [0.5, -1, 0]")):
        var = tf.Variable(start)
        try:
            n02.increment(var, amount)
            got = var.numpy().tolist()
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as exc:
            got = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
        assert got == want, (
            f"increment: {what} should hold {want}, got {got}: pass the amount to var.assign_add as it is, which works "
            "for any dtype and shape (float(amount) gives a Python float that an int32 variable refuses, and fails for "
            "a vector)"
        )


@pytest.mark.covers("count_parameters")
def test_count_parameters():
    class WithFrozen(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(tf.zeros([3, 4]))
            self.steps = tf.Variable(0, trainable=False)

    try:
        got, missing = n02.count_parameters(WithFrozen()), None
    except AttributeError as exc:
        got, missing = None, str(exc).strip().splitlines()[0][:100]
    if missing is not None:
        pytest.fail("count_parameters: obj is any tf.Module, and a tf.Module has trainable_variables (trainable_weights "
                    f"and count_params() are Keras's only): count over obj.trainable_variables ({missing})",
                    pytrace=False)
    assert got == 12, (
        f"count_parameters: a [3, 4] trainable kernel is 12 parameters; got {got}: count the "
        "entries of obj.trainable_variables (non-trainable ones do not count)"
    )
    bias = n02.count_parameters(_Holder(b=tf.Variable(tf.zeros([4]))))
    assert bias == 4, (
        f"count_parameters: a module with one bias of shape [4] has 4 parameters, got {bias}"
        + (" (= 4 x 4)" if bias == 16 else "") + ": count every entry of each variable: tf.size(v) or np.prod(v.shape) "
        "(a bias [n] has n, a kernel [a, b] has a * b)")
    for variable, want, what in ((tf.Variable(2.0), 1, "one scalar variable (shape [])"),
                                 (tf.Variable(tf.zeros([2, 3, 4])), 24, "one [2, 3, 4] variable")):
        try:
            got = n02.count_parameters(_Holder(v=variable))
        except (TypeError, ValueError, IndexError) as exc:
            got = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
        assert got == want, (
            f"count_parameters: a module with {what} has {want} parameter{'s' * (want > 1)}, got {got}: count the entries "
            "of a variable of any rank with tf.size(v) (or np.prod(v.shape)), not from its rows and columns (a scalar "
            "variable has neither)"
        )
    try:
        got = n02.count_parameters(keras.layers.Dense(3))
    except (TypeError, ValueError, IndexError, tf.errors.InvalidArgumentError) as exc:
        got = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    assert got == 0, (
        f"count_parameters: a keras Dense(3) not called yet has no weights yet, so no variable at all: 0 parameters, "
        f"got {got}: add up tf.size(v) over obj.trainable_variables, a sum that is 0 for an empty list (tf.concat or "
        "tf.add_n of an empty list fails)"
    )
    mlp = n02.MLP(5, SIZES)
    got = n02.count_parameters(mlp)
    assert got == 5 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2, (
        f"count_parameters: MLP(5, [4, 3, 2]) has 47 parameters, got {got}: count every entry of each variable: "
        "tf.size(v) or np.prod(v.shape) (a bias [n] has n, a kernel [a, b] has a * b)")
    assert isinstance(got, int), f"count_parameters: return a Python int, got {type(got).__name__}: int(...)"


@pytest.mark.covers("checkpoint_keys")
def test_checkpoint_keys_follow_the_object_path(tmp_path):
    class TwoY(tf.Module):  # k02's two variables both named "y", now owned by one object
        def __init__(self):
            super().__init__()
            self.first = tf.Variable(1.0, name="y")
            self.second = tf.Variable(2.0, name="y")

    try:
        keys, error = n02.checkpoint_keys(TwoY(), str(tmp_path)), None
    except (ValueError, tf.errors.OpError) as exc:
        keys, error = None, str(exc).strip().splitlines()[0][:120]
    if error is not None:  # outside the except block: no chained traceback
        pytest.fail("checkpoint_keys: write to the prefix os.path.join(directory, 'ckpt') and list the path that "
                    "write returns (tf.train.list_variables(path)): a bare directory is no checkpoint prefix "
                    f"(it raised: {error})", pytrace=False)
    want = ["model/first/.ATTRIBUTES/VARIABLE_VALUE", "model/second/.ATTRIBUTES/VARIABLE_VALUE"]
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in keys, (
        f"checkpoint_keys: got {keys}: leave out the bookkeeping entry _CHECKPOINTABLE_OBJECT_GRAPH, keep only "
        "the variables' keys"
    )
    assert keys == want, (
        f"checkpoint_keys: expected the keys {want}"
        + (f", sorted, got them in another order {keys}: return sorted(...)" if sorted(keys) == want else
           f" (object paths from tf.train.Checkpoint(model=obj); the variables' names, both 'y', play no part), got {keys}")
        + (": save_counter is Checkpoint.save's own counter; ckpt.write(prefix) saves only the objects"
           if any(k.startswith("save_counter/") for k in keys) else "")
    )
    written = sorted(p.name for p in tmp_path.iterdir())
    assert "ckpt.index" in written, (
        f"checkpoint_keys should write the checkpoint to the prefix os.path.join(directory, 'ckpt') (files ckpt.index, "
        f"ckpt.data-...), found {written or 'nothing'} in directory"
    )
    other = [name for name in written if not name.startswith("ckpt.")]
    assert not other, (
        f"checkpoint_keys wrote {other} into the caller's directory besides the checkpoint: write only "
        "Checkpoint(model=obj).write(prefix) there"
    )


@pytest.mark.covers("checkpoint_keys", "MLP")
def test_checkpoint_keys_of_an_mlp(tmp_path):
    keys = n02.checkpoint_keys(n02.MLP(5, SIZES), str(tmp_path))
    want = sorted(f"model/layers/{i}/{v}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(3) for v in ("w", "b"))
    assert keys == want, f"expected the MLP's keys {want}, got {keys}"


# --------------------------------------------------------------------------- equivalence with k02
MAPPING = "k02 layer{i}/W -> MLP.layers[i-1].w, layer{i}/b -> MLP.layers[i-1].b"


def _k02_mlp():
    """The learner's k02.mlp in a fresh graph: its weights (biases set non-zero) and its output on X."""
    with fresh_graph():
        out = k02.mlp(tf.constant(X), SIZES)
        rng = np.random.RandomState(5)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            weights = []
            for i in range(1, len(SIZES) + 1):
                (w,) = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, f"layer{i}/W")
                (b,) = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, f"layer{i}/b")
                b_value = rng.standard_normal(b.shape.as_list()).astype(np.float32)
                sess.run(b.assign(b_value))  # zeros would hide a missing bias
                weights.append((sess.run(w), b_value))
            k_out = sess.run(out)
    return weights, k_out


def _port_and_compare(module, weights, k_out):
    """Copy k02's weights into ``module`` along MAPPING; None if it matches k02, else one line."""
    for layer, (w, b) in zip(module.layers, weights):
        layer.w.assign(w)
        layer.b.assign(b)
    n_out = np.asarray(module(tf.constant(X)))
    if n_out.shape != k_out.shape:
        return f"port {MAPPING}: k02 gives shape {list(k_out.shape)}, the module {list(n_out.shape)}"
    diff, where = _max_diff(n_out, k_out)
    if diff > 1e-5:
        return (
            f"port {MAPPING}: with k02's weights the outputs differ by up to {diff:.3g} (at {where}); "
            "same kernels, same biases, relu between layers and none after the last should agree"
        )
    return None


@pytest.mark.needs("k02")
@pytest.mark.covers("MLP", "Linear")
def test_mlp_equals_k02_mlp_with_the_same_weights():
    weights, k_out = _k02_mlp()
    mlp = n02.MLP(5, SIZES)
    message = _port_and_compare(mlp, weights, k_out)
    assert message is None, message
    diff, _ = _max_diff(mlp(tf.constant(X)), k_out)
    print(f"n02.MLP vs k02.mlp with k02's weights: max |n - k| = {diff:.3g}")


class _Port(tf.Module):
    """A hand-written port of k02.mlp; with use_bias=False or relu_last=True a deliberately wrong one."""

    def __init__(self, relu_last=False, use_bias=True):
        super().__init__()
        self.relu_last, self.use_bias = relu_last, use_bias
        self.layers = []
        size_in = 5
        for size in SIZES:
            layer = tf.Module()
            layer.w = tf.Variable(tf.zeros([size_in, size]))
            layer.b = tf.Variable(tf.zeros([size]))
            self.layers.append(layer)
            size_in = size

    def __call__(self, x):
        h = x
        for i, layer in enumerate(self.layers):
            h = tf.matmul(h, layer.w) + (layer.b if self.use_bias else 0.0)
            if i < len(self.layers) - 1 or self.relu_last:
                h = tf.nn.relu(h)
        return h


@pytest.mark.needs("k02")
@pytest.mark.covers("MLP", "Linear")
def test_wrong_ports_of_k02_are_rejected():
    weights, k_out = _k02_mlp()
    message = _port_and_compare(n02.MLP(5, SIZES), weights, k_out)
    assert message is None, message  # the learner's port is accepted, the wrong ones are not
    for wrong, what in ((_Port(use_bias=False), "without biases"), (_Port(relu_last=True), "ReLU on the last layer")):
        message = _port_and_compare(wrong, weights, k_out)
        assert message is not None and MAPPING in message, (
            f"the equivalence check accepted a port {what}: {message}"
        )
    right = _Port()
    assert _port_and_compare(right, weights, k_out) is None, "the check must accept a correct port"


# --------------------------------------------------------------------------- differential checks (reference)
# The learner's classes and functions against solutions/ on generated cases, smallest first
# (tfkata.differential). Random initial weights are not compared: the reference's run draws weights
# (biases non-zero), the learner's object gets the very same ones, by the order of trainable_variables,
# once the shapes agree (a shape that differs is reported as such).
import tempfile  # noqa: E402

import keras  # noqa: E402

from tfkata.differential import Case, compare, eager_outputs, reference  # noqa: E402

_KEPT_WEIGHTS = {}


def _give_reference_weights(mod, case, what, variables):
    """The reference's run draws seeded weights for its variables and keeps them; the learner's run
    gets the same values after checking that its variables have the same shapes, in the same order."""
    shapes = [[int(d) for d in v.shape] for v in variables]
    if mod is reference("n02"):
        rng = np.random.RandomState(17)
        _KEPT_WEIGHTS[case.label] = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    values = _KEPT_WEIGHTS[case.label]
    want = [list(v.shape) for v in values]
    if shapes != want:
        raise AssertionError(
            f"{what}: your trainable variables have shapes {shapes}, the reference's {want} (in the order of "
            "trainable_variables), so they cannot get the same weights")
    for v, value in zip(variables, values):
        v.assign(value)


def _run_linear(mod, case):
    in_features, out_features, x = case.args

    def call():
        lin = mod.Linear(in_features, out_features)
        _give_reference_weights(mod, case, f"Linear({in_features}, {out_features})", lin.trainable_variables)
        return {"y": lin(tf.constant(x)), "names": _names(lin)}

    return eager_outputs(call, keras=False)


def _x(shape, seed=0):
    return np.random.RandomState(seed).standard_normal(shape).astype(np.float32)


LINEAR_CASES = [
    Case("Linear(1, 1) on x of shape [1, 1]", (1, 1, _x([1, 1]))),
    Case("Linear(3, 5) on x of shape [1, 3] (batch 1)", (3, 5, _x([1, 3], 1))),
    Case("Linear(4, 2) on x of shape [3, 4] with negative values", (4, 2, _x([3, 4], 2))),
    Case("Linear(3, 3) (square w) on x of shape [2, 3]", (3, 3, _x([2, 3], 3))),
]


@pytest.mark.differential
@pytest.mark.covers("Linear")
def test_linear_matches_reference():
    compare("Linear", n02, reference("n02"), LINEAR_CASES, _run_linear,
            hint="w [in_features, out_features] and b [out_features] made in __init__; __call__ returns x @ w + b")


def _run_mlp(mod, case):
    in_features, sizes, x = case.args

    def call():
        mlp = mod.MLP(in_features, sizes)
        _give_reference_weights(mod, case, f"MLP({in_features}, {sizes})", mlp.trainable_variables)
        return {"y": mlp(tf.constant(x)), "names": _names(mlp)}

    return eager_outputs(call, keras=False)


MLP_CASES = [
    Case("MLP(2, [1]) (one layer: no relu at all) on x of shape [1, 2]", (2, [1], _x([1, 2], 4))),
    Case("MLP(3, [4, 2]) on x of shape [2, 3] with negative values", (3, [4, 2], _x([2, 3], 5))),
    Case("MLP(4, [3, 3, 5]) on x of shape [3, 4]", (4, [3, 3, 5], _x([3, 4], 6))),
]


@pytest.mark.differential
@pytest.mark.covers("MLP")
def test_mlp_matches_reference():
    compare("MLP", n02, reference("n02"), MLP_CASES, _run_mlp,
            hint="layer i is Linear(previous size, layer_sizes[i-1], name=f'layer{i}'); relu between layers, none after the last")


def _run_dense(mod, case):
    units, x = case.args

    def call():
        layer = mod.Dense(units)
        first = layer(tf.constant(x))
        _give_reference_weights(mod, case, f"Dense({units})", layer.trainable_weights)
        return {"shape of the first call": np.asarray(first.shape), "y": layer(tf.constant(x)),
                "weights after two calls": len(layer.trainable_weights)}

    return eager_outputs(call)


DENSE_CASES = [
    Case("Dense(1) on x of shape [1, 1]", (1, _x([1, 1], 7))),
    Case("Dense(5) on x of shape [2, 3]", (5, _x([2, 3], 8))),
    Case("Dense(2) on x of shape [4, 6] with negative values", (2, _x([4, 6], 9))),
]


@pytest.mark.differential
@pytest.mark.covers("Dense")
def test_dense_matches_reference():
    compare("Dense", n02, reference("n02"), DENSE_CASES, _run_dense,
            hint="build() makes kernel (input_shape[-1], units) and bias (units,) once; call() returns x @ kernel + bias")


def _run_increment(mod, case):
    start, amounts = case.args
    var = tf.Variable(start)
    steps = []
    for amount in amounts:
        returned = mod.increment(var, amount)
        steps.append({"returned": eager_outputs(lambda: returned, keras=False), "variable": var.numpy()})
    return steps


INCREMENT_CASES = [
    Case("a float32 scalar 1.0, incremented by 2.0 then by -3.5", (1.0, [2.0, -3.5])),
    Case("an int32 scalar 7, incremented by 2 then by -9", (7, [2, -9])),
    Case("a float32 vector [1, 2, 3], incremented by [0.5, -1, 0] twice",
         (np.array([1.0, 2.0, 3.0], np.float32), [np.array([0.5, -1.0, 0.0], np.float32)] * 2)),
]


@pytest.mark.differential
@pytest.mark.covers("increment")
def test_increment_matches_reference():
    compare("increment", n02, reference("n02"), INCREMENT_CASES, _run_increment,
            hint="return var.assign_add(amount): it adds now, for any dtype and shape, and gives the new value")


class _Holder(tf.Module):
    def __init__(self, **attributes):
        super().__init__()
        for key, value in attributes.items():
            setattr(self, key, value)


def _count_case(kind):
    if kind == "scalar":
        return _Holder(v=tf.Variable(2.0))
    if kind == "unbuilt":
        return keras.layers.Dense(3)
    if kind == "shared":
        shared = _Holder(w=tf.Variable(tf.zeros([2, 3])))
        return _Holder(first=shared, second=shared, steps=tf.Variable(0, trainable=False))
    layer = keras.layers.Dense(4)
    layer.build((None, 3))
    return _Holder(layer=layer, extra=[tf.Variable(tf.zeros([5])), tf.Variable(1.0, trainable=False)])


def _run_count(mod, case):
    got = mod.count_parameters(_count_case(case.args))
    return {"count": got, "type": type(got).__name__}


COUNT_CASES = [
    Case("a module with one trainable scalar variable (shape [])", "scalar"),
    Case("a keras Dense(3) not called yet (no weights yet)", "unbuilt"),
    Case("a module holding the same [2, 3] variable twice and a non-trainable step", "shared"),
    Case("a module with a built Dense(4) on 3 inputs, a [5] variable and a non-trainable scalar", "mixed"),
]


@pytest.mark.differential
@pytest.mark.covers("count_parameters")
def test_count_parameters_matches_reference():
    compare("count_parameters", n02, reference("n02"), COUNT_CASES, _run_count,
            hint="add up tf.size(v) over obj.trainable_variables (no variable at all: 0) and return a Python int")


def _checkpoint_case(kind):
    if kind == "one":
        return _Holder(v=tf.Variable(1.0, name="v"))
    if kind == "nested":
        inner = [_Holder(w=tf.Variable(tf.zeros([2, 3]), name="w")), _Holder(w=tf.Variable(tf.zeros([3]), name="w"))]
        return _Holder(blocks=inner, table={"scale": tf.Variable(2.0, name="scale")})
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    return layer


def _run_checkpoint_keys(mod, case):
    with tempfile.TemporaryDirectory(prefix="n02-differential-") as directory:
        return mod.checkpoint_keys(_checkpoint_case(case.args), directory)


CHECKPOINT_CASES = [
    Case("a module with one variable v", "one"),
    Case("a module with a list of two modules (both variables named w) and a dict {'scale': ...}", "nested"),
    Case("a built keras Dense(2) on 3 inputs", "dense"),
]


@pytest.mark.differential
@pytest.mark.covers("checkpoint_keys")
def test_checkpoint_keys_matches_reference():
    compare("checkpoint_keys", n02, reference("n02"), CHECKPOINT_CASES, _run_checkpoint_keys,
            hint="tf.train.Checkpoint(model=obj).write(<directory>/ckpt), then the sorted keys of "
                 "tf.train.list_variables without _CHECKPOINTABLE_OBJECT_GRAPH")
