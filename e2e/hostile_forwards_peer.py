"""A hostile fowl peer for gander's e2e tests, built on magic-wormhole's
Dilation and fowl 26.8's own command protocol (fowl._proto._SendFowlCommand).

It joins gander's wormhole with fowl's app id and versions, dilates, and then
misbehaves in one of these ways (--mode):

  bomb          opens --count fowl-commands subchannels, each sending one
                11-byte frame whose msgpack string header claims ~4 GB;
  listen-flood  asks --count times, on as many fowl-commands subchannels (at
                most --window at once), for a listener for --name (with
                --distinct, for --name-0, --name-1, ...), on --port if given;
  silent        opens --count fowl subchannels that never send their
                request, and gathers what gander answers for --settle s.

It reports on stdout as JSON lines: {"code": ...} when it allocated one,
{"dilated": true}, then {"done": mode, ...} with what gander answered
("listening": how many positive replies, "reasons": {reason: count},
"closed": subchannels gander closed). It keeps its subchannels open until
stdin closes, so that the test can measure gander meanwhile.
"""

import argparse
import collections
import struct
import time

import msgpack
from twisted.internet import defer, protocol, task

import wormhole
from peerlib import report, stdin_closed
from fowl._proto import APPID, _SendFowlCommand


# {"kind": <str32 of 0xffffffff bytes>} with nothing after the header.
BOMB = bytes.fromhex("81a46b696e64dbffffffff")


class Raw(protocol.Protocol):
    """A subchannel that writes `first` (if any) when connected and gathers
    the frames gander sends back."""

    def __init__(self, first, replies, closed):
        self.first, self.replies, self.closed = first, replies, closed
        self.buf = b""

    def connectionMade(self):
        if self.first:
            self.transport.write(self.first)

    def dataReceived(self, data):
        self.buf += data
        while len(self.buf) >= 2:
            (size,) = struct.unpack("!H", self.buf[:2])
            if len(self.buf) < 2 + size:
                break
            self.replies.append(msgpack.unpackb(self.buf[2 : 2 + size]))
            self.buf = self.buf[2 + size :]

    def connectionLost(self, reason):
        self.closed.append(1)


def tally(replies, closed):
    reasons = collections.Counter(r.get("reason", "") for r in replies if not r.get("listening", r.get("connected")))
    listening = sum(1 for r in replies if r.get("listening", r.get("connected")))
    return dict(listening=listening, reasons=dict(reasons), replies=len(replies), closed=len(closed))


@defer.inlineCallbacks
def bomb(reactor, dilated, args, keep):
    replies, closed = [], []
    connector = dilated.connector_for("fowl-commands")
    for _ in range(args.count):
        p = yield connector.connect(protocol.Factory.forProtocol(lambda: Raw(struct.pack("!H", len(BOMB)) + BOMB, replies, closed)))
        keep.append(p)
        if args.interval:
            yield task.deferLater(reactor, args.interval, lambda: None)
    yield task.deferLater(reactor, args.settle, lambda: None)
    report(done="bomb", sent=args.count, **tally(replies, closed))


@defer.inlineCallbacks
def listen_flood(reactor, dilated, args, keep):
    started = time.monotonic()
    replies = []
    connector = dilated.connector_for("fowl-commands")

    @defer.inlineCallbacks
    def one(i):
        name = f"{args.name}-{i}" if args.distinct else args.name
        factory = protocol.Factory.forProtocol(_SendFowlCommand)
        factory._reactor = reactor  # as fowl's fledge() sets it
        proto = yield connector.connect(factory)
        keep.append(proto)  # closing it would stop the listener
        data = yield defer.ensureDeferred(proto.send_command(name, args.port or None))
        replies.append(msgpack.unpackb(data[2:]))

    def failed(f):
        report(error=str(f.value))

    pending = set()
    for i in range(args.count):
        d = one(i)
        d.addErrback(failed)
        pending.add(d)
        d.addBoth(lambda r, d=d: (pending.discard(d), r)[1])
        if len(pending) >= args.window:
            yield defer.DeferredList(list(pending), consumeErrors=True, fireOnOneCallback=True)
    yield defer.DeferredList(list(pending), consumeErrors=True)
    report(done="listen-flood", seconds=round(time.monotonic() - started, 2), **tally(replies, []))


@defer.inlineCallbacks
def silent(reactor, dilated, args, keep):
    replies, closed = [], []
    connector = dilated.connector_for("fowl")
    for _ in range(args.count):
        p = yield connector.connect(protocol.Factory.forProtocol(lambda: Raw(b"", replies, closed)))
        keep.append(p)
    report(opened=args.count)
    yield task.deferLater(reactor, args.settle, lambda: None)
    report(done="silent", **tally(replies, closed))


@defer.inlineCallbacks
def main(reactor, args):
    w = wormhole.create(
        APPID, args.mailbox, reactor, dilation=True, versions={"fowl": {"features": ["core-v1"]}}
    )
    w.set_code(args.code)
    dilated = w.dilate(transit_relay_location=None)
    yield dilated.when_dilated()
    yield w.get_verifier()
    report(dilated=True)
    keep = []
    yield {"bomb": bomb, "listen-flood": listen_flood, "silent": silent}[args.mode](reactor, dilated, args, keep)
    yield stdin_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailbox", required=True)
    parser.add_argument("--code", required=True)
    parser.add_argument("--mode", required=True, choices=["bomb", "listen-flood", "silent"])
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--name", default="web")
    parser.add_argument("--distinct", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0)
    parser.add_argument("--settle", type=float, default=1)
    task.react(main, (parser.parse_args(),))
