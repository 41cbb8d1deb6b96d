package schemas

import (
	"context"
	"testing"

	"github.com/sirenstream/sirenstream/engine"
)

// go test ./schemas -run '^$' -bench . -benchmem

func BenchmarkDecodeUsageFast(b *testing.B) {
	c := newCodec(b, Config{})
	ev := sampleEvents()["usage"]
	value := mustEncode(b, ev)
	var got engine.Event
	ctx := context.Background()
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Decode(ctx, engine.KindUsage, value, &got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeUsageGoavro is goavro's NativeFromBinary plus the by-name
// resolution into engine.Event: what the slow path costs per record.
func BenchmarkDecodeUsageGoavro(b *testing.B) {
	gc := goavroCodec(b, IDUsage)
	e := &entry{id: IDUsage, codec: gc}
	e.plans[engine.KindUsage] = makePlan(IDUsage, engine.KindUsage, mustWriterFields(b, IDUsage))
	ev := sampleEvents()["usage"]
	value := mustEncode(b, ev)
	var got engine.Event
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if err := e.decodeSlow(engine.KindUsage, value[headerLen:], &got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeUsageGoavroNative is goavro's decode alone (no mapping).
func BenchmarkDecodeUsageGoavroNative(b *testing.B) {
	gc := goavroCodec(b, IDUsage)
	ev := sampleEvents()["usage"]
	value := mustEncode(b, ev)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := gc.NativeFromBinary(value[headerLen:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeUsage(b *testing.B) {
	ev := sampleEvents()["usage"]
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendEvent(buf[:0], &ev)
	}
}

func BenchmarkAppendSegmentChange(b *testing.B) {
	d := sampleDecision()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSegmentChange(buf[:0], d)
	}
	b.SetBytes(int64(len(buf)))
}
