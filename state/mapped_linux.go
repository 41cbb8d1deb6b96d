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

// releaseMapped calls madvise(MADV_PAGEOUT) on every mapping of a .sst file under dir listed in
// /proc/self/maps. MADV_PAGEOUT only drops pages (they are re-read from the file, usually from
// the page cache): if Badger unmapped a table in between and the range now holds other memory,
// the advice still changes no byte — unlike MADV_DONTNEED, which would zero anonymous memory.
func releaseMapped(dir string) error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := dir + string(os.PathSeparator)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var tried, done int
	var lastErr error
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasSuffix(line, []byte(".sst")) {
			continue
		}
		// start-end perms offset dev inode path
		fields := strings.Fields(string(line))
		if len(fields) < 6 || !strings.HasPrefix(fields[5], prefix) {
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
		tried++
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT)
		if errno == 0 {
			done++
		} else {
			// ENOMEM/EINVAL: the range was unmapped or remapped meanwhile (Badger
			// closed the table); ENOSYS/EINVAL everywhere: no MADV_PAGEOUT (< 5.4).
			lastErr = errno
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if tried > 0 && done == 0 {
		return lastErr
	}
	return nil
}
