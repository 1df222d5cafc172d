//! S-EL1 entry: stack, .bss, an identity Stage-1 MMU, vectors, then
//! `sp_main(secondary)`: 0 on the primary (or only) context, 1 on a secondary
//! context of an MP partition entered at `sp_runtime_secondary_entry`.
//! Each context has its own 16 KiB stack (link the SP with 0x4000 per context).
//!
//! The MMU is turned on because with it off every EL1 data access is
//! Device-nGnRnE, where unaligned accesses fault and exclusives/atomics are
//! not guaranteed.  One level-1 block maps the first GiB (where the SP lives)
//! as Normal write-back memory; the SPMC's Stage-2 decides what of it really
//! exists (only the SP's own package region).

core::arch::global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    // Primary context (or the only one): x19 = 0.
    "mov x19, #0",
    "bl sp_runtime_stack",
    // Clear .bss (8-byte stores, aligned: fine on Device memory).
    "adrp x8, __bss_start",
    "add x8, x8, :lo12:__bss_start",
    "adrp x9, __bss_end",
    "add x9, x9, :lo12:__bss_end",
    "1: cmp x8, x9",
    "b.hs 2f",
    "str xzr, [x8], #8",
    "b 1b",
    "2:",
    // Level-1 table: entry 0 = 1 GiB block at 0, AttrIndx 1 (Normal WB), SH inner, AF.
    "adrp x8, sp_runtime_l1_table",
    "mov x9, #0x705",
    "str x9, [x8]",
    // Entries 1..3: 1..4 GiB with NS = 1 (bit 5): the Non-secure IPA space,
    // where memory the Normal world shares or lends appears once retrieved
    // (FFA_MEM_RETRIEVE_REQ); the SPMC's Stage-2 maps nothing else there.
    "mov x9, #0x725",
    "orr x10, x9, #0x40000000",
    "str x10, [x8, #8]",
    "orr x10, x9, #0x80000000",
    "str x10, [x8, #16]",
    "orr x10, x9, #0xc0000000",
    "str x10, [x8, #24]",
    "dc civac, x8",
    "dsb sy",
    "b sp_runtime_mmu",

    // Secondary contexts of an MP partition start here (the address the
    // primary registered with FFA_SECONDARY_EP_REGISTER): own stack, the
    // shared .bss and table are already set up.  x19 = 1.
    ".global sp_runtime_secondary_entry",
    "sp_runtime_secondary_entry:",
    "mov x19, #1",
    "bl sp_runtime_stack",

    "sp_runtime_mmu:",
    // FP/SIMD on at EL1 and EL0 (CPACR_EL1.FPEN = 0b11): the SPMC may start
    // us with it trapped (Hafnium does, spmc too), and compiled Rust uses it.
    "mov x9, #(3 << 20)",
    "msr cpacr_el1, x9",
    "isb",
    "adrp x8, sp_runtime_l1_table",
    // MAIR_EL1: attr0 Device-nGnRE, attr1 Normal WB RA/WA.
    "mov x9, #0xff04",
    "msr mair_el1, x9",
    // TCR_EL1: T0SZ=25, IRGN0/ORGN0 WB, SH0 inner, TG0 4K, EPD1 (no TTBR1 walks), IPS from PARange.
    "mrs x10, id_aa64mmfr0_el1",
    "and x10, x10, #7",
    "mov x9, #0x3519",
    "orr x9, x9, #(1 << 23)",
    "orr x9, x9, x10, lsl #32",
    "msr tcr_el1, x9",
    "msr ttbr0_el1, x8",
    "isb",
    "tlbi vmalle1",
    "dsb nsh",
    "isb",
    // SCTLR_EL1: RES1 bits, M, C, I (A = 0: unaligned accesses allowed on Normal memory).
    "movz x9, #0x0800",
    "movk x9, #0x30d0, lsl #16",
    "orr x9, x9, #(1 << 0)",
    "orr x9, x9, #(1 << 2)",
    "orr x9, x9, #(1 << 12)",
    "msr sctlr_el1, x9",
    "isb",
    "adrp x8, sp_runtime_vectors",
    "add x8, x8, :lo12:sp_runtime_vectors",
    "msr vbar_el1, x8",
    "isb",
    "mov x0, x19",
    "bl sp_main",
    "3: b 3b",

    // sp = __stacks_end - context index * STACK_SIZE; the context index is
    // MPIDR_EL1.Aff0 as the SPMC presents it (VMPIDR_EL2).  Stacks beyond
    // the image's stack area are a link-time sizing error of the SP crate.
    "sp_runtime_stack:",
    "mrs x9, mpidr_el1",
    "and x9, x9, #0xff",
    "mov x10, #0x4000",
    "mul x9, x9, x10",
    "adrp x8, __stacks_end",
    "add x8, x8, :lo12:__stacks_end",
    "sub x8, x8, x9",
    "mov sp, x8",
    "ret",

    ".section .text.sp_runtime_vectors, \"ax\"",
    ".balign 0x800",
    "sp_runtime_vectors:",
    ".set n, 0",
    ".rept 16",
    ".balign 0x80",
    "mov x0, #n",
    "b sp_runtime_exception_asm",
    ".set n, n + 1",
    ".endr",
    "sp_runtime_exception_asm:",
    "mrs x1, esr_el1",
    "mrs x2, elr_el1",
    "mrs x3, far_el1",
    "b sp_runtime_exception",

    ".section .bss.sp_runtime_l1_table, \"aw\", %nobits",
    ".balign 4096",
    "sp_runtime_l1_table:",
    ".space 4096",
);

/// Gives up the FF-A way (DEN0077 v1.2, FFA_ERROR from a partition): the
/// SPMC marks the partition aborted and answers its caller ABORTED.  FF-A
/// v1.2 has no FFA_ABORT (a later version's), so FFA_ERROR it is, whether
/// initialising or serving a request.  Should the SPMC resume us anyway, we
/// wait for interrupts forever: never a fault, which an SPMC that injects
/// aborts back (Hafnium) would turn into a loop through our own vectors.
fn abort() -> ! {
    let mut r = [0u64; 18];
    r[0] = shared::abi::ffa::fid::FFA_ERROR as u64;
    // Error code: ABORTED (-8).
    r[2] = shared::abi::ffa::FfaError::Aborted as i32 as u32 as u64;
    let _ = crate::ffa::call(&r);
    loop {
        // SAFETY: waits for an interrupt; no state is touched.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
    }
}

/// A fatal error the SP itself detected: one line, then [`abort`].
pub fn fatal(why: &str) -> ! {
    crate::println!("fatal: {}", why);
    abort()
}

#[unsafe(no_mangle)]
extern "C" fn sp_runtime_exception(vector: u64, esr: u64, elr: u64, far: u64) -> ! {
    crate::println!("exception: vector {} esr {:#x} elr {:#x} far {:#x}", vector, esr, elr, far);
    abort()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::println!("PANIC: {}", info);
    abort()
}
