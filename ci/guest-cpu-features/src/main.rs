//! guest-cpu-features: a bare-metal arm64 payload that checks what a virtual
//! CPU offers its guest (issue B4's `guest_cpu_features` test).  The same
//! binary runs on bare QEMU virt (`-kernel`, entered at EL2 there: it drops
//! to EL1 first) and under ns-hyp (entered at EL1); the test requires every
//! check that passes bare to pass under ns-hyp.
//!
//! Load contract: a flat binary, with **no** arm64 Image header, linked at
//! 0x40080000, where QEMU virt's `-kernel` loads a flat image (RAM +
//! 0x80000, hw/arm/boot.c); entered at its first byte with x0 = the DTB and
//! x1..x3 = 0, MMU off.  Output, through the PL011 data register at
//! 0x09000000, one line per check:
//!
//! ```text
//! guest_cpu_features <check>: pass|fail
//! guest_cpu_features info: <free text>
//! guest_cpu_features done: <n> pass, <m> fail
//! ```
//!
//! then PSCI SYSTEM_OFF through the conduit the DTB's /psci node names
//! (DEN0022 §5.10).
//!
//! Checks: the flat payload's entry and DTB placement (QEMU's rules, see
//! ns-hyp/src/vm/placement.rs), the two counters' agreement, and for the
//! virtual and the EL1 physical timer (DDI0487 D12): disabled → no
//! interrupt, masked (IMASK) → no interrupt with ISTATUS set, disabled or
//! masked while its interrupt is pending (PSTATE.I set) → no interrupt once
//! unmasked, CVAL in the past → fires at once, CVAL ahead → fires at CVAL,
//! TVAL counts down (negative past CVAL); then CPU 1 is started (PSCI
//! CPU_ON) and 1,000 SGI round trips CPU 0 → 1 → 0 must each come back within
//! 100 ms and average under 1 ms, with CPU 0 waiting in a WFE loop and in a
//! pure spin (the test runs 2 CPUs bare, 2 vCPUs on 1 CPU under ns-hyp; the
//! mean is printed).
//!
//! PMUv3 (DDI0487 D13): `pmu_present` (ID_AA64DFR0_EL1.PMUVer 1..=0xe,
//! PMCR_EL0.N >= 1); the cycle counter (PMCCFILTR_EL0 counting EL0/EL1)
//! rises read after read; event counter 0 on SW_INCR (0x00) counts exactly
//! 1,000 PMSWINC_EL0 writes; preset to 0xffff_ffff, one SW_INCR overflows it
//! and raises the PMU interrupt (PPI INTID 23) once, the handler clearing
//! PMOVSCLR_EL0; counters are per CPU (CPU 1 counts SW_INCR for 100 ms on its
//! counter 0, exactly, while CPU 0's keeps its value).  Printed: `info:
//! pmu_loop_cycles=<n>`, PMCCNTR_EL0 across 1,000,000 iterations of a
//! 4-instruction loop with IRQs masked (`cargo xtask bench`'s
//! guest_pmu_loop_cycles divides ns-hyp's by bare QEMU's, under -icount).
//!
//! SVE, where ID_AA64PFR0_EL1.SVE != 0: ZCR_EL1.LEN = 0xf gives the largest
//! vector length any LEN gives (printed; 256 bytes on bare QEMU max); no
//! LEN gives more than (LEN + 1) × 16 bytes and LEN = 0 gives 16; CPU 0 and
//! CPU 1 each load z0-z31, p0-p15 and FFR with their own patterns, spin
//! 300 ms (ns-hyp's 4 ms slices switch between the two vCPUs many times),
//! and find them all unchanged.
//!
//! MTE, where ID_AA64PFR1_EL1.MTE >= 2 (tag storage: the test runs QEMU
//! with `-machine mte=on`): with stage 1 on (identity map, RAM Normal
//! Tagged, TCR_EL1.TBI0) and SCTLR_EL1.ATA, a granule tagged 3 (IRG, STG)
//! read through a pointer tagged 5 takes a synchronous Data Abort with DFSC
//! 0x11 under TCF = 1 (tag 3 reads), sets TFSR_EL1.TF0 under TCF = 2 (cleared
//! by writing 0), and each CPU's tags on 256 granules read back (LDG)
//! unchanged after 300 ms of both running.  Otherwise an info line, no check.
//!
//! Entered at EL2 (bare QEMU, no EL3), the payload first sets up EL2 the
//! way a hypervisor would for its guest: HCR_EL2.ATA, MDCR_EL2.HPMN =
//! PMCR_EL0.N with no PMU trap, CPTR_EL2 trapping no FP/SVE, ZCR_EL2.LEN =
//! 0xf.  Under ns-hyp that is ns-hyp's job.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

/// Where the image is linked and QEMU loads a flat binary (RAM + 0x80000).
pub const LOAD_ADDR: u64 = 0x4008_0000;
/// QEMU virt's RAM (and ns-hyp's guest RAM) starts here.
pub const RAM_BASE: u64 = 0x4000_0000;
pub const UART_DR: u64 = 0x0900_0000;

const fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Where QEMU virt's `-kernel` puts the DTB for a flat image ending at
/// `image_end` and no initrd: where the initrd would go (RAM + min(RAM/2,
/// 128 MiB), or the image's end if higher, page aligned), aligned up to 2 MiB.
pub fn expected_dtb(ram_base: u64, ram_size: u64, image_end: u64) -> u64 {
    let initrd = align_up((ram_base + (ram_size / 2).min(128 << 20)).max(image_end), 4096);
    align_up(initrd, 2 << 20)
}

/// Devicetree Specification v0.4, 5.2 (header) and 5.4 (structure block):
/// the minimal walk this payload needs.
pub const FDT_MAGIC: u32 = 0xd00d_feed;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The value of property `prop` of the first node directly below the root
/// whose name is `node` or starts with `node@`.
pub fn fdt_prop<'a>(blob: &'a [u8], node: &str, prop: &str) -> Option<&'a [u8]> {
    if be32(blob, 0)? != FDT_MAGIC {
        return None;
    }
    let total = (be32(blob, 4)? as usize).min(blob.len());
    let blob = &blob[..total];
    let (structs, strings) = (be32(blob, 8)? as usize, be32(blob, 12)? as usize);
    let mut at = structs;
    let mut depth = 0usize;
    let mut in_node = false;
    loop {
        match be32(blob, at)? {
            1 => {
                // FDT_BEGIN_NODE: the name, NUL-terminated, padded to 4 bytes.
                let name_start = at + 4;
                let len = blob.get(name_start..)?.iter().position(|&c| c == 0)?;
                let name = core::str::from_utf8(&blob[name_start..name_start + len]).ok()?;
                depth += 1;
                in_node = depth == 2 && (name == node || name.strip_prefix(node).is_some_and(|r| r.starts_with('@')));
                at = align_up((name_start + len + 1) as u64, 4) as usize;
            }
            2 => {
                // FDT_END_NODE
                depth = depth.checked_sub(1)?;
                in_node = false;
                at += 4;
            }
            3 => {
                // FDT_PROP: len, nameoff, value.
                let len = be32(blob, at + 4)? as usize;
                let nameoff = be32(blob, at + 8)? as usize;
                let value = blob.get(at + 12..at + 12 + len)?;
                if in_node && depth == 2 {
                    let s = blob.get(strings + nameoff..)?;
                    let n = s.iter().position(|&c| c == 0)?;
                    if &s[..n] == prop.as_bytes() {
                        return Some(value);
                    }
                }
                at = align_up((at + 12 + len) as u64, 4) as usize;
            }
            4 => at += 4, // FDT_NOP
            _ => return None, // FDT_END or garbage
        }
    }
}

/// /memory's first (base, size), with #address-cells = #size-cells = 2 (QEMU virt, ns-hyp).
pub fn fdt_memory(blob: &[u8]) -> Option<(u64, u64)> {
    let r = fdt_prop(blob, "memory", "reg")?;
    let w = |i: usize| be32(r, i * 4).map(u64::from);
    Some((w(0)? << 32 | w(1)?, w(2)? << 32 | w(3)?))
}

/// PMUv3 (DDI0487 D13, ID_AA64DFR0_EL1.PMUVer): 0 = no PMU, 0xf = an
/// IMPLEMENTATION DEFINED one; 1..=0xe a PMUv3 of some revision.
pub fn pmuv3(pmuver: u64) -> bool {
    (1..=0xe).contains(&pmuver)
}

/// PMCR_EL0 bits (DDI0487, PMCR_EL0's description): E (enable), P (event counters
/// reset), C (cycle counter reset), LC (64-bit cycle counter overflow); N, the
/// number of event counters, in bits [15:11].
pub const PMCR_E: u64 = 1 << 0;
pub const PMCR_P: u64 = 1 << 1;
pub const PMCR_C: u64 = 1 << 2;
pub const PMCR_LC: u64 = 1 << 6;
pub fn pmcr_n(pmcr: u64) -> u64 {
    (pmcr >> 11) & 0x1f
}

/// The SVE register file dump layout of `sve_fill_spin_dump` for a vector
/// length of `vl` bytes: z0-z31 (VL bytes each), then p0-p15 (VL/8 bytes
/// each), then FFR (VL/8 bytes).  Returns (predicates' offset, FFR's
/// offset, total).
pub fn sve_layout(vl: usize) -> (usize, usize, usize) {
    let pl = vl / 8;
    (32 * vl, 32 * vl + 16 * pl, 32 * vl + 17 * pl)
}

/// The largest SVE vector length (DDI0487, "The Scalable Vector Extension": 2048 bits).
pub const SVE_MAX_VL: usize = 256;
/// The dump buffer one CPU needs at the largest vector length, plus 16 bytes
/// of slack for the 16-byte clearing loop.
pub const SVE_BUF: usize = 32 * SVE_MAX_VL + 17 * SVE_MAX_VL / 8 + 16;

/// The byte CPU `cpu` loads into its SVE state at offset `at` of the dump
/// layout (z and p registers; FFR has its own, [`sve_ffr_byte`]): differs
/// between the CPUs, the registers and the lanes.
pub fn sve_byte(cpu: u64, at: usize) -> u8 {
    let x = (at as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (cpu + 1).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    (x ^ (x >> 29) ^ (x >> 47)) as u8
}

/// FFR's byte `i` for CPU `cpu` at predicate length `pl` bytes.  WRFFR needs
/// a monotonic predicate (DDI0487, WRFFR: ones from bit 0, then zeros):
/// the first `k` bits set, `k` differing per CPU.
pub fn sve_ffr_byte(cpu: u64, pl: usize, i: usize) -> u8 {
    let k = pl * 8 / (cpu as usize + 2) + 1;
    let lo = i * 8;
    if k >= lo + 8 {
        0xff
    } else if k <= lo {
        0
    } else {
        (1u8 << (k - lo)) - 1
    }
}

/// Stage 1 for the MTE checks (DDI0487 D8, "The AArch64 Virtual Memory
/// System Architecture"): 4 KiB
/// granule, TCR_EL1.T0SZ = 32 (4 GiB of VA: the walk starts at level 1),
/// identity-mapped 1 GiB blocks: [0, 1 GiB) Device-nGnRnE (the GIC, the
/// UART), [1 GiB, 2 GiB) Normal Tagged (the RAM QEMU virt and ns-hyp give a
/// guest starts at 0x4000_0000; all this payload uses lies in its first GiB).
/// MAIR_EL1 attribute 0 = 0x00 (Device-nGnRnE), 1 = 0xF0 (Normal Inner/Outer
/// Write-Back, Tagged: FEAT_MTE2, "The Memory Tagging Extension" chapter).
pub const MAIR: u64 = 0xf0 << 8;
/// Level-1 block descriptor (D8, "VMSAv8-64 translation table format
/// descriptors"): bits [1:0] = 0b01, AttrIndx [4:2],
/// AP [7:6] = 0b00 (EL1 read/write), SH [9:8], AF [10], output address
/// [47:30], PXN [53], UXN [54].
pub const fn block(pa: u64, attr: u64, sh: u64, xn: bool) -> u64 {
    pa | 0b01 | attr << 2 | sh << 8 | 1 << 10 | if xn { 3 << 53 } else { 0 }
}
pub const fn identity_l1() -> [u64; 512] {
    let mut t = [0u64; 512];
    t[0] = block(0, 0, 0, true);
    t[1] = block(0x4000_0000, 1, 3, false);
    t
}
/// TCR_EL1 (its register description): T0SZ = 32, IRGN0 = ORGN0 = 0b01 (Write-Back
/// walks), SH0 = 0b11, TG0 = 4 KiB, EPD1 (no TTBR1 walks), TG1 = 4 KiB,
/// IPS = 32 bits, TBI0 (the top byte holds the logical tag), TCMA0 (a
/// pointer with tag 0 is Unchecked: only this payload's tagged pointers are
/// checked).
pub const TCR: u64 = 32 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 23 | 2 << 30 | 1 << 37 | 1 << 57;

/// The allocation tag CPU `cpu` gives granule `g` in the tags-preserved check: never 0.
pub fn mte_tag(cpu: u64, g: usize) -> u64 {
    ((g as u64 * 7 + cpu * 5) % 15) + 1
}

#[cfg(target_os = "none")]
mod guest {
    use core::fmt::{self, Write};
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

    core::arch::global_asm!(
        // Entered at EL2 (bare QEMU with virtualization=on boots kernels and
        // starts PSCI CPU_ON targets there; no EL3): run at EL1 as a guest
        // would, continuing at local label 1.  What ns-hyp does for its guest,
        // bare QEMU's EL2 is ours to do (DDI0487, the registers' descriptions):
        // HCR_EL2.RW: EL1 is AArch64, nothing trapped, Stage-2 off; HCR_EL2.ATA
        // (bit 56, FEAT_MTE2 only: ID_AA64PFR1_EL1.MTE >= 2): EL1 may access
        // allocation tags.  MDCR_EL2 (PMUv3 only): HPMN = PMCR_EL0.N (EL1 owns
        // every event counter), TPM, TPMCR and HPME clear.  CNTHCTL_EL2
        // (E2H = 0): EL1PCTEN | EL1PCEN.  ICC_SRE_EL2: SRE, DFB, DIB, Enable.
        // CPTR_EL2 (E2H = 0): RES1 bits only, so TZ (8, SVE), TFP (10,
        // FP/SIMD), TSM (12, SME) and TTA clear.  ZCR_EL2.LEN = 0xf (SVE only,
        // ID_AA64PFR0_EL1.SVE != 0): EL1 may use every vector length the CPU
        // has.  SCTLR_EL1: its RES1 bits, MMU and caches off.
        ".macro to_el1",
        "mrs x9, CurrentEL",
        "lsr x9, x9, #2",
        "cmp x9, #2",
        "b.ne 1f",
        "mov x9, #(1 << 31)",
        "mrs x10, id_aa64pfr1_el1",
        "ubfx x10, x10, #8, #4",
        "cmp x10, #2",
        "b.lo 4f",
        "orr x9, x9, #(1 << 56)",
        "4:",
        "msr hcr_el2, x9",
        "mov x9, #0",
        "mrs x10, id_aa64dfr0_el1",
        "ubfx x10, x10, #8, #4",
        "cbz x10, 5f",
        "cmp x10, #0xf",
        "b.eq 5f",
        "mrs x10, pmcr_el0",
        "ubfx x9, x10, #11, #5",
        "5:",
        "msr mdcr_el2, x9",
        "mov x9, #3",
        "msr cnthctl_el2, x9",
        "msr cntvoff_el2, xzr",
        "mov x9, #0xf",
        "msr S3_4_C12_C9_5, x9",
        "mov x9, #0x22ff",
        "msr cptr_el2, x9",
        "isb",
        "mrs x10, id_aa64pfr0_el1",
        "ubfx x10, x10, #32, #4",
        "cbz x10, 6f",
        "mov x9, #0xf",
        "msr S3_4_C1_C2_0, x9",
        "6:",
        "movz x9, #0x0800",
        "movk x9, #0x30d0, lsl #16",
        "msr sctlr_el1, x9",
        "mov x9, #0x3c5",
        "msr spsr_el2, x9",
        "adr x9, 1f",
        "msr elr_el2, x9",
        "isb",
        "eret",
        "1:",
        ".endm",
        ".section .text.entry, \"ax\"",
        ".global _start",
        // No Image header: the first word is code (a flat binary).
        "_start:",
        "mov x19, x0",
        "mov x20, x1",
        "mov x21, x2",
        "mov x22, x3",
        "adr x23, _start",
        "mrs x24, CurrentEL",
        "lsr x24, x24, #2",
        "to_el1",
        "adrp x9, {stack}",
        "add x9, x9, :lo12:{stack}",
        "add sp, x9, #{size}",
        // FP/SIMD on at EL1 (CPACR_EL1.FPEN).
        "mov x9, #(3 << 20)",
        "msr cpacr_el1, x9",
        "adrp x9, vectors",
        "add x9, x9, :lo12:vectors",
        "msr vbar_el1, x9",
        "isb",
        "mov x0, x19",
        "mov x1, x20",
        "mov x2, x21",
        "mov x3, x22",
        "mov x4, x23",
        "mov x5, x24",
        "bl guest_main",
        "2: wfi",
        "b 2b",
        // The second CPU (PSCI CPU_ON): its own stack, the same vectors.
        ".global secondary_entry",
        "secondary_entry:",
        "to_el1",
        "adrp x9, {stack2}",
        "add x9, x9, :lo12:{stack2}",
        "add sp, x9, #{size2}",
        "mov x9, #(3 << 20)",
        "msr cpacr_el1, x9",
        "adrp x9, vectors",
        "add x9, x9, :lo12:vectors",
        "msr vbar_el1, x9",
        "isb",
        "bl secondary_main",
        "3: wfi",
        "b 3b",
        stack = sym STACK,
        size = const STACK_SIZE,
        stack2 = sym STACK2,
        size2 = const STACK2_SIZE,
    );

    // The EL1 vector table (DDI0487 D1.10.2): IRQ and synchronous exceptions
    // from the current EL with SP_EL1 go to their handlers, everything else
    // is fatal.
    core::arch::global_asm!(
        ".section .text.vectors, \"ax\"",
        ".balign 2048",
        "vectors:",
        ".irp n, 0, 1, 2, 3",
        ".balign 0x80",
        "mov x0, #\\n",
        "b fatal_entry",
        ".endr",
        ".balign 0x80",
        "b sync_entry",
        ".balign 0x80",
        "b irq_entry",
        ".irp n, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        ".balign 0x80",
        "mov x0, #\\n",
        "b fatal_entry",
        ".endr",
        "fatal_entry:",
        "bl fatal",
        // Caller-saved registers of the AAPCS64 (x0-x18, x30, q0-q7, q16-q31):
        // the interrupted code's, around a Rust handler.  (q registers only:
        // an SVE check runs with IRQs masked and takes no exception, for
        // restoring a V register zeroes the rest of its Z register.)
        ".macro save_caller",
        "sub sp, sp, #(20 * 8 + 24 * 16)",
        "stp x0, x1, [sp, #0]",
        "stp x2, x3, [sp, #16]",
        "stp x4, x5, [sp, #32]",
        "stp x6, x7, [sp, #48]",
        "stp x8, x9, [sp, #64]",
        "stp x10, x11, [sp, #80]",
        "stp x12, x13, [sp, #96]",
        "stp x14, x15, [sp, #112]",
        "stp x16, x17, [sp, #128]",
        "stp x18, x30, [sp, #144]",
        "stp q0, q1, [sp, #160]",
        "stp q2, q3, [sp, #192]",
        "stp q4, q5, [sp, #224]",
        "stp q6, q7, [sp, #256]",
        "stp q16, q17, [sp, #288]",
        "stp q18, q19, [sp, #320]",
        "stp q20, q21, [sp, #352]",
        "stp q22, q23, [sp, #384]",
        "stp q24, q25, [sp, #416]",
        "stp q26, q27, [sp, #448]",
        "stp q28, q29, [sp, #480]",
        "stp q30, q31, [sp, #512]",
        ".endm",
        ".macro restore_caller",
        "ldp q30, q31, [sp, #512]",
        "ldp q28, q29, [sp, #480]",
        "ldp q26, q27, [sp, #448]",
        "ldp q24, q25, [sp, #416]",
        "ldp q22, q23, [sp, #384]",
        "ldp q20, q21, [sp, #352]",
        "ldp q18, q19, [sp, #320]",
        "ldp q16, q17, [sp, #288]",
        "ldp q6, q7, [sp, #256]",
        "ldp q4, q5, [sp, #224]",
        "ldp q2, q3, [sp, #192]",
        "ldp q0, q1, [sp, #160]",
        "ldp x18, x30, [sp, #144]",
        "ldp x16, x17, [sp, #128]",
        "ldp x14, x15, [sp, #112]",
        "ldp x12, x13, [sp, #96]",
        "ldp x10, x11, [sp, #80]",
        "ldp x8, x9, [sp, #64]",
        "ldp x6, x7, [sp, #48]",
        "ldp x4, x5, [sp, #32]",
        "ldp x2, x3, [sp, #16]",
        "ldp x0, x1, [sp, #0]",
        "add sp, sp, #(20 * 8 + 24 * 16)",
        ".endm",
        "irq_entry:",
        "save_caller",
        "bl irq_handler",
        "restore_caller",
        "eret",
        // Synchronous exception from EL1: `sync_handler` fixes an expected
        // Data Abort (the MTE check) up, or ends the run.
        "sync_entry:",
        "save_caller",
        "bl sync_handler",
        "restore_caller",
        "eret",
    );

    const STACK_SIZE: usize = 0x8000;
    shared::payload_stack!(STACK, STACK_SIZE);
    const STACK2_SIZE: usize = 0x4000;
    shared::payload_stack!(STACK2, STACK2_SIZE);

    unsafe extern "C" {
        static __image_end: u8;
    }

    struct Uart;
    impl Write for Uart {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for b in s.bytes() {
                // SAFETY: the PL011 data register (QEMU's, or the one ns-hyp
                // emulates); MMU off, so a Device access.
                unsafe { core::ptr::write_volatile(super::UART_DR as *mut u32, b as u32) };
            }
            Ok(())
        }
    }

    macro_rules! sysreg_read {
        ($name:literal) => {{
            let v: u64;
            // SAFETY: reads a system register this payload may read at EL1.
            unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
            v
        }};
    }
    macro_rules! sysreg_write {
        ($name:literal, $v:expr) => {{
            let v: u64 = $v;
            // SAFETY: writes an EL1 register of this payload's own context
            // (timer, GIC CPU interface, PMU, SVE, MTE, stage 1); the isb
            // makes it take effect.
            unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) v, options(nomem, nostack)) };
        }};
    }

    fn cntpct() -> u64 {
        // SAFETY: the physical counter (CNTHCTL_EL2.EL1PCTEN = 1 bare and under ns-hyp).
        unsafe { core::arch::asm!("isb", options(nomem, nostack)) };
        sysreg_read!("cntpct_el0")
    }

    fn cntvct() -> u64 {
        // SAFETY: barrier only.
        unsafe { core::arch::asm!("isb", options(nomem, nostack)) };
        sysreg_read!("cntvct_el0")
    }

    fn irqs_on() {
        // SAFETY: unmasks IRQs at EL1 (PSTATE.I); the vector table is set.
        unsafe { core::arch::asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
    }

    fn irqs_off() {
        // SAFETY: masks IRQs at EL1.
        unsafe { core::arch::asm!("msr daifset, #2", "isb", options(nomem, nostack)) };
    }

    fn wait_ticks(n: u64) {
        let t0 = cntpct();
        while cntpct().wrapping_sub(t0) < n {
            core::hint::spin_loop();
        }
    }

    /// The two EL1 timers (DDI0487 D12.8): the virtual one (PPI 27) and the physical one (PPI 30).
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Timer {
        Virt,
        Phys,
    }

    const ENABLE: u64 = 1;
    const IMASK: u64 = 2;
    const ISTATUS: u64 = 4;

    impl Timer {
        fn name(self) -> &'static str {
            match self {
                Timer::Virt => "vtimer",
                Timer::Phys => "ptimer",
            }
        }
        fn idx(self) -> usize {
            self as usize
        }
        fn now(self) -> u64 {
            match self {
                Timer::Virt => cntvct(),
                Timer::Phys => cntpct(),
            }
        }
        fn set_ctl(self, v: u64) {
            match self {
                Timer::Virt => sysreg_write!("cntv_ctl_el0", v),
                Timer::Phys => sysreg_write!("cntp_ctl_el0", v),
            }
        }
        fn ctl(self) -> u64 {
            match self {
                Timer::Virt => sysreg_read!("cntv_ctl_el0"),
                Timer::Phys => sysreg_read!("cntp_ctl_el0"),
            }
        }
        fn set_cval(self, v: u64) {
            match self {
                Timer::Virt => sysreg_write!("cntv_cval_el0", v),
                Timer::Phys => sysreg_write!("cntp_cval_el0", v),
            }
        }
        fn cval(self) -> u64 {
            match self {
                Timer::Virt => sysreg_read!("cntv_cval_el0"),
                Timer::Phys => sysreg_read!("cntp_cval_el0"),
            }
        }
        fn set_tval(self, v: u64) {
            match self {
                Timer::Virt => sysreg_write!("cntv_tval_el0", v),
                Timer::Phys => sysreg_write!("cntp_tval_el0", v),
            }
        }
        fn tval(self) -> u64 {
            match self {
                Timer::Virt => sysreg_read!("cntv_tval_el0"),
                Timer::Phys => sysreg_read!("cntp_tval_el0"),
            }
        }
    }

    /// Interrupts taken per timer, and the physical count at the first one
    /// since the last reset (0: none).  Written by the IRQ handler, read by
    /// the checks; plain loads and stores (MMU off: no exclusives on Device memory).
    static TAKEN: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
    static FIRST_AT: AtomicU64 = AtomicU64::new(0);
    static OTHER: AtomicU32 = AtomicU32::new(0);
    /// The IPI ping-pong between CPU 0 and CPU 1: each word has one writer.
    static CPU1_UP: AtomicU32 = AtomicU32::new(0);
    static PING: AtomicU32 = AtomicU32::new(0);
    static PONG: AtomicU32 = AtomicU32::new(0);
    /// SGI CPU 0 sends CPU 1, and CPU 1's answer.
    const SGI_PING: u32 = 1;
    const SGI_PONG: u32 = 2;
    /// SGI CPU 0 sends CPU 1 when it posts a command in [`MAILBOX`].
    const SGI_CMD: u32 = 3;
    /// QEMU virt's PMU overflow interrupt: PPI 7 = INTID 23 (ns-hyp gives
    /// its guest the same virtual INTID).
    const PMU_PPI: u32 = 23;
    /// PMU overflow interrupts taken (CPU 0).
    static PMU_TAKEN: AtomicU32 = AtomicU32::new(0);
    /// The MTE check's expected Data Abort (CPU 0): armed, and what was taken.
    static EXPECT_ABORT: AtomicU32 = AtomicU32::new(0);
    static ABORT_ESR: AtomicU64 = AtomicU64::new(0);
    static ABORT_FAR: AtomicU64 = AtomicU64::new(0);

    /// CPU 0 → CPU 1 commands (one cache line; `req`, `arg` written by CPU
    /// 0, `ack`, `res` by CPU 1).  `req` = sequence << 8 | command; CPU 1
    /// runs each new one, writes `res`, then `ack` = the sequence.  Once CPU
    /// 0 has turned its MMU and caches on (the MTE checks) and CPU 1 not yet,
    /// the two see this memory with different attributes: every access goes
    /// through [`mb_write`] / [`mb_read`], which clean and invalidate the
    /// line to the Point of Coherency (DDI0487, "Mismatched memory
    /// attributes" and DC CIVAC).
    #[repr(C, align(64))]
    struct Mailbox {
        req: AtomicU64,
        arg: AtomicU64,
        ack: AtomicU64,
        res: [AtomicU64; 4],
    }
    static MAILBOX: Mailbox = Mailbox {
        req: AtomicU64::new(0),
        arg: AtomicU64::new(0),
        ack: AtomicU64::new(0),
        res: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
    };
    const CMD_PMU: u64 = 1;
    const CMD_SVE: u64 = 2;
    const CMD_MTE: u64 = 3;

    fn mailbox_to_poc() {
        // SAFETY: cache maintenance by VA of the mailbox's own line (RAM,
        // mapped or flat) and a barrier; no data changes.
        unsafe { core::arch::asm!("dc civac, {}", "dsb ish", in(reg) &MAILBOX as *const Mailbox as u64, options(nostack)) };
    }
    fn mb_write(w: &AtomicU64, v: u64) {
        w.store(v, Relaxed);
        mailbox_to_poc();
    }
    fn mb_read(w: &AtomicU64) -> u64 {
        mailbox_to_poc();
        w.load(Relaxed)
    }

    /// CPU 0: posts command `cmd` with `arg` to CPU 1; returns its sequence.
    fn post_cpu1(cmd: u64, arg: u64) -> u64 {
        let seq = (mb_read(&MAILBOX.req) >> 8) + 1;
        mb_write(&MAILBOX.arg, arg);
        mb_write(&MAILBOX.req, seq << 8 | cmd);
        send_sgi(SGI_CMD, 1);
        seq
    }

    /// CPU 0: CPU 1's results for `seq`, None if not within `limit` ticks.
    fn wait_cpu1(seq: u64, limit: u64) -> Option<[u64; 4]> {
        let t0 = cntpct();
        while mb_read(&MAILBOX.ack) != seq {
            if cntpct() - t0 > limit {
                return None;
            }
            core::hint::spin_loop();
        }
        Some(core::array::from_fn(|i| mb_read(&MAILBOX.res[i])))
    }

    /// ICC_SGI1R_EL1 (IHI0069H): SGI `intid` to the CPU with Aff0 `cpu` (Aff1..3 = 0).
    fn send_sgi(intid: u32, cpu: u64) {
        // SAFETY: barrier: the flag written before is visible before the SGI.
        unsafe { core::arch::asm!("dsb sy", options(nostack)) };
        sysreg_write!("S3_0_C12_C11_5", (intid as u64) << 24 | 1 << cpu);
    }

    fn cpu_index() -> u64 {
        sysreg_read!("mpidr_el1") & 0xff
    }

    fn reset_counts() {
        TAKEN[0].store(0, Relaxed);
        TAKEN[1].store(0, Relaxed);
        FIRST_AT.store(0, Relaxed);
    }

    /// IRQ: acknowledge (ICC_IAR1_EL1), turn the timer that fired off (it
    /// would fire again at once: a level), count, end (ICC_EOIR1_EL1, EOImode 0).
    #[unsafe(no_mangle)]
    extern "C" fn irq_handler() {
        let iar = sysreg_read!("S3_0_C12_C12_0");
        let intid = (iar & 0xff_ffff) as u32;
        if intid >= 1020 {
            return;
        }
        let at = cntpct();
        if intid == SGI_PING && cpu_index() == 1 {
            PONG.store(PING.load(Relaxed), Relaxed);
            send_sgi(SGI_PONG, 0);
            sysreg_write!("S3_0_C12_C12_1", iar);
            return;
        }
        if intid == SGI_PONG || intid == SGI_CMD {
            sysreg_write!("S3_0_C12_C12_1", iar);
            return;
        }
        if intid == PMU_PPI {
            // The overflow status is the interrupt's level (DDI0487 D13,
            // "Generating overflow interrupt requests"): clearing it in
            // PMOVSCLR_EL0 withdraws the request.
            let ovs = sysreg_read!("pmovsset_el0");
            sysreg_write!("pmovsclr_el0", ovs);
            PMU_TAKEN.store(PMU_TAKEN.load(Relaxed) + 1, Relaxed);
            sysreg_write!("S3_0_C12_C12_1", iar);
            return;
        }
        let t = match intid {
            27 => Some(Timer::Virt),
            30 => Some(Timer::Phys),
            _ => None,
        };
        match t {
            Some(t) => {
                t.set_ctl(0);
                TAKEN[t.idx()].store(TAKEN[t.idx()].load(Relaxed) + 1, Relaxed);
                if FIRST_AT.load(Relaxed) == 0 {
                    FIRST_AT.store(at, Relaxed);
                }
            }
            None => OTHER.store(OTHER.load(Relaxed) + 1, Relaxed),
        }
        sysreg_write!("S3_0_C12_C12_1", iar);
    }

    /// Synchronous exception at EL1: the Data Abort the MTE check armed
    /// [`EXPECT_ABORT`] for (ESR_EL1.EC = 0x25, from the current EL) is
    /// recorded and the faulting instruction skipped; anything else ends the run.
    #[unsafe(no_mangle)]
    extern "C" fn sync_handler() {
        let esr = sysreg_read!("esr_el1");
        if EXPECT_ABORT.load(Relaxed) == 1 && esr >> 26 == 0x25 {
            EXPECT_ABORT.store(2, Relaxed);
            ABORT_ESR.store(esr, Relaxed);
            ABORT_FAR.store(sysreg_read!("far_el1"), Relaxed);
            sysreg_write!("elr_el1", sysreg_read!("elr_el1") + 4);
            return;
        }
        fatal(4)
    }

    #[unsafe(no_mangle)]
    extern "C" fn fatal(vector: u64) -> ! {
        let _ = writeln!(
            Uart,
            "guest_cpu_features info: unexpected exception, vector {} esr {:#x} elr {:#x} far {:#x}",
            vector,
            sysreg_read!("esr_el1"),
            sysreg_read!("elr_el1"),
            sysreg_read!("far_el1")
        );
        let _ = writeln!(Uart, "guest_cpu_features done: aborted");
        off(true)
    }

    const GICD: u64 = 0x0800_0000;
    /// The redistributors, one RD_base + SGI_base pair (2 × 64 KiB) per CPU.
    const GICR: u64 = 0x080a_0000;
    const GICR_STRIDE: u64 = 0x2_0000;

    fn mmio_w(a: u64, v: u32) {
        // SAFETY: a GICv3 register of QEMU virt's map (IHI0069H), Device access.
        unsafe { core::ptr::write_volatile(a as *mut u32, v) };
    }
    fn mmio_r(a: u64) -> u32 {
        // SAFETY: as above.
        unsafe { core::ptr::read_volatile(a as *const u32) }
    }

    /// GICv3 (IHI0069H) for CPU 0, one Security state (DS = 1): affinity
    /// routing and Group 1 on, the redistributor awake, both timer PPIs Group 1
    /// and enabled, priority mask open.
    fn gic_init() {
        mmio_w(GICD, (1 << 4) | (1 << 1)); // GICD_CTLR: ARE, EnableGrp1
        while mmio_r(GICD) & (1 << 31) != 0 {} // RWP
        gic_cpu_init(0, (1 << 27) | (1 << 30) | (1 << SGI_PONG));
    }

    /// CPU `cpu`'s redistributor awake, its SGIs/PPIs Group 1, `enable` enabled; its CPU interface on.
    fn gic_cpu_init(cpu: u64, enable: u32) {
        let rd = GICR + cpu * GICR_STRIDE;
        let sgi = rd + 0x1_0000;
        let waker = rd + 0x14;
        mmio_w(waker, mmio_r(waker) & !(1 << 1)); // GICR_WAKER.ProcessorSleep = 0
        while mmio_r(waker) & (1 << 2) != 0 {} // ChildrenAsleep
        mmio_w(sgi + 0x80, !0); // GICR_IGROUPR0: all Group 1
        mmio_w(sgi + 0x100, enable); // GICR_ISENABLER0
        sysreg_write!("S3_0_C12_C12_5", 0x7); // ICC_SRE_EL1: SRE, DFB, DIB
        sysreg_write!("S3_0_C4_C6_0", 0xff); // ICC_PMR_EL1
        sysreg_write!("S3_0_C12_C12_7", 1); // ICC_IGRPEN1_EL1
    }

    struct Report {
        pass: u32,
        fail: u32,
    }

    impl Report {
        fn check(&mut self, name: fmt::Arguments, ok: bool) {
            let _ = writeln!(Uart, "guest_cpu_features {}: {}", name, if ok { "pass" } else { "fail" });
            if ok {
                self.pass += 1;
            } else {
                self.fail += 1;
            }
        }
    }

    macro_rules! info {
        ($($a:tt)*) => {{
            let _ = write!(Uart, "guest_cpu_features info: ");
            let _ = writeln!(Uart, $($a)*);
        }};
    }

    fn timer_checks(r: &mut Report, t: Timer, ms: u64) {
        let n = t.name();
        let taken = || TAKEN[t.idx()].load(Relaxed);
        // Disabled, CVAL long past: no interrupt.
        reset_counts();
        t.set_ctl(0);
        t.set_cval(0);
        irqs_on();
        wait_ticks(5 * ms);
        irqs_off();
        r.check(format_args!("{n}_disabled_no_irq"), taken() == 0 && t.ctl() & ISTATUS == 0);

        // Enabled but masked (IMASK), condition met: ISTATUS, no interrupt.
        reset_counts();
        t.set_cval(0);
        t.set_ctl(ENABLE | IMASK);
        let istatus = t.ctl() & ISTATUS != 0;
        irqs_on();
        wait_ticks(5 * ms);
        irqs_off();
        t.set_ctl(0);
        r.check(format_args!("{n}_masked_no_irq"), istatus && taken() == 0);

        // Fired while PSTATE.I masked it, then disabled / masked before the
        // CPU took it: the level fell, nothing is taken once unmasked.
        for (what, ctl) in [("disabled", 0), ("masked", ENABLE | IMASK)] {
            reset_counts();
            t.set_cval(t.now().wrapping_sub(1000));
            t.set_ctl(ENABLE);
            wait_ticks(ms);
            let istatus = t.ctl() & ISTATUS != 0;
            t.set_ctl(ctl);
            irqs_on();
            wait_ticks(5 * ms);
            irqs_off();
            t.set_ctl(0);
            r.check(format_args!("{n}_{what}_while_pending_no_irq"), istatus && taken() == 0);
        }

        // CVAL in the past: fires at once.
        reset_counts();
        irqs_on();
        let t0 = cntpct();
        t.set_cval(t.now().wrapping_sub(1000));
        t.set_ctl(ENABLE);
        while taken() == 0 && cntpct() - t0 < 100 * ms {}
        irqs_off();
        let lat = FIRST_AT.load(Relaxed).wrapping_sub(t0);
        info!("{n} CVAL in the past: {} interrupt(s), taken {} ticks after the enable", taken(), lat);
        // QEMU's counter follows host time: the bound leaves room for a loaded
        // host (seen: 30-210 us bare and under ns-hyp).
        r.check(format_args!("{n}_cval_past_fires_at_once"), taken() == 1 && lat <= 10 * ms);

        // CVAL 2 ms ahead: fires at CVAL, not before, not much after (seen:
        // 30-200 us late, once 6.6 ms under ns-hyp on a loaded host).
        reset_counts();
        irqs_on();
        let cval = t.now() + 2 * ms;
        t.set_cval(cval);
        t.set_ctl(ENABLE);
        let t0 = cntpct();
        while taken() == 0 && cntpct() - t0 < 100 * ms {}
        irqs_off();
        t.set_ctl(0);
        let at = FIRST_AT.load(Relaxed);
        info!("{n} CVAL ahead: {} interrupt(s), taken {} ticks after CVAL", taken(), at.wrapping_sub(cval) as i64);
        r.check(format_args!("{n}_cval_ahead_fires_at_cval"), taken() == 1 && at >= cval && at - cval <= 20 * ms);

        // TVAL counts down (the timer disabled: TVAL still counts), and is negative past CVAL.
        t.set_ctl(0);
        let before = t.now();
        t.set_tval(10 * ms);
        let cval = t.cval();
        let a = t.tval();
        wait_ticks(ms);
        let b = t.tval();
        t.set_tval(100);
        wait_ticks(1000);
        let c = t.tval() as u32 as i32;
        info!("{n} TVAL: wrote {}, read {a} then {b} a ms later; 1000 ticks past a TVAL of 100: {c}", 10 * ms);
        let ok = cval >= before + 10 * ms && a <= 10 * ms && a > 0 && b < a && a - b >= ms && c < 0;
        r.check(format_args!("{n}_tval_counts_down"), ok);
    }

    /// CPU 1: answers every SGI_PING with SGI_PONG (in `irq_handler`), and
    /// runs each command CPU 0 posts in [`MAILBOX`] (with IRQs masked),
    /// waiting in WFI.  WFI with PSTATE.I set still wakes on a pending
    /// interrupt (DDI0487, "Wait for Interrupt"), so a command posted
    /// between the mailbox check and the WFI is not missed; the interrupt is
    /// then taken when IRQs are unmasked.
    #[unsafe(no_mangle)]
    extern "C" fn secondary_main() -> ! {
        gic_cpu_init(1, 1 << SGI_PING | 1 << SGI_CMD);
        CPU1_UP.store(1, Relaxed);
        let mut seen = 0;
        loop {
            irqs_off();
            let req = mb_read(&MAILBOX.req);
            if req >> 8 != seen {
                seen = req >> 8;
                let res = cpu1_command(req & 0xff, mb_read(&MAILBOX.arg));
                for (w, v) in MAILBOX.res.iter().zip(res) {
                    mb_write(w, v);
                }
                mb_write(&MAILBOX.ack, seen);
            } else {
                // SAFETY: waits for the next interrupt (taken just below).
                unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
            }
            irqs_on();
        }
    }

    fn cpu1_command(cmd: u64, arg: u64) -> [u64; 4] {
        match cmd {
            CMD_PMU => pmu_incr_for(arg),
            CMD_SVE => sve_fill_check(1, arg),
            CMD_MTE => mte_tags_check(1, arg),
            _ => [0; 4],
        }
    }

    const IPI_ROUND_TRIPS: u32 = 1000;

    /// 1,000 SGI round trips CPU 0 → CPU 1 → CPU 0.  `wfe`: CPU 0 waits for
    /// each answer with WFE in its loop (as Linux's spinning waits do); else
    /// it spins on the flag alone.  Returns the mean in counter ticks, None
    /// if one answer did not come within `limit` ticks.
    fn ipi_round_trips(wfe: bool, base: u32, limit: u64) -> Option<u64> {
        irqs_on();
        let t0 = cntpct();
        for n in 1..=IPI_ROUND_TRIPS {
            let seq = base + n;
            PING.store(seq, Relaxed);
            send_sgi(SGI_PING, 1);
            let start = cntpct();
            while PONG.load(Relaxed) != seq {
                if cntpct() - start > limit {
                    irqs_off();
                    return None;
                }
                if wfe {
                    // SAFETY: waits for an event or interrupt (the SGI_PONG).
                    unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
                }
            }
        }
        let total = cntpct() - t0;
        irqs_off();
        Some(total / IPI_ROUND_TRIPS as u64)
    }

    /// Starts CPU 1 and times SGI round trips; true if CPU 1 came up.
    fn ipi_checks(r: &mut Report, conduit_smc: bool, ms: u64) -> bool {
        let ret: u64;
        // SAFETY: PSCI CPU_ON (DEN0022 §5.6) of CPU 1 at `secondary_entry`.
        unsafe {
            unsafe extern "C" {
                fn secondary_entry();
            }
            let (f, e) = (shared::abi::psci::PSCI_CPU_ON_64 as u64, secondary_entry as *const () as u64);
            if conduit_smc {
                core::arch::asm!("smc #0", inout("x0") f => ret, in("x1") 1u64, in("x2") e, in("x3") 0u64, options(nostack));
            } else {
                core::arch::asm!("hvc #0", inout("x0") f => ret, in("x1") 1u64, in("x2") e, in("x3") 0u64, options(nostack));
            }
        }
        let t0 = cntpct();
        while CPU1_UP.load(Relaxed) == 0 && cntpct() - t0 < 1000 * ms {}
        let up = CPU1_UP.load(Relaxed) != 0;
        r.check(format_args!("second_cpu_starts"), ret == 0 && up);
        if !up {
            return false;
        }
        // Bounded: each answer within 100 ms, so 1,000 round trips well under the 4 ms-slice ping-pong.
        for (name, wfe, base) in [("ipi_round_trips_wfe", true, 0), ("ipi_round_trips_spin", false, IPI_ROUND_TRIPS)] {
            let mean = ipi_round_trips(wfe, base, 100 * ms);
            match mean {
                Some(m) => info!("{name}: {IPI_ROUND_TRIPS} round trips, mean {m} ticks ({} us)", m * 1000 / ms),
                None => info!("{name}: an answer took more than 100 ms"),
            }
            r.check(format_args!("{name}"), mean.is_some_and(|m| m < ms));
        }
        true
    }

    // ---- PMUv3 (DDI0487 D13, "The Performance Monitors Extension") ----

    fn pmccntr() -> u64 {
        // SAFETY: barrier only: the read below is not hoisted above earlier work.
        unsafe { core::arch::asm!("isb", options(nomem, nostack)) };
        sysreg_read!("pmccntr_el0")
    }

    /// Event counter 0 counting SW_INCR (event 0x00, PMEVTYPER0_EL0 with
    /// every filter bit clear) from `value`, enabled; PMCR_EL0.E set.
    fn pmu_counter0_sw_incr(value: u64) {
        sysreg_write!("pmcntenclr_el0", 1);
        sysreg_write!("pmevtyper0_el0", 0);
        sysreg_write!("pmevcntr0_el0", value);
        sysreg_write!("pmovsclr_el0", 1);
        sysreg_write!("pmcr_el0", super::PMCR_E | super::PMCR_LC);
        sysreg_write!("pmcntenset_el0", 1);
    }

    fn pmu_counter0() -> u64 {
        // SAFETY: barrier only.
        unsafe { core::arch::asm!("isb", options(nomem, nostack)) };
        sysreg_read!("pmevcntr0_el0")
    }

    /// CPU 1's part of `pmu_counts_per_vcpu`: its own counter 0 from 0,
    /// PMSWINC_EL0 bit 0 written for `ticks` counter ticks.  Returns (writes,
    /// counter 0).  A system register write completes or is not executed at
    /// all when an exception comes: the count is exact.
    fn pmu_incr_for(ticks: u64) -> [u64; 4] {
        pmu_counter0_sw_incr(0);
        let t0 = cntpct();
        let mut n = 0u64;
        while cntpct() - t0 < ticks {
            for _ in 0..64 {
                sysreg_write!("pmswinc_el0", 1);
                n += 1;
            }
        }
        let v = pmu_counter0();
        sysreg_write!("pmcntenclr_el0", 1);
        [n, v, 0, 0]
    }

    /// 1,000,000 iterations of three ALU instructions and a branch, IRQs
    /// masked: PMCCNTR_EL0's delta (EL1 only: PMCCFILTR_EL0 = 0).
    fn pmu_loop_cycles() -> u64 {
        let (c0, c1): (u64, u64);
        // SAFETY: reads the cycle counter around a register-only loop.
        unsafe {
            core::arch::asm!(
                "isb",
                "mrs {c0}, pmccntr_el0",
                "movz {n}, #0x4240",
                "movk {n}, #0xf, lsl #16",
                "2:",
                "add {a}, {a}, #3",
                "eor {b}, {b}, {a}",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                "isb",
                "mrs {c1}, pmccntr_el0",
                c0 = out(reg) c0,
                c1 = out(reg) c1,
                n = out(reg) _,
                a = inout(reg) 0u64 => _,
                b = inout(reg) 0u64 => _,
                options(nomem, nostack),
            )
        };
        c1.wrapping_sub(c0)
    }

    /// The PMU checks CPU 0 runs alone; true if a PMUv3 with event counters is there.
    fn pmu_checks(r: &mut Report, ms: u64) -> bool {
        let ver = (sysreg_read!("id_aa64dfr0_el1") >> 8) & 0xf;
        let n = if super::pmuv3(ver) { super::pmcr_n(sysreg_read!("pmcr_el0")) } else { 0 };
        info!("PMU: ID_AA64DFR0_EL1.PMUVer {ver:#x}, PMCR_EL0.N {n}");
        r.check(format_args!("pmu_present"), super::pmuv3(ver) && n >= 1);
        if !super::pmuv3(ver) || n == 0 {
            return false;
        }
        // Everything reset and enabled; the cycle counter counts EL0 and EL1
        // (PMCCFILTR_EL0: P, U, NSK, NSU clear; NSH clear: not EL2).
        sysreg_write!("pmcntenclr_el0", u32::MAX as u64);
        sysreg_write!("pmintenclr_el1", u32::MAX as u64);
        sysreg_write!("pmovsclr_el0", u32::MAX as u64);
        sysreg_write!("pmccfiltr_el0", 0);
        sysreg_write!("pmcr_el0", super::PMCR_E | super::PMCR_P | super::PMCR_C | super::PMCR_LC);
        sysreg_write!("pmcntenset_el0", 1 << 31);

        // Each read after 200 iterations of work is above the one before.
        let first = pmccntr();
        let mut prev = first;
        let mut rising = true;
        for _ in 0..100 {
            for i in 0..200u64 {
                core::hint::black_box(i);
            }
            let now = pmccntr();
            rising &= now > prev;
            prev = now;
        }
        info!("PMU: PMCCNTR_EL0 {first} -> {prev} over 100 reads");
        r.check(format_args!("pmu_cycle_counter_monotonic"), rising && prev > first);

        // SW_INCR counts exactly the PMSWINC_EL0 writes.
        const N: u64 = 1000;
        pmu_counter0_sw_incr(0);
        for _ in 0..N {
            sysreg_write!("pmswinc_el0", 1);
        }
        let v = pmu_counter0();
        info!("PMU: {N} PMSWINC_EL0 writes, counter 0 = {v}");
        r.check(format_args!("pmu_event_sw_incr"), v == N);

        // Counter 0 at 0xffff_ffff overflows on one SW_INCR (at bit 31:
        // PMCR_EL0.LP = 0): PMOVSSET_EL0 bit 0 and, with PMINTENSET_EL1 bit
        // 0, the PMU interrupt; the handler clears the overflow, and no
        // second interrupt follows.
        pmu_counter0_sw_incr(0xffff_ffff);
        PMU_TAKEN.store(0, Relaxed);
        let sgi = GICR + 0x1_0000;
        mmio_w(sgi + 0x100, 1 << PMU_PPI); // GICR_ISENABLER0
        sysreg_write!("pmintenset_el1", 1);
        irqs_on();
        sysreg_write!("pmswinc_el0", 1);
        let t0 = cntpct();
        while PMU_TAKEN.load(Relaxed) == 0 && cntpct() - t0 < 100 * ms {}
        wait_ticks(10 * ms);
        irqs_off();
        let (taken, after, ovs) = (PMU_TAKEN.load(Relaxed), pmu_counter0(), sysreg_read!("pmovsset_el0"));
        sysreg_write!("pmintenclr_el1", 1);
        sysreg_write!("pmcntenclr_el0", 1);
        mmio_w(sgi + 0x180, 1 << PMU_PPI); // GICR_ICENABLER0
        info!("PMU: overflow of counter 0: {taken} interrupt(s), counter then {after:#x}, PMOVSSET_EL0 {ovs:#x}");
        r.check(format_args!("pmu_overflow_irq"), taken == 1 && ovs & 1 == 0);

        info!("pmu_loop_cycles={}", pmu_loop_cycles());
        true
    }

    /// pmu_counts_per_vcpu: CPU 0's counter 0 holds a value while CPU 1
    /// counts SW_INCR on its own counter 0 for 100 ms (several of ns-hyp's
    /// 4 ms slices); each ends with exactly its own count.
    fn pmu_per_cpu_check(r: &mut Report, ms: u64, cpu1: bool) {
        const HELD: u64 = 0x1234_5678;
        pmu_counter0_sw_incr(HELD);
        let res = if cpu1 { wait_cpu1(post_cpu1(CMD_PMU, 100 * ms), 2000 * ms) } else { None };
        let mine = pmu_counter0();
        sysreg_write!("pmcntenclr_el0", 1);
        match res {
            Some([n, v, ..]) => info!("PMU: CPU 1 wrote PMSWINC_EL0 {n} times, its counter 0 = {v}; CPU 0's counter 0 {mine:#x} (was {HELD:#x})"),
            None => info!("PMU: CPU 1 did not answer"),
        }
        r.check(format_args!("pmu_counts_per_vcpu"), mine == HELD && res.is_some_and(|[n, v, ..]| n > 0 && v == n));
    }

    // ---- SVE (DDI0487, "The Scalable Vector Extension") ----

    /// One CPU's SVE dump area (see [`super::sve_layout`]): written by this
    /// CPU's plain stores and its `sve_fill_spin_dump` only.
    #[repr(C, align(256))]
    struct SveArea(core::cell::UnsafeCell<[u8; super::SVE_BUF]>);
    // SAFETY: CPU n uses SVE_AREA[n] alone.
    unsafe impl Sync for SveArea {}
    static SVE_AREA: [SveArea; 2] =
        [SveArea(core::cell::UnsafeCell::new([0; super::SVE_BUF])), SveArea(core::cell::UnsafeCell::new([0; super::SVE_BUF]))];

    unsafe extern "C" {
        /// Loads FFR, p0-p15 and z0-z31 from `buf` (the dump layout), clears
        /// `buf`, spins `ticks` of CNTPCT_EL0, stores them all back.  IRQs
        /// must be masked: no Rust code runs in between.
        fn sve_fill_spin_dump(buf: *mut u8, ticks: u64);
    }

    core::arch::global_asm!(
        ".arch_extension sve",
        ".text",
        ".balign 4",
        "sve_fill_spin_dump:",
        // d8-d15 are callee-saved (AAPCS64); z8-z15 overlap them.
        "stp d8, d9, [sp, #-64]!",
        "stp d10, d11, [sp, #16]",
        "stp d12, d13, [sp, #32]",
        "stp d14, d15, [sp, #48]",
        "addvl x9, x0, #16",
        "addvl x9, x9, #16", // x9: p0-p15
        "addpl x10, x9, #16", // x10: FFR
        "ldr p0, [x10]",
        "wrffr p0.b",
        ".irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        "ldr p\\n, [x9, #\\n, mul vl]",
        ".endr",
        ".irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31",
        "ldr z\\n, [x0, #\\n, mul vl]",
        ".endr",
        "addpl x11, x10, #1",
        "mov x12, x0",
        "2:",
        "stp xzr, xzr, [x12], #16",
        "cmp x12, x11",
        "b.lo 2b",
        "isb",
        "mrs x13, cntpct_el0",
        "3:",
        "isb",
        "mrs x14, cntpct_el0",
        "sub x14, x14, x13",
        "cmp x14, x1",
        "b.lo 3b",
        ".irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31",
        "str z\\n, [x0, #\\n, mul vl]",
        ".endr",
        ".irp n, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        "str p\\n, [x9, #\\n, mul vl]",
        ".endr",
        "rdffr p0.b",
        "str p0, [x10]",
        "ldp d14, d15, [sp, #48]",
        "ldp d12, d13, [sp, #32]",
        "ldp d10, d11, [sp, #16]",
        "ldp d8, d9, [sp], #64",
        "ret",
    );

    /// SVE on at EL1 (CPACR_EL1.ZEN = 0b11, FPEN already 0b11) and
    /// ZCR_EL1.LEN = `len`; returns the vector length in bytes (RDVL).
    fn sve_vl(len: u64) -> usize {
        sysreg_write!("cpacr_el1", sysreg_read!("cpacr_el1") | 3 << 16 | 3 << 20);
        sysreg_write!("S3_0_C1_C2_0", len); // ZCR_EL1
        let vl: u64;
        // SAFETY: reads the vector length; SVE is enabled just above.
        unsafe { core::arch::asm!(".arch_extension sve", "rdvl {}, #1", out(reg) vl, options(nomem, nostack)) };
        vl as usize
    }

    /// CPU `cpu` fills its whole SVE state with its own pattern at the full
    /// vector length, spins `ticks`, and counts the bytes that came back
    /// different.  Returns (mismatched bytes, VL).
    fn sve_fill_check(cpu: u64, ticks: u64) -> [u64; 4] {
        let vl = sve_vl(0xf);
        let (_, ffr_at, end) = super::sve_layout(vl);
        let buf = SVE_AREA[cpu as usize].0.get() as *mut u8;
        let want = |i: usize| if i >= ffr_at { super::sve_ffr_byte(cpu, vl / 8, i - ffr_at) } else { super::sve_byte(cpu, i) };
        for i in 0..end {
            // SAFETY: inside this CPU's own area (`end` <= SVE_BUF).
            unsafe { buf.add(i).write_volatile(want(i)) };
        }
        irqs_off();
        // SAFETY: the area holds the dump layout for this VL; IRQs masked.
        unsafe { sve_fill_spin_dump(buf, ticks) };
        // SAFETY: as above.
        let bad = (0..end).filter(|&i| unsafe { buf.add(i).read_volatile() } != want(i)).count();
        [bad as u64, vl as u64, 0, 0]
    }

    fn sve_checks(r: &mut Report, ms: u64, cpu1: bool) {
        let sve = (sysreg_read!("id_aa64pfr0_el1") >> 32) & 0xf;
        if sve == 0 {
            info!("SVE: ID_AA64PFR0_EL1.SVE = 0, no SVE check");
            return;
        }
        r.check(format_args!("sve_present"), true);
        // ZCR_EL1.LEN asks for (LEN + 1) × 128 bits; the PE uses the largest
        // length it implements that is no larger (and within EL2's limit).
        let vls: [usize; 16] = core::array::from_fn(|len| sve_vl(len as u64));
        let full = vls[15];
        let max = vls.iter().copied().max().unwrap_or(0);
        info!("SVE: vector length {full} bytes with ZCR_EL1.LEN = 0xf (per LEN 0..15: {vls:?})");
        r.check(format_args!("sve_full_vector_length"), full == max && full.is_multiple_of(16) && (16..=super::SVE_MAX_VL).contains(&full));
        let limited = vls.iter().enumerate().all(|(len, &vl)| vl >= 16 && vl <= (len + 1) * 16);
        r.check(format_args!("sve_zcr_limit_honoured"), vls[0] == 16 && limited);

        // Both CPUs' whole SVE state through ~300 ms (75 of ns-hyp's 4 ms
        // slices, when both vCPUs share one CPU).
        let seq = cpu1.then(|| post_cpu1(CMD_SVE, 300 * ms));
        let [bad0, vl0, ..] = sve_fill_check(0, 300 * ms);
        let other = seq.and_then(|s| wait_cpu1(s, 3000 * ms));
        match other {
            Some([bad1, vl1, ..]) => info!("SVE: z0-z31, p0-p15, FFR after 300 ms: CPU 0 {bad0} byte(s) changed (VL {vl0}), CPU 1 {bad1} (VL {vl1})"),
            None => info!("SVE: CPU 0 {bad0} byte(s) changed; CPU 1 did not answer"),
        }
        r.check(format_args!("sve_regs_preserved_2vcpus"), bad0 == 0 && other.is_some_and(|[bad1, ..]| bad1 == 0));
    }

    // ---- MTE (DDI0487 "The Memory Tagging Extension"; FEAT_MTE2) ----

    #[repr(C, align(4096))]
    struct L1Table([u64; 512]);
    /// The identity map (read-only: only the table walker reads it).
    static L1: L1Table = L1Table(super::identity_l1());

    /// Each CPU's tag test area: 256 granules of 16 bytes.
    #[repr(C, align(4096))]
    struct MteArea(core::cell::UnsafeCell<[u8; 4096]>);
    // SAFETY: CPU n uses MTE_AREA[n] alone, through tag instructions and raw pointers.
    unsafe impl Sync for MteArea {}
    static MTE_AREA: [MteArea; 2] = [MteArea(core::cell::UnsafeCell::new([0; 4096])), MteArea(core::cell::UnsafeCell::new([0; 4096]))];
    const GRANULES: usize = 256;

    /// Stage 1 on with [`L1`] (MAIR_EL1, TCR_EL1, TTBR0_EL1), caches on,
    /// EL1 tag access on (SCTLR_EL1.ATA, bit 43), tag check faults off
    /// (TCF = 0).  SCTLR_EL1.WXN and A cleared (RAM is writable and executable).
    fn mmu_on() {
        sysreg_write!("mair_el1", super::MAIR);
        sysreg_write!("tcr_el1", super::TCR);
        sysreg_write!("ttbr0_el1", L1.0.as_ptr() as u64);
        sysreg_write!("S3_0_C1_C0_6", 0); // GCR_EL1: no tag excluded, RRND = 0
        // SAFETY: drops stale EL1 translations and instructions before the
        // MMU and caches go on (nothing has been cached: both were off).
        unsafe { core::arch::asm!("tlbi vmalle1", "ic iallu", "dsb nsh", "isb", options(nostack)) };
        let sctlr = sysreg_read!("sctlr_el1");
        let sctlr = (sctlr & !(1 << 19 | 1 << 1 | 3 << 40)) | 1 | 1 << 2 | 1 << 12 | 1 << 43;
        sysreg_write!("sctlr_el1", sctlr);
    }

    /// SCTLR_EL1.TCF (bits 41:40): 0 none, 1 synchronous, 2 asynchronous.
    fn set_tcf(tcf: u64) {
        let sctlr = sysreg_read!("sctlr_el1") & !(3 << 40);
        sysreg_write!("sctlr_el1", sctlr | tcf << 40);
    }

    fn with_tag(p: u64, tag: u64) -> u64 {
        (p & !(0xf << 56)) | tag << 56
    }

    /// STG: granule `p` (16-byte aligned) gets `p`'s logical tag.
    fn stg(p: u64) {
        // SAFETY: sets the allocation tag of a granule of this CPU's MTE_AREA.
        unsafe { core::arch::asm!(".arch_extension memtag", "stg {0}, [{0}]", in(reg) p, options(nostack)) };
    }

    /// LDG: granule `p`'s allocation tag.
    fn ldg(p: u64) -> u64 {
        let mut t = p;
        // SAFETY: reads the allocation tag of a granule of this CPU's MTE_AREA.
        unsafe { core::arch::asm!(".arch_extension memtag", "ldg {0}, [{0}]", inout(reg) t, options(nostack, readonly)) };
        (t >> 56) & 0xf
    }

    /// CPU `cpu` tags its area's granules with its pattern, spins `ticks`,
    /// and counts the granules whose tag (LDG) changed; the tags go back to 0.
    fn mte_tags_check(cpu: u64, ticks: u64) -> [u64; 4] {
        if cpu != 0 {
            mmu_on();
        }
        let base = MTE_AREA[cpu as usize].0.get() as u64;
        for g in 0..GRANULES {
            stg(with_tag(base + 16 * g as u64, super::mte_tag(cpu, g)));
        }
        wait_ticks(ticks);
        let bad = (0..GRANULES).filter(|&g| ldg(base + 16 * g as u64) != super::mte_tag(cpu, g)).count();
        for g in 0..GRANULES {
            stg(base + 16 * g as u64);
        }
        [bad as u64, 0, 0, 0]
    }

    fn load(p: u64, sentinel: u64) -> u64 {
        let mut v = sentinel;
        // SAFETY: a load from this CPU's MTE_AREA; a tag check fault is
        // taken by `sync_handler`, which skips the load (v keeps `sentinel`).
        unsafe { core::arch::asm!("ldr {v}, [{p}]", p = in(reg) p, v = inout(reg) v, options(nostack, readonly)) };
        v
    }

    fn store(p: u64, v: u64) {
        // SAFETY: a store into this CPU's MTE_AREA.
        unsafe { core::arch::asm!("str {v}, [{p}]", p = in(reg) p, v = in(reg) v, options(nostack)) };
    }

    fn mte_checks(r: &mut Report, ms: u64, cpu1: bool) {
        let mte = (sysreg_read!("id_aa64pfr1_el1") >> 8) & 0xf;
        if mte < 2 {
            info!("MTE: ID_AA64PFR1_EL1.MTE = {mte} (no tag storage), no MTE check");
            return;
        }
        r.check(format_args!("mte_present"), true);
        mmu_on();
        sysreg_write!("S3_0_C5_C6_0", 0); // TFSR_EL1

        // IRG with every tag but 3 excluded gives tag 3; STG sets it.
        let base = MTE_AREA[0].0.get() as u64;
        let tagged: u64;
        // SAFETY: computes a tagged pointer; no memory access.
        unsafe { core::arch::asm!(".arch_extension memtag", "irg {t}, {b}, {x}", t = out(reg) tagged, b = in(reg) base, x = in(reg) 0xffffu64 & !(1 << 3), options(nomem, nostack)) };
        stg(tagged);
        store(tagged, 0x5eed);
        let wrong = with_tag(tagged, 5);

        // Synchronous: the wrong tag faults (Data Abort, DFSC 0x11), the right one reads.
        set_tcf(1);
        let right = load(tagged, 0);
        EXPECT_ABORT.store(1, Relaxed);
        let v = load(wrong, 0xdead);
        let armed = EXPECT_ABORT.load(Relaxed);
        EXPECT_ABORT.store(0, Relaxed);
        set_tcf(0);
        let (esr, far) = (ABORT_ESR.load(Relaxed), ABORT_FAR.load(Relaxed));
        info!(
            "MTE: IRG gave tag {}, LDG reads {}; right tag read {right:#x}; wrong tag: {}, ESR_EL1 {esr:#x}, FAR_EL1 {far:#x}",
            tagged >> 56 & 0xf,
            ldg(base),
            if armed == 2 { "Data Abort" } else { "no abort" }
        );
        let fault_ok = armed == 2 && esr >> 26 == 0x25 && esr & 0x3f == 0x11 && far & ((1 << 56) - 1) == base && v == 0xdead;
        r.check(format_args!("mte_sync_tag_fault"), tagged >> 56 & 0xf == 3 && ldg(base) == 3 && right == 0x5eed && fault_ok);

        // Asynchronous: the wrong tag's store goes through and is recorded
        // in TFSR_EL1 (TF0: bit 55 of the address clear) once a DSB
        // completes; writing 0 clears it.
        set_tcf(2);
        store(wrong, 0x600d);
        // SAFETY: barriers: the store's tag check is recorded before the read.
        unsafe { core::arch::asm!("dsb sy", "isb", options(nostack)) };
        let tfsr = sysreg_read!("S3_0_C5_C6_0");
        set_tcf(0);
        sysreg_write!("S3_0_C5_C6_0", 0);
        let cleared = sysreg_read!("S3_0_C5_C6_0");
        info!("MTE: asynchronous mismatch: TFSR_EL1 {tfsr:#x}, then {cleared:#x} after clearing");
        r.check(format_args!("mte_async_tag_fault"), tfsr & 3 != 0 && cleared & 3 == 0 && EXPECT_ABORT.load(Relaxed) == 0);
        stg(base);

        // Both CPUs' tags through ~300 ms of the other running.
        let seq = cpu1.then(|| post_cpu1(CMD_MTE, 300 * ms));
        let [bad0, ..] = mte_tags_check(0, 300 * ms);
        let other = seq.and_then(|s| wait_cpu1(s, 3000 * ms));
        match other {
            Some([bad1, ..]) => info!("MTE: {GRANULES} granules' tags after 300 ms: CPU 0 {bad0} changed, CPU 1 {bad1}"),
            None => info!("MTE: CPU 0 {bad0} granule tag(s) changed; CPU 1 did not answer"),
        }
        r.check(format_args!("mte_tags_preserved_2vcpus"), bad0 == 0 && other.is_some_and(|[bad1, ..]| bad1 == 0));
    }

    #[unsafe(no_mangle)]
    extern "C" fn guest_main(dtb: u64, x1: u64, x2: u64, x3: u64, loaded_at: u64, el: u64) -> ! {
        let mut r = Report { pass: 0, fail: 0 };
        // The linker script's end-of-image symbol; only its address is used.
        let image_end = core::ptr::addr_of!(__image_end) as u64;
        info!("entered at EL{el}, loaded at {loaded_at:#x}, x0 (DTB) {dtb:#x}, image end {image_end:#x}");
        r.check(format_args!("flat_entry_at_load_address"), loaded_at == super::LOAD_ADDR);
        r.check(format_args!("boot_x1_x3_zero"), x1 == 0 && x2 == 0 && x3 == 0);
        // SAFETY: the DTB's header, where x0 points (inside RAM on both).
        let magic = unsafe { core::ptr::read_volatile(dtb as *const u32) };
        let valid = dtb >= super::RAM_BASE && dtb.is_multiple_of(8) && u32::from_be(magic) == super::FDT_MAGIC;
        r.check(format_args!("dtb_valid"), valid);
        let blob: &[u8] = if valid {
            // SAFETY: the DTB header's totalsize (word 1), at x0 (checked above).
            let size = u32::from_be(unsafe { core::ptr::read_volatile((dtb + 4) as *const u32) }) as usize;
            // SAFETY: a DTB's totalsize bytes at x0, not written by anyone while we run.
            unsafe { core::slice::from_raw_parts(dtb as *const u8, size.min(1 << 20)) }
        } else {
            &[]
        };
        r.check(format_args!("dtb_above_image"), valid && dtb >= image_end);
        let mem = super::fdt_memory(blob);
        let want = mem.map(|(base, size)| super::expected_dtb(base, size, image_end));
        info!("RAM {:x?}, QEMU places the DTB at {:x?}", mem, want);
        r.check(format_args!("flat_dtb_placed_as_qemu"), want == Some(dtb));

        gic_init();
        let hz = sysreg_read!("cntfrq_el0");
        let ms = (hz / 1000).max(1);
        let (p1, v, p2) = (cntpct(), cntvct(), cntpct());
        r.check(format_args!("counters_agree"), p1 <= v && v <= p2);
        timer_checks(&mut r, Timer::Virt, ms);
        timer_checks(&mut r, Timer::Phys, ms);
        let pmu = pmu_checks(&mut r, ms);
        let smc = super::fdt_prop(blob, "psci", "method").is_some_and(|m| m.starts_with(b"smc"));
        let cpu1 = ipi_checks(&mut r, smc, ms);
        if pmu {
            pmu_per_cpu_check(&mut r, ms, cpu1);
        }
        sve_checks(&mut r, ms, cpu1);
        mte_checks(&mut r, ms, cpu1);
        if OTHER.load(Relaxed) != 0 {
            info!("{} other interrupt(s) taken", OTHER.load(Relaxed));
        }
        let _ = writeln!(Uart, "guest_cpu_features done: {} pass, {} fail", r.pass, r.fail);
        off(smc)
    }

    /// PSCI SYSTEM_OFF through the DTB's conduit.
    fn off(smc: bool) -> ! {
        let f = shared::abi::psci::PSCI_SYSTEM_OFF as u64;
        // SAFETY: PSCI SYSTEM_OFF (DEN0022 §5.10); does not return when honoured.
        unsafe {
            if smc {
                core::arch::asm!("smc #0", in("x0") f, options(nostack));
            } else {
                core::arch::asm!("hvc #0", in("x0") f, options(nostack));
            }
        }
        loop {
            // SAFETY: nothing left to do.
            unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        let _ = writeln!(Uart, "guest_cpu_features done: PANIC");
        off(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DTB with a root, a `memory@40000000` node holding `reg` and a `psci` node holding `method`.
    fn tiny_fdt() -> Vec<u8> {
        let mut strings = Vec::new();
        let reg_off = strings.len() as u32;
        strings.extend_from_slice(b"reg\0");
        let method_off = strings.len() as u32;
        strings.extend_from_slice(b"method\0");
        let mut s: Vec<u8> = Vec::new();
        let tok = |s: &mut Vec<u8>, v: u32| s.extend_from_slice(&v.to_be_bytes());
        let name = |s: &mut Vec<u8>, n: &[u8]| {
            s.extend_from_slice(n);
            s.push(0);
            while !s.len().is_multiple_of(4) {
                s.push(0);
            }
        };
        tok(&mut s, 1);
        name(&mut s, b"");
        tok(&mut s, 1);
        name(&mut s, b"memory@40000000");
        tok(&mut s, 3);
        tok(&mut s, 16);
        tok(&mut s, reg_off);
        for w in [0u32, 0x4000_0000, 0, 0x8000_0000] {
            tok(&mut s, w);
        }
        tok(&mut s, 2);
        tok(&mut s, 1);
        name(&mut s, b"psci");
        tok(&mut s, 3);
        tok(&mut s, 4);
        tok(&mut s, method_off);
        s.extend_from_slice(b"hvc\0");
        tok(&mut s, 2);
        tok(&mut s, 2);
        tok(&mut s, 9);
        let structs = 40u32;
        let strs = structs + s.len() as u32;
        let total = strs + strings.len() as u32;
        let mut b = Vec::new();
        for w in [FDT_MAGIC, total, structs, strs, 0, 17, 16, 0, strings.len() as u32, s.len() as u32] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(&s);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn reads_memory_and_psci() {
        let b = tiny_fdt();
        assert_eq!(fdt_memory(&b), Some((0x4000_0000, 0x8000_0000)));
        assert_eq!(fdt_prop(&b, "psci", "method"), Some(&b"hvc\0"[..]));
        assert_eq!(fdt_prop(&b, "psc", "method"), None);
        assert_eq!(fdt_prop(&b[..20], "psci", "method"), None);
        assert_eq!(fdt_prop(&[0u8; 64], "psci", "method"), None);
    }

    #[test]
    fn pmu_fields() {
        assert!(!pmuv3(0) && !pmuv3(0xf));
        assert!(pmuv3(1) && pmuv3(6) && pmuv3(0xe));
        // QEMU max: PMCR_EL0 = IMP 0x41, IDCODE, N = 6.
        assert_eq!(pmcr_n(0x4100_3000), 6);
        assert_eq!(pmcr_n(0x41ff_f8ff), 31);
    }

    #[test]
    fn sve_dump_layout_fits() {
        assert_eq!(sve_layout(16), (512, 512 + 32, 512 + 34));
        let (p, f, end) = sve_layout(SVE_MAX_VL);
        assert_eq!((p, f, end), (8192, 8192 + 512, 8192 + 544));
        // The clearing loop writes 16 bytes at a time past `end` at most 15 bytes.
        for vl in (16..=SVE_MAX_VL).step_by(16) {
            assert!(sve_layout(vl).2.div_ceil(16) * 16 <= SVE_BUF);
        }
    }

    #[test]
    fn sve_patterns_differ_per_cpu_and_ffr_is_monotonic() {
        let same = (0..8192).filter(|&i| sve_byte(0, i) == sve_byte(1, i)).count();
        assert!(same < 8192 / 64, "{same} equal bytes");
        // Neither pattern repeats register to register (z0 vs z1 at VL 16).
        assert!((0..16).any(|i| sve_byte(0, i) != sve_byte(0, i + 16)));
        for pl in [2usize, 4, 6, 32] {
            for cpu in 0..2 {
                let bits: Vec<bool> = (0..pl).flat_map(|i| (0..8).map(move |b| sve_ffr_byte(cpu, pl, i) >> b & 1 == 1)).collect();
                let k = bits.iter().take_while(|b| **b).count();
                assert!(k > 0 && bits[k..].iter().all(|b| !b), "cpu {cpu} pl {pl}");
            }
            let ffr = |cpu| (0..pl).map(|i| sve_ffr_byte(cpu, pl, i)).collect::<Vec<_>>();
            assert_ne!(ffr(0), ffr(1));
        }
    }

    #[test]
    fn identity_map_and_tcr() {
        let t = identity_l1();
        // Device-nGnRnE (AttrIndx 0), AF, PXN/UXN; RAM: AttrIndx 1, inner shareable, AF, executable.
        assert_eq!(t[0], 0x0060_0000_0000_0401);
        assert_eq!(t[1], 0x4000_0705);
        assert!(t[2..].iter().all(|&d| d == 0));
        assert_eq!(MAIR >> 8 & 0xff, 0xf0);
        assert_eq!(TCR & 0x3f, 32);
        assert_eq!(TCR >> 14 & 3, 0);
        assert_eq!(TCR >> 30 & 3, 2);
        assert_eq!(TCR >> 37 & 1, 1);
        assert_eq!(TCR >> 57 & 1, 1);
    }

    #[test]
    fn mte_tags_nonzero_and_per_cpu() {
        assert!((0..256).all(|g| (1..=15).contains(&mte_tag(0, g)) && (1..=15).contains(&mte_tag(1, g))));
        assert!((0..256).all(|g| mte_tag(0, g) != mte_tag(1, g)));
    }

    #[test]
    fn qemu_dtb_address() {
        // 2 GiB (bare QEMU -m 2G) or 1 GiB (ns-hyp's guest): 128 MiB in.
        assert_eq!(expected_dtb(RAM_BASE, 2 << 30, LOAD_ADDR + 0x20000), RAM_BASE + (128 << 20));
        assert_eq!(expected_dtb(RAM_BASE, 1 << 30, LOAD_ADDR + 0x20000), RAM_BASE + (128 << 20));
        assert_eq!(expected_dtb(RAM_BASE, 64 << 20, LOAD_ADDR + 0x20000), RAM_BASE + (32 << 20));
        assert_eq!(expected_dtb(RAM_BASE, 1 << 30, RAM_BASE + (129 << 20) + 1), RAM_BASE + (130 << 20));
    }
}
