package terminal

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestEncodeIsTTYShares(t *testing.T) {
	b, err := Encode(Write{Data: []byte("hi")})
	if err != nil {
		t.Fatal(err)
	}
	inner := base64.StdEncoding.EncodeToString([]byte(`{"Data":"aGk=","Size":2}`))
	if want := `{"Type":"Write","Data":"` + inner + `"}`; string(b) != want {
		t.Fatalf("Encode = %s, want %s", b, want)
	}
	b, _ = Encode(WinSize{Cols: 100, Rows: 30})
	inner = base64.StdEncoding.EncodeToString([]byte(`{"Cols":100,"Rows":30}`))
	if want := `{"Type":"WinSize","Data":"` + inner + `"}`; string(b) != want {
		t.Fatalf("Encode = %s, want %s", b, want)
	}
}

func TestDecode(t *testing.T) {
	wrap := func(typ, inner string) string {
		return `{"Type":"` + typ + `","Data":"` + base64.StdEncoding.EncodeToString([]byte(inner)) + `"}`
	}
	for _, tc := range []struct {
		name, in string
		want     Message
		bad      bool
	}{
		{"write", wrap("Write", `{"Data":"aGk=","Size":2}`), Write{Data: []byte("hi")}, false},
		{"size ignored", wrap("Write", `{"Data":"aGk=","Size":99}`), Write{Data: []byte("hi")}, false},
		{"winsize", wrap("WinSize", `{"Cols":80,"Rows":24}`), WinSize{Cols: 80, Rows: 24}, false},
		{"unknown type", wrap("Encrypted", `{}`), nil, false},
		{"not json", `{"Type":`, nil, true},
		{"data not base64", `{"Type":"Write","Data":"!!"}`, nil, true},
		{"inner not json", wrap("Write", `nope`), nil, true},
		{"inner data not base64", wrap("Write", `{"Data":"!!"}`), nil, true},
		{"negative size", wrap("WinSize", `{"Cols":-1,"Rows":24}`), nil, true},
		{"huge size", wrap("WinSize", `{"Cols":80,"Rows":100000}`), nil, true},
		{"oversized", `{"Type":"Write","Data":"` + strings.Repeat("A", MaxMessageBytes) + `"}`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode([]byte(tc.in))
			if tc.bad {
				if !errors.Is(err, ErrBadMessage) {
					t.Fatalf("Decode = %v, %v; want ErrBadMessage", m, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(m, tc.want) {
				t.Fatalf("Decode = %#v, %v; want %#v", m, err, tc.want)
			}
		})
	}
}

// FuzzDecode: no input panics, and what decodes encodes back to the same
// message.
func FuzzDecode(f *testing.F) {
	for _, m := range []Message{Write{Data: []byte("ls\r")}, WinSize{Cols: 80, Rows: 24}} {
		b, _ := Encode(m)
		f.Add(b)
	}
	f.Add([]byte(`{"Type":"Write","Data":null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Decode(in)
		if err != nil || m == nil {
			return
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(b)
		if err != nil || !reflect.DeepEqual(normalize(again), normalize(m)) {
			t.Fatalf("%#v encodes to %s, which decodes to %#v, %v", m, b, again, err)
		}
	})
}

func normalize(m Message) Message {
	if w, ok := m.(Write); ok && len(w.Data) == 0 {
		return Write{}
	}
	return m
}
