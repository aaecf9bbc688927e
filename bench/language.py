"""Cost of detecting an article's language at collect time (issue 14 item 1).

Prints: import cost of the detector, and microseconds per article for the sample's stories
and for generated 2,000-character bodies, next to the peer that bounds it: one content
hash (sha256 of the article's fields), which collect computes for every article it reads.

    .venv/bin/python bench/language.py
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._corpus import WORDS  # noqa: E402


def import_cost() -> float:
    """Cumulative import time of feedpub.language (pycld2 included), from -X importtime,
    best of 5 fresh processes (wall-clock timing of a subprocess is noisy when busy)."""
    best = float("inf")
    for _ in range(5):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import feedpub.text, feedpub.language"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        for line in err.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2] == "feedpub.language":
                best = min(best, int(parts[1]) / 1000)
    return best


def per_call(fn, arg, n: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            fn(arg)
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def main() -> None:
    from feedpub.language import article_language

    print(f"import feedpub.language (pycld2 included): {import_cost():.1f} ms (best of 5)")
    stories = []
    for p in sorted((ROOT / "content").iterdir()):
        text = p.read_text(encoding="utf-8")
        stories.append(text.split("---", 2)[2] if text.startswith("---") else text)
    generated = [
        " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(320))[:2000] for i in range(50)
    ]

    def detect(body: str) -> str | None:
        return article_language(None, "A headline", "A summary.", body)

    def fingerprint(body: str) -> str:
        return hashlib.sha256(json.dumps(["A headline", "A summary.", body]).encode()).hexdigest()

    for name, bodies in (("sample stories", stories), ("generated 2,000-char bodies", generated)):
        det = sum(per_call(detect, b, 200) for b in bodies) / len(bodies)
        fp = sum(per_call(fingerprint, b, 200) for b in bodies) / len(bodies)
        print(
            f"{name} ({len(bodies)}): detect {det:.1f} µs/article; content hash {fp:.1f} µs/article"
        )
    print("note: taken on a 2-core machine shared with other engineers (busy); rerun to compare")


if __name__ == "__main__":
    main()
