//! Process-wide settings of the running engine, read from `/proc`: transparent huge pages
//! off, and the descriptor table grown for the relay range before the first call.

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
    harness.stop();
}
