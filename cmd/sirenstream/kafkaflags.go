package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"os"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/sirenstream/sirenstream/processor"
)

// kafkaFlags are the connection flags shared by every command that talks to
// Kafka. Secrets come from the environment or files, never from logs.
type kafkaFlags struct {
	brokers       string
	tls           bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsSkipVerify bool
	saslMechanism string
	saslUser      string
	saslPassword  string
	saslPassFile  string
}

func (k *kafkaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.brokers, "brokers", "", "comma-separated Kafka bootstrap brokers host:port (required)")
	fs.BoolVar(&k.tls, "tls", false, "connect with TLS (implied by --tls-ca/--tls-cert)")
	fs.StringVar(&k.tlsCA, "tls-ca", "", "PEM file of the CA that signed the brokers' certificates")
	fs.StringVar(&k.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&k.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&k.tlsSkipVerify, "tls-insecure-skip-verify", false, "do not verify broker certificates (testing only)")
	fs.StringVar(&k.saslMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)")
	fs.StringVar(&k.saslUser, "sasl-username", "", "SASL username")
	fs.StringVar(&k.saslPassword, "sasl-password", "", "SASL password (prefer SIRENSTREAM_SASL_PASSWORD or --sasl-password-file)")
	fs.StringVar(&k.saslPassFile, "sasl-password-file", "", "file holding the SASL password (trailing newline ignored)")
}

func (k *kafkaFlags) build() (processor.Kafka, error) {
	var out processor.Kafka
	for _, b := range strings.Split(k.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out.Brokers = append(out.Brokers, b)
		}
	}
	if len(out.Brokers) == 0 {
		return out, usageErr("--brokers is required (or SIRENSTREAM_BROKERS)")
	}
	if k.tls || k.tlsCA != "" || k.tlsCert != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: k.tlsSkipVerify} //nolint:gosec // explicit opt-in flag
		if k.tlsCA != "" {
			pem, err := os.ReadFile(k.tlsCA)
			if err != nil {
				return out, usageErr("--tls-ca: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return out, usageErr("--tls-ca %s: no PEM certificate found", k.tlsCA)
			}
			cfg.RootCAs = pool
		}
		if (k.tlsCert == "") != (k.tlsKey == "") {
			return out, usageErr("--tls-cert and --tls-key go together")
		}
		if k.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(k.tlsCert, k.tlsKey)
			if err != nil {
				return out, usageErr("--tls-cert/--tls-key: %v", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		out.TLS = cfg
	}
	if k.saslMechanism != "" {
		pass := k.saslPassword
		if k.saslPassFile != "" {
			b, err := os.ReadFile(k.saslPassFile)
			if err != nil {
				return out, usageErr("--sasl-password-file: %v", err)
			}
			pass = strings.TrimRight(string(b), "\r\n")
		}
		if k.saslUser == "" {
			return out, usageErr("--sasl-mechanism needs --sasl-username")
		}
		m, err := saslMechanism(k.saslMechanism, k.saslUser, pass)
		if err != nil {
			return out, err
		}
		out.SASL = m
	}
	return out, nil
}

func saslMechanism(name, user, pass string) (sasl.Mechanism, error) {
	switch strings.ToUpper(name) {
	case "PLAIN":
		return plain.Mechanism{Username: user, Password: pass}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, user, pass)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, user, pass)
	default:
		return nil, usageErr("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", name)
	}
}
