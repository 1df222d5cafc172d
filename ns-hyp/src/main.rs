//! ns-hyp: Quadrant's Non-secure EL2 hypervisor (BL33 under TF-A, or a
//! `-kernel` image with `--no-tfa`).
//!
//! This first cut is the Normal world's firmware probe client: at boot it
//! checks each service above it (SMCCC, FF-A via the SPMD and spmc, RMI via the
//! RMMD and rmm), one `probe` line each, or times them in bench mode, then
//! powers the machine off.  All logic is target-independent and host-tested;
//! `arch/` and `hyp.rs` hold what only runs on the hardware.
#![cfg_attr(target_os = "none", no_std, no_main)]
// On the host only `cargo test` uses the logic modules.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

mod bench;
mod boot;
mod firmware;
mod line;
mod probe;
mod realm;
mod report;
mod rmi;
mod trap;
mod vm;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod guest;
#[cfg(target_os = "none")]
mod hyp;

// The FF-A caller side lives in `shared` (also used by ci/ffa-payload).
use shared::ffa_client as ffa;

#[cfg(not(target_os = "none"))]
fn main() {}
