package state

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// ownerKey holds the consumer group whose state the directory holds. One directory is one
// group's: a live processor records its group on first use and refuses a directory recorded
// for another (two groups on one cluster never share state, spec §8). The Store only keeps the
// name; the processor decides.
var ownerKey = []byte{'g'}

// Owner returns the consumer group recorded in the directory, or "" when none is: a new
// directory, or one written by a build that did not record groups.
func (s *Store) Owner() (string, error) {
	var group string
	err := s.db.View(func(txn *badger.Txn) error {
		v, err := s.lookupValue(txn, ownerKey, nil, nil)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		group = string(v)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("state: read the owner group of %q: %w", s.opts.Dir, err)
	}
	return group, nil
}

// SetOwner records group (non-empty) as the consumer group of the directory, replacing any
// other.
func (s *Store) SetOwner(group string) error {
	if group == "" {
		return errors.New("state: SetOwner: empty group")
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("state: record the owner group of %q: %w", s.opts.Dir, ErrReadOnly)
	}
	if err := s.update(func(txn *badger.Txn) error { return txn.Set(ownerKey, []byte(group)) }); err != nil {
		return fmt.Errorf("state: record the owner group of %q: %w", s.opts.Dir, err)
	}
	return nil
}
