//! R-EL2 entry, the EL2 exception hook, the panic handler, and the door to the Host.

pub mod host;
pub mod realm;
pub mod mmu;

use shared::abi::rmm_el3::{E_RMM_BOOT_CPU_ID_OUT_OF_RANGE, RMM_BOOT_COMPLETE};
use shared::arch::ExceptionFrame;
use shared::percpu::MAX_CPUS;

core::arch::global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    // RMMD hand-off (rmm-el3-comms-spec "Cold/Warm Boot Interface"): x0 = linear
    // CPU id, x1..x3 = interface version, core count, shared buffer on cold
    // boot and 0 on warm boot.  The CPU id picks our stack; a CPU we have no
    // stack for cannot run any Rust, so it reports E_RMM_BOOT_CPU_ID_OUT_OF_RANGE
    // to EL3 right here (the spec's answer for that case) instead of hanging.
    "cmp x0, #{max_cpus}",
    "b.hs 8f",
    "mov x6, x0",
    // Only the cold boot (x3 = shared buffer != 0) clears .bss.
    "cmp x3, #0",
    "cset x7, ne",
    "b quadrant_entry_common",
    "8:",
    "mov x0, #{bc_lo}",
    "movk x0, #{bc_hi}, lsl #16",
    "mov x1, #{cpu_err}",
    "smc #0",
    "9: wfe",
    "b 9b",
    max_cpus = const MAX_CPUS,
    bc_lo = const RMM_BOOT_COMPLETE & 0xffff,
    bc_hi = const RMM_BOOT_COMPLETE >> 16,
    cpu_err = const E_RMM_BOOT_CPU_ID_OUT_OF_RANGE,
);

#[unsafe(no_mangle)]
extern "C" fn quadrant_main(x0: u64, x1: u64, x2: u64, x3: u64, _x4: u64, _cpu: u64) -> ! {
    crate::run::rmm_main(x0, x1, x2, x3)
}

#[unsafe(no_mangle)]
extern "C" fn quadrant_el2_exception(frame: &mut ExceptionFrame, vector: u64) {
    shared::arch::unexpected_el2_exception(frame, vector)
}

shared::quadrant_panic_handler!();
