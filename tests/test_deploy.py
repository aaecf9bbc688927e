"""deploy/: the systemd units pass `systemd-analyze verify` with their sandboxing on, and
the compose file and Dockerfile have the shape docs/deploy.md promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNITS = ["feedpub-run.service", "feedpub-serve.service"]
SANDBOX = ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
           "CapabilityBoundingSet=", "SystemCallFilter=@system-service"]  # fmt: skip


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_units_verify_with_sandboxing(tmp_path: Path) -> None:
    feedpub = Path(sys.executable).with_name("feedpub")
    assert feedpub.exists()
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        for option in SANDBOX:
            assert option in text.splitlines(), (name, option)
        assert "RestartPreventExitStatus=2" in text  # a config error is not restarted
        # verify checks that ExecStart exists: point it at this venv's feedpub
        (tmp_path / name).write_text(
            text.replace("/opt/feedpub/bin/feedpub", str(feedpub)), encoding="utf-8"
        )
    r = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "feedpub" not in r.stderr  # no warning about our units


def test_compose_runs_two_daemons_and_one_web_front_on_postgres() -> None:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = doc["services"]
    assert services["db"]["image"].startswith("postgres:15")
    commands = sorted(tuple(v["command"][:1]) for k, v in services.items() if k != "db")
    assert commands == [("run",), ("run",), ("serve",)]
    for name, svc in services.items():
        if name != "db":
            assert svc["depends_on"]["db"]["condition"] == "service_healthy"


def test_dockerfile_installs_the_wheel_and_runs_as_non_root() -> None:
    lines = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert any(line.startswith("FROM python:3.11-slim") for line in final)
    assert any("feedpub-*.whl" in line for line in final)
    user = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["feedpub"]' in final
