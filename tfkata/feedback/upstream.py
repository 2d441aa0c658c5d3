"""Which failing function a knock-on failure is likely due to (one rule, used by ``kata run``'s report and by
the plugin's waiting line)."""
from __future__ import annotations


def failing_upstream(test, problems, seen: set | None = None, calls: dict[str, set[str]] | None = None) -> str | None:
    """A function ``test`` covers or uses besides its own that fails a test of its own which does not
    involve ``test``'s function: the likely cause of a knock-on failure (``count_parameters`` failing
    because ``Linear`` is wrong, ``sample_text`` because ``port_k05_weights`` built the model wrong), so
    that the line does not read as if ``test``'s function were wrong. The chain is followed to its root.
    ``calls`` (:func:`tfkata.source.callees` of the kata file) adds what those functions call in turn: a
    test of ``build_training_model`` involves ``lstm_cell``, which it calls."""
    calls = calls or {}

    def involved(t) -> list[str]:
        named = [*t.covers, *t.uses]
        return list(dict.fromkeys(named + [c for n in named for c in sorted(calls.get(n, ()))]))

    own = test.function
    seen = set() if seen is None else seen
    seen.add(own)
    for name in involved(test):
        if name in seen:
            continue
        failing = next((u for u in problems if u is not test and u.status in ("fail", "error") and u.function == name
                        and own not in involved(u)), None)
        if failing is not None:  # follow the chain: sample_text <- sample_step <- port_k05_weights
            return failing_upstream(failing, problems, seen, calls) or name
    return None
