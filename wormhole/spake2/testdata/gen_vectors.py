#!/usr/bin/env python3
"""Generate vectors.json: known answers from python-spake2 0.9 SPAKE2_Symmetric.

The Go tests in ../spake2_test.go replay every case and must agree byte for
byte. To regenerate (from the repository root):

    python3 -m venv /tmp/gv && /tmp/gv/bin/pip install spake2==0.9
    /tmp/gv/bin/python wormhole/spake2/testdata/gen_vectors.py \
        > wormhole/spake2/testdata/vectors.json

The output is deterministic: all randomness comes from python-spake2's own
test PRG (spake2.test.common.PRG): the concatenation of
SHA256(b"prng-" + str(counter) + b"-" + seed) for counter = 0, 1, ...

"exchanges" are two honest sides A and B; "inbound" feeds one side (password,
id, PRG seed) a crafted inbound message and records what finish() does: the
key, or the name of the exception python raised.
"""

import json
import sys
import unicodedata
from hashlib import sha256

import spake2
from spake2 import SPAKE2_Symmetric, ed25519_basic
from spake2.parameters.ed25519 import ParamsEd25519
from spake2.test.common import PRG

assert spake2.__version__ == "0.9", spake2.__version__

APPID = b"lothar.com/wormhole/text-or-file-xfer"
GROUP = ParamsEd25519.group


def nfc(s):
    # magic-wormhole's util.to_bytes
    return unicodedata.normalize("NFC", s).encode("utf-8")


def scalar_hex(pw):
    # 32-byte little-endian encoding of the password scalar
    return GROUP.scalar_to_bytes(GROUP.password_to_scalar(pw)).hex()


def exchange(name, pw_a, id_sym, seed_a, seed_b, pw_b=None):
    pw_b = pw_a if pw_b is None else pw_b
    a = SPAKE2_Symmetric(pw_a, idSymmetric=id_sym, entropy_f=PRG(seed_a))
    b = SPAKE2_Symmetric(pw_b, idSymmetric=id_sym, entropy_f=PRG(seed_b))
    msg_a, msg_b = a.start(), b.start()
    key_a, key_b = a.finish(msg_b), b.finish(msg_a)
    return {
        "name": name,
        "password_a_hex": pw_a.hex(),
        "password_b_hex": pw_b.hex(),
        "id_hex": id_sym.hex(),
        "seed_a": seed_a.decode("ascii"),
        "seed_b": seed_b.decode("ascii"),
        "pw_scalar_a": scalar_hex(pw_a),
        "pw_scalar_b": scalar_hex(pw_b),
        "x_scalar_a": GROUP.scalar_to_bytes(a.xy_scalar).hex(),
        "x_scalar_b": GROUP.scalar_to_bytes(b.xy_scalar).hex(),
        "msg_a": msg_a.hex(),
        "msg_b": msg_b.hex(),
        "key_a": key_a.hex(),
        "key_b": key_b.hex(),
    }


def inbound(name, inbound_msg, pw=b"4-purple-sausages", id_sym=APPID, seed=b"1"):
    s = SPAKE2_Symmetric(pw, idSymmetric=id_sym, entropy_f=PRG(seed))
    s.start()
    case = {
        "name": name,
        "password_hex": pw.hex(),
        "id_hex": id_sym.hex(),
        "seed": seed.decode("ascii"),
        "inbound_hex": inbound_msg.hex(),
    }
    try:
        case["key"] = s.finish(inbound_msg).hex()
    except Exception as e:  # record which check fired, by exception class
        case["error"] = type(e).__name__
    return case


def le32(n):
    return n.to_bytes(32, "little")


def main():
    Q = ed25519_basic.Q
    exchanges = [
        # python-spake2's own test_compat.py vector (published key 9c4fccaa...)
        exchange("upstream-test-compat", b"password", b"", b"1", b"2"),
        exchange("wormhole-code", b"4-purple-sausages", APPID, b"1", b"2"),
        exchange("wormhole-code-other-seeds", b"4-purple-sausages", APPID, b"3", b"4"),
        exchange("non-ascii-nfc", nfc("7-nai\u0308ve-cafe\u0301-\u65e5\u672c"), APPID, b"a", b"b"),
        exchange("empty-password-empty-id", b"", b"", b"5", b"6"),
        exchange("binary-password", bytes.fromhex("0001feff"), b"x", b"7", b"8"),
        exchange("long-password", b"12-" + b"abcdefgh" * 40, APPID, b"9", b"10"),
        exchange("wrong-password", b"4-purple-sausages", APPID, b"1", b"2",
                 pw_b=b"4-purple-sausage"),
    ]

    peer = SPAKE2_Symmetric(b"4-purple-sausages", idSymmetric=APPID,
                            entropy_f=PRG(b"2")).start()
    me = SPAKE2_Symmetric(b"4-purple-sausages", idSymmetric=APPID,
                          entropy_f=PRG(b"1")).start()
    peer_elem = ed25519_basic.bytes_to_element(peer[1:])
    order2 = le32(Q - 1)  # (0, -1)
    mixed = peer_elem.add(ed25519_basic.bytes_to_unknown_group_element(order2))
    negated = peer[1:32] + bytes([peer[32] ^ 0x80])  # flip the sign of x: -Y
    zero = ed25519_basic.Zero.to_bytes()
    cases = [
        inbound("honest-peer", peer),
        inbound("negated-peer-element", b"S" + negated),
        inbound("reflection", me),
        inbound("empty", b""),
        inbound("side-only", b"S"),
        inbound("side-A", b"A" + peer[1:]),
        inbound("side-B", b"B" + peer[1:]),
        inbound("side-unknown", b"X" + peer[1:]),
        inbound("short", peer[:-1]),
        inbound("trailing-byte", peer + b"\x00"),
        inbound("identity", b"S" + zero),
        inbound("identity-negative-zero-x", b"S" + zero[:31] + b"\x80"),
        inbound("identity-noncanonical-y", b"S" + le32(Q + 1)),
        inbound("identity-noncanonical-y-sign", b"S" + le32(Q + 1 + (1 << 255))),
        inbound("order-2", b"S" + order2),
        inbound("order-4", b"S" + le32(0)),
        inbound("order-4-sign", b"S" + le32(1 << 255)),
        inbound("order-8", b"S" + bytes.fromhex(
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")),
        inbound("order-8-b", b"S" + bytes.fromhex(
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")),
        inbound("mixed-order", b"S" + mixed.to_bytes()),
        inbound("not-on-curve", b"S" + le32(2)),
        inbound("not-on-curve-noncanonical", b"S" + le32(Q + 2)),
    ]

    out = {
        "generator": "gen_vectors.py, python-spake2 %s" % spake2.__version__,
        "S": ParamsEd25519.S.to_bytes().hex(),
        "exchanges": exchanges,
        "inbound": cases,
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
