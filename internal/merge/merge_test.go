package merge

import "testing"

// queues is an in-memory Inputs: each input a slice of keys; waiting[i] says
// an empty input may still receive records.
type queues struct {
	q       [][]int64
	waiting []bool
}

func (q *queues) Len() int { return len(q.q) }
func (q *queues) Head(i int) *int64 {
	if len(q.q[i]) == 0 {
		return nil
	}
	return &q.q[i][0]
}
func (q *queues) Wait(i int) bool { return q.waiting[i] }

func key(k *int64) int64 { return *k }

// drain picks until the merge waits or runs dry and returns the order of
// (input, key) taken.
func drain(q *queues) [][2]int64 {
	var out [][2]int64
	for {
		i := Pick[int64](q, key)
		if i < 0 {
			return out
		}
		out = append(out, [2]int64{int64(i), q.q[i][0]})
		q.q[i] = q.q[i][1:]
	}
}

func TestPickMergesByKeyTiesToTheLowerInput(t *testing.T) {
	q := &queues{q: [][]int64{{5, 9}, {1, 5}, {5}}, waiting: []bool{false, false, false}}
	got := drain(q)
	want := [][2]int64{{1, 1}, {0, 5}, {1, 5}, {2, 5}, {0, 9}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d: got %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
}

func TestPickWaitsForAnEmptyInputThatMayStillDeliver(t *testing.T) {
	q := &queues{q: [][]int64{{3}, {}, {1}}, waiting: []bool{false, true, false}}
	if i := Pick[int64](q, key); i != -1 {
		t.Fatalf("Pick = %d with input 1 empty and not caught up, want -1 (wait)", i)
	}
	q.waiting[1] = false // caught up: no reason to wait for it
	if i := Pick[int64](q, key); i != 2 {
		t.Fatalf("Pick = %d with input 1 caught up, want 2 (key 1)", i)
	}
}

func TestPickOnNoHeadsIsMinusOne(t *testing.T) {
	q := &queues{q: [][]int64{{}, {}}, waiting: []bool{false, false}}
	if i := Pick[int64](q, key); i != -1 {
		t.Fatalf("Pick = %d, want -1", i)
	}
}

func BenchmarkPick(b *testing.B) {
	q := &queues{q: [][]int64{{4}, {3}, {2}, {1}}, waiting: []bool{false, false, false, false}}
	b.ReportAllocs()
	for b.Loop() {
		if Pick[int64](q, key) != 3 {
			b.Fatal("wrong pick")
		}
	}
}
