package processor

// Accessors for the ops layer (HTTP health, query API, live page): readiness,
// the consumer group's membership, and the segment baseline given to Metrics
// when a task has loaded its state.

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/engine"
)

// Ready reports whether this instance can serve: Run joined the consumer
// group (it received a generation) and every partition it owns has a running
// task that has loaded its state (checkpoint, and the changelog restore when
// the partition moved here). A member that owns no partition (more members
// than partitions) is ready once joined. During a rebalance it is false until
// the new generation's tasks have loaded. Cost: one lock, no I/O.
func (p *Processor) Ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owned == nil {
		return false
	}
	for _, part := range p.owned {
		t, ok := p.tasks[part]
		if !ok || !t.progress.snapshot().Loaded {
			return false
		}
	}
	return true
}

// Group returns the consumer group id Run joins.
func (p *Processor) Group() string { return p.cfg.Group }

// Member is one consumer-group member as the group coordinator describes it.
type Member struct {
	MemberID string `json:"member_id"`
	ClientID string `json:"client_id"`
	// Host is the member's address as the coordinator saw the connection.
	Host string `json:"host"`
	// HTTP is the member's advertised HTTP base URL (Config.HTTPAdvertise of
	// that instance); "" when it advertises none.
	HTTP string `json:"http,omitempty"`
	// Partitions are the input partition numbers assigned to the member.
	Partitions []int32 `json:"partitions"`
}

// Members describes the consumer group: its members, their assigned input
// partitions and advertised HTTP addresses, sorted by member id. Cost: one
// DescribeGroups round trip to the group coordinator; callers serving
// requests should cache the answer.
func (p *Processor) Members(ctx context.Context) ([]Member, error) {
	resp, err := p.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{p.cfg.Group}})
	if err != nil {
		return nil, fmt.Errorf("describe group %q: %w", p.cfg.Group, err)
	}
	if len(resp.Groups) != 1 {
		return nil, fmt.Errorf("describe group %q: %d groups in the answer", p.cfg.Group, len(resp.Groups))
	}
	g := resp.Groups[0]
	if g.Error != nil {
		return nil, fmt.Errorf("describe group %q: %w", p.cfg.Group, g.Error)
	}
	inputs := p.cfg.Topics.Inputs()
	isInput := map[string]bool{}
	for _, t := range inputs {
		isInput[t] = true
	}
	out := make([]Member, 0, len(g.Members))
	for _, m := range g.Members {
		mem := Member{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		var info memberInfo
		if ud := m.MemberMetadata.UserData; len(ud) > 0 && json.Unmarshal(ud, &info) == nil {
			mem.HTTP = info.HTTP
		}
		set := map[int32]bool{}
		for _, t := range m.MemberAssignments.Topics {
			if !isInput[t.Topic] {
				continue
			}
			for _, id := range t.Partitions {
				set[int32(id)] = true
			}
		}
		for id := range set {
			mem.Partitions = append(mem.Partitions, id)
		}
		sort.Slice(mem.Partitions, func(i, j int) bool { return mem.Partitions[i] < mem.Partitions[j] })
		out = append(out, mem)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MemberID < out[j].MemberID })
	return out, nil
}

// segmentBaseline gives Metrics a partition's segment baseline once its
// task has loaded its state. The scan reads the committed state, which is
// exactly the state the task starts from, so baseline + later SegmentChange
// calls track the segments of every SIREN. A scan failure only costs the
// baseline (Loaded gets nil): it is logged, and processing, which surfaces
// real storage errors, goes on. The no-op Metrics skips the scan.
func (p *Processor) segmentBaseline(part int32) {
	if !wantsBaseline(p.cfg.Metrics) {
		return
	}
	counts := map[string]int64{}
	var names []string
	err := p.cfg.Store.Scan(part, func(siren string, val []byte) error {
		st, err := engine.UnmarshalState(siren, val)
		if err != nil {
			return err
		}
		names = st.Segments().AppendNames(names[:0])
		for _, n := range names {
			counts[n]++
		}
		return nil
	})
	if err != nil {
		p.log.Warn("segment counts of the loaded state unavailable", zap.Int32("partition", part), zap.Error(err))
		counts = nil
	}
	p.cfg.Metrics.Loaded(part, counts)
}
