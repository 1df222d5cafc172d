//! spmc: Quadrant's S-EL2 Secure Partition Manager Core, a drop-in for
//! Hafnium as TF-A's BL32 with `SPD=spmd SPMD_SPM_AT_SEL2=1`.
//!
//! This library is the SPMC's core: plain logic with no hardware access and no
//! `cfg(target_os)`, built the same for the host (where `cargo test` drives it
//! with a fake platform and fake SPs) and for the target; the one exception,
//! `ffa::regs_copy`'s inline LDP/STP, has plain array code for the host.
//! The target binary (`main.rs`, with `arch/`) adds entry, vectors, the
//! world switch and the real [`ffa::Platform`].
//!
//! - [`manifest`]: the SPMC manifest (TOS_FW_CONFIG) in plain data;
//! - [`partition`]: SP packages and partition manifests;
//! - [`ffa`]: the FF-A dispatcher, one module per DEN0077 chapter;
//! - [`gic`], [`vtimer`]: interrupt configuration and the SPs' emulated timer,
//!   behind small traits the binary implements.
#![cfg_attr(not(test), no_std)]

pub mod ffa;
pub mod gic;
pub mod manifest;
pub mod name;
pub mod partition;
pub mod vtimer;
