"""What the e2e Python peers share: they run until the test closes their stdin."""

from twisted.protocols.basic import LineReceiver


class StdinWatcher(LineReceiver):
    delimiter = b"\n"

    def __init__(self, closed):
        self.closed = closed

    def lineReceived(self, line):
        pass

    def connectionLost(self, reason):
        if not self.closed.called:
            self.closed.callback(None)

