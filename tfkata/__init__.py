"""tf-katas harness: target switching, kata loading, TensorFlow setup, data and the `kata` command.

Learners never edit this package: they edit ``katas/``.
"""
_EXPORTS = {
    "SEED": "tfkata.tfsetup",
    "fresh_graph": "tfkata.loader",
    "load_kata": "tfkata.loader",
    "repo_root": "tfkata.paths",
    "target": "tfkata.loader",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):  # lazy, so `python -m tfkata.<module>` does not import its own module twice
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfkata' has no attribute {name!r}")
