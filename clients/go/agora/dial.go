package agora

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Credentials say how to prove who the caller is, and whether and how to
// trust the broker. The zero value suits a broker run with `agora dev` or
// `--insecure`.
type Credentials struct {
	// Token is sent as "authorization: Bearer <token>" on every call.
	Token string
	// CAFile is a PEM file of the CA that signed the broker's certificate;
	// with it, the connection speaks TLS ("https://" addresses speak TLS
	// too, trusting the system's roots without it).
	CAFile string
	// CertFile and KeyFile are the client's certificate and key (PEM) for
	// mutual TLS; the broker takes the subject CN as the principal.
	CertFile, KeyFile string
	// ServerName checks the broker's certificate for this name instead of
	// the address's host (e.g. when connecting by IP).
	ServerName string
}

// String shows the settings without the token.
func (c Credentials) String() string {
	token := ""
	if c.Token != "" {
		token = "<redacted>"
	}
	return fmt.Sprintf("Credentials{Token:%q CAFile:%q CertFile:%q KeyFile:%q ServerName:%q}",
		token, c.CAFile, c.CertFile, c.KeyFile, c.ServerName)
}

func (c Credentials) tls() bool { return c.CAFile != "" || c.CertFile != "" }

// target is gRPC's host:port for address and whether to speak TLS.
func target(address string, creds Credentials) (string, bool) {
	address = strings.TrimRight(strings.TrimSpace(address), "/")
	switch {
	case strings.HasPrefix(address, "https://"):
		return strings.TrimPrefix(address, "https://"), true
	case strings.HasPrefix(address, "http://"):
		return strings.TrimPrefix(address, "http://"), creds.tls()
	}
	return address, creds.tls()
}

// bearer adds the token to each call.
type bearer struct{ header string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.header}, nil
}

// RequireTransportSecurity is false: a dev broker without TLS may check
// tokens too. Use TLS wherever the network is not trusted.
func (bearer) RequireTransportSecurity() bool { return false }

func (bearer) String() string { return "bearer(<redacted>)" }

// transportCredentials builds the TLS settings of creds.
func transportCredentials(creds Credentials) (credentials.TransportCredentials, error) {
	config := &tls.Config{ServerName: creds.ServerName, MinVersion: tls.VersionTLS12}
	if creds.CAFile != "" {
		pem, err := os.ReadFile(creds.CAFile)
		if err != nil {
			return nil, fmt.Errorf("agora: reading the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("agora: no PEM certificate in the CA file %s", creds.CAFile)
		}
		config.RootCAs = pool
	}
	if creds.CertFile != "" || creds.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(creds.CertFile, creds.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("agora: loading the client certificate: %w", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// Dial returns a connection to the broker at address ("http://host:port",
// "https://host:port" or "host:port") carrying creds. It connects lazily:
// an unreachable broker shows in the first call. Use it with the generated
// clients (agorav1.NewAdminClient(conn)...) for what Frontend does not
// wrap; close it when done. opts are added to Dial's own.
func Dial(address string, creds Credentials, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	host, secure := target(address, creds)
	if host == "" {
		return nil, fmt.Errorf("agora: empty broker address: name one such as http://127.0.0.1:50051")
	}
	var dial []grpc.DialOption
	if secure {
		tc, err := transportCredentials(creds)
		if err != nil {
			return nil, err
		}
		dial = append(dial, grpc.WithTransportCredentials(tc))
	} else {
		// grpc.WithInsecure: the only plaintext option of the grpc-go
		// that Debian 12 ships (1.33; insecure.NewCredentials came in 1.34).
		dial = append(dial, grpc.WithInsecure())
	}
	if creds.Token != "" {
		for _, r := range creds.Token {
			if r < 0x20 || r > 0x7e {
				return nil, fmt.Errorf("agora: the token must be printable ASCII to travel as a header")
			}
		}
		dial = append(dial, grpc.WithPerRPCCredentials(bearer{"Bearer " + creds.Token}))
	}
	return grpc.Dial(host, append(dial, opts...)...)
}
