// Command runcommand is a complete Agora frontend: it runs one command on
// the cluster.
//
// It subscribes, acquires a slot, launches the command on it, prints each
// status of the task as it comes, acknowledges it, and exits 0 when the
// task finished, 1 when it ended otherwise, 2 on an error.
//
//	agora dev &    # prints: listening on http://127.0.0.1:50051
//	go run ./examples/runcommand --broker http://127.0.0.1:50051 -- echo hello
//
// Several --broker flags name the replicas of a broker; the frontend
// follows the leader among them. --token-file and --ca-file are for a
// broker that authenticates its callers.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/agora-broker/agora/clients/go/agora"
	agorav1 "github.com/agora-broker/agora/clients/go/gen/agora/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// brokers collects repeated --broker flags.
type brokers []string

func (b *brokers) String() string     { return strings.Join(*b, ",") }
func (b *brokers) Set(v string) error { *b = append(*b, v); return nil }

// run is the program, with its arguments and outputs passed in so that a
// test can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("runcommand", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var endpoints brokers
	flags.Var(&endpoints, "broker", "broker address (repeat for replicas); default $AGORA_ADDRESS or http://127.0.0.1:50051")
	frontend := flags.String("frontend", "run-command", "the frontend's name")
	namespace := flags.String("namespace", "default", "the namespace to run in")
	cpus := flags.Float64("cpus", 0.1, "CPUs for the task")
	mem := flags.Float64("mem", 64, "memory in MB for the task")
	wait := flags.Duration("wait", 30*time.Second, "how long to wait for capacity")
	tokenFile := flags.String("token-file", "", "file holding a bearer token")
	caFile := flags.String("ca-file", "", "PEM of the CA that signed the broker's certificate")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: runcommand [flags] -- command [args...]")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	command := flags.Args()
	if len(command) == 0 {
		fmt.Fprintln(stderr, "runcommand: name a command to run, after --")
		return 2
	}
	if len(endpoints) == 0 {
		address := os.Getenv("AGORA_ADDRESS")
		if address == "" {
			address = "http://127.0.0.1:50051"
		}
		endpoints = brokers{address}
	}
	creds := agora.Credentials{CAFile: *caFile}
	if *tokenFile != "" {
		token, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "runcommand: %v\n", err)
			return 2
		}
		creds.Token = strings.TrimSpace(string(token))
	}

	state, err := runTask(ctx, endpoints, *frontend, *namespace, command, *cpus, *mem, *wait, creds, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "runcommand: %v\n", err)
		return 2
	}
	if state != agorav1.TaskState_TASK_STATE_FINISHED {
		return 1
	}
	return 0
}

// runTask runs command on one slot and returns the task's terminal state.
func runTask(
	ctx context.Context,
	endpoints []string,
	name, namespace string,
	command []string,
	cpus, mem float64,
	wait time.Duration,
	creds agora.Credentials,
	out io.Writer,
) (agorav1.TaskState, error) {
	f, err := agora.Subscribe(ctx, endpoints, name, []string{namespace}, &agora.Options{Credentials: creds})
	if err != nil {
		return 0, err
	}
	defer f.Close()

	// The call's deadline leaves the broker time to answer after wait.
	acquireCtx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	leases, err := f.Acquire(acquireCtx, namespace, []*agorav1.SlotRequest{agora.Slot(cpus, mem)},
		&agora.AcquireOptions{WaitFor: wait})
	cancel()
	if err != nil {
		return 0, err
	}
	lease := leases[0]
	fmt.Fprintf(out, "lease %s on %s\n", lease.GetId(), lease.GetAgent().GetHostname())

	spec := agora.ShellTask("cmd-"+randomHex(4), shellJoin(command), cpus, mem)
	launched, err := f.Launch(ctx, lease.GetId(), spec)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(out, "task %s launched\n", launched.GetTaskId())

	for {
		event, err := f.Next(ctx)
		if err != nil {
			return 0, err
		}
		status := event.GetTaskStatus()
		mine := status != nil && status.GetTaskId() == launched.GetTaskId()
		if mine {
			fmt.Fprintln(out, strings.TrimSpace(status.GetState().String()+" "+status.GetMessage()))
		}
		if event.GetSequence() != 0 {
			if err := f.Acknowledge(ctx, event.GetSequence()); err != nil {
				return 0, err
			}
		}
		if mine && agora.IsTerminal(status.GetState()) {
			return status.GetState(), nil
		}
	}
}

// shellJoin quotes words for /bin/sh -c, so that the task runs them as
// given.
func shellJoin(words []string) string {
	quoted := make([]string, len(words))
	for i, word := range words {
		if word != "" && strings.Trim(word, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
			quoted[i] = word
		} else {
			quoted[i] = "'" + strings.ReplaceAll(word, "'", `'"'"'`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprint(time.Now().UnixNano())
	}
	return hex.EncodeToString(b)
}
