package processor_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
)

// TestOpenOutageAlertsAtItsThresholdNotAtTheNextEvent (spec §8 timers): a
// SIREN whose outage starts and which then sends nothing is offered
// GOLDEN_HOUR_REPAIR at start + 1 h and enters RECOVERY_EXPOSED (and a
// churn alert path) at start + 4 h, because other SIRENs' records move the
// task's stream time past those instants — not the next morning.
func TestOpenOutageAlertsAtItsThresholdNotAtTheNextEvent(t *testing.T) {
	const parts = 1
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	quiet, busy := gen.SIREN(11), gen.SIREN(12)
	start := t0 + 2*hour + 17*time.Minute.Milliseconds()
	msgs := []kafka.Message{testkit.Msg(t, engine.Event{Kind: engine.KindOutage, EventID: "o-start", SIREN: quiet,
		EventTime: start, OutageID: "out-1", SiteID: "s1", PostalCode: "75001", Status: engine.OutageStarted})}
	// The busy SIREN reports every 10 minutes for 8 hours.
	for i := int64(0); i < 48; i++ {
		msgs = append(msgs, testkit.Msg(t, engine.Event{Kind: engine.KindUsage, EventID: fmt.Sprintf("u%d", i), SIREN: busy,
			EventTime: t0 + 2*hour + i*10*time.Minute.Milliseconds(), SiteID: "b1", PostalCode: "13001", BytesUp: 1e6}))
	}
	testkit.Produce(t, brokers, msgs...)
	h := testkit.Start(t, testkit.Config(t, brokers, t.TempDir()))
	h.WaitConsumed(t, int64(len(msgs)), parts, 60*time.Second)
	h.Stop(t)

	var got []string
	for _, c := range testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes")) {
		if c.SIREN != quiet {
			continue
		}
		got = append(got, fmt.Sprintf("%s %v %v", c.Trigger, c.Added, c.OffersAdded))
		switch c.Seq {
		case 1:
			if d := c.EventTime - (start + hour); d < 0 || d > time.Minute.Milliseconds() || c.Metrics.GoldenHourBreaches90d != 1 {
				t.Errorf("golden hour event at start + 1 h %+d ms, breaches %d", d, c.Metrics.GoldenHourBreaches90d)
			}
		case 2:
			if d := c.EventTime - (start + 4*hour); d < 0 || d > time.Minute.Milliseconds() || !slices.Contains(c.Added, "RECOVERY_EXPOSED") {
				t.Errorf("RECOVERY_EXPOSED at start + 4 h %+d ms, added %v", d, c.Added)
			}
		}
	}
	want := []string{"TIMER [] [GOLDEN_HOUR_REPAIR]", "TIMER [RECOVERY_EXPOSED] []"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes of the quiet SIREN %q, want %q", got, want)
	}
}

// TestOfferChangesReachTheTopic (spec §8 offer-change events): on generated
// data with profile updates, every SIREN's last event on the topic carries
// the offers /v1/sirens (Processor.View) gives for it; and a plan change to
// the product of an offer withdraws the offer with an event whose segments
// did not change.
func TestOfferChangesReachTheTopic(t *testing.T) {
	const parts = 2
	cfg := gen.Config{SIRENs: 300, Days: 75, Seed: 17}
	brokers, msgs := testkit.Loaded(t, parts, cfg)
	// A DATA_HUNGRY SIREN on BASIC_SIM is offered SD_WAN_UPSELL; find the
	// SIRENs holding it after the history, then move them to SD_WAN.
	h := testkit.Start(t, testkit.Config(t, brokers, t.TempDir()))
	h.WaitConsumed(t, int64(len(msgs)), parts, 90*time.Second)
	last := testkit.Latest(testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes")))
	var upsold []string
	var end int64
	for siren, c := range last {
		end = max(end, c.EventTime)
		if slices.Contains(c.Offers, engine.OfferSDWanUpsell) {
			upsold = append(upsold, siren)
		}
	}
	slices.Sort(upsold)
	if len(upsold) == 0 {
		t.Fatal("no SIREN offered SD_WAN_UPSELL: the data does not exercise the test")
	}
	var moves []kafka.Message
	for i, s := range upsold {
		moves = append(moves, testkit.Msg(t, engine.Event{Kind: engine.KindProfile, EventID: fmt.Sprintf("move-%d", i), SIREN: s,
			EventTime: end + 1, Plan: "SD_WAN", Workforce: 20, HasWorkforce: true}))
	}
	testkit.Produce(t, brokers, moves...)
	h.WaitConsumed(t, int64(len(msgs)+len(moves)), parts, 60*time.Second)
	defer h.Stop(t)

	// Topic and query agree for every SIREN (the query reads the last
	// commit: poll until it has the last batch).
	ok, why := testkit.Poll(30*time.Second, 100*time.Millisecond, func() (bool, string) {
		last = testkit.Latest(testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes")))
		for siren, c := range last {
			v, _, err := h.P.View(siren)
			if err != nil {
				return false, fmt.Sprintf("view %s: %v", siren, err)
			}
			if v.Seq != c.Seq || strings.Join(v.Offers, ",") != strings.Join(c.Offers, ",") {
				return false, fmt.Sprintf("%s: topic seq %d offers %v, query seq %d offers %v", siren, c.Seq, c.Offers, v.Seq, v.Offers)
			}
		}
		return true, ""
	})
	if !ok {
		t.Fatal(why)
	}
	for _, s := range upsold {
		c := last[s]
		if slices.Contains(c.Offers, engine.OfferSDWanUpsell) || !slices.Contains(c.OffersRemoved, engine.OfferSDWanUpsell) {
			t.Errorf("%s after the move to SD_WAN: offers %v, removed %v", s, c.Offers, c.OffersRemoved)
		}
	}
}
