package engine

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// Holdout is the universal control group (spec §8), configured apart from
// the rules so that a new rules version cannot reshuffle who is held out.
// A SIREN's group is recorded in its state the first time it is seen
// (header extension tag 3) and kept for as long as the holdout's ID is the
// same. Zero values take the defaults.
type Holdout struct {
	// ID names the holdout (default "default"). Under one ID, Salt and
	// Share must never change (Fingerprint, CheckHoldout): a change would
	// move SIRENs between groups. A new experiment takes a new ID.
	ID string
	// Salt is mixed into the hash (default "sirenstream": the salt of the
	// rules file's control_group before this setting existed, so the same
	// SIRENs stay held out).
	Salt string
	// Share is the control share in [0, 1], resolution 0.0001 (default
	// 0.05). Negative means 0: no control group.
	Share float64
	// StartMs: eligibilities that start before it (Unix ms) are not
	// measured (0: all).
	StartMs int64
}

// Holdout defaults (spec §8).
const (
	DefaultHoldoutID    = "default"
	DefaultHoldoutSalt  = "sirenstream"
	DefaultHoldoutShare = 0.05
)

func (h Holdout) withDefaults() Holdout {
	if h.ID == "" {
		h.ID = DefaultHoldoutID
	}
	if h.Salt == "" {
		h.Salt = DefaultHoldoutSalt
	}
	if h.Share == 0 {
		h.Share = DefaultHoldoutShare
	}
	if h.Share < 0 {
		h.Share = 0
	}
	return h
}

// WithDefaults returns h with zero values replaced by the defaults.
func (h Holdout) WithDefaults() Holdout { return h.withDefaults() }

// Validate names the bad field.
func (h Holdout) Validate() error {
	if !(h.Share <= 1) {
		return fmt.Errorf("holdout: Share must be in [0, 1], got %v", h.Share)
	}
	if len(h.ID) > maxFieldLen || len(h.Salt) > maxFieldLen {
		return fmt.Errorf("holdout: ID and Salt must be at most %d bytes", maxFieldLen)
	}
	return nil
}

// InControl reports whether siren is held out: FNV-1a-64(salt ":" siren)
// % 10000 < round(share × 10000). Allocates nothing.
func (h Holdout) InControl(siren string) bool {
	h = h.withDefaults()
	return fnv64a(h.Salt, ":", siren)%10000 < uint64(math.Round(h.Share*10000))
}

// Fingerprint is what decides the groups under h's ID: salt and share.
func (h Holdout) Fingerprint() string {
	h = h.withDefaults()
	return strconv.Quote(h.Salt) + "/" + strconv.FormatFloat(math.Round(h.Share*10000)/10000, 'f', -1, 64)
}

// CheckHoldout refuses a holdout configuration that would move SIRENs
// between groups under the same ID: storedID and storedFingerprint are what
// a previous run recorded ("" when none). A new ID is a new holdout and is
// accepted (SIRENs are assigned again, once, under it).
func CheckHoldout(storedID, storedFingerprint string, current Holdout) error {
	current = current.withDefaults()
	if storedID == "" || storedID != current.ID || storedFingerprint == current.Fingerprint() {
		return nil
	}
	return fmt.Errorf("holdout %q was recorded with salt/share %s; the configuration gives %s, which would move SIRENs "+
		"between the control and treatment groups: keep the recorded salt and share, or start a new holdout with a new --holdout-id",
		current.ID, storedFingerprint, current.Fingerprint())
}

// holdoutRec is a SIREN's recorded group (header extension tag 3).
type holdoutRec struct {
	id      string
	control bool
	set     bool
}

// extHoldout: the SIREN's holdout group, recorded the first time it is
// seen: control(1) id(str).
const extHoldout = 3

// assignHoldout records st's group under the task's holdout unless it is
// already recorded under the same ID.
func (t *Task) assignHoldout(st *State) {
	h := t.cfg.Holdout
	if st.ho.set && st.ho.id == h.ID {
		return
	}
	st.ho = holdoutRec{id: h.ID, control: h.InControl(st.SIREN), set: true}
}

// inControl is st's group: the recorded one, or the holdout's hash for a
// SIREN not recorded under the current ID yet.
func (t *Task) inControl(st *State) bool {
	if st.ho.set && st.ho.id == t.cfg.Holdout.ID {
		return st.ho.control
	}
	return t.cfg.Holdout.InControl(st.SIREN)
}

// Holdout returns the task's holdout with defaults applied.
func (t *Task) Holdout() Holdout { return t.cfg.Holdout }

func appendHoldoutExt(dst []byte, h holdoutRec) []byte {
	if !h.set {
		return dst
	}
	dst = binary.AppendUvarint(dst, extHoldout)
	dst = binary.AppendUvarint(dst, uint64(1+uvarintLen(uint64(len(h.id)))+len(h.id)))
	c := byte(0)
	if h.control {
		c = 1
	}
	dst = append(dst, c)
	return appendStr(dst, h.id)
}

func readHoldoutExt(p []byte) (holdoutRec, error) {
	if len(p) < 2 || p[0] > 1 {
		return holdoutRec{}, fmt.Errorf("bad holdout %x", p)
	}
	r := reader{b: p[1:]}
	id := r.str()
	if r.err != nil || len(r.b) != 0 {
		return holdoutRec{}, fmt.Errorf("bad holdout %x", p)
	}
	return holdoutRec{id: id, control: p[0] == 1, set: true}, nil
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}
