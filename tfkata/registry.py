"""The one list of katas: ``tfkata/registry.toml``, read here for the plugin, the CLI and the README.

Each kata has an id (``k04``), a short alias (``cnn``), the module name shared by ``katas/``,
``solutions/`` and ``tests/test_<module>.py``, an English title, the tutorial's Chinese heading,
the slide section, and 2-3 progressive hints for every public function of the kata module.
"""
from __future__ import annotations

import dataclasses
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REGISTRY_FILE = Path(__file__).with_name("registry.toml")
_ID = re.compile(r"^[kn]\d\d$")
TRACKS = {"k": "then", "n": "now"}  # kNN: TF 1 through tf.compat.v1 (the slides); nNN: its TF 2 twin


@dataclasses.dataclass(frozen=True)
class Kata:
    id: str
    alias: str
    module: str
    title: str
    heading: str
    slide: str
    source: str
    hints: dict  # function name -> list of hints, in the order they are revealed
    twin: str | None = None  # nNN: the kNN it ports (its equivalence tests use the same target's kNN)

    @property
    def track(self) -> str:
        """'then' (kNN, TF 1 via tf.compat.v1) or 'now' (nNN, TF 2 idiom)."""
        return TRACKS[self.id[0]]

    @property
    def test_file(self) -> str:
        return f"tests/test_{self.module}.py"

    def path(self, target: str = "katas") -> str:
        return f"{target}/{self.module}.py"


class UnknownKata(KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument; say it plainly
        return self.args[0]


@lru_cache(maxsize=None)
def katas() -> tuple[Kata, ...]:
    """All katas, in the order a learner should take them."""
    with REGISTRY_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    out = []
    seen: set[str] = set()
    for entry in data.get("kata", []):
        kata = Kata(
            id=entry["id"],
            alias=entry["alias"],
            module=entry["module"],
            title=entry["title"],
            heading=entry["heading"],
            slide=entry["slide"],
            source=entry.get("source", ""),
            hints={name: list(h) for name, h in entry.get("hints", {}).items()},
            twin=entry.get("twin"),
        )
        if not _ID.match(kata.id) or not kata.module.startswith(kata.id + "_"):
            raise ValueError(f"{REGISTRY_FILE}: bad id/module pair {kata.id!r}/{kata.module!r}")
        if kata.track == "then" and kata.twin is not None:
            raise ValueError(f"{REGISTRY_FILE}: {kata.id}: a kNN names no twin")
        for key in (kata.id, kata.alias, kata.module):
            if key in seen:
                raise ValueError(f"{REGISTRY_FILE}: {key!r} is used by two katas")
            seen.add(key)
        out.append(kata)
    ids = {k.id for k in out}
    for kata in out:  # an nNN ports the kNN of its number; one with no such kNN extends the now track, twinless
        if kata.track == "now" and kata.twin is None and f"k{kata.id[1:]}" in ids:
            raise ValueError(f"{REGISTRY_FILE}: {kata.id}: an nNN kata names its kNN twin (twin = \"k{kata.id[1:]}\")")
    return tuple(out)


def get(key: str) -> Kata:
    """A kata by id (``k04``), alias (``cnn``) or module name (``k04_cnn_mnist``)."""
    key = key.strip().lower()
    for kata in katas():
        if key in (kata.id, kata.alias, kata.module):
            return kata
    valid = ", ".join(f"{k.id} ({k.alias})" for k in katas())
    raise UnknownKata(f"unknown kata {key!r}; valid katas: {valid}")


def for_test_file(path) -> Kata | None:
    """The kata a test file grades (``tests/test_<module>.py``), or None for other tests."""
    return _for_test_name(os.path.basename(path))


@lru_cache(maxsize=256)
def _for_test_name(name: str) -> Kata | None:  # asked for every test, several times: 18,000 calls a run
    return _by_module().get(name[len("test_"):-len(".py")]) if name.startswith("test_") and name.endswith(".py") else None


def for_source_file(path) -> Kata | None:
    """The kata a ``katas/`` or ``solutions/`` file belongs to."""
    name = Path(str(path)).name
    return _by_module().get(name[:-len(".py")]) if name.endswith(".py") else None


@lru_cache(maxsize=None)
def _by_module() -> dict[str, Kata]:
    """module name -> kata (the plugin asks for every test, several times: 18,000 calls a run)."""
    return {kata.module: kata for kata in katas()}


def markdown_table() -> str:
    """The README's kata tables, then | now side by side, and each kata's functions (a harness test
    keeps the README in step with it)."""
    now = {k.twin: k for k in katas() if k.twin}

    def cell(k: Kata | None) -> str:
        return f"{k.id} `{k.alias}` [{k.title}](katas/{k.module}.py)" if k else "—"

    rows = [
        "| then: TF 1 (`tf.compat.v1`, as the slides) | now: TF 2 idiom (proven equal to your then) | 教程章节 | slides |",
        "|---|---|---|---|",
    ]
    for k in katas():
        if k.track == "then":
            rows.append(f"| {cell(k)} | {cell(now.get(k.id))} | {k.heading} | {k.slide} |")
    for k in katas():
        if k.track == "now" and k.twin is None:  # extends the now track: no TF 1 kata of its own
            rows.append(f"| {cell(None)} | {cell(k)} | {k.heading} | {k.slide} |")
    rows += ["", "| kata | functions you write |", "|---|---|"]
    for k in katas():
        rows.append(f"| {k.id} | {', '.join(f'`{name}`' for name in k.hints)} |")
    return "\n".join(rows)


def update_readme(path: Path) -> bool:
    """Rewrite the table between the README's kata-table markers; True when it changed."""
    start, end = "<!-- kata-table:start -->", "<!-- kata-table:end -->"
    text = path.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    new = f"{head}{start}\n{markdown_table()}\n{end}{tail}"
    path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # python -m tfkata.registry [--readme]: print the table, or update README.md
    if "--readme" in sys.argv[1:]:
        readme = Path.cwd() / "README.md"
        print(f"{readme}: {'updated' if update_readme(readme) else 'already up to date'}")
    else:
        print(markdown_table())
