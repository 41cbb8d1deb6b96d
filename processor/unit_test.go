package processor

// The task's parts without a broker: the merge over in-memory rings, the
// merge plan, dead-letter routing through the handler and collector, and the
// committer folding a failed flush into the next batch. State is a real
// Badger directory; outputs go to an in-memory writer.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/internal/handoff"
	"github.com/sirenstream/sirenstream/schemas"
	"github.com/sirenstream/sirenstream/state"
)

// memWriter is an in-memory MessageWriter; fail makes the next calls fail.
type memWriter struct {
	mu     sync.Mutex
	msgs   []kafka.Message
	fail   int
	writes int // successful calls
}

func (w *memWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail > 0 {
		w.fail--
		return errors.New("broker unavailable")
	}
	w.msgs = append(w.msgs, msgs...)
	w.writes++
	return nil
}

// snapshot returns the successful calls so far and a copy of the list of
// messages written.
func (w *memWriter) snapshot() (writes int, msgs []kafka.Message) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes, append([]kafka.Message(nil), w.msgs...)
}

func (w *memWriter) values() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, len(w.msgs))
	for i, m := range w.msgs {
		out[i] = m.Topic + ":" + string(m.Value)
	}
	return out
}

// testInputs returns live inputs whose rings hold the given (offset, event
// time) records; hwm is each input's high watermark.
func testInputs(t *testing.T, hwm [numInputs]int64, recs [numInputs][][2]int64) *inputs {
	t.Helper()
	in := &inputs{wake: handoff.NewWakeup(), hwm: hwm}
	for i := range in.rings {
		in.rings[i] = handoff.NewRing[item](16)
		for _, r := range recs[i] {
			it := in.rings[i].Slot(context.Background())
			it.msg = kafka.Message{Offset: r[0]}
			it.ev = engine.Event{EventTime: r[1]}
			it.err = nil
			in.rings[i].Publish(in.wake)
		}
		if len(recs[i]) > 0 {
			in.next[i] = recs[i][0][0]
		}
	}
	return in
}

// order drains in and returns "input@offset" in merge order.
func order(in *inputs) []string {
	var out []string
	for {
		i := in.pick()
		if i < 0 {
			return out
		}
		out = append(out, fmt.Sprintf("%d@%d", i, in.Head(i).msg.Offset))
		in.take(i)
	}
}

func TestMergeTakesEventTimeOrderWithTiesInInputOrder(t *testing.T) {
	// profiles(0), outages(1), claims(2), usage(3); all inputs caught up at
	// their last record.
	in := testInputs(t, [numInputs]int64{1, 2, 1, 3}, [numInputs][][2]int64{
		{{0, 50}},
		{{0, 10}, {1, 50}},
		{{0, 50}},
		{{0, 5}, {1, 10}, {2, 60}},
	})
	got := order(in)
	want := []string{"3@0", "1@0", "3@1", "0@0", "1@1", "2@0", "3@2"}
	if !slices.Equal(got, want) {
		t.Fatalf("merge order %v, want %v (ties: profiles, outages, claims, usage)", got, want)
	}
}

func TestMergeWaitsForAnInputBehindItsHighWatermark(t *testing.T) {
	// Claims has nothing buffered but its high watermark says 3 records
	// exist: one of them may be earlier, so the merge waits.
	in := testInputs(t, [numInputs]int64{0, 0, 3, 1}, [numInputs][][2]int64{3: {{0, 100}}})
	if i := in.pick(); i != -1 {
		t.Fatalf("pick = %d while claims is behind its high watermark, want -1", i)
	}
	in.next[2] = 3 // caught up: nothing more to wait for
	if got := order(in); !slices.Equal(got, []string{"3@0"}) {
		t.Fatalf("order %v once claims is caught up", got)
	}
}

func TestMergeFollowsAStoredPlanOverEventTime(t *testing.T) {
	in := testInputs(t, [numInputs]int64{0, 1, 0, 2}, [numInputs][][2]int64{
		1: {{0, 10}},
		3: {{0, 20}, {1, 30}},
	})
	in.replayPlan = []byte{3, 3, 1} // live arrival took both usage records first
	if got, want := order(in), []string{"3@0", "3@1", "1@0"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want the plan's %v", got, want)
	}
}

func TestMergeDropsRecordsBeforeTheNextOffsetAndAfterABoundedEnd(t *testing.T) {
	in := testInputs(t, [numInputs]int64{}, [numInputs][][2]int64{3: {{4, 1}, {5, 2}, {6, 3}, {7, 4}}})
	in.bounded = true
	in.next[3], in.end[3] = 5, 7
	if got, want := order(in), []string{"3@5", "3@6"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if !in.allDone() {
		t.Fatal("bounded inputs not done at their end offsets")
	}
}

func TestMergePlanRoundTripAndStalePlans(t *testing.T) {
	start := [numInputs]int64{7, 0, 3, 1_000_000}
	recs := []byte{3, 3, 0, 2, 1}
	b := encodePlan(start, recs)
	got, ok := decodePlan(b, start)
	if !ok || !slices.Equal(got, recs) {
		t.Fatalf("decodePlan = %v, %v; want %v", got, ok, recs)
	}
	moved := start
	moved[3]++
	if _, ok := decodePlan(b, moved); ok {
		t.Fatal("a plan for other start offsets was accepted (its batch was committed)")
	}
	if _, ok := decodePlan(append(b[:len(b):len(b)], numInputs), start); ok {
		t.Fatal("a plan naming a non-existent input was accepted")
	}
	if _, ok := decodePlan(nil, start); ok {
		t.Fatal("an empty plan was accepted")
	}
}

func TestMetaRoundTrip(t *testing.T) {
	eng := engine.NewTask(nil, engine.Config{})
	want := taskMeta{sweep: sweepProgress{active: true, cursor: "732829320"}, repair: repairMark{active: true, to: [numInputs]int64{1, 0, 7, 1 << 40}}}
	b := appendMeta(nil, want, eng)
	got, err := parseMeta(b, engine.NewTask(nil, engine.Config{}))
	if err != nil || got != want {
		t.Fatalf("parseMeta = %+v, %v; want %+v", got, err, want)
	}
	// A meta of the previous layout (no repair) still parses.
	old := appendMeta(nil, taskMeta{sweep: want.sweep}, eng)
	if got, err := parseMeta(old, eng); err != nil || got.repair.active || got.sweep != want.sweep {
		t.Fatalf("parseMeta(no repair) = %+v, %v", got, err)
	}
	if _, err := parseMeta([]byte{9, 0}, eng); err == nil {
		t.Fatal("unknown meta version accepted")
	}
}

// unit is a handler, collector and committer over a real Badger store and
// an in-memory writer: a task without Kafka.
type unit struct {
	store  *state.Store
	cache  *state.Cache[*engine.State]
	writer *memWriter
	com    *committer
	h      *handler
	prog   *progress
	codec  *schemas.Codec
	next   [numInputs]int64
}

func newUnit(t *testing.T) *unit {
	t.Helper()
	store, err := OpenStore(state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	u := &unit{store: store, writer: &memWriter{}, prog: &progress{}, codec: codec}
	u.cache = state.NewCache[*engine.State](store, 0, stateCodec{}, 1000)
	now := time.Unix(1_700_000_000, 0)
	u.com = &committer{
		inputs: [numInputs]string{"profiles", "outages", "claims", "usage"},
		log:    zap.NewNop(),
		now:    func() time.Time { return now },
		cad: cadence{interval: time.Second, catchUpInterval: time.Second, records: 100, catchUpRecords: 100,
			maxEntries: store.MaxCommitEntries(), maxBytes: store.MaxCommitBytes()},
		states:  u.cache,
		plans:   store,
		writer:  u.writer,
		backlog: func() int64 { return 0 },
	}
	eng := engine.NewTask(nil, engine.Config{MaxFutureSkewMs: int64(24 * time.Hour / time.Millisecond)})
	out := &observed{
		next:     &collector{routes: routes{segments: "segment-changes", churn: "churn-alerts", dlq: "dlq"}, batch: u.com},
		metrics:  nopMetrics{},
		progress: u.prog,
	}
	u.h = &handler{eng: eng, states: u.cache, out: out, beginDay: func(context.Context, int64) error {
		t.Fatal("no day change expected")
		return nil
	}}
	return u
}

// feed handles one record of input in whose value is val.
func (u *unit) feed(t *testing.T, in int, key string, val []byte, ts time.Time) {
	t.Helper()
	it := &item{msg: kafka.Message{Topic: u.com.inputs[in], Key: []byte(key), Value: val, Offset: u.next[in], Time: ts}}
	it.err = u.codec.Decode(context.Background(), engine.Kind(in), val, &it.ev)
	if err := u.h.handle(context.Background(), u.com.inputs[in], it); err != nil {
		t.Fatal(err)
	}
	u.next[in]++
	u.com.took(in)
}

func (u *unit) encode(t *testing.T, ev engine.Event) []byte {
	t.Helper()
	b, err := u.codec.EncodeEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func header(m kafka.Message, k string) string {
	for _, h := range m.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestHandlerRoutesEveryBadRecordToTheDeadLetterTopicWithItsReason(t *testing.T) {
	u := newUnit(t)
	const siren = "732829320"
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	usage := func(id, s string, at time.Time) engine.Event {
		return engine.Event{Kind: engine.KindUsage, EventID: id, SIREN: s, EventTime: at.UnixMilli(), SiteID: "s1", PostalCode: "75001", BytesUp: 1, BytesDown: 2}
	}
	good := u.encode(t, usage("u1", siren, t0))
	u.feed(t, 3, siren, good, t0)                                                      // processed
	u.feed(t, 3, siren, good, t0)                                                      // duplicate
	u.feed(t, 3, siren, []byte{1, 0, 0, 0, 1}, t0)                                     // bad_magic
	u.feed(t, 3, siren, []byte{0, 0}, t0)                                              // truncated
	u.feed(t, 3, "123456789", u.encode(t, usage("u2", "123456789", t0)), t0)           // invalid_siren (Luhn)
	u.feed(t, 3, "552100554", u.encode(t, usage("u3", siren, t0)), t0)                 // key_mismatch
	u.feed(t, 3, siren, u.encode(t, usage("u4", siren, t0.Add(72*time.Hour))), t0)     // future
	u.feed(t, 3, siren, u.encode(t, usage("u5", siren, t0.Add(-30*24*time.Hour))), t0) // late
	u.feed(t, 0, siren, good, t0)                                                      // wrong_schema (usage id on profiles)

	var reasons []string
	for _, m := range u.com.outputs {
		if m.Topic != "dlq" {
			t.Fatalf("unexpected output on %s before any segment change", m.Topic)
		}
		reasons = append(reasons, header(m, "error"))
		if header(m, "source.partition") != "0" || header(m, "error.detail") == "" {
			t.Fatalf("dead letter without coordinates or detail: %+v", m.Headers)
		}
	}
	want := []string{"duplicate", "bad_magic", "truncated", "invalid_siren", "key_mismatch", "future", "late", "wrong_schema"}
	if !slices.Equal(reasons, want) {
		t.Fatalf("dead-letter reasons %v, want %v", reasons, want)
	}
	if got := header(u.com.outputs[4], "source.offset"); got != "5" {
		t.Fatalf("source.offset of the key mismatch = %q, want 5", got)
	}
	p := u.prog.snapshot()
	if p.Consumed != 9 || p.Processed != 1 || p.DeadLettered != 8 || p.Consumed != p.Processed+p.DeadLettered {
		t.Fatalf("accounting %+v: consumed must equal processed + dead-lettered", p)
	}
}

func TestAFailedFlushIsFoldedIntoTheNextBatch(t *testing.T) {
	u := newUnit(t)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	bad := func(n byte) []byte { return []byte{9, 0, 0, 0, n} } // bad magic: one DLQ output each
	u.feed(t, 3, "732829320", bad(1), t0)
	u.feed(t, 3, "732829320", bad(2), t0)
	crash := errors.New("crash before the state transaction")
	fail := true
	u.com.beforeState = func(int32) error {
		if fail {
			return crash
		}
		return nil
	}
	ctx := context.Background()
	if err := u.com.commit(ctx, false, u.next, []byte{1}); err != nil {
		t.Fatal(err)
	}
	u.feed(t, 3, "732829320", bad(3), t0)
	if err := u.com.awaitInflight(); !errors.Is(err, crash) {
		t.Fatalf("awaitInflight = %v, want the crash", err)
	}
	// Folded back: the failed batch's outputs and plan come first, the batch
	// starts at the failed batch's start offsets.
	if len(u.com.outputs) != 3 || u.com.outputs[0].Value[4] != 1 || u.com.outputs[2].Value[4] != 3 {
		t.Fatalf("open batch after the failure has %d outputs, want the 2 failed then the new one", len(u.com.outputs))
	}
	if !slices.Equal(u.com.plan, []byte{3, 3, 3}) || u.com.batchStart != ([numInputs]int64{}) {
		t.Fatalf("plan %v from %v, want [3 3 3] from the failed batch's start", u.com.plan, u.com.batchStart)
	}
	if _, ok, _ := u.store.Checkpoint(0); ok {
		t.Fatal("a checkpoint was stored although the state transaction failed")
	}
	fail = false
	if err := u.com.commit(ctx, true, u.next, []byte{1}); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := u.store.Checkpoint(0)
	if err != nil || !ok || cp.Offsets["usage"] != 3 {
		t.Fatalf("checkpoint %+v %v %v, want usage offset 3", cp, ok, err)
	}
	// The writer saw the first batch twice (at-least-once, same bytes), then
	// nothing is pending.
	vals := u.writer.values()
	if len(vals) != 5 || vals[0] != vals[2] || vals[1] != vals[3] {
		t.Fatalf("written %q, want the failed batch re-written before the new record", vals)
	}
	if len(u.com.outputs) != 0 || u.com.inflight != nil || u.com.uncommitted != 0 {
		t.Fatal("committer not idle after a forced commit")
	}
}

func TestCommitCadenceCutsBatchesByRecords(t *testing.T) {
	u := newUnit(t)
	u.com.cad.records, u.com.cad.catchUpRecords = 3, 6
	backlog := int64(0)
	u.com.backlog = func() int64 { return backlog }
	for i := 0; i < 3; i++ {
		u.com.took(3)
	}
	if !u.com.recordsFull() {
		t.Fatal("3 records with no backlog: the batch should be full")
	}
	backlog = 10 // behind: batches grow to catchUpRecords
	if u.com.recordsFull() {
		t.Fatal("behind by 10 ≥ records: the batch should grow to 6")
	}
	for i := 0; i < 3; i++ {
		u.com.took(3)
	}
	if !u.com.recordsFull() {
		t.Fatal("6 records while behind: the batch should be full")
	}
}
