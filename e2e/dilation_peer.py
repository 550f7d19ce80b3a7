"""A Dilation peer built on magic-wormhole's public API, for gander's e2e tests.

It joins (or allocates) a wormhole with dilation=True, dilates, and then:
  * serves every "echo" subchannel the other side opens by copying it back
    (half-close aware: the peer's CLOSE ends our write side too);
  * serves every "sink" subchannel by counting what arrives and, once the
    other side half-closes, answering with the count in decimal (for
    one-way throughput measurements);
  * with --send N, opens one "echo" subchannel itself, writes N random bytes,
    half-closes and checks that the echo's sha256 matches.

It reports on stdout as JSON lines: {"code": ...}, {"dilated": true},
{"sent": N, "sha256": ..., "echo_ok": bool, "seconds": float}. It exits when
stdin closes or, with --send, after the check.
"""

import argparse
import hashlib
import os
import time

from twisted.internet import defer, protocol, task
from twisted.internet.interfaces import IHalfCloseableProtocol
from zope.interface import implementer

import wormhole
from peerlib import Echo, close_wormhole, report, stdin_closed


@implementer(IHalfCloseableProtocol)
class Sink(protocol.Protocol):
    def connectionMade(self):
        self.count = 0

    def dataReceived(self, data):
        self.count += len(data)

    def readConnectionLost(self):
        self.transport.write(str(self.count).encode())
        self.transport.loseWriteConnection()

    def writeConnectionLost(self):
        pass


@implementer(IHalfCloseableProtocol)
class Checker(protocol.Protocol):
    """Sends `size` random bytes in 64 KiB writes and hashes the echo."""

    def __init__(self, size, done):
        self.size, self.done = size, done
        self.sent_hash = hashlib.sha256()
        self.got_hash = hashlib.sha256()
        self.received = 0

    def connectionMade(self):
        self.started = time.monotonic()
        remaining = self.size
        while remaining > 0:
            chunk = os.urandom(min(65536, remaining))
            self.sent_hash.update(chunk)
            self.transport.write(chunk)
            remaining -= len(chunk)
        self.transport.loseWriteConnection()

    def dataReceived(self, data):
        self.received += len(data)
        self.got_hash.update(data)

    def readConnectionLost(self):
        if not self.done.called:
            self.done.callback(time.monotonic() - self.started)

    def writeConnectionLost(self):
        pass

    def connectionLost(self, reason):
        self.readConnectionLost()


@defer.inlineCallbacks
def main(reactor, args):
    w = wormhole.create(args.appid, args.mailbox, reactor, dilation=True)
    if args.code:
        w.set_code(args.code)
    else:
        w.allocate_code(args.code_length)
    code = yield w.get_code()
    report(code=code)

    dilated = w.dilate(
        transit_relay_location=args.relay or None,
        no_listen=args.no_listen,
        ping_interval=args.ping_interval,
    )
    yield dilated.listener_for("echo").listen(protocol.Factory.forProtocol(Echo))
    yield dilated.listener_for("sink").listen(protocol.Factory.forProtocol(Sink))
    yield dilated.when_dilated()
    report(dilated=True)

    if args.send:
        done = defer.Deferred()
        checker = Checker(args.send, done)
        yield dilated.connector_for("echo").connect(protocol.Factory.forProtocol(lambda: checker))
        seconds = yield done
        report(
            sent=args.send,
            received=checker.received,
            sha256=checker.sent_hash.hexdigest(),
            echo_ok=checker.sent_hash.digest() == checker.got_hash.digest(),
            seconds=seconds,
        )
    else:
        yield stdin_closed()
    yield close_wormhole(w)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailbox", required=True)
    parser.add_argument("--appid", default="gander.test/dilation")
    parser.add_argument("--relay", default="")
    parser.add_argument("--code", default="")
    parser.add_argument("--code-length", type=int, default=2)
    parser.add_argument("--no-listen", action="store_true")
    parser.add_argument("--ping-interval", type=float, default=None)
    parser.add_argument("--send", type=int, default=0)
    task.react(main, (parser.parse_args(),))
