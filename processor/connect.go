package processor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// WaitForBrokers returns nil once a broker of k answers a metadata request.
// A broker or network fault (connection refused, DNS, timeout) is retried
// with backoff — 1 s doubling to 30 s — and logged at each attempt, for at
// most deadline (negative: forever), like faults during a run; then the
// error wraps ErrFaultDeadline. A configuration error (TLS, SASL,
// authorization) or ctx ending returns at once. Call it before opening the
// state store, so that an unreachable cluster leaves no state directory.
func WaitForBrokers(ctx context.Context, k Kafka, deadline time.Duration, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	tr := k.transport()
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Timeout: 10 * time.Second, Transport: tr}
	start := time.Now()
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		_, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
		if err == nil {
			if attempt > 1 {
				log.Info("brokers reachable", zap.Strings("brokers", k.Brokers), zap.Int("attempts", attempt),
					zap.Duration("after", time.Since(start).Round(time.Millisecond)))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if classify(err) != faultTransient {
			return fmt.Errorf("brokers %s: %w", strings.Join(k.Brokers, ","), err)
		}
		failing := time.Since(start)
		if deadline >= 0 && failing >= deadline {
			return fmt.Errorf("%w: brokers %s unreachable for %s (%d attempts): %w",
				ErrFaultDeadline, strings.Join(k.Brokers, ","), failing.Round(time.Second), attempt, err)
		}
		wait := backoff
		if deadline >= 0 {
			wait = min(wait, deadline-failing)
		}
		log.Warn("brokers unreachable, retrying", zap.Strings("brokers", k.Brokers), zap.Int("attempt", attempt),
			zap.Duration("retry_in", wait.Round(time.Millisecond)), zap.Duration("failing_for", failing.Round(time.Millisecond)),
			zap.Duration("gives_up_after", deadline), zap.Error(err))
		if sleepCtx(ctx, wait); ctx.Err() != nil {
			return ctx.Err()
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// logPreviousMembers says, before joining, that the group still has
// members: after a kill -9 the join waits until the killed member's session
// expires, which otherwise looks like a hang. Best effort: a failure to
// describe the group logs nothing.
func (p *Processor) logPreviousMembers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := p.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{p.cfg.Group}})
	if err != nil || len(resp.Groups) == 0 || resp.Groups[0].Error != nil || len(resp.Groups[0].Members) == 0 {
		return
	}
	g := resp.Groups[0]
	var members []string
	for _, m := range g.Members {
		members = append(members, m.ClientID+"@"+strings.TrimPrefix(m.ClientHost, "/"))
	}
	sort.Strings(members)
	p.log.Info("the consumer group has members from before this start: if one is a previous instance that did not leave (kill -9, crash), "+
		"waiting for the previous member's session to expire before partitions are assigned, up to the session timeout",
		zap.String("group", p.cfg.Group), zap.String("group_state", g.GroupState), zap.Strings("members", members),
		zap.Duration("up_to", p.cfg.SessionTimeout))
}
