//! sp-runtime: a small runtime for S-EL1 secure partitions run by Quadrant's
//! spmc (or Hafnium): entry and stack, an identity Stage-1 MMU, exception
//! vectors, a panic handler, FF-A calls through `smc` (trapped to the SPMC by
//! HCR_EL2.TSC), console output through FFA_CONSOLE_LOG, and the
//! `FFA_MSG_WAIT` → direct request → handler → direct response loop.
//!
//! An SP crate defines `#[unsafe(no_mangle)] extern "C" fn sp_main() -> !` and
//! links at its manifest's load-address + entrypoint-offset (see sps/echo/build.rs).
#![cfg_attr(not(test), no_std)]

pub mod availability;
pub mod console;
pub mod ffa;
pub mod interrupts;
pub mod messaging;
pub mod memory;
pub mod storm;

#[cfg(target_os = "none")]
mod entry;

// An SP's direct request loop moves whole x0..x17 blocks (the request, the
// response, the call wrapper's argument array): LDP/STP routines instead of
// compiler_builtins' word loop (issue P item 3; `shared::mem_routines`).
#[cfg(target_os = "none")]
shared::fast_mem_routines!();

pub use ffa::{DirectRequest, Kind, run, run_with_hooks, run_with_interrupts};
#[cfg(target_os = "none")]
pub use entry::fatal;
