package schemas

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/sirenstream/sirenstream/engine"
)

// Config configures a Codec. The zero value is valid: no registry, fixed ids.
type Config struct {
	// RegistryURL is the Confluent schema registry base URL
	// (e.g. "http://localhost:8081"); several may be given separated by
	// commas (tried in order). Empty: no registry, only the fixed ids 1–4 are
	// accepted.
	RegistryURL string
	// HTTPClient is used for registry requests. Default: a client with a
	// 5 s timeout.
	HTTPClient *http.Client
	// BasicAuthUser and BasicAuthPassword enable HTTP basic auth on registry
	// requests when BasicAuthUser is set.
	BasicAuthUser     string
	BasicAuthPassword string
	// Logger receives one line per schema fetched from the registry (never
	// per record). Default: zap.NewNop().
	Logger *zap.Logger
	// NotFoundTTL is how long an id the registry answered 404 for is
	// remembered as unknown, so a flood of bad records does not become a
	// flood of requests. Default 30 s; negative disables the negative cache.
	NotFoundTTL time.Duration
}

func (c *Config) setDefaults() {
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.NotFoundTTL == 0 {
		c.NotFoundTTL = 30 * time.Second
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	for _, u := range c.registryURLs() {
		p, err := url.Parse(u)
		if err != nil {
			return fmt.Errorf("schemas: Config.RegistryURL %q: %w", u, err)
		}
		if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("schemas: Config.RegistryURL %q: want http(s)://host[:port]", u)
		}
	}
	if c.BasicAuthUser != "" && c.RegistryURL == "" {
		return errors.New("schemas: Config.BasicAuthUser is set but Config.RegistryURL is empty")
	}
	if c.BasicAuthPassword != "" && c.BasicAuthUser == "" {
		return errors.New("schemas: Config.BasicAuthPassword is set but Config.BasicAuthUser is empty")
	}
	return nil
}

func (c *Config) registryURLs() []string {
	var out []string
	for _, u := range strings.Split(c.RegistryURL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// Codec decodes input records and is safe for concurrent use. Writer schemas
// fetched from the registry are cached by id forever (ids are immutable);
// registry failures are not cached.
type Codec struct {
	log      *zap.Logger
	registry *sr.Client // nil: fixed ids only
	notFound time.Duration

	// readerPCF is the Parsing Canonical Form of our reader schema per kind,
	// plus the output schema (index numKinds).
	readerPCF [numKinds + 1]string

	cache atomic.Pointer[map[int]*entry] // copy-on-write: reads are lock-free
	mu    sync.Mutex                     // serialises cache writers
	group singleflight.Group
}

const numKinds = engine.NumKinds

// entry is what Decode knows about one schema id.
type entry struct {
	id int
	// fast: the writer schema is our reader schema for kind.
	fast bool
	kind engine.Kind
	// err: the id is unusable for every kind (not Avro, unparsable, our
	// output schema...). Wrapped ErrWrongSchema or ErrUnknownSchema.
	err error
	// notFoundUntil: negative-cache expiry for ids the registry does not know.
	notFoundUntil time.Time
	// slow path
	codec *goavro.Codec
	plans [numKinds]plan
}

// fixedEntries serve Decode without a registry.
var fixedEntries = [...]entry{
	{id: IDUsage, fast: true, kind: engine.KindUsage},
	{id: IDOutage, fast: true, kind: engine.KindOutage},
	{id: IDClaim, fast: true, kind: engine.KindClaim},
	{id: IDProfile, fast: true, kind: engine.KindProfile},
	{id: IDOfferResponse, fast: true, kind: engine.KindOfferResponse},
	{id: IDContractEvent, fast: true, kind: engine.KindContractEvent},
	{id: IDTick, fast: true, kind: engine.KindTick},
}

var outputEntry = entry{id: IDSegmentChange, err: fmt.Errorf("%w: schema id %d is the segment_change output schema", ErrWrongSchema, IDSegmentChange)}

// NewCodec validates cfg and builds a Codec. It starts no goroutine and makes
// no network call: registry schemas are fetched on first use.
func NewCodec(cfg Config) (*Codec, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Codec{log: cfg.Logger, notFound: cfg.NotFoundTTL}
	empty := map[int]*entry{}
	c.cache.Store(&empty)
	if urls := cfg.registryURLs(); len(urls) > 0 {
		opts := []sr.ClientOpt{sr.URLs(urls...), sr.HTTPClient(cfg.HTTPClient)}
		if cfg.BasicAuthUser != "" {
			opts = append(opts, sr.BasicAuth(cfg.BasicAuthUser, cfg.BasicAuthPassword))
		}
		cl, err := sr.NewClient(opts...)
		if err != nil {
			return nil, fmt.Errorf("schemas: registry client: %w", err)
		}
		c.registry = cl
		for k := engine.Kind(0); k < numKinds; k++ {
			pcf, err := embeddedPCF(IDForKind(k))
			if err != nil {
				return nil, err
			}
			c.readerPCF[k] = pcf
		}
		pcf, err := embeddedPCF(IDSegmentChange)
		if err != nil {
			return nil, err
		}
		c.readerPCF[numKinds] = pcf
	}
	return c, nil
}

func embeddedPCF(id int) (string, error) {
	s, ok := Schema(id)
	if !ok {
		return "", fmt.Errorf("schemas: embedded schema %d missing", id)
	}
	codec, err := goavro.NewCodec(s)
	if err != nil {
		return "", fmt.Errorf("schemas: embedded schema %d: %w", id, err)
	}
	return codec.CanonicalSchema(), nil
}

// Decode parses a Confluent-framed value of the topic whose kind is want and
// overwrites *ev. On the fast path (writer schema = our reader schema) it
// allocates once per record: the strings of ev share one copy of the body.
// Errors wrap ErrTruncated, ErrBadMagic, ErrUnknownSchema, ErrWrongSchema or
// ErrMalformed (the record is bad: see engine.DLQReason), or ErrRegistry (the
// registry could not be asked: retry). ctx bounds a registry fetch only.
func (c *Codec) Decode(ctx context.Context, want engine.Kind, value []byte, ev *engine.Event) error {
	if want >= numKinds {
		return fmt.Errorf("schemas: decode: unknown kind %d", want)
	}
	id, body, err := ParseHeader(value)
	if err != nil {
		return err
	}
	if want == engine.KindTick {
		// The ticks topic is sirenstream's own: always the fixed id, never
		// looked up (a registry's id 7 is someone else's schema).
		if id != IDTick {
			return fmt.Errorf("%w: schema id %d on the ticks topic, want %d", ErrWrongSchema, id, IDTick)
		}
		return decodeFast(want, body, ev)
	}
	e, err := c.lookup(ctx, id)
	if err != nil {
		return err
	}
	if e.err != nil {
		return e.err
	}
	if e.fast {
		if e.kind != want {
			return fmt.Errorf("%w: schema id %d is a %s record, topic expects %s", ErrWrongSchema, id, kindName(e.kind), kindName(want))
		}
		if err := decodeFast(want, body, ev); err != nil {
			return fmt.Errorf("schema id %d: %w", id, err)
		}
		return nil
	}
	return e.decodeSlow(want, body, ev)
}

// lookup returns the entry of a schema id, fetching it from the registry on
// first use.
func (c *Codec) lookup(ctx context.Context, id int) (*entry, error) {
	if c.registry == nil {
		if id >= IDUsage && id <= IDContractEvent {
			return &fixedEntries[id-IDUsage], nil
		}
		if id == IDSegmentChange {
			return &outputEntry, nil
		}
		return nil, fmt.Errorf("%w: schema id %d (no registry configured: only ids 1-6)", ErrUnknownSchema, id)
	}
	if e, ok := (*c.cache.Load())[id]; ok && (e.notFoundUntil.IsZero() || time.Now().Before(e.notFoundUntil)) {
		if !e.notFoundUntil.IsZero() {
			return nil, e.err
		}
		return e, nil
	}
	v, err, _ := c.group.Do(strconv.Itoa(id), func() (any, error) {
		// A flight that ended between our cache miss and Do has stored it.
		if e, ok := (*c.cache.Load())[id]; ok && e.notFoundUntil.IsZero() {
			return e, nil
		}
		e, err := c.fetch(ctx, id)
		if err != nil {
			return nil, err
		}
		c.store(e)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	e := v.(*entry)
	if !e.notFoundUntil.IsZero() {
		return nil, e.err
	}
	return e, nil
}

func (c *Codec) store(e *entry) {
	if !e.notFoundUntil.IsZero() && c.notFound < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.cache.Load()
	next := make(map[int]*entry, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[e.id] = e
	c.cache.Store(&next)
}

// fetch asks the registry for schema id and classifies it. A returned error
// is ErrRegistry (not cached); every answer of the registry is an entry.
func (c *Codec) fetch(ctx context.Context, id int) (*entry, error) {
	s, err := c.registry.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && (re.StatusCode == http.StatusNotFound || re.ErrorCode == sr.ErrSchemaNotFound.Code) {
			c.log.Warn("schema id unknown to the registry", zap.Int("schema_id", id))
			return &entry{
				id:            id,
				err:           fmt.Errorf("%w: schema id %d not found in the registry", ErrUnknownSchema, id),
				notFoundUntil: time.Now().Add(c.notFound),
			}, nil
		}
		return nil, fmt.Errorf("%w: GET /schemas/ids/%d: %w", ErrRegistry, id, err)
	}
	e := c.classify(id, s)
	if e.err != nil {
		c.log.Warn("registry schema unusable", zap.Int("schema_id", id), zap.Error(e.err))
	} else if e.fast {
		c.log.Info("registry schema loaded: project schema, fast path", zap.Int("schema_id", id), zap.Stringer("kind", kindStringer(e.kind)))
	} else {
		c.log.Info("registry schema loaded: resolved by field name (slow path)", zap.Int("schema_id", id))
	}
	return e, nil
}

type kindStringer engine.Kind

func (k kindStringer) String() string { return kindName(engine.Kind(k)) }

// classify builds the entry of a registry schema: fast when its canonical
// form is one of ours, otherwise a goavro codec plus a resolution plan per
// input kind.
func (c *Codec) classify(id int, s sr.Schema) *entry {
	e := &entry{id: id}
	if s.Type != sr.TypeAvro {
		e.err = fmt.Errorf("%w: schema id %d is %s, not Avro", ErrWrongSchema, id, s.Type)
		return e
	}
	if len(s.References) > 0 {
		e.err = fmt.Errorf("%w: schema id %d uses schema references (not supported)", ErrWrongSchema, id)
		return e
	}
	codec, err := goavro.NewCodec(s.Schema)
	if err != nil {
		e.err = fmt.Errorf("%w: schema id %d does not parse: %w", ErrWrongSchema, id, err)
		return e
	}
	pcf := codec.CanonicalSchema()
	for k := engine.Kind(0); k < numKinds; k++ {
		if pcf == c.readerPCF[k] {
			e.fast, e.kind = true, k
			return e
		}
	}
	if pcf == c.readerPCF[numKinds] {
		e.err = fmt.Errorf("%w: schema id %d is the segment_change output schema", ErrWrongSchema, id)
		return e
	}
	w, err := parseWriterRecord(s.Schema)
	if err != nil {
		e.err = fmt.Errorf("%w: schema id %d: %w", ErrWrongSchema, id, err)
		return e
	}
	e.codec = codec
	for k := engine.Kind(0); k < numKinds; k++ {
		e.plans[k] = makePlan(id, k, w)
	}
	return e
}

// EncodeEvent appends ev Confluent-framed with the fixed schema id of ev.Kind
// (see AppendEvent); used by the data generator and tests. It does not consult
// the registry.
func (c *Codec) EncodeEvent(dst []byte, ev *engine.Event) ([]byte, error) {
	return AppendEvent(dst, ev)
}
