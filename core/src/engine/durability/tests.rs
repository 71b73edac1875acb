//! Recovery's edges: tasks adopted from Mesos's reports by the owner their
//! id names, dotted names included, and only while recovering.

use crate::durable::{Durable, FrontendRecord};
use crate::testing::*;
use crate::*;

fn recovering(frontends: &[&str]) -> Core {
    let mut core = core();
    let mut durable = Durable::default();
    for name in frontends {
        let name = FrontendName((*name).into());
        durable.frontends.insert(
            name.clone(),
            FrontendRecord {
                name,
                owner: Some("tests".into()),
                namespaces: vec!["default".into()],
                next_sequence: 0,
                draining: None,
            },
        );
    }
    core.recover(Timestamp(1), durable);
    core.take_changes();
    core
}

#[test]
fn a_dotted_task_id_is_split_by_the_names_known() {
    let core = recovering(&["web.frontend"]);
    let named = |id: &str| core.owner_named_in(&TaskId(id.into()));
    assert_eq!(
        named("default.web.frontend.job.7.t-boot-3"),
        Some((
            "default".into(),
            FrontendName("web.frontend".into()),
            "job.7".into()
        ))
    );
    assert_eq!(
        named("default.other.job.7.t-boot-3"),
        Some((
            "default".into(),
            FrontendName("other".into()),
            "job.7".into()
        )),
        "an unknown frontend is taken to end at the first dot"
    );
    assert_eq!(named("nowhere.web.job.t-boot-3"), None, "no such namespace");
    assert_eq!(named("default.web.job"), None, "not an id of Agora's");
}

#[test]
fn a_live_task_the_store_missed_is_adopted_by_the_frontend_its_id_names() {
    let mut core = recovering(&["web"]);
    let task = TaskId("default.web.job.t-boot-3".into());
    core.status_update(
        Timestamp(2),
        update(&task, TaskState::Running, Some(vec![1])),
    );
    let record = core.tasks.get(&task).expect("adopted");
    assert_eq!(record.frontend, FrontendName("web".into()));
    assert_eq!(record.client_id, "job");
    assert_eq!(record.state, TaskState::Running);
    let changes = core.take_changes();
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, durable::Change::Task(t) if t.id == task)),
        "and written: {changes:?}"
    );
    assert!(
        changes.iter().any(|c| matches!(
            c,
            durable::Change::Event { event: FrontendEvent::TaskStatus(t), .. } if t.id == task
        )),
        "and its frontend told"
    );
}

#[test]
fn a_finished_task_the_store_missed_is_not_adopted() {
    let mut core = recovering(&["web"]);
    let task = TaskId("default.web.job.t-boot-3".into());
    core.status_update(
        Timestamp(2),
        update(&task, TaskState::Finished, Some(vec![1])),
    );
    assert!(core.tasks.get(&task).is_none());
}
