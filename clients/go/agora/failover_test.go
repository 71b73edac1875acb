package agora_test

// Leader following, against the real broker plus stand-ins: a fake
// standby that refuses with the leader's URL, a port nobody listens on,
// and a TCP relay whose connections the test cuts to break a stream.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/agora-broker/agora/clients/go/agora"
	agorav1 "github.com/agora-broker/agora/clients/go/gen/agora/v1"
)

// standby answers Subscribe as a standby replica does: UNAVAILABLE,
// reason NOT_READY, the leader's URL in metadata `leader`.
type standby struct {
	agorav1.UnimplementedBrokerServer
	leader string

	mu            sync.Mutex
	authorization []string // the header of each Subscribe
}

func (s *standby) Subscribe(_ *agorav1.SubscribeRequest, stream agorav1.Broker_SubscribeServer) error {
	incoming, _ := metadata.FromIncomingContext(stream.Context())
	s.mu.Lock()
	s.authorization = append(s.authorization, incoming.Get("authorization")...)
	s.mu.Unlock()
	refusal, err := status.New(codes.Unavailable, "this replica is a standby").WithDetails(&errdetails.ErrorInfo{
		Reason:   "NOT_READY",
		Domain:   agora.Domain,
		Metadata: map[string]string{"leader": s.leader},
	})
	if err != nil {
		return err
	}
	return refusal.Err()
}

// startStandby serves a standby naming leader ("" for itself), with
// opts (such as TLS); returns its address and the standby.
func startStandby(t *testing.T, leader string, opts ...grpc.ServerOption) (string, *standby) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	own := "http://" + listener.Addr().String()
	if leader == "" {
		leader = own
	}
	fake := &standby{leader: leader}
	server := grpc.NewServer(opts...)
	agorav1.RegisterBrokerServer(server, fake)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return own, fake
}

// closedPort is an address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	_ = listener.Close()
	return "http://" + addr
}

func TestFollowsTheLeaderAStandbyNames(t *testing.T) {
	ctx := context.Background()
	standbyAddress, fake := startStandby(t, address)
	f, err := agora.Subscribe(ctx, []string{standbyAddress}, unique("follow"), []string{"default"},
		&agora.Options{Credentials: agora.Credentials{Token: "s3cret"}})
	if err != nil {
		t.Fatalf("subscribe through a standby: %v", err)
	}
	defer f.Close()
	if f.Address() != address {
		t.Fatalf("serving from %s, want the leader %s", f.Address(), address)
	}
	fake.mu.Lock()
	if len(fake.authorization) != 1 || fake.authorization[0] != "Bearer s3cret" {
		t.Errorf("the standby saw authorization %q, want [Bearer s3cret]", fake.authorization)
	}
	fake.mu.Unlock()
	launched := launch(t, ctx, f, "followed", "true")
	got := statusesUntilTerminal(t, ctx, f, launched.GetTaskId(), true)
	if last := got[len(got)-1].state; last != agorav1.TaskState_TASK_STATE_FINISHED {
		t.Fatalf("ended %v", got)
	}
}

func TestPassesOverAnEndpointThatDoesNotAnswer(t *testing.T) {
	f, err := agora.Subscribe(context.Background(), []string{closedPort(t), address}, unique("pass"),
		[]string{"default"}, nil)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer f.Close()
	if f.Address() != address {
		t.Fatalf("serving from %s, want %s", f.Address(), address)
	}
}

func TestGivesUpWithNoLeaderErrorAfterTheDeadline(t *testing.T) {
	dead := closedPort(t)
	started := time.Now()
	_, err := agora.Subscribe(context.Background(), []string{dead}, unique("none"), []string{"default"},
		&agora.Options{Failover: agora.Failover{Deadline: time.Second}})
	var noLeader *agora.NoLeaderError
	var failed *agora.Error
	if !errors.As(err, &noLeader) || !errors.As(err, &failed) || !failed.Unavailable() {
		t.Fatalf("subscribe to nothing: %v (%T)", err, err)
	}
	if _, ok := noLeader.Tried[dead]; !ok {
		t.Fatalf("tried %v, not %s", noLeader.Tried, dead)
	}
	if waited := time.Since(started); waited > 5*time.Second {
		t.Fatalf("gave up after %v, deadline 1s", waited)
	}
}

// relay forwards TCP connections to a target until cut.
type relay struct {
	listener net.Listener
	target   string
	mu       sync.Mutex
	conns    []net.Conn
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{listener: listener, target: target}
	go r.serve()
	t.Cleanup(r.cut)
	return r
}

func (r *relay) address() string { return "http://" + r.listener.Addr().String() }

func (r *relay) serve() {
	for {
		client, err := r.listener.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", r.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, client, server)
		r.mu.Unlock()
		go func() { _, _ = io.Copy(server, client); _ = server.Close() }()
		go func() { _, _ = io.Copy(client, server); _ = client.Close() }()
	}
}

// cut closes the listener and every relayed connection.
func (r *relay) cut() {
	_ = r.listener.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, conn := range r.conns {
		_ = conn.Close()
	}
	r.conns = nil
}

func TestResubscribesWhenTheStreamBreaks(t *testing.T) {
	ctx := context.Background()
	r := startRelay(t, address[len("http://"):])
	f, err := agora.Subscribe(ctx, []string{r.address(), address}, unique("break"), []string{"default"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Address() != r.address() {
		t.Fatalf("serving from %s, want the relay %s", f.Address(), r.address())
	}
	launched := launch(t, ctx, f, "before", "true")
	before := statusesUntilTerminal(t, ctx, f, launched.GetTaskId(), false)
	firstSession := f.SessionID()

	r.cut()
	var failed *agora.Error
	if _, err := f.ListTasks(ctx, ""); !errors.As(err, &failed) || !failed.Unavailable() {
		t.Fatalf("a call on the broken session: %v, want UNAVAILABLE", err)
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	event, err := f.Next(wait)
	if err != nil {
		t.Fatalf("after the stream broke: %v", err)
	}
	if event.GetSubscribed() == nil || f.SessionID() == firstSession || f.Address() != address {
		t.Fatalf("after the stream broke: %v, session %s (was %s) at %s", event, f.SessionID(), firstSession, f.Address())
	}
	if f.LastSequence() != before[len(before)-1].sequence {
		t.Fatalf("last sequence %d, want %d", f.LastSequence(), before[len(before)-1].sequence)
	}
	// The new session works, and what the old one delivered does not come
	// again.
	again := launch(t, ctx, f, "after", "true")
	after := statusesUntilTerminal(t, ctx, f, again.GetTaskId(), true)
	if after[0].sequence <= before[len(before)-1].sequence {
		t.Fatalf("sequences after the break %v, before %v", after, before)
	}
}

func TestWithNoFollowTheEventsEndWithTheStream(t *testing.T) {
	ctx := context.Background()
	r := startRelay(t, address[len("http://"):])
	f, err := agora.Subscribe(ctx, []string{r.address(), address}, unique("nofollow"), []string{"default"},
		&agora.Options{NoFollow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r.cut()
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var ended error
	for ended == nil {
		event, err := f.Next(wait)
		if err == nil && event.GetSubscribed() != nil {
			t.Fatalf("resubscribed with NoFollow: %v", event)
		}
		ended = err
	}
	var failed *agora.Error
	if errors.Is(ended, agora.ErrClosed) || errors.Is(ended, context.DeadlineExceeded) || !errors.As(ended, &failed) || !failed.Unavailable() {
		t.Fatalf("the stream ended with %v, want UNAVAILABLE", ended)
	}
	if _, again := f.Next(wait); again != ended {
		t.Fatalf("Next after the end: %v, want %v again", again, ended)
	}
	if f.Address() != r.address() {
		t.Fatalf("moved to %s", f.Address())
	}
}

// selfSigned writes a CA certificate for "standby.test" (its own key) to
// dir and returns the certificate's path and the server's TLS pair.
func selfSigned(t *testing.T, dir string) (string, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "standby.test"},
		DNSNames:              []string{"standby.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestSpeaksTLSWithACAFileAndSendsTheToken(t *testing.T) {
	caFile, pair := selfSigned(t, t.TempDir())
	standbyAddress, fake := startStandby(t, "", grpc.Creds(credentials.NewServerTLSFromCert(&pair)))
	creds := agora.Credentials{Token: "tls-token", CAFile: caFile, ServerName: "standby.test"}
	_, err := agora.Subscribe(context.Background(), []string{standbyAddress}, unique("tls"), []string{"default"},
		&agora.Options{Credentials: creds, Failover: agora.Failover{Deadline: time.Second}})
	var noLeader *agora.NoLeaderError
	if !errors.As(err, &noLeader) || noLeader.Tried[standbyAddress].Reason != "NOT_READY" {
		t.Fatalf("subscribe over TLS to a standby naming itself: %v", err)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.authorization) == 0 || fake.authorization[0] != "Bearer tls-token" {
		t.Fatalf("the standby saw authorization %q", fake.authorization)
	}
	if !strings.Contains(creds.String(), "<redacted>") || strings.Contains(creds.String(), "tls-token") {
		t.Fatalf("Credentials.String() = %s", creds)
	}
}
