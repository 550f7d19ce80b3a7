package terminal

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// NewStreamConn carries tty-share's messages over a byte stream, such as
// a Dilation subchannel between two gander peers (no HTTP, no
// websocket): each message is its JSON (Encode) after a 4-byte
// big-endian length, at most MaxMessageBytes. Reads honour ctx only by
// closing rw: the caller owns rw's lifetime through Close.
func NewStreamConn(rw io.ReadWriteCloser) MessageConn {
	return &streamConn{rw: rw, r: bufio.NewReader(rw)}
}

type streamConn struct {
	rw io.ReadWriteCloser
	r  *bufio.Reader

	writeMu sync.Mutex
	once    sync.Once
}

func (s *streamConn) ReadMessage(ctx context.Context) (Message, error) {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	for {
		var head [4]byte
		if _, err := io.ReadFull(s.r, head[:]); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(head[:])
		if n > MaxMessageBytes {
			s.Close()
			return nil, fmt.Errorf("%w: a frame of %d bytes (at most %d)", ErrBadMessage, n, MaxMessageBytes)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(s.r, body); err != nil {
			return nil, err
		}
		m, err := Decode(body)
		if err != nil {
			s.Close()
			return nil, err
		}
		if m != nil {
			return m, nil
		}
	}
}

func (s *streamConn) WriteMessage(ctx context.Context, m Message) error {
	body, err := Encode(m)
	if err != nil {
		return err
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	frame = append(frame, body...)
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_, err = s.rw.Write(frame)
	return err
}

func (s *streamConn) Close() error {
	var err error
	s.once.Do(func() { err = s.rw.Close() })
	return err
}
