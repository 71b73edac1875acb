package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agora-broker/agora/clients/go/internal/agoradev"
)

var address string

func TestMain(m *testing.M) { agoradev.Run(m, &address) }

func TestRunsACommandToFinished(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"--broker", address, "--frontend", "example-ok", "--", "echo", "it's", "here"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{"lease ", " launched\n", "TASK_STATE_RUNNING", "TASK_STATE_FINISHED"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in the output:\n%s", want, out)
		}
	}
}

func TestAFailingCommandExitsOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"--broker", address, "--frontend", "example-fail", "--", "sh", "-c", "exit 3"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stdout.String(), "TASK_STATE_FAILED") {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
}

func TestAnErrorExitsTwo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--broker", address, "--namespace", "no-such-namespace", "--", "true"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "NOT_FOUND (NAMESPACE_NOT_FOUND)") {
		t.Fatalf("exit %d; stderr:\n%s", code, &stderr)
	}
}

func TestShellJoinQuotes(t *testing.T) {
	got := shellJoin([]string{"echo", "it's", "a b", "", "x=1"})
	if want := `echo 'it'"'"'s' 'a b' '' x=1`; got != want {
		t.Fatalf("shellJoin = %s, want %s", got, want)
	}
}
