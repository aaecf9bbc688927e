"""``bounces ingest`` from a real IMAP server: Debian's dovecot, started on 127.0.0.1 from
a throwaway configuration (skipped, saying why, where dovecot is not installed:
``apt-get install dovecot-imapd``)."""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpub.bounces.mailbox import ingest_configured
from feedpub.cli import main
from tests.conftest import Newsroom
from tests.test_bounces_corpus import LATER, Room, room  # noqa: F401  (the fixture)

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-test-password"

CONF = """
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = nobody
default_internal_group = nogroup
default_login_user = nobody
mail_location = maildir:{d}/mail/%u
first_valid_uid = 65534
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={d}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Imap:
    port: int

    def client(self) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.port)
        c.login(USER, PASSWORD)
        c.select("INBOX")
        return c

    def append(self, *messages: bytes) -> None:
        c = self.client()
        for m in messages:
            c.append("INBOX", "", imaplib.Time2Internaldate(time.time()), m)
        c.logout()

    def flags(self) -> list[str]:
        c = self.client()
        _, data = c.fetch("1:*", "(FLAGS)")
        c.logout()
        return [d.decode() for d in data if isinstance(d, bytes)]

    def count(self) -> int:
        c = self.client()
        _, data = c.search(None, "ALL")
        c.logout()
        return len(data[0].split())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def imap() -> Iterator[Imap]:
    if not os.path.exists(DOVECOT):
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        pytest.skip("the throwaway dovecot runs its mail processes as 'nobody': needs root")
    d = Path(tempfile.mkdtemp(prefix="feedpub-dovecot-"))
    d.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (d / sub).mkdir()
    (d / "mail").chmod(0o777)
    (d / "home").chmod(0o777)
    (d / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    port = _free_port()
    (d / "dovecot.conf").write_text(CONF.format(d=d, port=port))
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(d / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log = (d / "dovecot.log").read_text() if (d / "dovecot.log").exists() else ""
                    pytest.skip(f"dovecot did not start: {log[-300:]}")
                time.sleep(0.1)
        yield Imap(port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(d, ignore_errors=True)


def _configure(newsroom: Newsroom, target: Room, imap: Imap, *, delete: bool) -> None:
    text = newsroom.config_path.read_text(encoding="utf-8")
    newsroom.config_path.write_text(
        text
        + f"""
[bounces.mailbox]
type = "imap"
host = "127.0.0.1"
port = {imap.port}
security = "none"
username = "{USER}"
password_env = "FEEDPUB_TEST_IMAP_PASSWORD"
delete_processed = {"true" if delete else "false"}
""",
        encoding="utf-8",
    )
    target.config = newsroom.config()


def test_imap_ingest_reads_ours_leaves_the_rest_and_is_incremental(
    newsroom: Newsroom,
    room: Room,  # noqa: F811
    imap: Imap,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEEDPUB_TEST_IMAP_PASSWORD", PASSWORD)
    _configure(newsroom, room, imap, delete=False)
    imap.append(
        room.message("postfix_hard.eml"),
        room.message("not_ours.eml"),
        room.message("arf_complaint.eml"),
        room.message("vacation.eml"),
    )
    r = ingest_configured(room.config, room.store, LATER)
    assert (r.read, r.not_ours, r.stored, r.duplicates) == (4, 1, 3, 0), r
    assert dict(r.kinds) == {"hard": 1, "complaint": 1, "autoreply": 1}
    assert room.state()[:3] == ("bounced", "unsubscribed", True)
    # nothing in the mailbox changed: every message is there, none marked \Seen
    assert imap.count() == 4
    assert not any("\\Seen" in f for f in imap.flags())
    # the next poll starts after the last UID read
    again = ingest_configured(room.config, room.store, LATER)
    assert (again.read, again.stored) == (0, 0)
    imap.append(room.message("gmail_full.eml"))
    third = ingest_configured(room.config, room.store, LATER)
    assert (third.read, third.stored, dict(third.kinds)) == (1, 1, {"soft": 1})


def test_imap_delete_processed_removes_only_our_messages(
    newsroom: Newsroom,
    room: Room,  # noqa: F811
    imap: Imap,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEEDPUB_TEST_IMAP_PASSWORD", PASSWORD)
    _configure(newsroom, room, imap, delete=True)
    imap.append(room.message("not_ours.eml"), room.message("gmail_hard.eml"))
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "bounces", "ingest"])
    assert r.exit_code == 0, r.output
    assert "not ours 1 (left alone)" in r.output and "stored 1" in r.output
    assert imap.count() == 1  # the one that is not ours stays
    c = imap.client()
    _, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (DELIVERED-TO)])")
    c.logout()
    assert b"editor+x@news.example" in b"".join(
        x for part in data for x in part if isinstance(x, bytes)
    )


def test_wrong_imap_password_is_a_clear_error(
    newsroom: Newsroom,
    room: Room,  # noqa: F811
    imap: Imap,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEEDPUB_TEST_IMAP_PASSWORD", "wrong")
    _configure(newsroom, room, imap, delete=False)
    r = CliRunner().invoke(main, ["--config", str(newsroom.config_path), "bounces", "ingest"])
    assert r.exit_code == 1
    assert f"imap:{USER}@127.0.0.1/INBOX" in " ".join(r.output.split())
