//go:build !unix

package state

import "io/fs"

// allocated is the disk space of a file: its apparent size here.
func allocated(info fs.FileInfo) int64 { return info.Size() }
