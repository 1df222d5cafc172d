//! `cargo xtask test [FILTER]`: host unit tests, then QEMU integration tests.
//! Each integration test boots QEMU, captures the serial console with a timeout
//! and checks for the lines that prove each hand-shake.  One line per test, a
//! closing `N passed, N failed`, and a non-zero exit on any failure.

use crate::build::Outputs;
use crate::qemu::{self, Boot};
use crate::util::{self, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A line that must appear: every fragment on the same line.
struct Expect {
    what: &'static str,
    all_of: Vec<String>,
}

fn expect(what: &'static str, all_of: &[&str]) -> Expect {
    Expect { what, all_of: all_of.iter().map(|s| s.to_string()).collect() }
}

struct IntegrationTest {
    name: &'static str,
    boot: fn(&Outputs) -> Boot,
    timeout: Duration,
    expects: fn() -> Vec<Expect>,
    /// Fragments that must NOT appear anywhere (panics, aborts).
    forbid: &'static [&'static str],
}

/// TF-A reports errors as `ERROR:` lines; the one expected line is qemu's
/// SYSTEM_OFF, which TF-A logs at ERROR level ("QEMU System Power off: with GPIO.").
const FORBID_ALWAYS: &[&str] = &["PANIC", "panicked", "Unhandled Exception", "ERROR:", "BL31: Error"];
const ALLOWED_ERROR_LINES: &[&str] = &["QEMU System Power off"];

fn tfa_boot(o: &Outputs) -> Boot {
    Boot::Tfa { bios: o.bios.clone(), dtb: None }
}

fn no_tfa_boot(o: &Outputs) -> Boot {
    Boot::NoTfa { kernel: o.images.join("ns-hyp.bin"), append: None }
}

/// The echo SP's UUID as written in its partition manifest (first cell, as hex),
/// so the test follows the manifest rather than a copy of it.
fn echo_uuid_cells() -> Vec<String> {
    let dts = std::fs::read_to_string(util::repo_root().join("tfa-integration/sp/echo.dts")).unwrap_or_default();
    dts.lines()
        .find(|l| l.trim_start().starts_with("uuid"))
        .map(|l| l.split(['<', '>']).nth(1).unwrap_or("").split_whitespace().map(|c| c.trim_start_matches("0x").to_lowercase()).collect())
        .unwrap_or_default()
}

fn four_world_expects() -> Vec<Expect> {
    vec![
        expect("TF-A banner", &["NOTICE:  Booting Trusted Firmware"]),
        expect("TF-A BL31 started", &["NOTICE:  BL31: v2.12"]),
        expect("spmc parsed its manifest", &["[spmc] ", "manifest"]),
        expect("echo SP initialised", &["[echo] ready"]),
        expect("spmc finished init", &["[spmc] ", "init done"]),
        expect("rmm booted", &["[rmm] ", "boot complete"]),
        expect("ns-hyp up under TF-A", &["[ns-hyp] firmware: TF-A"]),
        expect("FFA_VERSION answered", &["[ns-hyp] probe ffa_version: ok"]),
        expect("FFA_VERSION reached spmc", &["[spmc] ", "FFA_VERSION"]),
        expect("FFA_ID_GET answered", &["[ns-hyp] probe ffa_id_get: ok"]),
        expect("RXTX_MAP answered", &["[ns-hyp] probe ffa_rxtx_map: ok"]),
        expect("PARTITION_INFO_GET lists echo", &["[ns-hyp] probe ffa_partition_info_get: ok"]),
        expect("PARTITION_INFO_GET reached spmc", &["[spmc] ", "PARTITION_INFO_GET"]),
        expect("direct request round trip to echo", &["[ns-hyp] probe ffa_direct_req_echo: ok"]),
        expect("direct request reached spmc", &["[spmc] ", "DIRECT_REQ"]),
        expect("RMI_VERSION answered", &["[ns-hyp] probe rmi_version: ok"]),
        expect("RMI_VERSION reached rmm", &["[rmm] ", "RMI_VERSION"]),
        expect("no probe failed", &["[ns-hyp] probes: ", " 0 failed"]),
    ]
}

fn spmc_bad_input_expects() -> Vec<Expect> {
    vec![
        expect("unknown FF-A id refused", &["[ns-hyp] probe bad_unknown_ffa_id: ok", "then FFA_VERSION ok"]),
        expect("spmc itself says the id is not supported", &["[spmc] FEATURES from NS", "error NOT_SUPPORTED"]),
        expect("spmc refused PARTITION_INFO_GET without an RX buffer", &["[spmc] PARTITION_INFO_GET: error BUSY"]),
        expect("spmc refused the missing partition", &["[spmc] DIRECT_REQ", "0x8123: error INVALID_PARAMETERS"]),
        expect("direct request to a missing partition refused", &["[ns-hyp] probe bad_direct_req_missing_partition: ok", "INVALID_PARAMETERS", "then FFA_VERSION ok"]),
        expect("PARTITION_INFO_GET before RXTX_MAP refused", &["[ns-hyp] probe bad_partition_info_before_rxtx: ok", "BUSY", "then FFA_VERSION ok"]),
        expect("valid calls still answered after the errors", &["[ns-hyp] probe ffa_direct_req_echo: ok"]),
        expect("no probe failed", &["[ns-hyp] probes: ", " 0 failed"]),
    ]
}

fn direct_kernel_expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp knows there is no EL3 firmware", &["[ns-hyp] firmware: none"]),
        expect("FFA_VERSION reports no SPMC", &["[ns-hyp] probe ffa_version: ok", "no SPMC"]),
        expect("RMI_VERSION reports no RMM", &["[ns-hyp] probe rmi_version: ok", "no RMM"]),
        expect("no probe failed", &["[ns-hyp] probes: ", " 0 failed"]),
    ]
}

fn integration_tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest { name: "four_world_boot", boot: tfa_boot, timeout: Duration::from_secs(120), expects: four_world_expects, forbid: FORBID_ALWAYS },
        IntegrationTest { name: "ns_hyp_direct_kernel", boot: no_tfa_boot, timeout: Duration::from_secs(60), expects: direct_kernel_expects, forbid: FORBID_ALWAYS },
        IntegrationTest { name: "spmc_bad_input", boot: tfa_boot, timeout: Duration::from_secs(120), expects: spmc_bad_input_expects, forbid: FORBID_ALWAYS },
    ]
}

/// Checks one capture; returns the failures.
fn check(t: &IntegrationTest, cap: &qemu::Capture) -> Vec<String> {
    let mut fails = Vec::new();
    let lines: Vec<&str> = cap.output.lines().collect();
    for e in (t.expects)() {
        if !lines.iter().any(|l| e.all_of.iter().all(|f| l.contains(f.as_str()))) {
            fails.push(format!("missing: {} (a line with {:?})", e.what, e.all_of));
        }
    }
    if t.name == "four_world_boot" {
        let cells = echo_uuid_cells();
        let line = lines.iter().find(|l| l.contains("probe ffa_partition_info_get: ok"));
        match (cells.first(), line) {
            (Some(c), Some(l)) if l.to_lowercase().replace('-', "").contains(c.as_str()) => {}
            (c, l) => fails.push(format!("partition info does not show echo's UUID (first cell {c:?}): {l:?}")),
        }
    }
    for f in t.forbid {
        if let Some(l) = lines.iter().find(|l| l.contains(f) && !ALLOWED_ERROR_LINES.iter().any(|a| l.contains(a))) {
            fails.push(format!("forbidden output: {l}"));
        }
    }
    match cap.exit {
        Some(0) => {}
        Some(c) => fails.push(format!("QEMU exited with status {c}")),
        None => fails.push(format!("timeout: QEMU still running after {:?}", t.timeout)),
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

pub fn test(outputs: &Outputs, filter: Option<&str>) -> Result<bool> {
    let (mut passed, mut failed) = host_tests()?;
    println!("host unit tests: {passed} passed, {failed} failed");
    let logs = util::out_dir().join("logs");
    util::mkdirs(&logs)?;
    for t in integration_tests().into_iter().filter(|t| filter.is_none_or(|f| t.name.contains(f))) {
        let log = logs.join(format!("{}.log", t.name));
        let cap = qemu::capture(&(t.boot)(outputs), t.timeout, &log)?;
        let fails = check(&t, &cap);
        if fails.is_empty() {
            passed += 1;
            println!("test integration::{} ... ok ({:.1} s)", t.name, cap.elapsed.as_secs_f64());
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
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
