package dilation

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"testing"
	"time"
)

// A subchannel whose opener only reads still reaches the peer: its OPEN,
// which would wait for a first Write, goes out when the Read waits.
func TestOpenerThatOnlyReads(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	l, err := b.Listen("greet")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		sc, err := l.Accept(context.Background())
		if err != nil {
			return
		}
		sc.Write([]byte("hello"))
		sc.Close()
	}()
	sc, err := a.Open(context.Background(), "greet")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(sc)
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// readerOnly hides a reader's WriteTo, so that io.Copy uses ReadFrom.
type readerOnly struct{ io.Reader }

func TestReadFromSendsEverything(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	echo(t, b, "echo")
	sc, err := a.Open(context.Background(), "echo")
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	go func() {
		if n, err := io.Copy(sc, readerOnly{bytes.NewReader(data)}); err != nil || n != int64(len(data)) {
			t.Errorf("ReadFrom sent %d bytes, %v", n, err)
		}
		sc.CloseWrite()
	}()
	got, err := io.ReadAll(sc)
	if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("echo of %d bytes came back as %d different bytes (%v)", len(data), len(got), err)
	}
}

// An ACK retires records only as far as the link has encrypted them: a
// peer acknowledging what it cannot have seen must not make us recycle
// buffers a flush is about to read.
func TestAckRetiresOnlySealedRecords(t *testing.T) {
	m := &manager{highestSeen: -1}
	m.outbox = newSendQueue(nil, nil)
	for range 3 {
		m.sendSequencedLocked(prepareData(1, make([]byte, 2000)))
	}
	m.retireLocked(2)
	if len(m.unacked) != 3 {
		t.Fatalf("an ACK before anything was sent retired %d records", 3-len(m.unacked))
	}
	m.outbox.sealed = 0
	m.retireLocked(2)
	if len(m.unacked) != 2 || seqOf(m.unacked[0]) != 1 {
		t.Fatalf("after sealing seq 0, ACK 2 left %d records", len(m.unacked))
	}
}

// ACKs wait for a record to ride with, and go as one: the highest.
func TestAcksRideWithTheNextBatch(t *testing.T) {
	q := newSendQueue(nil, nil)
	defer q.close()
	for _, seq := range []uint32{4, 7, 5} {
		q.ack(seq)
	}
	q.push(pongRecord{[4]byte{1, 2, 3, 4}})
	q.mu.Lock()
	batch, last, _ := q.takeLocked()
	q.mu.Unlock()
	if len(batch) != 2 || batch[0] != (pongRecord{[4]byte{1, 2, 3, 4}}) || batch[1] != (ackRecord{7}) || last != -1 {
		t.Fatalf("batch %v, last %d", batch, last)
	}
	select {
	case <-q.timer.C:
	case <-time.After(time.Second):
		t.Fatal("no flush was scheduled for the ACKs")
	}
}

func TestBufferRecycling(t *testing.T) {
	if b := getBuffer(10); len(*b) != 10 {
		t.Fatalf("small buffer of %d bytes", len(*b))
	}
	b := getBuffer(pooledMin)
	if cap(*b) != pooledSize {
		t.Fatalf("pooled buffer of capacity %d", cap(*b))
	}
	putBuffer(b)
	putBuffer(nil)
	putBuffer(getBuffer(10)) // ignored
	if huge := getBuffer(pooledSize + 1); len(*huge) != pooledSize+1 {
		t.Fatalf("large buffer of %d bytes", len(*huge))
	}
}
