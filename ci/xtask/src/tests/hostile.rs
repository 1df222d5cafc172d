//! Issue J's storms in QEMU: a hostile world fires seeded random calls at
//! the others, then every world must still answer.  The seed is fixed here
//! (the payloads print it); `cargo xtask test hostile` reruns the same storms,
//! `QUADRANT_STORM_SEED=<n> cargo xtask test hostile` others.

use super::{Expect, FORBID_ALWAYS, IntegrationTest, XResult, expect};
use crate::build::Outputs;
use crate::qemu::{self, Boot};
use crate::util;
use std::time::Duration;

/// The storms' seed in CI.
pub const SEED: u64 = 0x5eed_0001;

/// The seed: `QUADRANT_STORM_SEED` (decimal or 0x hex) to try others, else [`SEED`].
pub fn seed() -> u64 {
    std::env::var("QUADRANT_STORM_SEED")
        .ok()
        .and_then(|v| v.strip_prefix("0x").map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok()))
        .unwrap_or(SEED)
}

pub fn tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest {
            name: "hostile_ns_storm",
            boot: ns_storm_boot,
            timeout: Duration::from_secs(300),
            expects: ns_storm_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "hostile_realm_storm",
            boot: |o| super::rmm::realm_mode_boot(o, &format!("quadrant.rsi-storm={:#x}", seed())),
            timeout: Duration::from_secs(300),
            expects: realm_storm_expects,
            extra: Some(realm_storm_extra),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "hostile_sp_storm",
            boot: sp_storm_boot,
            timeout: Duration::from_secs(300),
            expects: sp_storm_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
    ]
}

/// ci/ffa-payload driving sps/isolation's storm.
fn sp_storm_boot(o: &Outputs) -> XResult<Boot> {
    let dtb = util::out_dir().join("hostile-sp-storm.dtb");
    qemu::dtb_with_bootargs(&o.ffa_bios, &format!("quadrant.sp_storm={:#x}", seed()), &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

fn sp_storm_expects() -> Vec<Expect> {
    [
        ("set up: isolation answers", "sp_storm_setup"),
        ("12,000 calls from isolation at S-EL1", "sp_storm_done"),
        ("isolation and echo answer after", "sp_storm_sps_answer"),
        ("discovery: every SP listed", "ffa_partition_info_get"),
        ("a memory share round trip with mp", "sp_storm_memory_share_works"),
        ("round trips on every core", "sp_storm_every_core_answers"),
    ]
    .into_iter()
    .map(|(what, name)| expect(what, &[&format!("[ffa-payload] check {name}: ok")]))
    .chain([expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"])])
    .collect()
}

/// ci/ffa-payload in storm mode.
fn ns_storm_boot(o: &Outputs) -> XResult<Boot> {
    let dtb = util::out_dir().join("hostile-ns-storm.dtb");
    qemu::dtb_with_bootargs(&o.ffa_bios, &format!("quadrant.storm={:#x}", seed()), &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

fn ns_storm_expects() -> Vec<Expect> {
    [
        ("set up", "storm_setup"),
        ("12,000 calls on 4 cores, every core back", "storm_done"),
        ("spmc answers: ID_GET, echo", "storm_spmc_answers"),
        ("discovery: every SP listed", "ffa_partition_info_get"),
        ("a memory share round trip with mp", "storm_memory_share_works"),
        ("rmm answers RMI_VERSION", "storm_rmm_answers"),
        ("RX/TX delegated to the Realm world: errors, spmc lives", "storm_buffers_in_realm_pas"),
        ("REALM_CREATE with Secure or Realm params: ERROR_INPUT, rmm lives", "storm_rmm_params_outside_ns"),
        ("round trips on every core", "storm_every_core_answers"),
    ]
    .into_iter()
    .map(|(what, name)| expect(what, &[&format!("[ffa-payload] check {name}: ok")]))
    .chain([expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"])])
    .collect()
}

fn realm_storm_expects() -> Vec<Expect> {
    vec![
        expect("the storm ran", &["[realm] rsi_storm: 12000 calls: "]),
        expect("answers: RSI statuses or NOT_SUPPORTED", &["[realm] rsi_storm_check answers_plausible: ok"]),
        expect("RSI_VERSION after", &["[realm] rsi_storm_check rsi_version: ok"]),
        expect("the RIM unchanged", &["[realm] rsi_storm_check rim_unchanged: ok"]),
        expect("REALM_CONFIG after", &["[realm] rsi_storm_check realm_config: ok"]),
        expect("a host call after", &["[realm] rsi_storm_check host_call: ok"]),
        expect("no check failed", &["[realm] rsi_storm: 5 passed, 0 failed"]),
        expect("the host tore the realm down", &["[ns-hyp] realm_boot: ok", "torn down"]),
    ]
}

fn realm_storm_extra(output: &str) -> Vec<String> {
    output.lines().filter(|l| l.starts_with("[realm] rsi_storm_check") && l.contains(": FAIL")).map(|l| format!("failed: {l}")).collect()
}

fn no_failed_check(output: &str) -> Vec<String> {
    output.lines().filter(|l| l.contains("[ffa-payload] check ") && l.contains(": FAIL")).map(|l| format!("failed: {l}")).collect()
}
