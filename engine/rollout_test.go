package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// defaultFingerprint pins the fingerprint of the default rules: when this
// test fails, the canonical encoding changed (a new key in Rules?). Bump
// fingerprintScheme so that stored fingerprints of the old encoding count
// as unknown, then update the constant.
//
// v1Fingerprint pins RulesV1 (default-1): the keys of rules default-2 at
// their v1 meaning are left out of the encoding, so a v1 rules file keeps
// the fingerprint it had before they existed.
const (
	defaultFingerprint = "f2-1cd430d4aca5b98c"
	v1Fingerprint      = "f2-0974df16b07bd551"
)

func TestFingerprintPinned(t *testing.T) {
	if got := DefaultRules().Fingerprint(); got != defaultFingerprint {
		t.Fatalf("DefaultRules().Fingerprint() = %s, pinned %s: the canonical encoding changed; bump fingerprintScheme and update the pin", got, defaultFingerprint)
	}
	if got := RulesV1().Fingerprint(); got != v1Fingerprint {
		t.Fatalf("RulesV1().Fingerprint() = %s, pinned %s: the fingerprint of v1 rules changed", got, v1Fingerprint)
	}
}

// TestFingerprintCoversEveryThreshold: changing any leaf of Rules but
// Version changes the fingerprint; the version, the key order of the file
// and keys left at their default do not.
func TestFingerprintCoversEveryThreshold(t *testing.T) {
	base := DefaultRules()
	fp := base.Fingerprint()
	var leaves func(v reflect.Value, path string)
	n := 0
	leaves = func(v reflect.Value, path string) {
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue // runtime caches, not thresholds
			}
			f, name := v.Field(i), path+v.Type().Field(i).Name
			if f.Kind() == reflect.Struct {
				leaves(f, name+".")
				continue
			}
			old := reflect.ValueOf(f.Interface())
			switch f.Kind() {
			case reflect.Float64:
				f.SetFloat(f.Float() + 0.5)
			case reflect.Int, reflect.Int32, reflect.Int64:
				f.SetInt(f.Int() + 1)
			case reflect.String:
				f.SetString(f.String() + "x")
			case reflect.Slice:
				f.Set(reflect.Append(reflect.Zero(f.Type()), reflect.ValueOf("x")))
			case reflect.Map:
				m := reflect.MakeMap(f.Type())
				m.SetMapIndex(reflect.ValueOf("x"), reflect.ValueOf("y"))
				f.Set(m)
			default:
				t.Fatalf("%s: kind %s not covered by this test", name, f.Kind())
			}
			got := base.Fingerprint()
			if name == "Version" {
				if got != fp {
					t.Errorf("changing Version changed the fingerprint")
				}
			} else if got == fp {
				t.Errorf("changing %s left the fingerprint at %s", name, fp)
			}
			f.Set(old)
			n++
		}
	}
	leaves(reflect.ValueOf(base).Elem(), "")
	if n < 15 {
		t.Fatalf("only %d leaves walked", n)
	}
	a, err := ParseRules(strings.NewReader("version: a\nmulti_site: {enter: 3, exit: 2}\ndata_hungry: {exit: 70}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseRules(strings.NewReader(string(DefaultRulesYAML()) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.Version = "b"
	b.DataHungry.Exit, b.MultiSite.Enter = 70, 3
	b.setV1Stability() // a's file leaves the keys of default-2 out: v1 meaning
	if a.Fingerprint() != b.Fingerprint() {
		t.Errorf("same thresholds, written differently: %s vs %s", a.Fingerprint(), b.Fingerprint())
	}
}

func TestCheckRules(t *testing.T) {
	cur := RulesID{Version: "v2", Fingerprint: "f1-aaaa"}
	tests := []struct {
		name     string
		stored   RulesID
		rollout  bool
		conflict bool
	}{
		{"same rules", cur, false, false},
		{"new version", RulesID{Version: "v1", Fingerprint: "f1-bbbb"}, true, false},
		{"new version, same thresholds", RulesID{Version: "v1", Fingerprint: "f1-aaaa"}, true, false},
		{"same version, other thresholds", RulesID{Version: "v2", Fingerprint: "f1-bbbb"}, false, true},
		{"same version, fingerprint unknown (old meta)", RulesID{Version: "v2"}, false, false},
		{"same version, fingerprint of another scheme", RulesID{Version: "v2", Fingerprint: "f0-bbbb"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rollout, err := CheckRules(tc.stored, cur)
			if rollout != tc.rollout || (err != nil) != tc.conflict || (err != nil && !errors.Is(err, ErrRulesConflict)) {
				t.Fatalf("CheckRules = %v, %v; want rollout %v, conflict %v", rollout, err, tc.rollout, tc.conflict)
			}
			if err != nil {
				want := `rules version "v2" was used with different thresholds on this state (stored fingerprint f1-bbbb, now f1-aaaa): give the new rules a new version to roll them out`
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestMetaRules: the meta records the task's rules; a version-1 meta (before
// rule identities) reads as the default rules with an unknown fingerprint
// and still restores the task.
func TestMetaRules(t *testing.T) {
	r := DefaultRules()
	r.Version, r.RecoveryExposed.Enter = "v9", 3
	h := newHarness(t, r)
	a := mkSIREN(1)
	h.must(usageEv(a, at(d0, 1), "75001", 1e9, 3), usageEv(a, at(d0+1, 1), "75001", 1e9, 3))
	meta := h.task().AppendMeta(nil)
	id, err := MetaRules(meta)
	if err != nil || id != (RulesID{Version: "v9", Fingerprint: r.Fingerprint()}) {
		t.Fatalf("MetaRules = %+v, %v", id, err)
	}
	// Version 1: the same bytes without the identity.
	// (and without the timers of version 3: none here, one byte; and
	// without the first day of version 4)
	first := binary.AppendVarint(nil, int64(d0))
	noFirst := bytes.Clone(meta[:len(meta)-len(first)])
	noFirst[1] &^= metaFirstDay
	v1 := bytes.Clone(noFirst[:len(noFirst)-len(appendStr(appendStr(nil, "v9"), r.Fingerprint()))-1])
	v1[0] = metaVersion1
	if id, err := MetaRules(v1); err != nil || id != (RulesID{Version: RulesV1Version}) {
		t.Fatalf("MetaRules(v1) = %+v, %v", id, err)
	}
	other := NewTask(r, Config{})
	if err := other.UnmarshalMeta(v1); err != nil || other.StreamTime() != h.task().StreamTime() || !bytes.Equal(other.AppendMeta(nil), noFirst) {
		t.Fatalf("UnmarshalMeta(v1): %v", err)
	}
	if _, err := MetaRules(meta[:len(meta)-1]); err == nil {
		t.Fatal("a truncated meta decodes")
	}
}

// TestRolloutReevaluatesEverySIREN (spec: a new rules version re-evaluates
// every SIREN of the partition at start and emits the changes it causes,
// labelled with the new version): lowering RECOVERY_EXPOSED's enter
// threshold from 4 h to 3 h adds it to the SIRENs with 3 h of exposure, in
// SIREN order, with trigger RULES_ROLLOUT; the rollout is deterministic,
// and the same rules again roll out nothing.
func TestRolloutReevaluatesEverySIREN(t *testing.T) {
	run := func() ([]Decision, *harness) {
		h := newHarness(t, noGoldenHourOffer())
		hours := []int{3, 1, 5, 3}
		for i := range hours {
			h.must(outageStartEv(mkSIREN(10+i), "o", at(d0, 0), "75001"))
		}
		for _, hr := range []int{1, 3, 5} { // resolutions in event-time order
			for i := range hours {
				if hours[i] == hr {
					h.must(outageResolvedEv(mkSIREN(10+i), "o", at(d0, hr), at(d0, 0), "75001"))
				}
			}
		}
		h.tick(at(d0+1, 2))
		h.out = nil
		v2 := noGoldenHourOffer()
		v2.Version, v2.RecoveryExposed.Enter = "v2", 3
		rollout, err := h.mem.Rollout(v2)
		if err != nil || !rollout {
			t.Fatalf("Rollout(v2) = %v, %v", rollout, err)
		}
		return h.out, h
	}
	got, h := run()
	want := []string{mkSIREN(10), mkSIREN(13)}
	if len(got) != len(want) {
		t.Fatalf("rollout emitted %d decisions, want %d: %+v", len(got), len(want), got)
	}
	for i, d := range got {
		if d.SIREN != want[i] || d.Trigger != TriggerRulesRollout || d.RulesVersion != "v2" ||
			d.Added != RecoveryExposed || d.Seq != 1 || d.EventTime != at(d0+1, 2) {
			t.Errorf("decision %d = %s seq %d added %v trigger %q version %q at %d; want %s, RECOVERY_EXPOSED, RULES_ROLLOUT, v2",
				i, d.SIREN, d.Seq, d.Added.Names(), d.Trigger, d.RulesVersion, d.EventTime, want[i])
		}
	}
	again, _ := run()
	if !reflect.DeepEqual(got, again) {
		t.Error("two rollouts of the same history differ")
	}

	// Restarted with the rolled-out rules: nothing more.
	h.out = nil
	v2 := noGoldenHourOffer()
	v2.Version, v2.RecoveryExposed.Enter = "v2", 3
	if rollout, err := h.mem.Rollout(v2); err != nil || rollout || len(h.out) != 0 {
		t.Fatalf("second Rollout(v2) = %v, %v, %d decisions; want none", rollout, err, len(h.out))
	}
	// Same version, other thresholds: refused, nothing changes.
	other := noGoldenHourOffer()
	other.Version, other.RecoveryExposed.Enter = "v2", 2
	if _, err := h.mem.Rollout(other); !errors.Is(err, ErrRulesConflict) || len(h.out) != 0 {
		t.Fatalf("Rollout(v2 with other thresholds) = %v, %d decisions; want ErrRulesConflict", err, len(h.out))
	}
	if h.task().Rules().RecoveryExposed.Enter != 3 {
		t.Fatal("a refused rollout replaced the rules")
	}
}
