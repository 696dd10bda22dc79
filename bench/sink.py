"""The baseline SMTP server: a bare aiosmtpd handler that answers `250` and stores nothing.

Run in its own process, set up as `mailroom serve` sets up its listener (same aiosmtpd
options, default event loop), so the difference measured is what Mailroom does per message.
`python -m bench.sink PORT` prints one line when it listens and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session

MAX_BYTES = 26 * 1024 * 1024


class BareHandler:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK"


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    handler = BareHandler()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=MAX_BYTES,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname="sink.localhost",
            ident="bench sink",
        ),
        host="127.0.0.1",
        port=port,
    )
    print(f"sink: listening on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
