//! The physical GICv3 as ns-hyp uses it (IHI0069H): Non-secure Group 1
//! interrupts for ns-hyp itself at EL2 (EOImode = 1, so a HW-linked virtual
//! interrupt's deactivation by the guest deactivates the physical one), and
//! the virtual CPU interface (ICH_*_EL2) that delivers the guest's interrupts.

use shared::{read_sysreg, write_sysreg};

use crate::platform::{self, GICR_STRIDE};

/// Physical INTIDs ns-hyp takes.  The kick is SGI 7: TF-A's qemu platform
/// makes SGIs 8-15 Secure (QEMU_IRQ_SEC_SGI_*), so under TF-A a Non-secure
/// SGI 8 never arrives (secondary vCPUs never started); 0-7 are Non-secure.
pub const SGI_KICK: u32 = 7;
pub const PPI_MAINTENANCE: u32 = 25;
pub const PPI_HYP_TIMER: u32 = 26;
pub const PPI_VTIMER: u32 = 27;

const PRIORITY: u32 = 0xa0;

fn rd(a: usize) -> u32 {
    // SAFETY: `a` is a GIC register in the EL2 map (Device memory).
    unsafe { core::ptr::read_volatile(a as *const u32) }
}

fn wr(a: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { core::ptr::write_volatile(a as *mut u32, v) }
}

fn wr64(a: usize, v: u64) {
    // SAFETY: as in `rd`.
    unsafe { core::ptr::write_volatile(a as *mut u64, v) }
}

fn wait_rwp(a: usize) {
    while rd(a) & (1 << 31) != 0 {
        core::hint::spin_loop();
    }
}

/// Distributor: Group 1 (NS) on with affinity routing.  Under TF-A, EL3 has
/// configured the Secure side already; from NS this touches only our bits.
pub fn init_distributor() {
    let gicd = platform::get().gicd;
    let c = rd(gicd);
    wr(gicd, c | 1 << 1 | 1 << 4); // EnableGrp1(A), ARE(_NS)
    wait_rwp(gicd);
}

/// One SPI for ns-hyp: Group 1, level, routed to physical CPU `aff0`, enabled.
pub fn enable_spi(intid: u32, aff0: u64) {
    let gicd = platform::get().gicd;
    let n = intid as usize;
    wr(gicd + 0x80 + n / 32 * 4, rd(gicd + 0x80 + n / 32 * 4) | 1 << (n % 32));
    let pr = gicd + 0x400 + n / 4 * 4;
    wr(pr, (rd(pr) & !(0xff << (n % 4 * 8))) | PRIORITY << (n % 4 * 8));
    let cfg = gicd + 0xc00 + n / 16 * 4;
    wr(cfg, rd(cfg) & !(2 << (n % 16 * 2)));
    wr64(gicd + 0x6000 + n * 8, aff0);
    wr(gicd + 0x100 + n / 32 * 4, 1 << (n % 32));
    wait_rwp(gicd);
}

/// This CPU's redistributor and CPU interface.
pub fn init_cpu(cpu: usize) {
    let rdb = platform::get().gicr + cpu * GICR_STRIDE;
    let sgi = rdb + 0x1_0000;
    // GICR_WAKER: ProcessorSleep off, wait for ChildrenAsleep to clear.
    wr(rdb + 0x14, rd(rdb + 0x14) & !(1 << 1));
    while rd(rdb + 0x14) & (1 << 2) != 0 {
        core::hint::spin_loop();
    }
    let ours = [SGI_KICK, PPI_MAINTENANCE, PPI_HYP_TIMER, PPI_VTIMER];
    let mask = ours.iter().fold(0u32, |m, i| m | 1 << i);
    wr(sgi + 0x80, rd(sgi + 0x80) | mask);
    for i in ours {
        let pr = sgi + 0x400 + (i as usize) / 4 * 4;
        wr(pr, (rd(pr) & !(0xff << (i % 4 * 8))) | PRIORITY << (i % 4 * 8));
    }
    wr(sgi + 0x100, mask);
    wait_rwp(rdb);
    // SAFETY: enabling the system-register interface at EL2 (and for EL1, SRE
    // Enable), then this CPU interface's Group 1 with split priority drop /
    // deactivation (EOImode).  Interrupts stay masked in PSTATE at EL2.
    unsafe {
        write_sysreg!(icc_sre_el2, 0xf);
        shared::arch::regs::isb();
        write_sysreg!(icc_pmr_el1, 0xff);
        write_sysreg!(icc_bpr1_el1, 0);
        write_sysreg!(icc_ctlr_el1, 1 << 1);
        write_sysreg!(icc_igrpen1_el1, 1);
        write_sysreg!(ich_vmcr_el2, 0);
        write_sysreg!(ich_hcr_el2, 1);
    }
    shared::arch::regs::isb();
}

pub fn ack() -> u32 {
    (read_sysreg!(icc_iar1_el1) & 0xff_ffff) as u32
}

/// Priority drop.
pub fn eoi(intid: u32) {
    // SAFETY: ends the priority of an interrupt this CPU acknowledged.
    unsafe { write_sysreg!(icc_eoir1_el1, intid as u64) };
}

/// Deactivation (EOImode = 1).
pub fn deactivate(intid: u32) {
    // SAFETY: deactivates an interrupt ns-hyp owns.
    unsafe { write_sysreg!(icc_dir_el1, intid as u64) };
}

/// A physical SGI to one CPU (QEMU virt: Aff0 = index < 16, Aff1 = 0).
pub fn send_sgi(cpu: usize, intid: u32) {
    let v = (intid as u64) << 24 | 1 << (cpu % 16) | ((cpu / 16) as u64) << 16;
    // SAFETY: generating an SGI has no memory effect.
    unsafe { write_sysreg!(icc_sgi1r_el1, v) };
    shared::arch::regs::isb();
}

/// Number of list registers (ICH_VTR_EL2.ListRegs + 1).
pub fn num_lrs() -> usize {
    ((read_sysreg!(ich_vtr_el2) & 0x1f) + 1) as usize
}

macro_rules! lr_op {
    ($n:expr, $f:ident) => {
        match $n {
            0 => $f!(ich_lr0_el2), 1 => $f!(ich_lr1_el2), 2 => $f!(ich_lr2_el2), 3 => $f!(ich_lr3_el2),
            4 => $f!(ich_lr4_el2), 5 => $f!(ich_lr5_el2), 6 => $f!(ich_lr6_el2), 7 => $f!(ich_lr7_el2),
            8 => $f!(ich_lr8_el2), 9 => $f!(ich_lr9_el2), 10 => $f!(ich_lr10_el2), 11 => $f!(ich_lr11_el2),
            12 => $f!(ich_lr12_el2), 13 => $f!(ich_lr13_el2), 14 => $f!(ich_lr14_el2), _ => $f!(ich_lr15_el2),
        }
    };
}

pub fn read_lr(n: usize) -> u64 {
    macro_rules! r { ($r:ident) => { read_sysreg!($r) }; }
    lr_op!(n, r)
}

pub fn write_lr(n: usize, v: u64) {
    macro_rules! w { ($r:ident) => {
        // SAFETY: list registers only affect the virtual CPU interface of the guest.
        unsafe { write_sysreg!($r, v) }
    }; }
    lr_op!(n, w)
}

/// Virtual CPU interface state of a vCPU that is not loaded.
#[derive(Clone, Copy, Default)]
pub struct VcpuIf {
    pub lrs: [u64; crate::vm::vgic::MAX_LRS],
    pub vmcr: u64,
    pub ap0r0: u64,
    pub ap1r0: u64,
}

impl VcpuIf {
    pub fn save_aprs(&mut self) {
        self.vmcr = read_sysreg!(ich_vmcr_el2);
        self.ap0r0 = read_sysreg!(ich_ap0r0_el2);
        self.ap1r0 = read_sysreg!(ich_ap1r0_el2);
    }

    pub fn restore_aprs(&self) {
        // SAFETY: the virtual CPU interface of the vCPU about to run.
        unsafe {
            write_sysreg!(ich_vmcr_el2, self.vmcr);
            write_sysreg!(ich_ap0r0_el2, self.ap0r0);
            write_sysreg!(ich_ap1r0_el2, self.ap1r0);
        }
    }
}
