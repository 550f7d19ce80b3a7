"""A hostile fowl peer for gander's e2e tests: it floods listen requests.

It joins a wormhole with fowl's app id and version fields, dilates, and
opens one "fowl-commands" subchannel per request, as fowl does, each
carrying one request-listener frame. First --repeat requests for the same
service (--service, --port), then, after --pause seconds, --distinct
requests for service-0, service-1, ... Every listener-response is counted
by its reason; it reports on stdout as JSON lines: {"code": ...},
{"dilated": true}, {"sent": N} after each phase, and {"answers": N,
"reasons": {...}} each time an answer comes. It exits when stdin closes.
"""

import argparse
import struct
from collections import Counter

import msgpack
from twisted.internet import defer, protocol, task

import wormhole
from peerlib import close_wormhole, report, stdin_closed

APPID = "meejah.ca/wormhole/forward"

answers = Counter()


class Request(protocol.Protocol):
    """One fowl-commands subchannel: one request, one answer."""

    def __init__(self, name, port):
        self.name, self.port = name, port
        self.buf = b""

    def connectionMade(self):
        body = msgpack.packb({"kind": "request-listener", "unique-name": self.name, "listen-port": self.port})
        self.transport.write(struct.pack(">H", len(body)) + body)

    def dataReceived(self, data):
        self.buf += data
        while len(self.buf) >= 2:
            (n,) = struct.unpack(">H", self.buf[:2])
            if len(self.buf) < 2 + n:
                return
            msg = msgpack.unpackb(self.buf[2 : 2 + n])
            self.buf = self.buf[2 + n :]
            answers["listening" if msg.get("listening") else msg.get("reason", "")] += 1
            report(answers=sum(answers.values()), reasons=dict(answers))


@defer.inlineCallbacks
def main(reactor, args):
    w = wormhole.create(APPID, args.mailbox, reactor, dilation=True, versions={"fowl": {"features": ["core-v1"]}})
    w.set_code(args.code)
    report(code=(yield w.get_code()))
    dilated = w.dilate(transit_relay_location=None)
    yield dilated.when_dilated()
    report(dilated=True)
    commands = dilated.connector_for("fowl-commands")

    def flood(names):
        for name in names:
            commands.connect(protocol.Factory.forProtocol(lambda name=name: Request(name, args.port)))
        report(sent=len(names))

    flood([args.service] * args.repeat)
    yield task.deferLater(reactor, args.pause, lambda: None)
    flood(["service-%d" % i for i in range(args.distinct)])

    yield stdin_closed()
    yield close_wormhole(w)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailbox", required=True)
    parser.add_argument("--code", required=True)
    parser.add_argument("--service", default="web")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--distinct", type=int, default=40)
    parser.add_argument("--pause", type=float, default=2.0)
    task.react(main, (parser.parse_args(),))
