#!/usr/bin/env python3
"""Local SMTP sink for the MAMOCHI stack.

Accepts mail over real SMTP on loopback and keeps every message, exactly as
received, as one .eml file in the mail directory. Tests and the demo read
those files to see precisely what the platform sent. It relays nothing.

File names sort by arrival: <epoch-ms>-<sequence>.eml. Each file starts with
X-Sink-Mail-From / X-Sink-Rcpt-To headers carrying the SMTP envelope, then the
message as the client sent it. A file is written under a temporary name and
renamed, so a reader never sees half a message.
"""

import argparse
import asyncio
import itertools
import os
import signal
import time

from aiosmtpd.controller import Controller


class EmlWriter:
    def __init__(self, directory):
        self.directory = directory
        self.sequence = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        name = "%d-%06d.eml" % (time.time() * 1000, next(self.sequence))
        final = os.path.join(self.directory, name)
        partial = os.path.join(self.directory, "." + name + ".part")
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        with open(partial, "wb") as out:
            out.write(b"X-Sink-Mail-From: %s\r\n" % envelope.mail_from.encode())
            out.write(b"X-Sink-Rcpt-To: %s\r\n" % ", ".join(envelope.rcpt_tos).encode())
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.rename(partial, final)
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", required=True)
    args = parser.parse_args()
    os.makedirs(args.maildir, exist_ok=True)

    controller = Controller(EmlWriter(args.maildir), hostname=args.host, port=args.port,
                            data_size_limit=10 * 1024 * 1024)
    controller.start()
    print("smtp sink listening on %s:%d, mail in %s" % (args.host, args.port, args.maildir), flush=True)

    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()
    print("smtp sink stopped", flush=True)


if __name__ == "__main__":
    main()
