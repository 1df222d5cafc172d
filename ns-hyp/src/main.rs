//! ns-hyp: Quadrant's Non-secure EL2 hypervisor (BL33 under TF-A, or a
//! `-kernel` image with `--no-tfa`).
//!
//! At boot it probes the services above it (SMCCC, FF-A via the SPMD and
//! spmc, RMI via the RMMD and rmm; or times them in bench mode), can act as a
//! Realm host over RMI (`realm/`), and runs a Linux guest when its bootargs
//! name one: vCPUs and their scheduler, Stage-2, vGICv3, PL011, PL031, virtio-blk,
//! PSCI (`vm/` holds the device models and logic, host-tested; `guest/` runs
//! them on the hardware).  `arch/`, `guest/` and `hyp.rs` only build for the
//! target.  The probes, the bench and the realm test modes are test code:
//! only the `test-modes` feature builds them into an image.
#![cfg_attr(target_os = "none", no_std, no_main)]
// On the host only `cargo test` uses the logic modules.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

#[cfg(any(test, feature = "test-modes"))]
mod bench;
mod boot;
mod firmware;
mod line;
mod platform;
#[cfg(any(test, feature = "test-modes"))]
mod probe;
mod realm;
#[cfg(any(test, feature = "test-modes"))]
mod report;
#[cfg(any(test, feature = "test-modes"))]
mod rmi;
mod trap;
mod vm;
mod wallclock;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod guest;
#[cfg(target_os = "none")]
mod hyp;

// The FF-A caller side lives in `shared` (also used by ci/ffa-payload).
#[cfg(any(test, feature = "test-modes"))]
use shared::ffa_client as ffa;

#[cfg(not(target_os = "none"))]
fn main() {}

/// Issue J: one coverage-guided fuzz input (ci/fuzz's `nshyp_exits` and
/// `nshyp_virtio`).
#[cfg(feature = "fuzzing")]
pub use vm::fuzz::{fuzz_one, virtio_fuzz_one};
