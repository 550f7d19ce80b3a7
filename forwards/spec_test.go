package forwards

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseLocal(t *testing.T) {
	tests := []struct {
		spec    string
		want    Local
		wantErr string
	}{
		{"chat", Local{Name: "chat", BindAddr: "127.0.0.1"}, ""},
		{"chat:8888", Local{Name: "chat", ListenPort: 8888, BindAddr: "127.0.0.1"}, ""},
		{"web:8080:bind=0.0.0.0:remote-connect=80", Local{Name: "web", ListenPort: 8080, BindAddr: "0.0.0.0", RemoteConnectPort: 80}, ""},
		{"web:remote-connect=80", Local{Name: "web", BindAddr: "127.0.0.1", RemoteConnectPort: 80}, ""},
		{"web:bind=localhost", Local{Name: "web", BindAddr: "127.0.0.1"}, ""},
		{"", Local{}, "service name is required"},
		{":8080", Local{}, "service name is required"},
		{"web:0", Local{}, "1 to 65535"},
		{"web:65536", Local{}, "1 to 65535"},
		{"web:", Local{}, "1 to 65535"},
		{"web::bind=1.2.3.4", Local{}, "1 to 65535"},
		{"web:bind=1.2.3.4:8080", Local{}, "right after the name"},
		{"web:listen=80", Local{}, `unknown option "listen"`},
		{"web:bind=::1", Local{}, "IPv4"},
		{"web:bind=1.2.3.4:bind=5.6.7.8", Local{}, "twice"},
		{"we\x1bb", Local{}, "contains"},
	}
	for _, tt := range tests {
		got, err := ParseLocal(tt.spec)
		checkSpec(t, tt.spec, err, tt.wantErr)
		if err == nil && got != tt.want {
			t.Errorf("ParseLocal(%q) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}

func TestParseRemote(t *testing.T) {
	tests := []struct {
		spec    string
		want    Remote
		wantErr string
	}{
		{"chat", Remote{Name: "chat", Address: "127.0.0.1"}, ""},
		{"chat:8888", Remote{Name: "chat", ConnectPort: 8888, Address: "127.0.0.1"}, ""},
		{"web:80:listen=8080:address=10.0.0.5", Remote{Name: "web", ConnectPort: 80, ListenPort: 8080, Address: "10.0.0.5"}, ""},
		{"web:listen=8080", Remote{Name: "web", ListenPort: 8080, Address: "127.0.0.1"}, ""},
		{"web:bind=1.2.3.4", Remote{}, `unknown option "bind"`},
		{"web:address=example.com", Remote{}, "IPv4"},
		{"web:listen=x", Remote{}, "1 to 65535"},
	}
	for _, tt := range tests {
		got, err := ParseRemote(tt.spec)
		checkSpec(t, tt.spec, err, tt.wantErr)
		if err == nil && got != tt.want {
			t.Errorf("ParseRemote(%q) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}

func checkSpec(t *testing.T, spec string, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%q: unexpected error %v", spec, err)
		}
		return
	}
	var se *SpecError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), want) {
		t.Errorf("%q: error %v, want a SpecError containing %q", spec, err, want)
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add("chat")                                    // name only
	f.Add("web:8080:bind=0.0.0.0:remote-connect=80") // every local option
	f.Add("web:80:listen=8080:address=10.0.0.5")     // every remote option
	f.Add("web::=:=")                                // empty parts
	f.Add("w\xffe:99999999999999999999")             // invalid UTF-8, huge port
	f.Fuzz(func(t *testing.T, spec string) {
		if l, err := ParseLocal(spec); err == nil {
			if l.Name == "" || l.BindAddr == "" || l.ListenPort < 0 || l.ListenPort > 65535 {
				t.Fatalf("ParseLocal(%q) accepted %+v", spec, l)
			}
		}
		if r, err := ParseRemote(spec); err == nil {
			if r.Name == "" || r.Address == "" || r.ConnectPort < 0 || r.ConnectPort > 65535 {
				t.Fatalf("ParseRemote(%q) accepted %+v", spec, r)
			}
		}
	})
}

// A name the peer sends is accepted only if it is short, UTF-8 and free of
// control and format characters; whatever it is, it is reported as short
// printable ASCII.
func FuzzCheckPeerName(f *testing.F) {
	f.Add("web")
	f.Add("web\u202egnp.exe")
	f.Add("a\x1b[2Jb")
	f.Add(strings.Repeat("é", 200))
	f.Fuzz(func(t *testing.T, name string) {
		if checkPeerName(name) == nil {
			if len(name) > maxServiceNameBytes || !utf8.ValidString(name) {
				t.Fatalf("accepted %q", name)
			}
			for _, r := range name {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '=' {
					t.Fatalf("accepted %q with %U", name, r)
				}
			}
		}
		shown := printableName(name)
		if len(shown) > 64*10+2+len("…") {
			t.Fatalf("reported as %d bytes", len(shown))
		}
		for _, r := range strings.TrimSuffix(shown, "…") {
			if r < 0x20 || r > 0x7e {
				t.Fatalf("reported as %q", shown)
			}
		}
	})
}

func TestPeerText(t *testing.T) {
	long := strings.Repeat("a", maxPeerReasonBytes)
	for _, tt := range []struct{ in, want string }{
		{"Connection refused", "Connection refused"},
		{long, long},
		{long + "b", long[:maxPeerReasonBytes-len("…")] + "…"},
		{strings.Repeat("é", maxPeerReasonBytes), strings.Repeat("é", (maxPeerReasonBytes-len("…"))/2) + "…"},
		{"a\x1b[31mb\u202ec\r\nd\xffe", "a\uFFFD[31mb\uFFFDc  d\uFFFDe"},
	} {
		if got := peerText(tt.in); got != tt.want {
			t.Errorf("peerText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzPeerText(f *testing.F) {
	f.Add("Connection refused")
	f.Add("\x1b[2J\u202e" + strings.Repeat("é", 200) + "\xff")
	f.Fuzz(func(t *testing.T, s string) {
		got := peerText(s)
		if len(got) > maxPeerReasonBytes || !utf8.ValidString(got) {
			t.Fatalf("peerText(%q) = %q: %d bytes", s, got, len(got))
		}
		if i := strings.IndexFunc(got, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }); i >= 0 {
			t.Fatalf("peerText(%q) = %q keeps a control or format character", s, got)
		}
		if len(s) <= maxPeerReasonBytes && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool {
			return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)
		}) < 0 && got != s {
			t.Fatalf("peerText(%q) = %q changed a fit, clean text", s, got)
		}
	})
}
