"""A hostile classic file sender: magic-wormhole 0.24's own wormhole and
Transit (TransitSender: its hints, relay handshake and secretbox records),
offering crafted files and zips as `wormhole send` never would.

  --case zip-slip    a directory whose zip holds "../<escape>" beside a good file
  --case absolute    a zip entry named with the absolute path --absolute
  --case symlink     a zip entry that is a symbolic link to "../..", then a
                     file "link/<escape>" through it
  --case lying-zip   a zip whose directory says an entry has 10 bytes; it has 100,000
  --case zip-more    a directory offer of N zip bytes that sends more
  --case file-more   a file offer of 1000 bytes that sends 100,000
  --case bomb        1 GiB of zeros deflated to ~1 MiB; the offer says 100 MiB
  --case lying-bomb  the same, its zip's directory claiming 50 MiB

It allocates a code and reports JSON lines on stdout: {"code": ...},
{"sent": N} once the bytes are written, then how it ended: {"ack": {...}}
(the receiver's last record), {"error": "..."} (a refusal in the mailbox),
or {"closed": "..."} (the Transit connection closed without an ack). It
exits when stdin closes.
"""

import argparse
import io
import struct
import zipfile

from twisted.internet import defer, task
from twisted.python import log

import wormhole
from peerlib import report, stdin_closed
from wormhole.transit import TransitSender
from wormhole.util import bytes_to_dict, dict_to_bytes

APPID = "lothar.com/wormhole/text-or-file-xfer"


def build_zip(entries):
    """entries: (ZipInfo or name, data). Returns the zip's bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def entry(name, mode=0o100644, compress=zipfile.ZIP_STORED):
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: external_attr carries the mode
    info.external_attr = mode << 16
    info.compress_type = compress
    return info


def patch_central_size(data, size):
    """Makes the (only) central directory header claim `size` uncompressed
    bytes: archive/zip and Python's zipfile take sizes from there."""
    at = data.index(b"PK\x01\x02")
    return data[:at + 24] + struct.pack("<I", size) + data[at + 28:]


def offer_for(args):
    """Returns (offer, payload bytes)."""
    good = (entry("good.txt"), b"a good file\n")
    case = args.case
    if case == "zip-slip":
        z = build_zip([good, (entry("../" + args.escape), b"escaped\n")])
    elif case == "absolute":
        z = build_zip([good, (entry(args.absolute), b"absolute\n")])
    elif case == "symlink":
        z = build_zip([(entry("link", mode=0o120777), b"../.."), (entry("link/" + args.escape), b"through the link\n")])
    elif case == "lying-zip":
        z = patch_central_size(build_zip([(entry("big.bin"), b"A" * 100_000)]), 10)
    elif case == "zip-more":
        z = build_zip([good])
        return directory_offer(z, 1, 12), z + b"B" * 100_000
    elif case == "file-more":
        return {"file": {"filename": "small.bin", "filesize": 1000}}, b"C" * 100_000
    elif case in ("bomb", "lying-bomb"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            with zf.open(entry("zeros.bin", compress=zipfile.ZIP_DEFLATED), "w") as f:
                chunk = bytes(1 << 20)
                for _ in range(1024):
                    f.write(chunk)
        z = buf.getvalue()
        if case == "lying-bomb":  # the header claims 50 MiB, under the offer's 100
            z = patch_central_size(z, 50 << 20)
        return directory_offer(z, 1, 100 << 20), z
    else:
        raise SystemExit(f"unknown case {case}")
    return directory_offer(z, 2, 100), z


def directory_offer(z, numfiles, numbytes):
    return {"directory": {"mode": "zipfile/deflated", "dirname": "received", "zipsize": len(z),
                          "numbytes": numbytes, "numfiles": numfiles}}


@defer.inlineCallbacks
def send(reactor, args, w):
    offer, payload = offer_for(args)
    yield w.get_verifier()  # the key exists only once the receiver joined
    ts = TransitSender(args.transit_helper, reactor=reactor)
    hints = yield ts.get_connection_hints()
    w.send_message(dict_to_bytes({"transit": {"abilities-v1": ts.get_connection_abilities(), "hints-v1": hints}}))
    ts.set_transit_key(w.derive_key(APPID + "/transit-key", ts.TRANSIT_KEY_LENGTH))
    # The offer says one size; the records carry `payload`, whatever it is.
    w.send_message(dict_to_bytes({"offer": offer}))
    while True:
        them = bytes_to_dict((yield w.get_message()))
        if "error" in them:
            report(error=them["error"])
            return
        if "transit" in them:
            ts.add_connection_hints(them["transit"].get("hints-v1", []))
        if "answer" in them:
            break
    pipe = yield ts.connect()
    lost = defer.Deferred()
    orig = pipe.connectionLost

    def connection_lost(reason):
        if not lost.called:
            lost.callback(str(reason.value))
        return orig(reason)

    pipe.connectionLost = connection_lost
    for i in range(0, len(payload), 16384):
        pipe.send_record(payload[i:i + 16384])
    report(sent=len(payload))
    ack = pipe.receive_record()
    first = yield defer.DeferredList([ack, lost], fireOnOneCallback=True, fireOnOneErrback=True, consumeErrors=True)
    result, which = first
    if which == 0:
        report(ack=bytes_to_dict(result))
    else:
        report(closed=result)


@defer.inlineCallbacks
def main(reactor, args):
    log.startLoggingWithObserver(lambda event: None, setStdout=False)
    w = wormhole.create(APPID, args.mailbox, reactor)
    w.allocate_code(2)
    code = yield w.get_code()
    report(code=code)
    closed = stdin_closed()
    try:
        yield send(reactor, args, w)
    except Exception as e:  # what the test should read, not a traceback
        report(closed=f"{type(e).__name__}: {e}")
    yield closed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailbox", required=True)
    parser.add_argument("--transit-helper", required=True)
    parser.add_argument("--case", required=True)
    parser.add_argument("--escape", default="escaped.txt", help="the name an escaping entry aims for")
    parser.add_argument("--absolute", default="/tmp/gander-absolute-escape.txt")
    task.react(main, (parser.parse_args(),))
