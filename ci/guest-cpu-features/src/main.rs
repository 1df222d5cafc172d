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
//! mean is printed).  Not checked: PMU, SVE, MTE (ns-hyp hides them from its
//! guests today, and a check that passes bare must pass under ns-hyp).
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

#[cfg(target_os = "none")]
mod guest {
    use core::fmt::{self, Write};
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

    core::arch::global_asm!(
        // Entered at EL2 (bare QEMU with virtualization=on boots kernels and
        // starts PSCI CPU_ON targets there): run at EL1 as a guest would,
        // continuing at local label 1.  HCR_EL2.RW: EL1 is AArch64, nothing
        // trapped, Stage-2 off.  CNTHCTL_EL2 (E2H = 0): EL1PCTEN | EL1PCEN.
        // ICC_SRE_EL2: SRE, DFB, DIB, Enable.  CPTR_EL2 (E2H = 0): RES1 bits
        // only.  SCTLR_EL1: its RES1 bits, MMU and caches off.
        ".macro to_el1",
        "mrs x9, CurrentEL",
        "lsr x9, x9, #2",
        "cmp x9, #2",
        "b.ne 1f",
        "mov x9, #(1 << 31)",
        "msr hcr_el2, x9",
        "mov x9, #3",
        "msr cnthctl_el2, x9",
        "msr cntvoff_el2, xzr",
        "mov x9, #0xf",
        "msr S3_4_C12_C9_5, x9",
        "mov x9, #0x22ff",
        "msr cptr_el2, x9",
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

    // The EL1 vector table (DDI0487 D1.10.2): IRQ from the current EL with
    // SP_EL1 goes to the handler, everything else is fatal.
    core::arch::global_asm!(
        ".section .text.vectors, \"ax\"",
        ".balign 2048",
        "vectors:",
        ".irp n, 0, 1, 2, 3, 4",
        ".balign 0x80",
        "mov x0, #\\n",
        "b fatal_entry",
        ".endr",
        ".balign 0x80",
        "b irq_entry",
        ".irp n, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        ".balign 0x80",
        "mov x0, #\\n",
        "b fatal_entry",
        ".endr",
        "fatal_entry:",
        "bl fatal",
        "irq_entry:",
        // Caller-saved registers of the AAPCS64 (x0-x18, x30, q0-q7, q16-q31).
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
        "bl irq_handler",
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
            // SAFETY: writes an EL1 timer, GIC CPU interface or PSTATE
            // register of this payload's own; the isb makes it take effect.
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
        if intid == SGI_PONG {
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

    /// CPU 1: answers every SGI_PING with SGI_PONG (in `irq_handler`), waiting in WFI.
    #[unsafe(no_mangle)]
    extern "C" fn secondary_main() -> ! {
        gic_cpu_init(1, 1 << SGI_PING);
        CPU1_UP.store(1, Relaxed);
        irqs_on();
        loop {
            // SAFETY: waits for the next SGI.
            unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
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

    fn ipi_checks(r: &mut Report, conduit_smc: bool, ms: u64) {
        // SAFETY: PSCI CPU_ON (DEN0022 §5.6) of CPU 1 at `secondary_entry`.
        let ret: u64;
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
            return;
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
        let valid = dtb >= super::RAM_BASE && dtb % 8 == 0 && u32::from_be(magic) == super::FDT_MAGIC;
        r.check(format_args!("dtb_valid"), valid);
        let blob: &[u8] = if valid {
            // SAFETY: a DTB's totalsize (header word 1) bytes at x0, not written by anyone while we run.
            let size = u32::from_be(unsafe { core::ptr::read_volatile((dtb + 4) as *const u32) }) as usize;
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
        let smc = super::fdt_prop(blob, "psci", "method").is_some_and(|m| m.starts_with(b"smc"));
        ipi_checks(&mut r, smc, ms);
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
            while s.len() % 4 != 0 {
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
    fn qemu_dtb_address() {
        // 2 GiB (bare QEMU -m 2G) or 1 GiB (ns-hyp's guest): 128 MiB in.
        assert_eq!(expected_dtb(RAM_BASE, 2 << 30, LOAD_ADDR + 0x20000), RAM_BASE + (128 << 20));
        assert_eq!(expected_dtb(RAM_BASE, 1 << 30, LOAD_ADDR + 0x20000), RAM_BASE + (128 << 20));
        assert_eq!(expected_dtb(RAM_BASE, 64 << 20, LOAD_ADDR + 0x20000), RAM_BASE + (32 << 20));
        assert_eq!(expected_dtb(RAM_BASE, 1 << 30, RAM_BASE + (129 << 20) + 1), RAM_BASE + (130 << 20));
    }
}
