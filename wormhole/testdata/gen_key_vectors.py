#!/usr/bin/env python3
"""Generate key_vectors.json: known answers for ../crypto.go from magic-wormhole.

It calls magic-wormhole 0.24's own functions (wormhole.util.HKDF,
wormhole._key.derive_key / derive_phase_key / encrypt_data) and PyNaCl's
SecretBox; ../crypto_test.go replays every case. To regenerate (from the
repository root):

    python3 -m venv /tmp/gv && /tmp/gv/bin/pip install magic-wormhole==0.24.0
    /tmp/gv/bin/python wormhole/testdata/gen_key_vectors.py \
        > wormhole/testdata/key_vectors.json

Everything is deterministic: the only random input, encrypt_data's nonce, is
pinned by patching nacl.utils.random the way upstream's test_keys.py does.

"derive_key" purposes are str, converted with util.to_bytes (NFC, UTF-8)
exactly as the public Wormhole.derive_key(purpose, length) does, so an NFD
purpose must give the same key as its NFC form.
"""

import json
import sys
from hashlib import sha256
from unittest import mock

import nacl.secret
import nacl.utils
import wormhole
from wormhole._key import decrypt_data, derive_key, derive_phase_key, encrypt_data
from wormhole.util import HKDF, to_bytes

assert wormhole.__version__ == "0.24.0", wormhole.__version__

# upstream test_keys.py master key
MAIN = bytes.fromhex("588ba9eef353778b074413a0140205d90d7479e36e0dd4ee35bb729d26131ef1")
# the SPAKE2 key of the "wormhole-code" case in ../spake2/testdata/vectors.json
SPAKE2_KEY = bytes.fromhex("69109e25096c47a7156c0cd2d334eb2b0672ad798da2bf1b3b6cff99677be1c9")
APPID = "lothar.com/wormhole/text-or-file-xfer"


def derive_cases():
    cases = []
    for key in (MAIN, SPAKE2_KEY, b"\x00" * 32, b"k"):
        for purpose, length in [
            ("purpose1", 32),
            ("purpose2", 10),
            ("wormhole:verifier", 32),
            ("dilation-v1", 32),
            (APPID + "/transit-key", 32),
            ("", 32),
            ("caf\u00e9/\u65e5\u672c", 32),  # NFC
            ("cafe\u0301/\u65e5\u672c", 32),  # NFD: same key as the NFC form
            ("short", 1),
            ("long", 100),
        ]:
            out = derive_key(key, to_bytes(purpose), length)
            cases.append({"key": key.hex(), "purpose": purpose,
                          "length": length, "out": out.hex()})
    # HKDF-SHA256's longest output, once
    out = derive_key(MAIN, b"max", 255 * 32)
    cases.append({"key": MAIN.hex(), "purpose": "max", "length": 255 * 32, "out": out.hex()})
    return cases


def phase_cases():
    cases = []
    for key in (MAIN, SPAKE2_KEY):
        for side in ("side1", "side2", "0123456789abcdef", ""):
            for phase in ("phase1", "phase2", "pake", "version", "0", "1", "dilate-0"):
                cases.append({"key": key.hex(), "side": side, "phase": phase,
                              "out": derive_phase_key(key, side, phase).hex()})
    return cases


def seal_cases():
    cases = []
    for key, nonce, plaintext in [
        # upstream test_keys.py test_encrypt
        (bytes.fromhex("ddc543ef8e4629a603d39dd0307a51bb1e7adb9cb259f6b085c91d0842a18679"),
         bytes.fromhex("2d5e43eb465aa42e750f991e425bee485f06abad7e04af80"),
         bytes.fromhex("edc089a518219ec1cee184e89d2d37af")),
        (derive_phase_key(SPAKE2_KEY, "0123456789abcdef", "version"),
         bytes(range(24)),
         b'{"app_versions": {}}'),
        (derive_phase_key(SPAKE2_KEY, "0123456789abcdef", "0"),
         b"\xff" * 24,
         b""),
        (b"\x00" * 32, b"\x00" * 24, bytes(range(256)) * 5),
    ]:
        with mock.patch("nacl.utils.random", return_value=nonce):
            box = encrypt_data(key, plaintext)
        assert box == nacl.secret.SecretBox(key).encrypt(plaintext, nonce)
        assert decrypt_data(key, box) == plaintext
        cases.append({"key": key.hex(), "nonce": nonce.hex(),
                      "plaintext": plaintext.hex(), "box": box.hex()})
    return cases


def hkdf_cases():
    # upstream test_hkdf.py KAT, empty-salt rows only (crypto.go never salts)
    return [{"skm": skm.hex(), "info": info.hex(), "out": HKDF(skm, 64, CTXinfo=info).hex()}
            for skm in (b"secret",) for info in (b"", b"context")]


def main():
    out = {
        "generator": "gen_key_vectors.py, magic-wormhole %s" % wormhole.__version__,
        "hkdf": hkdf_cases(),
        "derive_key": derive_cases(),
        "phase_key": phase_cases(),
        "seal": seal_cases(),
        # Dilation's relay token: HKDF(dilation key, 32, CTXinfo=b"transit_relay_token")
        "relay_token": {
            "dilation_key": derive_key(MAIN, b"dilation-v1").hex(),
            "out": HKDF(derive_key(MAIN, b"dilation-v1"), 32,
                        CTXinfo=b"transit_relay_token").hex(),
        },
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
