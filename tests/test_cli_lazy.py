"""The command line imports a command's module only when that command runs: ``feedpub
--help`` lists every command from ``cli.COMMANDS`` without importing any of them, and
says exactly what it says once they are all imported."""

from __future__ import annotations

import inspect
import subprocess
import sys

import click
from click.testing import CliRunner

from feedpub import cli


def first_paragraph(cmd: click.Command) -> str:
    return " ".join(inspect.cleandoc(cmd.help or "").split("\n\n")[0].split())


def test_every_registered_command_loads_under_its_name_with_its_registered_help() -> None:
    for name, (_target, help_text) in cli.COMMANDS.items():
        cmd = cli.load_command(name)
        assert cmd.name == name
        assert first_paragraph(cmd) == help_text, name


def test_help_from_the_registry_is_the_help_of_the_loaded_commands() -> None:
    lazy = CliRunner().invoke(cli.main, ["--help"], terminal_width=80)
    assert lazy.exit_code == 0, lazy.output
    loaded = click.Group(commands={n: cli.load_command(n) for n in cli.COMMANDS})
    formatter = click.HelpFormatter(width=80)
    loaded.format_commands(click.Context(loaded), formatter)
    section = formatter.getvalue()
    assert section.startswith("Commands:\n")
    assert section in lazy.output
    for name in cli.COMMANDS:
        assert f"\n  {name} " in section
    assert cli.main.list_commands(click.Context(cli.main)) == sorted(cli.COMMANDS)


PROBE = """
import sys
from feedpub.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m.startswith(("feedpub.commands", "sqlalchemy",
    "pydantic", "rich", "jinja2", "feedpub.store", "feedpub.config")))
print("IMPORTED", heavy)
"""


def test_help_imports_no_command_module_nor_the_store_or_config_libraries() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Commands:" in out
    assert "IMPORTED []" in out


def test_a_subcommands_help_imports_its_own_module_only() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "store", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "migrate" in out
    imported = out.split("IMPORTED ", 1)[1]
    assert "feedpub.commands.store" in imported
    assert "feedpub.commands.digest" not in imported
    assert "feedpub.commands.bounces" not in imported


def test_status_imports_neither_the_feed_builder_nor_the_digest_renderer_nor_parsers() -> None:
    probe = (
        "import sys, feedpub.commands.status\n"
        "print(sorted(m for m in sys.modules if m.startswith(('feedpub.feeds', "
        "'feedpub.digest.build', 'feedpub.digest.render', 'feedpub.sources.folder', "
        "'httpx', 'jinja2', 'markdown_it'))), 'feedpub.sources.upstream' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] False"
