//! ffa-payload: a Normal-world FF-A test client, booted by TF-A as BL33 in
//! place of ns-hyp (xtask `Bl33::FfaPayload`).  It proves spmc's direct
//! messaging from the Normal world the way an OS driver would use it:
//! round trips on every core (PSCI CPU_ON through TF-A) to the MP SP and to
//! echo, SP-to-SP requests, DIRECT_REQ2 by UUID, and one case for every
//! DEN0077 error of these ABIs, each followed by a valid call.
//!
//! Mode from /chosen/bootargs: none = the checks (`spmc_direct_messaging`),
//! `quadrant.isolation[=<hex address>]` = the isolation SP reads that address
//! (`spmc_isolation`), `quadrant.bench` = timed round trips,
//! `quadrant.interrupts` (`spmc_interrupts`), `quadrant.concurrency`
//! (`spmc_concurrency`: requests on two cores at once), `quadrant.memory`
//! (`spmc_memory_sharing`), `quadrant.notifications` (`spmc_notifications`),
//! `quadrant.indirect` (`spmc_indirect_messaging`), `quadrant.cpu_on_twice`
//! (`spmc_cpu_on_twice`: secondaries powered off and on again),
//! `quadrant.version_locked` (`spmc_version_locked`),
//! `quadrant.hafnium_manifests` (`spmc_hafnium_manifests`),
//! `quadrant.spmd_lsp` (`spmc_spmd_lsp`), `quadrant.sp_sizing` (`spmc_sp_sizing`),
//! `quadrant.storm[=seed]` (`hostile_ns_storm`).
//!
//! Output: `[ffa-payload] check <name>: ok|FAIL <detail>` per check,
//! `[ffa-payload] checks: <N> ok, <M> failed`, then PSCI SYSTEM_OFF; in bench
//! mode `[ffa-payload] bench <name> <iterations> <total_counter_ticks>` rows
//! and `[ffa-payload] bench done`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

mod checks;
mod memory;
mod mode;
mod notif;
mod storm;

#[cfg(target_os = "none")]
mod arch;

#[cfg(not(target_os = "none"))]
fn main() {}
