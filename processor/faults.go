package processor

// Which faults a running processor survives, and for how long.
//
// A broker restart, a leader change, a partial error inside a
// multi-partition answer or an ended group generation is transient: the
// task that met it is restarted from its stored state (its last commit),
// with backoff and a WARN line, while the rest of the processor goes on.
// Errors that restarting cannot fix — configuration (credentials,
// permissions, invalid topics) and storage (Badger) — stop the run at once.
// So do errors that are neither a broker nor a network fault: restarting
// a task over an error the processor does not understand would hide it.
// A transient fault that lasts longer than Config.FaultDeadline stops the
// run too, with ErrFaultDeadline.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/sirenstream/sirenstream/state"
)

// faultClass says what a task error means for the run.
type faultClass int

const (
	// faultTransient: a broker or network fault; restart the task.
	faultTransient faultClass = iota
	// faultUnknown: not recognised as a broker or network fault; fatal.
	faultUnknown
	// faultStorage: the state store failed; fatal.
	faultStorage
	// faultConfig: restarting cannot fix it; fatal.
	faultConfig
)

func (c faultClass) String() string {
	return [...]string{"transient", "unknown", "storage", "configuration"}[c]
}

// errConfig marks an error as a configuration error (asConfig): restarting
// cannot fix it, so the run stops at once.
var errConfig = errors.New("configuration error")

// asConfig marks err as a configuration error without changing its text.
func asConfig(err error) error {
	if err == nil {
		return nil
	}
	return configErr{err}
}

type configErr struct{ error }

func (e configErr) Unwrap() error        { return e.error }
func (e configErr) Is(target error) bool { return target == errConfig }

// errPartitionMissing: a broker answered without the partition asked for
// (a broker that just restarted may not know it yet).
var errPartitionMissing = errors.New("partition missing from the answer")

// classify sorts a task error. Configuration wins over storage, which wins
// over the rest; an error is transient only when every error it joins is a
// broker or network fault.
func classify(err error) faultClass {
	switch {
	case isConfig(err):
		return faultConfig
	case isStorage(err):
		return faultStorage
	}
	return walkTransient(err)
}

func isConfig(err error) bool {
	var ke kafka.Error
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	return errors.Is(err, errConfig) || errors.Is(err, ErrOtherGroup) || errors.Is(err, errRecordTooLarge) ||
		(errors.As(err, &ke) && configCodes[ke]) ||
		errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &certErr) ||
		errors.As(err, &verifyErr) || errors.As(err, &recordErr)
}

// configCodes are the Kafka error codes that retrying cannot fix.
var configCodes = map[kafka.Error]bool{
	kafka.TopicAuthorizationFailed:           true,
	kafka.GroupAuthorizationFailed:           true,
	kafka.ClusterAuthorizationFailed:         true,
	kafka.TransactionalIDAuthorizationFailed: true,
	kafka.DelegationTokenAuthorizationFailed: true,
	kafka.BrokerAuthorizationFailed:          true,
	kafka.SASLAuthenticationFailed:           true,
	kafka.UnsupportedSASLMechanism:           true,
	kafka.IllegalSASLState:                   true,
	kafka.SecurityDisabled:                   true,
	kafka.InvalidTopic:                       true,
	kafka.InvalidPartitionNumber:             true,
	kafka.InvalidReplicationFactor:           true,
	kafka.InvalidReplicaAssignment:           true,
	kafka.InvalidConfiguration:               true,
	kafka.InvalidRequiredAcks:                true,
	kafka.InvalidGroupId:                     true,
	kafka.InvalidSessionTimeout:              true,
	kafka.UnsupportedVersion:                 true,
	kafka.UnsupportedForMessageFormat:        true,
	kafka.UnsupportedCompressionType:         true,
	kafka.PolicyViolation:                    true,
	kafka.TopicDeletionDisabled:              true,
}

func isStorage(err error) bool {
	var pathErr *fs.PathError
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EIO, syscall.ENOSPC, syscall.EROFS, syscall.EDQUOT:
			return true
		}
	}
	return errors.Is(err, state.ErrCorrupt) || errors.Is(err, state.ErrNoSpace) ||
		errors.Is(err, state.ErrLocked) || errors.Is(err, state.ErrReadOnly) ||
		errors.Is(err, state.ErrTxnTooBig) || errors.As(err, &pathErr)
}

// walkTransient is faultTransient when every leaf of err's tree is (or is
// wrapped by) a broker or network fault, faultUnknown otherwise.
func walkTransient(err error) faultClass {
	if err == nil || transientNode(err) {
		return faultTransient
	}
	switch x := err.(type) {
	case kafka.WriteErrors: // per message, nil for those written
		for _, e := range x {
			if e != nil && walkTransient(e) != faultTransient {
				return faultUnknown
			}
		}
		return faultTransient
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			if walkTransient(e) != faultTransient {
				return faultUnknown
			}
		}
		return faultTransient
	case interface{ Unwrap() error }:
		if inner := x.Unwrap(); inner != nil {
			return walkTransient(inner)
		}
	}
	return faultUnknown
}

// transientNode: err itself (not what it wraps) is a broker or network
// fault. Any Kafka error code not in configCodes counts: an unknown server
// error (-1), leader changes, coordinator moves, request timeouts.
func transientNode(err error) bool {
	switch e := err.(type) {
	case kafka.Error:
		return !configCodes[e]
	case net.Error: // dial, connection refused or reset, timeouts, DNS
		return true
	case syscall.Errno:
		switch e {
		case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
			syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, syscall.EHOSTDOWN:
			return true
		}
		return false
	}
	switch err {
	case io.EOF, io.ErrUnexpectedEOF, io.ErrClosedPipe, net.ErrClosed,
		context.DeadlineExceeded, context.Canceled,
		kafka.ErrGenerationEnded, kafka.ErrGroupClosed, errPartitionMissing:
		return true
	}
	return false
}

// ErrFaultDeadline is the cause of a Run that gave up because a broker or
// network fault lasted longer than Config.FaultDeadline.
var ErrFaultDeadline = errors.New("broker or network fault lasted longer than the fault deadline")

// faultClock measures how long each retrying part of the run (the group
// membership, each partition's task, the output writer) has been failing:
// from its first failure to its next success. When one has failed for
// longer than deadline (> 0), expire is called once with an error wrapping
// ErrFaultDeadline.
type faultClock struct {
	deadline time.Duration
	expire   func(error)
	now      func() time.Time

	mu      sync.Mutex
	faults  map[string]*fault
	expired bool
}

type fault struct {
	since    time.Time
	attempts int
	last     error
}

func newFaultClock(deadline time.Duration, expire func(error)) *faultClock {
	return &faultClock{deadline: deadline, expire: expire, now: time.Now, faults: map[string]*fault{}}
}

// failed records a failure of what; it returns how long what has been
// failing and calls expire when that passed the deadline.
func (c *faultClock) failed(what string, err error) time.Duration {
	now := c.now()
	c.mu.Lock()
	f := c.faults[what]
	if f == nil {
		f = &fault{since: now}
		c.faults[what] = f
	}
	f.attempts++
	f.last = err
	failing := now.Sub(f.since)
	var cause error
	if c.deadline > 0 && failing >= c.deadline && !c.expired {
		c.expired = true
		cause = fmt.Errorf("%w (%s): %s failing since %s, %d attempts; last error: %v; "+
			"check that the brokers are reachable and healthy, then start the processor again: it resumes from its last commit, nothing is lost",
			ErrFaultDeadline, c.deadline, what, f.since.UTC().Format(time.RFC3339), f.attempts, err)
	}
	c.mu.Unlock()
	if cause != nil {
		c.expire(cause)
	}
	return failing
}

// ok records a success of what: its fault, if any, is over.
func (c *faultClock) ok(what string) {
	c.mu.Lock()
	delete(c.faults, what)
	c.mu.Unlock()
}

// retain forgets the faults of partitions no longer owned (another member
// restarts them).
func (c *faultClock) retain(owned []int32) {
	keep := map[string]bool{}
	for _, p := range owned {
		keep[partitionKey(p)] = true
	}
	c.mu.Lock()
	for k := range c.faults {
		if len(k) > len(partitionPrefix) && k[:len(partitionPrefix)] == partitionPrefix && !keep[k] {
			delete(c.faults, k)
		}
	}
	c.mu.Unlock()
}

// failing lists what is failing now, sorted (tests, logs).
func (c *faultClock) failing() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.faults))
	for k := range c.faults {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const partitionPrefix = "partition "

func partitionKey(p int32) string { return fmt.Sprintf("%s%d", partitionPrefix, p) }

// superviseTask runs the task of opt.partition for one group generation
// (gctx, a child of the run's ctx). A transient fault restarts the task
// from its stored state after a backoff, in the same generation while it
// lasts; when the generation ended meanwhile the next one starts it again.
// It returns only fatal errors: configuration, storage, unrecognised, the
// fault deadline — and any error once the run itself is stopping (a final
// flush that failed).
func (p *Processor) superviseTask(ctx, gctx context.Context, opt taskOptions, writer MessageWriter, faults *faultClock) error {
	key := partitionKey(opt.partition)
	loaded := false
	opt.onLoaded = func() {
		loaded = true
		faults.ok(key)
	}
	for attempt := 0; ; attempt++ {
		err := p.runTask(gctx, opt, writer)
		if err == nil {
			return nil
		}
		if class := classify(err); class != faultTransient {
			return fatalError(class, err)
		}
		if ctx.Err() != nil {
			return err // stopping: a failed final flush fails the run
		}
		if loaded {
			attempt, loaded = 0, false // it ran since the last failure
		}
		failing := faults.failed(key, err)
		if ctx.Err() != nil {
			return nil // the fault deadline passed: Run returns its cause
		}
		if gctx.Err() != nil {
			p.log.Warn("task stopped by a broker fault; the next generation restarts it",
				zap.Int32("partition", opt.partition), zap.Duration("failing_for", failing), zap.Error(err))
			return nil
		}
		wait := restartBackoff(attempt)
		p.log.Warn("task failed on a broker fault; restarting it from its last commit",
			zap.Int32("partition", opt.partition), zap.Int("attempt", attempt+1), zap.Duration("retry_in", wait),
			zap.Duration("failing_for", failing), zap.Error(err))
		sleepCtx(gctx, wait)
		if gctx.Err() != nil {
			return nil
		}
	}
}

// restartBackoff is the wait before restarting a failed task: 200 ms
// doubling, at most 5 s.
func restartBackoff(attempt int) time.Duration {
	return min(200*time.Millisecond<<min(attempt, 5), 5*time.Second)
}

// fatalError says what to do about an error that stops the run.
func fatalError(class faultClass, err error) error {
	switch class {
	case faultConfig:
		return fmt.Errorf("%w (a configuration error: retrying cannot fix it; correct the configuration and start again)", err)
	case faultStorage:
		return fmt.Errorf("%w (a state store error: check the state directory and its disk, then start again; state up to the last commit is kept)", err)
	}
	return err
}

// faultWriter reports the output writer's failures and successes to the
// fault clock; the committer retries the writes themselves.
type faultWriter struct {
	next   MessageWriter
	faults *faultClock
}

func (w faultWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	err := w.next.WriteMessages(ctx, msgs...)
	switch {
	case err == nil:
		w.faults.ok("output writes")
	case ctx.Err() == nil:
		w.faults.failed("output writes", err)
	}
	return err
}
