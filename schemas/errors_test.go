package schemas

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sirenstream/sirenstream/engine"
)

func mustEncode(t testing.TB, ev engine.Event) []byte {
	t.Helper()
	b, err := AppendEvent(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every bad record maps to exactly one dead-letter reason.
func TestDecodeErrorClasses(t *testing.T) {
	evs := sampleEvents()
	usage := mustEncode(t, evs["usage"])
	outage := mustEncode(t, evs["outage_resolved"])
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	random[0] = 0 // past the magic byte
	random[1], random[2], random[3], random[4] = 0, 0, 0, IDUsage

	withBody := func(body ...[]byte) []byte {
		b := AppendHeader(nil, IDUsage)
		for _, p := range body {
			b = append(b, p...)
		}
		return b
	}
	cases := []struct {
		name  string
		kind  engine.Kind
		value []byte
		want  string
	}{
		{"empty value (tombstone)", engine.KindUsage, nil, "truncated"},
		{"three bytes", engine.KindUsage, []byte{0, 0, 0}, "truncated"},
		{"wrong magic byte", engine.KindUsage, append([]byte{1}, usage[1:]...), "bad_magic"},
		{"json instead of avro", engine.KindUsage, []byte(`{"siren":"732829320"}`), "bad_magic"},
		{"schema id 999", engine.KindUsage, append(AppendHeader(nil, 999), usage[headerLen:]...), "unknown_schema"},
		{"outage bytes on the usage topic", engine.KindUsage, outage, "wrong_schema"},
		{"usage bytes on the profiles topic", engine.KindProfile, usage, "wrong_schema"},
		{"output schema on an input topic", engine.KindUsage, AppendSegmentChange(nil, sampleDecision()), "wrong_schema"},
		{"body cut in a string", engine.KindUsage, usage[:headerLen+3], "truncated"},
		{"body cut before the union", engine.KindUsage, usage[:len(usage)-2], "truncated"},
		{"header only", engine.KindUsage, usage[:headerLen], "truncated"},
		{"trailing garbage", engine.KindUsage, append(append([]byte{}, usage...), 0xde, 0xad), "malformed"},
		{"random bytes", engine.KindUsage, random, "malformed"},
		{"negative string length", engine.KindUsage, withBody(appendLong(nil, -3)), "malformed"},
		{"absurd string length", engine.KindUsage, withBody(appendLong(nil, 1<<40)), "malformed"},
		{"varint longer than 10 bytes", engine.KindUsage, withBody([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), "malformed"},
		{"union branch 2", engine.KindUsage, append(append([]byte{}, usage[:len(usage)-2]...), 4, 2), "malformed"},
		{"int above int32", engine.KindUsage, append(append([]byte{}, usage[:len(usage)-2]...), 2, 0xff, 0xff, 0xff, 0xff, 0x7f), "malformed"},
		{"enum index 2", engine.KindOutage, outageWithStatus(t, 2), "malformed"},
		{"enum index -1", engine.KindOutage, outageWithStatus(t, -1), "malformed"},
	}
	c := newCodec(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ev engine.Event
			err := c.Decode(context.Background(), tc.kind, tc.value, &ev)
			if got := engine.DLQReason(err); got != tc.want {
				t.Fatalf("engine.DLQReason(%v) = %q, want %q", err, got, tc.want)
			}
		})
	}
}

// outageWithStatus writes an outage record with a raw enum index.
func outageWithStatus(t testing.TB, idx int32) []byte {
	b := AppendHeader(nil, IDOutage)
	for _, s := range []string{"o", "OUT", "732829320", "site", "75011"} {
		b = appendString(b, s)
	}
	b = appendInt(b, idx)
	b = appendLong(b, t0)
	return append(b, 0)
}

func TestDLQReason(t *testing.T) {
	for err, want := range map[error]string{
		nil:                               "",
		errors.New("other"):               "",
		fmt.Errorf("x: %w", ErrRegistry):  "",
		fmt.Errorf("x: %w", ErrTruncated): "truncated",
		ErrBadMagic:                       "bad_magic",
		ErrUnknownSchema:                  "unknown_schema",
		ErrWrongSchema:                    "wrong_schema",
		fmt.Errorf("a: %w", errShort):     "truncated",
		fmt.Errorf("b: %w", errOverflow):  "malformed",
		fmt.Errorf("c: %w", ErrMalformed): "malformed",
	} {
		// engine.DLQReason is the one mapping: decode errors carry their
		// reason; an error without one is "error", except that an error without
		// a reason is "error" (nil and ErrRegistry stay "": not dead letters).
		if want == "" && err != nil && !errors.Is(err, ErrRegistry) {
			want = "error"
		}
		if got := engine.DLQReason(err); got != want {
			t.Errorf("engine.DLQReason(%v) = %q, want %q", err, got, want)
		}
	}
	// The sentinels keep their text and stay comparable with errors.Is.
	for err, text := range map[error]string{
		ErrTruncated: "truncated", ErrBadMagic: "bad magic byte", ErrUnknownSchema: "unknown schema id",
		ErrWrongSchema: "wrong schema", ErrMalformed: "malformed avro", ErrRegistry: "schema registry unavailable",
	} {
		if err.Error() != text || !errors.Is(fmt.Errorf("x: %w", err), err) {
			t.Errorf("sentinel %q: text or errors.Is changed", text)
		}
	}
}

// A decode error names the field and the byte offset.
func TestDecodeErrorDetail(t *testing.T) {
	usage := mustEncode(t, sampleEvents()["usage"])
	var ev engine.Event
	err := newCodec(t, Config{}).Decode(context.Background(), engine.KindUsage, usage[:headerLen+3], &ev)
	if want := "schema id 1: Usage.event_id at body byte 0: truncated: avro body ends early"; err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"not a url":         {RegistryURL: "localhost:8081"},
		"ftp":               {RegistryURL: "ftp://host"},
		"user without url":  {BasicAuthUser: "u"},
		"password w/o user": {RegistryURL: "http://h:1", BasicAuthPassword: "p"},
	} {
		if _, err := NewCodec(cfg); err == nil {
			t.Errorf("%s: NewCodec accepted %+v", name, cfg)
		}
	}
	if _, err := NewCodec(Config{RegistryURL: "http://a:8081, https://b:8081", BasicAuthUser: "u", BasicAuthPassword: "p"}); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}
