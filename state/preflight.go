package state

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/y"
	"google.golang.org/protobuf/proto"
)

// checkTables verifies the footer and index checksum of every SSTable in dir before Badger opens
// them. Badger opens tables in its own goroutines and PANICS on a malformed footer (slice out of
// range in table.initIndex), which would kill the whole process beyond any recover of ours; this
// check does the same reads with bounds checks and reports ErrCorrupt instead.
// Cost: one stat and one read of the footer and index per table (tens of KB for 2 MiB tables).
//
// Table footer (badger v4 table/builder.go): … | index | u32 index len | checksum proto | u32 checksum len.
func checkTables(dir string, opts badger.Options) error {
	// A process killed right after Badger created a new memtable WAL leaves a
	// zero-length .mem file; Badger's reopen then fails with "while opening
	// fid: N err: Create a new file" (openMemTables treats z.NewFile as an
	// error). The file holds no data: removing it is safe and lets a store
	// reopen after kill -9.
	mems, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	if err != nil {
		return err
	}
	for _, m := range mems {
		if fi, err := os.Stat(m); err == nil && fi.Size() == 0 {
			if err := os.Remove(m); err != nil {
				return fmt.Errorf("state: open %q: remove empty memtable file %s: %w", dir, filepath.Base(m), err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		return err
	}
	// Badger creates a table file before writing it and lists it in the
	// MANIFEST only once it is complete and synced; a kill in between leaves
	// an empty or partial file that Badger itself deletes on open. Check only
	// the tables the MANIFEST lists (when it can be read; else skip empty
	// files, which hold nothing).
	listed := manifestTables(dir, opts)
	for _, f := range files {
		if listed != nil {
			var id uint64
			if _, err := fmt.Sscanf(filepath.Base(f), "%06d.sst", &id); err == nil && !listed[id] {
				continue
			}
		} else if fi, err := os.Stat(f); err == nil && fi.Size() == 0 {
			continue
		}
		if err := checkTable(f); err != nil {
			return fmt.Errorf("state: open %q: table %s: %w: %w", dir, filepath.Base(f), ErrCorrupt, err)
		}
	}
	return nil
}

func checkTable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	readAt := func(off, n int64) ([]byte, error) {
		if off < 0 || n < 0 || off+n > size {
			return nil, fmt.Errorf("footer points outside the file (offset %d, length %d, size %d)", off, n, size)
		}
		b := make([]byte, n)
		if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
			return nil, err
		}
		return b, nil
	}
	pos := size - 4
	b, err := readAt(pos, 4)
	if err != nil {
		return err
	}
	chkLen := int64(binary.BigEndian.Uint32(b))
	pos -= chkLen
	b, err = readAt(pos, chkLen)
	if err != nil {
		return err
	}
	var chk pb.Checksum
	if err := proto.Unmarshal(b, &chk); err != nil {
		return fmt.Errorf("index checksum record: %w", err)
	}
	pos -= 4
	b, err = readAt(pos, 4)
	if err != nil {
		return err
	}
	idxLen := int64(binary.BigEndian.Uint32(b))
	pos -= idxLen
	idx, err := readAt(pos, idxLen)
	if err != nil {
		return err
	}
	return y.VerifyChecksum(idx, &chk)
}

// manifestTables returns the ids of the tables the MANIFEST lists, or nil
// when it cannot be read (missing on a new store, or damaged: Badger's own
// open reports that).
func manifestTables(dir string, opts badger.Options) map[uint64]bool {
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		return nil
	}
	defer f.Close()
	m, _, err := badger.ReplayManifestFile(f, opts.ExternalMagicVersion, opts)
	if err != nil {
		return nil
	}
	ids := make(map[uint64]bool, len(m.Tables))
	for id := range m.Tables {
		ids[id] = true
	}
	return ids
}
