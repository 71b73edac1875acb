// Package agora is a small client for frontend schedulers of Agora, the
// gRPC resource broker for Apache Mesos: a Frontend subscribes to the
// broker (following the leader among its replicas), acquires, holds and
// releases leases, launches and kills tasks, and reads its events with
// Next, resubscribing with resume_after when the stream breaks and
// dropping events it already returned.
//
// The wire types are the generated package
// github.com/agora-broker/agora/clients/go/gen/agora/v1 (agorav1),
// generated from the repository's proto/ by generate.sh; proto/agora/v1
// documents every field, default, bound and error.
//
// # Layout
//
//   - frontend.go: Frontend, its events and calls.
//   - session.go: one Subscribe stream, and the search for the leader.
//   - dial.go: Credentials and Dial, a connection for the generated clients.
//   - errors.go: Error (code, message, ErrorInfo reason and metadata,
//     BadRequest field violations) and NoLeaderError.
//   - helpers.go: Slot, ShellTask, ArgvTask, IsTerminal.
//
// A frontend that runs one command (examples/runcommand has the whole
// program):
//
//	f, err := agora.Subscribe(ctx, []string{"http://127.0.0.1:50051"}, "demo", []string{"default"}, nil)
//	if err != nil { ... }
//	defer f.Close()
//	leases, err := f.Acquire(ctx, "default", []*agorav1.SlotRequest{agora.Slot(0.1, 32)},
//		&agora.AcquireOptions{WaitFor: 20 * time.Second})
//	task, err := f.Launch(ctx, leases[0].Id, agora.ShellTask("hello", "echo hello", 0.1, 32))
//	for {
//		event, err := f.Next(ctx)
//		...
//		if event.GetSequence() != 0 { f.Acknowledge(ctx, event.GetSequence()) }
//		if st := event.GetTaskStatus(); st.GetTaskId() == task.TaskId && agora.IsTerminal(st.GetState()) { break }
//	}
package agora
