"""Text corpora for the character language model kata (k05): text8, an offline corpus, a synthetic one.

The harness owns files, downloads and checksums; the kata owns what the slides teach (char ids,
batching, the LSTM). Three corpora, all lower-case ``a-z`` and single spaces, text8-style:

* **text8** (:func:`load_text8`): the tutorial's corpus, the first 10^8 bytes of an English Wikipedia
  dump, cleaned. ``text8.zip`` (31,344,016 bytes) comes from http://mattmahoney.net/dc/ into the
  cache folder (:func:`data_dir`), its size is checked before use, and the text is read straight
  from the zip, as the tutorial's ``maybe_download`` / ``read_data`` did. Offline, one sentence says
  which file to place where.
* **the offline corpus** (:func:`offline_corpus`): Python's own help texts (``pydoc_data.topics``,
  present in every CPython) cleaned the same way, about 376k characters on Python 3.11. The exact
  text changes a little between Python versions.
* **the synthetic corpus** (:func:`synthetic_chain`, :meth:`WordChain.generate`): text from a seeded
  word-level Markov chain whose per-character entropy rate, hence the lowest perplexity any model
  can reach on it, is known exactly (:attr:`WordChain.perplexity_floor`). A model that scores below
  it has seen its labels.

Nothing here uses the network unless :func:`text8_path` is asked to download, and tests pass it a
fake opener.
"""
from __future__ import annotations

import bisect
import contextlib
import math
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from tfkata.paths import DATA_DIR_ENV, download_dir

TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
TEXT8_FILE = "text8.zip"
TEXT8_BYTES = 31_344_016
VALID_SIZE = 1000  # the tutorial's validation split: the first 1000 characters

_NOT_TEXT8 = re.compile(r"[^a-z]+")
_CHUNK = 1 << 20


class DataUnavailable(RuntimeError):
    """A corpus file is missing or wrong; the message is one sentence naming the fix."""


# --------------------------------------------------------------------------- files and cache
def data_dir() -> Path:
    """Where downloaded data lives (tfkata.paths.download_dir): ``$KATA_DATA_DIR`` if set, else the
    per-user cache folder ``$XDG_CACHE_HOME/tf-katas`` (``~/.cache/tf-katas``). Not created here."""
    return download_dir()


def _place_hint(path: Path, expected_bytes: int, url: str) -> str:
    return (
        f"place {path.name} ({expected_bytes:,} bytes, from {url}) in {path.parent}, "
        f"or set {DATA_DIR_ENV} to a folder that holds it"
    )


def _download(url: str, path: Path, expected_bytes: int, opener, timeout: float) -> None:
    """Stream ``url`` into a temporary file next to ``path``; keep it only if its size is right."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with contextlib.closing(opener.open(url, timeout=timeout)) as response:
                    while True:
                        chunk = response.read(_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DataUnavailable(
                    f"could not download {url} ({reason}): {_place_hint(path, expected_bytes, url)}."
                ) from exc
        size = tmp.stat().st_size
        if size != expected_bytes:
            raise DataUnavailable(
                f"the download of {url} has {size:,} bytes, expected {expected_bytes:,} "
                f"(interrupted or changed upstream): try again, or {_place_hint(path, expected_bytes, url)}."
            )
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # never leave a partial file behind


def text8_path(
    directory: str | os.PathLike | None = None,
    *,
    download: bool = True,
    opener=None,
    url: str = TEXT8_URL,
    expected_bytes: int = TEXT8_BYTES,
    timeout: float = 60.0,
) -> Path:
    """The verified ``text8.zip``: found in ``directory`` (default :func:`data_dir`), else downloaded.

    ``opener`` is anything with ``open(url, timeout=...)`` returning a readable response
    (default ``urllib.request.build_opener()``); tests pass a fake one. A file whose size is not
    ``expected_bytes`` is never used: a cached one raises :class:`DataUnavailable` naming it, a
    download is deleted. With ``download=False`` a missing file raises at once.
    """
    folder = Path(directory).expanduser() if directory is not None else data_dir()
    path = folder / Path(url).name
    if path.exists():
        size = path.stat().st_size
        if size != expected_bytes:
            raise DataUnavailable(
                f"{path} has {size:,} bytes, expected {expected_bytes:,}: delete it and run again "
                f"(it will be downloaded), or {_place_hint(path, expected_bytes, url)}."
            )
        return path
    if not download:
        raise DataUnavailable(f"{path.name} is not in {folder}: {_place_hint(path, expected_bytes, url)}.")
    _download(url, path, expected_bytes, opener or urllib.request.build_opener(), timeout)
    return path


def read_zip_text(path: str | os.PathLike) -> str:
    """The text of the first member of a zip file, decoded as UTF-8 (the tutorial's ``read_data``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if not names:
                raise DataUnavailable(f"{path} is an empty zip: delete it and run again.")
            return archive.read(names[0]).decode("utf-8")
    except zipfile.BadZipFile as exc:
        raise DataUnavailable(f"{path} is not a valid zip file ({exc}): delete it and run again.") from exc


def load_text8(directory: str | os.PathLike | None = None, **kwargs) -> str:
    """The text8 corpus as one string (about 10^8 characters); see :func:`text8_path` for the options."""
    return read_zip_text(text8_path(directory, **kwargs))


# --------------------------------------------------------------------------- the offline corpus
def clean_text(text: str) -> str:
    """text8-style cleaning: lower case, every run of characters outside ``a-z`` becomes one space."""
    return _NOT_TEXT8.sub(" ", text.lower()).strip()


def offline_corpus() -> str:
    """Python's help topics (``pydoc_data.topics``) cleaned text8-style, in sorted topic order.

    About 376k characters on Python 3.11 (the help texts differ a little between Python versions).
    """
    try:
        from pydoc_data import topics
    except ImportError as exc:  # pragma: no cover - part of every CPython
        raise DataUnavailable(
            "this Python has no pydoc_data package (a stripped-down build?): use a full CPython "
            "installation for the offline corpus."
        ) from exc
    table = topics.topics
    return clean_text(" ".join(table[key] for key in sorted(table)))


def split_valid(text: str, valid_size: int = VALID_SIZE) -> tuple[str, str]:
    """``(valid_text, train_text)``: the first ``valid_size`` characters and the rest, as the tutorial."""
    if not 0 < valid_size < len(text):
        raise ValueError(f"valid_size must be between 1 and len(text) - 1 = {len(text) - 1}, got {valid_size}")
    return text[:valid_size], text[valid_size:]


# --------------------------------------------------------------------------- the synthetic corpus
# Short English words; several share prefixes (the/then/they, an/and/any, ...) so that the model has
# to spell, not only pick a first letter.
WORDS = (
    "the", "then", "they", "a", "an", "and", "any", "cat", "cats", "sat", "on", "one",
    "mat", "map", "dog", "dot", "ran", "red", "hat", "has", "to", "too", "it", "is",
)


class WordChain:
    """A stationary word-level Markov chain; its text is the words joined by single spaces.

    ``words``: the vocabulary (``a-z`` only, distinct); ``transitions[i, j]`` = P(next word j | word i),
    rows summing to 1; the chain must be irreducible and aperiodic (checked).

    **The entropy floor.** Let ``pi`` be the stationary distribution, ``h_w = -sum_i pi_i sum_j
    P_ij ln P_ij`` the entropy rate per *word* (nats), and ``l = sum_i pi_i (len(w_i) + 1)`` the
    expected number of *characters* per word, counting the space that follows it. The text of n words
    is a one-to-one function of the n words (words hold no spaces, so the spaces mark the word
    boundaries), so both carry the same information: H(text of n words) = H(W_1..W_n) = H(W_1) +
    (n - 1) h_w, while the text's length is about n l characters (law of large numbers for the
    ergodic chain). Dividing, the entropy rate per character is ``h_c = h_w / l`` nats
    (:attr:`entropy_rate`), and no predictor of the next character, whatever it conditions on, has
    an expected log-loss per character below it on long text; the lowest achievable perplexity is
    ``exp(h_c)`` (:attr:`perplexity_floor`). All of the uncertainty sits where the next word begins
    to differ from the others that can follow; the rest of a word and its space are certain.
    :meth:`logprob_per_char` is the chain's own (the best possible) log-loss on a given text.
    """

    def __init__(self, words, transitions):
        self.words = tuple(words)
        P = np.asarray(transitions, dtype=np.float64)
        n = len(self.words)
        if len(set(self.words)) != n or not all(w and _NOT_TEXT8.sub("", w) == w for w in self.words):
            raise ValueError("words must be distinct, non-empty and made of a-z only")
        if P.shape != (n, n) or (P < 0).any() or not np.allclose(P.sum(axis=1), 1.0):
            raise ValueError(f"transitions must be a [{n}, {n}] matrix of probabilities whose rows sum to 1")
        if not (np.linalg.matrix_power(P > 0, n * n).astype(bool)).all():
            # (P>0)^k > 0 for some k (k <= n^2 - 2n + 2 suffices) <=> irreducible and aperiodic
            raise ValueError("the chain must be irreducible and aperiodic (some power of P all positive)")
        self.transitions = P
        self.index = {w: i for i, w in enumerate(self.words)}
        values, vectors = np.linalg.eig(P.T)
        pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
        self.stationary = pi / pi.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            row_entropy = -np.where(P > 0, P * np.log(np.where(P > 0, P, 1.0)), 0.0).sum(axis=1)
        self.entropy_per_word = float(self.stationary @ row_entropy)
        lengths = np.array([len(w) + 1 for w in self.words], dtype=np.float64)
        self.chars_per_word = float(self.stationary @ lengths)

    @property
    def entropy_rate(self) -> float:
        """Entropy rate per character, in nats: ``entropy_per_word / chars_per_word``."""
        return self.entropy_per_word / self.chars_per_word

    @property
    def perplexity_floor(self) -> float:
        """``exp(entropy_rate)``: the lowest per-character perplexity any model can have on this text."""
        return math.exp(self.entropy_rate)

    def generate(self, num_chars: int, seed: int = 0) -> str:
        """``num_chars`` characters of text: a stationary start (word drawn from ``pi``), then the chain.

        Words are joined by single spaces; the text is cut at ``num_chars`` (maybe inside a word).
        Deterministic for a given seed.
        """
        if num_chars <= 0:
            raise ValueError(f"num_chars must be positive, got {num_chars}")
        rng = np.random.RandomState(seed)
        cumulative = [list(row) for row in np.cumsum(self.transitions, axis=1)]
        last = len(self.words) - 1
        lengths = [len(w) + 1 for w in self.words]
        state = int(rng.choice(len(self.words), p=self.stationary))
        ids, total = [], 0
        while total < num_chars:
            for r in rng.random_sample(int((num_chars - total) / self.chars_per_word) + 16).tolist():
                ids.append(state)
                total += lengths[state]
                state = min(bisect.bisect_right(cumulative[state], r), last)
                if total >= num_chars:
                    break
        parts = [self.words[i] for i in ids]
        return (" ".join(parts) + " ")[:num_chars]

    def logprob_per_char(self, text: str) -> float:
        """The chain's own mean log-loss per character (nats) on ``text`` from :meth:`generate`.

        Counts ``-ln pi(first word) - sum ln P(next | previous)`` over the complete words after the
        first, divided by the number of characters those words and their spaces take; a ragged end is
        ignored. On long text it approaches :attr:`entropy_rate`.
        """
        words = text.split(" ")
        if len(words) < 3:
            raise ValueError("need at least three words of text")
        complete = words[:-1]  # the last one may be cut
        try:
            ids = [self.index[w] for w in complete]
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]!r} is not a word of this chain") from exc
        nats = -math.log(self.stationary[ids[0]])
        nats -= float(np.sum(np.log(self.transitions[ids[:-1], ids[1:]])))
        chars = sum(len(w) + 1 for w in complete)
        return nats / chars


def synthetic_chain(seed: int = 0, successors: int = 4) -> WordChain:
    """The kata's synthetic chain over :data:`WORDS`: each word has ``successors`` possible next words.

    The successors of each word (its follower on one random cycle through all the words, which makes
    the chain irreducible, plus ``successors - 1`` others) and their probabilities (Dirichlet(1)) come
    from ``np.random.RandomState(seed)``; a chain that is not aperiodic as well is an error.
    """
    rng = np.random.RandomState(seed)
    n = len(WORDS)
    if not 2 <= successors <= n:
        raise ValueError(f"successors must be between 2 and {n}, got {successors}")
    cycle = rng.permutation(n)  # every word leads to the next one on a random cycle: irreducible
    after = {int(a): int(b) for a, b in zip(cycle, np.roll(cycle, -1))}
    P = np.zeros((n, n))
    for i in range(n):
        others = rng.choice([j for j in range(n) if j != after[i]], size=successors - 1, replace=False)
        P[i, [after[i], *others]] = rng.dirichlet(np.ones(successors))
    return WordChain(WORDS, P)
