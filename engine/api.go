// Package engine is sirenstream's pure domain core: per-SIREN rolling windows,
// the metrics of spec §5 and the segment rules of spec §6. It performs no I/O
// (no Kafka, no Badger, no wall clock). Like etcd's raft, inputs go in
// (Task.CheckRecord, Task.Step; on a new stream day Task.BeginDay,
// Task.Evaluate, Task.EndDay) and outputs come out (Decision, or an error
// whose DLQReason is the dead-letter reason); the caller applies them.
// Memory is the whole sequence over in-memory states.
//
// CONTRACT FILE: the exported names in this file are what processor/ and
// state/ program against. Keep them stable.
package engine

import "errors"

// Kind is the input event type. Its numeric order is the tie-break order of
// the event-time merge (spec §4): profiles, outages, claims, usage.
type Kind uint8

const (
	KindProfile Kind = iota
	KindOutage
	KindClaim
	KindUsage
	// KindOfferResponse and KindContractEvent are the outcome inputs
	// (spec §8, outcome.go): after usage when event times tie.
	KindOfferResponse
	KindContractEvent
	// KindTick is a clock tick of a quiet partition (only EventTime): it
	// moves stream time like a record (Memory.Tick), touching no SIREN.
	// Last when event times tie.
	KindTick
)

// NumKinds is the number of input kinds.
const NumKinds = 7

// Channel mirrors the Avro enum Channel of offer_response.
type Channel uint8

const (
	ChannelAccountManager Channel = iota
	ChannelTelesales
	ChannelDigital
	ChannelBill
)

// ResponseStatus mirrors the Avro enum ResponseStatus of offer_response.
type ResponseStatus uint8

const (
	ResponsePresented ResponseStatus = iota
	ResponseAccepted
	ResponseRejected
	ResponseWithheld
)

// ContractType mirrors the Avro enum ContractEventType of contract_event.
type ContractType uint8

const (
	ContractPlanChange ContractType = iota
	ContractTermination
	ContractRenewal
)

// OutageStatus mirrors the Avro enum OutageStatus.
type OutageStatus uint8

const (
	OutageStarted OutageStatus = iota
	OutageResolved
)

// Event is one decoded input record: a tagged union (value type, so the hot
// path allocates nothing). Times are Unix milliseconds UTC (Avro
// timestamp-millis). Fields not used by Kind are ignored.
type Event struct {
	Kind      Kind
	EventID   string
	SIREN     string
	EventTime int64 // ms

	// usage + outage
	SiteID     string
	PostalCode string

	// usage
	BytesUp       int64
	BytesDown     int64
	ActiveSIMs    int32
	HasActiveSIMs bool

	// outage
	OutageID     string
	Status       OutageStatus
	StartedAt    int64 // ms, valid when HasStartedAt
	HasStartedAt bool

	// claim (OutageID above is the claim's outage_id when HasOutageID)
	ClaimID     string
	HasOutageID bool
	AmountCents int64

	// profile (Plan also for contract events, where HasPlan says it is
	// not null)
	Workforce    int32
	HasWorkforce bool
	Plan         string

	// offer response
	Offer            string
	SourceEventID    string
	HasSourceEventID bool
	Channel          Channel
	ResponseStatus   ResponseStatus
	ValueCents       int64

	// contract event
	ContractType ContractType
	HasPlan      bool
	MRRCents     int64
}

// Record is what the engine checks of the Kafka record an Event was decoded
// from (CheckRecord).
type Record struct {
	Key         []byte // the record key: must be the event's SIREN
	TimestampMs int64  // the record timestamp, Unix ms; 0 = unknown
}

// Sentinel errors: each carries its dead-letter reason (DLQReason(err)).
// Errors of Check, CheckRecord and Step wrap exactly one of them.
var (
	ErrInvalidSIREN = newReasonError("invalid SIREN", "invalid_siren")
	ErrLate         = newReasonError("late", "late")
	// ErrInvalidEvent: negative bytes, huge values, missing ids, a RESOLVED
	// without any start or before it...
	ErrInvalidEvent = newReasonError("invalid event", "invalid_event")
	ErrDuplicate    = newReasonError("duplicate event_id", "duplicate")
	// ErrFuture: event_time later than the record timestamp plus
	// Config.MaxFutureSkewMs (CheckRecord).
	ErrFuture = newReasonError("event time in future", "future")
	// ErrKeyMismatch: the record key is not the event's SIREN (CheckRecord).
	ErrKeyMismatch = newReasonError("record key is not the event's SIREN", "key_mismatch")
)

// ErrNeedsRepair (Config.Repair): the event belongs before events already
// applied across a day change, or beyond the allowed lateness, but inside
// retention. It is not the record's fault and no dead letter: the runtime
// re-processes the partition in event-time order (a repair) instead.
var ErrNeedsRepair = errors.New("needs a repair")

// Segments is a set of segment labels. Bits are in alphabetical label order so
// iterating bits low→high yields sorted names (spec §3: arrays sorted).
type Segments uint8

const (
	ChurnRisk       Segments = 1 << iota // "CHURN_RISK"
	DataHungry                           // "DATA_HUNGRY"
	HiddenGrowth                         // "HIDDEN_GROWTH"
	MultiSite                            // "MULTI_SITE"
	RecoveryExposed                      // "RECOVERY_EXPOSED"
	SLASensitive                         // "SLA_SENSITIVE"
)

// Metrics are the spec §5 metrics of one SIREN at the task's stream time.
// HasX=false means the Avro value is null.
type Metrics struct {
	Traffic30dBytes          int64
	TrafficPrev30dBytes      int64
	TrafficVelocity          float64
	HasTrafficVelocity       bool
	DigitalIntensity         float64
	HasDigitalIntensity      bool
	IntensityBasis           string // "workforce" | "active_sims" | "" (null)
	IntensityPercentile      float64
	HasIntensityPercentile   bool
	Workforce                int32
	HasWorkforce             bool
	Outages90d               int32
	OpenOutages              int32
	RecoveryExposureHours90d float64
	MaxRecoveryHours90d      float64
	Claims365d               int32
	ClaimAmount365dCents     int64
	DistinctPostalCodes90d   int32
	// GoldenHourBreaches90d counts the outages of recovery_exposure's window
	// whose recovery took, or has so far taken, more than one hour.
	GoldenHourBreaches90d int32
	// ClaimsPerOutage365d is claims_365d ÷ the outages of the last 365 days
	// (resolved then, or open): SLA elasticity as a rate. Null (Has false)
	// without outages.
	ClaimsPerOutage365d    float64
	HasClaimsPerOutage365d bool
	// ClaimHoursRatio365d is claims_365d per 10 hours of recovery of the
	// outages of the last 365 days. Null without outage hours.
	ClaimHoursRatio365d    float64
	HasClaimHoursRatio365d bool
}

// Reason says why a held segment holds: metric value vs the threshold applied
// (enter threshold when entering, exit threshold when kept).
type Reason struct {
	Segment   string
	Metric    string
	Value     float64
	Threshold float64
}

// Decision is a segment change (spec §3 segment_change) or, from Task.View, the
// current view of a SIREN. Slices are reused between calls by the owner of the
// Decision: copy what you keep.
type Decision struct {
	EventID      string // "{siren}-{seq}"
	SIREN        string
	Seq          int64
	EventTime    int64 // ms, stream time of the change
	Segments     Segments
	Previous     Segments
	Added        Segments
	Removed      Segments
	Metrics      Metrics
	Reasons      []Reason
	Offers       []string // in the rules' offers.priority order, most important first
	ControlGroup bool
	RulesVersion string

	// OffersAdded and OffersRemoved compare Offers with the offers of the
	// SIREN's previous event (in offers.priority order too).
	OffersAdded   []string
	OffersRemoved []string
	// Trigger is what caused the decision: TriggerInput (Step),
	// TriggerDayChange (Evaluate), TriggerRulesRollout, TriggerRepair.
	Trigger string
	// TriggerTopic is the input topic when Trigger is TriggerInput; the
	// runtime sets it (the engine does not know topic names).
	TriggerTopic string
}

// Triggers of a Decision (segment_change.trigger).
const (
	TriggerInput        = "INPUT"
	TriggerDayChange    = "DAY_CHANGE"
	TriggerTimer        = "TIMER"
	TriggerRulesRollout = "RULES_ROLLOUT"
	TriggerRepair       = "REPAIR"
)
