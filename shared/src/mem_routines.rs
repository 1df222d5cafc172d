//! `memcpy` and `memset` for the images that opt in (`fast_mem_routines!`),
//! in place of compiler_builtins' generic ones.
//!
//! Every FF-A call and answer is x0..x17 (SMCCC v1.2, DEN0028 §2.6): a
//! 144-byte `Regs` block that a partition manager or a partition moves
//! several times per round trip (into and out of saved registers, through
//! its call wrappers).  The target requires aligned accesses (images run
//! with the MMU off at first), so LLVM copies such a block inline only up to
//! 4 stores and calls `memcpy` for the rest; compiler_builtins' portable
//! memcpy takes ~92 instructions for one block (byte head, then one word per
//! 4-instruction iteration).  These take ~45: 32 bytes per iteration with
//! LDP/STP when both pointers are 8-byte aligned, bytes otherwise.  Issue P
//! item 3.
//!
//! Only aligned accesses, as compiler_builtins' own: word accesses when
//! source and destination are both 8-byte aligned, byte accesses otherwise,
//! so they are safe on Device memory and with the MMU off.  Non-overlapping
//! ranges only, as `memcpy`'s contract; `memmove` stays compiler_builtins'.
//! Written in assembly so that LLVM cannot recognise the loop as a `memcpy`
//! and call itself.
//!
//! A macro, not a module: the symbols must be in the images that ask for
//! them only.  ns-hyp's bench client is the null-SMC floor of every bench
//! ratio and keeps compiler_builtins' routines, so a cargo feature (which one
//! `cargo build` of all images would unify) cannot carry them.

/// Defines `memcpy` and `memset` in the calling image (see the module doc).
#[macro_export]
macro_rules! fast_mem_routines {
    () => {
        core::arch::global_asm!(
            ".section .text.memcpy, \"ax\"",
            ".global memcpy",
            ".type memcpy, %function",
            ".p2align 4",
            "memcpy:",
            // x0 = dst (returned), x1 = src, x2 = n; x3 walks dst.
            "mov x3, x0",
            "orr x4, x0, x1",
            "tst x4, #7",
            "b.ne 5f",
            "subs x2, x2, #32",
            "b.lo 2f",
            "1:",
            "ldp x4, x5, [x1]",
            "ldp x6, x7, [x1, #16]",
            "add x1, x1, #32",
            "stp x4, x5, [x3]",
            "stp x6, x7, [x3, #16]",
            "add x3, x3, #32",
            "subs x2, x2, #32",
            "b.hs 1b",
            "2:",
            // 0..31 bytes left, both pointers still 8-byte aligned.
            "add x2, x2, #32",
            "tbz x2, #4, 3f",
            "ldp x4, x5, [x1], #16",
            "stp x4, x5, [x3], #16",
            "3:",
            "tbz x2, #3, 4f",
            "ldr x4, [x1], #8",
            "str x4, [x3], #8",
            "4:",
            "and x2, x2, #7",
            "5:",
            "cbz x2, 7f",
            "6:",
            "ldrb w4, [x1], #1",
            "strb w4, [x3], #1",
            "subs x2, x2, #1",
            "b.ne 6b",
            "7:",
            "ret",
            ".size memcpy, . - memcpy",
        );

        // `memset` likewise: an answer is built on a zeroed block, and a 32-bit
        // direct response clears x8..x17 (80 bytes) of its block; compiler_builtins'
        // memset took ~51 instructions for that.  Words (STP of the byte repeated
        // eight times) when the destination is 8-byte aligned, bytes otherwise.
        core::arch::global_asm!(
            ".section .text.memset, \"ax\"",
            ".global memset",
            ".type memset, %function",
            ".p2align 4",
            "memset:",
            // x0 = dst (returned), w1 = the byte, x2 = n; x3 walks dst.
            "mov x3, x0",
            "tst x0, #7",
            "b.ne 5f",
            "and x4, x1, #0xff",
            "mov x5, #0x0101010101010101",
            "mul x4, x4, x5",
            "subs x2, x2, #32",
            "b.lo 2f",
            "1:",
            "stp x4, x4, [x3]",
            "stp x4, x4, [x3, #16]",
            "add x3, x3, #32",
            "subs x2, x2, #32",
            "b.hs 1b",
            "2:",
            "add x2, x2, #32",
            "tbz x2, #4, 3f",
            "stp x4, x4, [x3], #16",
            "3:",
            "tbz x2, #3, 4f",
            "str x4, [x3], #8",
            "4:",
            "and x2, x2, #7",
            "5:",
            "cbz x2, 7f",
            "6:",
            "strb w1, [x3], #1",
            "subs x2, x2, #1",
            "b.ne 6b",
            "7:",
            "ret",
            ".size memset, . - memset",
        );
    };
}
