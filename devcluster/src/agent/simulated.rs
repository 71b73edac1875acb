//! Simulated tasks: how long a task "runs" and how it ends, read from its
//! command without running anything, so that thousands of agents fit in
//! one test or benchmark.
//!
//! The rule: the command's words (`value`, then `arguments`) are scanned.
//! The first `sleep N` (N seconds, with an optional `s`, `m` or `h` suffix
//! as coreutils accepts) sets the duration; without one the task ends
//! immediately after TASK_RUNNING. The first `exit N` sets the exit code,
//! and a bare `false` means exit code 1. Exit code 0 ends in TASK_FINISHED,
//! anything else in TASK_FAILED. KILL ends the task at once in TASK_KILLED.

use std::time::Duration;

use agora_proto::mesos::v1::CommandInfo;

/// What a simulated task will do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Time from TASK_RUNNING to the end.
    pub duration: Duration,
    /// The simulated exit code.
    pub exit_code: i32,
}

/// Reads the plan of a simulated task from its command.
pub fn plan(command: Option<&CommandInfo>) -> Plan {
    let mut words: Vec<String> = Vec::new();
    if let Some(command) = command {
        let separators = |c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')');
        if let Some(value) = &command.value {
            words.extend(
                value
                    .split(separators)
                    .filter(|w| !w.is_empty())
                    .map(String::from),
            );
        }
        words.extend(command.arguments.iter().cloned());
    }
    let mut duration = None;
    let mut exit_code = None;
    for (index, word) in words.iter().enumerate() {
        let next = words.get(index + 1);
        match word.as_str() {
            "sleep" if duration.is_none() => duration = next.and_then(|n| seconds(n)),
            "exit" if exit_code.is_none() => exit_code = next.and_then(|n| n.parse().ok()),
            "false" if exit_code.is_none() => exit_code = Some(1),
            _ => {}
        }
    }
    Plan {
        duration: duration.unwrap_or(Duration::ZERO),
        exit_code: exit_code.unwrap_or(0),
    }
}

fn seconds(text: &str) -> Option<Duration> {
    let (number, factor) = match text.char_indices().last()? {
        (i, 's') => (&text[..i], 1.0),
        (i, 'm') => (&text[..i], 60.0),
        (i, 'h') => (&text[..i], 3600.0),
        _ => (text, 1.0),
    };
    let value: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(value * factor).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(value: &str) -> CommandInfo {
        CommandInfo {
            value: Some(value.into()),
            ..Default::default()
        }
    }

    #[test]
    fn reads_sleep_and_exit() {
        let cases = [
            ("echo hello", 0.0, 0),
            ("sleep 3", 3.0, 0),
            ("sleep 0.5 && exit 2", 0.5, 2),
            ("sleep 2m; false", 120.0, 1),
            ("exit 0", 0.0, 0),
        ];
        for (value, secs, code) in cases {
            let plan = plan(Some(&shell(value)));
            assert_eq!(plan.duration, Duration::from_secs_f64(secs), "{value}");
            assert_eq!(plan.exit_code, code, "{value}");
        }
        let argv = CommandInfo {
            shell: Some(false),
            value: Some("/bin/sleep".into()),
            arguments: vec!["sleep".into(), "7".into()],
            ..Default::default()
        };
        assert_eq!(plan(Some(&argv)).duration, Duration::from_secs(7));
        assert_eq!(plan(None).duration, Duration::ZERO);
    }
}
