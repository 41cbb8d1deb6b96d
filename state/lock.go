package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the same file Badger itself would lock (we set BypassLockGuard and take it
// ourselves, so tools that respect Badger's lock also respect ours).
const lockFileName = "LOCK"

// lockDir takes a non-blocking flock on dir/LOCK: exclusive for a writer, shared for a reader.
// flock locks belong to the open file description, so a second Open in the same process
// conflicts just like one in another process, and the kernel releases the lock when the
// process dies (no stale lock after kill -9).
func lockDir(dir string, shared bool) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	flag := os.O_RDWR | os.O_CREATE
	if shared {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state: open lock file %q: %w", path, err)
	}
	how := syscall.LOCK_EX
	if shared {
		how = syscall.LOCK_SH
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is in use by %s; stop it or use another directory", ErrLocked, dir, lockHolder(path))
		}
		return nil, fmt.Errorf("state: lock %q: %w", path, err)
	}
	if !shared {
		// Informational, like Badger's own lock file: the pid of the holder.
		if err := f.Truncate(0); err == nil {
			_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
		}
	}
	return f, nil
}

func unlockDir(f *os.File) error {
	if f == nil {
		return nil
	}
	uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	cerr := f.Close()
	if err := errors.Join(uerr, cerr); err != nil {
		return fmt.Errorf("state: release lock %q: %w", f.Name(), err)
	}
	return nil
}

// lockHolder describes the process holding the lock file at path from the
// pid a writer wrote in it: "process 1234 (sirenstream)", "this process
// (pid 1234)", or "another process" when no pid is recorded (a read-only
// store holds a shared lock and writes none).
func lockHolder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "another process"
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return "another process"
	}
	if pid == os.Getpid() {
		return fmt.Sprintf("this process (pid %d: another store of the same directory is open)", pid)
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil {
		return fmt.Sprintf("process %d (%s)", pid, strings.TrimSpace(string(comm)))
	}
	return fmt.Sprintf("process %d", pid)
}
