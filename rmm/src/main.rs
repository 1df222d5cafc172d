//! rmm: Quadrant's Realm Management Monitor (R-EL2), a drop-in for TF-RMM
//! under TF-A's RMMD.  It speaks the RMM-EL3 interface of TF-A 2.12
//! (`docs/components/rmm-el3-comms-spec.rst`) and RMI of DEN0137 RMM 1.0.
//!
//! Layout: `boot` and `manifest` check what EL3 hands us, `rmi` answers the
//! Host; both are plain logic tested on the host.  `arch` (entry, the SMC door
//! to the Host, warm-boot MMU) and `run` (the boot sequence and request loop)
//! exist only in the firmware build.
#![cfg_attr(target_os = "none", no_std, no_main)]
// On the host only the unit tests use the logic modules.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;

mod attest;
mod boot;
mod el3;
mod granule;
mod manifest;
mod measurement;
mod mem;
mod platform;
mod realm;
mod rec;
mod rmi;
mod rsi;
mod rtt;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod run;

#[cfg(not(target_os = "none"))]
fn main() {}

/// Issue J: one coverage-guided fuzz input (ci/fuzz's `rmm_dispatcher`).
#[cfg(feature = "fuzzing")]
pub use rmi::fuzz::fuzz_one;
