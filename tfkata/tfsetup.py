"""TensorFlow setup that must happen before TensorFlow is first imported.

* Log noise: ``TF_CPP_MIN_LOG_LEVEL=3`` hides the C++ INFO/WARNING/ERROR lines (the CUDA probe on a
  CPU machine logs an ERROR), the TF python logger and absl go to ERROR. Some lines are written by
  the C++ side before its logging is initialised and ignore that variable (measured on 2.19/2.21:
  "All log messages before absl::InitializeLog() ...", "cudart_stub ... Could not find cuda
  drivers"): :func:`import_tensorflow` filters those few known lines out of stderr while importing.
* Keras 3: from TensorFlow 2.16 on, ``tf.compat.v1.nn.rnn_cell`` and ``tf.compat.v1.layers`` only
  work with the ``tf_keras`` package installed *and* ``TF_USE_LEGACY_KERAS=1`` set before the first
  import. :func:`configure_env` sets it whenever tf_keras is installed.

Every variable is only set when the user has not set it already.
"""
from __future__ import annotations

import gc
import importlib.util
import os
import re
import sys
import tempfile
import warnings

SEED = 1234

# Lines the C++ runtime prints during import whatever TF_CPP_MIN_LOG_LEVEL says (measured 2.12-2.21).
_NOISE = re.compile(
    r"All log messages before absl::InitializeLog"
    r"|cudart_stub\.cc|cuda_platform\.cc|cuda_dnn\.cc|cuda_fft\.cc|cuda_blas\.cc|cuda_executor\.cc"
    r"|cpu_feature_guard\.cc|To enable the following instructions"
    r"|oneDNN custom operations are on|TF-TRT Warning|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered|disable_resource_variables"
    r"|mlir_graph_optimization_pass\.cc"
)

# Python warnings TensorFlow emits for the tf.compat.v1 API this tutorial teaches on purpose.
WARNING_FILTERS = [
    r"ignore:.*is deprecated and will be removed.*",
    r"ignore::DeprecationWarning:tensorflow.*",
    r"ignore::DeprecationWarning:tf_keras.*",
    r"ignore::DeprecationWarning:keras.*",
    r"ignore::DeprecationWarning:flatbuffers.*",
    r"ignore::DeprecationWarning:google.*",
    r"ignore::UserWarning:tensorflow.*",
    r"ignore::UserWarning:tf_keras.*",
    r"ignore::FutureWarning:tensorflow.*",
    r"ignore:non-integer arguments to randrange:DeprecationWarning",  # Keras 2.12's unseeded initializers
]


def configure_env() -> None:
    """Set the environment TensorFlow reads at import time (only what the user has not set)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if importlib.util.find_spec("tf_keras") is not None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    for spec in WARNING_FILTERS:
        action, message, category, module = (spec.split(":") + ["", "", ""])[:4]
        warnings.filterwarnings(
            action,
            message=message,
            category=getattr(__import__("builtins"), category) if category else Warning,
            module=module,
        )


def _first_session_run(tf) -> None:
    """Run one tiny graph: TF 2.16-2.19 print "All log messages before absl::InitializeLog()" and
    an "MLIR V1 optimization pass is not enabled" INFO line at the first session run, whatever
    TF_CPP_MIN_LOG_LEVEL says (measured); done inside the quiet window, they are filtered."""
    graph = tf.Graph()
    with graph.as_default():
        value = tf.constant(1.0) + 1.0
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(value)


def import_tensorflow(warm_up: bool = False):
    """Import TensorFlow quietly (see the module docstring) and return the module. ``warm_up`` also
    runs one tiny session inside the quiet window (for scripts: see :func:`_first_session_run`)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    configure_env()
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (some IDE consoles): import as it is
        saved = None
    if saved is None:
        import tensorflow as tf
    else:
        with tempfile.TemporaryFile(mode="w+b") as tmp:
            sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
            try:
                import tensorflow as tf

                if warm_up:
                    _first_session_run(tf)
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                kept = [
                    line
                    for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not _NOISE.search(line)
                ]
                if kept:
                    sys.stderr.write("".join(kept))
    tf.get_logger().setLevel("ERROR")
    # TensorFlow's import leaves about 270,000 long-lived objects (2.21) that every full garbage
    # collection walked again, during the tests, twice at pytest's end and once at exit: about 1.5 s
    # of CPU in a learner's first ``pytest`` (measured). Frozen, the collector skips them.
    gc.freeze()
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl always comes with TensorFlow
        pass
    return tf


def tf_version() -> tuple[int, int]:
    tf = import_tensorflow()
    major, minor = tf.__version__.split(".")[:2]
    return int(major), int(minor)


class LegacyKerasMissing(RuntimeError):
    """tf.compat.v1.nn.rnn_cell is unusable: Keras 3 without tf_keras / TF_USE_LEGACY_KERAS."""


def require_legacy_rnn() -> None:
    """Fail with one clear sentence when ``tf.compat.v1.nn.rnn_cell`` cannot work here.

    TensorFlow < 2.16 ships Keras 2 and needs nothing. From 2.16 on the cells need the
    ``tf_keras`` package of the same minor version and ``TF_USE_LEGACY_KERAS=1`` set before
    TensorFlow's first import (this harness sets it whenever tf_keras is installed).
    """
    major, minor = tf_version()
    if (major, minor) < (2, 16):
        return
    line = f"{major}.{minor}"
    fix = (
        f"pip install 'tf_keras=={line}.*' (or: pip install -e '.[tf{major}{minor}]'), "
        "then run again"
    )
    if importlib.util.find_spec("tf_keras") is None:
        raise LegacyKerasMissing(
            f"TensorFlow {line} uses Keras 3, where tf.compat.v1.nn.rnn_cell does not exist; "
            f"the tutorial's RNN API needs the tf_keras package: {fix}."
        )
    if os.environ.get("TF_USE_LEGACY_KERAS") not in ("1", "true", "True"):
        raise LegacyKerasMissing(
            f"tf_keras is installed but TF_USE_LEGACY_KERAS is {os.environ.get('TF_USE_LEGACY_KERAS')!r}: "
            "set TF_USE_LEGACY_KERAS=1 before TensorFlow is imported (the harness does this unless "
            "you set it yourself)."
        )


def gpu_devices() -> list:
    return import_tensorflow().config.list_physical_devices("GPU")
