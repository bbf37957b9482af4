#!/usr/bin/env python3
"""Stands in for a clinic's mail relay and SMS gateway in HealSync's tests.

A real SMTP server (aiosmtpd) and an HTTP endpoint on loopback, each appending one JSON
line per message accepted to OUT. The SMTP server refuses recipients whose address
starts with "bounce" (550, permanent); the gateway answers 422 for numbers ending in
"0000" and 401 without the expected Authorization. `--delay-ms` slows every accepted
message, so a test can kill a sender while messages are in flight. Prints
"ready SMTP_PORT HTTP_PORT" once both listen.
"""

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

LOCK = threading.Lock()


def record(out, entry):
    with LOCK, open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mail:
    def __init__(self, out, delay):
        self.out = out
        self.delay = delay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("bounce"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        msg = message_from_bytes(envelope.content)
        record(
            self.out,
            {
                "channel": "EMAIL",
                "key": msg["Message-ID"],
                "to": envelope.rcpt_tos,
                "from": envelope.mail_from,
                "subject": msg["Subject"],
            },
        )
        return "250 OK"


def gateway(out, delay, auth):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, code, text):
            body = text.encode()
            try:
                self.send_response(code)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender was killed mid-answer: what the tests are for

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            if auth and self.headers.get("authorization") != auth:
                return self.answer(401, "unauthorised")
            try:
                body = json.loads(raw)
            except ValueError:
                return self.answer(400, "not JSON")
            if str(body.get("to", "")).replace(" ", "").endswith("0000"):
                return self.answer(422, "unknown number")
            time.sleep(delay)
            record(
                out,
                {
                    "channel": "SMS",
                    "key": self.headers.get("idempotency-key"),
                    "to": body.get("to"),
                    "text": body.get("text"),
                    "id": body.get("id"),
                },
            )
            return self.answer(200, "queued")

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--auth", default="")
    a = ap.parse_args()
    delay = a.delay_ms / 1000
    smtp_port = free_port()
    controller = Controller(Mail(a.out, delay), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), gateway(a.out, delay, a.auth))
    print(f"ready {smtp_port} {http.server_address[1]}", flush=True)
    try:
        http.serve_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
