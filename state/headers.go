package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

func headerKey(dst []byte, p int32, siren string) []byte {
	return sirenKey(dst, prefixHeader, p, siren)
}

func headerPrefix(p int32) []byte { return sirenKey(nil, prefixHeader, p, "") }

// findHeaderPartitions returns the partitions that hold at least one header key: one seek per
// such partition.
func findHeaderPartitions(db *badger.DB) (map[int32]bool, error) {
	parts := map[int32]bool{}
	err := db.View(func(txn *badger.Txn) error {
		io := badger.DefaultIteratorOptions
		io.Prefix = []byte{prefixHeader}
		io.PrefetchValues = false
		it := txn.NewIterator(io)
		defer it.Close()
		for it.Rewind(); it.Valid(); {
			k := it.Item().Key()
			if len(k) < 1+partitionLen {
				return fmt.Errorf("header key %x: %w", k, ErrCorrupt)
			}
			p := binary.BigEndian.Uint32(k[1:])
			parts[int32(p)] = true
			if p == 1<<32-1 {
				break
			}
			it.Seek(headerPrefix(int32(p + 1)))
		}
		return nil
	})
	return parts, err
}

// mayHaveHeaders reports whether partition p may hold header keys.
func (s *Store) mayHaveHeaders(p int32) bool {
	s.hdrMu.RLock()
	defer s.hdrMu.RUnlock()
	return s.hdrParts[p]
}

func (s *Store) setHeaders(p int32, on bool) {
	s.hdrMu.Lock()
	defer s.hdrMu.Unlock()
	if on {
		s.hdrParts[p] = true
	} else {
		delete(s.hdrParts, p)
	}
}

// merge returns base with header merged in (Options.MergeHeader), appended to dst.
func (s *Store) merge(dst []byte, p int32, siren string, base, header []byte) ([]byte, error) {
	if s.opts.MergeHeader == nil {
		return nil, fmt.Errorf("state: partition %d SIREN %s has a header key but Options.MergeHeader is nil", p, siren)
	}
	out, err := s.opts.MergeHeader(dst, base, header)
	if err != nil {
		return nil, fmt.Errorf("state: partition %d SIREN %s: merge header: %w", p, siren, err)
	}
	return out, nil
}

// Headers returns the number of header keys of partition p (diagnostics, tests).
func (s *Store) Headers(p int32) (int, error) {
	if err := checkPartition(p); err != nil {
		return 0, err
	}
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		io := badger.DefaultIteratorOptions
		io.Prefix = headerPrefix(p)
		io.PrefetchValues = false
		it := txn.NewIterator(io)
		defer s.closeIter(it)
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		return 0, s.wrap("count headers of", p, err)
	}
	return n, nil
}

// hdrState is whether a SIREN has a header key in the store. Knowing it lets a whole write
// skip the point read that looks for a stale header key to delete (cleanHeader).
type hdrState uint8

const (
	hdrUnknown hdrState = iota // look it up
	hdrNone                    // no header key
	hdrStored                  // a header key
)

// cleanHeader deletes the header key of a whole put's SIREN in txn while the cleanup budget (n
// entries, b bytes) lasts, and sets put.hdr to what the store holds after the commit. A put
// whose hdr is known skips the point read (hdrNone) or deletes without it (hdrStored); an
// unknown one is looked up (answered by bloom filters when it does not exist).
func cleanHeader(txn *badger.Txn, p int32, put *KV, n *int, b *int64) error {
	if put.hdr == hdrNone {
		return nil
	}
	hk := headerKey(nil, p, put.SIREN)
	cost := int64(len(hk)) + putOverhead
	if *n <= 0 || *b <= cost {
		return nil // over budget: a stale header is harmless, it stays (hdr unchanged)
	}
	if put.hdr == hdrUnknown {
		if _, err := txn.Get(hk); errors.Is(err, badger.ErrKeyNotFound) {
			put.hdr = hdrNone
			return nil
		} else if err != nil {
			return err
		}
	}
	*n--
	*b -= cost
	put.hdr = hdrNone
	return txn.Delete(hk)
}

// headerScan walks a partition's header keys alongside a scan of its states.
type headerScan struct {
	it   *badger.Iterator
	plen int
}

// find returns the header item of siren, or nil; sirens must come in ascending order.
func (h *headerScan) find(siren []byte) *badger.Item {
	if h == nil {
		return nil
	}
	for ; h.it.Valid(); h.it.Next() {
		switch c := bytes.Compare(h.it.Item().Key()[h.plen:], siren); {
		case c == 0:
			return h.it.Item()
		case c > 0:
			return nil
		}
	}
	return nil
}
