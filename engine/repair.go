package engine

// Correct is the decision a repair takes for one SIREN (Config.Repair). A
// repair re-processes the partition's inputs in event-time order into fresh
// states; rebuilt is such a state, old the state the live task had (nil: the
// SIREN was unknown) whose segments are the last ones emitted. When the
// segment sets differ, Correct fills dec with a correction (Trigger
// TriggerRepair, Previous = old's segments, metrics of rebuilt at the
// task's stream time), gives rebuilt the seq that follows old's and returns
// true; the same when only the offer sets differ. Otherwise rebuilt keeps
// old's seq and Correct returns false. The
// task's meta must be the rebuilt one (stream time, snapshot).
func (t *Task) Correct(old, rebuilt *State, dec *Decision) bool {
	var prev Segments
	var prevOffers offerSet
	var seq int64
	if old != nil {
		prev, seq, prevOffers = old.segs, old.seq, old.offers
		if old.offersUnknown {
			var e evaluation
			t.metrics(old, &e)
			prevOffers = t.offers(old.segs, &e)
		}
	}
	if rebuilt.segs == prev && rebuilt.offers == prevOffers {
		rebuilt.seq = seq
		return false
	}
	rebuilt.seq = seq + 1
	var e evaluation
	t.metrics(rebuilt, &e)
	t.fill(rebuilt, dec, &e, prev, rebuilt.segs, prevOffers)
	dec.Trigger = TriggerRepair
	return true
}
