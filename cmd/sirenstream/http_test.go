package main

import (
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestHTTPFlags(t *testing.T) {
	log := zap.NewNop()
	t.Run("host-less address binds loopback and advertises it", func(t *testing.T) {
		f := httpFlags{addr: ":0"}
		ln, adv, tok, err := f.listen(log)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Fatalf("bound %s, want loopback", ln.Addr())
		}
		if !strings.HasPrefix(adv, "http://127.0.0.1:") || tok != "" {
			t.Fatalf("advertise %q token %q", adv, tok)
		}
	})
	t.Run("token file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(path, []byte("abc123\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f := httpFlags{addr: "127.0.0.1:0", tokenFile: path, advertise: "https://ops.example/"}
		ln, adv, tok, err := f.listen(log)
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if tok != "abc123" || adv != "https://ops.example" {
			t.Fatalf("token %q advertise %q", tok, adv)
		}
	})
	for name, f := range map[string]httpFlags{
		"token and token file":      {addr: ":0", token: "a", tokenFile: "/dev/null"},
		"token without --http":      {token: "a"},
		"public without --http":     {public: true},
		"address without colon":     {addr: "8080"},
		"advertise is not a URL":    {addr: ":0", advertise: "host:8080"},
		"token with trailing space": {addr: ":0", token: "a "},
		"proxy off without --http":  {redirect: true},
	} {
		t.Run(name, func(t *testing.T) {
			ln, _, _, err := f.listen(log)
			if ln != nil {
				ln.Close()
			}
			if !errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want a usage error", err)
			}
		})
	}
}

// TestHTTPProxyFlag: --http-proxy defaults to true (proxy); false makes the
// ops server answer 421 (ops.Config.Redirect).
func TestHTTPProxyFlag(t *testing.T) {
	for _, c := range []struct {
		args     []string
		redirect bool
	}{
		{nil, false},
		{[]string{"--http-proxy"}, false},
		{[]string{"--http-proxy=true"}, false},
		{[]string{"--http-proxy=false"}, true},
	} {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		var f httpFlags
		f.register(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := f.config(nil, "").Redirect; got != c.redirect {
			t.Errorf("%v: Redirect %v, want %v", c.args, got, c.redirect)
		}
	}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var f httpFlags
	f.register(fs)
	if fs.Lookup("http-proxy").DefValue != "true" {
		t.Errorf("--http-proxy default %q, want true", fs.Lookup("http-proxy").DefValue)
	}
}
