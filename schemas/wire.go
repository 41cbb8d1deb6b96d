package schemas

import (
	"encoding/binary"
	"fmt"
	"math"
)

// headerLen is the Confluent header: magic byte 0x00 + big-endian uint32 id.
const headerLen = 5

// maxLen caps string and array lengths: a length above it is "malformed"
// (an absurd length), a length within it but beyond the end of the body is
// "truncated". Kafka's default max message size is 1 MiB.
const maxLen = 1 << 20

// ParseHeader splits a Confluent-framed value into schema id and Avro body.
// The body aliases value. Errors: ErrBadMagic (first byte not 0x00),
// ErrTruncated (fewer than 5 bytes).
func ParseHeader(value []byte) (id int, body []byte, err error) {
	if len(value) > 0 && value[0] != 0 {
		return 0, nil, fmt.Errorf("%w: first byte 0x%02x", ErrBadMagic, value[0])
	}
	if len(value) < headerLen {
		return 0, nil, fmt.Errorf("%w: value of %d bytes, header needs %d", ErrTruncated, len(value), headerLen)
	}
	return int(binary.BigEndian.Uint32(value[1:headerLen])), value[headerLen:], nil
}

// AppendHeader appends the Confluent header for schema id.
func AppendHeader(dst []byte, id int) []byte {
	return append(dst, 0, byte(uint32(id)>>24), byte(uint32(id)>>16), byte(uint32(id)>>8), byte(uint32(id)))
}

// dec reads Avro binary. s is the body as one string (one allocation per
// record) so that string fields are substrings of it instead of one
// allocation each.
type dec struct {
	b []byte
	s string
	p int
}

func (d *dec) long() (int64, error) {
	var u uint64
	var shift uint
	for i := 0; i < 10; i++ {
		if d.p >= len(d.b) {
			return 0, errShort
		}
		c := d.b[d.p]
		d.p++
		if i == 9 && c > 1 {
			return 0, errOverflow
		}
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
		shift += 7
	}
	return 0, errOverflow
}

func (d *dec) int() (int32, error) {
	var u uint32
	var shift uint
	for i := 0; i < 5; i++ {
		if d.p >= len(d.b) {
			return 0, errShort
		}
		c := d.b[d.p]
		d.p++
		if i == 4 && c > 0x0f {
			return 0, errOverflow
		}
		u |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return int32(u>>1) ^ -int32(u&1), nil
		}
		shift += 7
	}
	return 0, errOverflow
}

// length reads a string/bytes length or array block count.
func (d *dec) length() (int, error) {
	n, err := d.long()
	if err != nil {
		return 0, err
	}
	switch {
	case n < 0:
		return 0, errNegLen
	case n > maxLen:
		return 0, errHugeLen
	}
	return int(n), nil
}

func (d *dec) str() (string, error) {
	n, err := d.length()
	if err != nil {
		return "", err
	}
	if n > len(d.b)-d.p {
		return "", errShort
	}
	v := d.s[d.p : d.p+n]
	d.p += n
	return v, nil
}

// branch reads the index of a ["null", T] union: false for null.
func (d *dec) branch() (bool, error) {
	n, err := d.long()
	if err != nil {
		return false, err
	}
	switch n {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, errBranch
}

func (d *dec) double() (float64, error) {
	if len(d.b)-d.p < 8 {
		d.p = len(d.b)
		return 0, errShort
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b[d.p:]))
	d.p += 8
	return v, nil
}

func (d *dec) boolean() (bool, error) {
	if d.p >= len(d.b) {
		return false, errShort
	}
	c := d.b[d.p]
	d.p++
	switch c {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, errBool
}

// end rejects trailing bytes after the record.
func (d *dec) end() error {
	if d.p != len(d.b) {
		return fmt.Errorf("%w: %d trailing bytes after the record", ErrMalformed, len(d.b)-d.p)
	}
	return nil
}

// fieldErr adds the field and byte offset (within the Avro body) to a decode error.
func fieldErr(record, field string, off int, err error) error {
	return fmt.Errorf("%s.%s at body byte %d: %w", record, field, off, err)
}

func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

func appendInt(dst []byte, v int32) []byte { return appendLong(dst, int64(v)) }

func appendString(dst []byte, s string) []byte {
	dst = appendLong(dst, int64(len(s)))
	return append(dst, s...)
}

func appendDouble(dst []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// appendStrings appends an array<string> as a single block (deterministic).
func appendStrings(dst []byte, ss []string) []byte {
	if len(ss) > 0 {
		dst = appendLong(dst, int64(len(ss)))
		for _, s := range ss {
			dst = appendString(dst, s)
		}
	}
	return append(dst, 0)
}

// arrayBlock reads the item count of the next array block. A negative count
// is followed by the block size in bytes (Avro spec), which is skipped.
func (d *dec) arrayBlock() (int, error) {
	n, err := d.long()
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, errNegLen
		}
		n = -n
		if _, err := d.length(); err != nil {
			return 0, err
		}
	}
	if n > maxLen {
		return 0, errHugeLen
	}
	if int(n) > len(d.b)-d.p {
		// Every item takes at least one byte.
		return 0, errShort
	}
	return int(n), nil
}

func (d *dec) strings() ([]string, error) {
	var out []string
	for {
		n, err := d.arrayBlock()
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out, nil
		}
		if out == nil {
			out = make([]string, 0, n)
		}
		for i := 0; i < n; i++ {
			s, err := d.str()
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	}
}
