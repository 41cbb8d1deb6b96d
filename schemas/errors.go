package schemas

import (
	"errors"
	"fmt"
)

// Sentinel errors of Decode. Each is wrapped with %w and the detail (field,
// byte offset, schema id); DLQReason maps them to the dead-letter reason. All of
// them are the record's fault: the same bytes always fail the same way.
var (
	// ErrTruncated: the value is shorter than the 5-byte header, or the Avro
	// body ends before the record is complete. DLQ reason "truncated".
	ErrTruncated = errors.New("truncated")
	// ErrBadMagic: the first byte is not the Confluent magic byte 0x00.
	// DLQ reason "bad_magic".
	ErrBadMagic = errors.New("bad magic byte")
	// ErrUnknownSchema: the schema id is not one of the fixed ids (no
	// registry) or the registry does not know it (HTTP 404). DLQ reason
	// "unknown_schema".
	ErrUnknownSchema = errors.New("unknown schema id")
	// ErrWrongSchema: the writer schema is not of the kind expected on this
	// topic, or cannot be resolved to the reader schema (missing required
	// field, incompatible type, not Avro). DLQ reason "wrong_schema".
	ErrWrongSchema = errors.New("wrong schema")
	// ErrMalformed: the Avro body does not decode: bad varint, negative or
	// absurd length, invalid union branch or enum index, trailing bytes.
	// DLQ reason "malformed".
	ErrMalformed = errors.New("malformed avro")
)

// ErrRegistry wraps a failure to reach or read the schema registry (network,
// timeout, HTTP 5xx, bad JSON). It is NOT the record's fault: the caller
// should retry (or stop) rather than dead-letter the record. DLQReason returns
// "" for it. Failures are not cached: the next Decode asks again.
var ErrRegistry = errors.New("schema registry unavailable")

// DLQReason returns the dead-letter reason for an error of Decode:
// "truncated", "bad_magic", "unknown_schema", "wrong_schema" or "malformed".
// It returns "" for nil, ErrRegistry and errors that are not ours — the
// caller decides what those mean.
func DLQReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRegistry):
		return ""
	case errors.Is(err, ErrTruncated):
		return "truncated"
	case errors.Is(err, ErrBadMagic):
		return "bad_magic"
	case errors.Is(err, ErrUnknownSchema):
		return "unknown_schema"
	case errors.Is(err, ErrWrongSchema):
		return "wrong_schema"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	}
	return ""
}

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
