"""A real aiosmtpd server on 127.0.0.1 for tests, with a fault-injecting handler.

    with SmtpTestServer() as srv:          # listens on 127.0.0.1:<free port>
        srv.faults.temp_fail["a@x.test"] = 2   # 451 at RCPT twice, then accept
        ...send to srv.port...
        srv.received                         # [Received(mail_from, rcpt_tos, data)]

Faults (all keyed by recipient address; counters are "how many more times"):
- ``temp_fail``: 451 at RCPT TO;            ``perm_fail``: 550 at RCPT TO (always);
- ``drop_mid_data``: after the 354 the server reads one line of the message and drops the
  connection (the message is not kept);
- ``drop_data``: the whole DATA is read, then the connection is dropped without a reply and
  the message is *not* kept (the client cannot tell whether it was);
- ``drop_after_store``: like drop_data but the message *is* kept (the ambiguous case that
  makes a retry a duplicate);
- ``slow``: answer DATA only after ``slow_seconds`` (longer than the client's timeout),
  with a 451 and without keeping the message;
- ``reject_sender``: 550 at MAIL FROM for every message (a relay refusing our sender).
- ``hold_seconds``: every DATA is held this long, then kept and answered 250 (a slow
  relay); the first ``hold_first`` of them also until ``release`` is set.

Also runs STARTTLS (``tls=(cert, key)``), implicit TLS (``implicit_tls=True``) and AUTH
(``users={"name": "password"}``). Runs in its own thread with its own event loop; the
tests call it from the main thread, hence the lock around the shared state.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from feedpub.delivery.base import OutgoingMessage

logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Faults:
    temp_fail: dict[str, int] = field(default_factory=dict)
    perm_fail: set[str] = field(default_factory=set)
    drop_data: dict[str, int] = field(default_factory=dict)
    drop_mid_data: dict[str, int] = field(default_factory=dict)
    drop_after_store: dict[str, int] = field(default_factory=dict)
    slow: dict[str, int] = field(default_factory=dict)
    slow_seconds: float = 1.0
    reject_sender: bool = False
    hold_seconds: float = 0.0
    hold_first: int = 0
    release: threading.Event = field(default_factory=threading.Event)


def _take(counter: dict[str, int], key: str) -> bool:
    left = counter.get(key, 0)
    if left > 0:
        counter[key] = left - 1
        return True
    return False


class FaultyHandler:
    def __init__(self, server: SmtpTestServer) -> None:
        self.srv = server

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.srv.faults.reject_sender:
            return "550 5.7.1 sender not allowed"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        f = self.srv.faults
        if self.srv.on_rcpt is not None:
            self.srv.on_rcpt(address)
        with self.srv.lock:
            self.srv.rcpt_attempts[address] = self.srv.rcpt_attempts.get(address, 0) + 1
            if address in f.perm_fail:
                return f"550 5.1.1 <{address}>: no such user"
            if _take(f.temp_fail, address):
                return "451 4.2.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        f = self.srv.faults
        rcpt = envelope.rcpt_tos[0]
        data = envelope.original_content or b""
        with self.srv.lock:
            drop = _take(f.drop_data, rcpt)
            drop_stored = _take(f.drop_after_store, rcpt)
            slow = _take(f.slow, rcpt)
        if drop or drop_stored:
            if drop_stored:
                self.srv.keep(envelope, data)
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "250 OK (never seen by the client)"
        if slow:
            await asyncio.sleep(f.slow_seconds)
            return "451 4.4.2 too slow"
        if f.hold_seconds or f.hold_first:
            with self.srv.lock:
                self.srv.holding += 1
                first = self.srv.held_total < f.hold_first
                self.srv.held_total += 1
            try:
                await asyncio.sleep(f.hold_seconds)
                while first and not f.release.is_set():
                    await asyncio.sleep(0.02)
            finally:
                with self.srv.lock:
                    self.srv.holding -= 1
        self.srv.keep(envelope, data)
        return "250 OK queued"


class _CountingSMTP(SMTP):
    """aiosmtpd's SMTP protocol, counting connections (to check the client's pool)."""

    def __init__(self, owner: SmtpTestServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # not the STARTTLS re-entry
            with self.owner.lock:
                self.owner.live.add(transport)
                self.owner.connections += 1
                self.owner.open_now += 1
                self.owner.max_open = max(self.owner.max_open, self.owner.open_now)
        super().connection_made(transport)

    async def smtp_DATA(self, arg: str) -> None:
        rcpts = self.envelope.rcpt_tos if self.envelope is not None else []
        with self.owner.lock:
            drop = bool(rcpts) and _take(self.owner.faults.drop_mid_data, rcpts[0])
        if not drop:
            await super().smtp_DATA(arg)
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        await self._reader.readuntil(b"\r\n")  # the first line of the message, then gone
        assert isinstance(self.transport, asyncio.Transport)
        self.transport.abort()

    def connection_lost(self, error: Exception | None) -> None:
        with self.owner.lock:
            self.owner.live.discard(self.transport)
            self.owner.open_now -= 1
        super().connection_lost(error)


class SmtpTestServer:
    def __init__(
        self,
        *,
        tls: tuple[Path, Path] | None = None,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
        port: int = 0,
        keep_data: bool = True,
    ) -> None:
        self.faults = Faults()
        self.keep_data = keep_data  # False: keep envelopes only (big sends, little memory)
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.rcpt_attempts: dict[str, int] = {}
        self.connections = 0
        self.live: set[Any] = set()  # transports of open connections
        self.open_now = 0
        self.max_open = 0
        self.holding = 0  # DATA being held right now (faults.hold_*)
        self.held_total = 0
        self.users = users
        self.host = "127.0.0.1"
        self.on_data: Callable[[int], None] | None = None  # called with the count kept
        self.on_rcpt: Callable[[str], None] | None = None  # called at each RCPT TO
        self.port = port
        self._ctx: ssl.SSLContext | None = None
        if tls is not None:
            self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        self._implicit = implicit_tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> SmtpTestServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._server = fut.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _start(self) -> asyncio.Server:
        handler = FaultyHandler(self)
        kwargs: dict[str, Any] = {"hostname": "mx.test", "loop": self._loop}
        if self._ctx is not None and not self._implicit:
            kwargs["tls_context"] = self._ctx
        if self.users is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = False
        return await self._loop.create_server(
            lambda: _CountingSMTP(self, handler, **kwargs),
            host=self.host,
            port=self.port,
            ssl=self._ctx if self._implicit else None,
        )

    def stop(self) -> None:
        async def _close() -> None:
            assert self._server is not None
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)

        if self._server is not None:
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def crash(self) -> None:
        """The server dies: stop listening and drop every connection. Safe to call from a
        handler hook (runs on the server's loop without waiting)."""

        def _crash() -> None:
            assert self._server is not None
            self._server.close()
            with self.lock:
                live = list(self.live)
            for t in live:
                t.abort()

        self._loop.call_soon_threadsafe(_crash)

    # ---- state --------------------------------------------------------------------------------
    def keep(self, envelope: Envelope, data: bytes) -> None:
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from or "",
                    tuple(envelope.rcpt_tos),
                    bytes(data) if self.keep_data else b"",
                )
            )
            n = len(self.received)
        if self.on_data is not None:
            self.on_data(n)  # e.g. SIGKILL the client before it sees the 250

    def by_recipient(self) -> dict[str, list[Received]]:
        out: dict[str, list[Received]] = {}
        with self.lock:
            for r in self.received:
                for to in r.rcpt_tos:
                    out.setdefault(to, []).append(r)
        return out

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.users is not None
        if isinstance(data, LoginPassword):
            user, pw = data.login.decode(), data.password.decode()
            if self.users.get(user) == pw:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)


def dead_port() -> int:
    """A 127.0.0.1 port with nothing listening (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def self_signed_cert(folder: Path) -> tuple[Path, Path] | None:
    """A throwaway certificate for 127.0.0.1 made with the openssl CLI (None without it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def make_message(
    i: int,
    *,
    recipient: str | None = None,
    body_lines: int = 20,
    sender: str = "news@news.example",
) -> OutgoingMessage:
    """A digest-shaped message (the headers RFC 8058 asks for), serialized for SMTP."""
    to = recipient or f"reader{i}@example.org"
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"Test Times <{sender}>"
    msg["To"] = to
    msg["Subject"] = f"Test Daily — edition {i}"
    msg["Date"] = "Thu, 26 Nov 2026 07:00:00 +0000"
    msg["Message-ID"] = f"<1.{i}@news.example>"
    msg["List-Id"] = "Test Daily <daily.news.example>"
    msg["List-Unsubscribe"] = f"<https://news.example/unsubscribe?t={i}>, <mailto:u@news.example>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = "\n".join(
        f"Line {n} for {to}. A line that starts with a dot follows." for n in range(body_lines)
    )
    msg.set_content(text + "\n.leading dot must survive\n")
    msg.add_alternative(f"<p>Hello {to}</p>\n<p>.dot</p>", subtype="html")
    return OutgoingMessage(
        edition_id=1,
        subscriber_id=i,
        envelope_from=sender,
        recipient=to,
        message_id=f"1.{i}@news.example",
        data=msg.as_bytes(),
    )
