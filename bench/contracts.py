"""Docstring promises no test reads (issue 19): a list for a person to go through, not a verdict.

Round Z6's wrong answers that passed were mostly one sentence of a docstring that no test checked (a
``training=False``, "one LinearModel", a model built for the data's width). For every public function of a
kata this script splits the reference's docstring into sentences, keeps those that promise something
(``must``, ``never``, ``once``, ``every``, an order, a dtype, ...), takes each one's key terms (the words in
backticks, numbers, dtypes, ``True``/``False``) and looks for them in the source of the unit tests that cover
the function (``@pytest.mark.covers``, read statically). A promise none of whose key terms appears in any of
those tests is printed: most such sentences are checked some other way, some are not checked at all.

    python bench/contracts.py [KATA ...] [--share 0.5]   # every kata by default; 0.5 lists more
"""
import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMISE = re.compile(r"\b(must|never|not|only|once|every|each|exactly|same|order|sorted|shuffl\w*|dtype|int32|"
                     r"int64|float32|float64|bool|empty|unchanged|leave|raise\w*|return\w*|none|true|false|"
                     r"at most|at least|without|new|fresh|own|reuse\w*|seed\w*)\b", re.IGNORECASE)
STOP = {"the", "a", "an", "of", "to", "and", "or", "in", "on", "is", "it", "its", "for", "with", "as", "by",
        "be", "that", "this", "from", "at", "are", "not", "no", "one", "each", "every", "your", "you"}


def sentences(doc: str) -> list[str]:
    """The docstring as sentences: paragraphs joined, split after ``.``, ``;`` or ``:`` followed by a space."""
    text = " ".join(line.strip() for line in doc.splitlines())
    return [s.strip() for s in re.split(r"(?<=[.;:])\s+(?=[A-Z`(])", text) if len(s.strip()) > 12]


def key_terms(sentence: str) -> set[str]:
    """What a test that checks the sentence would most likely mention."""
    terms = set(re.findall(r"``?([^`]+?)``?", sentence))
    terms |= set(re.findall(r"\b(?:int|float)(?:8|16|32|64)\b|\bTrue\b|\bFalse\b|\bNone\b|\b\d+(?:\.\d+)?\b",
                            sentence))
    pieces = set()
    for term in terms:  # `tf.nn.softmax(logits)` is found by "softmax" too
        pieces |= {w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]{3,}", term) if w.lower() not in STOP}
    return {t.strip() for t in terms | pieces if t.strip()}


def covering_tests(path: Path) -> dict[str, list[str]]:
    """function name -> the source of every test in the file whose ``covers`` names it (helpers it calls
    in the same file included, one level deep)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    defs = {n.name: ast.get_source_segment(source, n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    out: dict[str, list[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        names = []
        for dec in node.decorator_list:
            if isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "covers":
                names += [a.value for a in dec.args if isinstance(a, ast.Constant)]
        if not names:
            continue
        text = defs[node.name]
        called = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        text += "\n\n" + "\n\n".join(defs[c] for c in called if c in defs and c != node.name)
        for name in names:
            out.setdefault(name, []).append(text)
    return out


def messages(texts: list[str]) -> str:
    """The string literals of the tests (their messages, f-strings' text included), lower-cased."""
    out = []
    for text in texts:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append(node.value)
    return " ".join(out).lower()


def content_words(sentence: str) -> set[str]:
    return {w for w in re.findall(r"[a-z][a-z0-9_]{4,}", sentence.lower()) if w not in STOP}


def audit(kata, share: float = 0.8) -> list[tuple[str, str, set[str]]]:
    solution = (ROOT / "solutions" / f"{kata.module}.py").read_text(encoding="utf-8")
    tests = covering_tests(ROOT / "tests" / f"test_{kata.module}.py")
    found = []
    for node in ast.parse(solution).body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) or node.name not in kata.hints:
            continue
        said = messages(tests.get(node.name, []))
        for sentence in sentences(ast.get_docstring(node) or ""):
            words = content_words(sentence) - {node.name.lower()}
            if not PROMISE.search(sentence) or len(words) < 2:
                continue
            missing = {w for w in words if w not in said}
            if len(missing) >= share * len(words):
                found.append((node.name, sentence, missing))
    return found


def main() -> None:
    from tfkata import registry

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("katas", nargs="*")
    parser.add_argument("--share", type=float, default=0.8,
                        help="list a sentence when at least this share of its words is unsaid (0.5: a looser read)")
    args = parser.parse_args()
    total = 0
    for kata in registry.katas():
        if args.katas and kata.id not in args.katas:
            continue
        rows = audit(kata, args.share)
        total += len(rows)
        for function, sentence, terms in rows:
            print(f"{kata.id} {function}: {sentence}\n      words no message of a covering test says: {sorted(terms)}")
    print(f"{total} promises whose key words no message of a covering test says")


if __name__ == "__main__":
    main()
