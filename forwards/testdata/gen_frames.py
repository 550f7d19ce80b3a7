"""Prints the fowl frames protocol_test.go expects, as fowl 26.8 encodes them
(u16 big-endian length, then msgpack.packb of the dict). Regenerate with
  $GANDER_E2E_VENV/bin/python forwards/testdata/gen_frames.py
"""
import struct

import msgpack


def frame(d):
    body = msgpack.packb(d)
    return (struct.pack("!H", len(body)) + body).hex()


for d in [
    {"kind": "request-listener", "unique-name": "chat", "listen-port": None},
    {"kind": "request-listener", "unique-name": "chat", "listen-port": 8888},
    {"kind": "listener-response", "unique-name": "chat", "listening": True},
    {"kind": "listener-response", "unique-name": "chat", "listening": True, "desired-port": 2222},
    {"unique-name": "chat"},
    {"connected": True},
    {"connected": False, "reason": "Against local policy"},
]:
    print(frame(d))
