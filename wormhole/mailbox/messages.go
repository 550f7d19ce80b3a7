package mailbox

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// The mailbox server speaks one JSON object per websocket text message, each
// with a "type". Both directions ignore keys they do not know, and the
// reference client ignores message types it does not know; so do we
// (decodeServerMessage returns an unknownMessage for them).

// serverMessage is one decoded server→client message.
type serverMessage interface{ isServerMessage() }

type (
	// welcomeMessage is sent once, as soon as the websocket opens.
	welcomeMessage struct{ Welcome Welcome }
	// ackMessage acknowledges every client command before it is processed.
	ackMessage struct{ ID string }
	// nameplatesMessage answers list.
	nameplatesMessage struct{ Nameplates []string }
	// allocatedMessage answers allocate; the nameplate is also claimed.
	allocatedMessage struct{ Nameplate string }
	// claimedMessage answers claim with the mailbox behind the nameplate.
	claimedMessage  struct{ Mailbox string }
	releasedMessage struct{}
	closedMessage   struct{}
	pongMessage     struct{ Pong int }
	// errorMessage is the server refusing a command; the session is over.
	errorMessage struct {
		Error string
		Orig  json.RawMessage
	}
	// unknownMessage is a type this client does not know; it is skipped.
	unknownMessage struct{ Type string }
)

// Message is one message added to the mailbox by a side, as the server
// relays it: our own adds come back to us too (the "echo").
type Message struct {
	Side  string
	Phase string
	Body  []byte
}

// Welcome is what the server says about itself on connect.
type Welcome struct {
	// MOTD is a message of the day for the user, untrusted text.
	MOTD string
	// CurrentCLIVersion is the newest Python CLI version the server knows.
	CurrentCLIVersion string
	// Error, when set, means the server refuses service.
	Error string
}

func (welcomeMessage) isServerMessage()    {}
func (ackMessage) isServerMessage()        {}
func (nameplatesMessage) isServerMessage() {}
func (allocatedMessage) isServerMessage()  {}
func (claimedMessage) isServerMessage()    {}
func (releasedMessage) isServerMessage()   {}
func (closedMessage) isServerMessage()     {}
func (pongMessage) isServerMessage()       {}
func (errorMessage) isServerMessage()      {}
func (unknownMessage) isServerMessage()    {}
func (Message) isServerMessage()           {}

// errMalformed wraps every decoding failure of a server message.
var errMalformed = errors.New("malformed mailbox message")

// wireMessage is the union of every field either direction uses. Pointers
// and omitempty keep the encoded commands to exactly the reference's keys.
type wireMessage struct {
	Type          string          `json:"type"`
	ID            *string         `json:"id,omitempty"`
	AppID         string          `json:"appid,omitempty"`
	Side          string          `json:"side,omitempty"`
	ClientVersion []string        `json:"client_version,omitempty"`
	Nameplate     string          `json:"nameplate,omitempty"`
	Mailbox       string          `json:"mailbox,omitempty"`
	Phase         *string         `json:"phase,omitempty"`
	Body          *string         `json:"body,omitempty"`
	Mood          string          `json:"mood,omitempty"`
	Ping          *int            `json:"ping,omitempty"`
	Pong          *int            `json:"pong,omitempty"`
	Error         string          `json:"error,omitempty"`
	Orig          json.RawMessage `json:"orig,omitempty"`
	Welcome       *struct {
		MOTD              string `json:"motd"`
		CurrentCLIVersion string `json:"current_cli_version"`
		Error             string `json:"error"`
	} `json:"welcome,omitempty"`
	Nameplates []struct {
		ID string `json:"id"`
	} `json:"nameplates,omitempty"`
}

// decodeServerMessage parses one server message. Fields a type needs must
// be present with the right JSON type; everything else is ignored.
func decodeServerMessage(data []byte) (serverMessage, error) {
	var w wireMessage
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	switch w.Type {
	case "welcome":
		if w.Welcome == nil {
			return nil, fmt.Errorf("%w: welcome without body", errMalformed)
		}
		return welcomeMessage{Welcome{
			MOTD:              capText(w.Welcome.MOTD),
			CurrentCLIVersion: capText(w.Welcome.CurrentCLIVersion),
			Error:             capText(w.Welcome.Error),
		}}, nil
	case "ack":
		var id string
		if w.ID != nil {
			id = *w.ID
		}
		return ackMessage{id}, nil
	case "nameplates":
		ids := make([]string, 0, len(w.Nameplates))
		for _, n := range w.Nameplates {
			ids = append(ids, n.ID)
		}
		return nameplatesMessage{ids}, nil
	case "allocated":
		if w.Nameplate == "" {
			return nil, fmt.Errorf("%w: allocated without nameplate", errMalformed)
		}
		return allocatedMessage{w.Nameplate}, nil
	case "claimed":
		if w.Mailbox == "" {
			return nil, fmt.Errorf("%w: claimed without mailbox", errMalformed)
		}
		return claimedMessage{w.Mailbox}, nil
	case "released":
		return releasedMessage{}, nil
	case "closed":
		return closedMessage{}, nil
	case "pong":
		if w.Pong == nil {
			return nil, fmt.Errorf("%w: pong without value", errMalformed)
		}
		return pongMessage{*w.Pong}, nil
	case "error":
		orig := w.Orig
		if len(orig) > MaxServerText {
			orig = json.RawMessage(capText(string(orig)))
		}
		return errorMessage{Error: capText(w.Error), Orig: orig}, nil
	case "message":
		if w.Side == "" || w.Phase == nil || w.Body == nil {
			return nil, fmt.Errorf("%w: message needs side, phase and body", errMalformed)
		}
		body, err := hex.DecodeString(*w.Body)
		if err != nil {
			return nil, fmt.Errorf("%w: message body is not hex: %v", errMalformed, err)
		}
		return Message{Side: w.Side, Phase: *w.Phase, Body: body}, nil
	default:
		return unknownMessage{capText(w.Type)}, nil
	}
}

// capText cuts a text of the server's to MaxServerText bytes, ending in
// "…", without splitting a UTF-8 sequence.
func capText(s string) string {
	const ellipsis = "…"
	if len(s) <= MaxServerText {
		return s
	}
	cut := MaxServerText - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// command is one client→server message. Each constructor below fills the
// fields its type needs.
type command = wireMessage

func bindCommand(appID, side, version string) command {
	return command{Type: "bind", AppID: appID, Side: side, ClientVersion: []string{"gander", version}}
}

func listCommand() command     { return command{Type: "list"} }
func allocateCommand() command { return command{Type: "allocate"} }

func claimCommand(nameplate string) command {
	return command{Type: "claim", Nameplate: nameplate}
}

func releaseCommand(nameplate string) command {
	return command{Type: "release", Nameplate: nameplate}
}

func openCommand(mailbox string) command { return command{Type: "open", Mailbox: mailbox} }

func addCommand(phase string, body []byte) command {
	h := hex.EncodeToString(body)
	return command{Type: "add", Phase: &phase, Body: &h}
}

func closeCommand(mailbox string, mood Mood) command {
	return command{Type: "close", Mailbox: mailbox, Mood: string(mood)}
}

func pingCommand(n int) command { return command{Type: "ping", Ping: &n} }

// encodeCommand marshals cmd with a fresh id, as the reference does: the id
// is 4 hex characters used by the server only to time its responses.
func encodeCommand(cmd command, id string) []byte {
	cmd.ID = &id
	data, err := json.Marshal(cmd)
	if err != nil {
		panic("mailbox: encoding a command cannot fail: " + err.Error())
	}
	return data
}

// Mood is how a side felt when it closed the mailbox; the server records it.
type Mood string

// The moods the reference sends.
const (
	Happy     Mood = "happy"     // the exchange worked
	Lonely    Mood = "lonely"    // the peer never came
	Scary     Mood = "scary"     // the peer's messages did not decrypt: wrong code or attack
	Errory    Mood = "errory"    // something else failed
	Unwelcome Mood = "unwelcome" // the server's welcome refused us
)
