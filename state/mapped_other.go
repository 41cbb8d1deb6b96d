//go:build !linux

package state

import "errors"

func releaseMapped(string, func(string) bool) error { return errors.New("not supported") }

func residentFileBytes() int64 { return 0 }
