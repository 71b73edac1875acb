"""A minimal pymesos scheduler: launches `echo hello` on the first offer,
acknowledges every status update explicitly, and exits 0 once the task is
TASK_FINISHED (non-zero on any other terminal state, an error or a
timeout).

Usage: scheduler.py HOST:PORT
"""

import logging
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR",
            "TASK_LOST", "TASK_DROPPED", "TASK_GONE"}


class HelloScheduler(Scheduler):
    def __init__(self):
        self.launched = False
        self.states = []
        self.outcome = None
        self.done = threading.Event()

    def registered(self, driver, framework_id, master_info):
        print("registered", framework_id["value"], "with master", master_info.get("version"), flush=True)

    def resourceOffers(self, driver, offers):
        for offer in offers:
            if self.launched:
                driver.declineOffer(offer["id"], filters={"refuse_seconds": 3600})
                continue
            task = {
                "task_id": {"value": "hello"},
                "agent_id": offer["agent_id"],
                "name": "hello",
                "command": {"value": "echo hello"},
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                ],
            }
            print("launching on", offer["hostname"], flush=True)
            driver.launchTasks(offer["id"], [task], filters={"refuse_seconds": 3600})
            self.launched = True

    def statusUpdate(self, driver, update):
        state = update["state"]
        self.states.append(state)
        print("status", update["task_id"]["value"], state, flush=True)
        driver.acknowledgeStatusUpdate(update)
        if state in TERMINAL:
            self.outcome = state
            self.done.set()

    def error(self, driver, message):
        print("error", message, flush=True)
        self.outcome = "ERROR: " + message
        self.done.set()


def main():
    logging.basicConfig(level=logging.INFO)
    master = sys.argv[1]
    scheduler = HelloScheduler()
    framework = {"user": "nobody", "name": "pymesos-hello", "hostname": "localhost"}
    driver = MesosSchedulerDriver(scheduler, framework, master, implicit_acknowledgements=False)
    driver.start()
    finished = scheduler.done.wait(timeout=60)
    driver.stop()
    driver.join()
    print("states", " ".join(scheduler.states), flush=True)
    if not finished:
        print("timed out", flush=True)
        return 3
    return 0 if scheduler.outcome == "TASK_FINISHED" else 1


if __name__ == "__main__":
    sys.exit(main())
