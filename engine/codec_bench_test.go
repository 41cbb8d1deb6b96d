package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestIntensityEncodedMatchesDecode: pass 1 from encoded states (FromEncoded)
// gives exactly the intensity of the decoded state, at many stream days.
func TestIntensityEncodedMatchesDecode(t *testing.T) {
	task := NewTask(nil, Config{})
	var states []*State
	for i := 0; i < 50; i++ {
		states = append(states, warmState(t, task, i))
	}
	none := NewState(mkSIREN(999))
	states = append(states, none)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, st := range states {
		b := st.AppendBinary(nil)
		for k := 0; k < 20; k++ {
			probe := NewTask(nil, Config{})
			probe.advanceTo(at(d0-100+int32(rng.IntN(200)), rng.IntN(24)))
			dec, err := UnmarshalState(st.SIREN, b)
			if err != nil {
				t.Fatal(err)
			}
			want, wok := probe.intensity(dec)
			got, gok, err := probe.intensityEncoded(b)
			if err != nil || got != want || gok != wok {
				t.Fatalf("%s day %d: IntensityEncoded = %v %v %v, Intensity = %v %v", st.SIREN, probe.StreamDay(), got, gok, err, want, wok)
			}
		}
		for cut := 0; cut < len(b); cut += 7 {
			if _, _, err := task.intensityEncoded(b[:cut]); err == nil && cut < 4 {
				t.Fatalf("truncated at %d: no error", cut)
			}
		}
	}
}

func BenchmarkIntensityEncoded(b *testing.B) {
	task := NewTask(nil, Config{})
	st := warmState(b, task, 1)
	buf := st.AppendBinary(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, _, err := task.intensityEncoded(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// prodState returns a state shaped like those of the production workload
// (internal/bench/scale.go builder.build): a profile, 89 days of usage from
// sites sites (one record per site and day, 2.4e7–2e10 bytes a day, so 4–5
// byte varints), one resolved outage and one claim.
func prodState(tb testing.TB, task *Task, n, sites int) *State {
	s := mkSIREN(n)
	st := NewState(s)
	step := stepper(tb, task, st)
	h := uint64(n)*0x9e3779b97f4a7c15 + 1
	step(Event{Kind: KindProfile, EventID: "p-1", SIREN: s, EventTime: at(d0-120, 0), Workforce: int32(3 + h%200), HasWorkforce: true, Plan: "SD_WAN"})
	postals := [3]string{"75001", "69001", "13001"}
	base := float64(2e7 * (1 + (h>>8)%500))
	for d := int32(-89); d <= -1; d++ {
		day := d0 + d
		if d == -30 {
			o := Event{Kind: KindOutage, EventID: "o-1", SIREN: s, EventTime: at(day, 10), SiteID: "s0", PostalCode: postals[0], OutageID: "o-1", Status: OutageStarted}
			step(o)
			o.EventID, o.Status, o.EventTime = "o-2", OutageResolved, at(day, 16)
			step(o)
		}
		if d == -29 {
			step(Event{Kind: KindClaim, EventID: "c-1", SIREN: s, EventTime: at(day, 9), ClaimID: "c-1", OutageID: "o-1", HasOutageID: true, AmountCents: 50_000})
		}
		by := base * math.Pow(1.006, float64(d+89))
		for site := range sites {
			step(Event{Kind: KindUsage, EventID: fmt.Sprintf("u-%d-%d", site, d+1000), SIREN: s, EventTime: at(day, 12+site),
				SiteID: fmt.Sprint("s", site), PostalCode: postals[site], BytesUp: int64(by / 5), BytesDown: int64(by), ActiveSIMs: int32(1 + n%20), HasActiveSIMs: true})
		}
	}
	return st
}

// BenchmarkStateDecodeProd: UnmarshalState of production-shaped states.
func BenchmarkStateDecodeProd(b *testing.B) {
	for sites := 1; sites <= 3; sites++ {
		b.Run(fmt.Sprint("sites=", sites), func(b *testing.B) {
			st := prodState(b, NewTask(nil, Config{}), 7, sites)
			buf := st.AppendBinary(nil)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := UnmarshalState(st.SIREN, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
