"""Compiled page templates kept between runs (feedpub.templating): a later run renders
the same page without compiling the template again; an edited template is compiled
anew; environments whose options change what a template compiles to never share an
entry; a cache that cannot be written or trusted is no cache, never an error.

Each test points Jinja's per-user cache folder into its own temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from feedpub import templating


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    templating.html_environment.cache_clear()
    yield root
    templating.html_environment.cache_clear()


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates Jinja compiles from source from now on."""
    names: list[str] = []
    original = jinja2.Environment.compile

    def compile_counted(self: jinja2.Environment, source: str, name: str | None = None, *a, **k):  # type: ignore[no-untyped-def]
        names.append(str(name))
        return original(self, source, name, *a, **k)

    monkeypatch.setattr(jinja2.Environment, "compile", compile_counted)
    return names


def render(templates: Path, name: str, **options: bool) -> str:
    templating.html_environment.cache_clear()  # a new run: a new environment
    env = templating.html_environment(templates, **options)
    return env.get_template(name).render(items=["a", "b"])


def test_a_later_run_renders_the_same_page_without_compiling_it(
    cache_root: Path, compiled: list[str], tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "list.html").write_text(
        "<ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>\n", encoding="utf-8"
    )
    first = render(templates, "list.html")
    assert compiled == ["list.html"]
    (cache_dir,) = cache_root.iterdir()
    assert oct(cache_dir.stat().st_mode & 0o777) == "0o700"
    assert any(p.name.startswith("__feedpub-") for p in cache_dir.iterdir())

    assert render(templates, "list.html") == first == "<ul><li>a</li><li>b</li></ul>"
    assert compiled == ["list.html"]  # loaded, not compiled

    (templates / "list.html").write_text(
        "<ol>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ol>\n", encoding="utf-8"
    )
    assert render(templates, "list.html") == "<ol><li>a</li><li>b</li></ol>"
    assert compiled == ["list.html", "list.html"]  # the edit is seen


def test_environments_with_other_options_do_not_share_compiled_templates(
    cache_root: Path, tmp_path: Path
) -> None:
    """``trim_blocks`` changes the compiled code; each variant renders as its own."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "t.html").write_text("{% if true %}\nyes\n{% endif %}\n", encoding="utf-8")
    plain = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)))
    trimmed = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)), trim_blocks=True, lstrip_blocks=True
    )
    want_plain = plain.get_template("t.html").render()
    want_trimmed = trimmed.get_template("t.html").render()
    assert want_plain != want_trimmed
    for _ in range(2):  # the second time from the cache, in either order
        assert render(templates, "t.html") == want_plain
        assert render(templates, "t.html", trim_blocks=True) == want_trimmed
        assert render(templates, "t.html", keep_trailing_newline=True) == want_plain + "\n"


def test_a_cache_that_cannot_be_used_is_no_cache(
    cache_root: Path, compiled: list[str], tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "list.html").write_text("{{ items|join(',') }}", encoding="utf-8")
    # The per-user folder's name taken by a file (or a folder of another user, or one
    # others may write): Jinja refuses it, feedpub compiles every time.
    unsafe = cache_root / f"_jinja2-cache-{os.getuid()}"
    unsafe.write_text("not a folder", encoding="utf-8")
    assert render(templates, "list.html") == "a,b"
    assert render(templates, "list.html") == "a,b"
    assert compiled == ["list.html", "list.html"]

    # A usable folder whose entry is garbage: compiled again, and the entry replaced.
    unsafe.unlink()
    templating.html_environment.cache_clear()
    assert render(templates, "list.html") == "a,b"
    (cache_dir,) = (p for p in cache_root.iterdir() if p.is_dir())
    (entry,) = cache_dir.iterdir()
    entry.write_bytes(b"\x00garbage")
    assert render(templates, "list.html") == "a,b"
    assert render(templates, "list.html") == "a,b"
    assert compiled == ["list.html"] * 4  # the garbage entry was replaced by a good one
