#!/usr/bin/env python3
"""A complete Agora frontend: runs one shell command on the cluster.

It subscribes, acquires a slot, launches the command on it, prints each
status of the task as it comes, acknowledges it, and exits 0 when the task
finished, 1 when it ended otherwise.

    agora dev &                      # prints: listening on http://127.0.0.1:50051
    python3 examples/run_command.py --broker http://127.0.0.1:50051 -- echo hello

Several --broker flags name the replicas of a broker; the frontend follows
the leader among them. --token-file and --ca-file are for a broker that
authenticates its callers.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import uuid

import agora
from agora.v1 import resources_pb2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--broker",
        action="append",
        help="broker address (repeat for replicas); "
        "default $AGORA_ADDRESS or http://127.0.0.1:50051",
    )
    parser.add_argument("--frontend", default="run-command", help="the frontend's name")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--cpus", type=float, default=0.1)
    parser.add_argument("--mem", type=float, default=64, help="memory in MB")
    parser.add_argument("--wait", type=float, default=30, help="seconds to wait for capacity")
    parser.add_argument("--token-file", help="file holding a bearer token")
    parser.add_argument("--ca-file", help="PEM of the CA that signed the broker's certificate")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("name a command to run, after --")

    brokers = args.broker or [os.environ.get("AGORA_ADDRESS", "http://127.0.0.1:50051")]
    token = open(args.token_file).read().strip() if args.token_file else None
    credentials = agora.Credentials(token=token, ca_file=args.ca_file)

    try:
        with agora.Frontend(
            brokers, args.frontend, [args.namespace], credentials=credentials
        ) as frontend:
            leases = frontend.acquire(
                args.namespace, [agora.slot(cpus=args.cpus, mem_mb=args.mem)], wait_for=args.wait
            )
            lease = leases[0]
            print(f"lease {lease.id} on {lease.agent.hostname}", flush=True)
            spec = agora.task(
                f"cmd-{uuid.uuid4().hex[:8]}", shlex.join(command), cpus=args.cpus, mem_mb=args.mem
            )
            launched = frontend.launch(lease.id, spec)
            print(f"task {launched.task_id} launched", flush=True)
            for event in frontend.events():
                if event.HasField("task_status") and event.task_status.task_id == launched.task_id:
                    status = event.task_status
                    state = resources_pb2.TaskState.Name(status.state)
                    print(f"{state} {status.message}".rstrip(), flush=True)
                if event.sequence:
                    frontend.acknowledge(event.sequence)
                if (
                    event.HasField("task_status")
                    and event.task_status.task_id == launched.task_id
                    and agora.is_terminal(event.task_status.state)
                ):
                    return 0 if event.task_status.state == resources_pb2.TASK_STATE_FINISHED else 1
    except agora.AgoraError as error:
        print(f"run_command: {error}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
