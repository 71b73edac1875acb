package agora

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	agorav1 "github.com/agora-broker/agora/clients/go/gen/agora/v1"
)

// SilentHeartbeats is how many heartbeat intervals of silence mean the
// broker is gone.
const SilentHeartbeats = 3

// Failover says how patiently to look for the leader: each search gives up
// after Deadline (with *NoLeaderError); an endpoint that does not answer a
// Subscribe within AttemptTimeout is passed over; after each fruitless
// round over the endpoints the search pauses from FirstBackoff doubling up
// to MaxBackoff (jittered). Zero fields take the defaults: 30 s, 5 s,
// 50 ms and 500 ms.
type Failover struct {
	Deadline       time.Duration
	AttemptTimeout time.Duration
	FirstBackoff   time.Duration
	MaxBackoff     time.Duration
}

func (f Failover) withDefaults() Failover {
	if f.Deadline <= 0 {
		f.Deadline = 30 * time.Second
	}
	if f.AttemptTimeout <= 0 {
		f.AttemptTimeout = 5 * time.Second
	}
	if f.FirstBackoff <= 0 {
		f.FirstBackoff = 50 * time.Millisecond
	}
	if f.MaxBackoff <= 0 {
		f.MaxBackoff = 500 * time.Millisecond
	}
	return f
}

// item is what a session's pump hands the reader: an event, or the error
// that ended the stream (io.EOF when it ended cleanly).
type item struct {
	event *agorav1.Event
	err   error
}

// session is one Subscribe stream: its connection, ids, and a goroutine
// that moves its messages into a channel, so that waiting for the next
// one can be given up.
type session struct {
	address    string
	conn       *grpc.ClientConn
	client     agorav1.BrokerClient
	cancel     context.CancelFunc
	items      chan item
	subscribed *agorav1.Event
	silence    time.Duration
}

func openSession(address string, creds Credentials, request *agorav1.SubscribeRequest) (*session, error) {
	conn, err := Dial(address, creds)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		address: address,
		conn:    conn,
		client:  agorav1.NewBrokerClient(conn),
		cancel:  cancel,
		items:   make(chan item, 64),
	}
	go s.pump(ctx, request)
	return s, nil
}

func (s *session) pump(ctx context.Context, request *agorav1.SubscribeRequest) {
	put := func(it item) bool {
		select {
		case s.items <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	stream, err := s.client.Subscribe(ctx, request)
	if err != nil {
		put(item{err: asError(err)})
		return
	}
	for {
		event, err := stream.Recv()
		if err == io.EOF {
			put(item{err: io.EOF})
			return
		}
		if err != nil {
			put(item{err: asError(err)})
			return
		}
		if !put(item{event: event}) {
			return
		}
	}
}

// confirm waits up to within for the Subscribed event; returns what came
// instead as an error.
func (s *session) confirm(ctx context.Context, within time.Duration) error {
	timer := time.NewTimer(within)
	defer timer.Stop()
	var it item
	select {
	case it = <-s.items:
	case <-timer.C:
		return &Error{
			Code:     codes.Unavailable,
			Message:  fmt.Sprintf("the broker at %s did not answer within %v", s.address, within),
			Metadata: map[string]string{},
		}
	case <-ctx.Done():
		return asError(ctx.Err())
	}
	if it.err == io.EOF || (it.err == nil && it.event.GetSubscribed() == nil) {
		return &Error{
			Code:     codes.Unavailable,
			Message:  "the broker did not confirm the subscription",
			Metadata: map[string]string{},
		}
	}
	if it.err != nil {
		return it.err
	}
	s.subscribed = it.event
	if interval := it.event.GetSubscribed().GetHeartbeatInterval().AsDuration(); interval > 0 {
		s.silence = interval * SilentHeartbeats
	}
	return nil
}

func (s *session) close() {
	s.cancel()
	_ = s.conn.Close()
}

// openOnLeader subscribes on whichever endpoint leads: a standby that
// names the leader sends the search there at once; one that names none, a
// refused connection or a silent endpoint moves it to the next, pausing
// between rounds until the deadline. Errors other than the broker being
// away end the search (another replica would refuse the same way). The
// endpoint that served a session just lost (failed) is tried last.
func openOnLeader(
	ctx context.Context,
	endpoints []string,
	creds Credentials,
	failover Failover,
	request *agorav1.SubscribeRequest,
	failed string,
) (*session, error) {
	var order []string
	for _, address := range endpoints {
		if address != failed {
			order = append(order, address)
		}
	}
	for _, address := range endpoints {
		if address == failed {
			order = append(order, address)
		}
	}
	deadline := time.Now().Add(failover.Deadline)
	backoff := failover.FirstBackoff
	tried := map[string]*Error{}
	turn, hops := 0, 0
	named := ""
	for {
		var address string
		if named != "" {
			address, named = named, ""
		} else {
			address = order[turn%len(order)]
			turn++
		}
		within := time.Until(deadline)
		if within > failover.AttemptTimeout {
			within = failover.AttemptTimeout
		}
		if within < time.Millisecond {
			within = time.Millisecond
		}
		s, err := openSession(address, creds, request)
		if err != nil {
			return nil, err
		}
		err = s.confirm(ctx, within)
		if err == nil {
			return s, nil
		}
		s.close()
		refused, ok := err.(*Error)
		if !ok || !refused.Unavailable() || ctx.Err() != nil {
			return nil, err
		}
		tried[address] = refused
		if leader := refused.Leader(); leader != "" && leader != address && hops < 2 {
			hops++
			named = leader
			continue
		}
		hops = 0
		if turn%len(order) != 0 && time.Now().Before(deadline) {
			continue
		}
		if time.Until(deadline) <= backoff {
			return nil, &NoLeaderError{Within: failover.Deadline, Tried: tried}
		}
		pause := backoff/2 + time.Duration(rand.Int63n(int64(backoff/2)+1))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, asError(ctx.Err())
		}
		backoff *= 2
		if backoff > failover.MaxBackoff {
			backoff = failover.MaxBackoff
		}
	}
}
