//go:build !linux

package state

import "errors"

func releaseMapped(string) error { return errors.New("not supported") }
