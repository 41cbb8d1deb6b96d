package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/ops"
)

// httpFlags are the ops HTTP server's flags of `run`.
type httpFlags struct {
	addr      string
	public    bool
	advertise string
	token     string
	tokenFile string
	redirect  bool // --http-proxy=false
}

func (f *httpFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "http", "", "serve /metrics, /healthz, /readyz, the query API (/v1/...) and the live page on this address; a host-less \":8080\" binds 127.0.0.1 unless --http-public")
	fs.BoolVar(&f.public, "http-public", false, "let a host-less --http address bind every interface (SIREN data is commercially sensitive: set a token)")
	fs.StringVar(&f.advertise, "http-advertise", "", "base URL other instances give for this one when a SIREN lives here (default: http://<bound host or hostname>:<port>)")
	fs.StringVar(&f.token, "http-token", "", "require this bearer token on every endpoint except /healthz and /readyz (prefer SIRENSTREAM_HTTP_TOKEN or --http-token-file)")
	fs.StringVar(&f.tokenFile, "http-token-file", "", "read the bearer token from this file (trailing newline trimmed)")
	fs.Var(notBool{&f.redirect}, "http-proxy", "answer GET /v1/sirens/{siren} for a SIREN of another instance's partition by asking that instance; false: answer 421 naming it (as ?redirect=1 does per request)")
}

// resolveToken returns the token of --http-token or --http-token-file.
func (f *httpFlags) resolveToken() (string, error) {
	if f.token != "" && f.tokenFile != "" {
		return "", usageErr("--http-token and --http-token-file are exclusive")
	}
	tok := f.token
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--http-token-file: %w", err)
		}
		tok = strings.TrimRight(string(b), "\r\n")
		if tok == "" {
			return "", fmt.Errorf("--http-token-file %s is empty", f.tokenFile)
		}
	}
	if strings.TrimSpace(tok) != tok {
		return "", usageErr("the HTTP token has leading or trailing white space")
	}
	return tok, nil
}

// listen validates the flags and binds the ops listener, so that a busy port
// fails before the processor joins the group and the bound address can be
// advertised. It returns a nil listener when --http is not set.
func (f *httpFlags) listen(log *zap.Logger) (ln net.Listener, advertise, token string, err error) {
	if f.addr == "" {
		if f.token != "" || f.tokenFile != "" || f.public || f.advertise != "" || f.redirect {
			return nil, "", "", usageErr("--http-public, --http-advertise, --http-proxy and --http-token(-file) need --http")
		}
		return nil, "", "", nil
	}
	if token, err = f.resolveToken(); err != nil {
		return nil, "", "", err
	}
	if f.advertise != "" && !strings.HasPrefix(f.advertise, "http://") && !strings.HasPrefix(f.advertise, "https://") {
		return nil, "", "", usageErr("--http-advertise %q: want an http:// or https:// URL", f.advertise)
	}
	if _, err := ops.BindAddr(f.addr, f.public); err != nil {
		return nil, "", "", usageErr("--http %q: want host:port or :port", f.addr)
	}
	if ln, err = ops.Listen(f.addr, f.public); err != nil {
		return nil, "", "", fmt.Errorf("--http: %w", err)
	}
	advertise = strings.TrimRight(f.advertise, "/")
	if advertise == "" {
		advertise = ops.AdvertiseURL(ln.Addr())
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() && token == "" {
		log.Warn("the HTTP server is reachable from the network without a token: SIREN data is commercially sensitive (set --http-token-file or SIRENSTREAM_HTTP_TOKEN)",
			zap.String("addr", ln.Addr().String()))
	}
	return ln, advertise, token, nil
}

// config returns the ops server's configuration of the flags.
func (f *httpFlags) config(ln net.Listener, token string) ops.Config {
	return ops.Config{Listener: ln, Token: token, Redirect: f.redirect}
}

// notBool is a boolean flag (default true) stored negated in *b, so that
// the zero httpFlags has the flag's default.
type notBool struct{ b *bool }

func (n notBool) IsBoolFlag() bool { return true }

func (n notBool) String() string {
	if n.b == nil {
		return "true"
	}
	return strconv.FormatBool(!*n.b)
}

func (n notBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*n.b = !v
	return nil
}
