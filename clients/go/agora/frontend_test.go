package agora_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agora-broker/agora/clients/go/agora"
	agorav1 "github.com/agora-broker/agora/clients/go/gen/agora/v1"
)

func subscribe(t *testing.T, ctx context.Context, name string, opts *agora.Options) *agora.Frontend {
	t.Helper()
	f, err := agora.Subscribe(ctx, []string{address}, name, []string{"default"}, opts)
	if err != nil {
		t.Fatalf("subscribe as %s: %v", name, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// launch acquires one small slot in `default` and launches shell on it.
func launch(t *testing.T, ctx context.Context, f *agora.Frontend, taskID, shell string) *agorav1.LaunchedTask {
	t.Helper()
	leases, err := f.Acquire(ctx, "default", []*agorav1.SlotRequest{agora.Slot(0.1, 32)},
		&agora.AcquireOptions{WaitFor: 20 * time.Second})
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	if len(leases) != 1 {
		t.Fatalf("acquire: %d leases, want 1: %v", len(leases), leases)
	}
	launched, err := f.Launch(ctx, leases[0].GetId(), agora.ShellTask(taskID, shell, 0.1, 32))
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	return launched
}

type seen struct {
	sequence uint64
	state    agorav1.TaskState
}

// statusesUntilTerminal reads events until the task (Agora's id) is
// terminal, acknowledging each sequenced event if asked.
func statusesUntilTerminal(t *testing.T, ctx context.Context, f *agora.Frontend, taskID string, acknowledge bool) []seen {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var got []seen
	for {
		event, err := f.Next(ctx)
		if err != nil {
			t.Fatalf("task %s not terminal (saw %v): %v", taskID, got, err)
		}
		if acknowledge && event.GetSequence() != 0 {
			if err := f.Acknowledge(ctx, event.GetSequence()); err != nil {
				t.Fatalf("acknowledge %d: %v", event.GetSequence(), err)
			}
		}
		if st := event.GetTaskStatus(); st != nil && st.GetTaskId() == taskID {
			got = append(got, seen{event.GetSequence(), st.GetState()})
			if agora.IsTerminal(st.GetState()) {
				return got
			}
		}
	}
}

func TestRunsATaskToFinishedAndAcknowledgesItsStatuses(t *testing.T) {
	ctx := context.Background()
	name := unique("run")
	f := subscribe(t, ctx, name, nil)
	if f.FrontendID() != name || f.SessionID() == "" {
		t.Fatalf("frontend %q session %q", f.FrontendID(), f.SessionID())
	}
	launched := launch(t, ctx, f, "hello", "echo hello")
	if launched.GetClientTaskId() != "hello" {
		t.Fatalf("client task id %q", launched.GetClientTaskId())
	}
	got := statusesUntilTerminal(t, ctx, f, launched.GetTaskId(), true)
	if last := got[len(got)-1].state; last != agorav1.TaskState_TASK_STATE_FINISHED {
		t.Fatalf("ended %v, want TASK_STATE_FINISHED; saw %v", last, got)
	}
	for i, s := range got {
		if s.sequence == 0 || (i > 0 && s.sequence <= got[i-1].sequence) {
			t.Fatalf("sequences not increasing from 1: %v", got)
		}
	}
	if f.LastSequence() < got[len(got)-1].sequence {
		t.Fatalf("last sequence %d below %d", f.LastSequence(), got[len(got)-1].sequence)
	}
	tasks, err := f.ListTasks(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, task := range tasks {
		if task.GetTaskId() == launched.GetTaskId() {
			found = task.GetState() == agorav1.TaskState_TASK_STATE_FINISHED
		}
	}
	if !found {
		t.Fatalf("ListTasks has no finished %s: %v", launched.GetTaskId(), tasks)
	}
	_ = f.Close()
	if _, err := f.Next(ctx); !errors.Is(err, agora.ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}

	// Everything was acknowledged: a new session replays nothing.
	again := subscribe(t, ctx, name, nil)
	quiet, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		event, err := again.Next(quiet)
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if event.GetSequence() != 0 {
			t.Fatalf("replayed after acknowledgement: %v", event)
		}
	}
}

func TestAnInvalidRequestFailsWithCodeReasonAndField(t *testing.T) {
	ctx := context.Background()
	f := subscribe(t, ctx, unique("invalid"), nil)

	_, err := f.Acquire(ctx, "default", []*agorav1.SlotRequest{agora.Slot(-1, 32)}, nil)
	var failed *agora.Error
	if !errors.As(err, &failed) {
		t.Fatalf("acquire with cpus -1: %v (%T), want *agora.Error", err, err)
	}
	if failed.Code != codes.InvalidArgument || failed.Reason != "INVALID_FIELD" {
		t.Fatalf("code %v reason %q, want InvalidArgument INVALID_FIELD: %v", failed.Code, failed.Reason, failed)
	}
	if failed.Field() != "slots[0].resources.cpus" {
		t.Fatalf("field %q, want slots[0].resources.cpus: %v", failed.Field(), failed)
	}
	if len(failed.FieldViolations) == 0 || failed.FieldViolations[0].Field != failed.Field() {
		t.Fatalf("field violations %v", failed.FieldViolations)
	}
	if !strings.Contains(failed.Message, "slots[0].resources.cpus") {
		t.Fatalf("message %q does not name the field", failed.Message)
	}
	if !strings.HasPrefix(failed.Error(), "INVALID_ARGUMENT (INVALID_FIELD): ") {
		t.Fatalf("Error() = %q", failed.Error())
	}
	if status.Code(err) != codes.InvalidArgument || failed.Unavailable() {
		t.Fatalf("status.Code %v, unavailable %v", status.Code(err), failed.Unavailable())
	}

	_, err = f.Hold(ctx, []string{"no-such-lease"}, 10*time.Second)
	if !errors.As(err, &failed) || failed.Code != codes.NotFound || failed.Reason != "LEASE_NOT_FOUND" ||
		failed.Metadata["lease"] != "no-such-lease" {
		t.Fatalf("hold of an unknown lease: %v", err)
	}
}

func TestSubscribeErrorsReturnAtOnce(t *testing.T) {
	started := time.Now()
	_, err := agora.Subscribe(context.Background(), []string{address}, unique("ns"),
		[]string{"no-such-namespace"}, nil)
	var failed *agora.Error
	if !errors.As(err, &failed) || failed.Code != codes.NotFound || failed.Reason != "NAMESPACE_NOT_FOUND" ||
		failed.Metadata["namespace"] != "no-such-namespace" {
		t.Fatalf("subscribe to a missing namespace: %v", err)
	}
	if waited := time.Since(started); waited > 10*time.Second {
		t.Fatalf("took %v: a refusal is not a reason to search for a leader", waited)
	}
}

func TestResubscribingReplaysUnacknowledgedEventsOnce(t *testing.T) {
	ctx := context.Background()
	name := unique("replay")
	f := subscribe(t, ctx, name, nil)
	launched := launch(t, ctx, f, "unacked", "true")
	first := statusesUntilTerminal(t, ctx, f, launched.GetTaskId(), false)
	if len(first) < 2 {
		t.Fatalf("only %v", first)
	}
	_ = f.Close()

	// Nothing was acknowledged: a new session gets every event again.
	again := subscribe(t, ctx, name, nil)
	replayed := statusesUntilTerminal(t, ctx, again, launched.GetTaskId(), false)
	if len(replayed) != len(first) {
		t.Fatalf("replayed %v, first %v", replayed, first)
	}
	for i := range first {
		if replayed[i] != first[i] {
			t.Fatalf("replayed %v, first %v", replayed, first)
		}
	}
	// Acknowledge the first only; a session resuming after the first gets
	// the rest, and one resuming after the last gets nothing.
	if err := again.Acknowledge(ctx, first[0].sequence); err != nil {
		t.Fatal(err)
	}
	_ = again.Close()
	rest := subscribe(t, ctx, name, &agora.Options{ResumeAfter: first[0].sequence})
	tail := statusesUntilTerminal(t, ctx, rest, launched.GetTaskId(), true)
	if len(tail) != len(first)-1 || tail[0] != first[1] {
		t.Fatalf("resumed after %d: %v, first %v", first[0].sequence, tail, first)
	}
}
