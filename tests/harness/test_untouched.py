"""tfkata.untouched: a kata function that changes an array or list it was given fails, naming the argument."""
import numpy as np
import pytest

from tfkata import untouched


def _fails(function, *args, **kwargs) -> str:
    with pytest.raises(untouched.ChangedInPlace) as info:
        untouched.guarded(function)(*args, **kwargs)
    return str(info.value)


def test_an_array_changed_in_place_is_named_with_its_first_changed_element():
    def centre(x):
        x -= x.mean()
        return x

    line = _fails(centre, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert line.startswith("centre: changed its argument x in place (x[0, 0] was 0.0, now -2.5 (6 of 6"), line
    assert "x = x - m, not x -= m" in line


def test_a_list_sorted_or_grown_and_an_array_inside_a_tuple_or_dict_are_caught():
    def sort(lengths):
        lengths.sort()

    def grow(lengths):
        lengths.append(0)

    def inner(data):
        data[1]["y"][0] = 7

    assert "lengths[0] was 3, now 1" in _fails(sort, [3, 1, 2])
    assert "had 3 items, now 4" in _fails(grow, [3, 1, 2])
    assert "data[1]['y'][0] was 0, now 7" in _fails(inner, (np.ones(2), {"y": np.zeros(3, np.int32)}))


def test_a_maker_that_writes_the_list_its_returned_function_should_write_is_told_where_to_write():
    """make_traced_double(log) returns a function that appends to log; appending when it is made is not fixed
    by copying log (the caller must see the later appends), so the advice differs from a plain function's."""
    def make(log):
        log.append("made")
        return lambda x: 2 * x

    line = _fails(make, [])
    assert line.startswith("make: wrote to its argument log while making the function it returns (the list log had 0 "
                           "items, now 1)"), line
    assert "inside the returned function's body" in line and "copy it first" not in line


def test_a_shuffle_of_a_large_array_is_caught_by_its_checksum(monkeypatch):
    monkeypatch.setattr(untouched, "_COPY_LIMIT", 16)
    line = _fails(lambda x: np.random.default_rng(0).shuffle(x), np.arange(100.0))
    assert "x (shape [100]) has other values after the call" in line


def test_what_is_left_alone_passes_and_the_result_is_returned():
    def fine(x, lengths, *, scale=2.0):
        lengths = sorted(lengths)
        return x * scale + lengths[0]

    x = np.array([1.0, np.nan])
    got = untouched.guarded(fine)(x, [3, 1], scale=3.0)
    assert got[0] == 4.0 and np.isnan(got[1])  # NaN stays NaN: not a change


def test_an_except_exception_around_the_call_does_not_hide_it():
    def shuffle(x):
        np.random.default_rng(0).shuffle(x)

    with pytest.raises(untouched.ChangedInPlace):
        try:
            untouched.guarded(shuffle)(np.arange(5.0))
        except Exception:  # noqa: BLE001 - what many tests and learners write around a call
            pass


def test_a_function_that_raises_keeps_its_own_error():
    def broken(x):
        x[0] = 1
        raise ValueError("its own")

    with pytest.raises(ValueError, match="its own"):
        untouched.guarded(broken)(np.zeros(2))


def test_kata_functions_come_guarded_once():
    from tfkata.loader import load_kata

    k06 = load_kata("k06")
    fn = k06.top_output
    assert getattr(fn, untouched.MARK, False) and fn.__wrapped__.__module__ == fn.__module__
    assert k06.top_output is fn  # one guard per function, not one per access
