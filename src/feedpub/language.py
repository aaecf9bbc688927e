"""An article's language and writing direction: the one module that imports pycld2.

Language, in order (see :func:`article_language`): the input's own tag (front matter
``language``, an upstream entry's ``xml:lang``), else detected from the text, else None —
and writers then use ``[site] language``.

Why pycld2 (Google's Compact Language Detector 2, from Chromium): its tables are compiled
into the wheel, so there is no model to load (importing it costs ~3 ms; py3langid spends
~1.3 s decompressing its model, lingua ~0.5 s and ~100 MB) and a 2,000-character article
takes ~60–130 µs on this busy 2-core machine (``bench/language.py``; py3langid ~200–450
µs), which collect can afford per new or edited article. It covers 80+ languages, every script the newsroom publishes in, tells
Ukrainian from Russian, and says when it is unsure (``isReliable``): then we keep the site's
language rather than guess. pycld2's quirks handled here: it refuses C0/C1 control
characters and lone surrogates (we blank them first), it still answers the obsolete ISO 639
codes ``iw``/``in``/``ji``/``jw`` (mapped to ``he``/``id``/``yi``/``jv``), and ``un`` means
unknown.

Direction: a language is written right to left when its script is (Unicode CLDR's
``characterOrder``): the script subtag when the tag has one (``az-Arab``), else the
language's usual script. The table below lists the languages whose usual script is RTL.
"""

from __future__ import annotations

import re
from typing import Literal

import pycld2

Direction = Literal["ltr", "rtl"]

# BCP 47, as the feeds need it (the config's own check is the same shape).
_BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-[A-Za-z0-9]{5,8})*$")
# Characters pycld2 refuses ("input contains invalid UTF-8"): controls and surrogates.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_OBSOLETE = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}
# Enough text to decide; more only costs time (CLD2 scores the whole input).
DETECT_CHARS = 2000
# Below this share of the text, the top language is not "the article's language".
MIN_PERCENT = 60

# Scripts written right to left (ISO 15924) and languages whose usual script is one of them
# (CLDR likely subtags; characterOrder right-to-left).
RTL_SCRIPTS = frozenset(
    {"arab", "hebr", "thaa", "syrc", "nkoo", "adlm", "rohg", "mand", "samr", "mend", "yezi"}
)
RTL_LANGUAGES = frozenset(
    {
        "ar", "arc", "azb", "bal", "bqi", "ckb", "dv", "fa", "glk", "he", "iw", "ks", "lrc",
        "mzn", "nqo", "prs", "ps", "sd", "syr", "ug", "ur", "yi", "ji",
    }
)  # fmt: skip


def normalize_tag(tag: str) -> str | None:
    """A BCP 47 tag as feeds write it (``en_US`` -> ``en-US``), or None when it is not one."""
    t = tag.strip().replace("_", "-")
    return t if _BCP47.fullmatch(t) else None


def detect(text: str, *, html: bool = False) -> str | None:
    """The language of ``text`` (a BCP 47 tag), or None when the detector is unsure or the
    text is too short to tell. ``html``: markup is skipped, not scored as words."""
    sample = _REFUSED.sub(" ", text[:DETECT_CHARS])
    if not sample.strip():
        return None
    try:
        reliable, _bytes, details = pycld2.detect(sample, isPlainText=not html)
    except pycld2.error:  # pragma: no cover - _REFUSED removes what it refuses
        return None
    if not reliable or not details:
        return None
    _name, code, percent, _score = details[0]
    if code == "un" or percent < MIN_PERCENT:
        return None
    code = _OBSOLETE.get(code, code)
    return normalize_tag(code)


def article_language(stated: str | None, title: str, summary: str, content_html: str) -> str | None:
    """The input's own tag when it has one, else the language detected in its title,
    summary and body, else None (the site's language applies)."""
    if stated:
        return stated
    return detect(f"{title}\n{summary}\n{content_html}", html=True)


def direction(tag: str | None) -> Direction:
    """``rtl`` for a tag whose script is written right to left, else ``ltr``."""
    if not tag:
        return "ltr"
    parts = tag.lower().replace("_", "-").split("-")
    for sub in parts[1:]:
        if len(sub) == 4 and sub.isalpha():  # a script subtag decides
            return "rtl" if sub in RTL_SCRIPTS else "ltr"
    return "rtl" if parts[0] in RTL_LANGUAGES else "ltr"
