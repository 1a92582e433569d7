use super::*;
use crate::domain::{DeploymentId, Timestamp};

const UNDER_WAY: [Option<Operation>; 4] = [
    None,
    Some(Operation::Start),
    Some(Operation::Stop),
    Some(Operation::Restart),
];

fn code(admission: &Admission) -> char {
    match admission {
        Admission::Run => 'R',
        Admission::Join => 'J',
        Admission::Refuse(_) => '-',
    }
}

/// Every stage × pending restart × operation under way × action, written out:
/// a change to the rule has to change this table too. Each row gives, for one
/// stage and action, the answer without a pending restart (under way: none,
/// start, stop, restart), then with one (same order). R runs, J joins, - refuses.
#[test]
fn every_condition_and_action_is_admitted_or_refused_as_designed() {
    use Stage::*;
    let table: &[(Stage, Action, &str)] = &[
        (Pending, Action::Start, "RRRR RRRR"),
        (Pending, Action::Stop, "RRRR RRRR"),
        (Pending, Action::Restart, "---- ----"),
        (Pending, Action::Delete, "RRRR RRRR"),
        (Validate, Action::Start, "---- ----"),
        (Validate, Action::Stop, "RRRR RRRR"),
        (Validate, Action::Restart, "---- ----"),
        (Validate, Action::Delete, "RRRR RRRR"),
        (Build, Action::Start, "---- ----"),
        (Build, Action::Stop, "RRRR RRRR"),
        (Build, Action::Restart, "---- ----"),
        (Build, Action::Delete, "RRRR RRRR"),
        (Deploy, Action::Start, "---- ----"),
        (Deploy, Action::Stop, "RRRR RRRR"),
        (Deploy, Action::Restart, "---- ----"),
        (Deploy, Action::Delete, "RRRR RRRR"),
        (Running, Action::Start, "---- ----"),
        (Running, Action::Stop, "RRRR RRRR"),
        (Running, Action::Restart, "RRRR RRRR"),
        (Running, Action::Delete, "RRRR RRRR"),
        (Stopping, Action::Start, "---- ----"),
        (Stopping, Action::Stop, "RRJR RRJR"),
        (Stopping, Action::Restart, "---- ----"),
        (Stopping, Action::Delete, "RRRR RRRR"),
        (Stopped, Action::Start, "---- ----"),
        (Stopped, Action::Stop, "---- RRRR"),
        (Stopped, Action::Restart, "RRRR RRRR"),
        (Stopped, Action::Delete, "RRRR RRRR"),
        (Failed, Action::Start, "---- ----"),
        (Failed, Action::Stop, "---- RRRR"),
        (Failed, Action::Restart, "RRRR RRRR"),
        (Failed, Action::Delete, "RRRR RRRR"),
    ];
    let mut checked = 0;
    for stage in Stage::ALL {
        for action in Action::ALL {
            let expected = table
                .iter()
                .find(|(row_stage, row_action, _)| *row_stage == stage && *row_action == action)
                .map(|(_, _, codes)| codes.replace(' ', ""))
                .unwrap_or_else(|| panic!("no row for {stage} {action:?}"));
            let mut actual = String::new();
            for restart_pending in [false, true] {
                for under_way in UNDER_WAY {
                    let condition = Condition {
                        stage,
                        restart_pending,
                        under_way,
                    };
                    actual.push(code(&admit(condition, action)));
                    checked += 1;
                }
            }
            assert_eq!(actual, expected, "{stage} {action:?}");
        }
    }
    assert_eq!(checked, 8 * 2 * 4 * 4);
}

#[test]
fn refusals_say_why() {
    let stopped = Condition {
        stage: Stage::Stopped,
        restart_pending: false,
        under_way: None,
    };
    assert_eq!(
        admit(stopped, Action::Stop),
        Admission::Refuse("already stopped".to_owned())
    );
    let building = Condition {
        stage: Stage::Build,
        ..stopped
    };
    match admit(building, Action::Restart) {
        Admission::Refuse(reason) => assert!(reason.contains("stage build"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

fn workload(stage: Stage, generation: u64) -> Workload {
    let mut workload = Workload::new(DeploymentId::generate());
    workload.stage = stage;
    workload.generation = generation;
    workload
}

#[test]
fn a_workload_waiting_for_a_policy_restart_can_be_stopped() {
    let mut failed = workload(Stage::Failed, 1);
    failed.next_restart_at = Some(Timestamp(1));
    let allowed = allowed_actions(Condition::of(&failed));
    assert_eq!(allowed, [Action::Stop, Action::Restart, Action::Delete]);
    failed.next_restart_at = None;
    let allowed = allowed_actions(Condition::of(&failed));
    assert_eq!(allowed, [Action::Restart, Action::Delete]);
}

#[test]
fn start_is_done_when_running_and_failed_when_the_run_is_over() {
    let before = workload(Stage::Pending, 1);
    let goal = Goal::of(Operation::Start, &before);
    for (stage, verdict) in [
        (Stage::Pending, Verdict::Underway),
        (Stage::Validate, Verdict::Underway),
        (Stage::Build, Verdict::Underway),
        (Stage::Deploy, Verdict::Underway),
        (Stage::Running, Verdict::Succeeded),
        (Stage::Stopping, Verdict::Underway),
        (Stage::Stopped, Verdict::Failed),
        (Stage::Failed, Verdict::Failed),
    ] {
        assert_eq!(goal.verdict(&workload(stage, 1)), verdict, "{stage}");
    }
}

#[test]
fn restart_is_judged_on_the_next_generation() {
    let before = workload(Stage::Running, 3);
    let goal = Goal::of(Operation::Restart, &before);
    assert_eq!(goal.generation, 4);
    // The stop of the old run is part of the restart, not its end.
    assert_eq!(
        goal.verdict(&workload(Stage::Stopping, 3)),
        Verdict::Underway
    );
    assert_eq!(
        goal.verdict(&workload(Stage::Stopped, 3)),
        Verdict::Underway
    );
    assert_eq!(goal.verdict(&workload(Stage::Deploy, 4)), Verdict::Underway);
    assert_eq!(
        goal.verdict(&workload(Stage::Running, 4)),
        Verdict::Succeeded
    );
    assert_eq!(goal.verdict(&workload(Stage::Failed, 4)), Verdict::Failed);
    let superseded = Goal {
        superseded: true,
        ..goal
    };
    assert_eq!(
        superseded.verdict(&workload(Stage::Stopped, 3)),
        Verdict::Failed
    );
    assert_eq!(
        superseded.verdict(&workload(Stage::Stopping, 3)),
        Verdict::Underway
    );
}

#[test]
fn stop_is_done_once_the_run_is_over_and_nothing_is_pending() {
    let goal = Goal::of(Operation::Stop, &workload(Stage::Running, 1));
    assert_eq!(
        goal.verdict(&workload(Stage::Stopping, 1)),
        Verdict::Underway
    );
    assert_eq!(
        goal.verdict(&workload(Stage::Stopped, 1)),
        Verdict::Succeeded
    );
    assert_eq!(
        goal.verdict(&workload(Stage::Failed, 1)),
        Verdict::Succeeded
    );
    let mut pending = workload(Stage::Failed, 1);
    pending.next_restart_at = Some(Timestamp(1));
    assert_eq!(goal.verdict(&pending), Verdict::Underway);
}
