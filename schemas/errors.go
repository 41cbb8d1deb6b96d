package schemas

import (
	"fmt"

	"github.com/sirenstream/sirenstream/engine"
)

// Sentinel errors of Decode. Each is wrapped with %w and the detail (field,
// byte offset, schema id) and carries its dead-letter reason
// (engine.ReasonError): engine.DLQReason maps any Decode error to it. All of
// them are the record's fault: the same bytes always fail the same way.
var (
	// ErrTruncated: the value is shorter than the 5-byte header, or the Avro
	// body ends before the record is complete. DLQ reason "truncated".
	ErrTruncated error = &decodeError{"truncated", "truncated"}
	// ErrBadMagic: the first byte is not the Confluent magic byte 0x00.
	// DLQ reason "bad_magic".
	ErrBadMagic error = &decodeError{"bad magic byte", "bad_magic"}
	// ErrUnknownSchema: the schema id is not one of the fixed ids (no
	// registry) or the registry does not know it (HTTP 404). DLQ reason
	// "unknown_schema".
	ErrUnknownSchema error = &decodeError{"unknown schema id", "unknown_schema"}
	// ErrWrongSchema: the writer schema is not of the kind expected on this
	// topic, or cannot be resolved to the reader schema (missing required
	// field, incompatible type, not Avro). DLQ reason "wrong_schema".
	ErrWrongSchema error = &decodeError{"wrong schema", "wrong_schema"}
	// ErrMalformed: the Avro body does not decode: bad varint, negative or
	// absurd length, invalid union branch or enum index, trailing bytes.
	// DLQ reason "malformed".
	ErrMalformed error = &decodeError{"malformed avro", "malformed"}
)

// ErrRegistry wraps a failure to reach or read the schema registry (network,
// timeout, HTTP 5xx, bad JSON). It is NOT the record's fault: the caller
// should retry (or stop) rather than dead-letter the record. Its dead-letter
// reason is "" (engine.DLQReason returns "" for it). Failures are not cached:
// the next Decode asks again.
var ErrRegistry error = &decodeError{"schema registry unavailable", ""}

// decodeError is a sentinel error of Decode with its dead-letter reason;
// compare it with errors.Is.
type decodeError struct{ text, reason string }

func (e *decodeError) Error() string            { return e.text }
func (e *decodeError) DeadLetterReason() string { return e.reason }

var _ engine.ReasonError = (*decodeError)(nil)

// Detail-free errors of the binary decoder: static values so that the hot path
// does not allocate until a record actually fails.
var (
	errShort    = fmt.Errorf("%w: avro body ends early", ErrTruncated)
	errOverflow = fmt.Errorf("%w: varint overflows", ErrMalformed)
	errNegLen   = fmt.Errorf("%w: negative length", ErrMalformed)
	errHugeLen  = fmt.Errorf("%w: length above limit", ErrMalformed)
	errBranch   = fmt.Errorf("%w: invalid union branch", ErrMalformed)
	errEnum     = fmt.Errorf("%w: invalid enum index", ErrMalformed)
	errBool     = fmt.Errorf("%w: invalid boolean byte", ErrMalformed)
)
