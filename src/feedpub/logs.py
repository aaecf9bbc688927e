"""Structured logs: ``key=value`` (logfmt) or JSON lines. Never log a secret."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def _fmt_value(v: object) -> str:
    s = str(v)
    if s == "" or any(c in s for c in ' "=\\') or not s.isprintable():
        return json.dumps(s, ensure_ascii=False)
    return s


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"ts={ts}Z", f"level={record.levelname.lower()}", f"logger={record.name}"]
        parts.append(f"msg={_fmt_value(record.getMessage())}")
        for k, v in vars(record).items():
            if k not in _RESERVED and not k.startswith("_"):
                parts.append(f"{k}={_fmt_value(v)}")
        if record.exc_info:
            parts.append(f"exc={_fmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _RESERVED and not k.startswith("_"):
                out[k] = v if isinstance(v, int | float | bool | type(None)) else str(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _OthersHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """On the root logger: other libraries' warnings (asyncio, sqlalchemy, httpx...) in
    our format instead of Python's bare last-resort text."""


def setup_logging(level: str = "INFO", fmt: str = "logfmt") -> None:
    formatter = JsonFormatter() if fmt == "json" else LogfmtFormatter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger("feedpub")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    others = _OthersHandler(sys.stderr)
    others.setFormatter(formatter)
    others.setLevel(logging.WARNING)
    top = logging.getLogger()
    top.handlers[:] = [h for h in top.handlers if not isinstance(h, _OthersHandler)] + [others]
