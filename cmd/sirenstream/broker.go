package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("broker", `The embedded Kafka-protocol dev broker (franz-go's kfake): a real wire-protocol
broker in this process, for local work and tests. Any Kafka client (kcat, Java,
kafka-go) can connect. Not for production: use Apache Kafka there.`, stdout)
	listen := fs.String("listen", "127.0.0.1:9092", "address to listen on (host:port; port 0 picks one)")
	partitions := fs.Int("partitions", 6, "default partition count of auto-created topics")
	dataDir := fs.String("data-dir", "", "keep the broker's log in this directory across restarts (default: in memory)")
	fs.String("config", "", "YAML config file; keys are these flag names")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(*listen)
	if err != nil {
		return usageErr("--listen %q: %v", *listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return usageErr("--listen %q: bad port", *listen)
	}
	if *partitions < 1 {
		return usageErr("--partitions must be >= 1")
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(*partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	defer c.Close()
	for _, a := range c.ListenAddrs() {
		fmt.Fprintf(stdout, "broker listening on %s\n", a)
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "broker stopping")
	return nil
}
