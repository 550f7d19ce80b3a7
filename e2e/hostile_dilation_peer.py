"""A hostile Dilation peer: magic-wormhole's own Dilation, made to misbehave.

It joins a wormhole, dilates, serves "echo" subchannels (so that the test can
check the connection still works), and then floods gander with one of:

  unlistened  --count N --size S: N subchannels for a subprotocol nobody
              listens for, each sent S bytes of DATA in one record;
  open        --count N: N OPEN records for such a subprotocol, no data;
  ping        --seconds T: PINGs for T seconds while reading nothing (the
              transport is paused), so that every PONG stays with gander.

It sends the records through the reference's own Manager and Outbound
(private methods: the public API would not misbehave), so they are framed,
numbered and encrypted exactly as the reference does. It reports JSON lines:
{"code": ...}, {"dilated": true}, {"flood_done": N, "seconds": F}, and exits
when stdin closes.
"""

import struct
import time

from twisted.internet import defer, task

from peerlib import dilate_serving_echo, dilation_peer_arguments, report, stdin_closed
from wormhole._dilation.connection import Ping


@defer.inlineCallbacks
def drain(reactor, manager):
    """Lets the reactor write what is queued, as long as the link takes it."""
    yield task.deferLater(reactor, 0, lambda: None)
    while manager._outbound._paused:
        yield task.deferLater(reactor, 0.001, lambda: None)


@defer.inlineCallbacks
def flood(reactor, manager, args):
    start = time.monotonic()
    sent = 0
    if args.flood == "unlistened":
        payload = b"x" * args.size
        for _ in range(args.count):
            scid = manager.allocate_subchannel_id()
            manager.send_open(scid, "nobody")
            manager.send_data(scid, payload)
            sent += 1
            yield drain(reactor, manager)
    elif args.flood == "open":
        for _ in range(args.count):
            manager.send_open(manager.allocate_subchannel_id(), "nobody")
            sent += 1
            if sent % 1000 == 0:
                yield drain(reactor, manager)
    elif args.flood == "ping":
        # Read nothing from now on: gander's PONGs stay with gander.
        manager._connection.transport.pauseProducing()
        while time.monotonic() - start < args.seconds:
            for _ in range(1000):
                manager._outbound.send_if_connected(Ping(struct.pack(">I", sent & 0xFFFFFFFF)))
                sent += 1
            yield task.deferLater(reactor, 0, lambda: None)
        manager._connection.transport.resumeProducing()
    report(flood_done=sent, seconds=time.monotonic() - start)


@defer.inlineCallbacks
def main(reactor, args):
    dilated = yield dilate_serving_echo(reactor, args.mailbox, args.appid, args.code)
    yield flood(reactor, dilated._manager, args)
    yield stdin_closed()


if __name__ == "__main__":
    parser = dilation_peer_arguments(__doc__)
    parser.add_argument("--flood", choices=["unlistened", "open", "ping"], required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=0)
    task.react(main, (parser.parse_args(),))
