// Package schemas owns sirenstream's Avro contract: the embedded *.avsc files
// (spec §2–§3), the Confluent wire format (0x00 + big-endian uint32 schema id +
// Avro binary) and the schema-registry client.
//
// In the data path it sits between the Kafka consumer and the engine: the
// processor hands each record value to Codec.Decode, which fills an
// engine.Event, and hands each engine.Decision to AppendSegmentChange, which
// produces the bytes of the segment-changes / churn-alerts value.
//
// Records written with the project's own schema (fixed ids 1–4, or a registry
// schema with the same Parsing Canonical Form) are decoded by a hand-written
// decoder: one allocation per record, no reflection. Other writer schemas are
// decoded with goavro and resolved by field name against the reader schema
// (goavro has no reader/writer resolution of its own).
package schemas

import (
	"embed"
	"math/bits"

	"github.com/sirenstream/sirenstream/engine"
)

// Files holds the embedded Avro schemas: usage.avsc, outage.avsc, claim.avsc,
// profile.avsc and segment_change.avsc.
//
//go:embed *.avsc
var Files embed.FS

// Fixed schema ids (spec §2–§3). Without a schema registry these are the only
// ids Decode accepts; the encoders always write them.
const (
	IDUsage         = 1
	IDOutage        = 2
	IDClaim         = 3
	IDProfile       = 4
	IDSegmentChange = 101
	// Outcomes (spec §8).
	IDOfferResponse = 5
	IDContractEvent = 6
	// IDTick frames the clock ticks of quiet partitions (tick.avsc).
	IDTick         = 7
	IDOfferOutcome = 102
	IDUplift       = 103
	IDSirenDaily   = 104
)

// fileForID maps a fixed id to its embedded file.
func fileForID(id int) string {
	switch id {
	case IDUsage:
		return "usage.avsc"
	case IDOutage:
		return "outage.avsc"
	case IDClaim:
		return "claim.avsc"
	case IDProfile:
		return "profile.avsc"
	case IDSegmentChange:
		return "segment_change.avsc"
	case IDOfferResponse:
		return "offer_response.avsc"
	case IDContractEvent:
		return "contract_event.avsc"
	case IDTick:
		return "tick.avsc"
	case IDOfferOutcome:
		return "offer_outcome.avsc"
	case IDUplift:
		return "uplift.avsc"
	case IDSirenDaily:
		return "siren_daily.avsc"
	}
	return ""
}

// Schema returns the JSON text of the embedded schema with the fixed id, and
// false for any other id. It reads the embedded file on each call: not for the
// hot path.
func Schema(id int) (string, bool) {
	name := fileForID(id)
	if name == "" {
		return "", false
	}
	b, err := Files.ReadFile(name)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// KindForID returns the input kind whose fixed schema id is id. The output id
// 101 and unknown ids return false.
func KindForID(id int) (engine.Kind, bool) {
	switch id {
	case IDUsage:
		return engine.KindUsage, true
	case IDOutage:
		return engine.KindOutage, true
	case IDClaim:
		return engine.KindClaim, true
	case IDProfile:
		return engine.KindProfile, true
	case IDOfferResponse:
		return engine.KindOfferResponse, true
	case IDContractEvent:
		return engine.KindContractEvent, true
	case IDTick:
		return engine.KindTick, true
	}
	return 0, false
}

// IDForKind returns the fixed schema id of an input kind, or 0 for an unknown
// kind.
func IDForKind(k engine.Kind) int {
	switch k {
	case engine.KindUsage:
		return IDUsage
	case engine.KindOutage:
		return IDOutage
	case engine.KindClaim:
		return IDClaim
	case engine.KindProfile:
		return IDProfile
	case engine.KindOfferResponse:
		return IDOfferResponse
	case engine.KindContractEvent:
		return IDContractEvent
	case engine.KindTick:
		return IDTick
	}
	return 0
}

// kindName is used in error messages.
func kindName(k engine.Kind) string {
	switch k {
	case engine.KindUsage:
		return "usage"
	case engine.KindOutage:
		return "outage"
	case engine.KindClaim:
		return "claim"
	case engine.KindProfile:
		return "profile"
	case engine.KindOfferResponse:
		return "offer_response"
	case engine.KindContractEvent:
		return "contract_event"
	case engine.KindTick:
		return "tick"
	}
	return "unknown"
}

// segmentNames lists the labels in bit order of engine.Segments, which is
// alphabetical: iterating bits low→high yields a sorted array (spec §3).
var segmentNames = [...]string{
	"CHURN_RISK",
	"DATA_HUNGRY",
	"HIDDEN_GROWTH",
	"MULTI_SITE",
	"RECOVERY_EXPOSED",
	"SLA_SENSITIVE",
}

// SegmentNames returns the sorted labels of the set s. Bits without a label
// (6 and 7) are ignored. It allocates the returned slice.
func SegmentNames(s engine.Segments) []string {
	out := make([]string, 0, bits.OnesCount8(uint8(s)))
	for i, n := range segmentNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// segmentsFromNames is the inverse of SegmentNames; unknown labels report false.
func segmentsFromNames(names []string) (engine.Segments, bool) {
	var s engine.Segments
	for _, n := range names {
		found := false
		for i, l := range segmentNames {
			if l == n {
				s |= 1 << i
				found = true
				break
			}
		}
		if !found {
			return s, false
		}
	}
	return s, true
}
