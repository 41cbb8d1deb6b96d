package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sirenstream/sirenstream/engine"
)

// Reader/writer resolution for writer schemas that are not ours (goavro has
// none: linkedin/goavro issues 114, 166). The record is decoded with the
// writer's goavro codec, then each reader field is taken by name:
//   - missing in the writer: the reader default (null for the unions), or
//     ErrWrongSchema when the reader field has no default;
//   - present: the writer type must resolve to the reader type (Avro spec
//     promotions int→long, bytes↔string; a writer union must have only
//     branches that resolve; an enum's symbols must be a subset of ours);
//   - writer fields unknown to the reader are ignored.
//
// Compatibility is checked once per (schema id, kind) from the schema text, so
// it does not depend on the values of a particular record.

// rtype is the type of a reader field.
type rtype uint8

const (
	rString       rtype = iota // string
	rLong                      // long (incl. timestamp-millis)
	rEnumStatus                // enum OutageStatus
	rOptInt                    // ["null","int"] default null
	rOptLong                   // ["null",timestamp-millis] default null
	rOptString                 // ["null","string"] default null
	rLong0                     // long default 0
	rEnumChannel               // enum Channel
	rEnumResponse              // enum ResponseStatus
	rEnumContract              // enum ContractEventType
)

// optional: the reader field has a default (null, or 0 for rLong0).
func (t rtype) optional() bool {
	return t == rOptInt || t == rOptLong || t == rOptString || t == rLong0
}

func (t rtype) String() string {
	return [...]string{"string", "long", "enum OutageStatus", `["null","int"]`, `["null","long"]`, `["null","string"]`,
		"long default 0", "enum Channel", "enum ResponseStatus", "enum ContractEventType"}[t]
}

// enumSymbols are the reader symbols of each enum type.
func (t rtype) enumSymbols() []string {
	switch t {
	case rEnumStatus:
		return statusSymbols[:]
	case rEnumChannel:
		return channelSymbols[:]
	case rEnumResponse:
		return responseSymbols[:]
	case rEnumContract:
		return contractSymbols[:]
	}
	return nil
}

var (
	channelSymbols  = [...]string{"ACCOUNT_MANAGER", "TELESALES", "DIGITAL", "BILL"}
	responseSymbols = [...]string{"PRESENTED", "ACCEPTED", "REJECTED", "WITHHELD"}
	contractSymbols = [...]string{"PLAN_CHANGE", "TERMINATION", "RENEWAL"}
)

// setter stores a resolved value: s for strings, n for numbers and enum
// indexes, has=false for null.
type setter func(ev *engine.Event, s string, n int64, has bool)

type rfield struct {
	name string
	typ  rtype
	set  setter
}

var (
	setEventID    = func(ev *engine.Event, s string, _ int64, _ bool) { ev.EventID = s }
	setSIREN      = func(ev *engine.Event, s string, _ int64, _ bool) { ev.SIREN = s }
	setSiteID     = func(ev *engine.Event, s string, _ int64, _ bool) { ev.SiteID = s }
	setPostalCode = func(ev *engine.Event, s string, _ int64, _ bool) { ev.PostalCode = s }
	setEventTime  = func(ev *engine.Event, _ string, n int64, _ bool) { ev.EventTime = n }
)

// readerFields lists the reader schema of each input kind, in .avsc order
// (TestReaderFieldsMatchAvsc keeps them in sync).
var readerFields = [numKinds][]rfield{
	engine.KindProfile: {
		{"event_id", rString, setEventID},
		{"siren", rString, setSIREN},
		{"event_time", rLong, setEventTime},
		{"workforce", rOptInt, func(ev *engine.Event, _ string, n int64, has bool) { ev.Workforce, ev.HasWorkforce = int32(n), has }},
		{"plan", rString, func(ev *engine.Event, s string, _ int64, _ bool) { ev.Plan = s }},
	},
	engine.KindOutage: {
		{"event_id", rString, setEventID},
		{"outage_id", rString, func(ev *engine.Event, s string, _ int64, _ bool) { ev.OutageID = s }},
		{"siren", rString, setSIREN},
		{"site_id", rString, setSiteID},
		{"postal_code", rString, setPostalCode},
		{"status", rEnumStatus, func(ev *engine.Event, _ string, n int64, _ bool) { ev.Status = engine.OutageStatus(n) }},
		{"event_time", rLong, setEventTime},
		{"started_at", rOptLong, func(ev *engine.Event, _ string, n int64, has bool) { ev.StartedAt, ev.HasStartedAt = n, has }},
	},
	engine.KindClaim: {
		{"event_id", rString, setEventID},
		{"claim_id", rString, func(ev *engine.Event, s string, _ int64, _ bool) { ev.ClaimID = s }},
		{"siren", rString, setSIREN},
		{"outage_id", rOptString, func(ev *engine.Event, s string, _ int64, has bool) { ev.OutageID, ev.HasOutageID = s, has }},
		{"event_time", rLong, setEventTime},
		{"amount_cents", rLong, func(ev *engine.Event, _ string, n int64, _ bool) { ev.AmountCents = n }},
	},
	engine.KindUsage: {
		{"event_id", rString, setEventID},
		{"siren", rString, setSIREN},
		{"site_id", rString, setSiteID},
		{"postal_code", rString, setPostalCode},
		{"event_time", rLong, setEventTime},
		{"bytes_up", rLong, func(ev *engine.Event, _ string, n int64, _ bool) { ev.BytesUp = n }},
		{"bytes_down", rLong, func(ev *engine.Event, _ string, n int64, _ bool) { ev.BytesDown = n }},
		{"active_sims", rOptInt, func(ev *engine.Event, _ string, n int64, has bool) { ev.ActiveSIMs, ev.HasActiveSIMs = int32(n), has }},
	},
	engine.KindOfferResponse: {
		{"event_id", rString, setEventID},
		{"siren", rString, setSIREN},
		{"offer", rString, func(ev *engine.Event, s string, _ int64, _ bool) { ev.Offer = s }},
		{"source_event_id", rOptString, func(ev *engine.Event, s string, _ int64, has bool) { ev.SourceEventID, ev.HasSourceEventID = s, has }},
		{"channel", rEnumChannel, func(ev *engine.Event, _ string, n int64, _ bool) { ev.Channel = engine.Channel(n) }},
		{"status", rEnumResponse, func(ev *engine.Event, _ string, n int64, _ bool) { ev.ResponseStatus = engine.ResponseStatus(n) }},
		{"event_time", rLong, setEventTime},
		{"value_cents", rLong0, func(ev *engine.Event, _ string, n int64, _ bool) { ev.ValueCents = n }},
	},
	engine.KindTick: {
		{"event_time", rLong, setEventTime},
	},
	engine.KindContractEvent: {
		{"event_id", rString, setEventID},
		{"siren", rString, setSIREN},
		{"type", rEnumContract, func(ev *engine.Event, _ string, n int64, _ bool) { ev.ContractType = engine.ContractType(n) }},
		{"plan", rOptString, func(ev *engine.Event, s string, _ int64, has bool) { ev.Plan, ev.HasPlan = s, has }},
		{"mrr_cents", rLong0, func(ev *engine.Event, _ string, n int64, _ bool) { ev.MRRCents = n }},
		{"event_time", rLong, setEventTime},
	},
}

var statusSymbols = [...]string{"STARTED", "RESOLVED"}

// plan resolves one writer schema to the reader schema of one kind.
type plan struct {
	err    error // ErrWrongSchema: not resolvable
	fields []pfield
}

type pfield struct {
	rfield
	inWriter bool
}

func makePlan(id int, k engine.Kind, w map[string]wtype) plan {
	var p plan
	for _, rf := range readerFields[k] {
		wt, ok := w[rf.name]
		if !ok {
			if !rf.typ.optional() {
				p.err = fmt.Errorf("%w: schema id %d lacks field %q required by the %s reader schema", ErrWrongSchema, id, rf.name, kindName(k))
				return p
			}
			p.fields = append(p.fields, pfield{rfield: rf})
			continue
		}
		if !resolves(wt, rf.typ) {
			p.err = fmt.Errorf("%w: schema id %d field %q: writer type %s does not resolve to reader type %s", ErrWrongSchema, id, rf.name, wt, rf.typ)
			return p
		}
		p.fields = append(p.fields, pfield{rfield: rf, inWriter: true})
	}
	return p
}

func resolves(w wtype, r rtype) bool {
	if w.kind == "union" {
		if len(w.branches) == 0 {
			return false
		}
		for _, b := range w.branches {
			if !resolves(b, r) {
				return false
			}
		}
		return true
	}
	switch r {
	case rString:
		return w.kind == "string" || w.kind == "bytes"
	case rLong:
		return w.kind == "int" || w.kind == "long"
	case rEnumStatus, rEnumChannel, rEnumResponse, rEnumContract:
		if w.kind != "enum" {
			return false
		}
		for _, s := range w.symbols {
			if !slices.Contains(r.enumSymbols(), s) {
				return false
			}
		}
		return true
	case rLong0:
		return w.kind == "int" || w.kind == "long"
	case rOptInt:
		return w.kind == "null" || w.kind == "int"
	case rOptLong:
		return w.kind == "null" || w.kind == "int" || w.kind == "long"
	case rOptString:
		return w.kind == "null" || w.kind == "string" || w.kind == "bytes"
	}
	return false
}

// decodeSlow decodes with the writer's goavro codec and resolves by name.
func (e *entry) decodeSlow(want engine.Kind, body []byte, ev *engine.Event) error {
	p := &e.plans[want]
	if p.err != nil {
		return p.err
	}
	native, rest, err := e.codec.NativeFromBinary(body)
	if err != nil {
		return fmt.Errorf("%w: schema id %d: %w", ErrMalformed, e.id, err)
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: schema id %d: %d trailing bytes after the record", ErrMalformed, e.id, len(rest))
	}
	rec, ok := native.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: schema id %d is not a record", ErrWrongSchema, e.id)
	}
	*ev = engine.Event{Kind: want}
	for i := range p.fields {
		f := &p.fields[i]
		if !f.inWriter {
			f.set(ev, "", 0, false)
			continue
		}
		s, n, has, err := convert(rec[f.name], f.typ)
		if err != nil {
			return fmt.Errorf("schema id %d field %q: %w", e.id, f.name, err)
		}
		f.set(ev, s, n, has)
	}
	return nil
}

// convert turns a goavro native value into the reader field's value.
func convert(v any, t rtype) (s string, n int64, has bool, err error) {
	if u, ok := v.(map[string]any); ok { // non-null union value
		for _, x := range u {
			v = x
		}
	}
	if v == nil {
		if t.optional() {
			return "", 0, false, nil
		}
		return "", 0, false, fmt.Errorf("%w: null for non-null reader type %s", ErrWrongSchema, t)
	}
	switch t {
	case rString, rOptString:
		switch x := v.(type) {
		case string:
			return x, 0, true, nil
		case []byte:
			return string(x), 0, true, nil
		}
	case rLong, rOptLong, rLong0:
		switch x := v.(type) {
		case int64:
			return "", x, true, nil
		case int32:
			return "", int64(x), true, nil
		case time.Time:
			return "", x.UnixMilli(), true, nil
		}
	case rOptInt:
		if x, ok := v.(int32); ok {
			return "", int64(x), true, nil
		}
	case rEnumStatus, rEnumChannel, rEnumResponse, rEnumContract:
		if x, ok := v.(string); ok {
			for i, sym := range t.enumSymbols() {
				if x == sym {
					return "", int64(i), true, nil
				}
			}
			return "", 0, false, fmt.Errorf("%w: enum symbol %q unknown to the reader", ErrWrongSchema, x)
		}
	}
	return "", 0, false, fmt.Errorf("%w: writer value of type %T for reader type %s", ErrWrongSchema, v, t)
}

// wtype is the shape of a writer type, as far as resolution needs it.
type wtype struct {
	kind     string // Avro type name: "null", "int", ..., "enum", "record", "array", "map", "fixed", "union"
	symbols  []string
	branches []wtype
}

func (w wtype) String() string {
	switch w.kind {
	case "union":
		parts := make([]string, len(w.branches))
		for i, b := range w.branches {
			parts[i] = b.String()
		}
		return "[" + strings.Join(parts, ",") + "]"
	case "enum":
		return "enum{" + strings.Join(w.symbols, ",") + "}"
	}
	return w.kind
}

// parseWriterRecord returns the top-level fields of a record schema by name.
func parseWriterRecord(schema string) (map[string]wtype, error) {
	var root any
	if err := json.Unmarshal([]byte(schema), &root); err != nil {
		return nil, err
	}
	p := schemaParser{named: map[string]wtype{}}
	obj, ok := root.(map[string]any)
	if !ok || obj["type"] != "record" {
		return nil, errors.New("writer schema is not a record")
	}
	fields := map[string]wtype{}
	if _, err := p.typ(root, "", fields); err != nil {
		return nil, err
	}
	return fields, nil
}

type schemaParser struct {
	named map[string]wtype // full and short names of named types defined so far
}

var primitives = map[string]bool{"null": true, "boolean": true, "int": true, "long": true, "float": true, "double": true, "bytes": true, "string": true}

// typ walks a type; top, when non-nil, receives the fields of this record.
func (p *schemaParser) typ(t any, ns string, top map[string]wtype) (wtype, error) {
	switch v := t.(type) {
	case string:
		if primitives[v] {
			return wtype{kind: v}, nil
		}
		if w, ok := p.named[v]; ok {
			return w, nil
		}
		if w, ok := p.named[ns+"."+v]; ok {
			return w, nil
		}
		return wtype{}, fmt.Errorf("unknown type %q", v)
	case []any:
		u := wtype{kind: "union"}
		for _, b := range v {
			w, err := p.typ(b, ns, nil)
			if err != nil {
				return wtype{}, err
			}
			u.branches = append(u.branches, w)
		}
		return u, nil
	case map[string]any:
		name, _ := v["type"].(string)
		if name == "" {
			return p.typ(v["type"], ns, nil)
		}
		switch name {
		case "record", "error", "enum", "fixed":
			full, nsNext := p.fullName(v, ns)
			w := wtype{kind: name}
			if name == "error" {
				w.kind = "record"
			}
			if name == "enum" {
				syms, _ := v["symbols"].([]any)
				for _, s := range syms {
					str, _ := s.(string)
					w.symbols = append(w.symbols, str)
				}
			}
			p.register(full, w)
			if w.kind == "record" {
				fields, _ := v["fields"].([]any)
				for _, f := range fields {
					fo, ok := f.(map[string]any)
					if !ok {
						return wtype{}, errors.New("record field is not an object")
					}
					fw, err := p.typ(fo["type"], nsNext, nil)
					if err != nil {
						return wtype{}, err
					}
					if top != nil {
						fname, _ := fo["name"].(string)
						top[fname] = fw
					}
				}
			}
			return w, nil
		case "array":
			if _, err := p.typ(v["items"], ns, nil); err != nil {
				return wtype{}, err
			}
			return wtype{kind: "array"}, nil
		case "map":
			if _, err := p.typ(v["values"], ns, nil); err != nil {
				return wtype{}, err
			}
			return wtype{kind: "map"}, nil
		}
		return p.typ(name, ns, nil) // primitive with attributes, e.g. logicalType
	}
	return wtype{}, fmt.Errorf("invalid type %v", t)
}

// fullName returns the full name of a named type and the namespace its
// children inherit.
func (p *schemaParser) fullName(v map[string]any, ns string) (string, string) {
	name, _ := v["name"].(string)
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name, name[:i]
	}
	if n, ok := v["namespace"].(string); ok {
		ns = n
	}
	if ns == "" {
		return name, ""
	}
	return ns + "." + name, ns
}

func (p *schemaParser) register(full string, w wtype) {
	p.named[full] = w
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		if _, ok := p.named[full[i+1:]]; !ok {
			p.named[full[i+1:]] = w
		}
	}
}
