package processor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sirenstream/sirenstream/state"
)

// TestTaskErrorsAreClassifiedByWhatRestartingCanFix: broker and network
// faults restart the task; configuration and storage errors, and errors
// that are neither, stop the run.
func TestTaskErrorsAreClassifiedByWhatRestartingCanFix(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name string
		err  error
		want faultClass
	}{
		{"a partial ListOffsets answer ([-1] Unknown) is transient",
			fmt.Errorf("partition 2: list offsets sirenstream-changelog/2: %w", kafka.Unknown), faultTransient},
		{"connection refused (broker down) is transient",
			fmt.Errorf("partition 0: list offsets: kafka.(*Client).ListOffsets: failed to dial: %w", refused), faultTransient},
		{"connection reset is transient", fmt.Errorf("read: %w", syscall.ECONNRESET), faultTransient},
		{"EOF (broker closed the connection) is transient", fmt.Errorf("changelog x/1: %w", io.EOF), faultTransient},
		{"an unexpected EOF is transient", io.ErrUnexpectedEOF, faultTransient},
		{"an ended generation is transient", fmt.Errorf("commit: %w", kafka.ErrGenerationEnded), faultTransient},
		{"not coordinator is transient", kafka.NotCoordinatorForGroup, faultTransient},
		{"a leader change is transient", fmt.Errorf("produce: %w", kafka.NotLeaderForPartition), faultTransient},
		{"request timed out is transient", kafka.RequestTimedOut, faultTransient},
		{"a request deadline is transient", fmt.Errorf("write 3 outputs: %w (state not committed)", context.DeadlineExceeded), faultTransient},
		{"a partition missing from an answer is transient", fmt.Errorf("list offsets usage/1: %w", errPartitionMissing), faultTransient},
		{"write errors of network faults are transient",
			fmt.Errorf("partition 1: write 2 outputs: %w", kafka.WriteErrors{nil, refused, kafka.LeaderNotAvailable}), faultTransient},
		{"joined transient errors are transient", errors.Join(io.EOF, kafka.Unknown), faultTransient},

		{"a topic authorization failure is configuration",
			fmt.Errorf("list offsets usage/0: %w", kafka.TopicAuthorizationFailed), faultConfig},
		{"a SASL authentication failure is configuration", kafka.SASLAuthenticationFailed, faultConfig},
		{"an untrusted broker certificate is configuration",
			&net.OpError{Op: "remote error", Err: x509.UnknownAuthorityError{}}, faultConfig},
		{"an error marked asConfig is configuration",
			fmt.Errorf("partition 3: %w", asConfig(errors.New("changelog has 4 partitions, the inputs 6"))), faultConfig},
		{"another group's changelog is configuration",
			fmt.Errorf("partition 1: restore: %w", ErrOtherGroup), faultConfig},
		{"a record above the topic's max.message.bytes is configuration",
			fmt.Errorf("changelog c/0: state of about 2000000 bytes exceeds 1048527 bytes: %w", fmt.Errorf("%w: %w", errRecordTooLarge, kafka.MessageSizeTooLarge)), faultConfig},
		{"configuration wins over a transient fault", errors.Join(io.EOF, kafka.GroupAuthorizationFailed), faultConfig},

		{"corrupt state is storage", fmt.Errorf("load checkpoint: %w", state.ErrCorrupt), faultStorage},
		{"a full disk is storage", fmt.Errorf("commit state: %w", state.ErrNoSpace), faultStorage},
		{"an I/O error is storage", &os.PathError{Op: "write", Path: "000001.vlog", Err: syscall.EIO}, faultStorage},

		{"an unrecognised error is fatal", errors.New("decode meta: bad version"), faultUnknown},
		{"an unrecognised error joined to a transient one is fatal", errors.Join(io.EOF, errors.New("boom")), faultUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

// TestFaultClockExpiresOnceAfterTheDeadline: a part failing for longer
// than the deadline expires the run once, with ErrFaultDeadline and what
// failed; a success restarts the clock; faults of partitions no longer
// owned are forgotten; a negative deadline never expires.
func TestFaultClockExpiresOnceAfterTheDeadline(t *testing.T) {
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	var causes []error
	c := newFaultClock(time.Minute, func(err error) { causes = append(causes, err) })
	c.now = func() time.Time { return now }

	c.failed(partitionKey(1), io.EOF)
	now = now.Add(50 * time.Second)
	c.ok(partitionKey(1)) // it loaded again: the fault is over
	c.failed(partitionKey(1), io.EOF)
	c.failed(partitionKey(2), kafka.Unknown)
	now = now.Add(50 * time.Second)
	if d := c.failed(partitionKey(1), io.EOF); d != 50*time.Second || len(causes) != 0 {
		t.Fatalf("after a success the clock restarts: failing %s, %d expiries", d, len(causes))
	}
	c.retain([]int32{1}) // partition 2 moved to another member
	c.failed("consumer group", io.EOF)
	now = now.Add(11 * time.Second)
	c.failed(partitionKey(2), kafka.Unknown) // a new fault, not 61 s old
	if len(causes) != 0 {
		t.Fatalf("expired early: %v", causes)
	}
	c.failed(partitionKey(1), io.EOF) // 61 s
	c.failed(partitionKey(1), io.EOF)
	if len(causes) != 1 || !errors.Is(causes[0], ErrFaultDeadline) {
		t.Fatalf("want one expiry with ErrFaultDeadline, got %v", causes)
	}
	t.Logf("expiry: %v", causes[0])
	if got := c.failing(); fmt.Sprint(got) != "[consumer group partition 1 partition 2]" {
		t.Errorf("failing = %v", got)
	}

	forever := newFaultClock(-1, func(err error) { t.Fatalf("a negative deadline expired: %v", err) })
	forever.now = func() time.Time { return now }
	forever.failed("consumer group", io.EOF)
	now = now.Add(24 * time.Hour)
	forever.failed("consumer group", io.EOF)
}

// TestListOffsetsRetriesPartitionErrors: a ListOffsets answer whose
// partition carries an error (kafka-go's report of a failed sub-request,
// as after a broker restart) is retried like a failed call; an
// authorization error is returned at once.
func TestListOffsetsRetriesPartitionErrors(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "usage", "outages"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := &kafka.Client{Addr: kafka.TCP(c.ListenAddrs()...), Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	f := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: "outages", Partitions: []int32{1}, Count: 3})
	first, last, err := listOffsets(ctx, client, []string{"usage", "outages"}, 1)
	if err != nil {
		t.Fatalf("listOffsets with 3 partition errors: %v", err)
	}
	if f.Hits() != 3 || len(first) != 2 || len(last) != 2 {
		t.Fatalf("fault hit %d times (want 3), first %v last %v", f.Hits(), first, last)
	}

	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: "usage", Err: kerr.TopicAuthorizationFailed, Count: -1})
	start := time.Now()
	_, _, err = listOffsets(ctx, client, []string{"usage", "outages"}, 0)
	if classify(err) != faultConfig || time.Since(start) > 2*time.Second {
		t.Fatalf("an authorization error: %v (%s) after %s, want a configuration error at once", err, classify(err), time.Since(start))
	}
}
