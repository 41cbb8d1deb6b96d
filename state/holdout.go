package state

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// holdoutPrefix keys the holdout configurations the directory's SIRENs were
// assigned under: 'o' + holdout id → fingerprint (salt and share). The Store
// keeps the text; the processor decides (engine.CheckHoldout).
const holdoutPrefix = 'o'

// Holdout returns the fingerprint recorded for holdout id, or "" when none is.
func (s *Store) Holdout(id string) (string, error) {
	var fp string
	err := s.db.View(func(txn *badger.Txn) error {
		v, err := s.lookupValue(txn, append([]byte{holdoutPrefix}, id...), nil, nil)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		fp = string(v)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("state: read holdout %q of %q: %w", id, s.opts.Dir, err)
	}
	return fp, nil
}

// SetHoldout records fingerprint for holdout id.
func (s *Store) SetHoldout(id, fingerprint string) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("state: record holdout %q of %q: %w", id, s.opts.Dir, ErrReadOnly)
	}
	err := s.update(func(txn *badger.Txn) error {
		return txn.Set(append([]byte{holdoutPrefix}, id...), []byte(fingerprint))
	})
	if err != nil {
		return fmt.Errorf("state: record holdout %q of %q: %w", id, s.opts.Dir, err)
	}
	return nil
}
