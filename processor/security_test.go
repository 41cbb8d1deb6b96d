package processor_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sirenstream/sirenstream/engine"
	"github.com/sirenstream/sirenstream/gen"
	"github.com/sirenstream/sirenstream/internal/load"
	"github.com/sirenstream/sirenstream/internal/testkit"
	"github.com/sirenstream/sirenstream/processor"
)

const secUser, secPass = "sirenstream", "s3cret-Pa55word"

func secMechanism(t *testing.T, name, user, pass string) sasl.Mechanism {
	t.Helper()
	switch name {
	case "PLAIN":
		return plain.Mechanism{Username: user, Password: pass}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		algo := scram.SHA256
		if name == "SCRAM-SHA-512" {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, user, pass)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Fatalf("unknown mechanism %s", name)
	return nil
}

// secureRun runs the processor end to end against a broker that requires
// k's security: topics created, events produced, outputs read, all through
// authenticated connections. The expected result is one MULTI_SITE change
// and one dead letter.
func secureRun(t *testing.T, brokers []string, k processor.Kafka) {
	t.Helper()
	const parts = 2
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := processor.EnsureTopics(ctx, k, processor.Topics{}, parts, 1, nil); err != nil {
		t.Fatalf("create topics: %v", err)
	}
	s := gen.SIREN(201)
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC).UnixMilli()
	msgs := []kafka.Message{
		testkit.Msg(t, engine.Event{Kind: engine.KindUsage, EventID: "u1", SIREN: s, EventTime: t0, SiteID: "a", PostalCode: "75001", BytesUp: 1, BytesDown: 1}),
		testkit.Msg(t, engine.Event{Kind: engine.KindUsage, EventID: "u2", SIREN: s, EventTime: t0 + 1, SiteID: "b", PostalCode: "13001", BytesUp: 1, BytesDown: 1}),
		{Topic: "usage", Key: []byte(s), Value: []byte{0, 0}},
	}
	tr := processor.Transport(k)
	w := load.Writer(brokers, tr)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := testkit.Config(t, brokers, t.TempDir())
	cfg.Kafka = k
	h := testkit.Start(t, cfg)
	h.WaitConsumed(t, int64(len(msgs)), parts, 60*time.Second)
	h.Stop(t)

	dialer := &kafka.Dialer{Timeout: 10 * time.Second, TLS: k.TLS, SASLMechanism: k.SASL}
	out, err := load.ReadAll(ctx, brokers, tr, dialer, "segment-changes")
	if err != nil {
		t.Fatalf("read outputs: %v", err)
	}
	changes := testkit.Changes(t, out)
	if len(changes) != 1 || changes[0].SIREN != s || !reflect.DeepEqual(changes[0].Segments, []string{"MULTI_SITE"}) {
		t.Fatalf("want one MULTI_SITE change for %s, got %d changes", s, len(changes))
	}
	dlq, err := load.ReadAll(ctx, brokers, tr, dialer, "sirenstream-dlq")
	if err != nil {
		t.Fatalf("read dlq: %v", err)
	}
	if len(dlq) != 1 {
		t.Fatalf("want 1 dead letter, got %d", len(dlq))
	}
}

// TestSASL: a full processor run (consumer group, readers, writer, admin
// client) against a broker that requires SASL, for each mechanism; the
// broker refuses clients without credentials, and a wrong password stops
// the processor quickly with an authentication error.
func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			_, brokers := testkit.Cluster(t, 2, kfake.EnableSASL(), kfake.Superuser(mech, secUser, secPass))
			k := processor.Kafka{Brokers: brokers, SASL: secMechanism(t, mech, secUser, secPass)}
			secureRun(t, brokers, k)

			// Without credentials, nothing is readable.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := load.ReadAll(ctx, brokers, nil, nil, "segment-changes"); err == nil {
				t.Fatal("a client without SASL read from the broker")
			}

			if mech != "PLAIN" {
				return // the wrong-password path is the same for every mechanism
			}
			// A wrong password is an error that says what to check. kfake
			// closes the connection on bad credentials (Kafka answers
			// SASL_AUTHENTICATION_FAILED, which stops at once), so this waits
			// for the startup retries (~15 s).
			cfg := testkit.Config(t, brokers, t.TempDir())
			cfg.Kafka = processor.Kafka{Brokers: brokers, SASL: secMechanism(t, mech, secUser, "wrong-password")}
			defer cfg.Store.Close()
			p, err := processor.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			err = p.Run(ctx)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), "sasl") {
				t.Fatalf("Run with a wrong password = %v, want a SASL authentication error", err)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("authentication failure took %s to report", d)
			}
			if strings.Contains(err.Error(), "wrong-password") {
				t.Errorf("the error shows the password: %v", err)
			}
			t.Logf("wrong password: %v (after %s)", err, time.Since(start).Round(time.Millisecond))
		})
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, generated for the test.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sirenstream test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{pool: pool, server: leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth), client: leaf(3, "sirenstream", x509.ExtKeyUsageClientAuth)}
}

// TestTLS: a full run over mutual TLS (the broker verifies our client
// certificate against its CA, we verify the broker's against ours), then
// with TLS and SCRAM together; a client without a certificate or that does
// not trust the broker's CA gets nothing.
func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	serverCfg := &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	clientCfg := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS12}

	t.Run("mTLS", func(t *testing.T) {
		_, brokers := testkit.Cluster(t, 2, kfake.TLS(serverCfg))
		secureRun(t, brokers, processor.Kafka{Brokers: brokers, TLS: clientCfg})

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		noCert := &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}
		untrusting := &tls.Config{Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS12}
		for name, c := range map[string]*tls.Config{"no client certificate": noCert, "broker CA not trusted": untrusting} {
			tr := processor.Transport(processor.Kafka{Brokers: brokers, TLS: c})
			if _, err := load.ReadAll(ctx, brokers, tr, &kafka.Dialer{TLS: c}, "segment-changes"); err == nil {
				t.Errorf("%s: the client read from the broker", name)
			} else {
				t.Logf("%s: %v", name, err)
			}
		}
	})
	t.Run("TLS+SCRAM-SHA-512", func(t *testing.T) {
		_, brokers := testkit.Cluster(t, 2, kfake.TLS(serverCfg), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", secUser, secPass))
		secureRun(t, brokers, processor.Kafka{Brokers: brokers, TLS: clientCfg, SASL: secMechanism(t, "SCRAM-SHA-512", secUser, secPass)})
	})
}
