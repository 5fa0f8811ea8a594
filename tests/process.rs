//! Process-wide settings of the running engine, read from `/proc`: transparent huge pages
//! off, the descriptor table grown for the relay range before the first call, and SIP
//! signalling on a thread of its own.

mod common;

use std::fs;

use common::{EngineSettings, Harness};

/// Returns the value of `field` in `/proc/<pid>/status`.
fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name == field).then(|| value.trim().to_owned())
    })
}

#[test]
fn engine_process_settings() {
    let harness = Harness::start("engine_process_settings", EngineSettings::default());
    let pid = harness.engine.pid();

    assert_eq!(
        status_field(pid, "THP_enabled").as_deref(),
        Some("0"),
        "transparent huge pages are still on for the engine"
    );

    // The test relay range has 16 pairs: 2 × 16 + 256 descriptors, or the open-files
    // limit when that is lower.
    let table: u64 = status_field(pid, "FDSize")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    assert!(table >= 288, "descriptor table of {table} entries");

    let threads = thread_names(pid);
    let signalling = threads.iter().filter(|name| *name == "signalling").count();
    assert_eq!(signalling, 1, "threads: {threads:?}");
    assert!(
        threads.iter().any(|name| name == "worker"),
        "no relay workers among {threads:?}"
    );
    harness.stop();
}

/// Returns the names of the process's threads (`/proc/<pid>/task/*/comm`).
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}
