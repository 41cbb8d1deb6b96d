package processor

import (
	"errors"
	"fmt"
	"sort"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/engine"
)

// ErrUnknownSIREN: no state for this SIREN on the partition that owns it.
var ErrUnknownSIREN = errors.New("unknown SIREN")

// NotOwnedError: the SIREN's partition belongs to another instance.
type NotOwnedError struct {
	SIREN     string
	Partition int32
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("SIREN %s is on partition %d, not owned by this instance", e.SIREN, e.Partition)
}

// PartitionOf returns the input partition of a SIREN key: murmur2, like the
// Java default partitioner, over n partitions.
func PartitionOf(siren string, n int) int32 {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return int32((&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(siren)}, ps...))
}

// View returns a SIREN's current metrics, segments, reasons, offers and seq
// as of the last commit of its partition (at most one commit interval old).
// It reads Badger, never the task's in-memory state, so it needs no lock on
// the hot path. It returns the SIREN's partition with every answer.
func (p *Processor) View(siren string) (*engine.Decision, int32, error) {
	n := p.Partitions()
	if n == 0 {
		return nil, -1, errors.New("processor not started: partition count unknown")
	}
	if !engine.ValidSIREN(siren) {
		return nil, -1, fmt.Errorf("%w: %q", engine.ErrInvalidSIREN, siren)
	}
	part := PartitionOf(siren, n)
	owned := false
	for _, o := range p.Owned() {
		if o == part {
			owned = true
		}
	}
	if !owned {
		return nil, part, &NotOwnedError{SIREN: siren, Partition: part}
	}
	cp, ok, err := p.cfg.Store.Checkpoint(part)
	if err != nil {
		return nil, part, err
	}
	b, err := p.cfg.Store.Get(part, siren)
	if err != nil {
		return nil, part, err
	}
	if !ok || b == nil {
		return nil, part, fmt.Errorf("%w: %s (partition %d)", ErrUnknownSIREN, siren, part)
	}
	st, err := engine.UnmarshalState(siren, b)
	if err != nil {
		return nil, part, err
	}
	eng := engine.NewTask(p.cfg.Rules, p.cfg.engineConfig(false))
	if _, err := parseMeta(cp.Meta, eng); err != nil {
		return nil, part, err
	}
	var d engine.Decision
	eng.View(st, &d)
	return &d, part, nil
}

// SegmentRow is one SIREN of a segment listing (ListSegment).
type SegmentRow struct {
	SIREN        string
	Partition    int32
	Seq          int64 // seq of the SIREN's last decision, as stored
	Offers       []string
	ControlGroup bool
}

// SegmentPage is one page of ListSegment over some partitions.
type SegmentPage struct {
	// Rows are in ascending SIREN order; at most the limit asked for.
	Rows []SegmentRow
	// Next is "" when every partition read was read to its end. Otherwise
	// every SIREN of those partitions up to Next (inclusive) has been
	// examined: the next page lists SIRENs after Next.
	Next string
	// Partitions were read; Missing were asked for but are not owned here or
	// their task has not loaded its state yet.
	Partitions, Missing []int32
}

// ListSegment lists the SIRENs of segment seg on the partitions parts of
// this instance, after SIREN after ("" = from the start), as of the last
// commit of each partition. It reads only the small header of each stored
// state (engine.PeekHeader) and decodes only the states of the page's rows
// (for offers), so a page costs one key-ordered walk from after until limit
// members are found per partition — or budget states have been examined per
// partition (budget ≤ 0: no bound): a rare segment then yields a short page
// whose Next lets the caller go on, instead of one request walking a whole
// partition.
func (p *Processor) ListSegment(seg engine.Segments, after string, limit, budget int, parts []int32) (SegmentPage, error) {
	var page SegmentPage
	if limit <= 0 {
		return page, fmt.Errorf("processor: list segment: limit %d, want > 0", limit)
	}
	loaded := p.loadedSet()
	type source struct {
		part  int32
		rows  []peeked
		until string // "" = read to the end
	}
	var srcs []source
	for _, part := range parts {
		if !loaded[part] {
			page.Missing = append(page.Missing, part)
			continue
		}
		rows, until, err := p.peekSegment(part, seg, after, limit+1, budget)
		if err != nil {
			return SegmentPage{}, err
		}
		page.Partitions = append(page.Partitions, part)
		srcs = append(srcs, source{part, rows, until})
	}
	// Every partition is known up to the smallest of their read bounds.
	bound := ""
	for _, s := range srcs {
		if s.until != "" && (bound == "" || s.until < bound) {
			bound = s.until
		}
	}
	var all []peeked
	for _, s := range srcs {
		for _, r := range s.rows {
			if bound == "" || r.siren <= bound {
				all = append(all, r)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].siren < all[j].siren })
	page.Next = bound
	if len(all) > limit {
		all = all[:limit]
		page.Next = all[limit-1].siren
	}
	rows, err := p.decodeRows(all)
	page.Rows = rows
	return page, err
}

// peeked is a segment member found by peekSegment: its state bytes (a copy).
type peeked struct {
	siren string
	part  int32
	val   []byte
}

var errPageFull = errors.New("page full")

// peekSegment walks partition part after SIREN after and returns up to max
// members of seg, and the SIREN up to which it walked ("" = to the end).
func (p *Processor) peekSegment(part int32, seg engine.Segments, after string, max, budget int) ([]peeked, string, error) {
	var rows []peeked
	seen, last := 0, ""
	fn := func(siren string, val []byte) error {
		seen++
		last = siren
		_, segs, err := engine.PeekHeader(val)
		if err != nil {
			return fmt.Errorf("partition %d SIREN %s: %w", part, siren, err)
		}
		if segs&seg != 0 {
			rows = append(rows, peeked{siren: siren, part: part, val: append([]byte(nil), val...)})
			if len(rows) >= max {
				return errPageFull
			}
		}
		if budget > 0 && seen >= budget {
			return errPageFull
		}
		return nil
	}
	var err error
	if after == "" {
		err = p.cfg.Store.Scan(part, fn)
	} else {
		err = p.cfg.Store.ScanFrom(part, after, fn)
	}
	switch {
	case errors.Is(err, errPageFull):
		return rows, last, nil
	case err != nil:
		return nil, "", err
	}
	return rows, "", nil
}

// decodeRows decodes the states of rows (offers need the plan and
// workforce), with each partition's engine meta.
func (p *Processor) decodeRows(rows []peeked) ([]SegmentRow, error) {
	out := make([]SegmentRow, 0, len(rows))
	engs := map[int32]*engine.Task{}
	var d engine.Decision
	for _, r := range rows {
		eng := engs[r.part]
		if eng == nil {
			eng = engine.NewTask(p.cfg.Rules, p.cfg.engineConfig(false))
			cp, ok, err := p.cfg.Store.Checkpoint(r.part)
			if err != nil {
				return nil, err
			}
			if ok {
				if _, err := parseMeta(cp.Meta, eng); err != nil {
					return nil, fmt.Errorf("partition %d: %w", r.part, err)
				}
			}
			engs[r.part] = eng
		}
		st, err := engine.UnmarshalState(r.siren, r.val)
		if err != nil {
			return nil, fmt.Errorf("partition %d SIREN %s: %w", r.part, r.siren, err)
		}
		eng.View(st, &d)
		out = append(out, SegmentRow{SIREN: r.siren, Partition: r.part, Seq: d.Seq,
			Offers: append([]string{}, d.Offers...), ControlGroup: d.ControlGroup})
	}
	return out, nil
}

// loadedSet returns the owned partitions whose task has loaded its state.
func (p *Processor) loadedSet() map[int32]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int32]bool{}
	for _, part := range p.owned {
		if t, ok := p.tasks[part]; ok {
			if s := t.progress.snapshot(); s.Loaded && !s.Done {
				out[part] = true
			}
		}
	}
	return out
}

// HTTPAdvertise returns the HTTP base URL this instance advertises to the
// group (Config.HTTPAdvertise; "" when none).
func (p *Processor) HTTPAdvertise() string { return p.cfg.HTTPAdvertise }
