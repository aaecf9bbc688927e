"""Regenerate golden files after an intended output change: ``make golden``.

One function per area; each writes its own folder under tests/data/golden/ and returns
the paths it wrote. Review the diff before committing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def digest() -> list[Path]:
    from tests.test_digest_golden import write_golden

    return write_golden()


AREAS: dict[str, Callable[[], list[Path]]] = {
    "digest": digest,
}


def main(argv: list[str]) -> int:
    wanted = argv or list(AREAS)
    for name in wanted:
        if name not in AREAS:
            print(f"unknown area {name!r}; areas: {', '.join(AREAS)}", file=sys.stderr)
            return 2
        for path in AREAS[name]():
            print(f"{name}: wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
