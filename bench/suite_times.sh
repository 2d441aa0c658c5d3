#!/usr/bin/env bash
# Wall time of `pytest --solutions` per TensorFlow line, from existing virtual environments.
# usage: bench/suite_times.sh VENV_DIR...   (each VENV_DIR has the project installed, e.g. tox's .tox/tf212)
set -u
cd "$(dirname "$0")/.."
for venv in "$@"; do
    out=$(mktemp)
    start=$(date +%s.%N)
    "$venv/bin/pytest" --solutions -q -p no:cacheprovider --results-json "$out" >/dev/null 2>&1
    rc=$?
    end=$(date +%s.%N)
    "$venv/bin/python" - "$out" "$venv" "$rc" "$start" "$end" <<'PY'
import sys
from tfkata.results import Run
run = Run.load(sys.argv[1])
wall = float(sys.argv[5]) - float(sys.argv[4])
per = ", ".join(f"{k.id} {k.duration:.0f}s" for k in run.katas)
harness = sum(t.duration for t in run.tests if t.kata is None)
print(f"{sys.argv[2]}: TF {run.tensorflow}, exit {sys.argv[3]}, wall {wall:.0f} s; {per}; harness {harness:.0f}s")
PY
    rm -f "$out"
done
