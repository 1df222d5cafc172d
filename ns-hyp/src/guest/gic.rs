//! The physical GICv3 as ns-hyp uses it (IHI0069H): Non-secure Group 1
//! interrupts for ns-hyp itself at EL2 (EOImode = 1, so a HW-linked virtual
//! interrupt's deactivation by the guest deactivates the physical one), and
//! the virtual CPU interface (ICH_*_EL2) that delivers the guest's interrupts.

use aarch64_cpu::registers::*;
use shared::write_sysreg;

use crate::platform;
use arm_gic::gicv3::registers::GicdCtlr;
use arm_gic::gicv3::{GicCpuInterface, GicV3, Group, SgiTarget, SgiTargetGroup};
use arm_gic::{IntId, InterruptGroup, Trigger, UniqueMmioPointer};
use core::ptr::NonNull;

/// Physical INTIDs ns-hyp takes.  The kick is SGI 7: TF-A's qemu platform
/// makes SGIs 8-15 Secure (QEMU_IRQ_SEC_SGI_*), so under TF-A a Non-secure
/// SGI 8 never arrives (secondary vCPUs never started); 0-7 are Non-secure.
pub const SGI_KICK: u32 = 7;
/// The SPMC's Schedule Receiver Interrupt (SGI 8, Hafnium's
/// HF_SCHEDULE_RECEIVER_INTID, made Non-secure by the SPMC): some VM has
/// notifications pending (`vm::ffa::notify`).
pub const SGI_SRI: u32 = 8;
pub const PPI_MAINTENANCE: u32 = 25;
pub const PPI_HYP_TIMER: u32 = 26;
pub const PPI_VTIMER: u32 = 27;
/// The PMU overflow interrupt (QEMU virt, BSA), forwarded to the loaded vCPU.
pub const PPI_PMU: u32 = 23;

const PRIORITY: u8 = 0xa0;

/// Redistributor frames mapped at EL2 (hyp.rs `map_devices`).
const GICR_FRAMES: usize = 8;

/// Serialises use of the GIC's memory-mapped registers: the `arm-gic`
/// driver value is made for one operation and must be its only user.
static GIC_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Runs `f` with the `arm-gic` driver for the platform's distributor and
/// redistributors.
fn with_gic<R>(f: impl FnOnce(&mut GicV3<'static>) -> R) -> R {
    let _lock = GIC_LOCK.lock();
    let p = platform::get();
    // SAFETY: the distributor and GICR_FRAMES redistributor frames are mapped
    // as Device memory at EL2 for ns-hyp's lifetime (hyp.rs `map_devices`);
    // GIC_LOCK makes this driver value their only user while it lives.
    let mut gic = unsafe {
        let gicd = UniqueMmioPointer::new(NonNull::new(p.gicd as *mut _).expect("GICD address"));
        GicV3::new(gicd, NonNull::new(p.gicr as *mut _).expect("GICR address"), GICR_FRAMES).expect("GICv3 redistributors")
    };
    f(&mut gic)
}

/// An INTID ns-hyp programs (SGI, PPI or SPI).
fn int_id(intid: u32) -> IntId {
    match intid {
        0..16 => IntId::sgi(intid),
        16..32 => IntId::ppi(intid - 16),
        _ => IntId::spi(intid - 32),
    }
}

/// Distributor: Group 1 (NS) on with affinity routing.  Under TF-A, EL3 has
/// configured the Secure side already; from NS this touches only our bits.
pub fn init_distributor() {
    // GICD_CTLR bits 1 and 4 as Non-secure software sees them: EnableGrp1A
    // and ARE_NS (with one Security state, EnableGrp1 and ARE).  `GicdCtlr`
    // names the bits in the Secure (or DS = 1) view, where bit 4 is ARE_S
    // and bit 5 ARE_NS, so the value is given by bit here.
    with_gic(|g| g.gicd_set_control(GicdCtlr::from_bits_retain(1 << 1 | 1 << 4)));
}

/// One SPI for ns-hyp: Group 1, level, routed to physical CPU `aff0`, enabled.
pub fn enable_spi(intid: u32, aff0: u64) {
    let i = int_id(intid);
    with_gic(|g| {
        let configured = g
            .set_group(i, None, Group::Group1NS)
            .and_then(|()| g.set_interrupt_priority(i, None, PRIORITY))
            .and_then(|()| g.set_trigger(i, None, Trigger::Level))
            .and_then(|()| g.distributor().set_routing(i, Some(aff0)))
            .and_then(|()| g.enable_interrupt(i, None, true));
        configured.expect("SPI configuration");
        g.gicd_barrier();
    });
}

/// This CPU's redistributor and CPU interface.
pub fn init_cpu(cpu: usize) {
    with_gic(|g| {
        // GICR_WAKER: ProcessorSleep off, wait for ChildrenAsleep to clear
        // (already awake, e.g. woken by EL3, is fine).
        let _ = g.redistributor_mark_core_awake(cpu);
        for i in [SGI_KICK, SGI_SRI, PPI_MAINTENANCE, PPI_HYP_TIMER, PPI_VTIMER, PPI_PMU].map(int_id) {
            let configured = g
                .set_group(i, Some(cpu), Group::Group1NS)
                .and_then(|()| g.set_interrupt_priority(i, Some(cpu), PRIORITY))
                .and_then(|()| g.enable_interrupt(i, Some(cpu), true));
            configured.expect("PPI/SGI configuration");
        }
        g.gicr_barrier(cpu).expect("redistributor");
    });
    // The CPU interface, written here rather than through `arm-gic`: its
    // `init_cpu` sets ICC_CTLR_EL1.EOImode = 0 where ns-hyp needs 1
    // (deactivation by ICC_DIR_EL1, which it does not write either).
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
    }
    ICH_VMCR_EL2.set(0);
    ICH_HCR_EL2.set(1);
    shared::arch::regs::isb();
}

/// Turns CPU `cpu`'s PPIs `intids` off again at its redistributor: a CPU
/// that runs a Realm's RECs (`crate::realm::target`) takes only the kick and
/// its hyp timer; the vtimer, maintenance and PMU PPIs are the normal vCPUs'.
pub fn disable_private(cpu: usize, intids: &[u32]) {
    with_gic(|g| {
        for &i in intids {
            g.enable_interrupt(int_id(i), Some(cpu), false).expect("PPI configuration");
        }
        g.gicr_barrier(cpu).expect("redistributor");
    });
}

/// Acknowledges the highest-priority pending Group 1 interrupt (ICC_IAR1_EL1);
/// 1023 (no interrupt) if none.
pub fn ack() -> u32 {
    GicCpuInterface::get_and_acknowledge_interrupt(InterruptGroup::Group1).map_or(1023, u32::from)
}

/// Priority drop (ICC_EOIR1_EL1; with EOImode = 1 it does not deactivate).
pub fn eoi(intid: u32) {
    GicCpuInterface::end_interrupt(int_id_any(intid), InterruptGroup::Group1);
}

/// Any INTID the CPU interface acknowledged (also the special ones).
fn int_id_any(intid: u32) -> IntId {
    if intid < 1020 { int_id(intid) } else { IntId::SPECIAL_NONE }
}

/// Deactivation (EOImode = 1): ICC_DIR_EL1, which `arm-gic` does not write.
pub fn deactivate(intid: u32) {
    // SAFETY: deactivates an interrupt ns-hyp owns.
    unsafe { write_sysreg!(icc_dir_el1, intid as u64) };
}

/// Makes PPI `intid` of CPU `cpu` (the caller's own) active again:
/// GICR_ISACTIVER0 in its redistributor's SGI frame (IHI0069H, 12.11).  A
/// vCPU descheduled while the guest still held its HW-linked timer or PMU
/// interrupt gets the physical one back active when it is loaded, so the
/// guest's deactivation through the HW-linked LR still finds it (KVM does
/// the same with the irqchip's active state).
pub fn set_active(cpu: usize, intid: u32) {
    const SGI_FRAME: usize = 0x1_0000;
    const GICR_ISACTIVER0: usize = 0x300;
    let _lock = GIC_LOCK.lock();
    let reg = platform::get().gicr + cpu * platform::GICR_STRIDE + SGI_FRAME + GICR_ISACTIVER0;
    // SAFETY: this CPU's redistributor, mapped as Device memory at EL2 (hyp.rs
    // `map_devices`, GICR_FRAMES frames); writing 1 sets only that PPI's
    // active state, for an interrupt ns-hyp owns; GIC_LOCK keeps the
    // `arm-gic` driver away meanwhile.
    unsafe {
        core::ptr::write_volatile(reg as *mut u32, 1 << intid);
        core::arch::asm!("dsb sy", options(nostack, preserves_flags));
    }
}

/// A physical SGI to one CPU (QEMU virt: Aff0 = index < 16, Aff1 = index / 16).
pub fn send_sgi(cpu: usize, intid: u32) {
    let target = SgiTarget::List { affinity3: 0, affinity2: 0, affinity1: (cpu / 16) as u8, target_list: 1 << (cpu % 16) };
    GicCpuInterface::send_sgi(int_id(intid), target, SgiTargetGroup::CurrentGroup1).expect("SGI INTID");
    shared::arch::regs::isb();
}

/// Number of list registers (ICH_VTR_EL2.ListRegs + 1).
pub fn num_lrs() -> usize {
    ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1
}

/// ICH_LR<n>_EL2 by index: `aarch64-cpu` has one register value per `n`.
macro_rules! lr_op {
    ($n:expr, $f:ident) => {
        match $n {
            0 => $f!(ICH_LR0_EL2), 1 => $f!(ICH_LR1_EL2), 2 => $f!(ICH_LR2_EL2), 3 => $f!(ICH_LR3_EL2),
            4 => $f!(ICH_LR4_EL2), 5 => $f!(ICH_LR5_EL2), 6 => $f!(ICH_LR6_EL2), 7 => $f!(ICH_LR7_EL2),
            8 => $f!(ICH_LR8_EL2), 9 => $f!(ICH_LR9_EL2), 10 => $f!(ICH_LR10_EL2), 11 => $f!(ICH_LR11_EL2),
            12 => $f!(ICH_LR12_EL2), 13 => $f!(ICH_LR13_EL2), 14 => $f!(ICH_LR14_EL2), _ => $f!(ICH_LR15_EL2),
        }
    };
}

pub fn read_lr(n: usize) -> u64 {
    macro_rules! r { ($r:ident) => { $r.get() }; }
    lr_op!(n, r)
}

/// List registers only affect the guest's virtual CPU interface.
pub fn write_lr(n: usize, v: u64) {
    macro_rules! w { ($r:ident) => { $r.set(v) }; }
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
        self.vmcr = ICH_VMCR_EL2.get();
        self.ap0r0 = ICH_AP0R0_EL2.get();
        self.ap1r0 = ICH_AP1R0_EL2.get();
    }

    /// The virtual CPU interface of the vCPU about to run.
    pub fn restore_aprs(&self) {
        ICH_VMCR_EL2.set(self.vmcr);
        ICH_AP0R0_EL2.set(self.ap0r0);
        ICH_AP1R0_EL2.set(self.ap1r0);
    }
}
