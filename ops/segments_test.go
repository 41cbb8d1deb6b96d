package ops_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/ops"
	"github.com/sirenstream/sirenstream/processor"
)

// listAll pages through GET base/v1/segments/seg with limit, checking each
// page's shape, and returns every member listed and the pages' count.
func listAll(t *testing.T, base, seg string, limit int) ([]ops.SegmentMember, int) {
	t.Helper()
	all, pages, _ := listPages(t, base, seg, limit, false)
	return all, pages
}

// listPages is listAll that accepts partial pages when partial is set; it
// also returns the first page.
func listPages(t *testing.T, base, seg string, limit int, partial bool) ([]ops.SegmentMember, int, ops.SegmentList) {
	t.Helper()
	var first ops.SegmentList
	var all []ops.SegmentMember
	cursor := ""
	for pages := 1; ; pages++ {
		u := fmt.Sprintf("%s/v1/segments/%s?limit=%d", base, seg, limit)
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		var pg ops.SegmentList
		if status := getJSON(t, u, &pg); status != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d", u, status)
		}
		if pages == 1 {
			first = pg
		}
		if pg.Segment != seg || len(pg.SIRENs) > limit || pg.Partial != partial {
			t.Fatalf("GET %s: segment %q, %d SIRENs, partial %v (%+v)", u, pg.Segment, len(pg.SIRENs), pg.Partial, pg.Errors)
		}
		for _, m := range pg.SIRENs {
			if m.SIREN <= cursor {
				t.Fatalf("GET %s: %s is not after the cursor", u, m.SIREN)
			}
			cursor = m.SIREN
		}
		all = append(all, pg.SIRENs...)
		if pg.NextCursor == nil {
			return all, pages, first
		}
		if *pg.NextCursor < cursor {
			t.Fatalf("GET %s: next_cursor %s before the page's last SIREN %s", u, *pg.NextCursor, cursor)
		}
		cursor = *pg.NextCursor
		if pages > 1000 {
			t.Fatal("more than 1000 pages")
		}
	}
}

// TestSegmentListClusterWide: two instances of a group, each owning some
// partitions (real Badger directories, a kfake broker). Either instance
// lists a segment's SIRENs of every partition — its own and, asked over
// HTTP, the other's — in SIREN order, paged with a cursor, equal to what the
// output topic says is in the segment, with offers, control flag and since.
// Pages are stable (the same cursor gives the same page) and correct even
// when the scan budget cuts pages short. /v1/sirens on the non-owner is
// proxied. With the other instance's HTTP server down, or hanging, the
// listing still answers in time, marked partial with the missing partitions.
func TestSegmentListClusterWide(t *testing.T) {
	const parts = 4
	_, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	msgs, _ := workload(t, 60, 60)
	testkit.Produce(t, brokers, msgs...)

	a := startInstanceWith(t, brokers, "ops-list", t.TempDir(), "", func(c *ops.Config) {
		c.ListScanBudget = 4 // short pages: the merge must still be exact
		c.PeerTimeout = 700 * time.Millisecond
	})
	b := startInstance(t, brokers, "ops-list", t.TempDir(), "")
	waitPair(t, parts, a, b)

	out := testkit.Changes(t, testkit.ReadAll(t, brokers, "segment-changes"))
	latest := testkit.Latest(out)
	want := map[string][]string{}
	for s, c := range latest {
		for _, seg := range c.Segments {
			want[seg] = append(want[seg], s)
		}
	}
	seg := ""
	for name, ss := range want {
		sort.Strings(ss)
		if seg == "" || len(ss) > len(want[seg]) || len(ss) == len(want[seg]) && name < seg {
			seg = name
		}
	}
	if len(want[seg]) < 6 {
		t.Fatalf("largest segment %s has %d SIRENs: too few to page", seg, len(want[seg]))
	}
	t.Logf("segment %s: %d SIRENs on %d partitions; a owns %v, b %v", seg, len(want[seg]), parts, a.H.P.Owned(), b.H.P.Owned())

	// The store is as of the last commit: wait until it has everything.
	poll(t, 30*time.Second, func() error {
		got, _ := listAll(t, a.URL, seg, 1000)
		if names := sirens(got); !reflect.DeepEqual(names, want[seg]) {
			return fmt.Errorf("listed %v, the output topic says %v", names, want[seg])
		}
		return nil
	})

	// since: the event time of the change that added the segment, when the
	// owner has seen it (every change here: fewer than 100 per partition).
	wantSince := map[string]string{}
	perPart := map[int32]int{}
	for _, c := range out {
		perPart[processor.PartitionOf(c.SIREN, parts)]++
		if slices.Contains(c.Added, seg) {
			wantSince[c.SIREN] = time.UnixMilli(c.EventTime).UTC().Format(time.RFC3339Nano)
		}
	}
	// An owner learns the changes made before it owned a partition from the
	// output topic's tail, read every TailInterval once it is ready: wait
	// for that (a loaded CI machine took longer than the listing).
	poll(t, 30*time.Second, func() error {
		for _, in := range []*instance{a, b} {
			got, _ := listAll(t, in.URL, seg, 1000)
			for _, m := range got {
				if m.Since == nil && perPart[m.Partition] <= 100 {
					return fmt.Errorf("%s: %s since not known yet", in.URL, m.SIREN)
				}
			}
		}
		return nil
	})
	for _, in := range []*instance{a, b} {
		for _, limit := range []int{1, 3, 1000} {
			got, pages := listAll(t, in.URL, seg, limit)
			if names := sirens(got); !reflect.DeepEqual(names, want[seg]) {
				t.Fatalf("%s limit %d: listed %v in %d pages, want %v", in.URL, limit, names, pages, want[seg])
			}
			for _, m := range got {
				c := latest[m.SIREN]
				if m.Partition != processor.PartitionOf(m.SIREN, parts) || m.ControlGroup != c.ControlGroup || m.Offers == nil {
					t.Errorf("%s: %+v disagrees with its latest change %+v", m.SIREN, m, c)
				}
				switch {
				case m.Since != nil && *m.Since != wantSince[m.SIREN]:
					t.Errorf("%s: since %s, its change adding %s is at %s", m.SIREN, *m.Since, seg, wantSince[m.SIREN])
				case m.Since == nil && perPart[m.Partition] <= 100:
					t.Errorf("%s: since unknown, but its owner has seen every change of partition %d", m.SIREN, m.Partition)
				}
			}
			t.Logf("%s limit %d: %d pages", in.URL, limit, pages)
		}
	}

	// Stable: the same cursor gives the same page.
	var p1, p1again, p2, p2again ops.SegmentList
	getJSON(t, b.URL+"/v1/segments/"+seg+"?limit=2", &p1)
	getJSON(t, b.URL+"/v1/segments/"+seg+"?limit=2", &p1again)
	getJSON(t, b.URL+"/v1/segments/"+seg+"?limit=2&cursor="+*p1.NextCursor, &p2)
	getJSON(t, b.URL+"/v1/segments/"+seg+"?limit=2&cursor="+*p1.NextCursor, &p2again)
	if !reflect.DeepEqual(p1, p1again) || !reflect.DeepEqual(p2, p2again) {
		t.Fatalf("the same cursor gave different pages: %+v / %+v, %+v / %+v", p1, p1again, p2, p2again)
	}

	// Offers are those of the SIREN's view; /v1/sirens on the non-owner is
	// proxied to the owner.
	onB := 0
	for _, m := range p1.SIRENs {
		status, hdr, body := getWithHeader(t, a.URL+"/v1/sirens/"+m.SIREN)
		var v ops.SIRENView
		mustJSON(t, body, &v)
		if status != http.StatusOK || v.SIREN != m.SIREN || !reflect.DeepEqual(v.Offers, m.Offers) {
			t.Fatalf("a about %s: HTTP %d %+v; listed %+v", m.SIREN, status, v, m)
		}
		if slices.Contains(b.H.P.Owned(), m.Partition) {
			onB++
			if hdr.Get("X-Sirenstream-Owner") != b.URL {
				t.Errorf("a about %s (b's partition %d): X-Sirenstream-Owner %q, want %s", m.SIREN, m.Partition, hdr.Get("X-Sirenstream-Owner"), b.URL)
			}
			var mis ops.Misdirected
			if status := getJSON(t, a.URL+"/v1/sirens/"+m.SIREN+"?redirect=1", &mis); status != http.StatusMisdirectedRequest || mis.OwnerURL == "" {
				t.Errorf("?redirect=1: HTTP %d %+v, want 421 naming the owner", status, mis)
			}
		}
	}
	t.Logf("%d of the first page's SIRENs are b's", onB)

	// Errors: unknown segment, bad limit and cursor.
	var nf map[string]any
	if status := getJSON(t, a.URL+"/v1/segments/CHURN_RISKY", &nf); status != http.StatusNotFound ||
		!strings.Contains(fmt.Sprint(nf["segments"]), "CHURN_RISK") {
		t.Errorf("unknown segment: HTTP %d %v, want 404 with the valid segments", status, nf)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?cursor=abc", "?limit=5000"} {
		var e map[string]any
		if status := getJSON(t, a.URL+"/v1/segments/"+seg+q, &e); status != http.StatusBadRequest || e["error"] == nil {
			t.Errorf("%s: HTTP %d %v, want 400", q, status, e)
		}
	}

	// b's HTTP server goes down (b stays in the group): a lists its own
	// partitions and says which are missing, and why.
	bParts := b.H.P.Owned()
	var onA []string
	for _, s := range want[seg] {
		if !slices.Contains(bParts, processor.PartitionOf(s, parts)) {
			onA = append(onA, s)
		}
	}
	b.StopHTTP()
	checkPartial := func(what string) {
		t.Helper()
		start := time.Now()
		got, pages, pg := listPages(t, a.URL, seg, 1000, true)
		took := time.Since(start) / time.Duration(pages)
		if !pg.Partial || !reflect.DeepEqual(pg.MissingPartitions, bParts) || len(pg.Errors) == 0 || pg.Errors[0].Owner != b.URL {
			t.Fatalf("%s: partial %v missing %v errors %+v; want partial, missing %v from %s", what, pg.Partial, pg.MissingPartitions, pg.Errors, bParts, b.URL)
		}
		if !reflect.DeepEqual(sirens(got), nonNilStrings(onA)) {
			t.Fatalf("%s: listed %v, want a's %v", what, sirens(got), onA)
		}
		if took > 3*time.Second {
			t.Fatalf("%s: a page took %v", what, took)
		}
		t.Logf("%s: partial pages in %v each: missing %v (%s)", what, took.Round(time.Millisecond), pg.MissingPartitions, pg.Errors[0].Error)
	}
	checkPartial("owner down")
	for _, s := range want[seg] {
		if slices.Contains(bParts, processor.PartitionOf(s, parts)) {
			var mis ops.Misdirected
			if status := getJSON(t, a.URL+"/v1/sirens/"+s, &mis); status != http.StatusBadGateway || mis.OwnerURL == "" {
				t.Errorf("proxy to a down owner: HTTP %d %+v, want 502 naming the owner", status, mis)
			}
			break
		}
	}

	// Something accepts on b's address but never answers: the same, within
	// the peer timeout.
	u, _ := url.Parse(b.URL)
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Skipf("cannot take b's address back for the hanging owner: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	checkPartial("owner hanging")
}

func sirens(ms []ops.SegmentMember) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.SIREN)
	}
	return out
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func getWithHeader(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, resp.Header, b
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("not JSON (%v): %.300s", err, b)
	}
}
