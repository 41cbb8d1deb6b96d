package ops

import (
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/sirenstream/sirenstream/engine"
)

func strp(s string) *string { return &s }

func members(sirens ...string) []SegmentMember {
	out := []SegmentMember{}
	for _, s := range sirens {
		out = append(out, SegmentMember{SIREN: s, Offers: []string{}})
	}
	return out
}

func sirensOf(ms []SegmentMember) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.SIREN)
	}
	return out
}

// TestMergePagesKeepsOnlyWhatEverySourceCovers: a source that stopped
// early (page full or scan budget) bounds the merged page, so the next page
// starts where no source has a gap.
func TestMergePagesKeepsOnlyWhatEverySourceCovers(t *testing.T) {
	cases := []struct {
		name    string
		limit   int
		pages   []SegmentList
		want    []string
		next    *string
		miss    []int32
		partial bool
	}{
		{"all sources exhausted: the last page", 10,
			[]SegmentList{{SIRENs: members("2", "5"), Partitions: []int32{0}}, {SIRENs: members("3"), Partitions: []int32{1}}},
			[]string{"2", "3", "5"}, nil, []int32{}, false},
		{"more than the limit: cut, cursor at the last kept", 2,
			[]SegmentList{{SIRENs: members("2", "5"), Partitions: []int32{0}}, {SIRENs: members("3"), Partitions: []int32{1}}},
			[]string{"2", "3"}, strp("3"), []int32{}, false},
		{"a source stopped at 4: nothing after 4 is kept", 10,
			[]SegmentList{{SIRENs: members("2", "5", "7")}, {SIRENs: members("3"), NextCursor: strp("4")}},
			[]string{"2", "3"}, strp("4"), []int32{}, false},
		{"a source that found nothing within its budget still bounds", 10,
			[]SegmentList{{SIRENs: members("2", "5")}, {SIRENs: members(), NextCursor: strp("1")}},
			[]string{}, strp("1"), []int32{}, false},
		{"a missing owner makes it partial, the rest still pages", 10,
			[]SegmentList{{SIRENs: members("2")}, missing("X", SourceError{Partitions: []int32{3, 1}, Error: "down"})},
			[]string{"2"}, nil, []int32{1, 3}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mergePages("X", c.limit, c.pages)
			if !reflect.DeepEqual(sirensOf(got.SIRENs), c.want) || !reflect.DeepEqual(got.NextCursor, c.next) ||
				!reflect.DeepEqual(got.MissingPartitions, c.miss) || got.Partial != c.partial {
				t.Fatalf("got %v next %v missing %v partial %v; want %v next %v missing %v partial %v",
					sirensOf(got.SIRENs), deref(got.NextCursor), got.MissingPartitions, got.Partial, c.want, deref(c.next), c.miss, c.partial)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestListQueryValidation: unknown segment 404 with the valid names; bad
// limit, cursor, scope or partitions 400.
func TestListQueryValidation(t *testing.T) {
	cases := []struct {
		url    string
		status int
		limit  int
	}{
		{"/v1/segments/CHURN_RISK", 0, DefaultListLimit},
		{"/v1/segments/CHURN_RISK?limit=1000&cursor=732829320", 0, 1000},
		{"/v1/segments/churn_risk", 404, 0},
		{"/v1/segments/NOPE", 404, 0},
		{"/v1/segments/CHURN_RISK?limit=0", 400, 0},
		{"/v1/segments/CHURN_RISK?limit=1001", 400, 0},
		{"/v1/segments/CHURN_RISK?limit=ten", 400, 0},
		{"/v1/segments/CHURN_RISK?limit=", 400, 0},
		{"/v1/segments/CHURN_RISK?cursor=12", 400, 0},
		{"/v1/segments/CHURN_RISK?cursor=12345678X", 400, 0},
		{"/v1/segments/CHURN_RISK?scope=world", 400, 0},
		{"/v1/segments/CHURN_RISK?partitions=1", 400, 0},
		{"/v1/segments/CHURN_RISK?scope=local&partitions=1,x", 400, 0},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.url, nil)
		seg := r.URL.Path[len("/v1/segments/"):]
		r.SetPathValue("segment", seg)
		q, status, msg, extra := parseListQuery(r)
		if status != c.status || (status == 0 && q.limit != c.limit) {
			t.Errorf("%s: status %d limit %d (%s), want %d limit %d", c.url, status, q.limit, msg, c.status, c.limit)
		}
		if status == 404 && !reflect.DeepEqual(extra["segments"], segmentNames) {
			t.Errorf("%s: 404 without the valid segments: %v", c.url, extra)
		}
	}
}

// TestSinceIsTheEntryOfTheSegment: since is the event time of the change
// that added the segment, kept while it is held, unknown for a segment held
// before the first change seen or across a gap in seq, and only for the
// seq it was computed at.
func TestSinceIsTheEntryOfTheSegment(t *testing.T) {
	var x sinceIndex
	const s = "732829320"
	x.observe(s, 3, 1000, engine.MultiSite, engine.ChurnRisk, 0) // MULTI_SITE held before: unknown
	if got := x.since(s, engine.ChurnRisk, 3); got != 1000 {
		t.Errorf("CHURN_RISK since %d, want 1000", got)
	}
	if got := x.since(s, engine.MultiSite, 3); got != 0 {
		t.Errorf("MULTI_SITE since %d, want unknown", got)
	}
	if got := x.since(s, engine.ChurnRisk, 2); got != 0 {
		t.Errorf("since for another seq %d, want unknown", got)
	}
	x.observe(s, 4, 2000, engine.MultiSite|engine.ChurnRisk, engine.SLASensitive, engine.MultiSite)
	if a, b := x.since(s, engine.ChurnRisk, 4), x.since(s, engine.SLASensitive, 4); a != 1000 || b != 2000 {
		t.Errorf("after seq 4: CHURN_RISK %d SLA %d, want 1000 2000", a, b)
	}
	x.observe(s, 4, 2000, 0, engine.AllSegments, 0) // a repeat (tail overlapping live) changes nothing
	if got := x.since(s, engine.DataHungry, 4); got != 0 {
		t.Errorf("a repeated seq was applied: %d", got)
	}
	x.observe(s, 7, 5000, engine.ChurnRisk|engine.SLASensitive, engine.MultiSite, 0) // gap 4 → 7
	if a, b := x.since(s, engine.ChurnRisk, 7), x.since(s, engine.MultiSite, 7); a != 0 || b != 5000 {
		t.Errorf("after a gap: CHURN_RISK %d (want unknown), MULTI_SITE %d (want 5000)", a, b)
	}
	x.observe(s, 8, 6000, engine.ChurnRisk|engine.SLASensitive|engine.MultiSite, 0, engine.MultiSite)
	if len(x.m) != 0 {
		t.Errorf("a SIREN with no known entry time is still indexed: %v", x.m)
	}
}

// TestRecentChangesInEventTimeOrder: changes of every owned partition,
// newest event time first, whatever order they arrived in (live, then the
// older tail of the output topic); duplicates kept once; partitions not
// owned left out; each partition bounded.
func TestRecentChangesInEventTimeOrder(t *testing.T) {
	var r recentChanges
	add := func(p int32, ms int64, siren string, seq int64) {
		r.add(recentChange{partition: p, eventMs: ms, siren: siren, seq: seq})
	}
	add(0, 50, "a", 2)
	add(1, 40, "b", 1)
	add(0, 10, "a", 1) // tail read after live changes
	add(0, 50, "a", 2) // duplicate
	add(2, 60, "c", 1)
	got := []string{}
	for _, c := range r.newest([]int32{0, 1}, 10) {
		got = append(got, fmt.Sprintf("%d:%s%d", c.eventMs, c.siren, c.seq))
	}
	if want := []string{"50:a2", "40:b1", "10:a1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("newest = %v, want %v", got, want)
	}
	for i := range recentCap + 5 {
		add(3, int64(1000+i), "d", int64(i+1))
	}
	add(3, 1, "d", 0) // older than a full buffer keeps
	if n := len(r.parts[3]); n != recentCap || r.parts[3][0].eventMs != 1005 {
		t.Fatalf("partition 3 keeps %d changes from %d, want %d from 1005", n, r.parts[3][0].eventMs, recentCap)
	}
	if n := len(r.newest([]int32{0, 1, 2, 3}, 7)); n != 7 {
		t.Fatalf("newest(…, 7) returned %d", n)
	}
}
