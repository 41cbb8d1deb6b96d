package engine

// The per-step calls of the former seven-call day-change protocol, kept
// until their last callers move to BeginDay/EndDay.

// NeedsSweep is StartsDay.
//
// Deprecated: use StartsDay.
func (t *Task) NeedsSweep(ev *Event) bool { return t.StartsDay(ev) }

// AdvanceTo moves stream time forward to ms (never back); a new day drops
// the percentile snapshot until SetSnapshot.
//
// Deprecated: use BeginDay.
func (t *Task) AdvanceTo(ms int64) { t.advanceTo(ms) }

// Intensity returns st's digital_intensity at the current stream day (ok
// false: null).
//
// Deprecated: use BeginDay with FromStates.
func (t *Task) Intensity(st *State) (float64, bool) { return t.intensity(st) }

// IntensityEncoded is Intensity of an encoded state, without decoding it.
//
// Deprecated: use BeginDay with FromEncoded.
func (t *Task) IntensityEncoded(b []byte) (float64, bool, error) { return t.intensityEncoded(b) }

// IntensityNextDay returns st's digital_intensity at the day after the
// stream day.
//
// Deprecated: use BeginDay, EndDay and KeepNextDay.
func (t *Task) IntensityNextDay(st *State) (float64, bool) { return t.intensityNextDay(st) }

// SetSnapshot sets the day's percentile population from the pass-1
// intensities (any order; not retained).
//
// Deprecated: use BeginDay.
func (t *Task) SetSnapshot(values []float64) { t.setSnapshot(values) }
