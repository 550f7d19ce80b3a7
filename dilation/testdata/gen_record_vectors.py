"""Generate record_vectors.json from the reference L3 record codec.

Run with the Python that has magic-wormhole 0.24 installed:

    /tmp/gv/bin/python dilation/testdata/gen_record_vectors.py > dilation/testdata/record_vectors.json

Every encoding comes from wormhole._dilation.connection.encode_record, and
every parse result (including the one for each strict prefix of each
encoding, and for the rejected inputs) from parse_record. Nothing here is
computed by hand.
"""
import json
import sys
from unittest import mock

import wormhole
from wormhole._dilation.connection import (parse_record, encode_record,
                                           KCM, Ping, Pong, Open, Data,
                                           Close, Ack)


def describe(r):
    """A record as JSON: bytes as hex, ints as ints, names as text."""
    if isinstance(r, KCM):
        return {"type": "kcm"}
    if isinstance(r, Ping):
        return {"type": "ping", "id": r.ping_id.hex()}
    if isinstance(r, Pong):
        return {"type": "pong", "id": r.ping_id.hex()}
    if isinstance(r, Open):
        return {"type": "open", "scid": r.scid, "seqnum": r.seqnum,
                "subprotocol": r.subprotocol}
    if isinstance(r, Data):
        return {"type": "data", "scid": r.scid, "seqnum": r.seqnum,
                "data": r.data.hex()}
    if isinstance(r, Close):
        return {"type": "close", "scid": r.scid, "seqnum": r.seqnum}
    if isinstance(r, Ack):
        return {"type": "ack", "seqnum": r.resp_seqnum}
    raise TypeError(r)


def reference_parse(b):
    """parse_record(b) as JSON, or None if the reference raises."""
    # parse_record logs unknown types through twisted's log.err, which
    # would otherwise be reported as an unhandled error.
    with mock.patch("wormhole._dilation.connection.log.err"):
        try:
            return describe(parse_record(bytes(b)))
        except (ValueError, TypeError, UnicodeDecodeError):
            return None


MAX = 2**32 - 1
RECORDS = [
    # name, record
    ("kcm", KCM()),
    ("ping", Ping(ping_id=b"\x01\x02\x03\x04")),
    ("ping zero id", Ping(ping_id=b"\x00\x00\x00\x00")),
    ("ping id ff", Ping(ping_id=b"\xff\xff\xff\xff")),
    ("pong", Pong(ping_id=b"\x01\x02\x03\x04")),
    # the examples of upstream test_parse.py, test_encode
    ("upstream ping", Ping(ping_id=b"ping")),
    ("upstream pong", Pong(ping_id=b"pong")),
    ("upstream open", Open(scid=65536, seqnum=16, subprotocol="proto")),
    ("upstream data", Data(scid=65537, seqnum=17, data=b"dataaa")),
    ("upstream close", Close(scid=65538, seqnum=18)),
    ("upstream ack", Ack(resp_seqnum=19)),
    # ... and of test_parse
    ("upstream parse ping", Ping(ping_id=b"\x55\x44\x33\x22")),
    ("upstream parse open", Open(scid=513, seqnum=256, subprotocol="proto")),
    ("upstream parse data", Data(scid=514, seqnum=257, data=b"dataaa")),
    ("upstream parse close", Close(scid=515, seqnum=258)),
    ("upstream parse ack", Ack(resp_seqnum=259)),
    # edges
    ("open empty name", Open(scid=1, seqnum=0, subprotocol="")),
    ("open max", Open(scid=MAX, seqnum=MAX, subprotocol="fowl-commands")),
    ("open non-ascii name", Open(scid=2, seqnum=3, subprotocol="h\u00e9llo-\u20ac-\U0001f600")),
    ("open name with nul", Open(scid=3, seqnum=4, subprotocol="a\x00b")),
    ("data empty", Data(scid=1, seqnum=0, data=b"")),
    ("data binary", Data(scid=7, seqnum=8, data=bytes(range(0, 256, 15)))),
    ("data max", Data(scid=MAX, seqnum=MAX, data=b"\x00")),
    ("close zero", Close(scid=0, seqnum=0)),
    ("close max", Close(scid=MAX, seqnum=MAX)),
    ("ack zero", Ack(resp_seqnum=0)),
    ("ack max", Ack(resp_seqnum=MAX)),
]

REJECTED = [
    # name, bytes the reference refuses (its parse raises)
    ("empty", b""),
    ("type 07", b"\x07"),
    ("upstream unknown", b"\x07unknown"),
    ("type 80", b"\x80\x00\x00\x00\x00"),
    ("type ff", b"\xff"),
    ("open name ff fe", b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\xff\xfe"),
    ("open name truncated 2-byte", b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\xc3"),
    ("open name bad continuation", b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\xc3\x28"),
    ("open name overlong slash", b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\xc0\xaf"),
    ("open name surrogate", b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\xed\xa0\x80"),
    ("open name above U+10FFFF", b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\xf4\x90\x80\x80"),
    ("open name truncated 4-byte", b"\x03\x00\x00\x00\x01\x00\x00\x00\x01ok\xf0\x9f\x98"),
    ("close short", b"\x05\x00\x00\x00\x01\x00\x00\x00"),
    ("ack short", b"\x06\x00\x00"),
]

# The reference's parser does not check lengths for KCM, PING and PONG and
# ignores trailing bytes after CLOSE and ACK; gander refuses all of these
# (no honest encoder produces them). Recorded so the difference is visible.
LENIENT = [
    ("kcm with trailing byte", b"\x00\xff"),
    ("ping short id", b"\x01\x01\x02\x03"),
    ("ping long id", b"\x01\x01\x02\x03\x04\x05"),
    ("pong no id", b"\x02"),
    ("close with trailing byte", b"\x05\x00\x00\x00\x01\x00\x00\x00\x02\x00"),
    ("ack with trailing byte", b"\x06\x00\x00\x00\x01\x00"),
]


def main():
    out = {
        "generator": "dilation/testdata/gen_record_vectors.py",
        "reference": "magic-wormhole %s, wormhole._dilation.connection" % wormhole.__version__,
        "records": [],
        "rejected": [],
        "reference_lenient": [],
    }
    for name, r in RECORDS:
        enc = encode_record(r)
        assert reference_parse(enc) == describe(r), name
        out["records"].append({
            "name": name,
            "record": describe(r),
            "hex": enc.hex(),
            # reference_parse of enc[:n] for n = 0 .. len(enc)-1
            "prefixes": [reference_parse(enc[:n]) for n in range(len(enc))],
        })
    for name, b in REJECTED:
        assert reference_parse(b) is None, name
        out["rejected"].append({"name": name, "hex": b.hex()})
    for name, b in LENIENT:
        parsed = reference_parse(b)
        assert parsed is not None, name
        out["reference_lenient"].append({"name": name, "hex": b.hex(), "reference": parsed})
    # One vector per line, so that a diff shows which vector changed.
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
            lines.append(" %s: %s%s" % (json.dumps(k), json.dumps(v), comma))
    lines.append("}")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
