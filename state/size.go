package state

import (
	"io/fs"
	"path/filepath"
	"strings"
)

// Size returns the bytes the store takes on disk: the value log files
// (vlog) and everything else — LSM tables, memtable write-ahead logs,
// manifest — (lsm). It walks the directory at each call (a few dozen files),
// so it is current, unlike Badger's DB.Size, which reads expvar counters that
// Badger only maintains with metrics enabled (we disable them: they are
// process-global) and so stayed 0. On Unix it counts allocated blocks, like
// du: Badger preallocates its memtable and value log files sparsely, so
// their apparent size overstates the disk used.
func (s *Store) Size() (lsm, vlog int64) {
	_ = filepath.WalkDir(s.opts.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // a file removed by a compaction while we walk
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		n := allocated(info)
		if strings.HasSuffix(path, ".vlog") {
			vlog += n
		} else {
			lsm += n
		}
		return nil
	})
	return lsm, vlog
}
