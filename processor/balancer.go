package processor

import (
	"encoding/json"
	"sort"

	"github.com/segmentio/kafka-go"
)

// coPartitionBalancer assigns the same partition numbers of every input topic
// to the same member, so one member owns partition p of usage, outages, claims
// and profiles together (the unit of state). kafka-go's RangeGroupBalancer does
// not sort partition ids (kafka-go issue 838) and can split them.
//
// Members are sorted by ID and partition numbers are dealt in contiguous
// ranges: deterministic for a given membership.
//
// Each member publishes memberInfo as its JoinGroup user data, so that any
// member can name another one's HTTP address (Processor.Members).
type coPartitionBalancer struct {
	advertise string // this member's HTTP base URL; "" publishes none
}

func (coPartitionBalancer) ProtocolName() string { return "sirenstream-copartition" }

func (b coPartitionBalancer) UserData() ([]byte, error) {
	if b.advertise == "" {
		return nil, nil
	}
	return json.Marshal(memberInfo{Version: 1, HTTP: b.advertise})
}

// memberInfo is the JoinGroup user data of a sirenstream member (JSON, so
// that later fields stay readable by older members).
type memberInfo struct {
	Version int    `json:"v"`
	HTTP    string `json:"http,omitempty"`
}

func (coPartitionBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	if len(members) == 0 {
		return out
	}
	ms := append([]kafka.GroupMember(nil), members...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })

	numbers := map[int]bool{}
	byTopic := map[string]map[int]bool{}
	for _, p := range partitions {
		numbers[p.ID] = true
		if byTopic[p.Topic] == nil {
			byTopic[p.Topic] = map[int]bool{}
		}
		byTopic[p.Topic][p.ID] = true
	}
	ids := make([]int, 0, len(numbers))
	for id := range numbers {
		ids = append(ids, id)
	}
	sort.Ints(ids)

	for i, m := range ms {
		lo := i * len(ids) / len(ms)
		hi := (i + 1) * len(ids) / len(ms)
		a := map[string][]int{}
		for _, t := range m.Topics {
			var ps []int
			for _, id := range ids[lo:hi] {
				if byTopic[t][id] {
					ps = append(ps, id)
				}
			}
			a[t] = ps
		}
		out[m.ID] = a
	}
	return out
}
