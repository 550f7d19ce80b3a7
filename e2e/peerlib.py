"""What the e2e Python peers share: they report JSON lines on stdout, run
until the test closes their stdin, and the hostile ones pair and dilate with
magic-wormhole 0.24's own library before they misbehave."""

import argparse
import json
import sys

from twisted.internet import defer, protocol, stdio
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.basic import LineReceiver
from twisted.python import log
from zope.interface import implementer

import wormhole


def report(**fields):
    """Writes fields as one JSON line (in the order given: the tests match
    the lines' start) and flushes, so that the test sees it at once."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class StdinWatcher(LineReceiver):
    delimiter = b"\n"

    def __init__(self, closed):
        self.closed = closed

    def lineReceived(self, line):
        pass

    def connectionLost(self, reason):
        if not self.closed.called:
            self.closed.callback(None)


def stdin_closed():
    """A Deferred that fires once the test closes this peer's stdin."""
    closed = defer.Deferred()
    stdio.StandardIO(StdinWatcher(closed))
    return closed


@defer.inlineCallbacks
def close_wormhole(w):
    """Closes w, reporting {"close_error": ...} if the peer went first."""
    try:
        yield w.close()
    except Exception as e:  # the peer may already have gone
        report(close_error=str(e))


@implementer(IHalfCloseableProtocol)
class Echo(protocol.Protocol):
    """An "echo" subchannel: copies back what comes; the peer's CLOSE ends
    our write side too."""

    def dataReceived(self, data):
        self.transport.write(data)

    def readConnectionLost(self):
        self.transport.loseWriteConnection()

    def writeConnectionLost(self):
        pass


def dilation_peer_arguments(description):
    """An argument parser with what every hostile Dilation peer takes: where
    to meet gander (--mailbox, --appid) and the code it made (--code)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--mailbox", required=True)
    parser.add_argument("--appid", default="gander.test/dilation")
    parser.add_argument("--code", required=True)
    return parser


@defer.inlineCallbacks
def dilate_serving_echo(reactor, mailbox, appid, code, relay=None):
    """Joins the wormhole code at mailbox under appid with the reference's
    own Dilation, reports {"code": ...}, dilates (through relay, if given),
    serves "echo" subchannels so that the test can check the connection
    still works after the misbehaviour, and reports {"dilated": true}.
    Returns the DilatedWormhole; its _manager is the reference's Manager.

    It turns the reference's logging off: a hostile peer makes it log
    thousands of tracebacks nobody needs (a CLOSE for every subchannel
    opened behind its back, a NoTransition for every message it dropped)."""
    log.startLoggingWithObserver(lambda event: None, setStdout=False)
    w = wormhole.create(appid, mailbox, reactor, dilation=True)
    w.set_code(code)
    report(code=(yield w.get_code()))
    dilated = w.dilate(transit_relay_location=relay)
    yield dilated.listener_for("echo").listen(protocol.Factory.forProtocol(Echo))
    yield dilated.when_dilated()
    report(dilated=True)
    return dilated
