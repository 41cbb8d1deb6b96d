package processor

// Isolation (spec §8): a consumer group is one application, and two groups
// on one cluster never share state. Each group has its own changelog
// (<group>-changelog by default, topology.ChangelogName), the changelog's
// checkpoint records name the group that wrote them, and a state directory
// records the group it belongs to. A task refuses to restore from a
// changelog another group wrote, and Run refuses a state directory recorded
// for another group: both are configuration errors (ErrOtherGroup) that no
// retry can fix, so the process stops and says which setting to change.
//
// Upgrades: records and directories written before groups were recorded
// carry no group. They are accepted (with one WARN per process for the
// changelog), and the directory is recorded as the running group's.

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/state"
	"github.com/sirenstream/sirenstream/topology"
)

// ErrOtherGroup is returned (wrapped, with what to change) when a changelog
// or a state directory holds another consumer group's state. It is a
// configuration error: retrying cannot fix it.
var ErrOtherGroup = errors.New("refusing another consumer group's state")

// claimStore records group as the owner of the store's directory, or
// refuses a directory that another group owns. A directory without an
// owner (new, or written before owners were recorded) becomes group's.
func claimStore(st *state.Store, group string, log *zap.Logger) error {
	owner, err := st.Owner()
	if err != nil {
		return err
	}
	if owner == group {
		return nil
	}
	if owner != "" {
		return fmt.Errorf("state directory %s holds the state of group %q; this is group %q: %w "+
			"(use a fresh --state-dir for group %q, or run with --group %q)",
			st.Dir(), owner, group, ErrOtherGroup, group, owner)
	}
	parts, err := st.Partitions()
	if err != nil {
		return err
	}
	if err := st.SetOwner(group); err != nil {
		return err
	}
	if len(parts) > 0 {
		log.Info("state directory had no recorded group (written before groups were recorded): it is now this group's",
			zap.String("dir", st.Dir()), zap.String("group", group), zap.Int32s("partitions", parts))
	}
	return nil
}

// checkpointGroup checks the group named by a changelog checkpoint record
// read during a restore: another group's is refused, a legacy record
// without a group is accepted with one WARN per process (warned).
func (c *changelog) checkpointGroup(cp state.Checkpoint, offset int64) error {
	switch cp.Group {
	case c.group:
		return nil
	case "":
		c.legacyWarn.Do(func() {
			c.log.Warn("changelog checkpoint records name no group (written before groups were recorded): "+
				"restoring them as this group's; the next commits name the group",
				zap.String("changelog", c.topic), zap.String("group", c.group), zap.Int64("offset", offset))
		})
		return nil
	}
	return fmt.Errorf("changelog %s was written by group %q (checkpoint at %d/%d); this is group %q: %w "+
		"(use --topic-changelog %s, this group's default, or another fresh topic)",
		c.topic, cp.Group, c.partition, offset, c.group, ErrOtherGroup, topology.ChangelogName(c.group))
}
