package engine

import (
	"iter"
	"slices"
	"strings"
)

// Memory runs a Task over states held in memory: the processor's whole
// per-record sequence without I/O, like raft's MemoryStorage. It is the one
// driver of tests, fuzzing and benchmarks; a caller with a store drives the
// Task itself. Decisions go to OnDecision. One goroutine owns a Memory.
type Memory struct {
	// OnDecision, when not nil, receives every decision in output order: a
	// day change's in SIREN order, then the record's own. The Decision is
	// reused by the next one: copy what you keep, slices included.
	OnDecision func(*Decision)
	// OnOutcome, when not nil, receives every eligibility a day change
	// closes (CloseOutcomes), in SIREN order.
	OnOutcome func(*Outcome)

	rules  *Rules
	cfg    Config
	task   *Task
	states map[string]*State
	order  []*State // every state; sorted by SIREN unless unsorted
	// unsorted: states were added since order was last sorted.
	unsorted bool
	dec      Decision
	outs     []Outcome
}

// NewMemory returns a driver with no states over NewTask(rules, cfg).
func NewMemory(rules *Rules, cfg Config) *Memory {
	return &Memory{rules: rules, cfg: cfg, task: NewTask(rules, cfg), states: map[string]*State{}}
}

// Task returns the driven task (for its stream time, View, KeepNextDay...).
// It changes on Restart.
func (m *Memory) Task() *Task { return m.task }

// State returns the state of siren, nil when it has none.
func (m *Memory) State(siren string) *State { return m.states[siren] }

// Len is the number of states.
func (m *Memory) Len() int { return len(m.order) }

// States yields every state in SIREN order. Apply, DayChange, Put and
// Restart must not be called while it runs.
func (m *Memory) States() iter.Seq[*State] {
	return func(yield func(*State) bool) {
		m.sort()
		for _, st := range m.order {
			if !yield(st) {
				return
			}
		}
	}
}

// Put adds st, or replaces the state of st.SIREN (a scan of the states),
// without evaluating it: a state built elsewhere or restored from a store.
func (m *Memory) Put(st *State) {
	if old, ok := m.states[st.SIREN]; ok {
		m.order[slices.Index(m.order, old)] = st
	} else {
		m.order = append(m.order, st)
		m.unsorted = true
	}
	m.states[st.SIREN] = st
}

// Apply runs the whole sequence for one record: CheckRecord; on a new
// stream day, DayChange; then Step on the SIREN's state (a new one for an
// unknown SIREN). A non-nil error rejects the record, to be dead-lettered
// with reason DLQReason(err): the record changed nothing (a day change it
// started stays done, as in the processor). A usage record of a known SIREN
// on the current day allocates nothing.
func (m *Memory) Apply(ev *Event, rec Record) error {
	if ev.Kind == KindTick {
		// A clock tick: no SIREN, no checks; before the first record it
		// means nothing (no stream time to move).
		if m.task.Started() {
			m.Tick(ev.EventTime)
		}
		return nil
	}
	if err := m.task.CheckRecord(ev, rec); err != nil {
		return err
	}
	m.FireTimers(ev.EventTime)
	if m.task.StartsDay(ev) {
		m.DayChange(ev.EventTime)
	}
	st, known := m.states[ev.SIREN]
	if !known {
		// Clone: a decoded SIREN may share the record's buffer.
		st = NewState(strings.Clone(ev.SIREN))
	}
	changed, err := m.task.Step(st, ev, &m.dec)
	if err != nil {
		return err
	}
	if !known {
		m.Put(st)
	}
	if changed {
		m.emit()
	}
	return nil
}

// FireTimers fires the timers due at or before ms in order, each after the
// day change it starts (what the runtime does before a record at ms or a
// clock tick).
func (m *Memory) FireTimers(ms int64) {
	for {
		tm, ok := m.task.NextTimer(ms)
		if !ok {
			return
		}
		if m.task.StartsDayAt(tm.At) {
			m.DayChange(tm.At)
		}
		// The timer is the next one and its day has begun: no error.
		if changed, _ := m.task.FireTimer(m.states[tm.SIREN], tm, &m.dec); changed {
			m.emit()
		}
	}
}

// Tick is a clock tick at ms: the timers due, the day change it starts,
// then stream time moves to ms.
func (m *Memory) Tick(ms int64) {
	if m.task.Started() && ms <= m.task.StreamTime() {
		return
	}
	m.FireTimers(ms)
	if m.task.StartsDayAt(ms) {
		m.DayChange(ms)
	}
	_ = m.task.AdvanceTo(ms) // timers fired, day begun: no error
}

// DayChange moves stream time to ms and runs a day change over every state:
// BeginDay (pass 1 from the states, or the kept set), Evaluate in SIREN
// order, EndDay. Apply calls it when a record starts a day; calling it
// directly runs one without a record (a day passing in silence, or to look
// at the states between the day change and the step).
func (m *Memory) DayChange(ms int64) DayStats {
	m.sort()
	// Pass 1 from memory cannot fail: m.each returns visit's error and
	// visit returns none.
	stats, _ := m.task.BeginDay(ms, FromStates(m.each))
	for _, st := range m.order {
		if m.task.Evaluate(st, &m.dec) {
			m.emit()
		}
		m.outs = m.task.CloseOutcomes(st, m.outs[:0])
		for i := range m.outs {
			if m.OnOutcome != nil {
				m.OnOutcome(&m.outs[i])
			}
		}
	}
	m.task.EndDay()
	return stats
}

// Restart simulates a process restart from a store: the task is rebuilt
// from its AppendMeta and every state from its AppendBinary, so runtime
// memos and a kept next-day set are lost (KeepNextDay itself carries over).
// An error (an encoding that does not decode: a bug) leaves m unchanged.
func (m *Memory) Restart() error {
	task := NewTask(m.rules, m.cfg)
	if err := task.UnmarshalMeta(m.task.AppendMeta(nil)); err != nil {
		return err
	}
	task.KeepNextDay(m.task.keep)
	states := make(map[string]*State, len(m.states))
	order := make([]*State, 0, len(m.order))
	var buf []byte
	for _, st := range m.order {
		buf = st.AppendBinary(buf[:0])
		ns, err := UnmarshalState(st.SIREN, buf)
		if err != nil {
			return err
		}
		states[ns.SIREN] = ns
		order = append(order, ns)
	}
	m.task, m.states, m.order = task, states, order
	return nil
}

// Rollout simulates a restart under rules (Restart, then the rollout a
// runtime does when CheckRules reports one): every state is re-evaluated
// with Task.Rollout in SIREN order, changes go to OnDecision. It returns
// CheckRules' answer for the old and new rules: a conflict (ErrRulesConflict)
// changes nothing, and no rollout (same version) only restarts.
func (m *Memory) Rollout(rules *Rules) (bool, error) {
	if rules == nil {
		rules = DefaultRules()
	}
	stored, err := MetaRules(m.task.AppendMeta(nil))
	if err != nil {
		return false, err
	}
	rollout, err := CheckRules(stored, rules.ID())
	if err != nil {
		return false, err
	}
	old := m.rules
	m.rules = rules
	if err := m.Restart(); err != nil {
		m.rules = old
		return false, err
	}
	if rollout {
		m.sort()
		for _, st := range m.order {
			if m.task.Rollout(st, &m.dec) {
				m.emit()
			}
		}
	}
	return rollout, nil
}

func (m *Memory) each(visit func(*State) error) error {
	for _, st := range m.order {
		if err := visit(st); err != nil {
			return err
		}
	}
	return nil
}

func (m *Memory) sort() {
	if m.unsorted {
		slices.SortFunc(m.order, func(a, b *State) int { return strings.Compare(a.SIREN, b.SIREN) })
		m.unsorted = false
	}
}

func (m *Memory) emit() {
	if m.OnDecision != nil {
		m.OnDecision(&m.dec)
	}
}
