package state

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
func checkTables(dir string) error {
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
	for _, f := range files {
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
