"""DKIM: messages sent through the SMTP messenger verify with dkimpy against the test key.

The RSA key is generated here in pure Python (no openssl, no cryptography package): a
1,024-bit key, the smallest dkimpy accepts when verifying, made in a fraction of a second.
"""

from __future__ import annotations

import base64
import secrets
import tomllib
from pathlib import Path
from typing import Any

import dkim
import pytest

from feedpub.config import parse_config
from feedpub.delivery.dkim import DkimSigner
from feedpub.delivery.smtp import SmtpMessenger
from feedpub.digest import send_newsletter
from feedpub.errors import ConfigError
from tests.conftest import Newsroom
from tests.smtpserver import SmtpTestServer, make_message
from tests.test_digest_support import NOW
from tests.test_smtp_delivery import make_room, smtp_config

# ---- a tiny RSA key generator and DER encoder ------------------------------------------------

_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


def _probably_prime(n: int) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(32):  # Miller-Rabin
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int) -> int:
    while True:
        n = secrets.randbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if _probably_prime(n):
            return n


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _int(n: int) -> bytes:
    return _der(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def make_rsa_key(bits: int = 1024) -> tuple[bytes, str]:
    """(PKCS#1 private key in PEM, the DKIM TXT record with the public key)."""
    e = 65537
    while True:
        p, q = _prime(bits // 2), _prime(bits // 2)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e and (p * q).bit_length() == bits:
            break
    n, d = p * q, pow(e, -1, phi)
    fields = [0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p)]
    der = _der(0x30, b"".join(_int(x) for x in fields))
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(lines)
    pem += "\n-----END RSA PRIVATE KEY-----\n"
    rsa_oid = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + _der(0x05, b""))
    spki = _der(0x30, rsa_oid + _der(0x03, b"\x00" + _der(0x30, _int(n) + _int(e))))
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()
    return pem.encode(), record


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    return make_rsa_key()


def _config(tmp_path: Path, port: int, pem: bytes, extra: str = "") -> Any:
    (tmp_path / "dkim.pem").write_bytes(pem)
    text = f"""
[site]
title = "T"
base_url = "https://news.example/"
[delivery]
backend = "smtp"
[delivery.smtp]
host = "127.0.0.1"
port = {port}
helo_name = "client.test"
[delivery.dkim]
selector = "mail2026"
domain = "news.example"
key_file = "dkim.pem"
{extra}
"""
    return parse_config(tomllib.loads(text), root=tmp_path)


def _dns(record: str) -> Any:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if name == b"mail2026._domainkey.news.example." else None

    return lookup


def test_received_message_verifies_against_the_public_key(
    tmp_path: Path, key: tuple[bytes, str]
) -> None:
    pem, record = key
    with SmtpTestServer() as srv:
        with SmtpMessenger.from_config(_config(tmp_path, srv.port, pem)) as m:
            m.send(make_message(1))
            m.send(make_message(2, body_lines=400))
        assert len(srv.received) == 2
        for got in srv.received:
            assert got.data.startswith(b"DKIM-Signature: ")
            assert dkim.verify(got.data, dnsfunc=_dns(record))
            sig = got.message()["DKIM-Signature"]
            tags = dict(t.strip().split("=", 1) for t in "".join(str(sig).split()).split(";") if t)
            signed = {h.lower() for h in tags["h"].split(":")}
            assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= signed
            assert tags["d"] == "news.example"
            assert tags["s"] == "mail2026"
            assert tags["c"] == "relaxed/relaxed"


def test_tampering_breaks_the_signature(tmp_path: Path, key: tuple[bytes, str]) -> None:
    pem, record = key
    signer = DkimSigner.from_config(_config(tmp_path, 25, pem))
    assert signer is not None
    signed = signer.sign(make_message(1).data)
    assert dkim.verify(signed, dnsfunc=_dns(record))
    swapped = signed.replace(b"unsubscribe?t=1>", b"unsubscribe?t=9>")
    assert swapped != signed
    assert not dkim.verify(swapped, dnsfunc=_dns(record))
    body_changed = signed.replace(b"Line 3 for", b"Line 4 for")
    assert body_changed != signed
    assert not dkim.verify(body_changed, dnsfunc=_dns(record))
    _, other_record = make_rsa_key()
    assert not dkim.verify(signed, dnsfunc=_dns(other_record))


def test_missing_key_file_is_a_config_error(tmp_path: Path, key: tuple[bytes, str]) -> None:
    cfg = _config(tmp_path, 25, key[0])
    (tmp_path / "dkim.pem").unlink()
    with pytest.raises(ConfigError, match=r"dkim\.pem"):
        DkimSigner.from_config(cfg)


def test_garbage_key_file_is_a_config_error(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 25, b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END-----\n")
    with pytest.raises(ConfigError, match="not an RSA private key"):
        DkimSigner.from_config(cfg)


def test_signed_headers_must_cover_one_click_unsubscribe(
    tmp_path: Path, key: tuple[bytes, str]
) -> None:
    with pytest.raises(ConfigError, match="List-Unsubscribe-Post"):
        _config(tmp_path, 25, key[0], 'headers = ["From", "Subject", "List-Unsubscribe"]')


def test_a_real_digest_edition_verifies(newsroom: Newsroom, key: tuple[bytes, str]) -> None:
    """The composer's actual output (multipart, quoted-printable, folded headers) signed on
    its way out through the ledger, verified as received."""
    pem, record = key
    (newsroom.root / "dkim.pem").write_bytes(pem)
    with SmtpTestServer() as srv:
        store, emails = make_room(newsroom, srv.port, 3)
        newsroom.set_config(
            smtp_config(srv.port)
            + '[delivery.dkim]\nselector = "mail2026"\ndomain = "news.example"\n'
            + 'key_file = "dkim.pem"\n'
        )
        r = send_newsletter(newsroom.config(), store, "daily", now=NOW)
        assert (r.status, r.sent) == ("sent", 3)
        got = srv.by_recipient()
    assert sorted(got) == sorted(emails)
    for [received] in got.values():
        assert dkim.verify(received.data, dnsfunc=_dns(record))
        assert received.message()["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
