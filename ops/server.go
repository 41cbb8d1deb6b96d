// Package ops is sirenstream's operations surface, beside the data path: an
// HTTP server with Prometheus metrics (/metrics), liveness and readiness
// (/healthz, /readyz), the SIREN query API (/v1/…) and a small live page
// (/) whose static assets are embedded in the binary.
//
// Metrics implements processor.Metrics with a private Prometheus registry
// and keeps the page's in-memory views (segment counts, their timeline over
// stream time, recent segment changes, lag). Server serves them together with
// a running processor.Processor.
//
// Security: SIREN data is commercially sensitive. A listen address without a
// host binds 127.0.0.1 unless Public is set; an optional bearer token guards
// everything except /healthz and /readyz; only GET and HEAD without a body
// are accepted; timeouts and header limits bound slow or large requests.
package ops

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/processor"
)

// Config configures a Server. Zero values take the documented defaults;
// Validate names the bad field.
type Config struct {
	// Addr is the listen address, "host:port". Without a host (":8080") it
	// binds 127.0.0.1 unless Public is true; an explicit host (0.0.0.0,
	// a LAN address) is taken as given.
	Addr string
	// Public makes a host-less Addr bind every interface.
	Public bool
	// Listener, when set, is served instead of listening on Addr (see
	// Listen): the caller learns the bound address before the processor
	// starts, e.g. to advertise it.
	Listener net.Listener
	// Token, when not empty, is required on every endpoint except /healthz
	// and /readyz: "Authorization: Bearer <token>", or HTTP Basic auth with
	// the token as password (any user) so that a browser can open the page.
	Token string

	Processor *processor.Processor // required
	Metrics   *Metrics             // required: the Metrics given to the processor
	Logger    *zap.Logger          // default zap.NewNop()

	// OwnerCacheTTL bounds how often a foreign-SIREN query describes the
	// consumer group (default 3s).
	OwnerCacheTTL time.Duration
	// Redirect makes GET /v1/sirens/{siren} answer 421 naming the owner for
	// a SIREN of another instance's partition, as ?redirect=1 does per
	// request; by default (false) the request is proxied to the owner.
	Redirect bool
	// PeerTimeout bounds a request to another instance: a proxied SIREN
	// query, one owner's page of a segment listing (default 3s). An owner
	// that does not answer in time makes the listing partial.
	PeerTimeout time.Duration
	// ListScanBudget bounds the stored states a segment listing examines per
	// partition and request (default 100,000: ~0.1 s): a page of a rare
	// segment may then be short, with a next_cursor to go on.
	ListScanBudget int
	// TailInterval is how often the server checks for newly owned partitions
	// whose recent changes it reads from the output topic (default 1s).
	TailInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.OwnerCacheTTL == 0 {
		c.OwnerCacheTTL = 3 * time.Second
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = 3 * time.Second
	}
	if c.ListScanBudget == 0 {
		c.ListScanBudget = 100_000
	}
	if c.TailInterval == 0 {
		c.TailInterval = time.Second
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.Listener == nil {
		if c.Addr == "" {
			return errors.New("ops: Addr is empty and Listener is nil")
		}
		if _, err := BindAddr(c.Addr, c.Public); err != nil {
			return err
		}
	}
	if c.Processor == nil {
		return errors.New("ops: Processor is nil")
	}
	if c.Metrics == nil {
		return errors.New("ops: Metrics is nil")
	}
	if strings.TrimSpace(c.Token) != c.Token {
		return errors.New("ops: Token has leading or trailing white space")
	}
	if c.PeerTimeout < 0 || c.ListScanBudget < 0 || c.TailInterval < 0 || c.OwnerCacheTTL < 0 {
		return errors.New("ops: PeerTimeout, ListScanBudget, TailInterval and OwnerCacheTTL must not be negative")
	}
	return nil
}

// BindAddr returns the address to listen on for addr: a host-less address
// (":8080", "8080" is refused) binds 127.0.0.1 unless public; an explicit
// host is kept.
func BindAddr(addr string, public bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("ops: listen address %q: %w (want host:port or :port)", addr, err)
	}
	if host == "" {
		if public {
			host = "0.0.0.0"
		} else {
			host = "127.0.0.1"
		}
	}
	return net.JoinHostPort(host, port), nil
}

// Listen binds BindAddr(addr, public).
func Listen(addr string, public bool) (net.Listener, error) {
	bind, err := BindAddr(addr, public)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("ops: listen: %w", err)
	}
	return ln, nil
}

// AdvertiseURL returns the base URL other instances can use to reach a
// server bound to addr: "http://host:port", with the machine's host name
// when addr is a wildcard address (0.0.0.0, ::).
func AdvertiseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Server is the ops HTTP server. New builds it; Listen binds; Run serves
// until its context ends. It starts no goroutine before Run.
type Server struct {
	cfg     Config
	log     *zap.Logger
	handler http.Handler
	token   [32]byte // sha256 of cfg.Token

	mu sync.Mutex
	ln net.Listener

	ownersMu sync.Mutex
	owners   []processor.Member
	ownersAt time.Time
	ownerErr error

	// peers is the client of requests to other instances (proxy, listing).
	peers *http.Client
	// peerWarned: when a failing peer was last logged (warnPeer).
	peerWarnMu sync.Mutex
	peerWarned map[string]time.Time
}

// New validates cfg and builds the server and its routes.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, token: sha256.Sum256([]byte(cfg.Token)), ln: cfg.Listener,
		peers: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's complete handler (middleware included).
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the listen address (see BindAddr). Run calls it when it has
// not been called; calling it first lets a caller learn the address (Addr)
// before serving, e.g. with port 0.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := Listen(s.cfg.Addr, s.cfg.Public)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address ("" before Listen).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves until ctx ends, then shuts down gracefully (5 s for in-flight
// requests) and returns nil, or returns the first serve error.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second, // a /metrics scrape or a group lookup, never streaming
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	s.log.Info("ops http server listening", zap.String("addr", ln.Addr().String()), zap.Bool("auth", s.cfg.Token != ""))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	tctx, stopTail := context.WithCancel(ctx)
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		s.seedRecent(tctx, s.cfg.Processor, s.cfg.TailInterval)
	}()
	defer func() { stopTail(); <-tailDone }()
	select {
	case err := <-errc:
		return fmt.Errorf("ops: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("ops: shutdown: %w", err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Metrics.reg, promhttp.HandlerOpts{
		ErrorLog:          zap.NewStdLog(s.log.Named("metrics")),
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          s.cfg.Metrics.reg, // promhttp_metric_handler_errors_total
		EnableOpenMetrics: false,
	}))
	mux.HandleFunc("GET /v1/sirens/{siren}", s.siren)
	mux.HandleFunc("GET /v1/segments", s.segments)
	mux.HandleFunc("GET /v1/segments/{segment}", s.segmentList)
	mux.HandleFunc("GET /v1/members", s.membersHandler)
	mux.HandleFunc("GET /v1/stats", s.stats)
	mux.HandleFunc("GET /v1/timeline", s.timelineHandler)
	mux.HandleFunc("GET /v1/changes", s.changesHandler)
	s.registerUplift(mux)
	mux.HandleFunc("GET /v1/partitions", s.partitions)
	mux.HandleFunc("GET /v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint", nil)
	})
	mux.Handle("GET /", s.static())
	return s.guard(mux)
}

// guard is the middleware of every request: panic containment, method and
// body policy, security headers, then the token check.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("http handler panic", zap.Any("panic", v), zap.String("path", r.URL.EscapedPath()))
				writeError(w, http.StatusInternalServerError, "internal error", nil)
			}
		}()
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "only GET and HEAD are served", nil)
			return
		}
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
			writeError(w, http.StatusBadRequest, "request bodies are not accepted", nil)
			return
		}
		if s.cfg.Token != "" && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !s.authorized(r) {
			h.Add("WWW-Authenticate", `Bearer realm="sirenstream"`)
			h.Add("WWW-Authenticate", `Basic realm="sirenstream", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong token (Authorization: Bearer <token>)", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorized compares the presented token with the configured one in
// constant time (over SHA-256 digests, so the length leaks nothing either).
func (s *Server) authorized(r *http.Request) bool {
	var presented string
	auth := r.Header.Get("Authorization")
	if scheme, rest, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		presented = strings.TrimSpace(rest)
	} else if _, pass, ok := r.BasicAuth(); ok {
		presented = pass
	} else {
		return false
	}
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	p := s.cfg.Processor
	if p.Ready() {
		writeJSON(w, http.StatusOK, map[string]any{"ready": true, "partitions": nonNil(p.Owned())})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{
		"ready":  false,
		"reason": "not yet joined the consumer group, or a task is still loading its state",
	})
}
