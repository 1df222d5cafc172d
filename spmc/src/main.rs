//! spmc: Quadrant's S-EL2 Secure Partition Manager Core, a drop-in for
//! Hafnium as TF-A's BL32 with `SPD=spmd SPMD_SPM_AT_SEL2=1`.
//!
//! - [`manifest`]: the SPMC manifest (TOS_FW_CONFIG) in plain data;
//! - [`partition`]: SP packages and partition manifests;
//! - [`ffa`]: the FF-A dispatcher (host-tested with fake SPs);
//! - `arch` (target only): entry, Stage-2 and running SPs at S-EL1.
#![cfg_attr(target_os = "none", no_std, no_main)]

pub mod ffa;
pub mod gic;
pub mod manifest;
pub mod name;
pub mod partition;
pub mod vtimer;

#[cfg(target_os = "none")]
mod arch;

#[cfg(not(target_os = "none"))]
fn main() {}
