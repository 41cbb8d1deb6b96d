// # Driving a Task
//
// The caller (processor) owns the States of its partition and drives a Task
// per record:
//
//	if err := task.CheckRecord(ev, rec); err != nil { dead-letter(DLQReason(err)) }
//	if task.StartsDay(ev) { // a day change, before the record
//		stats, err := task.BeginDay(ev.EventTime, FromStates(each)) // or FromEncoded(scan)
//		for every state in SIREN order: if task.Evaluate(st, &dec) { emit(dec) }
//		task.EndDay()
//	}
//	changed, err := task.Step(st, ev, &dec) // err: dead-letter, state unchanged
//	if changed { emit(dec) }
//
// Persist AppendBinary of every state touched (Step, or Evaluate returning
// true: AppendHeader suffices, see MergeHeader) and AppendMeta of the task
// with the offsets. A partition too big for memory calls KeepNextDay(true)
// so that the next BeginDay need not scan the store. Memory runs this whole
// sequence over in-memory states.
//
// # Choices where the spec is silent
//
//   - Before its first event a task has no stream time; StartsDay is false
//     for the first event (no SIREN exists yet) and Step sets the stream time.
//     Lateness is not checked before the first event.
//   - Check order: SIREN, then fields, then lateness; CheckRecord then checks
//     the record key, then the future. Late means event_time < stream time -
//     AllowedLatenessMs (an event exactly at the limit is accepted). Future
//     means event_time > record timestamp + MaxFutureSkewMs (not checked
//     when the skew is 0 or the timestamp unknown).
//   - Dedup is per SIREN on a 64-bit FNV-1a hash of event_id (false-positive
//     odds ~n²/2⁶⁴), remembered for AllowedLateness + 1 day by event day:
//     anything older is late anyway. Claims are deduplicated by event_id
//     only, not claim_id. The memory is bounded (see dedup.go): up to
//     DedupExact (2048) ids of the window exactly — every SIREN below that
//     is deduplicated exactly — and beyond, the older ids in one 16 KiB
//     Bloom filter per day (DedupFilterCap = 8192 ids each). For a SIREN
//     over the budget a new event_id is a false positive, dead-lettered as
//     "duplicate" although it is not, with probability ≤ 0.05 % per full
//     day filter (≤ 0.45 % with all nine days of the default window full);
//     ids past a full filter are forgotten (a re-sent copy is applied
//     again), the most recent DedupExact/2 never are. Deterministic: the
//     same events give the same bytes. A hot SIREN with 200k events in a
//     day encodes to ~28 KB.
//   - Every other per-SIREN list is capped too (bounds.go: MaxOpenOutages
//     128, MaxResolvedOutages 1024, MaxPostalCodes 256, MaxClaims 2048,
//     MaxWorkforceObservations 1024; usage is one bucket per day of
//     UsageDays). At a cap the least relevant entry goes, deterministically,
//     and Task.Bounds counts the hit with the SIREN.
//   - A RESOLVED takes its start from started_at when present, else from the
//     open STARTED; neither ⇒ ErrInvalidEvent, and so is a resolution before
//     its start. A STARTED or RESOLVED for an outage already resolved (and
//     still retained, 365 days) is a no-op; a repeated STARTED keeps the
//     earliest start. Open outages never expire (but at most
//     MaxOpenOutages: the one open the longest goes first).
//   - An empty postal code is not a site. Postal codes are remembered 90 days
//     after they were last seen (usage and outage events alike), at most
//     MaxPostalCodes of them: distinct_postal_codes_90d saturates there.
//   - Usage buckets are per UTC day of event_time: bytes_up + bytes_down
//     (saturating) and the max active_sims. A usage record older than the
//     usage retention (only possible when lateness exceeds it) still counts
//     for the first usage day and postal codes, not for traffic.
//   - traffic_velocity is rounded to 1e-9 so that exactly 20 % growth
//     compares >= 0.20 (binary floating point gives 0.19999999999999996).
//     Recovery hours are summed in ms and divided once.
//   - digital_intensity uses the latest profile's workforce when known and
//     > 0 (workforce 0 falls back to SIMs: no division by zero); else the
//     max active_sims over D-29..D when > 0; else null. A known workforce
//     with no traffic gives intensity 0 (scored).
//   - intensity_percentile = 100 * #(snapshot values strictly below x) / n:
//     the top SIREN of 100 gets 99, SIREN rank i of 100 gets i. The
//     snapshot is exact up to SnapshotMax (1024) values, above that a rank
//     sample (error < 0.1 percentile points). It is null on a stream day
//     without one (the first day, or a day entered by Step without BeginDay)
//     and when n < Rules.MinPopulation.
//   - Workforce flat test: the known workforce values in effect during days
//     D-59..D (the observation in effect at the window start plus every later
//     one, by event_time); flat when (max-min)/min <= tolerance. A latest
//     profile with null workforce counts as unknown (flat).
//   - Hysteresis is uniform: enter when metric >= enter, stay while
//     metric >= exit. SLA_SENSITIVE uses enter = exit = 1 ("leaves at 0").
//   - Reasons: one per held segment (CHURN_RISK: one per satisfied side),
//     sorted by segment then metric. Threshold = enter if that segment was
//     just added, exit if kept; CHURN_RISK's side reasons use the threshold
//     the side's own segment applied. HIDDEN_GROWTH adds
//     workforce_change_60d (threshold = tolerance) when workforce is known.
//     View uses exit thresholds and leaves out reasons whose metric became
//     null.
//   - Decision.EventID = "{siren}-{seq}"; EventTime = stream time; building
//     the EventID is the only allocation of a decision once Reasons/Offers
//     have capacity.
//   - State encoding carries no SIREN (it is the store key). Pruning happens
//     in Step only, once per stream day per SIREN; it is idempotent, so the
//     bytes of a SIREN depend only on the task's event sequence (tested:
//     replays and restarts from encoded state give identical bytes).
//   - Config values below what the metrics need are raised: UsageDays >= 60,
//     HistoryDays >= 365.
package engine
