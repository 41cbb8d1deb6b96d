// Package whatif answers "what would change if we rolled out these rules?"
// before anyone rolls them out. It replays the input history twice — under
// the current rules and under the proposed ones — each into a fresh,
// temporary Badger directory, with the outputs collected in memory instead
// of written to Kafka, and compares where every SIREN ends up: who enters or
// leaves each segment, which offers are gained or lost.
//
// Cost: two full replays (run concurrently) and, in memory, the latest
// segment change of every SIREN that changed at least once. Nothing is
// written to any topic; the replays use no consumer group.
package whatif

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
)

// collectTopic names the in-memory output of a what-if replay. It is never
// created: the Collector receives every message instead of Kafka.
const collectTopic = "sirenstream-whatif"

// Collector is a processor.MessageWriter that keeps, per SIREN, the latest
// segment change (highest seq), counts entries, exits and flaps per segment
// (Stability) and counts dead letters. Safe for the concurrent partition
// tasks of a replay.
type Collector struct {
	mu        sync.Mutex
	latest    map[string]*schemas.SegmentChange
	dead      int64
	flaps     *engine.Flaps
	stability map[string]*Stability
	flapping  map[string]map[string]bool // segment → SIRENs that flapped
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{latest: map[string]*schemas.SegmentChange{}, flaps: engine.NewFlapsUnordered(),
		stability: map[string]*Stability{}, flapping: map[string]map[string]bool{}}
}

// Stability counts, for one segment over a replay, the entries and exits
// of its SIRENs and the flaps: entries within 7 days (event time) of the
// same SIREN leaving it (sirenstream_segment_flaps_total), and the SIRENs
// with at least one flap.
type Stability struct {
	Entries        int `json:"entries"`
	Exits          int `json:"exits"`
	Flaps          int `json:"flaps"`
	FlappingSIRENs int `json:"flapping_sirens"`
}

// observe counts sc's entries, exits and flaps (c.mu held). The changes of
// one SIREN arrive in seq order (one partition task emits them).
func (c *Collector) observe(sc *schemas.SegmentChange) {
	var added, removed engine.Segments
	for _, name := range sc.Added {
		s, _ := engine.ParseSegment(name)
		added |= s
		c.stat(name).Entries++
	}
	for _, name := range sc.Removed {
		s, _ := engine.ParseSegment(name)
		removed |= s
		c.stat(name).Exits++
	}
	for _, name := range c.flaps.Observe(sc.SIREN, sc.EventTime, added, removed).Names() {
		c.stat(name).Flaps++
		if c.flapping[name] == nil {
			c.flapping[name] = map[string]bool{}
		}
		c.flapping[name][sc.SIREN] = true
	}
}

func (c *Collector) stat(segment string) *Stability {
	s, ok := c.stability[segment]
	if !ok {
		s = &Stability{}
		c.stability[segment] = s
	}
	return s
}

// Stability returns the counts of every segment (every label, zero when
// none changed).
func (c *Collector) Stability() map[string]Stability {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]Stability{}
	for _, name := range engine.AllSegments.Names() {
		var s Stability
		if p := c.stability[name]; p != nil {
			s = *p
		}
		s.FlappingSIRENs = len(c.flapping[name])
		out[name] = s
	}
	return out
}

// WriteMessages decodes segment changes and keeps the latest per SIREN; any
// other topic (dead letters) is only counted. A value that does not decode
// is an error: it would mean the engine wrote something the schema rejects.
func (c *Collector) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		if m.Topic != collectTopic {
			c.dead++
			continue
		}
		sc, err := schemas.DecodeSegmentChange(m.Value)
		if err != nil {
			return fmt.Errorf("what-if: segment change for %s: %w", m.Key, err)
		}
		c.observe(sc)
		if cur, ok := c.latest[sc.SIREN]; !ok || sc.Seq > cur.Seq {
			c.latest[sc.SIREN] = sc
		}
	}
	return nil
}

// Final is where a SIREN ends up at the end of a replay: the segments it
// holds and the offers it would get now (offers are recomputed from its
// final state, not copied from its last segment change, which may be older
// than its latest profile).
type Final struct {
	Segments []string
	Offers   []string
}

// finalStates reads every SIREN's final view from a finished replay's store
// and checks it against the segment changes the replay emitted: the held
// segments only change through an emitted change, so they must agree.
func finalStates(p *processor.Processor, store *state.Store, col *Collector) (map[string]Final, error) {
	emitted := col.Finals()
	out := map[string]Final{}
	for _, part := range p.Owned() {
		var sirens []string
		if err := store.Scan(part, func(siren string, _ []byte) error {
			sirens = append(sirens, siren)
			return nil
		}); err != nil {
			return nil, fmt.Errorf("scan partition %d: %w", part, err)
		}
		for _, s := range sirens {
			d, _, err := p.View(s)
			if err != nil {
				return nil, fmt.Errorf("final state of %s: %w", s, err)
			}
			segs := d.Segments.Names()
			sort.Strings(segs)
			if len(segs) == 0 && len(d.Offers) == 0 {
				continue
			}
			out[s] = Final{Segments: segs, Offers: append([]string(nil), d.Offers...)}
		}
	}
	for s, f := range emitted {
		if !equal(f.Segments, out[s].Segments) {
			return nil, fmt.Errorf("internal error: %s holds %v in its state but its last segment change says %v", s, out[s].Segments, f.Segments)
		}
	}
	return out, nil
}

// Finals returns the segments and offers of the latest segment change of
// every SIREN that changed at least once.
func (c *Collector) Finals() map[string]Final {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Final, len(c.latest))
	for s, sc := range c.latest {
		out[s] = Final{Segments: sc.Segments, Offers: sc.Offers}
	}
	return out
}

// DeadLettered returns the number of dead letters the replay produced.
func (c *Collector) DeadLettered() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// Options configure a what-if comparison.
type Options struct {
	// Config is the processor configuration shared by both replays (brokers,
	// topics, codec, engine settings). Its Rules and Store are ignored: each
	// replay gets its rule set and a fresh store.
	Config processor.Config
	// Current and Proposed are the rule sets compared (both required).
	Current, Proposed *engine.Rules
	// From/To bound event time as in processor.ReplayOptions.
	From, To time.Time
	// Partitions to replay; nil = all.
	Partitions []int32
	// TempDir is where the two temporary state directories are created
	// (default os.TempDir()); they are removed when Run returns.
	TempDir string
	// Examples is how many example SIRENs each entering/leaving list keeps
	// (default 5; the counts are always complete).
	Examples int
}

// Comparison runs two replays and compares them. Construct with New; the
// constructor starts no goroutines.
type Comparison struct {
	opt        Options
	mu         sync.Mutex
	processors []*processor.Processor
	finals     [2]map[string]Final
}

// Finals returns where every SIREN holding a segment or an offer ends up
// under the current (0) and the proposed (1) rules, after a successful Run
// (nil before).
func (c *Comparison) Finals() [2]map[string]Final {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.finals
}

// New validates opt.
func New(opt Options) (*Comparison, error) {
	if opt.Current == nil || opt.Proposed == nil {
		return nil, errors.New("what-if: Current and Proposed rules are required")
	}
	if err := opt.Current.Validate(); err != nil {
		return nil, fmt.Errorf("what-if: current rules: %w", err)
	}
	if err := opt.Proposed.Validate(); err != nil {
		return nil, fmt.Errorf("what-if: proposed rules: %w", err)
	}
	if opt.Examples <= 0 {
		opt.Examples = 5
	}
	return &Comparison{opt: opt}, nil
}

// Progress returns the progress of both replays' tasks (their Total and
// Consumed add up to the work of the comparison).
func (c *Comparison) Progress() []processor.TaskProgress {
	c.mu.Lock()
	ps := append([]*processor.Processor(nil), c.processors...)
	c.mu.Unlock()
	var out []processor.TaskProgress
	for _, p := range ps {
		out = append(out, p.Progress()...)
	}
	return out
}

// Run replays under both rule sets (concurrently) and returns the report.
// An error means the comparison is incomplete; the report is nil then.
func (c *Comparison) Run(ctx context.Context) (*Report, error) {
	parent, err := os.MkdirTemp(c.opt.TempDir, "sirenstream-whatif-")
	if err != nil {
		return nil, fmt.Errorf("what-if: temporary state: %w", err)
	}
	defer os.RemoveAll(parent)

	rules := [2]*engine.Rules{c.opt.Current, c.opt.Proposed}
	var cols [2]*Collector
	var records [2]int64
	var finals [2]map[string]Final
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range [2]string{"current", "proposed"} {
		cols[i] = NewCollector()
		log := c.opt.Config.Logger
		if log == nil {
			log = zap.NewNop()
		}
		store, err := processor.OpenStore(state.Options{Dir: filepath.Join(parent, name), Logger: log})
		if err != nil {
			return nil, fmt.Errorf("what-if: %s state: %w", name, err)
		}
		cfg := c.opt.Config
		cfg.Rules, cfg.Store = rules[i], store
		cfg.Logger = log.With(zap.String("whatif", name))
		p, err := processor.New(cfg)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("what-if: %s: %w", name, err), store.Close())
		}
		c.mu.Lock()
		c.processors = append(c.processors, p)
		c.mu.Unlock()
		g.Go(func() error {
			err := p.Replay(gctx, processor.ReplayOptions{
				OutputTopic: collectTopic,
				From:        c.opt.From,
				To:          c.opt.To,
				Partitions:  c.opt.Partitions,
				Output:      cols[i],
			})
			for _, tp := range p.Progress() {
				records[i] += tp.Consumed
			}
			if err == nil {
				finals[i], err = finalStates(p, store, cols[i])
			}
			if cerr := store.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close %s state: %w", name, cerr))
			}
			if err != nil {
				return fmt.Errorf("what-if replay under %s rules %q: %w", name, rules[i].Version, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.finals = finals
	c.mu.Unlock()
	r := Compare(finals[0], finals[1], c.opt.Examples)
	r.CurrentVersion, r.ProposedVersion = c.opt.Current.Version, c.opt.Proposed.Version
	r.Records = records[0]
	r.DeadLettered = cols[0].DeadLettered()
	r.setStability(cols[0].Stability(), cols[1].Stability())
	return r, nil
}

// Report is the difference between the outcomes of two rule sets. Every
// list is sorted, so the same inputs always give the same report.
type Report struct {
	CurrentVersion  string `json:"current_rules_version"`
	ProposedVersion string `json:"proposed_rules_version"`
	// Records is the number of input records each replay read.
	Records      int64 `json:"records"`
	DeadLettered int64 `json:"dead_lettered"`
	// SIRENs is the number of SIRENs holding a segment under either rule set;
	// Changed those whose final segments differ.
	SIRENs   int           `json:"sirens"`
	Changed  int           `json:"sirens_changed"`
	Segments []SegmentDiff `json:"segments"`
	Offers   []OfferDiff   `json:"offers"`
	Examples []SIRENChange `json:"examples"`
	// Stability is how often each segment is entered, left and re-entered
	// within 7 days under each rule set, in label order.
	Stability []StabilityDiff `json:"stability"`
}

// StabilityDiff is the Stability of one segment under both rule sets.
type StabilityDiff struct {
	Segment  string    `json:"segment"`
	Current  Stability `json:"current"`
	Proposed Stability `json:"proposed"`
}

// setStability fills r.Stability from both replays' counts.
func (r *Report) setStability(current, proposed map[string]Stability) {
	r.Stability = []StabilityDiff{}
	for _, name := range engine.AllSegments.Names() {
		r.Stability = append(r.Stability, StabilityDiff{Segment: name, Current: current[name], Proposed: proposed[name]})
	}
}

// SegmentDiff is one segment under both rule sets.
type SegmentDiff struct {
	Segment  string `json:"segment"`
	Current  int    `json:"current"`  // SIRENs holding it at the end, current rules
	Proposed int    `json:"proposed"` // same, proposed rules
	Entering int    `json:"entering"` // hold it only under the proposed rules
	Leaving  int    `json:"leaving"`  // hold it only under the current rules
	// EnteringExamples/LeavingExamples are the first SIRENs (sorted) of each.
	EnteringExamples []string `json:"entering_examples"`
	LeavingExamples  []string `json:"leaving_examples"`
}

// OfferDiff is one offer under both rule sets.
type OfferDiff struct {
	Offer    string `json:"offer"`
	Current  int    `json:"current"`
	Proposed int    `json:"proposed"`
	Gained   int    `json:"gained"` // SIRENs offered it only under the proposed rules
	Lost     int    `json:"lost"`   // SIRENs offered it only under the current rules
}

// SIRENChange is one SIREN whose final segments differ.
type SIRENChange struct {
	SIREN    string   `json:"siren"`
	Current  []string `json:"current"`
	Proposed []string `json:"proposed"`
}

// Empty reports whether the two rule sets give the same final segments and
// offers for every SIREN.
func (r *Report) Empty() bool {
	if r.Changed > 0 {
		return false
	}
	for _, o := range r.Offers {
		if o.Gained > 0 || o.Lost > 0 {
			return false
		}
	}
	return true
}

// Compare builds the report of current versus proposed final states,
// keeping at most examples example SIRENs per list.
func Compare(current, proposed map[string]Final, examples int) *Report {
	all := map[string]bool{}
	for s := range current {
		all[s] = true
	}
	for s := range proposed {
		all[s] = true
	}
	sirens := make([]string, 0, len(all))
	for s := range all {
		sirens = append(sirens, s)
	}
	sort.Strings(sirens)

	segs := map[string]*SegmentDiff{}
	seg := func(name string) *SegmentDiff {
		d, ok := segs[name]
		if !ok {
			d = &SegmentDiff{Segment: name, EnteringExamples: []string{}, LeavingExamples: []string{}}
			segs[name] = d
		}
		return d
	}
	for _, name := range engine.Segments(0xff).Names() {
		seg(name)
	}
	offers := map[string]*OfferDiff{}
	offer := func(name string) *OfferDiff {
		d, ok := offers[name]
		if !ok {
			d = &OfferDiff{Offer: name}
			offers[name] = d
		}
		return d
	}
	r := &Report{Segments: []SegmentDiff{}, Offers: []OfferDiff{}, Examples: []SIRENChange{}}
	for _, s := range sirens {
		cur, prop := current[s], proposed[s]
		if len(cur.Segments) == 0 && len(prop.Segments) == 0 && len(cur.Offers) == 0 && len(prop.Offers) == 0 {
			continue
		}
		r.SIRENs++
		inCur, inProp := set(cur.Segments), set(prop.Segments)
		for name := range union(inCur, inProp) {
			d := seg(name)
			switch {
			case inCur[name] && inProp[name]:
				d.Current++
				d.Proposed++
			case inCur[name]:
				d.Current++
				d.Leaving++
				if len(d.LeavingExamples) < examples {
					d.LeavingExamples = append(d.LeavingExamples, s)
				}
			default:
				d.Proposed++
				d.Entering++
				if len(d.EnteringExamples) < examples {
					d.EnteringExamples = append(d.EnteringExamples, s)
				}
			}
		}
		oCur, oProp := set(cur.Offers), set(prop.Offers)
		for name := range union(oCur, oProp) {
			d := offer(name)
			if oCur[name] {
				d.Current++
			}
			if oProp[name] {
				d.Proposed++
			}
			if oCur[name] && !oProp[name] {
				d.Lost++
			}
			if oProp[name] && !oCur[name] {
				d.Gained++
			}
		}
		if !equal(cur.Segments, prop.Segments) {
			r.Changed++
			if len(r.Examples) < examples {
				r.Examples = append(r.Examples, SIRENChange{SIREN: s, Current: nonNil(cur.Segments), Proposed: nonNil(prop.Segments)})
			}
		}
	}
	for _, d := range segs {
		r.Segments = append(r.Segments, *d)
	}
	sort.Slice(r.Segments, func(i, j int) bool { return r.Segments[i].Segment < r.Segments[j].Segment })
	for _, d := range offers {
		r.Offers = append(r.Offers, *d)
	}
	sort.Slice(r.Offers, func(i, j int) bool { return r.Offers[i].Offer < r.Offers[j].Offer })
	return r
}

// Segment returns the diff of one segment (zero value if unknown).
func (r *Report) Segment(name string) SegmentDiff {
	for _, d := range r.Segments {
		if d.Segment == name {
			return d
		}
	}
	return SegmentDiff{Segment: name}
}

// Offer returns the diff of one offer (zero value if no SIREN had it).
func (r *Report) Offer(name string) OfferDiff {
	for _, d := range r.Offers {
		if d.Offer == name {
			return d
		}
	}
	return OfferDiff{Offer: name}
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func union(a, b map[string]bool) map[string]bool {
	m := make(map[string]bool, len(a)+len(b))
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// WriteText prints the report for people: one line per segment with the
// totals under both rule sets and who enters or leaves, then the offers.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "what-if: rules %q (current) → %q (proposed), %d input records replayed under each\n",
		r.CurrentVersion, r.ProposedVersion, r.Records)
	if r.Empty() {
		fmt.Fprintf(&b, "no change: all %d SIRENs holding a segment end with the same segments and offers\n", r.SIRENs)
		r.writeStability(&b)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "%d of %d SIRENs holding a segment end with different segments\n\n", r.Changed, r.SIRENs)
	fmt.Fprintf(&b, "%-17s %8s %9s %9s %8s\n", "segment", "current", "proposed", "entering", "leaving")
	for _, d := range r.Segments {
		fmt.Fprintf(&b, "%-17s %8d %9d %+9d %8d\n", d.Segment, d.Current, d.Proposed, d.Entering, -d.Leaving)
	}
	for _, d := range r.Segments {
		if len(d.EnteringExamples) > 0 {
			fmt.Fprintf(&b, "  %s entering (%d), e.g. %s\n", d.Segment, d.Entering, strings.Join(d.EnteringExamples, ", "))
		}
		if len(d.LeavingExamples) > 0 {
			fmt.Fprintf(&b, "  %s leaving (%d), e.g. %s\n", d.Segment, d.Leaving, strings.Join(d.LeavingExamples, ", "))
		}
	}
	fmt.Fprintf(&b, "\n%-19s %8s %9s %7s %6s\n", "offer", "current", "proposed", "gained", "lost")
	for _, d := range r.Offers {
		fmt.Fprintf(&b, "%-19s %8d %9d %+7d %6d\n", d.Offer, d.Current, d.Proposed, d.Gained, -d.Lost)
	}
	r.writeStability(&b)
	if len(r.Examples) > 0 {
		fmt.Fprintf(&b, "\nexamples:\n")
		for _, e := range r.Examples {
			fmt.Fprintf(&b, "  %s  %v → %v\n", e.SIREN, e.Current, e.Proposed)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeStability prints entries, exits and flaps per segment under both
// rule sets (nothing when the report has none: a Compare of finals alone).
func (r *Report) writeStability(b *strings.Builder) {
	if len(r.Stability) == 0 {
		return
	}
	fmt.Fprintf(b, "\nstability (flaps: entries within 7 days of leaving; current → proposed)\n")
	fmt.Fprintf(b, "%-17s %13s %13s %13s %17s\n", "segment", "entries", "exits", "flaps", "flapping SIRENs")
	for _, d := range r.Stability {
		fmt.Fprintf(b, "%-17s %13s %13s %13s %17s\n", d.Segment,
			arrow(d.Current.Entries, d.Proposed.Entries), arrow(d.Current.Exits, d.Proposed.Exits),
			arrow(d.Current.Flaps, d.Proposed.Flaps), arrow(d.Current.FlappingSIRENs, d.Proposed.FlappingSIRENs))
	}
}

func arrow(a, b int) string { return fmt.Sprintf("%d → %d", a, b) }

// WriteJSON prints the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
