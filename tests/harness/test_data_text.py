"""Harness tests for tfkata/data/text.py: the text8 download-verify-read path (with a fake opener and
a small zip made here: no network), the offline corpus, and the synthetic corpus's entropy floor."""
import io
import math
import urllib.error
import zipfile
from collections import defaultdict

import numpy as np
import pytest

from tfkata.data import text as T

URL = "http://example.invalid/dc/text8.zip"


def _zip_bytes(content: str = "anarchism originated as a term of abuse") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("text8", content)
    return buf.getvalue()


class FakeOpener:
    """Stands for urllib's opener: serves ``data`` for any URL, counts the calls."""

    def __init__(self, data=None, error=None, fail_after=None):
        self.data, self.error, self.fail_after, self.calls = data, error, fail_after, []

    def open(self, url, timeout=None):
        self.calls.append(url)
        if self.error is not None:
            raise self.error
        if self.fail_after is None:
            return io.BytesIO(self.data)
        return _Broken(self.data[: self.fail_after])


class _Broken(io.BytesIO):
    def read(self, n=-1):
        chunk = super().read(n)
        if not chunk:
            raise ConnectionResetError("connection reset by peer")
        return chunk


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_download_verify_and_read(tmp_path):
    data = _zip_bytes()
    opener = FakeOpener(data)
    path = T.text8_path(tmp_path, opener=opener, url=URL, expected_bytes=len(data))
    assert path == tmp_path / "text8.zip" and path.read_bytes() == data
    assert opener.calls == [URL]
    assert _leftovers(tmp_path) == ["text8.zip"], "no temporary file may stay behind"
    assert T.read_zip_text(path) == "anarchism originated as a term of abuse"
    assert T.load_text8(tmp_path, opener=FakeOpener(error=AssertionError("cached: no download")),
                        url=URL, expected_bytes=len(data)).startswith("anarchism")


def test_cached_file_is_used_without_network(tmp_path):
    data = _zip_bytes()
    (tmp_path / "text8.zip").write_bytes(data)
    opener = FakeOpener(error=AssertionError("must not download"))
    assert T.text8_path(tmp_path, opener=opener, url=URL, expected_bytes=len(data)) == tmp_path / "text8.zip"
    assert opener.calls == []


def test_data_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("KATA_DATA_DIR", str(tmp_path))
    assert T.data_dir() == tmp_path
    monkeypatch.delenv("KATA_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert T.data_dir() == tmp_path / "cache" / "tf-katas"


def test_default_folder_is_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KATA_DATA_DIR", str(tmp_path / "d"))
    data = _zip_bytes()
    path = T.text8_path(opener=FakeOpener(data), url=URL, expected_bytes=len(data))
    assert path == tmp_path / "d" / "text8.zip" and path.exists()


def test_offline_says_which_file_to_place_where(tmp_path):
    opener = FakeOpener(error=urllib.error.URLError("Temporary failure in name resolution"))
    with pytest.raises(T.DataUnavailable) as info:
        T.text8_path(tmp_path, opener=opener)
    message = str(info.value)
    assert "text8.zip" in message and str(tmp_path) in message and "31,344,016" in message, message
    assert "KATA_DATA_DIR" in message, message
    assert message.count(". ") == 0 and message.endswith("."), f"one sentence, got: {message}"
    assert _leftovers(tmp_path) == [], "an offline attempt must leave nothing behind"


def test_wrong_size_download_is_deleted(tmp_path):
    data = _zip_bytes()
    with pytest.raises(T.DataUnavailable, match="expected"):
        T.text8_path(tmp_path, opener=FakeOpener(data), url=URL, expected_bytes=len(data) + 1)
    assert _leftovers(tmp_path) == []


def test_interrupted_download_leaves_no_partial_file(tmp_path):
    data = _zip_bytes()
    with pytest.raises(T.DataUnavailable, match="place text8.zip"):
        T.text8_path(tmp_path, opener=FakeOpener(data, fail_after=10), url=URL, expected_bytes=len(data))
    assert _leftovers(tmp_path) == []


def test_cached_file_of_wrong_size_is_refused(tmp_path):
    (tmp_path / "text8.zip").write_bytes(b"truncated")
    with pytest.raises(T.DataUnavailable, match="has 9 bytes, expected 31,344,016"):
        T.text8_path(tmp_path, opener=FakeOpener(error=AssertionError("no download")))


def test_no_download_when_asked_not_to(tmp_path):
    with pytest.raises(T.DataUnavailable, match=r"text8\.zip is not in"):
        T.text8_path(tmp_path, download=False)


def test_bad_zip_is_reported(tmp_path):
    path = tmp_path / "text8.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(T.DataUnavailable, match="not a valid zip"):
        T.read_zip_text(path)


def test_clean_text_is_text8_style():
    assert T.clean_text("Hello, World!  It's 2018\n") == "hello world it s"


def test_offline_corpus():
    text = T.offline_corpus()
    assert len(text) > 300_000, len(text)
    assert set(text) <= set(" abcdefghijklmnopqrstuvwxyz") and "  " not in text
    assert text == T.offline_corpus(), "deterministic"
    valid, train = T.split_valid(text)
    assert len(valid) == 1000 and valid + train == text


def test_floor_of_a_chain_known_by_hand():
    # Words "a" and "bb", each followed by either with probability 1/2: ln 2 nats per word,
    # 0.5 * 2 + 0.5 * 3 = 2.5 characters per word (with the space): ln 2 / 2.5 nats per character.
    chain = T.WordChain(["a", "bb"], [[0.5, 0.5], [0.5, 0.5]])
    assert chain.stationary == pytest.approx([0.5, 0.5])
    assert chain.entropy_rate == pytest.approx(math.log(2) / 2.5)
    assert chain.perplexity_floor == pytest.approx(2 ** (1 / 2.5))


def _trie_entropy_per_word(chain):
    """Per-word entropy counted character by character: at each prefix of the possible next words
    (the space ends a word), the entropy of the next character. By the chain rule it must equal the
    word-level entropy, which is what lets the floor be counted per character."""
    total = 0.0
    for i, pi in enumerate(chain.stationary):
        nodes = defaultdict(lambda: defaultdict(float))
        for j, p in enumerate(chain.transitions[i]):
            if p > 0:
                spelled = chain.words[j] + " "
                for k in range(len(spelled)):
                    nodes[spelled[:k]][spelled[k]] += p
        for branches in nodes.values():
            mass = sum(branches.values())
            total += pi * -sum(q * math.log(q / mass) for q in branches.values())
    return total


def test_synthetic_floor_agrees_with_character_level_count():
    chain = T.synthetic_chain()
    assert _trie_entropy_per_word(chain) == pytest.approx(chain.entropy_per_word, rel=1e-9)
    assert 1.2 < chain.perplexity_floor < 1.5, chain.perplexity_floor


def test_synthetic_text_reaches_the_floor():
    chain = T.synthetic_chain()
    text = chain.generate(300_000, seed=1)
    assert len(text) == 300_000 and text == chain.generate(300_000, seed=1)
    assert set(text.split(" ")[:-1]) <= set(T.WORDS)
    oracle = math.exp(chain.logprob_per_char(text))
    assert oracle == pytest.approx(chain.perplexity_floor, abs=0.01), (oracle, chain.perplexity_floor)
    assert chain.generate(1000, seed=2) != chain.generate(1000, seed=3)


def test_chain_must_be_irreducible():
    with pytest.raises(ValueError, match="irreducible"):
        T.WordChain(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="a-z"):
        T.WordChain(["a b", "c"], np.full((2, 2), 0.5))
