// Package agoradev runs a real `agora dev` (broker plus embedded
// devcluster) on a free port for the tests of this module. The binary is
// $AGORA_BIN, else <repo>/target/debug/agora (built by
// `cargo build -p agora-broker`).
package agoradev

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
)

const startTimeout = 60 * time.Second

// Run is a test package's TestMain: it starts `agora dev`, sets *address
// to its address (such as http://127.0.0.1:41234), runs the tests, stops
// the broker and exits with the tests' code. When the broker cannot start
// (no binary, or it does not become SERVING) it says why and exits 1.
func Run(m *testing.M, address *string) {
	started, stop, err := start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "agora tests: %v\n", err)
		os.Exit(1)
	}
	*address = started
	code := m.Run()
	stop()
	os.Exit(code)
}

// repoRoot is the checkout holding the test's package: the nearest
// directory above the working directory with clients/go/go.mod, links
// resolved first (debian-go.sh runs the tests through a GOPATH link).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	for start := dir; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "clients", "go", "go.mod")); err == nil {
			return dir, nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("no clients/go/go.mod above %s", start)
		}
	}
}

func agoraBin() (string, error) {
	path := os.Getenv("AGORA_BIN")
	hint := "point AGORA_BIN at one"
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			return "", fmt.Errorf("AGORA_BIN is not set and %w", err)
		}
		path = filepath.Join(root, "target", "debug", "agora")
		hint = fmt.Sprintf("run `cargo build -p agora-broker` in %s or %s", root, hint)
	}
	info, err := os.Stat(path)
	if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("no agora binary at %s: %s", path, hint)
	}
	return path, nil
}

// start runs `agora dev` until the returned stop is called; it
// returns once the broker is SERVING (subscribed to Mesos).
func start() (string, func(), error) {
	bin, err := agoraBin()
	if err != nil {
		return "", nil, err
	}
	logDir, err := os.MkdirTemp("", "agora-go-test-")
	if err != nil {
		return "", nil, err
	}
	logPath := filepath.Join(logDir, "agora-dev.log")
	log, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "dev", "--listen", "127.0.0.1:0", "--agents", "2",
		"--agent-resources", "cpus:4;mem:4096;disk:10000;ports:[31000-31999]")
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	var exited atomic.Bool
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		exited.Store(true)
		close(waited)
	}()
	stop := func() {
		if !exited.Load() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-waited:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-waited
			}
		}
		_ = log.Close()
		_ = os.RemoveAll(logDir)
	}
	fail := func(why string) (string, func(), error) {
		stop()
		tail, _ := os.ReadFile(logPath)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return "", nil, fmt.Errorf("agora dev %s within %v; its log ends:\n%s", why, startTimeout, tail)
	}

	found := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			if line := lines.Text(); strings.HasPrefix(line, "listening on ") {
				fields := strings.Fields(line)
				select {
				case found <- fields[len(fields)-1]:
				default:
				}
			}
		}
	}()
	deadline := time.Now().Add(startTimeout)
	var address string
	select {
	case address = <-found:
	case <-waited:
		return fail("exited before printing its address")
	case <-time.After(startTimeout):
		return fail("did not print its address")
	}
	for !serving(address) {
		if exited.Load() || time.Now().After(deadline) {
			return fail("did not become SERVING")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return address, stop, nil
}

// serving tells whether grpc.health.v1 answers SERVING.
func serving(address string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, strings.TrimPrefix(address, "http://"), grpc.WithInsecure())
	if err != nil {
		return false
	}
	defer conn.Close()
	answer, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	return err == nil && answer.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING
}
