package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
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

// readResult says how vlogReader.value went.
type readResult uint8

const (
	readOK       readResult = iota
	readFallback            // not in the value log, or not readable here: read it through Badger
	readGone                // its value-log file was deleted (errMoved)
)

// value appends the value of item (read with key, as Badger gives it in Item.Key) to dst.
func (r *vlogReader) value(dst []byte, item *badger.Item) ([]byte, readResult) {
	if r == nil || !itemLayout.ok {
		return dst, readFallback
	}
	vptr := valuePlace(item)
	if vptr == nil {
		return dst, readFallback // inline: Badger's read is a copy
	}
	if len(vptr) < vptrSize {
		return dst, readFallback
	}
	fid := binary.NativeEndian.Uint32(vptr[0:4])
	n := binary.NativeEndian.Uint32(vptr[4:8])
	off := binary.NativeEndian.Uint32(vptr[8:12])
	key := item.Key()
	if n < uint32(2+3+len(key)+8+crc32.Size) || n > maxEntryLen {
		return dst, readFallback
	}
	start := len(dst)
	dst = growLen(dst, int(n))
	buf := dst[start:]
	if res := r.readAt(fid, buf, int64(off)); res != readOK {
		r.slow.Add(1)
		return dst[:start], res
	}
	v, ok := parseEntry(buf, key, item.Version())
	if !ok {
		r.slow.Add(1)
		return dst[:start], readFallback
	}
	r.fast.Add(1)
	// v is inside buf, after the header and key: move it to the start.
	m := copy(dst[start:], v)
	return dst[:start+m], readOK
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

// readAt fills buf from value-log file fid at off: readGone when the file no longer exists,
// readFallback on any other failure.
func (r *vlogReader) readAt(fid uint32, buf []byte, off int64) readResult {
	r.mu.RLock()
	f := r.fds[fid]
	if f != nil {
		_, err := f.ReadAt(buf, off)
		r.mu.RUnlock()
		return readOKIf(err)
	}
	r.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if f = r.fds[fid]; f == nil {
		var err error
		if f, err = os.Open(filepath.Join(r.dir, fmt.Sprintf("%06d.vlog", fid))); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return readGone // rewritten and deleted by the GC since the look-up
			}
			return readFallback
		}
		r.fds[fid] = f
	}
	_, err := f.ReadAt(buf, off)
	return readOKIf(err)
}

func readOKIf(err error) readResult {
	if err != nil {
		return readFallback
	}
	return readOK
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

// errMoved: the value-log file an item pointed to was deleted between its look-up and the read
// of its value. A value-log GC moves the live values of a file elsewhere, then deletes the file;
// a look-up (Txn.Get) made before the move gives the old place. The GC defers the deletion while
// an iterator is open, but a point read holds none. Looking the key up again, in the same
// transaction, gives the new place: the GC writes the moved value under the same version, before
// it deletes the file (and a version a snapshot still reads is never collected as garbage).
// Badger's own read logs an error and returns an empty value in that case.
var errMoved = errors.New("its value-log file was deleted by the GC since the look-up")

// maxMoves bounds the look-ups of one value: each retry follows one more GC rewrite.
const maxMoves = 8

// itemValue returns item's value in buf's storage (its contents replaced): by pread when it is
// in the value log (vlogReader), else through Badger (a read that counts against the release of
// mapped pages). errMoved: look the key up again (lookupValue).
func (s *Store) itemValue(buf []byte, item *badger.Item) ([]byte, error) {
	out, res := s.vread.value(buf[:0], item)
	switch res {
	case readOK:
		return out, nil
	case readGone:
		return nil, errMoved
	}
	return s.badgerValue(buf, item)
}

// badgerValue is itemValue through Badger's own read.
func (s *Store) badgerValue(buf []byte, item *badger.Item) ([]byte, error) {
	s.mapped.scanned(int64(len(item.Key())) + item.ValueSize())
	out, err := item.ValueCopy(buf[:0])
	if err == nil && len(out) == 0 && item.ValueSize() > 0 {
		return nil, errMoved // Badger could not read it (and logged why)
	}
	return out, err
}

// lookupValue reads the value of key in txn into buf: item, found by the caller's look-up (nil:
// look it up here), then, while its value-log file turns out deleted (errMoved), new look-ups.
// A file the fast path cannot find although the value is still there, after a new look-up, is
// read through Badger (a value moved by the GC always has a new place).
func (s *Store) lookupValue(txn *badger.Txn, key []byte, item *badger.Item, buf []byte) ([]byte, error) {
	var gone []byte // the place of the value last found gone
	for moves := 0; ; moves++ {
		if item == nil {
			var err error
			if item, err = txn.Get(key); err != nil {
				return nil, err
			}
		}
		var out []byte
		var err error
		if place := valuePlace(item); gone != nil && bytes.Equal(place, gone) {
			out, err = s.badgerValue(buf, item)
		} else {
			out, err = s.itemValue(buf, item)
		}
		if !errors.Is(err, errMoved) {
			return out, err
		}
		if moves == maxMoves {
			return nil, fmt.Errorf("value of key %q: %w (%d look-ups)", key, err, moves+1)
		}
		gone = append(gone[:0], valuePlace(item)...)
		item = nil
	}
}

// valuePlace is item's value pointer (nil when unknown or inline).
func valuePlace(item *badger.Item) []byte {
	if !itemLayout.ok {
		return nil
	}
	p := unsafe.Pointer(item)
	if *(*byte)(unsafe.Add(p, itemLayout.meta))&badgerBitValuePointer == 0 {
		return nil
	}
	return *(*[]byte)(unsafe.Add(p, itemLayout.vptr))
}
