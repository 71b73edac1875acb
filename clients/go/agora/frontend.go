package agora

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	agorav1 "github.com/agora-broker/agora/clients/go/gen/agora/v1"
)

// ErrClosed is what Next returns once the Frontend is closed.
var ErrClosed = errors.New("agora: the frontend is closed")

// Options are a Frontend's optional settings; the zero value is fine for a
// broker run with `agora dev`.
type Options struct {
	// Credentials: a token and/or TLS settings.
	Credentials Credentials
	// ResumeAfter replays unacknowledged events with a sequence above
	// this (0: all of them).
	ResumeAfter uint64
	// NoFollow ends the events with the stream (Next returns io.EOF or the
	// stream's error) instead of resubscribing.
	NoFollow bool
	// Failover: how patiently to look for the leader.
	Failover Failover
	// Capabilities to declare (FrontendCapability values).
	Capabilities []agorav1.FrontendCapability
}

// Frontend is a frontend scheduler's session with the broker.
//
// Subscribe connects to the endpoints (one address such as
// "http://127.0.0.1:50051", or those of all a broker's replicas), finds
// the leader, subscribes and waits for the Subscribed event. Every call
// carries the session's id.
//
// Read events with Next all along, from one goroutine: the broker closes
// sessions that fall behind, and the reader is what notices a broken
// stream. When the stream fails, ends, or stays silent for SilentHeartbeats
// heartbeat intervals, Next finds the leader again, subscribes under the
// same name with ResumeAfter = LastSequence(), returns the new session's
// Subscribed event and then the events the old one did not deliver,
// dropping any it already returned. Calls then go to the new session.
// Leases do not survive a broker failover (each is reported by LeaseLost
// with REASON_BROKER_RESTARTED); tasks do.
//
// Calls made while the broker is away, or while the stream is broken and
// Next has not resubscribed yet, fail with an *Error whose Unavailable()
// is true; none is retried behind your back (repeat only
// what is safe to repeat: not Launch). The calls may be made from any
// goroutine. Close the Frontend when done.
type Frontend struct {
	endpoints []string
	creds     Credentials
	failover  Failover
	follow    bool
	request   *agorav1.SubscribeRequest
	done      chan struct{}

	mu      sync.Mutex
	session *session
	live    bool
	closed  bool
	last    uint64
	ended   error // with NoFollow, what ended the stream
}

// Subscribe opens a session as frontend name in namespaces on whichever
// of endpoints leads. ctx bounds the search for the leader (as does
// opts.Failover.Deadline); it does not bound the session. opts may be nil.
// The broker's refusals are *Error (*NoLeaderError when no endpoint led in
// time); settings that cannot work (no endpoint, an unreadable CA file, a
// token that cannot travel as a header) are plain errors.
func Subscribe(ctx context.Context, endpoints []string, name string, namespaces []string, opts *Options) (*Frontend, error) {
	if opts == nil {
		opts = &Options{}
	}
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("agora: no broker endpoints given: name at least one, such as http://127.0.0.1:50051")
	}
	f := &Frontend{
		endpoints: append([]string(nil), endpoints...),
		creds:     opts.Credentials,
		failover:  opts.Failover.withDefaults(),
		follow:    !opts.NoFollow,
		request: &agorav1.SubscribeRequest{
			Frontend:     name,
			Namespaces:   append([]string(nil), namespaces...),
			Capabilities: append([]agorav1.FrontendCapability(nil), opts.Capabilities...),
			ResumeAfter:  opts.ResumeAfter,
		},
		done: make(chan struct{}),
		live: true,
		last: opts.ResumeAfter,
	}
	s, err := openOnLeader(ctx, f.endpoints, f.creds, f.failover, f.request, "")
	if err != nil {
		return nil, err
	}
	f.session = s
	return f, nil
}

func (f *Frontend) current() *session {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.session
}

// callable is the session to call, or why there is none: the Frontend
// is closed (CANCELLED, unwrapping to ErrClosed), or its stream broke and
// Next has not found the leader again yet (UNAVAILABLE).
func (f *Frontend) callable() (*session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return nil, &Error{Code: codes.Canceled, Message: ErrClosed.Error(), Metadata: map[string]string{}, cause: ErrClosed}
	case !f.live:
		return nil, &Error{
			Code:     codes.Unavailable,
			Message:  fmt.Sprintf("the session's stream from %s broke; Next subscribes again", f.session.address),
			Metadata: map[string]string{},
		}
	}
	return f.session, nil
}

// FrontendID is the broker's id for this frontend (its name).
func (f *Frontend) FrontendID() string {
	return f.current().subscribed.GetSubscribed().GetFrontendId()
}

// SessionID is the current session's id; it changes when Next resubscribes.
func (f *Frontend) SessionID() string {
	return f.current().subscribed.GetSubscribed().GetSessionId()
}

// Address is the endpoint serving the current session (the leader).
func (f *Frontend) Address() string { return f.current().address }

// Subscribed is the current session's Subscribed event.
func (f *Frontend) Subscribed() *agorav1.Event { return f.current().subscribed }

// Broker is the generated client of the current session's broker, for
// calls Frontend does not wrap; pass it SessionID().
func (f *Frontend) Broker() agorav1.BrokerClient { return f.current().client }

// LastSequence is the highest sequence Next has returned so far: where a
// new session resumes.
func (f *Frontend) LastSequence() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// Close ends the session (its leases are released after the broker's
// session grace; tasks stay with the frontend). A Next waiting meanwhile
// returns ErrClosed.
func (f *Frontend) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
		f.session.close()
	}
	return nil
}

// Next returns the next event. Events with a sequence come once each, in
// order; Acknowledge them once processed. It returns ErrClosed once the
// Frontend is closed; the context's error (as an *Error that unwraps to
// it) when ctx ends first; a *NoLeaderError when the stream broke and no
// leader answered within the failover deadline (the next call searches
// again); with Options.NoFollow, io.EOF or the error that ended the
// stream, then the same again. Call it from one goroutine at a time.
func (f *Frontend) Next(ctx context.Context) (*agorav1.Event, error) {
	for {
		f.mu.Lock()
		closed, s, live, ended := f.closed, f.session, f.live, f.ended
		f.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if ended != nil {
			return nil, ended
		}
		if live {
			it, err := f.wait(ctx, s)
			if err != nil {
				return nil, err
			}
			if it.event != nil {
				if f.isNew(it.event.GetSequence()) {
					return it.event, nil
				}
				continue
			}
			f.mu.Lock()
			f.live = false
			if !f.follow {
				f.ended = it.err
			}
			f.mu.Unlock()
			if !f.follow {
				return nil, it.err
			}
		}
		subscribed, err := f.resubscribe(ctx, s)
		if err != nil {
			return nil, err
		}
		return subscribed, nil
	}
}

// wait takes the next item of s, or makes one of a silent stream; errors
// are the caller's context ending and the Frontend closing.
func (f *Frontend) wait(ctx context.Context, s *session) (item, error) {
	var silent <-chan time.Time
	if s.silence > 0 {
		timer := time.NewTimer(s.silence)
		defer timer.Stop()
		silent = timer.C
	}
	select {
	case it := <-s.items:
		return it, nil
	case <-silent:
		return item{err: &Error{
			Code:     codes.Unavailable,
			Message:  fmt.Sprintf("the broker at %s fell silent for %v", s.address, s.silence),
			Metadata: map[string]string{},
		}}, nil
	case <-f.done:
		return item{}, ErrClosed
	case <-ctx.Done():
		return item{}, asError(ctx.Err())
	}
}

func (f *Frontend) resubscribe(ctx context.Context, lost *session) (*agorav1.Event, error) {
	lost.close()
	request := proto.Clone(f.request).(*agorav1.SubscribeRequest)
	request.ResumeAfter = f.LastSequence()
	s, err := openOnLeader(ctx, f.endpoints, f.creds, f.failover, request, lost.address)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.close()
		return nil, ErrClosed
	}
	f.session = s
	f.live = true
	return s.subscribed, nil
}

// isNew records sequence as returned unless it was already.
func (f *Frontend) isNew(sequence uint64) bool {
	if sequence == 0 {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if sequence <= f.last {
		return false
	}
	f.last = sequence
	return true
}

// Acknowledge confirms every event up to upTo (usually the sequence of
// the event just processed): the broker no longer replays them.
func (f *Frontend) Acknowledge(ctx context.Context, upTo uint64) error {
	s, err := f.callable()
	if err != nil {
		return err
	}
	_, err = s.client.Acknowledge(ctx, &agorav1.AcknowledgeRequest{SessionId: sessionID(s), UpToSequence: upTo})
	return asError(err)
}

// AcknowledgeAll confirms every event Next has returned (up to
// LastSequence).
func (f *Frontend) AcknowledgeAll(ctx context.Context) error {
	return f.Acknowledge(ctx, f.LastSequence())
}

func sessionID(s *session) string { return s.subscribed.GetSubscribed().GetSessionId() }

// seconds is a protobuf Duration of d; zero or less stays unset.
func seconds(d time.Duration) *durationpb.Duration {
	if d <= 0 {
		return nil
	}
	return durationpb.New(d)
}

// AcquireOptions are Acquire's optional settings.
type AcquireOptions struct {
	// Constraints every slot's agent must satisfy.
	Constraints []*agorav1.Constraint
	// Gang: all slots or none.
	Gang bool
	// Revocable: whether revocable or borrowed capacity may serve.
	Revocable agorav1.Revocable
	// HoldFor: how long the leases last before they must be launched or
	// held; 0 for the broker's default.
	HoldFor time.Duration
	// WaitFor: how long to wait for capacity; 0 answers at once
	// (DEADLINE_EXCEEDED with reason NO_CAPACITY when nothing fits). The
	// call's ctx must outlast it.
	WaitFor time.Duration
	// RequestID makes a retry return the same leases.
	RequestID string
}

// Acquire leases capacity in namespace: one lease per slot granted (see
// Slot). opts may be nil.
func (f *Frontend) Acquire(ctx context.Context, namespace string, slots []*agorav1.SlotRequest, opts *AcquireOptions) ([]*agorav1.Lease, error) {
	if opts == nil {
		opts = &AcquireOptions{}
	}
	s, err := f.callable()
	if err != nil {
		return nil, err
	}
	response, err := s.client.Acquire(ctx, &agorav1.AcquireRequest{
		SessionId:   sessionID(s),
		Namespace:   namespace,
		Slots:       slots,
		Constraints: opts.Constraints,
		Gang:        opts.Gang,
		Revocable:   opts.Revocable,
		HoldFor:     seconds(opts.HoldFor),
		WaitFor:     seconds(opts.WaitFor),
		RequestId:   opts.RequestID,
	})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetLeases(), nil
}

// Hold extends leases to expire holdFor from now (capped by the
// namespace's maximum hold); returns them as extended.
func (f *Frontend) Hold(ctx context.Context, leaseIDs []string, holdFor time.Duration) ([]*agorav1.Lease, error) {
	s, err := f.callable()
	if err != nil {
		return nil, err
	}
	response, err := s.client.Hold(ctx, &agorav1.HoldRequest{
		SessionId: sessionID(s), LeaseIds: leaseIDs, HoldFor: seconds(holdFor),
	})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetLeases(), nil
}

// Release gives leases back; their agents are not leased to this frontend
// again for refuseFor (0: no such refusal).
func (f *Frontend) Release(ctx context.Context, leaseIDs []string, refuseFor time.Duration) error {
	s, err := f.callable()
	if err != nil {
		return err
	}
	_, err = s.client.Release(ctx, &agorav1.ReleaseRequest{
		SessionId: sessionID(s), LeaseIds: leaseIDs, RefuseFor: seconds(refuseFor),
	})
	return asError(err)
}

// Launch starts one task (see ShellTask) on a lease; its statuses follow as
// TaskStatus events. Not safe to repeat blindly: after an error, look for
// the task in ListTasks first.
func (f *Frontend) Launch(ctx context.Context, leaseID string, spec *agorav1.TaskSpec) (*agorav1.LaunchedTask, error) {
	tasks, err := f.LaunchMany(ctx, []*agorav1.Launch{{LeaseId: leaseID, Work: &agorav1.Launch_Task{Task: spec}}})
	if err != nil {
		return nil, err
	}
	if len(tasks) != 1 {
		return nil, &Error{Code: codes.Internal, Message: fmt.Sprintf("the broker answered %d tasks for one", len(tasks)), Metadata: map[string]string{}}
	}
	return tasks[0], nil
}

// LaunchGroup starts tasks that share one executor (a Mesos task group).
func (f *Frontend) LaunchGroup(ctx context.Context, leaseID string, specs []*agorav1.TaskSpec) ([]*agorav1.LaunchedTask, error) {
	group := &agorav1.TaskGroupSpec{Tasks: specs}
	return f.LaunchMany(ctx, []*agorav1.Launch{{LeaseId: leaseID, Work: &agorav1.Launch_TaskGroup{TaskGroup: group}}})
}

// LaunchMany makes several launches in one call, started whole or not at
// all.
func (f *Frontend) LaunchMany(ctx context.Context, launches []*agorav1.Launch) ([]*agorav1.LaunchedTask, error) {
	s, err := f.callable()
	if err != nil {
		return nil, err
	}
	response, err := s.client.Launch(ctx, &agorav1.LaunchRequest{SessionId: sessionID(s), Launches: launches})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetTasks(), nil
}

// Kill asks Mesos to kill tasks (Agora's ids: LaunchedTask.TaskId), with
// grace between the polite signal and the forced kill (0: Mesos's
// default).
func (f *Frontend) Kill(ctx context.Context, taskIDs []string, grace time.Duration) error {
	s, err := f.callable()
	if err != nil {
		return err
	}
	_, err = s.client.Kill(ctx, &agorav1.KillRequest{SessionId: sessionID(s), TaskIds: taskIDs, Grace: seconds(grace)})
	return asError(err)
}

// Reconcile returns the latest recorded statuses of these tasks (every
// live one when none is named); fresher ones follow as events.
func (f *Frontend) Reconcile(ctx context.Context, taskIDs []string) ([]*agorav1.TaskStatus, error) {
	s, err := f.callable()
	if err != nil {
		return nil, err
	}
	response, err := s.client.Reconcile(ctx, &agorav1.ReconcileRequest{SessionId: sessionID(s), TaskIds: taskIDs})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetTasks(), nil
}

// ListLeases returns the frontend's live leases (in namespace, unless "").
func (f *Frontend) ListLeases(ctx context.Context, namespace string) ([]*agorav1.Lease, error) {
	s, err := f.callable()
	if err != nil {
		return nil, err
	}
	response, err := s.client.ListLeases(ctx, &agorav1.ListLeasesRequest{SessionId: sessionID(s), Namespace: namespace})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetLeases(), nil
}

// ListTasks returns the latest status of each task the broker remembers
// (in namespace, unless "").
func (f *Frontend) ListTasks(ctx context.Context, namespace string) ([]*agorav1.TaskStatus, error) {
	s, err := f.callable()
	if err != nil {
		return nil, err
	}
	response, err := s.client.ListTasks(ctx, &agorav1.ListTasksRequest{SessionId: sessionID(s), Namespace: namespace})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetTasks(), nil
}

// ListAgents returns the agents Agora holds capacity of, with what it
// holds.
func (f *Frontend) ListAgents(ctx context.Context) ([]*agorav1.AgentView, error) {
	s, err := f.callable()
	if err != nil {
		return nil, err
	}
	response, err := s.client.ListAgents(ctx, &agorav1.ListAgentsRequest{SessionId: sessionID(s)})
	if err != nil {
		return nil, asError(err)
	}
	return response.GetAgents(), nil
}
