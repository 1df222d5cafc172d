//! The real machine behind [`crate::ffa::Platform`]: SP execution contexts at
//! S-EL1 under a Secure Stage-2, and the SPMC's own Stage-1 for NS buffers.

use crate::ffa::{MAX_CONTEXTS, MAX_PARTITIONS, Platform, Regs, SpExit, SpMemory};
use crate::partition::PartitionManifest;
use crate::partition::manifest::{ATTR_EXEC, ATTR_WRITE};
use shared::arch::{El1SysRegs, GuestRegs};
use shared::mm::{self, FramePool, MemKind};

/// HCR_EL2 while SPs run (DDI0487 D19.2.x HCR_EL2):
/// - VM (bit 0): Stage-2 translation for EL1&0 (Secure IPA space via VSTTBR_EL2);
/// - SWIO (bit 1): set/way invalidates become clean+invalidate, so an SP
///   cannot discard other worlds' dirty lines;
/// - FMO/IMO/AMO (bits 3..5) = 0: physical interrupts are not taken to S-EL2;
///   SPs run with DAIF masked and interrupts stay pending until EL3 routes
///   them (interrupt handling is not implemented yet);
/// - TSC (bit 19): an SMC at EL1 traps to us (ESR EC 0x17): FF-A calls of SPs;
/// - RW (bit 31): EL1 is AArch64;
/// - APK/API (bits 40, 41): no traps on pointer authentication keys/instructions.
pub const HCR_EL2_SP: u64 = (1 << 0) | (1 << 1) | (1 << 19) | (1 << 31) | (1 << 40) | (1 << 41);

/// ESR_EL2 exception classes (DDI0487 D19.2.x ESR_EL2.EC).
const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;

struct Vcpu {
    regs: GuestRegs,
    el1: El1SysRegs,
}

/// One slot per (partition, execution context).  A static, not a field of
/// `HwPlatform`: 32 contexts of ~1 KiB each would not fit the boot stack the
/// platform value is built on.  Only touched with the SPMC lock held.
static VCPUS: [[spin::Mutex<Option<Vcpu>>; MAX_CONTEXTS]; MAX_PARTITIONS] =
    [const { [const { spin::Mutex::new(None) }; MAX_CONTEXTS] }; MAX_PARTITIONS];

/// What the platform keeps per partition besides its contexts.
#[derive(Clone, Copy)]
struct SpHw {
    /// Root of its Secure Stage-2 (VSTTBR_EL2).
    s2_root: u64,
    vmid: u64,
    /// Its primary entry point (load address + entrypoint-offset).
    entry: u64,
}

pub struct HwPlatform {
    pool: &'static spin::Mutex<FramePool>,
    sps: [Option<SpHw>; MAX_PARTITIONS],
    /// An empty NS-IPA Stage-2 (VTTBR_EL2): any NS IPA access by an SP faults.
    ns_root: u64,
    _ns_table: mm::NsStage2,
    _s2: [Option<mm::SecureStage2Map>; MAX_PARTITIONS],
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
    // SAFETY: Stage-2 only applies to EL1&0, which runs nothing until we enter
    // an SP with the matching VSTTBR/VTTBR written by `run_sp`.
    unsafe {
        shared::write_sysreg!(vtcr_el2, vtcr);
        core::arch::asm!("msr S3_4_C2_C6_2, {}" /* VSTCR_EL2 */, in(reg) vstcr, options(nostack, preserves_flags));
        shared::write_sysreg!(vttbr_el2, ns_root | (1u64 << 48));
        shared::write_sysreg!(hcr_el2, HCR_EL2_SP);
        // EL1 may read the physical counter and timer without trapping.
        shared::write_sysreg!(cnthctl_el2, 3);
        shared::write_sysreg!(cntvoff_el2, 0);
        core::arch::asm!("isb", "tlbi vmalls12e1", "dsb nsh", "isb", options(nostack));
    }
}

impl HwPlatform {
    pub fn new(pool: &'static spin::Mutex<FramePool>) -> Self {
        let ns = mm::new_table(pool, mm::Stage2);
        let ns_root = ns.root_address().0 as u64;
        Self { pool, sps: [None; MAX_PARTITIONS], ns_root, _ns_table: ns, _s2: [const { None }; MAX_PARTITIONS] }
    }

    pub fn ns_root(&self) -> u64 {
        self.ns_root
    }

    /// Creates SP `idx`'s contexts at `entry` with a Secure Stage-2 that maps,
    /// at IPA == PA, its package region (RWX Normal memory) and the memory and
    /// device regions of its manifest (already checked against every other
    /// partition and the SPMC by `partition::layout`).
    pub fn add_partition(&mut self, idx: usize, entry: u64, mem: SpMemory, pm: &PartitionManifest) -> Result<(), ()> {
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
        *self._s2.get_mut(idx).ok_or(())? = Some(t);
        self.sps[idx] = Some(SpHw { s2_root: root, vmid: idx as u64 + 2, entry });
        for ctx in 0..(pm.execution_ctx_count as usize).min(MAX_CONTEXTS) {
            // x0 = 0: no boot information blob is passed (DEN0077 §5.4).
            *VCPUS[idx][ctx].lock() = Some(Vcpu { regs: GuestRegs::at_entry(entry, 0), el1: El1SysRegs::reset() });
        }
        Ok(())
    }
}

impl Platform for HwPlatform {
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
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: the dispatcher only writes inside a mapped NS buffer or an SP's region.
            unsafe { core::ptr::write_volatile((pa as usize + i) as *mut u8, *b) };
        }
    }

    fn reset_ctx(&mut self, index: usize, ctx: usize, entry: Option<u64>) {
        let Some(hw) = self.sps.get(index).copied().flatten() else { return };
        if let Some(slot) = VCPUS.get(index).and_then(|c| c.get(ctx)) {
            *slot.lock() = Some(Vcpu { regs: GuestRegs::at_entry(entry.unwrap_or(hw.entry), 0), el1: El1SysRegs::reset() });
        }
    }

    fn run_sp(&mut self, index: usize, ctx: usize, answer: Option<&Regs>) -> SpExit {
        let dead = SpExit::Fault { esr: 0, far: 0, elr: 0, ipa: None };
        let Some(hw) = self.sps.get(index).copied().flatten() else { return dead };
        let Some(slot) = VCPUS.get(index).and_then(|c| c.get(ctx)) else { return dead };
        let mut guard = slot.lock();
        let Some(v) = guard.as_mut() else { return dead };
        if let Some(a) = answer {
            v.regs.x[..18].copy_from_slice(a);
        }
        // EL1 registers are not banked by security state and EL3 does not
        // switch them when the SPMC is at S-EL2: keep the Normal world's.
        let mut ns_el1 = El1SysRegs::default();
        ns_el1.save();
        // SAFETY: the SP's EL1 state, Stage-2 and VMID confine it to its region.
        // VMPIDR_EL2: what the context reads as MPIDR_EL1 — RES1 bit 31 and
        // Aff0 = its context index, so an MP SP can tell its contexts apart.
        unsafe {
            v.el1.restore();
            core::arch::asm!("msr S3_4_C2_C6_0, {}" /* VSTTBR_EL2 */, in(reg) hw.s2_root, options(nostack, preserves_flags));
            shared::write_sysreg!(vttbr_el2, self.ns_root | (hw.vmid << 48));
            shared::write_sysreg!(vmpidr_el2, (1u64 << 31) | ctx as u64);
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
            // SAFETY: as above; interrupts are masked at EL2 (DAIF from the SPMD).
            let vector = unsafe { shared::arch::enter_guest(&mut v.regs) };
            let esr = shared::read_sysreg!(esr_el2);
            match vector {
                8 => match esr >> 26 {
                    EC_SMC64 => {
                        // A trapped SMC leaves ELR_EL2 at the SMC itself (DDI0487 D1.x).
                        v.regs.elr += 4;
                        break SpExit::Call(call_regs(&v.regs));
                    }
                    EC_HVC64 => break SpExit::Call(call_regs(&v.regs)),
                    _ => break fault(esr, v.regs.elr),
                },
                // An interrupt while HCR_EL2.IMO/FMO are clear cannot be ours: resume.
                9 | 10 => continue,
                _ => break fault(esr, v.regs.elr),
            }
        };
        v.el1.save();
        // SAFETY: back to the Normal world's EL1 state saved above.
        unsafe { ns_el1.restore() };
        exit
    }

    fn sp_log(&mut self, prefix: &str, line: &str) {
        shared::println!("[{}] {}", prefix, line);
    }
}

fn call_regs(g: &GuestRegs) -> Regs {
    let mut r = [0; 18];
    r.copy_from_slice(&g.x[..18]);
    r
}
