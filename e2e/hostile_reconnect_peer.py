"""A hostile Dilation peer that floods the mailbox with L1 messages.

magic-wormhole 0.24's own Dilation dilates with gander (serving "echo", so
that the test can check the connection still works afterwards), and then
sends, through the reference Manager's own send_dilation_generation (so the
messages are numbered, encrypted and sent exactly as the reference does),
--count rounds of each of --types: "reconnect", "reconnecting" and
"connection-hints" with --hints direct hints each (to as many loopback addresses,
all at --hint-port). With --drop it first closes its Dilation connection and, until the flood
is sent, ignores gander's "reconnect": a gander Leader is reconnecting
(FLUSHING, CONNECTING, dialling the flood's hints) while the flood arrives,
and connects again once it asks for a new generation afterwards.

Messages gander sends back that the reference's state machine has no
transition for (a "reconnecting" while it is connected, say) would raise in
the reference and stop its mailbox processing: they are dropped here, so
that this peer stays able to reconnect. It reports JSON lines: {"code": ...},
{"dilated": true}, {"flood_done": N, "seconds": F}, and exits when stdin
closes.
"""

import json
import time

from twisted.internet import defer, task

from peerlib import dilate_serving_echo, dilation_peer_arguments, report, stdin_closed


class Deaf:
    """While on, the peer's "reconnect" is not heard: its new generations
    get no "reconnecting" and nobody connects to them."""

    on = False


def tolerate_unexpected(manager, deaf):
    received = manager.received_dilation_message

    def safe(plaintext):
        if deaf.on and json.loads(plaintext).get("type") == "reconnect":
            return
        try:
            received(plaintext)
        except Exception:  # automat's NoTransition, mostly
            pass

    manager.received_dilation_message = safe


@defer.inlineCallbacks
def flood(reactor, manager, args):
    # Each hint a different loopback address at --hint-port, where the
    # test counts the connections gander makes.
    hints = [
        {"type": "direct-tcp-v1", "hostname": "127.0.%d.%d" % (i // 250, 1 + i % 250),
         "port": args.hint_port, "priority": 0.0}
        for i in range(args.hints)
    ]
    start = time.monotonic()
    sent = 0
    for _ in range(args.count):
        for kind in args.types.split(","):
            if kind == "connection-hints":
                manager.send_dilation_generation(type=kind, hints=hints)
            else:
                manager.send_dilation_generation(type=kind)
            sent += 1
            if sent % 50 == 0:
                # Let the websocket write what is queued.
                yield task.deferLater(reactor, 0, lambda: None)
    report(flood_done=sent, seconds=time.monotonic() - start)


@defer.inlineCallbacks
def main(reactor, args):
    dilated = yield dilate_serving_echo(reactor, args.mailbox, args.appid, args.code, args.relay or None)
    manager = dilated._manager
    deaf = Deaf()
    tolerate_unexpected(manager, deaf)
    if args.drop:
        deaf.on = True
        manager._connection.transport.loseConnection()
        yield task.deferLater(reactor, 0.2, lambda: None)
    yield flood(reactor, manager, args)
    deaf.on = False
    yield stdin_closed()


if __name__ == "__main__":
    parser = dilation_peer_arguments(__doc__)
    parser.add_argument("--relay", default="")
    parser.add_argument("--types", default="reconnect,reconnecting,connection-hints")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--hints", type=int, default=100)
    parser.add_argument("--hint-port", type=int, required=True)
    parser.add_argument("--drop", action="store_true")
    task.react(main, (parser.parse_args(),))
