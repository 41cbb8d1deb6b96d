package processor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
	"github.com/sirenstream/sirenstream/schemas"
)

// rbInput is one record of the bad-input test: reason "" means it must be
// processed, otherwise it must land in the DLQ with that reason.
type rbInput struct {
	name   string
	msg    kafka.Message
	reason string
	evTime int64 // event time of a good record (expected stream time)
}

// rbStr is an Avro string of fewer than 64 bytes (zig-zag length in one byte).
func rbStr(s string) []byte { return append([]byte{byte(2 * len(s))}, s...) }

// TestBadInputNeverStopsTheStream: every kind of bad input of issue 8,
// interleaved with good records on every input topic, lands in
// sirenstream-dlq with its reason, its original key and value and its source
// coordinates; per partition consumed = processed + dead-lettered; the good
// records' outputs are exactly those of the good records alone; a re-sent
// usage record is not counted; a record from a bad clock does not move
// stream time; a replay dead-letters the same records for the same reasons.
func TestBadInputNeverStopsTheStream(t *testing.T) {
	const parts = 2
	T := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC).UnixMilli()
	const h = int64(time.Hour / time.Millisecond)
	const d = 24 * h
	sGood, sDup, sRes, sRB, sOther := gen.SIREN(101), gen.SIREN(102), gen.SIREN(103), gen.SIREN(104), gen.SIREN(105)
	sFuture, sHuge := gen.SIREN(106), gen.SIREN(107)

	var in []rbInput
	good := func(name string, ev engine.Event) kafka.Message {
		m := testkit.Msg(t, ev)
		in = append(in, rbInput{name: name, msg: m, evTime: ev.EventTime})
		return m
	}
	bad := func(name, reason string, m kafka.Message) {
		if m.Time.IsZero() {
			m.Time = time.UnixMilli(T)
		}
		in = append(in, rbInput{name: name, msg: m, reason: reason})
	}
	badEv := func(name, reason string, ev engine.Event) {
		bad(name, reason, testkit.Msg(t, ev))
	}
	usage := func(siren, id string, at int64, postal string, up, down int64) engine.Event {
		return engine.Event{Kind: engine.KindUsage, EventID: id, SIREN: siren, EventTime: at, SiteID: "site-" + postal, PostalCode: postal, BytesUp: up, BytesDown: down}
	}
	outage := func(siren, id, outageID string, at int64, status engine.OutageStatus, startedAt int64) engine.Event {
		ev := engine.Event{Kind: engine.KindOutage, EventID: id, SIREN: siren, EventTime: at, OutageID: outageID, SiteID: "s1", PostalCode: "69001", Status: status}
		if startedAt != 0 {
			ev.StartedAt, ev.HasStartedAt = startedAt, true
		}
		return ev
	}
	raw := func(topic, key string, value []byte) kafka.Message {
		m := kafka.Message{Topic: topic, Value: value}
		if key != "" {
			m.Key = []byte(key)
		}
		return m
	}
	validUsage := testkit.Encode(t, usage(sGood, "u-template", T, "75001", 1, 1))
	rnd := rand.New(rand.NewPCG(8, 8))
	random := make([]byte, 48)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}

	// Good records interleaved with bad ones (produce order = offset order
	// within each topic partition).
	good("profile", engine.Event{Kind: engine.KindProfile, EventID: "pG", SIREN: sGood, EventTime: T, Workforce: 10, HasWorkforce: true, Plan: "BASIC_SIM"})
	bad("truncated", "truncated", raw("usage", sGood, validUsage[:len(validUsage)-3]))
	bad("random_bytes", "bad_magic", raw("usage", sGood, append([]byte{0x5a}, random...)))
	bad("random_after_header", "truncated", raw("usage", sGood, append(schemas.AppendHeader(nil, schemas.IDUsage), random...)))
	bad("trailing_byte", "malformed", raw("usage", sGood, append(append([]byte{}, validUsage...), 7)))
	bad("wrong_magic", "bad_magic", raw("usage", sGood, append([]byte{1}, validUsage[1:]...)))
	bad("header_only", "truncated", raw("claims", sGood, []byte{0, 0, 0}))
	bad("unknown_schema_id", "unknown_schema", raw("usage", sGood, append(schemas.AppendHeader(nil, 99), validUsage[5:]...)))
	good("outage_started", outage(sGood, "oG1", "out-1", T+1*h, engine.OutageStarted, 0))
	bad("outage_bytes_on_usage", "wrong_schema", raw("usage", sGood, testkit.Encode(t, outage(sGood, "oX", "out-x", T+h, engine.OutageStarted, 0))))
	bad("output_schema_on_claims", "wrong_schema", raw("claims", sGood, append(schemas.AppendHeader(nil, schemas.IDSegmentChange), validUsage[5:]...)))
	outageBadEnum := schemas.AppendHeader(nil, schemas.IDOutage)
	for _, s := range []string{"oE", "out-e", sGood, "s1", "69001"} {
		outageBadEnum = append(outageBadEnum, rbStr(s)...)
	}
	bad("outage_status_enum_5", "malformed", raw("outages", sGood, append(outageBadEnum, 10, 2, 0)))
	badEv("siren_8_digits", "invalid_siren", usage("12345678", "uL", T+h, "75001", 1, 1))
	badEv("siren_letters", "invalid_siren", usage("12345678X", "uX", T+h, "75001", 1, 1))
	badEv("siren_luhn", "invalid_siren", usage("123456789", "uH", T+h, "75001", 1, 1))
	badEv("siren_10_digits", "invalid_siren", usage(sGood+"0", "uT", T+h, "75001", 1, 1))
	badEv("negative_bytes", "invalid_event", usage(sGood, "uN", T+h, "75001", -5, 10))
	badEv("huge_bytes", "invalid_event", usage(sGood, "uB", T+h, "75001", 2e15, 0))
	badEv("huge_amount", "invalid_event", engine.Event{Kind: engine.KindClaim, EventID: "cH", SIREN: sGood, EventTime: T + h, ClaimID: "c-h", AmountCents: 1e13})
	badEv("negative_workforce", "invalid_event", engine.Event{Kind: engine.KindProfile, EventID: "pN", SIREN: sGood, EventTime: T + h, Workforce: -3, HasWorkforce: true, Plan: "SD_WAN"})
	badEv("empty_event_id", "invalid_event", usage(sGood, "", T+h, "75001", 1, 1))
	badEv("claim_empty_outage_id", "invalid_event", engine.Event{Kind: engine.KindClaim, EventID: "cE", SIREN: sGood, EventTime: T + h, ClaimID: "c-e", HasOutageID: true})
	// Huge strings that decode (Kafka takes 1 MB): kept in state they would
	// bloat it past one Badger transaction; they are dead-lettered instead.
	for i := range 6 {
		badEv(fmt.Sprintf("huge_postal_code_%d", i), "invalid_event", usage(sHuge, fmt.Sprintf("uHuge%d", i), T+h, strings.Repeat(strconv.Itoa(i), 300_000), 1, 1))
	}
	// An invalid SIREN of 400 kB (key and value: 800 kB): its dead letter must still fit in a Kafka record.
	badEv("huge_invalid_siren", "invalid_siren", usage(strings.Repeat("X", 400_000), "uHS", T+h, "75001", 1, 1))
	good("outage_resolved", outage(sGood, "oG2", "out-1", T+6*h, engine.OutageResolved, T+1*h))
	// RESOLVED with started_at after its own event time: resolved before started.
	badEv("resolved_before_started_at", "invalid_event", outage(sRB, "oRB1", "out-rb1", T+2*h, engine.OutageResolved, T+3*h))
	// RESOLVED earlier than its STARTED (offset order: STARTED first).
	good("rb_started", outage(sRB, "oRB2", "out-rb2", T+2*h, engine.OutageStarted, 0))
	badEv("resolved_before_its_started", "invalid_event", outage(sRB, "oRB3", "out-rb2", T+1*h, engine.OutageResolved, 0))
	// RESOLVED without STARTED: with started_at it counts; without, DLQ.
	good("resolved_without_started_with_started_at", outage(sRes, "oR1", "out-r1", T+7*h, engine.OutageResolved, T+1*h))
	badEv("resolved_without_started_nor_started_at", "invalid_event", outage(sRes, "oR2", "out-r2", T+7*h, engine.OutageResolved, 0))
	// Duplicate: the same usage record re-sent, byte for byte.
	dupMsg := good("usage_1", usage(sDup, "uD1", T+2*h, "75001", 1e9, 3e9))
	bad("usage_1_resent", "duplicate", dupMsg)
	good("usage_2", usage(sDup, "uD2", T+3*h, "13001", 2e9, 5e9))
	// Same event_id, different body: still the same event, not counted.
	badEv("usage_same_event_id_other_bytes", "duplicate", usage(sDup, "uD1", T+4*h, "75001", 7e9, 7e9))
	// Far future by the record's own timestamp (a device with a bad clock).
	fut := testkit.Msg(t, usage(sFuture, "uF", T+400*d, "75001", 1, 1))
	fut.Time = time.UnixMilli(T + 3*h)
	bad("future_400_days", "future", fut)
	fut = testkit.Msg(t, usage(sFuture, "uF2", T+3*h+25*h, "75001", 1, 1))
	fut.Time = time.UnixMilli(T + 3*h)
	bad("future_25h_over_24h_skew", "future", fut)
	// Key is not the payload's SIREN, or missing.
	bad("key_mismatch", "key_mismatch", raw("usage", sGood, testkit.Encode(t, usage(sOther, "uK", T+h, "75001", 1, 1))))
	bad("null_key", "key_mismatch", raw("usage", "", testkit.Encode(t, usage(sOther, "uNK", T+h, "75001", 1, 1))))
	bad("tombstone_null_value", "truncated", raw("profiles", sGood, nil))
	bad("empty_value_claims", "truncated", raw("claims", sDup, []byte{}))
	good("claim", engine.Event{Kind: engine.KindClaim, EventID: "cG", SIREN: sGood, EventTime: T + d, ClaimID: "claim-g", OutageID: "out-1", HasOutageID: true, AmountCents: 120000})
	// Late: 30 days behind stream time of sDup's partition (after its usage).
	badEv("late_30_days", "late", usage(sDup, "uLate", T-30*d, "75001", 1, 1))
	good("usage_last", usage(sDup, "uD3", T+d+2*h, "75001", 1, 1))

	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	msgs := make([]kafka.Message, len(in))
	for i := range in {
		msgs[i] = in[i].msg
	}
	// Batches within the broker's 1 MB limit: the huge records are near it.
	w := load.Writer(brokers, nil)
	w.BatchBytes = 1_000_000
	pctx, pcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer pcancel()
	if err := w.WriteMessages(pctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := testkit.Config(t, brokers, t.TempDir())
	cfg.Rules = engine.RulesV1() // traffic_30d counts the current day
	hs := testkit.Start(t, cfg)
	hs.WaitConsumed(t, int64(len(in)), parts, 60*time.Second)
	prog := hs.P.Progress()
	dupView, _, err := hs.P.View(sDup)
	if err != nil {
		t.Fatalf("view %s: %v", sDup, err)
	}
	_, _, otherErr := hs.P.View(sOther)
	_, _, hugeErr := hs.P.View(sHuge)
	hs.Stop(t)

	// Where did each input land? Read the inputs back.
	type coord struct {
		topic     string
		partition int
		offset    int64
	}
	at := map[coord]int{} // → index in `in`
	where := make([]coord, len(in))
	ident := func(topic string, key, value []byte) string {
		return topic + "\x00" + string(key) + "\x00" + string(value)
	}
	byIdent := map[string][]int{}
	for i, r := range in {
		k := ident(r.msg.Topic, r.msg.Key, r.msg.Value)
		byIdent[k] = append(byIdent[k], i)
	}
	for _, topic := range []string{"profiles", "outages", "claims", "usage"} {
		for _, m := range testkit.ReadAll(t, brokers, topic) {
			k := ident(topic, m.Key, m.Value)
			if len(byIdent[k]) == 0 {
				t.Fatalf("unexpected input %s/%d@%d", topic, m.Partition, m.Offset)
			}
			i := byIdent[k][0]
			byIdent[k] = byIdent[k][1:]
			c := coord{topic, m.Partition, m.Offset}
			at[c], where[i] = i, c
		}
	}

	// Every dead letter is one of our bad inputs, with its reason, original
	// bytes and coordinates; every bad input is dead-lettered once.
	dlq := testkit.ReadAll(t, brokers, "sirenstream-dlq")
	seen := map[int]bool{}
	for _, m := range dlq {
		hd := map[string]string{}
		for _, x := range m.Headers {
			hd[x.Key] = string(x.Value)
		}
		p, _ := strconv.Atoi(hd["source.partition"])
		off, _ := strconv.ParseInt(hd["source.offset"], 10, 64)
		i, ok := at[coord{hd["source.topic"], p, off}]
		if !ok {
			t.Errorf("dead letter with unknown source %v", hd)
			continue
		}
		r := in[i]
		if seen[i] {
			t.Errorf("%s dead-lettered twice", r.name)
		}
		seen[i] = true
		if hd["error"] != r.reason {
			t.Errorf("%s: dead-letter reason %q, want %q (detail %.200s)", r.name, hd["error"], r.reason, hd["error.detail"])
		}
		if !bytes.Equal(m.Key, r.msg.Key) || !bytes.Equal(m.Value, r.msg.Value) {
			t.Errorf("%s: dead letter does not carry the original key and value", r.name)
		}
		if hd["error.detail"] == "" || len(hd["error.detail"]) > 4096 {
			t.Errorf("%s: error.detail header has %d bytes", r.name, len(hd["error.detail"]))
		}
	}
	for i, r := range in {
		what := "processed"
		if seen[i] {
			what = "dead-lettered: " + r.reason
		}
		t.Logf("%-42s %s/%d@%d → %s", r.name, where[i].topic, where[i].partition, where[i].offset, what)
	}
	perPart := map[int]struct{ consumed, processed, dead, stream int64 }{}
	for i, r := range in {
		c := perPart[where[i].partition]
		c.consumed++
		if r.reason == "" {
			c.processed++
			c.stream = max(c.stream, r.evTime)
			if seen[i] {
				t.Errorf("good record %s was dead-lettered", r.name)
			}
		} else {
			c.dead++
			if !seen[i] {
				t.Errorf("%s (%s) is not in the DLQ", r.name, r.reason)
			}
		}
		perPart[where[i].partition] = c
	}
	if len(prog) != parts {
		t.Fatalf("progress of %d partitions, want %d", len(prog), parts)
	}
	for _, tp := range prog {
		want := perPart[int(tp.Partition)]
		if tp.Consumed != want.consumed || tp.Processed != want.processed || tp.DeadLettered != want.dead || tp.Consumed != tp.Processed+tp.DeadLettered {
			t.Errorf("partition %d: consumed %d processed %d dead %d; want %d = %d + %d",
				tp.Partition, tp.Consumed, tp.Processed, tp.DeadLettered, want.consumed, want.processed, want.dead)
		}
		// The future records did not drag stream time forward.
		if tp.StreamTime != want.stream {
			t.Errorf("partition %d: stream time %s, want %s (the latest good event)", tp.Partition,
				time.UnixMilli(tp.StreamTime).UTC(), time.UnixMilli(want.stream).UTC())
		}
	}

	// Good outputs are right.
	changes := map[string][]*schemas.SegmentChange{}
	for _, c := range testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes")) {
		changes[c.SIREN] = append(changes[c.SIREN], c)
	}
	// The golden-hour timer's offer (seq 1), the threshold timer's
	// RECOVERY_EXPOSED at 4 h (seq 2), then the claim's CHURN_RISK.
	g := changes[sGood]
	if len(g) != 3 || len(g[0].Segments) != 0 || !reflect.DeepEqual(g[0].OffersAdded, []string{"GOLDEN_HOUR_REPAIR"}) ||
		!reflect.DeepEqual(g[1].Segments, []string{"RECOVERY_EXPOSED"}) ||
		!reflect.DeepEqual(g[2].Segments, []string{"CHURN_RISK", "RECOVERY_EXPOSED", "SLA_SENSITIVE"}) ||
		g[1].Metrics.RecoveryExposureHours90d != 4 || g[2].Metrics.Claims365d != 1 {
		t.Errorf("%s: want the golden-hour offer, RECOVERY_EXPOSED (4 h) then CHURN_RISK with 1 claim, got %s", sGood, rbDescribe(g))
	}
	r := changes[sRes]
	if len(r) != 1 || !reflect.DeepEqual(r[0].Segments, []string{"RECOVERY_EXPOSED"}) || r[0].Metrics.RecoveryExposureHours90d != 6 {
		t.Errorf("%s: RESOLVED with started_at and no STARTED: want RECOVERY_EXPOSED with 6 h, got %s", sRes, rbDescribe(r))
	}
	dup := changes[sDup]
	const wantTraffic = 1e9 + 3e9 + 2e9 + 5e9
	if len(dup) != 1 || !reflect.DeepEqual(dup[0].Segments, []string{"MULTI_SITE"}) || dup[0].Metrics.Traffic30dBytes != wantTraffic {
		t.Errorf("%s: want MULTI_SITE with traffic %d (duplicate not counted), got %s", sDup, int64(wantTraffic), rbDescribe(dup))
	}
	if got := dupView.Metrics.Traffic30dBytes; got != wantTraffic+2 {
		t.Errorf("%s: traffic_30d_bytes now %d, want %d: a duplicate was counted", sDup, got, int64(wantTraffic+2))
	}
	for _, s := range []string{sOther, sFuture, sHuge, "12345678", "12345678X", "123456789"} {
		if len(changes[s]) != 0 {
			t.Errorf("bad input produced segment changes for %q", s)
		}
	}
	if !errors.Is(otherErr, processor.ErrUnknownSIREN) || !errors.Is(hugeErr, processor.ErrUnknownSIREN) {
		t.Errorf("dead-lettered records created state: view errors %v, %v", otherErr, hugeErr)
	}

	// Deterministic on replay: the same records are dead-lettered for the
	// same reasons (future is judged against the record timestamp, not the
	// wall clock), and stream times are the same.
	p, out := testkit.ReplayToMemory(t, brokers, processor.ReplayOptions{OutputTopic: "replay-changes"})
	var live, replayed []string
	for _, m := range dlq {
		live = append(live, testkit.DLQKey(m))
	}
	for _, m := range out {
		if m.Topic == "replay-changes-dlq" {
			replayed = append(replayed, testkit.DLQKey(m))
		}
	}
	sort.Strings(live)
	sort.Strings(replayed)
	if !reflect.DeepEqual(live, replayed) {
		t.Errorf("replay dead-lettered differently:\nlive   %q\nreplay %q", live, replayed)
	}
	for i, tp := range p.Progress() {
		if tp.StreamTime != prog[i].StreamTime || tp.DeadLettered != prog[i].DeadLettered {
			t.Errorf("replay partition %d: stream time %d dead %d; live %d, %d", tp.Partition, tp.StreamTime, tp.DeadLettered, prog[i].StreamTime, prog[i].DeadLettered)
		}
	}
}

func rbDescribe(cs []*schemas.SegmentChange) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "[seq %d %v traffic %d exposure %v claims %d] ", c.Seq, c.Segments, c.Metrics.Traffic30dBytes, c.Metrics.RecoveryExposureHours90d, c.Metrics.Claims365d)
	}
	return b.String()
}
