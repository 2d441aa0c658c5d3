"""``kata mistakes K``: a kata's catalogued mistakes and what the tests say to each, for a learner who
has passed the kata. Each mistake runs against a temporary copy of the reference (two at a time); the
outcomes are kept in ``.tfkata/mistakes-<id>.json`` until the catalogue, the solution or the tests change.
"""
from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from tfkata import mistakes, registry
from tfkata.store import Store


def _fingerprint(store: Store, kata: registry.Kata) -> str:
    digest = hashlib.sha256()
    for path in (mistakes.catalogue_path(kata.id), store.root / kata.path("solutions"), store.root / kata.test_file):
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


def lessons(store: Store, kata: registry.Kata, jobs: int = 2) -> list[dict]:
    """One dict per mistake: ``function``, ``what``, ``status`` (caught / skipped / missed / error),
    ``test_name``, ``message``."""
    path = store.dir / f"mistakes-{kata.id}.json"
    stamp = _fingerprint(store, kata)
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("fingerprint") == stamp:
            return cached["mistakes"]
    except (OSError, ValueError, KeyError):
        pass
    entries = mistakes.load(kata.id)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = list(pool.map(lambda m: mistakes.run(m, store.root), entries))
    rows = [o.to_dict() for o in outcomes]
    store.dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fingerprint": stamp, "mistakes": rows}, indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return rows
