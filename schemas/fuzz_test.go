package schemas

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sirenstream/sirenstream/engine"
)

// fuzzSeeds are valid and broken records; they are also written to
// testdata/fuzz/FuzzDecode with -update.
func fuzzSeeds(t testing.TB) map[string]struct {
	value []byte
	kind  engine.Kind
} {
	seeds := map[string]struct {
		value []byte
		kind  engine.Kind
	}{}
	for name, ev := range sampleEvents() {
		b := mustEncode(t, ev)
		seeds["valid_"+name] = struct {
			value []byte
			kind  engine.Kind
		}{b, ev.Kind}
	}
	usage := mustEncode(t, sampleEvents()["usage"])
	add := func(name string, b []byte, k engine.Kind) {
		seeds[name] = struct {
			value []byte
			kind  engine.Kind
		}{b, k}
	}
	add("broken_truncated", usage[:len(usage)-3], engine.KindUsage)
	add("broken_trailing", append(append([]byte{}, usage...), 1), engine.KindUsage)
	add("broken_magic", append([]byte{0x7b}, usage[1:]...), engine.KindUsage)
	add("broken_wrong_kind", usage, engine.KindOutage)
	add("broken_enum", outageWithStatus(t, 5), engine.KindOutage)
	add("broken_huge_len", append(AppendHeader(nil, IDClaim), appendLong(nil, 1<<50)...), engine.KindClaim)
	add("broken_empty", nil, engine.KindProfile)
	return seeds
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nbyte(%s)\n", strconv.Quote(string(s.value)), strconv.QuoteRune(rune(s.kind)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzDecode: any bytes on any topic either fail with a dead-letter reason or
// decode to an event that survives encode → decode unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.value, byte(s.kind))
	}
	c := newCodec(f, Config{})
	f.Fuzz(func(t *testing.T, value []byte, kind byte) {
		k := engine.Kind(kind % numKinds)
		var ev engine.Event
		err := c.Decode(context.Background(), k, value, &ev)
		if err != nil {
			if r := engine.DLQReason(err); r == "" || r == "error" {
				t.Fatalf("error without a dead-letter reason: %v", err)
			}
			return
		}
		if ev.Kind != k {
			t.Fatalf("decoded kind %d on a %d topic", ev.Kind, k)
		}
		b, err := c.EncodeEvent(nil, &ev)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again engine.Event
		if err := c.Decode(context.Background(), k, b, &again); err != nil {
			t.Fatalf("decode of re-encoded %x: %v", b, err)
		}
		if again != ev {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}

// FuzzSegmentChange: DecodeSegmentChange never panics and classifies errors.
func FuzzSegmentChange(f *testing.F) {
	f.Add(AppendSegmentChange(nil, sampleDecision()))
	f.Add(AppendSegmentChange(nil, sampleDecisionNulls()))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := DecodeSegmentChange(b); err != nil && !hasReason(err) {
			t.Fatalf("error without a reason: %v", err)
		}
	})
}

// hasReason reports whether err carries a dead-letter reason of its own.
func hasReason(err error) bool {
	r := engine.DLQReason(err)
	return r != "" && r != "error"
}
