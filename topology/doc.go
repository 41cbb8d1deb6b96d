// Package topology declares sirenstream's processing graph as data, once:
// the inputs in merge order, the outputs and what is routed to each, the
// state changelog, and the configs topics are created with. The processor
// creates and reads topics from it, the CLI derives its --topic-* flags from
// it, and the generator, load tools and test kit take their topic names from
// it. It holds no Kafka client code.
//
// The data path of one partition task p, in commit order:
//
//	inputs    profiles   outages   claims   usage    offer-responses   contract-events   sirenstream-ticks   co-partitioned, key = SIREN
//	          kind 0     kind 1    kind 2   kind 3   kind 4            kind 5            kind 6              schema ids 4, 2, 3, 1, 5, 6, 7
//	          (sirenstream-ticks: clock ticks run writes for quiet partitions, ticker.go in processor)
//	   │ partition p of every input, each record decoded as it is fetched
//	   ▼
//	merge     by (event_time, kind, offset); undecodable records go first
//	   │
//	   ▼
//	check     undecodable, invalid, duplicate, late, future ─────┐
//	   │ good                                                    │ raw copy +
//	   ▼                                                         │ error headers
//	engine    SIREN state ← event; stream day changed → sweep p  │
//	   │ segment or offer set changed → decision (+ eligibility)  │
//	   │ sweep: closed eligibilities → outcomes; every SIREN → daily│
//	   ▼                                                         ▼
//	commit of a batch (every N records or T ms), strictly in this order:
//	   0. merge plan saved (Badger) when the batch has outputs: the input
//	      of each record taken, so a restart takes them in the same order
//	   1. outputs written and acknowledged (acks=all):
//	        segment-changes   every decision                    (schema 101)
//	        churn-alerts      the same bytes, when CHURN_RISK is added
//	        sirenstream-dlq   the dead letters above
//	        offer-outcomes    each eligibility whose windows closed (schema 102)
//	        siren-daily       every SIREN at each day change    (schema 104)
//	        uplift            the aggregator's rows, key = offer (schema 103)
//	        sirenstream-uplift-repartition  every outcome again, key = offer:
//	                          the aggregator of partition p (aggregator.go in
//	                          processor) folds partition p into uplift rows
//	   2. changelog <group>-changelog (compacted): the batch's dirty states,
//	      then a checkpoint record (input offsets + task meta + the group)
//	   3. one Badger transaction: dirty states + next input offsets
//	      (+ changelog position) + task meta
//	   4. consumer group offsets of the inputs (lag tools only: restart
//	      trusts Badger)
//
// A crash before 3 re-processes the batch and re-emits the same bytes
// (at-least-once delivery, exactly-once state). A replay writes its own
// output topics, no changelog and no group offsets.
package topology
