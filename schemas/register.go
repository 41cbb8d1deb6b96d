package schemas

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// ErrRegistryRefused: the schema registry refused to register an output
// schema (an incompatible change under the subject's compatibility rule, or
// an invalid schema): a startup error, fixed by the registry's operator.
var ErrRegistryRefused = errors.New("schema registry refused the schema")

// RegisterOutput registers the output schema of fixed id (101 segment
// changes, 102 offer outcomes, 103 uplift, 104 siren-daily) under the
// subject "<topic>-value" (Confluent's TopicNameStrategy) and returns the id
// the registry gave it, with which the records of topic are framed. Without
// a registry it returns the fixed id. Registering the same schema again
// returns the same id, so every instance and restart frames alike.
// Transient failures (the registry unreachable, 5xx) are retried for about
// 30 s; a refusal (409 incompatible, 422 invalid) is ErrRegistryRefused with
// the registry's message.
func (c *Codec) RegisterOutput(ctx context.Context, topic string, id int) (int, error) {
	text, ok := Schema(id)
	if !ok {
		return 0, fmt.Errorf("schemas: register: no schema with fixed id %d", id)
	}
	if c.registry == nil {
		return id, nil
	}
	name := fileForID(id)
	subject := topic + "-value"
	var last error
	for attempt, wait := 0, 500*time.Millisecond; attempt < 8; attempt, wait = attempt+1, min(2*wait, 8*time.Second) {
		ss, err := c.registry.CreateSchema(ctx, subject, sr.Schema{Schema: text, Type: sr.TypeAvro})
		if err == nil {
			if c.log != nil {
				c.log.Sugar().Infof("schema registry: %s registered under %s with id %d", name, subject, ss.ID)
			}
			return ss.ID, nil
		}
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode >= 400 && re.StatusCode < 500 {
			return 0, fmt.Errorf("schemas: register %s under subject %q: %w: %s (HTTP %d, error code %d); "+
				"the subject's compatibility rule must allow adding fields with defaults (BACKWARD, the registry's default), "+
				"or the outputs must go to other topics", name, subject, ErrRegistryRefused, re.Message, re.StatusCode, re.ErrorCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("schemas: register %s under subject %q: %w (last error: %v)", name, subject, ctx.Err(), last)
		case <-time.After(wait):
		}
	}
	return 0, fmt.Errorf("schemas: register %s under subject %q: registry unreachable: %w", name, subject, last)
}

// SetSchemaID rewrites the schema id of the Confluent-framed value b in
// place (b starts with AppendHeader's 5 bytes).
func SetSchemaID(b []byte, id int) {
	if len(b) >= 5 {
		binary.BigEndian.PutUint32(b[1:5], uint32(id))
	}
}
