package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sirenstream/sirenstream/internal/testkit"
)

// TestGenerateHonoursTheBrokersPartitionCount: with no input topics,
// generate creates them with the broker's default partition count (what
// `sirenstream broker --partitions N` sets: kfake's DefaultNumPartitions);
// afterwards it uses the existing count, and a --partitions that differs is
// refused with a message that says what to do.
func TestGenerateHonoursTheBrokersPartitionCount(t *testing.T) {
	_, brokers := testkit.Cluster(t, 5)
	generate := func(args ...string) (code int, stdout, stderr string) {
		var out, errb bytes.Buffer
		args = append([]string{"generate", "--brokers", brokers[0], "--sirens", "20", "--days", "5"}, args...)
		code = realMain(args, &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errs := generate()
	if code != 0 || !strings.Contains(out, "to 5 partitions (broker default), interleaved in event-time order") {
		t.Fatalf("first generate: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	client, done := testkit.Client(brokers)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: testkit.InputTopics})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range meta.Topics {
		if topic.Error != nil || len(topic.Partitions) != 5 {
			t.Fatalf("%s: %d partitions (%v), want the broker's 5", topic.Name, len(topic.Partitions), topic.Error)
		}
	}

	code, _, errs = generate("--partitions", "3")
	if code != 2 || !strings.Contains(errs, "--partitions 3") || !strings.Contains(errs, "usage=5") || !strings.Contains(errs, "omit --partitions") {
		t.Fatalf("--partitions 3 on 5-partition topics: exit %d, stderr %s", code, errs)
	}
	code, out, errs = generate("--partitions", "5", "--by-topic")
	if code != 0 || !strings.Contains(out, "to 5 partitions (existing topics), topic after topic") {
		t.Fatalf("--by-topic: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if code, _, errs = generate("--rate", "-1"); code != 2 || !strings.Contains(errs, "--rate") {
		t.Fatalf("--rate -1: exit %d, stderr %s", code, errs)
	}

	var help bytes.Buffer
	if code := realMain([]string{"generate", "--help"}, &help, &help); code != 0 {
		t.Fatalf("generate --help: exit %d", code)
	}
	for _, want := range []string{"-rate", "-by-topic", "-partitions", "interleaved", "num.partitions"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("generate --help does not mention %q:\n%s", want, help.String())
		}
	}
}
