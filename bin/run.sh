#!/usr/bin/env bash
# The shared test-runner contract (Exercism's interface v3): bin/run.sh SLUG INPUT_DIR OUTPUT_DIR
# grades INPUT_DIR's kata file for kata SLUG and writes OUTPUT_DIR/results.json (tfkata/grading/exercism.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m tfkata.grading.exercism "$@"
