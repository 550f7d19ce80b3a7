package wormhole

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestInboxDeliversInOrderWithoutGaps(t *testing.T) {
	b := newInbox()
	for _, n := range []int{2, 0, 0, 3, 1, 1, -1} {
		if err := b.put(n, []byte{byte('0' + n)}); err != nil {
			t.Fatalf("put(%d) refused: %v", n, err)
		}
	}
	ctx := context.Background()
	for want := range 4 {
		got, err := b.get(ctx, nil, nil)
		if err != nil || string(got) != string(rune('0'+want)) {
			t.Fatalf("get = %q, %v; want %q", got, err, string(rune('0'+want)))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := b.get(ctx, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get on empty inbox = %v, want deadline", err)
	}
}

func TestInboxRefusesFarFutureMessages(t *testing.T) {
	b := newInbox()
	if b.put(maxEarlyMessages, nil) == nil {
		t.Fatal("a message maxEarlyMessages ahead was accepted")
	}
	if err := b.put(maxEarlyMessages-1, nil); err != nil {
		t.Fatalf("a message just inside the window was refused: %v", err)
	}
}

func TestInboxGetReturnsFailure(t *testing.T) {
	b := newInbox()
	failed := make(chan struct{})
	close(failed)
	_, err := b.get(context.Background(), failed, func() error { return ErrWrongCode })
	if !errors.Is(err, ErrWrongCode) {
		t.Fatalf("get = %v, want ErrWrongCode", err)
	}
}
