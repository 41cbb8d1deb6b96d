package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// refDecodeUsage is the reader-based decoding of the usage buckets that
// decodeUsage replaced, kept as its reference.
func refDecodeUsage(us []dayUsage, b []byte, first bool, prev int32, packed bool) (int, error) {
	r := reader{b: b}
	day := int64(prev)
	for k := range us {
		var tag uint64
		gapped := !packed
		if k == 0 && first {
			day = r.varint()
			gapped = false
			if packed {
				if tag = r.uvarint(); tag&1 != 0 {
					r.fail(errors.New("gap flag on the first usage day"))
				}
			}
		} else if packed {
			tag = r.uvarint()
			gapped = tag&1 != 0
			day++
		}
		if gapped {
			gap := r.uvarint()
			if gap >= 1<<32 {
				r.fail(errors.New("usage value out of range"))
			}
			day += int64(gap) + 1
		}
		by := r.uvarint()
		sims := int64(tag>>1) - 1
		if !packed {
			sims = int64(r.uvarint()) - 1
		}
		if r.err == nil && (day < -1<<31 || day > 1<<31-1 || by > 1<<63-1 || sims > 1<<31-1) {
			r.fail(errors.New("usage value out of range"))
		}
		if r.err != nil {
			return 0, r.err
		}
		us[k] = dayUsage{day: int32(day), bytes: int64(by), sims: int32(sims)}
	}
	return len(b) - len(r.b), nil
}

// refDecodeIDs is the reader-based decoding of the exact event ids that
// decodeIDs replaced, kept as its reference.
func refDecodeIDs(hash []uint64, day []int32, b []byte) (int, error) {
	r := reader{b: b}
	var d int64
	for i := range hash {
		d += r.varint()
		if d < -1<<31 || d > 1<<31-1 {
			r.fail(errors.New("event id day out of range"))
		}
		day[i] = int32(d)
		hash[i] = r.u64()
		if r.err != nil {
			return 0, r.err
		}
	}
	return len(b) - len(r.b), nil
}

// randUvarint draws values of every varint length, small ones more often.
func randUvarint(rng *rand.Rand) uint64 {
	switch rng.IntN(4) {
	case 0:
		return uint64(rng.IntN(3))
	case 1:
		return uint64(rng.IntN(1 << 14))
	default:
		return rng.Uint64() >> rng.IntN(64)
	}
}

// mutations calls f with b, each of its truncations and copies of it with
// one byte changed, inserted or deleted at every position (at ~200 of them
// in a longer b).
func mutations(b []byte, f func([]byte)) {
	f(b)
	c := slices.Clone(b)
	for i := 0; i < len(b); i += 1 + len(b)/200 {
		f(b[:i])
		for _, v := range []byte{0, 1, 2, 0x7f, 0x80, 0xff, b[i] ^ 1, b[i] ^ 0x80} {
			c[i] = v
			f(c)
		}
		c[i] = b[i]
		f(slices.Insert(slices.Clone(b), i, 0x80))
		f(slices.Delete(slices.Clone(b), i, i+1))
	}
}

func sameDecode(t *testing.T, what string, b []byte, n, rn int, err, rerr error) bool {
	t.Helper()
	if (err == nil) != (rerr == nil) || (err != nil && err.Error() != rerr.Error()) || n != rn {
		t.Fatalf("%s of %x: read %d, %v; reference %d, %v", what, b, n, err, rn, rerr)
	}
	return err == nil
}

// TestDecodeUsageMatchesReader: decodeUsage gives the buckets, length and
// error of the reader-based decoding, on valid lists of values of every
// size and on every truncation and corruption of them, as a whole list and
// a chunk after the first.
func TestDecodeUsageMatchesReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 600 {
		packed := i%2 == 0
		n := 1 + rng.IntN(12)
		first, prev := rng.IntN(3) > 0, int32(rng.Uint32())
		b := binary.AppendVarint(nil, int64(int32(rng.Uint32()))>>rng.IntN(32))
		for k := range n {
			sims := randUvarint(rng) >> rng.IntN(64)
			if packed {
				tag := sims << 1
				gapped := (k > 0 || !first) && rng.IntN(3) == 0
				if gapped {
					tag |= 1
				}
				b = binary.AppendUvarint(b, tag)
				if gapped {
					b = binary.AppendUvarint(b, randUvarint(rng)>>rng.IntN(64))
				}
				b = binary.AppendUvarint(b, randUvarint(rng))
				continue
			}
			if k > 0 {
				b = binary.AppendUvarint(b, randUvarint(rng)>>rng.IntN(64))
			}
			b = binary.AppendUvarint(b, randUvarint(rng))
			b = binary.AppendUvarint(b, sims)
		}
		if rng.IntN(2) == 0 { // room for decodeUsage's 8-byte loads
			b = append(b, make([]byte, rng.IntN(12))...)
		}
		us, ref := make([]dayUsage, n), make([]dayUsage, n)
		mutations(b, func(b []byte) {
			got, err := decodeUsage(us, b, first, prev, packed)
			want, rerr := refDecodeUsage(ref, b, first, prev, packed)
			if sameDecode(t, "usage", b, got, want, err, rerr) && !slices.Equal(us, ref) {
				t.Fatalf("usage of %x (packed %v): %v, reference %v", b, packed, us, ref)
			}
		})
	}
}

// TestDecodeIDsMatchesReader is TestDecodeUsageMatchesReader for the exact
// event ids.
func TestDecodeIDsMatchesReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		n := 1 + rng.IntN(6)
		var b []byte
		for range n {
			b = binary.AppendVarint(b, int64(randUvarint(rng))>>rng.IntN(64))
			b = binary.LittleEndian.AppendUint64(b, rng.Uint64())
		}
		hash, day := make([]uint64, n), make([]int32, n)
		rhash, rday := make([]uint64, n), make([]int32, n)
		mutations(b, func(b []byte) {
			got, err := decodeIDs(hash, day, b)
			want, rerr := refDecodeIDs(rhash, rday, b)
			if sameDecode(t, "ids", b, got, want, err, rerr) && (!slices.Equal(hash, rhash) || !slices.Equal(day, rday)) {
				t.Fatalf("ids of %x: %v %v, reference %v %v", b, hash, day, rhash, rday)
			}
		})
	}
}

// TestVarintAtMatchesBinary: uvarintAt, varintAt and uvarint8 agree with
// encoding/binary on every length, overflow and truncation.
func TestVarintAtMatchesBinary(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	inputs := [][]byte{
		nil,
		{0x80},
		{0x80, 0x00}, // not minimal
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},       // max uint64
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},       // overflow
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, // 11 bytes
	}
	for range 2000 {
		b := binary.AppendUvarint(nil, randUvarint(rng))
		b = append(b, make([]byte, rng.IntN(10))...)
		inputs = append(inputs, b)
		c := slices.Clone(b)
		c[rng.IntN(len(c))] = byte(rng.Uint32())
		inputs = append(inputs, c)
	}
	for _, b := range inputs {
		for cut := range len(b) + 1 {
			in := b[:cut]
			v, n := binary.Uvarint(in)
			want := n
			if n <= 0 {
				want = -1
			}
			if got, i := uvarintAt(in, 0); got != v || i != want {
				t.Fatalf("uvarintAt(%x) = %d, %d; binary.Uvarint %d, %d", in, got, i, v, n)
			}
			if _, i := uvarintAt(in, -1); i != -1 {
				t.Fatalf("uvarintAt(%x, -1) = %d", in, i)
			}
			if sv, _ := binary.Varint(in); n > 0 {
				if got, i := varintAt(in, 0); got != sv || i != n {
					t.Fatalf("varintAt(%x) = %d, %d; binary.Varint %d, %d", in, got, i, sv, n)
				}
			} else if _, i := varintAt(in, 0); i != -1 {
				t.Fatalf("varintAt(%x) read %d bytes, binary.Varint %d", in, i, n)
			}
			if len(in) >= 8 {
				w := binary.LittleEndian.Uint64(in)
				if ends := ^w&stopBits != 0; ends != (n > 0 && n <= 8) {
					t.Fatalf("%x: stop bit in the first 8 bytes %v, varint length %d", in, ends, n)
				} else if ends {
					if got, gn := uvarint8(w); got != v || gn != n {
						t.Fatalf("uvarint8(%x) = %d, %d; binary.Uvarint %d, %d", in, got, gn, v, n)
					}
				}
			}
		}
	}
}

// decodeCorpus returns the encodings of states stepped from random events
// (seeded; some SIRENs hot enough for dedup filters), of the benchmark
// states and of the version 1 goldens but one.
func decodeCorpus(t *testing.T) [][]byte {
	var out [][]byte
	for i, shape := range [][3]int{{8, 150, 20}, {1, 5, 700}} {
		h := newHarness(t, nil)
		for _, ev := range randomEvents(int64(100+i), shape[0], shape[1], shape[2]) {
			_ = h.feed(ev)
		}
		for _, k := range h.sirens() {
			out = append(out, h.state(k).AppendBinary(nil))
		}
	}
	task := NewTask(nil, Config{})
	out = append(out, warmState(t, task, 1).AppendBinary(nil))
	for sites := 1; sites <= 3; sites++ {
		out = append(out, prodState(t, NewTask(nil, Config{}), sites, sites).AppendBinary(nil))
	}
	for _, c := range v1Cases() {
		if c.name != "hot" { // 6001 ids: slow to upgrade, thousands of times
			out = append(out, readV1(t, c.name))
		}
	}
	return out
}

// TestUnmarshalStateCorrupted: truncating, changing, inserting or deleting
// a byte anywhere in an encoded state never panics; a truncated state is
// always an error and a state that still decodes encodes again.
func TestUnmarshalStateCorrupted(t *testing.T) {
	task := NewTask(nil, Config{})
	for _, b := range decodeCorpus(t) {
		full := len(b)
		mutations(b, func(c []byte) {
			st, err := UnmarshalState("x", c)
			if err == nil {
				st.AppendBinary(nil)
			} else if st != nil {
				t.Fatalf("%x: state and error %v", c, err)
			}
			if len(c) < full && bytes.Equal(c, b[:len(c)]) && err == nil {
				t.Fatalf("truncated at %d of %d: decoded", len(c), full)
			}
			_, _, _ = task.intensityEncoded(c)
		})
	}
}

// FuzzUnmarshalState: no input makes UnmarshalState or intensityEncoded
// panic; a state that decodes encodes to bytes that decode to the same
// encoding again, and intensityEncoded agrees with it.
func FuzzUnmarshalState(f *testing.F) {
	task := NewTask(nil, Config{})
	task.advanceTo(at(d0, 3))
	f.Add(NewState(mkSIREN(1)).AppendBinary(nil))
	f.Add(warmState(f, NewTask(nil, Config{}), 1).AppendBinary(nil))
	f.Add(prodState(f, NewTask(nil, Config{}), 2, 2).AppendBinary(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok, ierr := task.intensityEncoded(b)
		st, err := UnmarshalState("x", b)
		if err != nil {
			return
		}
		enc := st.AppendBinary(nil)
		again, err := UnmarshalState("x", enc)
		if err != nil {
			t.Fatalf("%x decodes, its encoding %x does not: %v", b, enc, err)
		}
		if !bytes.Equal(again.AppendBinary(nil), enc) {
			t.Fatalf("%x: encoding %x decodes to another state", b, enc)
		}
		if want, wok := task.intensity(st); ierr != nil || v != want || ok != wok {
			t.Fatalf("%x: intensityEncoded = %v %v %v, intensity %v %v", b, v, ok, ierr, want, wok)
		}
	})
}
