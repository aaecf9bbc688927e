"""The front matter most files hold, read without PyYAML's parser.

``read(block)`` returns exactly what ``yaml.load(block, Loader=yaml.CSafeLoader)`` (or
``SafeLoader``) returns — same keys in the same order, same values of the same types — or
None, and then the caller asks PyYAML, which also words every error. It reads only:

* ``key: value`` lines at column 0, ``key`` a plain word (``[A-Za-z_][A-Za-z0-9_-]*``)
  that PyYAML reads as a string (not ``yes``, ``null``...), each key once;
* blank lines and ``# comment`` lines; a `` #`` comment after a value;
* values: nothing (None); a double-quoted string whose only escapes are ``\\"``, ``\\\\``,
  ``\\/``, ``\\n``, ``\\t``, ``\\r`` and ``\\0``; a single-quoted string (``''`` is a quote); a
  plain scalar; a one-line ``[a, "b", 'c']`` list of such scalars, not nested.

Plain scalars are resolved with PyYAML's own implicit resolvers and built with
SafeConstructor's own methods, so ``yes``, ``0o17``, ``1:30``, ``.inf`` or ``2026-11-20``
mean here what they mean there; a tag it does not build (merge ``<<``, value ``=``) and a
value its constructor refuses (``2026-02-30``, an int of 5,000 digits) are declined.
Anything else — indentation, anchors, aliases, tags, block scalars, flow mappings, a
character YAML refuses or reads as a line break, a tab — is declined. Nothing here raises.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import yaml

_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_TIMESTAMP = _TAG + "timestamp"
_BOOL = _TAG + "bool"
_NULL = _TAG + "null"
# The tags whose values are built here (by SafeConstructor's own methods).
_BUILT = frozenset(_TAG + t for t in ("bool", "int", "float", "null", "timestamp"))
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_RESOLVERS: dict[Any, list[tuple[str, re.Pattern[str]]]] = yaml.SafeLoader.yaml_implicit_resolvers

# What YAML reads as printable and not a line break, less the tab (it ends a plain
# scalar's chunk) and U+FEFF (libyaml skips it at the start of a line).
_REFUSED = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
# key ":" then, with the commonest values matched here: a double-quoted string without
# escapes (group 2), or a plain scalar without "#" (group 3: no indicator first, no
# trailing spaces); any other value is group 4.
_LINE = re.compile(
    r"""([A-Za-z_][A-Za-z0-9_-]{0,99}):(?: +(?:"([^"\\]*)" *"""
    r"""|([^ "'\[#\-?:,\]{}&*!|>%@`](?:[^#]*[^# ])?) *|(.*)))?"""
)
_TAIL = re.compile(r"(?: +(?:#.*)?)?")  # what may follow a quoted value or a list
_DOUBLE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SINGLE = re.compile(r"'((?:[^']|'')*)'")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_EMPTY_LIST = re.compile(r"\[ *\]")
# One list item and the "," or "]" after it: quoted, or plain without a flow indicator,
# ':', '?' or '#' and not starting with an indicator.
_ITEM = re.compile(
    r""" *(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'"""
    r"""|([^ ,\[\]{}#:?"'&*!|>%@`-](?:[^,\[\]{}#:?]*[^ ,\[\]{}#:?])?)) *([,\]])"""
)
# The timestamps most files hold, built here as SafeConstructor.construct_yaml_timestamp
# builds them (any other form the resolver takes for a timestamp is built by it).
_STAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:(Z)|([-+])([0-9]{2}):([0-9]{2}))?)?"
)
_ZONES: dict[str, timezone] = {}
# A plain scalar may not start with one of these (nor a quote, "[" or "#": handled apart).
_INDICATORS = frozenset("-?:,]{}&*!|>%@`")


_STR_KEYS: set[str] = set()  # keys seen to resolve to a string


class _Decline(Exception):
    pass


def read(block: str) -> dict[str, Any] | None:
    """The mapping ``block`` holds, as PyYAML's safe loader builds it, or None when
    ``block`` is not the plain kind this reads (or is empty)."""
    try:
        return _read(block)
    except Exception:  # _Decline, or anything unforeseen: PyYAML decides
        return None


def _read(block: str) -> dict[str, Any] | None:
    if "\r" in block:  # "\r\n" is one line break; a lone "\r" is refused below
        block = block.replace("\r\n", "\n")
        if block.endswith("\r"):
            block = block[:-1]
    if _REFUSED.search(block):
        return None
    meta: dict[str, Any] = {}
    for line in block.split("\n"):
        if not line or line[0] == "#":
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            if not line.strip(" "):
                continue
            return None
        key = m[1]
        if key in meta:
            return None
        if key not in _STR_KEYS:
            if _resolve(key) != _STR:
                return None
            if len(_STR_KEYS) < 1000:
                _STR_KEYS.add(key)
        if m[2] is not None:
            meta[key] = m[2]
        elif m[3] is not None:
            plain = m[3]
            if ": " in plain or plain[-1] == ":":
                return None
            meta[key] = _scalar(plain)
        else:
            meta[key] = _value(m[4] or "")
    return meta or None  # an empty block loads as None: let PyYAML say so


def _value(rest: str) -> Any:
    if not rest or rest[0] == "#":
        return None
    first = rest[0]
    value: Any
    if first == '"':
        m = _DOUBLE.match(rest)
        if m is None:
            raise _Decline
        value, end = _unescape(m[1]), m.end()
    elif first == "'":
        m = _SINGLE.match(rest)
        if m is None:
            raise _Decline
        value, end = m[1].replace("''", "'"), m.end()
    elif first == "[":
        value, end = _list(rest)
    elif first in _INDICATORS:
        raise _Decline
    else:
        cut = rest.find(" #")
        if cut >= 0:
            rest = rest[:cut]
        rest = rest.rstrip(" ")
        if ": " in rest or rest.endswith(":"):
            raise _Decline
        return _scalar(rest)
    if _TAIL.fullmatch(rest, end) is None:
        raise _Decline
    return value


def _list(rest: str) -> tuple[list[Any], int]:
    m = _EMPTY_LIST.match(rest)
    if m is not None:
        return [], m.end()
    items: list[Any] = []
    pos = 1
    while True:
        m = _ITEM.match(rest, pos)
        if m is None:
            raise _Decline
        if m[1] is not None:
            items.append(_unescape(m[1]))
        elif m[2] is not None:
            items.append(m[2].replace("''", "'"))
        else:
            items.append(_scalar(m[3]))
        pos = m.end()
        if m[4] == "]":
            return items, pos


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(_escaped, text)


def _escaped(m: re.Match[str]) -> str:
    out = _ESCAPES.get(m[1])
    if out is None:
        raise _Decline
    return out


def _resolve(plain: str) -> str:
    """The tag PyYAML's resolver gives the plain scalar ``plain`` (Resolver.resolve)."""
    for first in (plain[0] if plain else "", None):
        for tag, regexp in _RESOLVERS.get(first, ()):
            if regexp.match(plain):
                return tag
    return _STR


def _scalar(plain: str) -> Any:
    if plain[:1].isdigit():
        # Every string _STAMP matches resolves to a timestamp (no ".", no "-" an int or a
        # float could hold after its first character; tests/test_front_matter_fast_path.py
        # checks it): no need to try the resolver's float and int patterns first.
        m = _STAMP.fullmatch(plain)
        if m is not None:
            return _timestamp(m, plain)
    tag = _resolve(plain)
    if tag == _STR:
        return plain
    if tag not in _BUILT:
        raise _Decline
    if tag == _BOOL:  # the bodies of construct_yaml_bool and construct_yaml_null
        return _CONSTRUCTOR.bool_values[plain.lower()]
    if tag == _NULL:
        return None
    # SafeConstructor's own method; a ValueError ("2026-02-30", a 5,000-digit int) declines.
    return yaml.SafeLoader.yaml_constructors[tag](_CONSTRUCTOR, yaml.ScalarNode(tag, plain))


def _timestamp(m: re.Match[str], plain: str) -> date:
    """What SafeConstructor.construct_yaml_timestamp builds of ``plain`` (a ValueError for
    "2026-02-30" or an offset of 24 hours declines, as it does there)."""
    y, mo, d, h, mi, s, z, sign, zh, zm = m.groups()
    if h is None:
        return date(int(y), int(mo), int(d))
    tz: timezone | None = None
    if sign is not None:
        tz = _ZONES.get(plain[-6:])
        if tz is None:
            delta = timedelta(hours=int(zh), minutes=int(zm))
            tz = timezone(-delta if sign == "-" else delta)
            if len(_ZONES) < 1000:
                _ZONES[plain[-6:]] = tz
    elif z is not None:
        tz = UTC
    return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), 0, tzinfo=tz)
