// Package classic is `gander send PATH` and `gander receive`: file and
// directory transfer with every wormhole client (magic-wormhole's `wormhole
// send`/`receive`, wormhole-william, wormhole-rs), as the reference CLI 0.24
// speaks it (docs/file-transfer-protocol.md, docs/transit.md):
//
//	mailbox, app id lothar.com/wormhole/text-or-file-xfer:
//	  sender   → {"transit": {"abilities-v1": [...], "hints-v1": [...]}}
//	  sender   → {"offer": {"file": {"filename", "filesize"}}}
//	             {"offer": {"directory": {"mode": "zipfile/deflated", "dirname",
//	                                      "zipsize", "numbytes", "numfiles"}}}
//	  receiver → {"transit": {...}}   (on the sender's)
//	  receiver → {"answer": {"file_ack": "ok"}}  or  {"error": "transfer rejected"}
//	Transit (TCP, direct or through a relay; transit.StartRace):
//	  sender   → "transit sender <hex> ready\n\n"
//	  receiver → "transit receiver <hex> ready\n\n" (once the sender's arrived)
//	  sender   → "go\n" on the connection it picks ("nevermind\n" on the others)
//	  sender   → records: 4-byte big-endian length, 24-byte nonce (a counter),
//	             secretbox of the next bytes of the file (or zip)
//	  receiver → one record: {"ack": "ok", "sha256": "<hex of what arrived>"}
//
// A text offer ({"offer": {"message": ...}}) is received too, as `wormhole
// receive` does; `gander send --text` stays in wormhole/classic/textcmd.
//
//	protocol.go   the mailbox messages: encoding, parsing with bounds
//	handshake.go  Transit's lines and keys, the race's Handshake and Select
//	records.go    the secretbox record stream (framing and nonces apart from IO)
//	pipeline.go   the two stages of each side (CPU work beside socket and disk)
//	transfer.go   Config, bounds, the Mailbox interface, the Transit race's owner
//	send.go       Send: one file or directory
//	receive.go    Receive: the offer, the question, the file on disk
//	dirs.go       directories as zips, through internal/zipsafe
//	progress.go   the progress line on stderr (rate, ETA)
//	space.go      free disk space (statfs), replaceable in tests
package classic
