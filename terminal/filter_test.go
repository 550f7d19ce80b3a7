package terminal

import (
	"bytes"
	"slices"
	"testing"
	"unicode/utf8"
)

func TestFilterInput(t *testing.T) {
	for _, tc := range []struct {
		name, in, kept string
		reasons        []string
	}{
		{"text", "ls -la\r", "ls -la\r", nil},
		{"control keys", "\x03\x04\x1a\t\x7f", "\x03\x04\x1a\t\x7f", nil},
		{"utf-8", "héllo 世界 🦆", "héllo 世界 🦆", nil},
		{"escape key", "\x1b", "\x1b", nil},
		{"escape then text", "\x1b:wq\r", "\x1b:wq\r", nil},
		{"alt+key", "\x1bb\x1bf", "\x1bb\x1bf", nil},
		{"escape escape", "\x1b\x1b[A", "\x1b\x1b[A", nil},
		{"arrows", "\x1b[A\x1b[B\x1b[C\x1b[D", "\x1b[A\x1b[B\x1b[C\x1b[D", nil},
		{"modified arrow", "\x1b[1;5C", "\x1b[1;5C", nil},
		{"home end", "\x1b[H\x1b[F\x1b[1~\x1b[4~", "\x1b[H\x1b[F\x1b[1~\x1b[4~", nil},
		{"function keys", "\x1bOP\x1b[15~\x1b[24~", "\x1bOP\x1b[15~\x1b[24~", nil},
		{"shift tab", "\x1b[Z", "\x1b[Z", nil},
		{"sgr mouse", "\x1b[<0;10;5M\x1b[<0;10;5m", "\x1b[<0;10;5M\x1b[<0;10;5m", nil},
		{"focus", "\x1b[I\x1b[O", "\x1b[I\x1b[O", nil},
		{"kitty key", "\x1b[97;5u", "\x1b[97;5u", nil},

		{"osc 52 with bel", "a\x1b]52;c;cHduZWQ=\x07b", "ab", []string{ReasonStringControl}},
		{"osc 52 with st", "a\x1b]52;c;cHduZWQ=\x1b\\b", "ab", []string{ReasonStringControl}},
		{"title", "\x1b]0;pwned\x07x", "x", []string{ReasonStringControl}},
		{"osc without end", "a\x1b]52;c;cHdu", "a", []string{ReasonStringControl}},
		{"decrqss", "\x1bP$qm\x1b\\x", "x", []string{ReasonStringControl}},
		{"apc", "\x1b_Gf=100;AAAA\x1b\\x", "x", []string{ReasonStringControl}},
		{"pm sos", "\x1b^hi\x1b\\\x1bXhi\x1b\\x", "x", []string{ReasonStringControl}},
		{"can ends a string", "\x1b]52;c;x\x18y", "y", []string{ReasonStringControl}},
		{"da1 reply", "\x1b[?62;22c", "", []string{ReasonReply}},
		{"da2 reply", "\x1b[>0;276;0c", "", []string{ReasonReply}},
		{"da query", "\x1b[c", "", []string{ReasonReply}},
		{"dsr", "\x1b[6n", "", []string{ReasonReply}},
		{"decrpm reply", "\x1b[?2004;1$y", "", []string{ReasonReply}},
		{"window report", "\x1b[8;24;80t", "", []string{ReasonReply}},
		{"paste start", "\x1b[200~", "", []string{ReasonPasteMarker}},
		{"paste breakout", "\x1b[200~ls\x1b[201~rm -rf ~\r", "lsrm -rf ~\r", []string{ReasonPasteMarker}},
		{"8-bit csi", "a\x9b6nb", "a6nb", []string{ReasonInvalidUTF8}},
		{"utf-8 c1", "a\u009b6nb", "a6nb", []string{ReasonC1}},
		{"utf-8 osc c1", "\u009d52;c;x\a", "52;c;x\a", []string{ReasonC1}},
		{"incomplete csi", "a\x1b[1;", "a", []string{ReasonIncomplete}},
		{"incomplete ss3", "a\x1bO", "a", []string{ReasonIncomplete}},
		{"csi broken by a control", "\x1b[1\x03", "\x03", []string{ReasonIncomplete}},
		{"several reasons once each", "\x1b]0;a\x07\x1b]0;b\x07\x1b[c", "", []string{ReasonStringControl, ReasonReply}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, reasons := FilterInput([]byte(tc.in))
			if string(kept) != tc.kept {
				t.Errorf("kept %q, want %q", kept, tc.kept)
			}
			if !slices.Equal(reasons, tc.reasons) {
				t.Errorf("reasons %q, want %q", reasons, tc.reasons)
			}
		})
	}
}

// FuzzFilterInput: whatever a guest sends, what is kept holds no escape
// string, no reply, no paste marker, no C1 control, is UTF-8, is no
// longer than the input, and filtering it again keeps it whole.
func FuzzFilterInput(f *testing.F) {
	for _, s := range []string{"ls\r", "\x1b]52;c;eA==\x07", "\x1bP$qm\x1b\\", "\x1b[>0;276;0c", "\x1b[200~x\x1b[201~",
		"\x1b[A", "\x1b", "\x1b\x1b]0;x\x07", "\u009b", "\x1b[<0;1;1M", "\x1bO", "\x1b[1;"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		kept, reasons := FilterInput(in)
		if len(kept) > len(in) {
			t.Fatalf("kept %d bytes of %d", len(kept), len(in))
		}
		if !utf8.Valid(kept) {
			t.Fatalf("kept invalid UTF-8 %q", kept)
		}
		if len(kept) < len(in) && len(reasons) == 0 {
			t.Fatalf("cut %q to %q without a reason", in, kept)
		}
		again, more := FilterInput(kept)
		if !bytes.Equal(again, kept) || more != nil {
			t.Fatalf("filtering %q again gives %q (%q)", kept, again, more)
		}
		for _, bad := range []string{"\x1b]", "\x1bP", "\x1b_", "\x1b^", "\x1bX", "\x1b[200~", "\x1b[201~", "\x1b[?", "\x1b[>"} {
			if bytes.Contains(kept, []byte(bad)) {
				t.Fatalf("kept %q holds %q", kept, bad)
			}
		}
	})
}

func TestInputFilterAcrossMessages(t *testing.T) {
	var f InputFilter
	if kept, _ := f.Filter([]byte("ab\x1b")); string(kept) != "ab" || !f.Held() {
		t.Fatalf("kept %q, held %v; want the trailing ESC held", kept, f.Held())
	}
	if kept, reasons := f.Filter([]byte("]52;c;cHduZWQ=\x07x")); string(kept) != "x" || len(reasons) != 1 {
		t.Fatalf("an OSC 52 split after its ESC: kept %q (%q)", kept, reasons)
	}
	f.Filter([]byte("\x1b"))
	if kept, _ := f.Filter([]byte("[A")); string(kept) != "\x1b[A" {
		t.Fatalf("an arrow split after its ESC: kept %q", kept)
	}
	f.Filter([]byte("\x1b"))
	if got := f.Flush(); string(got) != "\x1b" || f.Held() {
		t.Fatalf("Flush gave %q", got)
	}
	if got := f.Flush(); got != nil {
		t.Fatalf("a second Flush gave %q", got)
	}
	// After a flushed ESC, a message that would follow it into an OSC
	// is dropped whole; a key after it is typed.
	if kept, reasons := f.Filter([]byte("]0;x\x07]52;c;cHduZWQ=\x07")); kept != nil || len(reasons) == 0 {
		t.Fatalf("after a flushed ESC: kept %q (%q)", kept, reasons)
	}
	if kept, _ := f.Filter([]byte("[B")); string(kept) != "[B" {
		t.Fatalf("after a flushed ESC, an arrow's rest: kept %q", kept)
	}
}

// FuzzInputFilterSplit: however a guest splits its input into messages,
// what reaches the PTY (the messages' output, in order, with the held
// Escape flushed at the end) is what filtering it again keeps whole: no
// sequence is made across a cut or a message boundary.
func FuzzInputFilterSplit(f *testing.F) {
	f.Add([]byte("ab\x1b]52;c;eA==\x07"), uint8(3), false)
	f.Add([]byte("ab\x1b]0;x\x07]52;c;eA==\x07"), uint8(3), true)
	f.Add([]byte("\x1b\x1b]0;x\x07]52;c;x\x07"), uint8(1), true)
	f.Add([]byte("\x1b[A\x1b"), uint8(4), false)
	f.Fuzz(func(t *testing.T, in []byte, at uint8, flushBetween bool) {
		cut := int(at) % (len(in) + 1)
		var flt InputFilter
		var pty []byte
		for i, msg := range [][]byte{in[:cut], in[cut:]} {
			kept, _ := flt.Filter(append([]byte(nil), msg...))
			pty = append(pty, kept...)
			if i == 0 && flushBetween { // the hold timed out
				pty = append(pty, flt.Flush()...)
			}
		}
		pty = append(pty, flt.Flush()...)
		again, more := FilterInput(pty)
		if !bytes.Equal(again, pty) || more != nil {
			t.Fatalf("%q split at %d reaches the PTY as %q, which filters to %q (%q)", in, cut, pty, again, more)
		}
	})
}
