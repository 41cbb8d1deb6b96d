package state

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// replayKey holds the identity of the replay whose state the directory holds: the settings its
// state and outputs depend on, as the processor writes them. One key per directory (not per
// checkpoint), so that two replays into different topics still leave byte-identical checkpoints.
// Key layout: 'r' → identity (alongside 'g', owner.go). The Store only keeps the text; the
// processor decides.
var replayKey = []byte{'r'}

// ReplayIdentity returns the replay identity recorded in the directory, or "" when none is: a new
// directory, a live run's, or one written before identities were recorded.
func (s *Store) ReplayIdentity() (string, error) {
	var id string
	err := s.db.View(func(txn *badger.Txn) error {
		v, err := s.lookupValue(txn, replayKey, nil, nil)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		id = string(v)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("state: read the replay identity of %q: %w", s.opts.Dir, err)
	}
	return id, nil
}

// SetReplayIdentity records id (non-empty) as the replay identity of the directory, replacing
// any other.
func (s *Store) SetReplayIdentity(id string) error {
	if id == "" {
		return errors.New("state: SetReplayIdentity: empty identity")
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("state: record the replay identity of %q: %w", s.opts.Dir, ErrReadOnly)
	}
	if err := s.update(func(txn *badger.Txn) error { return txn.Set(replayKey, []byte(id)) }); err != nil {
		return fmt.Errorf("state: record the replay identity of %q: %w", s.opts.Dir, err)
	}
	return nil
}
