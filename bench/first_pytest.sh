#!/bin/bash
# The first `pytest` on a fresh clone, old against new: for each checkout given, 3 rounds, alternating,
# `git clean -fdx` (no caches, no .tfkata) then `python -m pytest`; prints wall and CPU seconds.
#   PYTHON=.venv/bin/python bench/first_pytest.sh /tmp/old-clone /tmp/new-clone
PYTHON=${PYTHON:-python}
for round in 1 2 3; do
  for dir in "$@"; do
    (cd "$dir" && git clean -qfdx && /usr/bin/time -f "$dir round $round: %e s wall, %U+%S s CPU" \
      "$PYTHON" -m pytest -q -p no:cacheprovider > /dev/null 2> >(tail -1 >&2))
  done
done
