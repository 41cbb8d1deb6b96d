package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Proxy is a TCP proxy in front of a broker, for network-fault tests: Down
// drops every open connection and refuses new ones (the port is closed, so
// clients see "connection refused"), Up listens again on the same port.
type Proxy struct {
	addr   string // 127.0.0.1:port, fixed for the proxy's life
	target string

	mu    sync.Mutex
	ln    net.Listener // nil while down
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  bool
}

// NewProxy listens on 127.0.0.1:0 and forwards every connection to target
// (which may be set later with SetTarget, before the first connection).
// It is closed at the end of the test.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address (the same across Down/Up).
func (p *Proxy) Addr() string { return p.addr }

// Target is the address the proxy forwards to (the broker's real listener).
func (p *Proxy) Target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// SetTarget sets the address connections are forwarded to.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed by Down or Close
			}
			p.mu.Lock()
			target := p.target
			if p.ln != ln { // went down between Accept and here
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns[c] = struct{}{}
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.pipe(c, target)
			}()
		}
	}()
}

func (p *Proxy) pipe(c net.Conn, target string) {
	defer func() {
		c.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.ln == nil || p.done { // went down while dialing
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer func() {
		up.Close()
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
	}()
	errc := make(chan error, 2)
	go func() { _, err := io.Copy(up, c); errc <- err }()
	go func() { _, err := io.Copy(c, up); errc <- err }()
	<-errc // one side ended: close both (deferred) so the other copy ends too
	c.Close()
	up.Close()
	<-errc
}

// Down closes the listening port and every connection through the proxy:
// the broker is unreachable until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
}

// Up listens on the proxy's port again. It retries for a few seconds in the
// unlikely case the port is briefly taken.
func (p *Proxy) Up() error {
	p.mu.Lock()
	up := p.ln != nil || p.done
	p.mu.Unlock()
	if up {
		return nil
	}
	var err error
	for i := 0; i < 100; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return nil
		}
		time.Sleep(50 * time.Millisecond) // waiting for the OS to free the port, not for a goroutine
	}
	return err
}

// Close stops the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	p.Down()
	p.wg.Wait()
}

// advertised makes kfake advertise (in metadata) an address other than the
// one it listens on: clients then reach the broker only through the proxy.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a advertised) Addr() net.Addr { return a.addr }

// ProxiedCluster starts a one-broker kfake cluster that listens on a random
// port but advertises a Proxy's address, so every connection — bootstrap and
// the ones clients open after reading metadata — goes through the proxy.
// It returns the cluster, the proxy and the brokers list (the proxy).
func ProxiedCluster(t testing.TB, partitions int, opts ...kfake.Opt) (*kfake.Cluster, *Proxy, []string) {
	t.Helper()
	p := NewProxy(t, "")
	proxyAddr, err := net.ResolveTCPAddr("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	listen := func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		p.SetTarget(ln.Addr().String())
		return advertised{Listener: ln, addr: proxyAddr}, nil
	}
	c, _ := Cluster(t, partitions, append([]kfake.Opt{kfake.ListenFn(listen)}, opts...)...)
	if got := c.ListenAddrs(); len(got) != 1 || got[0] != p.Addr() {
		t.Fatalf("kfake advertises %v, want the proxy %s", got, p.Addr())
	}
	return c, p, []string{p.Addr()}
}

// Err returns the processor's exit error if Run has returned (an error
// "stopped" when it returned nil), nil while it runs. It does not consume
// the result: Stop still sees it.
func (h *Harness) Err() error {
	select {
	case err := <-h.errc:
		h.errc <- err
		if err == nil {
			return errors.New("processor stopped without error")
		}
		return err
	default:
		return nil
	}
}

// WaitStored polls until every partition's checkpoint in the store holds the
// end offsets of every input topic (all records processed, their outputs
// acknowledged, state committed), or fails after timeout. Unlike
// WaitConsumed it holds across rebalances and task restarts.
func (h *Harness) WaitStored(t testing.TB, brokers []string, partitions int, timeout time.Duration) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	inputs := defaultInputs()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if err := h.Err(); err != nil {
			t.Fatalf("processor stopped early: %v", err)
		}
		done, why := h.stored(client, inputs, partitions)
		if done {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for the store to hold the end offsets: %s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *Harness) stored(client *kafka.Client, inputs []string, partitions int) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, topic := range inputs {
		for p := 0; p < partitions; p++ {
			req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return false, fmt.Sprintf("list offsets: %v", err)
	}
	for topic, ps := range resp.Topics {
		for _, po := range ps {
			if po.Error != nil {
				return false, fmt.Sprintf("list offsets %s/%d: %v", topic, po.Partition, po.Error)
			}
			cp, ok, err := h.Store.Checkpoint(int32(po.Partition))
			if err != nil {
				return false, fmt.Sprintf("checkpoint %d: %v", po.Partition, err)
			}
			if po.LastOffset > 0 && (!ok || cp.Offsets[topic] != po.LastOffset) {
				return false, fmt.Sprintf("%s/%d: stored %d, end %d", topic, po.Partition, cp.Offsets[topic], po.LastOffset)
			}
		}
	}
	return true, ""
}
