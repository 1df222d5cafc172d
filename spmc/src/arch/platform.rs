//! The real machine behind [`spmc::ffa::Platform`]: SP execution contexts at
//! S-EL1 under a Secure Stage-2, and the SPMC's own Stage-1 for NS buffers.

use spmc::ffa::interrupts::{SEL2_PHYS_TIMER_INTID, SPURIOUS_INTID};
use spmc::ffa::memory::BorrowedAccess;
use spmc::ffa::regs_copy::copy_regs;
use spmc::ffa::{MAX_CONTEXTS, MAX_PARTITIONS, Platform, Regs, RunFlags, SpExit, SpMemory};
use spmc::gic::{SecureInterrupt, SecureInterruptController};
use spmc::partition::PartitionManifest;
use spmc::vtimer::{self, VTimer};
use core::sync::atomic::{AtomicU64, Ordering};
use spmc::partition::manifest::{ATTR_EXEC, ATTR_WRITE};
use shared::arch::{El1SysRegs, GuestRegs};
use shared::mm::{self, FramePool, MemKind};

/// HCR_EL2 while SPs run (DDI0487 D19.2.x HCR_EL2):
/// - VM (bit 0): Stage-2 translation for EL1&0 (Secure IPA space via VSTTBR_EL2);
/// - SWIO (bit 1): set/way invalidates become clean+invalidate, so an SP
///   cannot discard other worlds' dirty lines;
/// - FMO/IMO (bits 3, 4): set per run by [`HCR_EL2_IMO`] / [`HCR_EL2_FMO`]
///   (see `spmc::ffa::interrupts`); AMO (bit 5) = 0: SErrors stay with EL1/EL3;
/// - TSC (bit 19): an SMC at EL1 traps to us (ESR EC 0x17): FF-A calls of SPs;
/// - RW (bit 31): EL1 is AArch64;
/// - APK/API (bits 40, 41): no traps on pointer authentication keys/instructions.
pub const HCR_EL2_SP: u64 = (1 << 0) | (1 << 1) | (1 << 19) | (1 << 31) | (1 << 40) | (1 << 41);
/// HCR_EL2.FMO: physical FIQs at EL1 go to EL2.  In Secure state with GICv3
/// a FIQ is a Non-secure Group 1 (or Group 0) interrupt; set only while the
/// running SP's `ns-interrupts-action` needs us to act (not "queued").
pub const HCR_EL2_FMO: u64 = 1 << 3;
/// HCR_EL2.IMO: physical IRQs at EL1 go to EL2 (Secure Group 1 interrupts
/// in Secure state: always ours); it also enables virtual IRQs (VI).
pub const HCR_EL2_IMO: u64 = 1 << 4;
/// HCR_EL2.VI: a virtual IRQ is pending for the SP (how we deliver virtual
/// interrupts; the id is read with HF_INTERRUPT_GET).
pub const HCR_EL2_VI: u64 = 1 << 7;

/// CNTHCTL_EL2 for SPs: EL1PCTEN (bit 0) = 1, the SP reads the physical
/// counter freely; EL1PCEN (bit 1) = 0, its EL1 physical timer registers trap
/// to us and are emulated (`spmc::vtimer`).
const CNTHCTL_EL2_SP: u64 = 1;
/// ESR_EL2.EC of a trapped MSR/MRS.
const EC_SYSREG: u64 = 0x18;
/// QEMU virt GICv3: distributor and redistributors (one 128 KiB RD+SGI pair per PE).
pub const GICD_BASE: usize = 0x0800_0000;
pub const GICR_BASE: usize = 0x080a_0000;
pub const GICR_SIZE: usize = 0x2_0000 * shared::percpu::MAX_CPUS;

/// Armed deadline (physical count) of each context's emulated timer; u64::MAX = none.
/// Atomics, not in the context slots: the Secure interrupt path scans them
/// while no context is running.
static DEADLINES: [[AtomicU64; MAX_CONTEXTS]; MAX_PARTITIONS] =
    [const { [const { AtomicU64::new(u64::MAX) }; MAX_CONTEXTS] }; MAX_PARTITIONS];

fn cntpct() -> u64 {
    let v: u64;
    // SAFETY: reading the physical counter has no side effects.
    unsafe { core::arch::asm!("isb", "mrs {}, cntpct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Programs this PE's Secure EL2 physical timer (CNTHPS) to the earliest
/// armed deadline of all contexts, or stops it.
fn program_host_timer() {
    let min = DEADLINES.iter().flatten().map(|d| d.load(Ordering::Relaxed)).min().unwrap_or(u64::MAX);
    // SAFETY: CNTHPS_{CVAL,CTL}_EL2 (S3_4_C14_C5_{2,1}) are the SPMC's own timer.
    unsafe {
        if min == u64::MAX {
            core::arch::asm!("msr S3_4_C14_C5_1, xzr", options(nostack, preserves_flags));
        } else {
            core::arch::asm!("msr S3_4_C14_C5_2, {}", "msr S3_4_C14_C5_1, {}", "isb", in(reg) min, in(reg) 1u64, options(nostack, preserves_flags));
        }
    }
}

/// QEMU virt (the one platform spmc runs on): a PE's linear core index is
/// its MPIDR_EL1.Aff0, on one cluster (Aff1..3 = 0).  The one place this
/// mapping lives: the entry code (`spmc_entry_core` in arch/mod.rs) masks
/// MPIDR_EL1 with it, [`this_cpu`] and [`mpidr_of`] use it.
pub const MPIDR_CORE_MASK: u64 = 0xff;

/// The affinity (MPIDR_EL1.Aff3..0) of core `cpu`, e.g. for GICD_IROUTER.
pub fn mpidr_of(cpu: usize) -> u64 {
    cpu as u64 & MPIDR_CORE_MASK
}

/// This PE's index (see [`MPIDR_CORE_MASK`]).
pub fn this_cpu() -> usize {
    (shared::read_sysreg!(mpidr_el1) & MPIDR_CORE_MASK) as usize
}

/// Acknowledges the highest-priority pending Group 1 (Secure, from S-EL2)
/// interrupt and ends it in the GIC (EOImode 0: drop and deactivate).
///
/// Not EOImode 1 with ICC_DIR_EL1 when the SP is done: QEMU (10.0) ignores
/// DIR writes at Secure EL2 for Secure interrupts (its GICv3 CPU interface
/// predates Secure EL2), so the first interrupt would stay active forever.
/// Instead a device interrupt is disabled (GICD/GICR ICENABLER) until its SP
/// calls HF_INTERRUPT_DEACTIVATE, so a level-triggered device cannot storm;
/// our timer needs neither (the dispatcher stops it when it fires).
fn acknowledge() -> u32 {
    let intid: u64;
    // SAFETY: ICC_IAR1_EL1 (S3_0_C12_C12_0) of our own CPU interface.
    unsafe { core::arch::asm!("mrs {}, S3_0_C12_C12_0", out(reg) intid, options(nostack)) };
    let intid = intid as u32;
    if intid < 1020 {
        if intid != SEL2_PHYS_TIMER_INTID {
            let _ = HwGic.set_enabled(intid, this_cpu(), false);
        }
        // SAFETY: ICC_EOIR1_EL1 (S3_0_C12_C12_1) for the interrupt just acknowledged.
        unsafe { core::arch::asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) intid as u64, options(nostack)) };
    }
    intid
}

/// The GICv3 through the `arm-gic` crate, for Secure interrupt configuration.
pub struct HwGic;

fn int_id(intid: u32) -> Result<arm_gic::IntId, ()> {
    use arm_gic::IntId;
    match intid {
        n @ 0..16 => Ok(IntId::sgi(n)),
        n @ 16..32 => Ok(IntId::ppi(n - 16)),
        n @ 32..1020 => Ok(IntId::spi(n - 32)),
        _ => Err(()),
    }
}

fn gic() -> Result<arm_gic::gicv3::GicV3<'static>, ()> {
    // SAFETY: the GIC distributor and redistributors are mapped (Device) in
    // our Stage-1; each driver value lives for one operation.  Several PEs may
    // hold one at once: what they do concurrently is enabling and disabling
    // (GICD/GICR I[SC]ENABLER, write-one registers that the GIC applies
    // atomically); read-modify-write configuration is serialised by
    // `GIC_CONFIG`.
    unsafe {
        let gicd = arm_gic::UniqueMmioPointer::new(core::ptr::NonNull::new(GICD_BASE as *mut _).ok_or(())?);
        arm_gic::gicv3::GicV3::new(gicd, core::ptr::NonNull::new(GICR_BASE as *mut _).ok_or(())?, shared::percpu::MAX_CPUS).map_err(|_| ())
    }
}

impl HwGic {
    fn set_enabled(&mut self, intid: u32, cpu: usize, enable: bool) -> Result<(), ()> {
        gic()?.enable_interrupt(int_id(intid)?, Some(cpu), enable).map_err(|_| ())
    }
}

/// Interrupt configuration rewrites shared distributor registers
/// (GICD_IGROUPR, IGRPMODR, IPRIORITYR, ICFGR) field by field; PEs coming
/// up together take turns.
static GIC_CONFIG: spin::Mutex<()> = spin::Mutex::new(());

impl SecureInterruptController for HwGic {
    fn configure_secure(&mut self, irq: SecureInterrupt, cpu: usize) -> Result<(), ()> {
        use arm_gic::Trigger;
        use arm_gic::gicv3::{Group, SecureIntGroup};
        let _turn = GIC_CONFIG.lock();
        let id = int_id(irq.intid)?;
        let mut gic = gic()?;
        let cpu_opt = Some(cpu);
        gic.enable_interrupt(id, cpu_opt, false).map_err(|_| ())?;
        gic.set_group(id, cpu_opt, Group::Secure(SecureIntGroup::Group1S)).map_err(|_| ())?;
        gic.set_interrupt_priority(id, cpu_opt, irq.priority).map_err(|_| ())?;
        gic.set_trigger(id, cpu_opt, if irq.level { Trigger::Level } else { Trigger::Edge }).map_err(|_| ())?;
        if !irq.is_private() {
            gic.distributor().set_routing(id, Some(mpidr_of(cpu))).map_err(|_| ())?;
        }
        gic.enable_interrupt(id, cpu_opt, true).map_err(|_| ())
    }

    fn configure_non_secure(&mut self, intid: u32, cpu: usize) -> Result<(), ()> {
        use arm_gic::gicv3::Group;
        let _turn = GIC_CONFIG.lock();
        let id = int_id(intid)?;
        let mut gic = gic()?;
        // Left disabled: the Normal world enables it (Linux's request_percpu_irq).
        gic.enable_interrupt(id, Some(cpu), false).map_err(|_| ())?;
        gic.set_group(id, Some(cpu), Group::Group1NS).map_err(|_| ())
    }
}

/// ESR_EL2 exception classes (DDI0487 D19.2.x ESR_EL2.EC).
const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;

struct Vcpu {
    regs: GuestRegs,
    el1: El1SysRegs,
    /// Its emulated EL1 physical timer.
    timer: VTimer,
}

/// One slot per (partition, execution context).  A static, not a field of
/// `HwPlatform`: 32 contexts of ~1 KiB each would not fit the boot stack the
/// platform value is built on.  Locked by the PE that runs the context, for
/// the run; the dispatcher lets one PE at a time run a context (its state is
/// Running), so the lock is never contended.
static VCPUS: [[spin::Mutex<Option<Vcpu>>; MAX_CONTEXTS]; MAX_PARTITIONS] =
    [const { [const { spin::Mutex::new(None) }; MAX_CONTEXTS] }; MAX_PARTITIONS];

/// What the platform keeps per partition besides its contexts.
#[derive(Clone, Copy)]
struct SpHw {
    /// Root of its Secure Stage-2 (VSTTBR_EL2).
    s2_root: u64,
    /// Root of its Non-secure IPA space's Stage-2 (VTTBR_EL2): Normal-world
    /// memory it retrieved (FFA_MEM_RETRIEVE_REQ), nothing else.
    ns_root: u64,
    vmid: u64,
    /// Its primary entry point (load address + entrypoint-offset).
    entry: u64,
}

pub struct HwPlatform {
    pool: &'static spin::Mutex<FramePool>,
    sps: [Option<SpHw>; MAX_PARTITIONS],
    /// An empty NS-IPA Stage-2 (VTTBR_EL2) for when no SP runs.
    ns_root: u64,
    _ns_table: mm::NsStage2,
    /// Each SP's Secure and Non-secure IPA Stage-2 tables; changed by memory
    /// transactions from any PE, so each behind its own lock.
    s2: [spin::Mutex<Option<mm::SecureStage2Map>>; MAX_PARTITIONS],
    ns_s2: [spin::Mutex<Option<mm::NsStage2>>; MAX_PARTITIONS],
}

/// Stage-2 attributes for a manifest region's `attributes` (binding: 1 R, 2 W, 4 X).
fn region_kind(attributes: u32, device: bool) -> MemKind {
    if device {
        return MemKind::Device;
    }
    match (attributes & ATTR_WRITE != 0, attributes & ATTR_EXEC != 0) {
        (true, true) => MemKind::ReadWriteExec,
        (true, false) => MemKind::ReadWrite,
        (false, true) => MemKind::Code,
        (false, false) => MemKind::ReadOnly,
    }
}

/// Programs this core's Stage-2 control registers (per PE; EL3 keeps them
/// in the Secure context across world switches).
pub fn setup_cpu_virt(ns_root: u64) {
    let vtcr = shared::arch::mmu::vtcr();
    // VSTCR_EL2 shares T0SZ[5:0], SL0[7:6], TG0[15:14] with VTCR_EL2; SW/SA
    // (bits 29/30) = 0: Secure Stage-2 walks and output are in the Secure PAS.
    let vstcr = vtcr & (0x3f | (3 << 6) | (3 << 14));
    // VTCR_EL2.NSA (bit 30) = 1: what the Non-secure IPA space translates to
    // is in the Non-secure PAS (Normal-world memory an SP retrieved); NSW
    // (bit 29) = 0: its tables, ours, are walked in the Secure PAS.  Without
    // NSA the output would be Secure and the GPT would fault the access.
    let vtcr = vtcr | (1 << 30);
    // SAFETY: Stage-2 only applies to EL1&0, which runs nothing until we enter
    // an SP with the matching VSTTBR/VTTBR written by `run_sp`.
    unsafe {
        shared::write_sysreg!(vtcr_el2, vtcr);
        core::arch::asm!("msr S3_4_C2_C6_2, {}" /* VSTCR_EL2 */, in(reg) vstcr, options(nostack, preserves_flags));
        shared::write_sysreg!(vttbr_el2, ns_root | (1u64 << 48));
        shared::write_sysreg!(hcr_el2, HCR_EL2_SP);
        shared::write_sysreg!(cnthctl_el2, CNTHCTL_EL2_SP);
        shared::write_sysreg!(cntvoff_el2, 0);

        core::arch::asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb", options(nostack));
    }
}

impl HwPlatform {
    pub fn new(pool: &'static spin::Mutex<FramePool>) -> Self {
        let ns = mm::new_table(pool, mm::Stage2);
        let ns_root = ns.root_address().0 as u64;
        Self {
            pool,
            sps: [None; MAX_PARTITIONS],
            ns_root,
            _ns_table: ns,
            s2: [const { spin::Mutex::new(None) }; MAX_PARTITIONS],
            ns_s2: [const { spin::Mutex::new(None) }; MAX_PARTITIONS],
        }
    }

    pub fn ns_root(&self) -> u64 {
        self.ns_root
    }

    /// Creates SP `idx`'s contexts at `entry` with a Secure Stage-2 that maps,
    /// at IPA == PA, its package region (RWX Normal memory) and the memory and
    /// device regions of its manifest (already checked against every other
    /// partition and the SPMC by `partition::layout`).
    /// `boot` is (register, address) of the FF-A boot information blob, if
    /// the SP asked for one (DEN0077A v1.1 §5.4.3: the address in the
    /// register its manifest's `gp-register-num` names, at its first entry).
    pub fn add_partition(&mut self, idx: usize, entry: u64, mem: SpMemory, pm: &PartitionManifest, boot: Option<(u8, u64)>) -> Result<(), ()> {
        let mut t = mm::new_table(self.pool, mm::SecureStage2);
        mm::map(&mut t, mem.base as usize, mem.base as usize, mem.size as usize, mm::stage2_attributes(MemKind::ReadWriteExec)).map_err(|_| ())?;
        for r in pm.memory_regions() {
            mm::map(&mut t, r.base as usize, r.base as usize, r.size() as usize, mm::stage2_attributes(region_kind(r.attributes, false))).map_err(|_| ())?;
        }
        for d in pm.device_regions() {
            let r = d.region;
            mm::map(&mut t, r.base as usize, r.base as usize, r.size() as usize, mm::stage2_attributes(region_kind(r.attributes, true))).map_err(|_| ())?;
        }
        let root = t.root_address().0 as u64;
        *self.s2.get(idx).ok_or(())?.lock() = Some(t);
        let ns = mm::new_table(self.pool, mm::Stage2);
        let ns_root = ns.root_address().0 as u64;
        *self.ns_s2.get(idx).ok_or(())?.lock() = Some(ns);
        self.sps[idx] = Some(SpHw { s2_root: root, ns_root, vmid: idx as u64 + 2, entry });
        for ctx in 0..(pm.execution_ctx_count as usize).min(MAX_CONTEXTS) {
            // Without a boot information blob every register is 0; with one, its
            // address is in x0..x3 as the manifest asks.
            let mut regs = GuestRegs::at_entry(entry, 0);
            if let Some((reg, addr)) = boot {
                regs.x[(reg as usize).min(3)] = addr;
            }
            *VCPUS[idx][ctx].lock() = Some(Vcpu { regs, el1: sp_el1_reset(), timer: VTimer::default() });
        }
        Ok(())
    }
}

/// Where pages to be zeroed are seen, a 2 MiB block at a time: a part of
/// the SPMC's EL2 VA space (39 bits) that maps nothing else, so pages of any
/// PAS can be reached without touching the identity map.
pub const ZERO_WINDOW: u64 = 0x60_0000_0000;
pub const ZERO_WINDOW_SIZE: u64 = 0x20_0000;

/// The smallest data cache line (CTR_EL0.DminLine, log2 of words).
fn dcache_line() -> u64 {
    4 << ((shared::read_sysreg!(ctr_el0) >> 16) & 0xf)
}

/// Makes the zeroing window's tables now, so that zeroing later needs no
/// table page (and cannot fail for want of one).
pub fn reserve_zero_window(t: &mut mm::El2Map) -> Result<(), ()> {
    let attrs = mm::el2_attributes(MemKind::ReadWrite, false);
    // 4 KiB pages at both ends of the window: its level-3 table exists.
    mm::map(t, ZERO_WINDOW as usize, ZERO_WINDOW as usize, 0x1000, attrs).map_err(|_| ())?;
    let _ = mm::map(t, ZERO_WINDOW as usize, ZERO_WINDOW as usize, 0x1000, aarch64_paging::descriptor::El23Attributes::empty());
    Ok(())
}

/// An SP context's EL1 system registers at its entry: the architecture's
/// reset values, with FP/SIMD trapped at EL1 (CPACR_EL1.FPEN = 0), as
/// Hafnium starts SPs: FF-A promises an SP no enabled FP/SIMD, so an SP
/// enables what it uses in its own entry code (ours do: sps/runtime).
fn sp_el1_reset() -> El1SysRegs {
    let mut el1 = El1SysRegs::reset();
    el1.cpacr = 0;
    el1
}

/// The machine as one PE drives it: what [`HwPlatform`] holds is fixed once
/// booted, and what a PE changes is its own (its CPU interface, its timer,
/// the Normal world's EL1 state while SPs run) or behind a lock (each
/// context's registers, the SPMC's Stage-1 table).
pub struct HwPe {
    hw: &'static HwPlatform,
    /// The Normal world's EL1 system registers, saved before the first SP
    /// run of a call from EL3, while the EL1 registers hold an SP's
    /// (`ns_el1_saved`): put back by [`HwPe::restore_ns_el1`] before we
    /// return to EL3.  A flag beside the block, not an `Option` of it: no
    /// 208-byte copy in or out.
    ns_el1: El1SysRegs,
    ns_el1_saved: bool,
}

impl HwPe {
    pub fn new(hw: &'static HwPlatform) -> Self {
        Self { hw, ns_el1: El1SysRegs::reset(), ns_el1_saved: false }
    }

    /// Puts the Normal world's EL1 state back if an SP ran since it was
    /// saved.  Called before every SMC that returns to EL3 (the SPMD does
    /// not switch EL1 registers for an SPMC at S-EL2, so the Normal world
    /// finds them as we leave them).
    ///
    /// EL1 registers are not banked by security state.  Saving the Normal
    /// world's once per call and restoring them once, instead of around each
    /// `run_sp`, spares two saves and two restores per SP-to-SP request
    /// (three SP runs per call from NS; issue P item 3).  Between runs EL2
    /// code uses no EL1 register, so what they hold then does not matter.
    pub fn restore_ns_el1(&mut self) {
        if self.ns_el1_saved {
            self.ns_el1_saved = false;
            // SAFETY: the Normal world's own EL1 state, saved by `run_sp`;
            // no SP runs again before the next save.
            unsafe { self.ns_el1.restore() };
        }
    }
}

impl Drop for HwPe {
    fn drop(&mut self) {
        self.restore_ns_el1();
    }
}

impl Platform for HwPe {
    fn map_ns(&mut self, pa: u64, size: u64) -> Result<(), ()> {
        let map = super::MAP.get().ok_or(())?;
        let mut t = map.lock();
        mm::map(&mut t, pa as usize, pa as usize, size as usize, mm::el2_attributes(MemKind::ReadWrite, true)).map_err(|_| ())?;
        // SAFETY: barriers only; new entries replace invalid ones (no break-before-make needed).
        unsafe { core::arch::asm!("dsb ish", "isb", options(nostack)) };
        Ok(())
    }

    fn unmap_ns(&mut self, pa: u64, size: u64) {
        if let Some(map) = super::MAP.get() {
            let mut t = map.lock();
            // Invalid descriptors (no VALID bit): the crate invalidates the TLB entries.
            let _ = mm::map(&mut t, pa as usize, pa as usize, size as usize, aarch64_paging::descriptor::El23Attributes::empty());
        }
    }

    fn write(&mut self, pa: u64, bytes: &[u8]) {
        // The dispatcher only writes inside a mapped NS buffer or an SP's
        // region; an NS page that left the NS PAS faults, survived (recover.rs).
        let _ = super::recover::guarded(|| super::recover::write_bytes(pa as usize, bytes));
    }

    fn reset_ctx(&mut self, index: usize, ctx: usize, entry: Option<u64>) {
        let Some(hw) = self.hw.sps.get(index).copied().flatten() else { return };
        if let Some(slot) = VCPUS.get(index).and_then(|c| c.get(ctx)) {
            *slot.lock() = Some(Vcpu { regs: GuestRegs::at_entry(entry.unwrap_or(hw.entry), 0), el1: sp_el1_reset(), timer: VTimer::default() });
        }
    }

    fn acknowledge_interrupt(&mut self) -> u32 {
        acknowledge()
    }

    fn deactivate_interrupt(&mut self, intid: u32) {
        // Ended in the GIC at acknowledge time; a device interrupt was
        // disabled until now (see `acknowledge`).
        if intid != SEL2_PHYS_TIMER_INTID {
            let _ = HwGic.set_enabled(intid, this_cpu(), true);
        }
    }

    fn timer_expired(&mut self, out: &mut [(usize, usize)]) -> usize {
        let now = cntpct();
        let mut n = 0;
        for (i, row) in DEADLINES.iter().enumerate() {
            for (c, d) in row.iter().enumerate() {
                let v = d.load(Ordering::Relaxed);
                // One interrupt per arming: the SP re-arms by writing its
                // timer.  Taken with a compare-and-swap, so of two PEs whose
                // timers fired together only one reports it.
                if v <= now && n < out.len() && d.compare_exchange(v, u64::MAX, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    out[n] = (i, c);
                    n += 1;
                }
            }
        }
        program_host_timer();
        n
    }

    fn run_sp(&mut self, index: usize, ctx: usize, answer: Option<&Regs>, flags: RunFlags) -> SpExit {
        let dead = SpExit::Fault { esr: 0, far: 0, elr: 0, ipa: None };
        let Some(hw) = self.hw.sps.get(index).copied().flatten() else { return dead };
        let Some(slot) = VCPUS.get(index).and_then(|c| c.get(ctx)) else { return dead };
        let mut guard = slot.lock();
        let Some(v) = guard.as_mut() else { return dead };
        if let Some(a) = answer {
            load_call_regs(&mut v.regs, a);
        }
        // EL1 registers are not banked by security state and EL3 does not
        // switch them when the SPMC is at S-EL2: keep the Normal world's,
        // saved once until we return to it (`restore_ns_el1`).
        if !self.ns_el1_saved {
            self.ns_el1.save();
            self.ns_el1_saved = true;
        }
        // SAFETY: the SP's EL1 state, Stage-2 and VMID confine it to its region.
        // VMPIDR_EL2: what the context reads as MPIDR_EL1 — RES1 bit 31 and
        // Aff0 = its context index, so an MP SP can tell its contexts apart.
        unsafe {
            v.el1.restore();
            core::arch::asm!("msr S3_4_C2_C6_0, {}" /* VSTTBR_EL2 */, in(reg) hw.s2_root, options(nostack, preserves_flags));
            shared::write_sysreg!(vttbr_el2, hw.ns_root | (hw.vmid << 48));
            shared::write_sysreg!(vmpidr_el2, (1u64 << 31) | ctx as u64);
            let hcr = HCR_EL2_SP | HCR_EL2_IMO | if flags.trap_ns { HCR_EL2_FMO } else { 0 } | if flags.virq { HCR_EL2_VI } else { 0 };
            shared::write_sysreg!(hcr_el2, hcr);
            core::arch::asm!("isb", options(nostack));
        }
        let fault = |esr: u64, elr: u64| {
            let far = shared::read_sysreg!(far_el2);
            let ec = esr >> 26;
            // HPFAR_EL2.FIPA (bits 43:4) = IPA[55:12] for Stage-2 aborts from EL1/EL0.
            let ipa = matches!(ec, 0x20 | 0x24).then(|| ((shared::read_sysreg!(hpfar_el2) >> 4) << 12) | (far & 0xfff));
            SpExit::Fault { esr, far, elr, ipa }
        };
        let exit = loop {
            shared::split::inner_begin();
            // SAFETY: as above; interrupts are masked at EL2 (DAIF from the SPMD).
            let vector = unsafe { shared::arch::enter_guest(&mut v.regs) };
            shared::split::inner_end();
            let esr = shared::read_sysreg!(esr_el2);
            match vector {
                8 => match esr >> 26 {
                    EC_SMC64 => {
                        // A trapped SMC leaves ELR_EL2 at the SMC itself (DDI0487 D1.x).
                        v.regs.elr += 4;
                        break SpExit::Call(call_regs(&v.regs));
                    }
                    EC_HVC64 => break SpExit::Call(call_regs(&v.regs)),
                    EC_SYSREG => match vtimer::decode(esr & 0x1ff_ffff) {
                        Some((reg, rt, read)) => {
                            let now = cntpct();
                            if read {
                                if rt < 31 {
                                    v.regs.x[rt] = v.timer.read(reg, now);
                                }
                            } else {
                                let val = if rt < 31 { v.regs.x[rt] } else { 0 };
                                v.timer.write(reg, val, now);
                                let d = v.timer.deadline().unwrap_or(u64::MAX);
                                DEADLINES[index][ctx].store(d, Ordering::Relaxed);
                                program_host_timer();
                            }
                            v.regs.elr += 4;
                            continue;
                        }
                        None => break fault(esr, v.regs.elr),
                    },
                    _ => break fault(esr, v.regs.elr),
                },
                // IRQ (HCR_EL2.IMO): a Secure Group 1 interrupt.
                9 => match acknowledge() {
                    SPURIOUS_INTID | 1020..=1022 => continue,
                    intid => break SpExit::SecureInterrupt(intid),
                },
                // FIQ (HCR_EL2.FMO, set only when we act on them): a Non-secure interrupt.
                10 if flags.trap_ns => break SpExit::NsInterrupt,
                10 => continue,
                _ => break fault(esr, v.regs.elr),
            }
        };
        // Saved at every exit: the context may run next on another PE (a UP
        // partition's context migrates).  The Normal world's state goes back
        // before we return to EL3 (`restore_ns_el1`).
        v.el1.save();
        exit
    }

    fn sp_log(&mut self, prefix: &str, line: &str) {
        shared::println!("[{}] {}", prefix, line);
    }

    fn read(&mut self, pa: u64, out: &mut [u8]) {
        // As `write`; what a fault left unread reads as zero.
        if super::recover::guarded(|| super::recover::read_bytes(pa as usize, out)).is_err() {
            out.fill(0);
        }
    }

    fn take_access_fault(&mut self) -> bool {
        super::recover::take_lost()
    }

    fn send_sri(&mut self) {
        use arm_gic::gicv3::{GicCpuInterface, SgiTarget, SgiTargetGroup};
        let mpidr = shared::read_sysreg!(mpidr_el1);
        let target = SgiTarget::List {
            affinity3: (mpidr >> 32) as u8,
            affinity2: (mpidr >> 16) as u8,
            affinity1: (mpidr >> 8) as u8,
            target_list: 1 << (mpidr & 0xf),
        };
        // ICC_ASGI1R_EL1 from Secure state: a Group 1 Non-secure SGI to this PE
        // (the SRI was made Group 1 NS on every PE by `gic::configure`).
        if let Ok(id) = int_id(spmc::ffa::notifications::SRI_INTID) {
            let _ = GicCpuInterface::send_sgi(id, target, SgiTargetGroup::OtherGroup1);
        }
    }

    fn zero(&mut self, pa: u64, size: u64, non_secure: bool) -> Result<(), ()> {
        let map = super::MAP.get().ok_or(())?;
        // One PE at a time through the window: the table lock is held throughout.
        let mut t = map.lock();
        let line = dcache_line();
        let mut at = pa;
        let end = pa.checked_add(size).ok_or(())?;
        while at < end {
            // The part of `[at, end)` inside one 2 MiB block of the PAS, seen
            // through the window at the same offset into it.
            let block_end = (at | (ZERO_WINDOW_SIZE - 1)) + 1;
            let n = block_end.min(end) - at;
            let va = ZERO_WINDOW + (at & (ZERO_WINDOW_SIZE - 1));
            mm::map(&mut t, va as usize, at as usize, n as usize, mm::el2_attributes(MemKind::ReadWrite, non_secure)).map_err(|_| ())?;
            // SAFETY: barriers only, so the new entries are seen below.
            unsafe { core::arch::asm!("dsb ish", "isb", options(nostack)) };
            // `[va, va + n)` was just mapped read-write, to pages that the
            // memory-management rules give nobody access to right now (or
            // only to the endpoint that asked for them to be zeroed); a page
            // that left its PAS faults, survived (recover.rs).
            let zeroed = super::recover::guarded(|| super::recover::zero(va as usize, n as usize));
            // Clean to the point of coherency: the next owner may map the
            // pages with other cacheability (DDI0487 D7.5, data cache maintenance).
            let mut l = va & !(line - 1);
            while l < va + n {
                // SAFETY: cache maintenance by VA of a mapped range.
                unsafe { core::arch::asm!("dc civac, {}", in(reg) l, options(nostack, preserves_flags)) };
                l += line;
            }
            // SAFETY: barrier only: the zeros are at the point of coherency.
            unsafe { core::arch::asm!("dsb sy", options(nostack)) };
            // Invalid descriptors: the crate invalidates the TLB entries.
            let _ = mm::map(&mut t, va as usize, at as usize, n as usize, aarch64_paging::descriptor::El23Attributes::empty());
            zeroed?;
            at += n;
        }
        Ok(())
    }

    fn map_borrowed(&mut self, index: usize, pa: u64, size: u64, access: BorrowedAccess, non_secure: bool) -> Result<(), ()> {
        let kind = match (access.write, access.execute) {
            (true, true) => MemKind::ReadWriteExec,
            (true, false) => MemKind::ReadWrite,
            (false, true) => MemKind::Code,
            (false, false) => MemKind::ReadOnly,
        };
        let attrs = mm::stage2_attributes(kind);
        if non_secure {
            let mut t = self.hw.ns_s2.get(index).ok_or(())?.lock();
            mm::map(t.as_mut().ok_or(())?, pa as usize, pa as usize, size as usize, attrs).map_err(|_| ())?;
        } else {
            let mut t = self.hw.s2.get(index).ok_or(())?.lock();
            mm::map(t.as_mut().ok_or(())?, pa as usize, pa as usize, size as usize, attrs).map_err(|_| ())?;
        }
        // SAFETY: barriers only; new entries replace invalid (or narrower) ones.
        unsafe { core::arch::asm!("dsb ish", "isb", options(nostack)) };
        Ok(())
    }

    fn unmap_borrowed(&mut self, index: usize, pa: u64, size: u64, non_secure: bool) {
        let Some(hw) = self.hw.sps.get(index).copied().flatten() else { return };
        let none = aarch64_paging::descriptor::Stage2Attributes::empty();
        if non_secure {
            if let Some(t) = self.hw.ns_s2.get(index).map(|t| t.lock()).as_mut().and_then(|t| t.as_mut()) {
                let _ = mm::map(t, pa as usize, pa as usize, size as usize, none);
            }
        } else if let Some(t) = self.hw.s2.get(index).map(|t| t.lock()).as_mut().and_then(|t| t.as_mut()) {
            let _ = mm::map(t, pa as usize, pa as usize, size as usize, none);
        }
        invalidate_sp_tlb(&hw);
    }
}

/// Invalidates every TLB entry of SP `hw`'s VMID on all PEs (TLBI
/// VMALLS12E1IS acts on the VMID in VTTBR_EL2 and the Secure EL1&0 regime
/// we are in), then puts VTTBR_EL2/VSTTBR_EL2 back as they were.
fn invalidate_sp_tlb(hw: &SpHw) {
    // SAFETY: TLB maintenance and the Stage-2 base registers of EL1&0, which
    // runs nothing while the SPMC does; both are restored before returning.
    unsafe {
        let (vttbr, vsttbr): (u64, u64);
        core::arch::asm!("mrs {}, vttbr_el2", out(reg) vttbr, options(nostack, preserves_flags));
        core::arch::asm!("mrs {}, S3_4_C2_C6_0", out(reg) vsttbr, options(nostack, preserves_flags));
        core::arch::asm!(
            "dsb ishst",
            "msr vttbr_el2, {ns}",
            "msr S3_4_C2_C6_0, {s}",
            "isb",
            "tlbi vmalls12e1is",
            "dsb ish",
            "msr vttbr_el2, {old_ns}",
            "msr S3_4_C2_C6_0, {old_s}",
            "isb",
            ns = in(reg) hw.ns_root | (hw.vmid << 48),
            s = in(reg) hw.s2_root,
            old_ns = in(reg) vttbr,
            old_s = in(reg) vsttbr,
            options(nostack, preserves_flags),
        );
    }
}

/// Puts an answer (x0..x17) in a context's registers: nine LDP/STP pairs
/// inline, where `copy_from_slice` is a call to `memcpy` and its loop, ~46
/// instructions and the call (issue P item 3).
fn load_call_regs(g: &mut GuestRegs, a: &Regs) {
    let dst: &mut [u64; 18] = (&mut g.x[..18]).try_into().expect("x0..x30 holds x0..x17");
    // SAFETY: `a` and `dst` are borrowed for the call (so valid and not
    // overlapping), 18 words each, 8-byte aligned.
    unsafe { copy_regs(a.as_ptr(), dst.as_mut_ptr()) }
}

/// x0..x17 of a context that made a call, copied out with the same nine
/// LDP/STP pairs: three per SP-to-SP round trip, each a `memcpy` call
/// before (issue P item 3).
fn call_regs(g: &GuestRegs) -> Regs {
    let mut r = core::mem::MaybeUninit::<Regs>::uninit();
    // SAFETY: reads x0..x17 of `g` (borrowed, 31 words) and writes all 18
    // words of `r`, a local of its own, so it is initialised afterwards.
    unsafe {
        copy_regs(g.x.as_ptr(), r.as_mut_ptr().cast());
        r.assume_init()
    }
}
