package processor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/topology"
)

// EnsureTopics checks the input topics are co-partitioned, creates the
// missing topics of the topology's creation plan (Topics.CreatePlan: inputs,
// outputs, extra names as outputs, the compacted changelog) with the inputs'
// partition count and returns that count.
func (p *Processor) EnsureTopics(ctx context.Context, extra ...string) (int, error) {
	return p.ensureTopics(ctx, p.cfg.Topics, extra...)
}

func (p *Processor) ensureTopics(ctx context.Context, t Topics, extra ...string) (int, error) {
	n, err := EnsureTopics(ctx, p.cfg.Kafka, t, p.cfg.Partitions, p.cfg.ReplicationFactor, p.log, extra...)
	if err == nil {
		p.mu.Lock()
		p.partitions = n
		p.mu.Unlock()
	}
	return n, err
}

// checkInputs checks t's input topics (co-partitioned) and returns their
// partition count, creating nothing but a missing input.
func (p *Processor) checkInputs(ctx context.Context, t Topics) (int, error) {
	t = t.WithDefaults(DefaultGroup)
	var plan []topology.NewTopic
	for _, nt := range t.CreatePlan() {
		if nt.Role == topology.RoleInput {
			plan = append(plan, nt)
		}
	}
	client := &kafka.Client{Addr: kafka.TCP(p.cfg.Kafka.Brokers...), Timeout: 15 * time.Second, Transport: p.cfg.Kafka.transport()}
	n, err := ensureTopics(ctx, client, p.log, plan, p.cfg.Partitions, max(p.cfg.ReplicationFactor, 1))
	if err == nil {
		p.mu.Lock()
		p.partitions = n
		p.mu.Unlock()
	}
	return n, err
}

// Partitions returns the input partition count (0 before Run/Replay started).
func (p *Processor) Partitions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.partitions
}

// EnsureTopics is Processor.EnsureTopics for tools that have no Processor
// (generate, bench). partitions 0 means "as existing, else 6". An empty
// t.Changelog is the default group's (topology.DefaultChangelog).
func EnsureTopics(ctx context.Context, k Kafka, t Topics, partitions, rf int, log *zap.Logger, extra ...string) (int, error) {
	t = t.WithDefaults(DefaultGroup)
	if k.ClientID == "" {
		k.ClientID = "sirenstream"
	}
	if rf == 0 {
		rf = 1
	}
	if log == nil {
		log = zap.NewNop()
	}
	client := &kafka.Client{Addr: kafka.TCP(k.Brokers...), Timeout: 15 * time.Second, Transport: k.transport()}
	n, err := ensureTopics(ctx, client, log, t.CreatePlan(extra...), partitions, rf)
	if err != nil && k.SASL != nil && !errors.Is(err, kafka.SASLAuthenticationFailed) {
		// Some brokers answer bad credentials by closing the connection: say
		// what to check, never the credentials themselves.
		err = fmt.Errorf("%w (SASL %s is configured: check the username and password if the broker is up)", err, k.SASL.Name())
	}
	return n, err
}

func ensureTopics(ctx context.Context, client *kafka.Client, log *zap.Logger, plan []topology.NewTopic, want, rf int) (int, error) {
	var meta *kafka.MetadataResponse
	var err error
	for attempt := 0; ; attempt++ {
		meta, err = client.Metadata(ctx, &kafka.MetadataRequest{})
		if err == nil {
			break
		}
		if errors.Is(err, kafka.SASLAuthenticationFailed) {
			// Bad credentials do not heal by retrying.
			return 0, fmt.Errorf("kafka metadata from %s: %w (check the SASL mechanism, username and password)", client.Addr, err)
		}
		if ctx.Err() != nil || attempt >= 10 {
			return 0, fmt.Errorf("kafka metadata from %s: %w", client.Addr, err)
		}
		sleepCtx(ctx, backoff(attempt))
	}
	counts := map[string]int{}
	for _, t := range meta.Topics {
		if t.Error == nil {
			counts[t.Name] = len(t.Partitions)
		}
	}
	n := 0
	var have []string
	for _, nt := range plan {
		if nt.Role != topology.RoleInput {
			continue
		}
		t := nt.Name
		if c, ok := counts[t]; ok {
			have = append(have, fmt.Sprintf("%s=%d", t, c))
			if n == 0 {
				n = c
			} else if c != n {
				return 0, fmt.Errorf("input topics are not co-partitioned (%v): usage, outages, claims and profiles must have the same partition count, keyed by SIREN with the murmur2 partitioner", have)
			}
		}
	}
	if n == 0 {
		n = want
		if n == 0 {
			n = 6
		}
	} else if want != 0 && want != n {
		return 0, fmt.Errorf("configured partitions %d differ from the existing input topics (%v)", want, have)
	}
	var create []kafka.TopicConfig
	for _, nt := range plan {
		if _, ok := counts[nt.Name]; !ok {
			tc := kafka.TopicConfig{Topic: nt.Name, NumPartitions: n, ReplicationFactor: rf}
			for _, c := range nt.Configs {
				tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: c.Name, ConfigValue: c.Value})
			}
			create = append(create, tc)
		}
	}
	for _, nt := range plan {
		if cn, ok := counts[nt.Name]; ok && nt.Role == topology.RoleChangelog && cn != n {
			return 0, fmt.Errorf("changelog topic %s has %d partitions, the inputs %d: it must have one partition per input partition", nt.Name, cn, n)
		}
	}
	if len(create) > 0 {
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: create})
		if err != nil {
			return 0, fmt.Errorf("create topics: %w", err)
		}
		for name, e := range resp.Errors {
			if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
				return 0, fmt.Errorf("create topic %s: %w", name, e)
			}
		}
		names := make([]string, 0, len(create))
		for _, c := range create {
			names = append(names, c.Topic)
		}
		log.Info("created topics", zap.Strings("topics", names), zap.Int("partitions", n))
		// Wait until the metadata shows them, so readers find leaders.
		for attempt := 0; attempt < 50; attempt++ {
			m, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
			if err == nil {
				ok := true
				for _, t := range m.Topics {
					if t.Error != nil || len(t.Partitions) != n {
						ok = false
					}
				}
				if ok && len(m.Topics) == len(names) {
					break
				}
			}
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}
	return n, nil
}
