package processor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
)

// TestPartialListOffsetsErrorsRestartTheTask: the changelog partition of
// one task answers ListOffsets with a partition error ("[-1] Unknown", as
// kafka-go reports a failed sub-request after a broker restart) more often
// than the task retries it. The task is restarted from its stored state
// instead of stopping the run, the other task goes on meanwhile, and the
// output equals an undisturbed run.
func TestPartialListOffsetsErrorsRestartTheTask(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the task's retries (~15 s)")
	}
	const parts = 2
	const changelog = "restart-changelog"
	c, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts, changelog)
	data := faultData(t, gen.Config{SIRENs: 40, Days: 20, Seed: 8, BadRate: 0.02}, 2)
	testkit.Produce(t, brokers, data[0]...)

	// More failed answers than one load retries (10 calls, each split by
	// kafka-go into a first- and a last-offset request): the first load of
	// partition 0 fails, the restarted one gets through.
	const failures = 2*10 + 3
	f := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: changelog, Partitions: []int32{0}, Count: failures})
	cfg := testkit.Config(t, brokers, t.TempDir())
	cfg.Topics.Changelog = changelog
	core, logs := observer.New(zap.WarnLevel)
	cfg.Logger = zap.New(zapcore.NewTee(core, cfg.Logger.Core()))
	h := testkit.Start(t, cfg)
	testkit.Produce(t, brokers, data[1]...)
	h.WaitStored(t, brokers, parts, 90*time.Second)
	if f.Hits() != failures {
		t.Fatalf("the fault answered %d ListOffsets, want %d", f.Hits(), failures)
	}
	h.Stop(t)
	restarts := logs.FilterMessage("task failed on a broker fault; restarting it from its last commit").All()
	if len(restarts) != 1 {
		t.Fatalf("%d task restarts logged, want 1", len(restarts))
	}
	t.Logf("WARN %s %v", restarts[0].Message, restarts[0].ContextMap())

	refChanges, refDLQ := undisturbed(t, brokers)
	sameOutput(t, brokers, refChanges, refDLQ)
}

// TestConfigurationErrorStopsTheRun: an authorization failure is not
// retried: Run returns at once with an error saying it is a configuration
// error.
func TestConfigurationErrorStopsTheRun(t *testing.T) {
	const parts = 2
	c, brokers := testkit.Cluster(t, parts)
	testkit.CreateTopics(t, brokers, parts)
	testkit.Produce(t, brokers, testkit.Generated(t, gen.Config{SIRENs: 10, Days: 3, Seed: 2})...)
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: "usage", Err: kerr.TopicAuthorizationFailed, Count: -1})
	cfg := testkit.Config(t, brokers, t.TempDir())
	defer cfg.Store.Close()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	err = p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "configuration error") || !strings.Contains(err.Error(), "Topic Authorization Failed") {
		t.Fatalf("Run = %v, want a configuration error naming the authorization failure", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s to stop", d)
	}
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestFaultDeadlineStopsTheRun: a fault that outlasts Config.FaultDeadline
// (here: the group coordinator never available) stops the run with
// ErrFaultDeadline and what to do; a negative deadline retries on.
func TestFaultDeadlineStopsTheRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Duration
	}{{"2s", 2 * time.Second}, {"forever", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			const parts = 2
			c, brokers := testkit.Cluster(t, parts)
			testkit.CreateTopics(t, brokers, parts)
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.FindCoordinator}, Err: kerr.CoordinatorNotAvailable, Count: -1})
			cfg := testkit.Config(t, brokers, t.TempDir())
			cfg.FaultDeadline = tc.deadline
			defer cfg.Store.Close()
			p, err := processor.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer time.AfterFunc(12*time.Second, cancel).Stop()
			start := time.Now()
			err = p.Run(ctx)
			d := time.Since(start)
			if tc.deadline < 0 {
				if err != nil || d < 11*time.Second {
					t.Fatalf("with no deadline Run = %v after %s, want nil when the context ends", err, d)
				}
				return
			}
			if !errors.Is(err, processor.ErrFaultDeadline) || !strings.Contains(err.Error(), "consumer group") || !strings.Contains(err.Error(), "check that the brokers") {
				t.Fatalf("Run = %v after %s, want ErrFaultDeadline naming the consumer group and what to do", err, d)
			}
			if d > 8*time.Second {
				t.Errorf("a 2 s deadline took %s", d)
			}
			t.Logf("after %s: %v", d.Round(time.Millisecond), err)
		})
	}
}
