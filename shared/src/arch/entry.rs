//! Common cold/warm entry path.  Each image's `_start` (in `.text.entry`) keeps
//! its boot arguments in x0..x4, puts its linear CPU index in x6 and, on the
//! one CPU that must clear `.bss`, a non-zero x7, then branches here.  We set up
//! that CPU's stack, clear `.bss`, allow FP/SIMD at EL2, install the vectors and
//! call `quadrant_main(x0, x1, x2, x3, x4, cpu_index)`, which never returns.

use crate::percpu::MAX_CPUS;

/// Stack per CPU; the linker script reserves `MAX_CPUS` of them (each
/// image's build.rs passes `0x1_0000 * 8`; the entry refuses to run if the
/// reservation is smaller).  32 KiB was too little for ns-hyp's boot CPU:
/// `hyp_main` + `guest::start` + `run_cpu` frames alone took ~37 KiB, so the
/// secondary CPU started by `start` wrote over the boot CPU's frames.
pub const STACK_SIZE: usize = 0x1_0000;
/// Total stack reservation, for build scripts.
pub const STACKS_TOTAL: usize = STACK_SIZE * MAX_CPUS;

core::arch::global_asm!(
    ".section .text.quadrant_entry, \"ax\"",
    // For images entered on every CPU with nothing but x0..x4 (Normal world
    // EL2 under QEMU's or TF-A's PSCI): the CPU index from MPIDR_EL1
    // Aff0 + 16 * Aff1 (QEMU virt: 16 CPUs per cluster); CPU 0 clears .bss.
    ".global quadrant_entry_mpidr",
    "quadrant_entry_mpidr:",
    "mrs x6, mpidr_el1",
    "and x8, x6, #0xff",
    "ubfx x9, x6, #8, #8",
    "add x6, x8, x9, lsl #4",
    "cmp x6, #0",
    "cset x7, eq",
    ".global quadrant_entry_common",
    "quadrant_entry_common:",
    // Refuse CPU indices we have no stack for, and a linker reservation
    // smaller than MAX_CPUS stacks.
    "cmp x6, #{max_cpus}",
    "b.hs 9f",
    "adrp x8, __stacks_end",
    "add x8, x8, :lo12:__stacks_end",
    "adrp x9, __stacks_start",
    "add x9, x9, :lo12:__stacks_start",
    "sub x9, x8, x9",
    "mov x10, #{stacks_total_hi}",
    "lsl x10, x10, #16",
    "cmp x9, x10",
    "b.lo 9f",
    "mov x9, #{stack_size}",
    "msub x8, x6, x9, x8",
    "mov sp, x8",
    "cbz x7, 2f",
    "adrp x8, __bss_start",
    "add x8, x8, :lo12:__bss_start",
    "adrp x9, __bss_end",
    "add x9, x9, :lo12:__bss_end",
    "1: cmp x8, x9",
    "b.hs 2f",
    "stp xzr, xzr, [x8], #16",
    "b 1b",
    "2:",
    // CPTR_EL2 (E2H=0 layout): RES1 bits 13:12, 9:0; TFP (bit 10) = 0 so EL2 and
    // lower ELs may use FP/SIMD (Rust code does).  TZ (bit 8) stays set: no SVE.
    "mov x8, #0x33ff",
    "msr cptr_el2, x8",
    "adrp x8, quadrant_el2_vectors",
    "add x8, x8, :lo12:quadrant_el2_vectors",
    "msr vbar_el2, x8",
    "isb",
    "mov x5, x6",
    "bl quadrant_main",
    "9: wfe",
    "b 9b",
    max_cpus = const MAX_CPUS,
    stack_size = const STACK_SIZE,
    stacks_total_hi = const STACKS_TOTAL >> 16,
);
const _: () = assert!(STACKS_TOTAL % (1 << 16) == 0 && STACKS_TOTAL >> 16 < 1 << 16);
