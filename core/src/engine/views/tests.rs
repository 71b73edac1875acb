//! What the core shows: a namespace's usage counts its leases and live
//! tasks, and a task's terminal state is final.

use std::time::Duration;

use crate::testing::*;
use crate::*;

#[test]
fn usage_follows_leases_and_live_tasks_and_a_terminal_state_is_final() {
    let (mut core, s, task_id) = one_launched_task();
    assert_eq!(
        core.usage("default"),
        res(1.0, 128.0),
        "the task, not its lease"
    );
    core.offers(T0, vec![offer("o2", 1, res(3.0, 896.0))]);
    let lease = lease_now(&mut core, &s, 1.0, 64.0);
    assert_eq!(core.usage("default"), res(2.0, 192.0));
    core.release(T0, &s, &[lease.id], Duration::ZERO).unwrap();
    core.status_update(
        Timestamp::default(),
        update(&task_id, TaskState::Finished, None),
    );
    assert_eq!(core.usage("default"), Resources::default());
    core.drain_effects();
    // A stale RUNNING after FINISHED is acknowledged and goes no further.
    core.status_update(
        Timestamp::default(),
        update(&task_id, TaskState::Running, Some(vec![7])),
    );
    assert!(matches!(
        mesos_calls(&core.drain_effects()).as_slice(),
        [MesosCall::Acknowledge { .. }]
    ));
    assert_eq!(
        core.tasks_of(&s, None).unwrap()[0].state,
        TaskState::Finished
    );
    assert_eq!(core.usage("default"), Resources::default());
}
