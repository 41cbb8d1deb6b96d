package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
			return nil, fmt.Errorf("state: %q: %w", dir, ErrLocked)
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
