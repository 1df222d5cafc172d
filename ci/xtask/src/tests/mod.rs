//! `cargo xtask test [FILTER]`: host unit tests, then QEMU integration tests.
//! Each integration test boots QEMU, captures the serial console with a timeout
//! and checks for the lines that prove each hand-shake.  One line per test, a
//! closing `N passed, N failed`, and a non-zero exit on any failure.

use crate::build::Outputs;
use crate::qemu::{self, Boot};
pub use crate::util::Result as XResult;
use crate::util::{self, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

mod foundation;
mod guest_ffa;
mod guest_ffa_isolation;
mod hostile;
pub mod nshyp;
pub mod optee;
pub mod pkvm;
pub mod rmm;
mod run;
pub use rmm::{realm_bench_boot, realm_linux_bench_boot};
pub mod spmc;

/// A line that must appear: every fragment on the same line.
pub struct Expect {
    pub what: &'static str,
    pub all_of: Vec<String>,
}

pub fn expect(what: &'static str, all_of: &[&str]) -> Expect {
    Expect { what, all_of: all_of.iter().map(|s| s.to_string()).collect() }
}

/// One QEMU integration test: boot, capture the console, check it.
pub struct IntegrationTest {
    pub name: &'static str,
    pub boot: fn(&Outputs) -> Result<Boot>,
    pub timeout: Duration,
    pub expects: fn() -> Vec<Expect>,
    /// Further checks on the whole output; each returned string is a failure.
    pub extra: Option<fn(&str) -> Vec<String>>,
    /// Fragments that must NOT appear anywhere (panics, aborts).
    pub forbid: &'static [&'static str],
}

/// Every integration test, in the order they run.  Each area keeps its tests
/// in its own file.
fn integration_tests() -> Vec<IntegrationTest> {
    let mut all = Vec::new();
    all.extend(foundation::tests());
    all.extend(spmc::tests());
    all.extend(optee::tests());
    all.extend(pkvm::tests());
    all.extend(rmm::tests());
    all.extend(nshyp::tests());
    all.extend(guest_ffa::tests());
    all.extend(guest_ffa_isolation::tests());
    all.extend(run::tests());
    all.extend(hostile::tests());
    all
}

/// TF-A reports errors as `ERROR:` lines; the one expected line is qemu's
/// SYSTEM_OFF, which TF-A logs at ERROR level ("QEMU System Power off: with GPIO.").
pub const FORBID_ALWAYS: &[&str] = &["PANIC", "panicked", "Unhandled Exception", "ERROR:", "BL31: Error"];
/// Output after which a run cannot recover: stop waiting for it.
const STOP_ON: &[&str] = &["Kernel panic", "PANIC:", "Unhandled Exception"];
const ALLOWED_ERROR_LINES: &[&str] = &["QEMU System Power off"];

/// Checks one capture; returns the failures.
fn check(t: &IntegrationTest, cap: &qemu::Capture) -> Vec<String> {
    let mut fails = Vec::new();
    let lines: Vec<&str> = cap.output.lines().collect();
    for e in (t.expects)() {
        if !lines.iter().any(|l| e.all_of.iter().all(|f| l.contains(f.as_str()))) {
            fails.push(format!("missing: {} (a line with {:?})", e.what, e.all_of));
        }
    }
    if let Some(extra) = t.extra {
        fails.extend(extra(&cap.output));
    }
    for f in t.forbid {
        if let Some(l) = lines.iter().find(|l| l.contains(f) && !ALLOWED_ERROR_LINES.iter().any(|a| l.contains(a))) {
            fails.push(format!("forbidden output: {l}"));
        }
    }
    match cap.exit {
        Some(0) => {}
        Some(c) => fails.push(format!("QEMU exited with status {c}")),
        None => fails.push(format!("QEMU did not power off (stopped at a panic, or timed out after {:?})", t.timeout)),
    }
    fails
}

/// Runs `cargo test --workspace` on the host, streaming its output; returns (passed, failed).
fn host_tests() -> Result<(u32, u32)> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(util::repo_root()).args(["test", "--workspace", "--color", "never"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(Stdio::null());
    eprintln!("xtask: $ {}", util::show(&cmd));
    let mut child = cmd.spawn().map_err(|e| format!("cannot run cargo test: {e}"))?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let num = |key: &str| -> u32 {
                rest.split(';').find(|p| p.trim().ends_with(key)).and_then(|p| p.trim().split_whitespace().rev().nth(1)).and_then(|n| n.parse().ok()).unwrap_or(0)
            };
            // "ok. 18 passed; 0 failed; ..." — the first field carries the status word.
            let first = rest.split(';').next().unwrap_or("");
            passed += first.split_whitespace().rev().nth(1).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
            failed += num("failed");
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() && failed == 0 {
        failed += 1; // a build failure counts as a failure
        println!("test host::cargo_test ... FAILED (cargo test exited with {status})");
    }
    Ok((passed, failed))
}

/// Seconds each coverage-guided fuzz target runs in `cargo xtask test`
/// (issue J: about 30 s each in CI; six targets, 3 minutes).
const FUZZ_SECS: u64 = 30;

pub fn test(outputs: &Outputs, filter: Option<&str>) -> Result<bool> {
    let (mut passed, mut failed) = host_tests()?;
    println!("host unit tests: {passed} passed, {failed} failed");
    // The coverage-guided fuzz targets, briefly (issue J; `cargo xtask fuzz` runs them longer).
    if filter.is_none_or(|f| "fuzz".contains(f) || crate::fuzz::LIBFUZZER_TARGETS.iter().any(|t| t.contains(f))) {
        let bin = crate::fuzz::build_libfuzzer()?;
        // Two targets at a time, one on each of CI's two cores: each still
        // fuzzes for FUZZ_SECS, in half the wall time.
        let mut runs = Vec::new();
        for pair in crate::fuzz::LIBFUZZER_TARGETS.chunks(2) {
            let covs: Vec<Result<crate::fuzz::Coverage>> = std::thread::scope(|s| {
                let hs: Vec<_> = pair.iter().map(|name| s.spawn(|| crate::fuzz::run_libfuzzer(&bin, name, FUZZ_SECS))).collect();
                hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a fuzz thread panicked".into()))).collect()
            });
            runs.extend(pair.iter().zip(covs));
        }
        for (name, c) in runs {
            let c = c?;
            if c.crashed || c.executions == 0 {
                failed += 1;
                println!("test fuzz::{name} ... FAILED ({} executions; a crash input is in ~/.cache/quadrant/fuzz/artifacts/{name})", c.executions);
            } else {
                passed += 1;
                println!("test fuzz::{name} ... ok ({} executions, {} edges, {FUZZ_SECS} s)", c.executions, c.edges);
            }
        }
    }
    let logs = util::out_dir().join("logs");
    util::mkdirs(&logs)?;
    let mut selected: Vec<IntegrationTest> = integration_tests().into_iter().filter(|t| filter.is_none_or(|f| t.name.contains(f))).collect();
    // Work-in-progress tests run only when asked for by their full name.
    selected.extend(spmc::pending().into_iter().filter(|t| filter == Some(t.name)));
    selected.extend(rmm::pending().into_iter().filter(|t| filter == Some(t.name)));
    selected.extend(nshyp::pending().into_iter().filter(|t| filter == Some(t.name)));
    // Checks on the built images themselves (no QEMU).
    let image_checks: &[(&str, fn(&Outputs) -> Vec<String>)] = &[("ns_hyp_product_image_has_no_test_code", nshyp::product_image_has_no_test_code)];
    for (name, check) in image_checks.iter().filter(|(n, _)| filter.is_none_or(|f| n.contains(f))) {
        let fails = check(outputs);
        if fails.is_empty() {
            passed += 1;
            println!("test image::{name} ... ok");
        } else {
            failed += 1;
            println!("test image::{name} ... FAILED");
            for f in &fails {
                println!("    {f}");
            }
        }
    }
    let (p, f) = run_integration(outputs, selected)?;
    passed += p;
    failed += f;
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// `cargo xtask test --long [FILTER]`: the long runs only (no host tests):
/// OP-TEE's full xtest suite under both stacks (tests/optee.rs).
pub fn test_long(outputs: &Outputs, filter: Option<&str>) -> Result<bool> {
    let selected: Vec<IntegrationTest> = optee::long_tests().into_iter().filter(|t| filter.is_none_or(|f| t.name.contains(f))).collect();
    let (passed, failed) = run_integration(outputs, selected)?;
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// Where a boot function asks for its run's serial log to be kept once the
/// test passes, and whether a given passing output is worth keeping
/// (`optee::reference_xtest_boot`).  Cleared before each test.
pub static KEEP_LOG_ON_PASS: std::sync::Mutex<Option<(std::path::PathBuf, fn(&str) -> bool)>> = std::sync::Mutex::new(None);

/// Tests that may run at the same time as the test named beside them, when
/// both are selected: each keeps about one of CI's two cores busy for
/// minutes (xtest's cases run one after another in one Linux process, the
/// other vCPUs idle), so a pair takes about as long as its longer test.
/// Neither writes a file the other reads; `compare_with_reference` reads
/// the reference's log, which runs (or is replayed) before both pairs.
const RUN_TOGETHER: &[(&str, &str)] = &[("optee_xtest", "pkvm_optee"), ("guest_optee", "guest_optee_two_vms")];

/// Boots and checks each test in order (the pairs of [`RUN_TOGETHER`] at
/// once); returns (passed, failed).
fn run_integration(outputs: &Outputs, selected: Vec<IntegrationTest>) -> Result<(u32, u32)> {
    let logs = util::out_dir().join("logs");
    util::mkdirs(&logs)?;
    let (mut passed, mut failed) = (0, 0);
    for group in run_groups(selected) {
        // Boots (which build) one after another; then the QEMU runs.
        let mut runs = Vec::new();
        for t in group {
            *KEEP_LOG_ON_PASS.lock().unwrap() = None;
            let boot = (t.boot)(outputs)?;
            let keep = KEEP_LOG_ON_PASS.lock().unwrap().take();
            runs.push((t, boot, keep));
        }
        let caps: Vec<Result<qemu::Capture>> = std::thread::scope(|s| {
            let handles: Vec<_> =
                runs.iter().map(|(t, boot, _)| s.spawn(|| qemu::capture(boot, t.timeout, &logs.join(format!("{}.log", t.name)), STOP_ON))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a QEMU capture thread panicked".into()))).collect()
        });
        for ((t, boot, keep), cap) in runs.into_iter().zip(caps) {
            let cap = cap?;
            let log = logs.join(format!("{}.log", t.name));
            let fails = check(&t, &cap);
            let took = if matches!(boot, qemu::Boot::Replay { .. }) { "a kept run, replayed".to_owned() } else { format!("{:.1} s", cap.elapsed.as_secs_f64()) };
            if fails.is_empty() {
                if let Some((kept, worth)) = keep {
                    if worth(&cap.output) {
                        util::mkdirs(kept.parent().unwrap_or(&logs))?;
                        util::write_atomic(&kept, cap.output.as_bytes())?;
                    }
                }
                passed += 1;
                println!("test integration::{} ... ok ({took})", t.name);
            } else {
                failed += 1;
                println!("test integration::{} ... FAILED ({:.1} s, serial log: {})", t.name, cap.elapsed.as_secs_f64(), log.display());
                for f in &fails {
                    println!("    {f}");
                }
                println!("    --- last lines of the serial log ---");
                let lines: Vec<&str> = cap.output.lines().collect();
                for l in &lines[lines.len().saturating_sub(25)..] {
                    println!("    | {l}");
                }
            }
        }
    }
    Ok((passed, failed))
}

/// `selected` in order, each test alone except the pairs of
/// [`RUN_TOGETHER`] whose both tests are selected: those go together, where
/// the first of them stood.
fn run_groups(selected: Vec<IntegrationTest>) -> Vec<Vec<IntegrationTest>> {
    let names: Vec<&'static str> = selected.iter().map(|t| t.name).collect();
    let partner = |n: &str| -> Option<&'static str> {
        RUN_TOGETHER.iter().find_map(|&(a, b)| if a == n { Some(b) } else if b == n { Some(a) } else { None }).filter(|p| names.contains(p))
    };
    let mut groups: Vec<Vec<IntegrationTest>> = Vec::new();
    for t in selected {
        match partner(t.name).and_then(|p| groups.iter_mut().find(|g| g.len() == 1 && g[0].name == p)) {
            Some(g) => g.push(t),
            None => groups.push(vec![t]),
        }
    }
    groups
}

#[cfg(test)]
mod run_groups_tests {
    use super::*;

    fn t(name: &'static str) -> IntegrationTest {
        IntegrationTest { name, boot: |_| Err("not booted".into()), timeout: Duration::from_secs(1), expects: Vec::new, extra: None, forbid: &[] }
    }

    fn names(groups: &[Vec<IntegrationTest>]) -> Vec<Vec<&'static str>> {
        groups.iter().map(|g| g.iter().map(|t| t.name).collect()).collect()
    }

    #[test]
    fn pairs_run_together_only_when_both_are_selected() {
        let all = ["optee_xtest_reference", "optee_xtest", "pkvm_optee", "guest_optee", "other", "guest_optee_two_vms"];
        let g = run_groups(all.iter().map(|n| t(n)).collect());
        assert_eq!(names(&g), vec![vec!["optee_xtest_reference"], vec!["optee_xtest", "pkvm_optee"], vec!["guest_optee", "guest_optee_two_vms"], vec!["other"]]);
        let g = run_groups(["pkvm_optee", "guest_optee"].iter().map(|n| t(n)).collect());
        assert_eq!(names(&g), vec![vec!["pkvm_optee"], vec!["guest_optee"]]);
    }
}
