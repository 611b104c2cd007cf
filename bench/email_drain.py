"""10,000 composed e-mails drained by two threads to an SMTP server on loopback.

    python bench/email_drain.py                      # 10,000 messages, 2 workers
    python bench/email_drain.py --dkim rsa           # each message DKIM-signed (RSA 2048) as it is sent

Target (issue 12): >= 200 messages/s with two workers. The server is aiosmtpd in its own process (its
handler only counts), so it does not share the senders' interpreter; each worker thread keeps one SMTP
connection open across its sends, as the outbox's workers do. Needs the dev extra (aiosmtpd).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import queue
import resource
import socket
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from _common import load_average, machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from offerloop.delivery.email.compose import build_message
from offerloop.delivery.email.dkim import DkimSigner
from offerloop.delivery.email.transport import SmtpTransport


class Counter:
    def __init__(self, count: Any) -> None:
        self.count = count

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.count.get_lock():
            self.count.value += 1
        return "250 OK"


def serve(port: int, count: Any, ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(Counter(count), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()
    asyncio.set_event_loop(None)


def compose(n: int) -> EmailMessage:
    html = "".join(
        f"<p>Paragraph {i} of your workbook, with a <a href='https://x.example/{i}'>link</a>.</p>\n"
        for i in range(40)
    )
    return build_message(
        sender="Rowan Vale <hello@rowanvale.example>",
        to=f"buyer{n}@example.com",
        subject=f"Your workbook #{n} is ready",
        text=f"Hi buyer {n},\nyour workbook is ready: https://offers.rowanvale.example/w/{n}\n",
        html=html,
        message_id=f"<{n:08x}@mail.rowanvale.example>",
        unsubscribe_url=f"https://offers.rowanvale.example/u/{n}",
        unsubscribe_mailto="mailto:unsubscribe@rowanvale.example",
        web_version_url=None,
    )


def signer_for(kind: str | None) -> DkimSigner | None:
    if kind is None:
        return None
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return DkimSigner.from_pem(pem, selector="s1", domain="rowanvale.example")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dkim", choices=["rsa", "ed25519"], default=None)
    args = parser.parse_args()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    count = multiprocessing.Value("q", 0)
    ready, stop = multiprocessing.Event(), multiprocessing.Event()
    server = multiprocessing.Process(target=serve, args=(port, count, ready, stop), daemon=True)
    server.start()
    if not ready.wait(30):
        raise SystemExit("the SMTP server did not start")

    started = time.perf_counter()
    messages = [compose(n) for n in range(args.messages)]
    compose_s = time.perf_counter() - started
    size = len(messages[0].as_bytes())

    work: queue.SimpleQueue[EmailMessage | None] = queue.SimpleQueue()
    for message in messages:
        work.put(message)
    for _ in range(args.workers):
        work.put(None)
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    transport = SmtpTransport.from_url(f"smtp://127.0.0.1:{port}", signer=signer_for(args.dkim))

    def drain() -> None:
        while (message := work.get()) is not None:
            result = transport.send(
                envelope_from="bounces@mail.rowanvale.example", to=str(message["To"]), message=message
            )
            with lock:
                statuses[result.status] = statuses.get(result.status, 0) + 1

    threads = [threading.Thread(target=drain) for _ in range(args.workers)]
    cpu_before = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drain_s = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_before
    transport.close()
    stop.set()
    server.join(30)
    # The server process's CPU (it is the only child): startup is a small share of it.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = usage.ru_utime + usage.ru_stime

    rate = args.messages / drain_s
    print(f"machine: {machine()}; load (1 min): {load_average()}; {datetime.now(UTC):%Y-%m-%d}")
    print(
        f"composed {args.messages:,} messages ({size:,} bytes each) in {compose_s:.2f} s ({args.messages / compose_s:,.0f}/s)"
    )
    print(
        f"drained by {args.workers} threads{' with DKIM ' + args.dkim if args.dkim else ''}: {drain_s:.2f} s, {rate:,.0f} msgs/s"
    )
    print(
        f"CPU per message: senders {client_cpu / args.messages * 1000:.2f} ms, server {server_cpu / args.messages * 1000:.2f} ms "
        f"(other load on the same cores shows as wall time above this)"
    )
    print(f"results: {statuses}; server counted {count.value:,}")
    print(f"target >= 200 msgs/s: {'met' if rate >= 200 and count.value == args.messages else 'NOT met'}")


if __name__ == "__main__":
    main()
