// Package merge is the event-time merge of a partition's co-partitioned
// inputs (Kafka Streams' PartitionGroup): among the inputs' head records it
// picks the one that comes next, and it says when the merge must wait for an
// input instead. The processor's tasks and the bench's engine stage use it;
// it holds no records itself (the inputs do, in their hand-off rings).
package merge

// Inputs is what the merge reads: a fixed number of inputs, each with a head
// record or none buffered.
type Inputs[T any] interface {
	// Len is the number of inputs; their index is the tie-break order.
	Len() int
	// Head is input i's next record, or nil when none is buffered.
	Head(i int) *T
	// Wait reports, for an input with nothing buffered, whether a record
	// may still come that could precede the others' heads (the merge must
	// wait), or not (the input is caught up or finished: skip it).
	Wait(i int) bool
}

// Pick returns the index of the input whose head record comes next: the
// smallest key, ties to the lowest index. It returns -1 when no input has a
// head, or when an input with nothing buffered must be waited for (its next
// record could come first). Cost: one Head per input, and a Wait per input
// with nothing buffered; no allocation.
func Pick[T any, I Inputs[T]](in I, key func(*T) int64) int {
	best := -1
	var bestKey int64
	for i, n := 0, in.Len(); i < n; i++ {
		h := in.Head(i)
		if h == nil {
			if in.Wait(i) {
				return -1
			}
			continue
		}
		if k := key(h); best < 0 || k < bestKey {
			best, bestKey = i, k
		}
	}
	return best
}
