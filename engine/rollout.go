package engine

// A rules rollout: a task whose states were evaluated under other rules
// re-evaluates every SIREN under its own before it applies anything new, so
// decisions never carry a rules_version their segments were not decided
// under. The task meta records the identity of the rules (AppendMeta); the
// caller compares it with the task's (CheckRules) and, on a new version,
// calls Rollout on every state in SIREN order, exactly like pass 2 of a day
// change (and as resumable: Rollout is deterministic given the meta and the
// states).

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// RulesID identifies rules: the version their file declares and a
// fingerprint of every threshold (Rules.Fingerprint).
type RulesID struct {
	Version string
	// Fingerprint is Rules.Fingerprint; "" when unknown (a task meta
	// written before rule identities were recorded).
	Fingerprint string
}

// ID returns the identity of r. Cost: one Fingerprint.
func (r *Rules) ID() RulesID { return RulesID{Version: r.Version, Fingerprint: r.Fingerprint()} }

// fingerprintScheme prefixes every fingerprint. Bump it when the canonical
// encoding of existing rules changes (a new key in Rules, another format):
// a stored fingerprint of another scheme counts as unknown, so upgrading a
// build neither refuses a state nor rolls its rules out.
// TestFingerprintPinned fails when the encoding changes.
const fingerprintScheme = "f2-"

// Fingerprint is a hash of the effective thresholds of r, every field but
// Version: "f1-" and the first 16 hex digits of the SHA-256 of the sorted
// "key.path=value" lines of the rules, keys as in the rules file. Two rule
// files that set the same values (in any order, or by leaving defaults out)
// have the same fingerprint. Cost: a reflection walk of Rules and a hash
// (a few microseconds); callers on a hot path keep the result.
func (r *Rules) Fingerprint() string {
	var lines []string
	canonicalLines(&lines, "", reflect.ValueOf(r).Elem())
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return fingerprintScheme + hex.EncodeToString(sum[:8])
}

// canonicalLines appends a "path=value" line per leaf of v (a struct), keys
// from the yaml tags; Rules.Version is left out.
func canonicalLines(dst *[]string, prefix string, v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		fv := v.Field(i)
		if opts == "inline" && fv.Kind() == reflect.Struct {
			canonicalLines(dst, prefix, fv)
			continue
		}
		if key == "" || key == "-" {
			key = f.Name
		}
		path := prefix + key
		if path == "version" {
			continue
		}
		if opts == "omitempty" && fv.IsZero() {
			// The keys of rules default-2: zero is their v1 meaning, left
			// out so that v1 rules keep their fingerprint.
			continue
		}
		var val string
		switch fv.Kind() {
		case reflect.Struct:
			canonicalLines(dst, path+".", fv)
			continue
		case reflect.Float32, reflect.Float64:
			val = strconv.FormatFloat(fv.Float(), 'g', -1, 64)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			val = strconv.FormatInt(fv.Int(), 10)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			val = strconv.FormatUint(fv.Uint(), 10)
		case reflect.Bool:
			val = strconv.FormatBool(fv.Bool())
		case reflect.String:
			val = strconv.Quote(fv.String())
		default:
			// Slices and maps have no canonical order here: make them
			// visible rather than silently unhashed.
			val = fmt.Sprintf("%#v", fv.Interface())
		}
		*dst = append(*dst, path+"="+val)
	}
}

// ErrRulesConflict: a state was evaluated under rules with the same version
// as the task's but other thresholds. Rolling them out is refused: the
// version is what downstream systems read in rules_version, so two meanings
// of one version would be indistinguishable.
var ErrRulesConflict = errors.New("rules conflict")

// CheckRules compares stored, the identity of the rules a state was
// evaluated under (MetaRules), with current, the task's. It reports a
// rollout when the versions differ, nothing when they are equal, and an
// error wrapping ErrRulesConflict when the versions are equal but both
// fingerprints are known (same scheme) and differ.
func CheckRules(stored, current RulesID) (rollout bool, err error) {
	if stored.Version != current.Version {
		return true, nil
	}
	if stored.Fingerprint == current.Fingerprint || !sameScheme(stored.Fingerprint, current.Fingerprint) {
		return false, nil
	}
	return false, fmt.Errorf("rules version %q was used with different thresholds on this state (stored fingerprint %s, now %s): "+
		"give the new rules a new version to roll them out, or start again with the rules of fingerprint %s (%w)",
		current.Version, stored.Fingerprint, current.Fingerprint, stored.Fingerprint, ErrRulesConflict)
}

// sameScheme: both fingerprints are known and of the same scheme.
func sameScheme(a, b string) bool {
	sa, _, okA := strings.Cut(a, "-")
	sb, _, okB := strings.Cut(b, "-")
	return okA && okB && sa == sb
}

// Rollout is Evaluate for a rules rollout: it re-evaluates st under the
// task's rules at the stream time and, when the segment set changes, fills
// dec (Trigger TriggerRulesRollout, RulesVersion the task's) and returns
// true. It emits exactly when Evaluate would (the segment set changes): a
// rollout that only moves the thresholds, reasons or control group of a
// SIREN whose segments stay emits nothing for it (its next decision carries
// them). It neither prunes nor touches a next-day set being built.
func (t *Task) Rollout(st *State, dec *Decision) bool {
	// The new rules may move the RECOVERY_EXPOSED threshold: schedule the
	// open outages' timers under them (a timer of the old threshold that
	// remains finds nothing new when it fires).
	t.addTimers(st)
	if !t.evaluate(st, dec) {
		return false
	}
	dec.Trigger = TriggerRulesRollout
	return true
}
