package engine

import (
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
