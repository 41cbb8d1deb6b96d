//go:build unix

package state

import (
	"io/fs"
	"syscall"
)

// allocated is the disk space of a file: its allocated blocks.
func allocated(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}
