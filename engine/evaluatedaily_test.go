package engine

import (
	"reflect"
	"testing"
)

// EvaluateDaily is Evaluate followed by View, as the processor's day change
// used to call them (with CloseOutcomes between): the same decision, the
// same state afterwards, and a daily snapshot whose siren-daily fields are
// View's. Checked at every day change of random streams, under both rule
// sets.
func TestEvaluateDailyIsEvaluateThenView(t *testing.T) {
	for _, rules := range []*Rules{RulesV1(), DefaultRules()} {
		for seed := int64(1); seed <= 4; seed++ {
			a, b := NewMemory(rules, Config{}), NewMemory(rules, Config{})
			days, changes := 0, 0
			for _, ev := range randomEvents(seed, 30, 150, 40) {
				if ev.Kind != KindTick && a.task.Started() && a.task.StartsDay(&ev) && a.task.Check(&ev) == nil {
					days++
					a.sort()
					b.sort()
					if _, err := a.task.BeginDay(ev.EventTime, FromStates(a.each)); err != nil {
						t.Fatal(err)
					}
					if _, err := b.task.BeginDay(ev.EventTime, FromStates(b.each)); err != nil {
						t.Fatal(err)
					}
					for i, sa := range a.order {
						sb := b.order[i]
						var da, db, va, vb Decision
						ca := a.task.Evaluate(sa, &da)
						cb := b.task.EvaluateDaily(sb, &db, &vb)
						if ca != cb || (ca && !reflect.DeepEqual(cloneDec(da), cloneDec(db))) {
							t.Fatalf("rules %s seed %d %s: Evaluate %v %+v, EvaluateDaily %v %+v", rules.Version, seed, sa.SIREN, ca, da, cb, db)
						}
						if ca {
							changes++
						}
						oa := a.task.CloseOutcomes(sa, nil)
						ob := b.task.CloseOutcomes(sb, nil)
						if !reflect.DeepEqual(oa, ob) {
							t.Fatalf("rules %s seed %d %s: outcomes differ", rules.Version, seed, sa.SIREN)
						}
						a.task.View(sa, &va)
						if va.SIREN != vb.SIREN || va.Metrics != vb.Metrics || va.Segments != vb.Segments ||
							!reflect.DeepEqual(va.Offers, vb.Offers) || va.ControlGroup != vb.ControlGroup || va.RulesVersion != vb.RulesVersion {
							t.Fatalf("rules %s seed %d %s: View %+v\nEvaluateDaily's %+v", rules.Version, seed, sa.SIREN, va, vb)
						}
						if string(sa.AppendBinary(nil)) != string(sb.AppendBinary(nil)) {
							t.Fatalf("rules %s seed %d %s: states differ after the day change", rules.Version, seed, sa.SIREN)
						}
					}
					a.task.EndDay()
					b.task.EndDay()
				}
				ea, eb := a.Apply(&ev, Record{Key: []byte(ev.SIREN)}), b.Apply(&ev, Record{Key: []byte(ev.SIREN)})
				if (ea == nil) != (eb == nil) {
					t.Fatalf("seed %d: Apply %v vs %v", seed, ea, eb)
				}
			}
			if days < 100 || changes == 0 {
				t.Fatalf("rules %s seed %d: %d day changes, %d changes: the stream exercised too little", rules.Version, seed, days, changes)
			}
		}
	}
}
