"""Generate hint_vectors.json from the reference's hint code (_hints.py),
as Dilation uses it.

Run with the Python that has magic-wormhole 0.24 installed:

    /tmp/gv/bin/python transit/testdata/gen_hint_vectors.py > transit/testdata/hint_vectors.json

"encode": encode_hint() of hint objects, serialised with json.dumps exactly
as the reference sends it inside a "connection-hints" message.

"version_fields": the keys wormhole.py adds to the version message when
dilation=True.

"relay_argv": parse_hint_argv() of transit_relay_location strings (what
the Connector turns into its relay hint).

"parse": for each hint dict (given as the JSON text a peer would send),
what the Dilation manager's use_hints() keeps: parse_hint(), dropping None.
"reference" is one of
  {"kind": "direct", ...}, {"kind": "tor", ...},
  {"kind": "relay", "hints": [...]}  (the nested hints parse_hint kept),
  {"kind": "dropped"}                 (parse_hint returned None),
  {"kind": "raises", "error": "..."}  (parse_hint raised: in the reference
                                       this breaks use_hints for the whole
                                       message).
"""
import json
import sys
from unittest import mock

import wormhole
from wormhole._hints import (DirectTCPV1Hint, TorTCPV1Hint, RelayV1Hint,
                             encode_hint, parse_hint, parse_hint_argv)
from wormhole._dilation.connector import Connector
from wormhole._dilation.manager import DILATION_VERSIONS


def describe(h):
    if h is None:
        return {"kind": "dropped"}
    if isinstance(h, DirectTCPV1Hint):
        return {"kind": "direct", "hostname": h.hostname, "port": h.port, "priority": h.priority}
    if isinstance(h, TorTCPV1Hint):
        return {"kind": "tor", "hostname": h.hostname, "port": h.port, "priority": h.priority}
    if isinstance(h, RelayV1Hint):
        return {"kind": "relay", "hints": [describe(x) for x in h.hints]}
    raise TypeError(h)


ENCODE = [
    ("direct", DirectTCPV1Hint("192.168.1.5", 40123, 0.0)),
    ("direct priority", DirectTCPV1Hint("10.0.0.2", 4444, 1.5)),
    ("direct ipv6", DirectTCPV1Hint("::1", 1, 0.0)),
    ("relay", RelayV1Hint(hints=(DirectTCPV1Hint("transit.magic-wormhole.io", 4001, 0.0),))),
    # what Connector builds from transit_relay_location "tcp:relay.example:4001"
    ("relay from argv", RelayV1Hint(hints=(parse_hint_argv("tcp:relay.example:4001"),))),
]

PARSE = [
    # name, JSON text of one hint
    ("direct", '{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "1.2.3.4", "port": 1234}'),
    ("direct no priority", '{"type": "direct-tcp-v1", "hostname": "host.example", "port": 80}'),
    ("direct int priority", '{"type": "direct-tcp-v1", "priority": 2, "hostname": "h", "port": 65535}'),
    ("direct negative priority", '{"type": "direct-tcp-v1", "priority": -0.5, "hostname": "h", "port": 1}'),
    ("direct extra fields", '{"type": "direct-tcp-v1", "hostname": "h", "port": 7, "future": [1, 2]}'),
    ("direct ipv6", '{"type": "direct-tcp-v1", "hostname": "fe80::1", "port": 9}'),
    ("tor", '{"type": "tor-tcp-v1", "priority": 0.0, "hostname": "abc.onion", "port": 80}'),
    ("relay", '{"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "transit.magic-wormhole.io", "port": 4001}]}'),
    ("relay two ways", '{"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "hostname": "r1", "port": 1}, {"type": "direct-tcp-v1", "hostname": "r2", "port": 2, "priority": 0.5}]}'),
    ("relay with tor inside", '{"type": "relay-v1", "hints": [{"type": "tor-tcp-v1", "hostname": "x.onion", "port": 1}, {"type": "direct-tcp-v1", "hostname": "r", "port": 2}]}'),
    ("relay with unknown inside", '{"type": "relay-v1", "hints": [{"type": "websocket-v1", "url": "wss://r"}, {"type": "direct-tcp-v1", "hostname": "r", "port": 2}]}'),
    ("relay with bad port inside", '{"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "hostname": "bad", "port": "2"}, {"type": "direct-tcp-v1", "hostname": "good", "port": 3}]}'),
    ("relay with bad hostname inside", '{"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "hostname": 5, "port": 2}, {"type": "direct-tcp-v1", "hostname": "good", "port": 3}]}'),
    ("relay empty", '{"type": "relay-v1", "hints": []}'),
    ("relay without hints", '{"type": "relay-v1"}'),
    ("relay hints null", '{"type": "relay-v1", "hints": null}'),
    ("unknown type", '{"type": "carrier-pigeon-v1", "hostname": "h", "port": 1}'),
    ("no type", '{"hostname": "h", "port": 1}'),
    ("type not a string", '{"type": 5, "hostname": "h", "port": 1}'),
    ("port string", '{"type": "direct-tcp-v1", "hostname": "h", "port": "1234"}'),
    ("port float", '{"type": "direct-tcp-v1", "hostname": "h", "port": 1234.0}'),
    ("port missing", '{"type": "direct-tcp-v1", "hostname": "h"}'),
    ("port null", '{"type": "direct-tcp-v1", "hostname": "h", "port": null}'),
    ("hostname missing", '{"type": "direct-tcp-v1", "port": 1}'),
    ("hostname not a string", '{"type": "direct-tcp-v1", "hostname": ["h"], "port": 1}'),
    # The reference accepts these; gander refuses them (they cannot be
    # dialled, or are not what any reference encoder produces).
    ("port zero", '{"type": "direct-tcp-v1", "hostname": "h", "port": 0}'),
    ("port negative", '{"type": "direct-tcp-v1", "hostname": "h", "port": -1}'),
    ("port too big", '{"type": "direct-tcp-v1", "hostname": "h", "port": 65536}'),
    ("port bool", '{"type": "direct-tcp-v1", "hostname": "h", "port": true}'),
    ("hostname empty", '{"type": "direct-tcp-v1", "hostname": "", "port": 1}'),
    ("priority string", '{"type": "direct-tcp-v1", "hostname": "h", "port": 1, "priority": "high"}'),
    # Not an object at all: the reference raises.
    ("string", '"direct-tcp-v1"'),
    ("array", '[1, 2]'),
    ("null", 'null'),
]

RELAY_ARGV = [
    "tcp:transit.magic-wormhole.io:4001",
    "tcp:127.0.0.1:1",
    "tcp:[::1]:4001",
    "tcp:host:65535",
    "tcp:host:0",
    "tcp:host:65536",
    "tcp:host:+80",
    "tcp:host:08",
    "tcp:host:port",
    "tcp:host",
    "tcp::4001",
    "tcp:host:4001:priority=2.5",
    "udp:host:4001",
    "TCP:host:4001",
    "host:4001",
    "",
]


def main():
    out = {
        "generator": "dilation/testdata/gen_hint_vectors.py",
        "reference": "magic-wormhole %s, wormhole._hints" % wormhole.__version__,
        "encode": [],
        "parse": [],
        "relay_argv": [],
        "version_fields": {
            "can-dilate": DILATION_VERSIONS,
            "dilation-abilities": Connector.get_connection_abilities(),
        },
    }
    for name, h in ENCODE:
        out["encode"].append({"name": name, "hint": describe(h), "json": json.dumps(encode_hint(h))})
    for name, text in PARSE:
        with mock.patch("wormhole._hints.log.msg"):
            try:
                ref = describe(parse_hint(json.loads(text)))
            except Exception as e:  # noqa: BLE001 -- any failure is the answer
                ref = {"kind": "raises", "error": type(e).__name__}
        out["parse"].append({"name": name, "json": text, "reference": ref})
    for s in RELAY_ARGV:
        err = []
        class Sink:
            def write(self, m):
                err.append(m)
        h = parse_hint_argv(s, stderr=Sink())
        out["relay_argv"].append({"location": s, "reference": describe(h)})
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
