package classic

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// scriptedConn replays the peer's messages and records what we send.
type scriptedConn struct {
	incoming [][]byte
	sent     []string
}

func (c *scriptedConn) Send(_ context.Context, msg []byte) error {
	c.sent = append(c.sent, string(msg))
	return nil
}

func (c *scriptedConn) Receive(context.Context) ([]byte, error) {
	if len(c.incoming) == 0 {
		return nil, errors.New("no more messages")
	}
	m := c.incoming[0]
	c.incoming = c.incoming[1:]
	return m, nil
}

func TestReceiveText(t *testing.T) {
	tests := []struct {
		name     string
		incoming []string
		want     string
		wantErr  any // nil, a sentinel error, or a pointer to an error type
		wantSent []string
	}{{
		name:     "text offer is acknowledged",
		incoming: []string{`{"offer": {"message": "hello \u00e9"}}`},
		want:     "hello é",
		wantSent: []string{`{"answer":{"message_ack":"ok"}}`},
	}, {
		name:     "transit and unknown keys are skipped",
		incoming: []string{`{"transit": {"abilities-v1": []}}`, `{"whatever": 1}`, `{"offer": {"message": ""}, "extra": true}`},
		want:     "",
		wantSent: []string{`{"answer":{"message_ack":"ok"}}`},
	}, {
		name:     "file offer is refused and the sender told",
		incoming: []string{`{"offer": {"file": {"filename": "x", "filesize": 3}}}`},
		wantErr:  ErrUnsupportedOffer,
		wantSent: []string{`{"error":"gander accepts text messages only; send files with gander's file transfer"}`},
	}, {
		name:     "sender error ends the exchange",
		incoming: []string{`{"error": "sender rejected verification check, abandoned transfer"}`},
		wantErr:  new(*RemoteError),
	}, {
		name:     "malformed JSON is an error, not a crash",
		incoming: []string{`{"offer": `},
		wantErr:  errors.New("malformed"),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &scriptedConn{}
			for _, m := range tt.incoming {
				c.incoming = append(c.incoming, []byte(m))
			}
			got, err := ReceiveText(context.Background(), c)
			checkErr(t, err, tt.wantErr)
			if err == nil && got != tt.want {
				t.Errorf("text = %q, want %q", got, tt.want)
			}
			if len(c.sent) != len(tt.wantSent) {
				t.Fatalf("sent %q, want %q", c.sent, tt.wantSent)
			}
			for i := range c.sent {
				if c.sent[i] != tt.wantSent[i] {
					t.Errorf("sent[%d] = %s, want %s", i, c.sent[i], tt.wantSent[i])
				}
			}
		})
	}
}

func TestSendText(t *testing.T) {
	tests := []struct {
		name     string
		incoming []string
		wantErr  any
	}{
		{"acknowledged", []string{`{"answer": {"message_ack": "ok"}}`}, nil},
		{"other messages before the answer are skipped", []string{`{"transit": {}}`, `{"answer": {"message_ack": "ok"}}`}, nil},
		{"negative ack", []string{`{"answer": {"message_ack": "no"}}`}, errors.New("did not acknowledge")},
		{"receiver refuses", []string{`{"error": "transfer rejected"}`}, new(*RemoteError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &scriptedConn{}
			for _, m := range tt.incoming {
				c.incoming = append(c.incoming, []byte(m))
			}
			err := SendText(context.Background(), c, "hi")
			checkErr(t, err, tt.wantErr)
			var offer map[string]map[string]string
			if err := json.Unmarshal([]byte(c.sent[0]), &offer); err != nil || offer["offer"]["message"] != "hi" {
				t.Errorf("offer sent = %s", c.sent[0])
			}
		})
	}
}

func checkErr(t *testing.T, err error, want any) {
	t.Helper()
	switch want := want.(type) {
	case nil:
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
	case **RemoteError:
		if !errors.As(err, want) {
			t.Fatalf("error = %v, want a *RemoteError", err)
		}
	case error:
		if err == nil {
			t.Fatalf("no error, want %v", want)
		}
		if !errors.Is(err, want) && !strings.Contains(err.Error(), want.Error()) {
			t.Fatalf("error = %v, want %v", err, want)
		}
	}
}
