//go:build linux

package state

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseMapped calls madvise(MADV_DONTNEED) on every mapping of a .sst or .vlog file under dir
// listed in /proc/self/maps whose base name keep accepts, except the newest .vlog file (the one
// Badger writes to, and the only one it ever remaps; see vlog.go). Badger maps tables read-only
// and value-log files read-write, both MAP_SHARED, so the advice only drops the process's page
// table entries: the pages (dirty ones included) stay in the page cache and the next read maps
// them again (a minor fault). The caller must keep those files mapped while this runs
// (Store.pinTables holds an iterator over the tables and the GC lock): MADV_DONTNEED on a range
// that was unmapped and reused for anonymous memory would zero that memory. (MADV_PAGEOUT, used
// before, has no such hazard but evicts the pages from the page cache, so a day-change sweep
// re-read from disk in its second pass what its first pass had read.)
func releaseMapped(dir string, keep func(name string) bool) error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := dir + string(os.PathSeparator)
	type mapping struct {
		start, end uint64
		vlog       bool
		fid        uint32
	}
	var ms []mapping
	var newest uint32
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		isVlog := bytes.HasSuffix(line, []byte(".vlog"))
		if !isVlog && !bytes.HasSuffix(line, []byte(".sst")) {
			continue
		}
		// start-end perms offset dev inode path
		fields := strings.Fields(string(line))
		if len(fields) < 6 || !strings.HasPrefix(fields[5], prefix) {
			continue
		}
		name := fields[5][len(prefix):]
		var fid uint32
		if isVlog {
			var ok bool
			if fid, ok = vlogFid(name); !ok {
				continue
			}
			newest = max(newest, fid)
		}
		if !keep(name) {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		ms = append(ms, mapping{start, end, isVlog, fid})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var tried, done int
	var lastErr error
	for _, m := range ms {
		if m.vlog && m.fid >= newest {
			continue
		}
		tried++
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED)
		if errno == 0 {
			done++
		} else {
			// Cannot happen for a pinned file; kept for the accounting.
			lastErr = errno
		}
	}
	if tried > 0 && done == 0 {
		return lastErr
	}
	return nil
}

// residentFileBytes is the process's resident file-backed (and shared) memory, from
// /proc/self/statm; 0 when it cannot be read.
func residentFileBytes() int64 {
	var buf [128]byte
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0
	}
	n, _ := f.Read(buf[:])
	f.Close()
	// size resident shared text lib data dt (pages)
	fields := bytes.Fields(buf[:n])
	if len(fields) < 3 {
		return 0
	}
	pages, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
