package engine

import "errors"

// ReasonError is an error that names its dead-letter reason: the value of
// the dead letter's `error` header. The engine's sentinel errors implement
// it, and so do the decoder's (package schemas), so one mapping, DLQReason,
// covers every record error. A package adds a reason by giving its sentinel
// errors this method; wrapping with %w keeps it.
type ReasonError interface {
	error
	// DeadLetterReason is the reason, or "" when the error is not the
	// record's fault (the caller retries or stops; it does not
	// dead-letter).
	DeadLetterReason() string
}

// DLQReason returns the dead-letter reason of err: the DeadLetterReason of
// the first ReasonError in err's chain (errors.As), and "error" for an
// error that has none. Reasons: "invalid_siren", "invalid_event",
// "key_mismatch", "late", "future", "duplicate" (engine) and "truncated",
// "bad_magic", "unknown_schema", "wrong_schema", "malformed" (decoder).
// It returns "" for nil and for errors that are not the record's fault
// (schemas.ErrRegistry): such a record must not be dead-lettered.
func DLQReason(err error) string {
	if err == nil {
		return ""
	}
	var re ReasonError
	if errors.As(err, &re) {
		return re.DeadLetterReason()
	}
	return "error"
}

// reasonError is a sentinel error with its dead-letter reason; compare it
// with errors.Is.
type reasonError struct{ text, reason string }

func newReasonError(text, reason string) error { return &reasonError{text: text, reason: reason} }

func (e *reasonError) Error() string            { return e.text }
func (e *reasonError) DeadLetterReason() string { return e.reason }

// keyMismatchError is a key mismatch: its text does not repeat the
// sentinel's (dead letters keep their historical error.detail), it unwraps
// to ErrKeyMismatch.
type keyMismatchError struct{ msg string }

func (e *keyMismatchError) Error() string { return e.msg }
func (e *keyMismatchError) Unwrap() error { return ErrKeyMismatch }
