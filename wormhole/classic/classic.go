// Package classic speaks the application protocol of the `wormhole send` and
// `wormhole receive` commands (magic-wormhole's cmd_send.py/cmd_receive.py)
// for text messages, so that gander and the classic CLI can talk:
//
//	sender   → {"offer": {"message": "<text>"}}
//	receiver → {"answer": {"message_ack": "ok"}}
//
// Either side may instead send {"error": "<why>"}, which ends the exchange.
// File and directory offers need classic Transit, which gander does not
// speak; they are refused with an error the sender sees.
package classic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// AppID is the CLI's application id. The mailbox server only pairs sides
// that use the same one.
const AppID = "lothar.com/wormhole/text-or-file-xfer"

// RemoteError is the peer ending the exchange with an error message.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return "the other side reported an error: " + e.Message }

// ErrUnsupportedOffer means the sender offered a file or directory.
var ErrUnsupportedOffer = errors.New("the sender offered a file or directory; gander receive accepts text messages only")

// Conn is the part of a wormhole this protocol uses.
type Conn interface {
	Send(ctx context.Context, msg []byte) error
	Receive(ctx context.Context) ([]byte, error)
}

// message is every field of the protocol gander looks at; the rest of what
// a peer sends (such as "transit") is ignored, as the reference ignores
// unknown keys.
type message struct {
	Offer *struct {
		Message   *string          `json:"message,omitempty"`
		File      *json.RawMessage `json:"file,omitempty"`
		Directory *json.RawMessage `json:"directory,omitempty"`
	} `json:"offer,omitempty"`
	Answer *struct {
		MessageAck string `json:"message_ack,omitempty"`
	} `json:"answer,omitempty"`
	Error *string `json:"error,omitempty"`
}

func decode(data []byte) (message, error) {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return message{}, fmt.Errorf("malformed message from the other side: %w", err)
	}
	if m.Error != nil {
		return message{}, &RemoteError{Message: *m.Error}
	}
	return m, nil
}

// SendText offers text and waits until the receiver acknowledges it.
func SendText(ctx context.Context, c Conn, text string) error {
	offer, _ := json.Marshal(map[string]any{"offer": map[string]string{"message": text}})
	if err := c.Send(ctx, offer); err != nil {
		return err
	}
	for {
		data, err := c.Receive(ctx)
		if err != nil {
			return err
		}
		m, err := decode(data)
		if err != nil {
			return err
		}
		if m.Answer == nil {
			continue
		}
		if m.Answer.MessageAck != "ok" {
			return fmt.Errorf("the receiver did not acknowledge the message (message_ack %q)", m.Answer.MessageAck)
		}
		return nil
	}
}

// ReceiveText waits for the sender's offer and acknowledges a text message.
// Other offers are refused (the sender is told) with ErrUnsupportedOffer.
func ReceiveText(ctx context.Context, c Conn) (string, error) {
	for {
		data, err := c.Receive(ctx)
		if err != nil {
			return "", err
		}
		m, err := decode(data)
		if err != nil {
			return "", err
		}
		if m.Offer == nil {
			continue
		}
		if m.Offer.Message == nil {
			refusal, _ := json.Marshal(map[string]string{"error": "gander accepts text messages only; send files with gander's file transfer"})
			if err := c.Send(ctx, refusal); err != nil {
				return "", err
			}
			return "", ErrUnsupportedOffer
		}
		ack, _ := json.Marshal(map[string]any{"answer": map[string]string{"message_ack": "ok"}})
		if err := c.Send(ctx, ack); err != nil {
			return "", err
		}
		return *m.Offer.Message, nil
	}
}
