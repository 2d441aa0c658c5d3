"""Graded tests for n01 · Eager code and tf.function (the TF 2 twin of k01).

These tests run eagerly (the harness makes no graph for the "now" track). Unit tests first, then the
equivalence tests, which compare n01 with the same target's k01 (the learner's k01 against katas/,
the reference against solutions/) and wait until k01 passes. Measured on TF 2.12 and 2.21: the same
op names, op types and trace counts on both.

PYTEST_DONT_REWRITE: every assert here carries its own message, so pytest's assertion rewriting (about 2 s of
every run over all test files) would add nothing a learner reads.
"""
import numpy as np
import pytest
import tensorflow as tf

from tfkata import fresh_graph, load_kata

n01 = load_kata("n01_tf_function")
k01 = load_kata("k01_graph_session")


def _is_tf_function(obj):
    return hasattr(obj, "get_concrete_function") and hasattr(obj, "experimental_get_tracing_count")


def _collatz(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def _op_types(graph):
    """Op types of a traced graph and of every function in its library (loop and branch bodies)."""
    graph_def = graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        types |= {node.op for node in function.node_def}
    return types


# --------------------------------------------------------------------------- unit tests
@pytest.mark.covers("eager_add")
def test_eager_add_is_computed_at_once():
    a, b, c = n01.eager_add()
    for t, name in ((a, "a"), (b, "b"), (c, "c")):
        assert isinstance(t, tf.Tensor), (
            f"eager_add: {name} should be a tf.Tensor (tf.constant / a + b), got {type(t).__name__}: "
            + ("make a and b constants, tf.constant(3.0): a tf.Variable is state to train, not a value"
               if isinstance(t, tf.Variable) else
               "keep the values as tensors, do not convert them with .numpy() or float()")
        )
        assert t.dtype == tf.float32 and t.shape == [], f"eager_add: {name} should be a float32 scalar, got {t.dtype} {t.shape}"
    got = (float(a.numpy()), float(b.numpy()), float(c.numpy()))
    assert got == (3.0, 2.0, 5.0), f"eager_add: expected a, b, c = 3.0, 2.0, 5.0 right away, got {got}"
    # c is the sum a + b, computed: traced, the function holds an add (a constant 5.0 only looks like one)
    ops = _op_types(tf.function(n01.eager_add, autograph=False).get_concrete_function().graph)
    assert ops & {"AddV2", "Add"}, (
        f"eager_add: c should be computed as a + b; traced, the function has no add op (only {sorted(ops)}): "
        "write c = a + b, not the constant 5.0")


@pytest.mark.covers("constants_function")
def test_constants_function_returns_a_tf_function():
    fn = n01.constants_function()
    assert _is_tf_function(fn), (
        f"constants_function should return the tf.function itself (decorate an inner function with "
        f"@tf.function and return it, uncalled), got {type(fn).__name__}"
    )
    values = [float(t.numpy()) for t in fn()]
    assert values == [1.0, 2.0, 3.0], f"calling the tf.function should give 1.0, 2.0, 3.0, got {values}"


@pytest.mark.covers("constants_function")
def test_constants_function_graph_has_k01_names():
    fn = n01.constants_function()
    graph = fn.get_concrete_function().graph
    consts = [op.name for op in graph.get_operations() if op.type == "Const"]
    assert consts == ["Const", "variable_b", "Const_1"], (
        f"constants_function: the traced graph's constants should be named Const, variable_b, Const_1 (only the second "
        f"gets name='variable_b'), got {consts}"
        + (": these are tensors captured from outside the tf.function (made when constants_function ran, not "
           "traced); create the constants INSIDE the decorated function's body" if not any(c.startswith("Const") for c in consts)
           else "")
    )


@pytest.mark.covers("graph_of")
def test_graph_of_returns_the_traced_graph():
    @tf.function
    def square(x):
        return tf.square(x, name="my_square")

    try:
        graph = n01.graph_of(square, tf.constant([1.0, 2.0]))
    except (IndexError, TypeError) as exc:
        pytest.fail(f"graph_of(square, x) for square(x) failed ({type(exc).__name__}: {str(exc).splitlines()[0][:100]}): "
                    "trace with the arguments as given: fn.get_concrete_function(*args)", pytrace=False)
    assert isinstance(graph, tf.Graph), (
        f"graph_of should return a tf.Graph (the concrete function's .graph), got {type(graph).__name__}"
    )
    names = [op.name for op in graph.get_operations()]
    assert "my_square" in names, f"the graph of square(x) should hold the op my_square, it holds {names}"
    x = graph.inputs[0]
    assert x.shape.as_list() == [2], f"graph_of must trace for the given arguments (shape [2]), got {x.shape}"
    assert graph is square.get_concrete_function(tf.constant([1.0, 2.0])).graph, (
        "graph_of: the graph is not the one square itself traced (a graph of its own trace for these arguments): "
        "ask fn itself, fn.get_concrete_function(*args).graph; a new tf.function(fn.python_function) or "
        "tf.function(fn) traces a separate copy, which fn never runs"
    )


@pytest.mark.covers("graph_of")
@pytest.mark.restraint
def test_graph_of_runs_nothing():
    runs = tf.Variable(0)

    @tf.function
    def counted(x):
        runs.assign_add(1)  # runs when the graph runs, not while it is traced
        return 2.0 * x

    n01.graph_of(counted, tf.constant([1.0, 2.0]))
    assert int(runs.numpy()) == 0, (
        f"graph_of ran fn {int(runs.numpy())} time(s): it only traces, fn.get_concrete_function(*args).graph, "
        "without calling fn (a call runs the graph)"
    )


@pytest.mark.covers("make_traced_double")
def test_side_effect_runs_once_per_trace():
    log = []
    double = n01.make_traced_double(log)
    assert _is_tf_function(double), f"make_traced_double should return a tf.function, got {type(double).__name__}"
    results = [float(double(tf.constant(v)).numpy()) for v in (1.0, 2.0, 3.0)]
    assert results == [2.0, 4.0, 6.0], f"double(x) should return 2x, got {results} for 1, 2, 3"
    per_call = len(log) == 3 and "PyFunc" in "".join(_op_types(double.get_concrete_function(tf.constant(1.0)).graph))
    assert len(log) == 1, (
        f"make_traced_double: three calls with float32 scalars should trace once, so the Python append runs once; log has "
        f"{len(log)} entries: "
        + ("it traced once, yet the append ran at every call (a tf.py_function or tf.numpy_function runs at each "
           "call): call log.append(x) plainly in the body, so it runs only while tracing" if per_call else
           "append inside the @tf.function body, not around it")
    )
    assert isinstance(log[0], tf.Tensor) and not isinstance(log[0], type(tf.constant(0.0))), (
        f"during tracing x is a symbolic tensor; the log holds {log[0]!r}: log x itself, inside the body"
    )
    op = getattr(log[0], "op", None)
    assert op is not None and op.type == "Placeholder", (
        f"make_traced_double: append x itself, the argument (during tracing a Placeholder tensor), not a value "
        f"computed from it: the log holds {getattr(log[0], 'name', log[0])!r}, made by a {getattr(op, 'type', '?')} op"
    )
    double(tf.constant([1.0, 2.0]))
    double(tf.constant([3.0, 4.0, -5.0]))
    shapes = [t.shape.as_list() if t.shape.rank is not None else "<unknown rank>" for t in log if hasattr(t, "shape")]
    traced = getattr(double, "experimental_get_tracing_count", lambda: None)()
    if len(log) == 1 and traced == 3 and shapes == [[]]:
        fix = ("it traced 3 times, yet appended only at the first trace: append x at every trace, with no condition "
               "around log.append(x)")
    elif len(log) == 1 and traced == 3:
        fix = ("it traced 3 times and the list holds only the last trace's x: append to it, without clearing or "
               "replacing what it held")
    else:
        fix = ("use a plain @tf.function, without reduce_retracing=True or an input_signature (they relax the traced "
               "shape, so a new shape no longer traces)")
    assert len(log) == 3 and shapes == [[], [2], [3]], (
        f"make_traced_double: after the scalars, float32 vectors of lengths 2 and 3 should trace once each (one trace per "
        f"new shape), so log should hold 3 entries of shapes [], [2], [3]; it holds {len(log)} of shapes {shapes}: {fix}"
    )


@pytest.mark.covers("make_traced_double")
def test_make_traced_double_appends_to_the_callers_list():
    log = ["already there"]
    double = n01.make_traced_double(log)
    double(tf.constant(1.0))
    assert log[:1] == ["already there"] and len(log) == 2, (
        f"make_traced_double: the caller's list held ['already there']; after one call it holds {len(log)} entries "
        f"starting {log[:1]!r}: append to the list you are given, without clearing or replacing what it held")


@pytest.mark.covers("make_traced_double")
def test_double_keeps_the_dtype_of_x():
    """2 * x has x's dtype: an int32 stays int32, a float64 stays float64 (no cast to float32)."""
    double = n01.make_traced_double([])
    for value, dtype in ((3, tf.int32), (1.5, tf.float64), (-2, tf.int64)):
        try:
            got = double(tf.constant(value, dtype))
        except (TypeError, ValueError) as exc:
            pytest.fail(f"make_traced_double: double(tf.constant({value}, {dtype.name})) raised {type(exc).__name__} "
                        f"({str(exc).splitlines()[0][:90]}): a float literal cannot multiply an {dtype.name} tensor; "
                        f"return 2 * x, which works for every dtype")
        assert got.dtype == dtype and float(got.numpy()) == 2 * value, (
            f"make_traced_double: double(tf.constant({value}, {dtype.name})) should be {2 * value} as {dtype.name} "
            f"(2 * x keeps x's dtype), got {got.numpy()!r} as {got.dtype.name}: return 2 * x, without a cast"
        )


@pytest.mark.covers("call_with_tensors")
def test_call_with_tensors_calls_fn_again_on_every_call():
    first = n01.call_with_tensors(tf.function(lambda x: 3 * x), [1.0, 2.0])
    again = n01.call_with_tensors(tf.function(lambda x: x - 10), [1.0, 2.0])
    got = [float(np.asarray(r)) for r in again]
    kept = got == [float(np.asarray(r)) for r in first]
    assert got == [-9.0, -8.0], (
        f"call_with_tensors: a second call, with fn = x - 10 on [1.0, 2.0], gave {got}, expected [-9.0, -8.0]"
        + (": the first call's results (fn was 3 * x) came back: keep no results between calls (no cache or "
           "module-level dict); call fn on every value, every time" if kept else
           ": call fn(tf.constant(v, dtype=tf.float32)) for each v, in order")
    )


@pytest.mark.covers("call_with_tensors")
def test_call_with_tensors_traces_once():
    traces, calls, nested = [], tf.Variable(0), []

    @tf.function
    def triple(x):
        traces.append(x)
        # traced from inside another tf.function, the graph around this trace is a FuncGraph (eagerly: a Graph)
        nested.append(type(getattr(tf.compat.v1.get_default_graph(), "outer_graph", None)).__name__ == "FuncGraph")
        calls.assign_add(1)  # runs at every call (the append only while tracing)
        return 3 * x

    results = n01.call_with_tensors(triple, [1, 2.5, 4.0, -1.0])
    assert isinstance(results, list), (
        f"call_with_tensors should return a list of the results, got {type(results).__name__}"
        + (" (a lazy iterator: build the list, [fn(...) for v in values] or list(map(...)))"
           if not isinstance(results, (tuple, dict, str)) and hasattr(results, "__next__") else "")
    )
    got = [float(np.asarray(r)) for r in results]
    assert got == [3.0, 7.5, 12.0, -3.0], (
        f"call_with_tensors(triple, [1, 2.5, 4.0, -1.0]): expected the results 3*v in the order of values, "
        f"[3.0, 7.5, 12.0, -3.0], got {got}" + (": call fn on the values as given (no sorting)"
                                                  if sorted(got) == [-3.0, 3.0, 7.5, 12.0] else "")
    )
    assert not any(nested), (
        "call_with_tensors called fn from inside a tf.function of its own (a wrapper, traced again for every value): "
        "call fn itself, fn(tf.constant(v, dtype=tf.float32)), eagerly, for each v"
    )
    assert len(traces) == 1, (
        f"call_with_tensors traced {len(traces)} times for 4 values: pass each one as a float32 tensor "
        "(tf.constant(v, dtype=tf.float32)); a Python number, or an int tensor beside float ones, retraces"
    )
    dtype = getattr(traces[0], "dtype", None)
    assert dtype == tf.float32, (
        f"call_with_tensors passed fn {tf.as_dtype(dtype).name if dtype is not None else type(traces[0]).__name__} "
        "tensors; the docstring asks for float32 ones: make each value with tf.constant(v, dtype=tf.float32) "
        "(not float64, float16 or an int dtype)"
    )
    kinds = sorted({type(r).__name__ for r in results})
    assert all(isinstance(r, tf.Tensor) for r in results), (
        f"call_with_tensors should return what fn returned (tf.Tensors), got {', '.join(kinds)}: no .numpy() or float()"
    )
    assert int(calls.numpy()) == 4, (
        f"call_with_tensors called fn {int(calls.numpy())} times for 4 values: call it ONCE per value and keep what "
        "that call returned"
    )


@pytest.mark.covers("make_vector_sum")
def test_vector_sum_one_trace_for_every_length():
    vector_sum = n01.make_vector_sum()
    for n in (1, 2, 3, 4, 5, 0):  # 0: the empty vector, whose sum is 0.0
        try:
            result = vector_sum(tf.range(n, dtype=tf.float32))
        except (TypeError, ValueError) as exc:
            result = exc
        except tf.errors.OpError as exc:
            pytest.fail(f"make_vector_sum: vector_sum(range({n})) raised {type(exc).__name__} "
                        f"({str(exc).splitlines()[0][:100]})"
                        + (" on the EMPTY vector (length 0): a sum of nothing is 0.0; sum without indexing x "
                           "(no x[0] or x[1:]): tf.reduce_sum(x)" if n == 0 else
                           f": the vector has length {n}; tf.reduce_sum(x) works for every length"), pytrace=False)
        assert not isinstance(result, Exception), (
            f"vector_sum refused a float32 vector of length {n}: the signature's shape must be [None] "
            f"(any length), not a fixed length ({type(result).__name__}: {str(result).splitlines()[0][:120]})"
        )
        assert result.shape == [], (
            f"vector_sum(range({n})) should be a scalar (shape []), got shape {result.shape.as_list()}: "
            "reduce over every axis, without keepdims"
        )
        got = float(result.numpy())
        if n == 0 and got != 0.0:
            pytest.fail(f"make_vector_sum: vector_sum of the empty vector should be 0.0 (a sum of nothing), got {got}"
                        + (" (NaN: a mean times the length is 0 / 0 there)" if np.isnan(got) else "")
                        + ": return tf.reduce_sum(x), which is 0.0 for an empty vector", pytrace=False)
        assert got == n * (n - 1) / 2, f"make_vector_sum: vector_sum(range({n})) should be {n * (n - 1) / 2}, got {got}"
    count = vector_sum.experimental_get_tracing_count()
    assert count == 1, (
        f"make_vector_sum: vector_sum traced {count} times for six lengths: declare "
        "input_signature=[tf.TensorSpec([None], tf.float32)] so that one trace serves every length"
    )


@pytest.mark.covers("make_vector_sum")
def test_vector_sum_refuses_what_the_signature_does_not_allow():
    vector_sum = n01.make_vector_sum()
    # refusing is only half of it (None(x) raises a TypeError too): a float32 vector is summed
    assert callable(vector_sum), f"make_vector_sum should return the tf.function vector_sum, got {type(vector_sum).__name__}"
    for bad, what in ((tf.zeros([2, 3]), "a [2, 3] matrix"), (tf.constant([1, 2], tf.int32), "an int32 vector")):
        try:
            vector_sum(bad)
        except (TypeError, ValueError):
            continue
        pytest.fail(
            f"vector_sum accepted {what}: declare input_signature=[tf.TensorSpec([None], tf.float32)] "
            "so that anything else is refused instead of traced"
        )


@pytest.mark.covers("make_collatz_steps")
def test_collatz_steps_values():
    collatz_steps = n01.make_collatz_steps()
    # 77031 takes 350 steps and 1676703 takes 494 (the most below 3 million whose values stay in int32): a loop
    # with a bound (a cap of 200, 256, 300, ...) cuts them short
    dtype = tf.as_dtype(collatz_steps(tf.constant(1, tf.int32)).dtype).name
    assert dtype == "int32", (
        f"make_collatz_steps: collatz_steps should return an int32 scalar, got {dtype}: count the steps in an int32 "
        "tensor (tf.constant(0) is int32; no dtype=tf.int64)"
    )
    for n in (1, 2, 3, 6, 7, 27, 97, 77031, 1676703):
        got = int(collatz_steps(tf.constant(n, tf.int32)).numpy())
        if n > 1000 and got < _collatz(n):
            pytest.fail(f"make_collatz_steps: collatz_steps({n}) should be {_collatz(n)} steps, got {got} (the smaller n were "
                        "right): the loop stops early; loop `while n != 1` with no bound on the number of steps "
                        "(no tf.range(cap), no maximum_iterations)", pytrace=False)
        if got != _collatz(n):
            types = _op_types(collatz_steps.get_concrete_function(tf.TensorSpec([], tf.int32)).graph)
            assert types & {"While", "StatelessWhile"}, (
                f"make_collatz_steps: collatz_steps({n}) should be {_collatz(n)}, got {got}, and the graph has no "
                "While op: a Python for loop over range(...) is unrolled while tracing; loop with `while n != 1` "
                "on the tensor so AutoGraph makes a tf.while_loop"
            )
        assert got == _collatz(n), f"make_collatz_steps: collatz_steps({n}) should be {_collatz(n)}, got {got}"


@pytest.mark.covers("make_collatz_steps")
def test_collatz_steps_one_trace_with_while_and_if():
    collatz_steps = n01.make_collatz_steps()
    for n in (6, 27, 97):
        collatz_steps(n)  # Python ints: the input_signature turns them into int32 tensors
    count = collatz_steps.experimental_get_tracing_count()
    assert count == 1, (
        f"make_collatz_steps: three Python ints traced {count} graphs: declare input_signature=[tf.TensorSpec([], tf.int32)]"
    )
    types = _op_types(collatz_steps.get_concrete_function().graph)
    assert types & {"While", "StatelessWhile"}, (
        f"no While op in the graph (op types {sorted(types)}): loop with `while n != 1` on the tensor, "
        "so AutoGraph makes a tf.while_loop"
    )
    assert types & {"If", "StatelessIf"}, (
        f"no If op in the graph (op types {sorted(types)}): branch with `if n % 2 == 0` on the tensor, "
        "so AutoGraph makes a tf.cond"
    )


# --------------------------------------------------------------------------- equivalence with k01
def _k01_constants():
    """Names and values of the learner's k01.name_constants in a fresh TF 1 graph."""
    with fresh_graph():
        tensors = k01.name_constants()
        with tf.compat.v1.Session() as sess:
            values = sess.run(list(tensors))
    return [t.op.name for t in tensors], [float(v) for v in values]


def _compare_constants(fn, k_names, k_values):
    """None when the traced constants of ``fn`` match k01's; otherwise one line naming the mapping."""
    graph = fn.get_concrete_function().graph
    names = [op.name for op in graph.get_operations() if op.type == "Const"]
    values = [float(t.numpy()) for t in fn()]
    if names != k_names or values != k_values:
        return (
            f"port k01.name_constants -> tf.function: k01's graph has constants {k_names} = {k_values}, "
            f"the tf.function's graph has {names} = {values}; the same constants in the same order "
            "with the same name= arguments give the same names"
        )
    return None


@pytest.mark.needs("k01")
@pytest.mark.covers("constants_function", "graph_of")
def test_same_names_and_values_as_k01():
    k_names, k_values = _k01_constants()
    fn = n01.constants_function()
    message = _compare_constants(fn, k_names, k_values)
    assert message is None, message
    try:
        graph = n01.graph_of(fn)
    except (IndexError, TypeError) as exc:
        pytest.fail(f"graph_of(fn) for a function of no arguments failed ({type(exc).__name__}: {exc}): trace with "
                    "the arguments as given, however many: fn.get_concrete_function(*args)", pytrace=False)
    for name in k_names:
        graph.get_operation_by_name(name)  # the same lookup works in the FuncGraph
    print(f"k01 and n01 constants: {k_names} = {k_values}, max |n - k| = 0.0")


@pytest.mark.needs("k01")
@pytest.mark.covers("eager_add")
def test_eager_add_equals_k01_session_run():
    with fresh_graph():
        tensors = k01.define_add()
        with tf.compat.v1.Session() as sess:
            k_values = sess.run(list(tensors))
    n_values = [t.numpy() for t in n01.eager_add()]
    diff = max(abs(float(n) - float(k)) for n, k in zip(n_values, k_values))
    print(f"eager_add vs k01.define_add + Session.run: max |n - k| = {diff}")
    assert diff == 0.0, f"eager_add gives {n_values}, k01 with a session gives {k_values}: the same sum a + b"


@pytest.mark.needs("k01")
@pytest.mark.covers("constants_function")
def test_wrong_port_of_k01_is_rejected():
    # The comparison above must be able to fail: a port that names the wrong constant is caught.
    k_names, k_values = _k01_constants()
    message = _compare_constants(n01.constants_function(), k_names, k_values)
    assert message is None, message  # the learner's port is accepted ...

    @tf.function
    def wrong():  # ... and a wrong one is not
        return tf.constant(1.0, name="variable_b"), tf.constant(2.0), tf.constant(3.0)

    message = _compare_constants(wrong, k_names, k_values)
    assert message is not None and "k01.name_constants -> tf.function" in message, (
        f"the equivalence check accepted a port that names the first constant variable_b: {message}"
    )


# --------------------------------------------------------------------------- differential checks (reference)
# The learner's function against solutions/ on generated cases, smallest first (tfkata.differential).
# What a tf.function "determines" here is what it returns and how often it traces, not object identity.
from tfkata.differential import Case, compare, eager_outputs, reference  # noqa: E402


def _spec(t):
    """``float32[2, 3]`` for a tensor (symbolic or eager); the type's name for anything else."""
    if hasattr(t, "dtype") and hasattr(t, "shape"):
        dims = "<unknown rank>" if t.shape.rank is None else str([d for d in t.shape.as_list()]).replace("None", "?")
        return f"{tf.as_dtype(t.dtype).name}{dims}"
    return type(t).__name__


def _graph_of_case(case):
    if case.args == "two":
        @tf.function
        def fn(x, n):
            return tf.multiply(x, tf.cast(n, tf.float32), name="scaled")
        return fn, (tf.constant([1.0, -2.0, 3.0]), tf.constant(4, tf.int32))

    @tf.function
    def fn(x):
        return tf.square(x, name="my_square")
    return fn, case.args


def _run_graph_of(mod, case):
    fn, args = _graph_of_case(case)
    graph = mod.graph_of(fn, *args)
    return {"inputs": [_spec(t) for t in graph.inputs],
            "ops": [f"{op.name}:{op.type}" for op in graph.get_operations()]}


GRAPH_OF_CASES = [
    Case("square(x) traced for a float32 scalar x", (tf.constant(2.0),)),
    Case("square(x) traced for a float32 x of shape [2, 3]", (tf.zeros([2, 3]),)),
    Case("square(x) traced for tf.TensorSpec([None, 4], tf.float32) (a spec, no value)",
         (tf.TensorSpec([None, 4], tf.float32),)),
    Case("fn(x, n) of two arguments, x float32 [3] and n int32 []", "two"),
]


@pytest.mark.differential
@pytest.mark.covers("graph_of")
def test_graph_of_matches_reference():
    compare("graph_of", n01, reference("n01"), GRAPH_OF_CASES, _run_graph_of,
            hint="return fn.get_concrete_function(*args).graph: every argument, as given")


def _run_traced_double(mod, case):
    log = []
    double = mod.make_traced_double(log)
    results = eager_outputs(lambda: [double(v) for v in case.args], keras=False)
    return {"results": results, "log entries (one per trace)": [_spec(t) for t in log]}


TRACED_DOUBLE_CASES = [
    Case("one call with the float32 scalar 1.0", [tf.constant(1.0)]),
    Case("float32 scalars 1.0, -2.5, 1.0", [tf.constant(1.0), tf.constant(-2.5), tf.constant(1.0)]),
    Case("a float32 scalar, then float32 vectors of lengths 2 and 3",
         [tf.constant(1.0), tf.constant([1.0, -2.0]), tf.constant([3.0, 4.0, -5.0])]),
    Case("an int32 scalar 4, then a float32 [2, 3] matrix",
         [tf.constant(4, tf.int32), tf.constant([[1.0, 2.0, 3.0], [-4.0, 5.0, 6.0]])]),
]


@pytest.mark.differential
@pytest.mark.covers("make_traced_double")
def test_make_traced_double_matches_reference():
    compare("make_traced_double", n01, reference("n01"), TRACED_DOUBLE_CASES, _run_traced_double,
            hint="a plain @tf.function whose body appends x and returns 2 * x (any dtype; one trace per new shape or dtype)")


def _run_call_with_tensors(mod, case):
    traces = []

    @tf.function
    def square(x):
        traces.append(1)
        return x * x

    results = mod.call_with_tensors(square, list(case.args))
    return {"results": eager_outputs(lambda: list(results), keras=False),
            "dtypes": [_spec(tf.convert_to_tensor(r)) for r in results], "traces": len(traces)}


CALL_WITH_TENSORS_CASES = [
    Case("no values []", []),
    Case("one value [5]", [5]),
    Case("ints only [1, 2, 3]", [1, 2, 3]),
    Case("mixed and repeated [2, -0.5, 2, 3.25]", [2, -0.5, 2, 3.25]),
]


@pytest.mark.differential
@pytest.mark.covers("call_with_tensors")
def test_call_with_tensors_matches_reference():
    compare("call_with_tensors", n01, reference("n01"), CALL_WITH_TENSORS_CASES, _run_call_with_tensors,
            hint="call fn(tf.constant(v, dtype=tf.float32)) for each v, in order, and return the results")


def _run_vector_sum(mod, case):
    vector_sum = mod.make_vector_sum()
    sums = [vector_sum(tf.constant(v, tf.float32)) for v in case.args]
    values = eager_outputs(lambda: sums, keras=False)
    # NaN flags: tfkata.differential.difference treats NaN as equal to any number
    return {"sums": values, "NaN": [bool(np.isnan(v).any()) for v in values], "dtypes": [_spec(s) for s in sums],
            "traces": vector_sum.experimental_get_tracing_count()}


VECTOR_SUM_CASES = [
    Case("one vector of length 1, [-1.5]", [[-1.5]]),
    Case("an empty vector [], then [2.0, -3.0, 0.25]", [[], [2.0, -3.0, 0.25]]),
    Case("vectors of lengths 4, 1, 4 with negative values",
         [[1.0, -2.0, 3.0, -4.0], [7.0], [0.5, 0.5, -0.5, -0.5]]),
]


@pytest.mark.differential
@pytest.mark.covers("make_vector_sum")
def test_make_vector_sum_matches_reference():
    compare("make_vector_sum", n01, reference("n01"), VECTOR_SUM_CASES, _run_vector_sum,
            hint="return tf.reduce_sum(x): a float32 scalar (shape []), one trace for every length")


def _run_collatz(mod, case):
    collatz_steps = mod.make_collatz_steps()
    steps = [collatz_steps(tf.constant(n, tf.int32)) for n in case.args]
    return {"steps": eager_outputs(lambda: steps, keras=False), "dtypes": [_spec(s) for s in steps],
            "traces": collatz_steps.experimental_get_tracing_count()}


COLLATZ_CASES = [
    Case("n = 1 (no step)", [1]),
    Case("n = 2, 3, 4, 5", [2, 3, 4, 5]),
    Case("n = 871 (178 steps) and 77031 (350 steps)", [871, 77031]),
]


@pytest.mark.differential
@pytest.mark.covers("make_collatz_steps")
def test_make_collatz_steps_matches_reference():
    compare("make_collatz_steps", n01, reference("n01"), COLLATZ_CASES, _run_collatz,
            hint="loop `while n != 1` with no bound on the number of steps; count one step per update")
