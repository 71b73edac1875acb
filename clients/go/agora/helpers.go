package agora

import agorav1 "github.com/agora-broker/agora/clients/go/gen/agora/v1"

// terminal are the task states after which a task never changes again
// (TaskState in resources.proto).
var terminal = map[agorav1.TaskState]bool{
	agorav1.TaskState_TASK_STATE_FINISHED:         true,
	agorav1.TaskState_TASK_STATE_FAILED:           true,
	agorav1.TaskState_TASK_STATE_KILLED:           true,
	agorav1.TaskState_TASK_STATE_ERROR:            true,
	agorav1.TaskState_TASK_STATE_LOST:             true,
	agorav1.TaskState_TASK_STATE_DROPPED:          true,
	agorav1.TaskState_TASK_STATE_GONE:             true,
	agorav1.TaskState_TASK_STATE_GONE_BY_OPERATOR: true,
}

// IsTerminal tells whether a task in state is done for good.
func IsTerminal(state agorav1.TaskState) bool { return terminal[state] }

// Slot is a request for one slot of cpus and memMB megabytes of memory;
// set Count, PortCount or more Resources on it as needed.
func Slot(cpus, memMB float64) *agorav1.SlotRequest {
	return &agorav1.SlotRequest{
		Resources: &agorav1.Resources{Cpus: cpus, MemMb: memMB},
		Count:     1,
	}
}

// ShellTask is a TaskSpec running shell with /bin/sh -c, using cpus and
// memMB megabytes of its lease. id is the frontend's own id for it (unique
// among its live tasks); set Name, Labels or Command.Environment as needed.
func ShellTask(id, shell string, cpus, memMB float64) *agorav1.TaskSpec {
	return &agorav1.TaskSpec{
		Id:        id,
		Resources: &agorav1.Resources{Cpus: cpus, MemMb: memMB},
		Command:   &agorav1.Command{Shell: shell},
	}
}

// ArgvTask is ShellTask for a program run directly: argv[0] with its
// arguments, no shell.
func ArgvTask(id string, argv []string, cpus, memMB float64) *agorav1.TaskSpec {
	spec := ShellTask(id, "", cpus, memMB)
	spec.Command.Argv = append([]string(nil), argv...)
	return spec
}
