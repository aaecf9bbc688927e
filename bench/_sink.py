"""An aiosmtpd sink in a process of its own for the sending benchmarks (bench/smtp.py,
bench/scale_send.py): it accepts every message and counts it in shared memory."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any


def sink(port: int, stats: Any, ready: Any) -> None:
    """Serve on 127.0.0.1:``port``; ``stats``: a shared array of 4 doubles, [messages,
    bytes, first arrival, last arrival]; ``ready`` is set once it listens."""
    import logging

    from aiosmtpd.smtp import SMTP

    logging.getLogger("mail.log").setLevel(logging.ERROR)

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            now = time.time()
            with stats.get_lock():
                if stats[0] == 0:
                    stats[2] = now
                stats[0] += 1
                stats[1] += len(envelope.original_content or b"")
                stats[3] = now
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(
            lambda: SMTP(Sink(), hostname="sink.test", loop=loop), "127.0.0.1", port
        )
        ready.set()
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
