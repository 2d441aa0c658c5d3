"""tf-katas harness: target switching, kata loading, TensorFlow setup, data and the `kata` command.

Learners never edit this package: they edit ``katas/``.
"""
from tfkata.loader import fresh_graph, load_kata, repo_root, target
from tfkata.tfsetup import SEED

__all__ = ["SEED", "fresh_graph", "load_kata", "repo_root", "target"]
