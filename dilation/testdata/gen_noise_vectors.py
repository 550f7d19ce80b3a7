"""Generate noise_vectors.json: a whole reference L2 conversation with fixed
ephemeral keys.

Run with the Python that has magic-wormhole 0.24 (and noiseprotocol)
installed:

    /tmp/gv/bin/python dilation/testdata/gen_noise_vectors.py > dilation/testdata/noise_vectors.json

Both sides are the reference's own L2 code: wormhole._dilation.connector's
build_noise() and prologues, and wormhole._dilation.connection's _Framer
(prologue and length-prefixed frames) and _Record (Noise handshake, record
encryption and the splitting of large records into 65519-byte pieces),
driven the way DilatedConnectionProtocol drives them (the Follower sends its
KCM as soon as the handshake is done; the Leader sends its KCM when it
selects the connection). The only non-reference step is fixing each side's
ephemeral key, which noiseprotocol allows (it warns that this is for
testing).

The ephemeral private keys are the first 32 bytes that Go's
testing/cryptotest.SetGlobalRandom(t, 1) (Leader) and (t, 2) (Follower) make
crypto/rand return (a ChaCha8 stream keyed by the seed in little-endian
order), so that gander's own handshake() can be checked against these bytes
in a test. l2_test.go confirms that assumption before relying on it.
"""
import hashlib
import json
import sys
import warnings

from noise.connection import Keypair
from twisted.internet.testing import StringTransport

import wormhole
from wormhole.util import HKDF
from wormhole._dilation.connection import (_Framer, _Record, Handshake, KCM,
                                           Ping, Pong, Open, Data, Close, Ack)
from wormhole._dilation.connector import (build_noise, build_sided_relay_handshake,
                                          PROLOGUE_LEADER, PROLOGUE_FOLLOWER,
                                          NOISEPROTO)
from wormhole._dilation.roles import LEADER, FOLLOWER

warnings.simplefilter("ignore")  # "ephemeral keypair is already set"

# The master key of upstream test_keys.py, and the Dilation key derived from
# it (protocol digest section 7).
MASTER = bytes.fromhex("588ba9eef353778b074413a0140205d90d7479e36e0dd4ee35bb729d26131ef1")
PSK = HKDF(MASTER, 32, CTXinfo=b"dilation-v1")
assert PSK.hex() == "676f8bcdf9a81a0b230165160353fc140322251e0a6ac5cc88c715e05f60c2dc"

LEADER_E = bytes.fromhex("6ae6783f4fbde91b6eb88b73a48ed247dbe5882e2579683432c1bfc525454add")
FOLLOWER_E = bytes.fromhex("1490066b778935b0bb4925e3db151c5b424ad7c63bdc307ad11f7e871ae65bfa")

# Frames longer than this are stored as length + SHA-256 only.
INLINE_LIMIT = 1024


def big_payload(n):
    """The payload of the large DATA records: byte i is i mod 251."""
    return bytes(i % 251 for i in range(n))


def describe(r):
    if isinstance(r, KCM):
        return {"type": "kcm"}
    if isinstance(r, (Ping, Pong)):
        return {"type": type(r).__name__.lower(), "id": r.ping_id.hex()}
    if isinstance(r, Open):
        return {"type": "open", "scid": r.scid, "seqnum": r.seqnum, "subprotocol": r.subprotocol}
    if isinstance(r, Data):
        d = {"type": "data", "scid": r.scid, "seqnum": r.seqnum}
        if len(r.data) > 64:
            d["big_payload_len"] = len(r.data)
            assert r.data == big_payload(len(r.data))
        else:
            d["data"] = r.data.hex()
        return d
    if isinstance(r, Close):
        return {"type": "close", "scid": r.scid, "seqnum": r.seqnum}
    if isinstance(r, Ack):
        return {"type": "ack", "seqnum": r.resp_seqnum}
    raise TypeError(r)


class Side:
    def __init__(self, role, ephemeral):
        n = build_noise()
        n.set_psks(PSK)
        if role is LEADER:
            n.set_as_initiator()
            out_p, in_p = PROLOGUE_LEADER, PROLOGUE_FOLLOWER
        else:
            n.set_as_responder()
            out_p, in_p = PROLOGUE_FOLLOWER, PROLOGUE_LEADER
        n.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
        self.role = role
        self.t = StringTransport()
        self.framer = _Framer(self.t, out_p, in_p)
        self.record = _Record(self.framer, n, role)
        if role is LEADER:
            self.record.set_role_leader()
        else:
            self.record.set_role_follower()
        self.sent = []

    def take(self, what, record=None):
        """Log what the side wrote since the last take."""
        b = self.t.value()
        self.t.clear()
        entry = {"what": what}
        if record is not None:
            entry["record"] = describe(record)
        if len(b) <= INLINE_LIMIT:
            entry["hex"] = b.hex()
        else:
            entry["len"] = len(b)
            entry["sha256"] = hashlib.sha256(b).hexdigest()
            entry["head_hex"] = b[:64].hex()
        self.sent.append(entry)
        return b

    def send(self, r):
        self.record.send_record(r)
        return self.take("record", r)

    def receive(self, data):
        return list(self.record.add_and_unframe(data))


def main():
    L = Side(LEADER, LEADER_E)
    F = Side(FOLLOWER, FOLLOWER_E)

    L.record.connectionMade()
    to_f = L.take("prologue")
    F.record.connectionMade()
    to_l = F.take("prologue")

    # The Leader sees the Follower's prologue and sends Noise message 1.
    assert L.receive(to_l) == []
    to_f += L.take("handshake")
    # The Follower checks the prologue, reads message 1, answers with message
    # 2, and (DilatedConnectionProtocol.dataReceived) sends its KCM.
    assert F.receive(to_f) == [Handshake()]
    to_l = F.take("handshake")
    to_l += F.send(KCM())
    # The Leader finishes the handshake and sees the Follower's KCM: the
    # connection is viable. Selecting it sends the Leader's KCM.
    assert L.receive(to_l) == [Handshake(), KCM()]
    to_f = L.send(KCM())
    assert F.receive(to_f) == [KCM()]

    leader_records = [
        Ping(ping_id=b"\x01\x02\x03\x04"),
        Open(scid=1, seqnum=0, subprotocol="proto"),
        Data(scid=1, seqnum=1, data=b"hello"),
        # 140000 + 9 bytes: three Noise messages (65519 + 65519 + 8971)
        Data(scid=1, seqnum=2, data=big_payload(140000)),
        Close(scid=1, seqnum=3),
        Ack(resp_seqnum=2),
    ]
    follower_records = [
        Pong(ping_id=b"\x01\x02\x03\x04"),
        Ack(resp_seqnum=0),
        Open(scid=2, seqnum=0, subprotocol="echo"),
        # 200 KiB + 9 bytes: four Noise messages
        Data(scid=2, seqnum=1, data=big_payload(200 * 1024)),
        # exactly one full Noise message (65510 + 9 = 65519)
        Data(scid=2, seqnum=2, data=big_payload(65510)),
        # one byte more: two messages, the second of one byte
        Data(scid=2, seqnum=3, data=big_payload(65511)),
        Close(scid=2, seqnum=4),
    ]
    for r in leader_records:
        assert F.receive(L.send(r)) == [r]
    for r in follower_records:
        assert L.receive(F.send(r)) == [r]

    out = {
        "generator": "dilation/testdata/gen_noise_vectors.py",
        "reference": "magic-wormhole %s, wormhole._dilation.connection _Framer/_Record" % wormhole.__version__,
        "noise_protocol": NOISEPROTO.decode(),
        "psk": PSK.hex(),
        "leader_ephemeral_private": LEADER_E.hex(),
        "follower_ephemeral_private": FOLLOWER_E.hex(),
        "big_payload": "byte i is i mod 251",
        "relay_example": {
            "key": (b"k" * 32).hex(),
            "side": "12345678abcdabcd",
            "line": build_sided_relay_handshake(b"k" * 32, "12345678abcdabcd").decode(),
        },
        "relay_psk": {
            "key": PSK.hex(),
            "side": "0123456789abcdef",
            "line": build_sided_relay_handshake(PSK, "0123456789abcdef").decode(),
        },
        # What each side writes, in order; every "hex" is the exact bytes of
        # that write (prologue, or 4-byte length + frame).
        "leader_sends": L.sent,
        "follower_sends": F.sent,
    }
    lines = ["{"]
    keys = sorted(out)
    for i, k in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        v = out[k]
        if isinstance(v, list):
            lines.append(" %s: [" % json.dumps(k))
            for j, item in enumerate(v):
                lines.append("  " + json.dumps(item, sort_keys=True) + ("," if j < len(v) - 1 else ""))
            lines.append(" ]" + comma)
        else:
            lines.append(" %s: %s%s" % (json.dumps(k), json.dumps(v, sort_keys=True), comma))
    lines.append("}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
