//! Quadrant's floor: everything the three products (ns-hyp, spmc, rmm) and the
//! payloads they run share below the level of product logic.
//!
//! Hardware-touching code lives under [`arch`] and compiles only for
//! `target_os = "none"`; every other module is plain logic that `cargo test`
//! runs on the host.
#![cfg_attr(not(test), no_std)]

#[cfg(any(test, feature = "test-util"))]
extern crate alloc;

pub mod abi;
#[cfg(target_os = "none")]
pub mod arch;
pub mod console;
pub mod fdt;
pub mod ffa_client;
pub mod ffa_indirect;
pub mod ffa_memory;
pub mod ffa_notifications;
pub mod mem_routines;
pub mod mm;
pub mod payload;
pub mod percpu;
pub mod smccc;
pub mod split;
pub mod storm;
pub mod xorshift;

pub use log;
pub use spin;
