package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
)

// Reading a state from the value log through Badger (Item.Value) reads it through Badger's mmap
// of the file: a page fault, with the kernel mapping up to 64 KiB around it (fault-around), and
// pages the store must then release to keep its resident set bounded (mapped.go). At 1M SIRENs,
// where nearly every record reads a state that is not in the cache, those faults and releases
// were a fifth of the CPU, and a day-change sweep (which reads states in key order, that is the
// value log at random) took half as long again as with states inline in the LSM tree.
//
// vlogReader reads the entry with one pread(2) instead, into a buffer of the caller: no mapping,
// no fault-around, nothing resident. Badger does not expose where a value is, so the value
// pointer and the item's meta byte are read from the unexported fields of badger.Item (their
// offsets found by reflection once, with their types checked), and the entry is parsed as
// Badger v4 writes it (valuePointer{Fid, Len, Offset} in memory order; entry = meta, user meta,
// uvarint key length, uvarint value length, uvarint expiry, key with its 8-byte version, value,
// big-endian CRC-32C of all that). Every read is checked — the CRC, the key and version it must
// hold, the lengths — and anything unexpected (another Badger layout, encryption, a file the GC
// deleted meanwhile) falls back to Badger's own read: never a wrong value, at worst the old cost.
// TestValueLogReaderMatchesBadger pins this against Badger's reads, and fails if the fast path
// stops being taken.
type vlogReader struct {
	dir string
	mu  sync.RWMutex // files: RLock to read through one, Lock to close them
	fds map[uint32]*os.File

	fast, slow atomic.Int64 // reads taken by each path (tests, diagnostics)
}

// The offsets of badger.Item's vptr and meta fields (ok false: not found with the expected types,
// the fast path is off).
var itemLayout = func() (l struct {
	ok         bool
	vptr, meta uintptr
}) {
	t := reflect.TypeOf(badger.Item{})
	vp, ok1 := t.FieldByName("vptr")
	mt, ok2 := t.FieldByName("meta")
	if !ok1 || !ok2 || vp.Type != reflect.TypeOf([]byte(nil)) || mt.Type.Kind() != reflect.Uint8 {
		return l
	}
	l.ok, l.vptr, l.meta = true, vp.Offset, mt.Offset
	return l
}()

const (
	badgerBitValuePointer = 1 << 1 // badger's bitValuePointer: vptr holds a value pointer
	vptrSize              = 12     // badger's valuePointer{Fid, Len, Offset uint32}
	maxEntryLen           = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newVlogReader(dir string) *vlogReader {
	return &vlogReader{dir: dir, fds: map[uint32]*os.File{}}
}

// value appends the value of item (read with key, as Badger gives it in Item.Key) to dst. ok is
// false when the value is not in the value log or the fast path cannot read it: then the caller
// reads it through Badger.
func (r *vlogReader) value(dst []byte, item *badger.Item) (out []byte, ok bool) {
	if r == nil || !itemLayout.ok {
		return dst, false
	}
	p := unsafe.Pointer(item)
	if *(*byte)(unsafe.Add(p, itemLayout.meta))&badgerBitValuePointer == 0 {
		return dst, false // inline: Badger's read is a copy
	}
	vptr := *(*[]byte)(unsafe.Add(p, itemLayout.vptr))
	if len(vptr) < vptrSize {
		return dst, false
	}
	fid := binary.NativeEndian.Uint32(vptr[0:4])
	n := binary.NativeEndian.Uint32(vptr[4:8])
	off := binary.NativeEndian.Uint32(vptr[8:12])
	key := item.Key()
	if n < uint32(2+3+len(key)+8+crc32.Size) || n > maxEntryLen {
		return dst, false
	}
	start := len(dst)
	dst = growLen(dst, int(n))
	buf := dst[start:]
	if !r.readAt(fid, buf, int64(off)) {
		r.slow.Add(1)
		return dst[:start], false
	}
	v, ok := parseEntry(buf, key, item.Version())
	if !ok {
		r.slow.Add(1)
		return dst[:start], false
	}
	r.fast.Add(1)
	// v is inside buf, after the header and key: move it to the start.
	m := copy(dst[start:], v)
	return dst[:start+m], true
}

// parseEntry checks a value-log entry (see vlogReader) read for key at version and returns its value.
func parseEntry(buf, key []byte, version uint64) ([]byte, bool) {
	body, sum := buf[:len(buf)-crc32.Size], buf[len(buf)-crc32.Size:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(sum) {
		return nil, false
	}
	i := 2 // meta, user meta
	klen, c := binary.Uvarint(body[i:])
	if c <= 0 {
		return nil, false
	}
	i += c
	vlen, c := binary.Uvarint(body[i:])
	if c <= 0 {
		return nil, false
	}
	i += c
	if _, c = binary.Uvarint(body[i:]); c <= 0 { // expiry
		return nil, false
	}
	i += c
	if klen != uint64(len(key))+8 || uint64(i)+klen+vlen != uint64(len(body)) {
		return nil, false
	}
	k := body[i : i+int(klen)]
	if !bytes.Equal(k[:len(key)], key) || math.MaxUint64-binary.BigEndian.Uint64(k[len(key):]) != version {
		return nil, false
	}
	return body[i+int(klen):], true
}

// readAt fills buf from value-log file fid at off.
func (r *vlogReader) readAt(fid uint32, buf []byte, off int64) bool {
	r.mu.RLock()
	f := r.fds[fid]
	if f != nil {
		_, err := f.ReadAt(buf, off)
		r.mu.RUnlock()
		return err == nil
	}
	r.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if f = r.fds[fid]; f == nil {
		var err error
		if f, err = os.Open(filepath.Join(r.dir, fmt.Sprintf("%06d.vlog", fid))); err != nil {
			return false // deleted by the GC since the read: Badger's read says what to do
		}
		r.fds[fid] = f
	}
	_, err := f.ReadAt(buf, off)
	return err == nil
}

// closeAll closes the files it holds open: after a value-log GC (a file it deleted stays on disk
// while open) and at Close.
func (r *vlogReader) closeAll() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for fid, f := range r.fds {
		f.Close()
		delete(r.fds, fid)
	}
}

// growLen extends b by n bytes (contents undefined).
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		b = append(b[:cap(b)], make([]byte, len(b)+n-cap(b))...)[:len(b)]
	}
	return b[:len(b)+n]
}

// itemValue returns item's value in buf's storage (its contents replaced): by pread when it is
// in the value log (vlogReader), else through Badger (a read that counts against the release of
// mapped pages).
func (s *Store) itemValue(buf []byte, item *badger.Item) ([]byte, error) {
	if out, ok := s.vread.value(buf[:0], item); ok {
		return out, nil
	}
	s.mapped.scanned(int64(len(item.Key())) + item.ValueSize())
	return item.ValueCopy(buf[:0])
}
