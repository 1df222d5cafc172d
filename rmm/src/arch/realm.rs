//! The R-EL2 world switch into a REC and back (DEN0137 RMM 1.0, A4 "Realm
//! execution"): the Host's EL1 state is set aside, the REC's loaded, its
//! Stage-2 (VTTBR/VTCR), HCR_EL2, timers and GIC virtual interface
//! installed, and `shared::arch::enter_guest` runs it until it traps.

use crate::rec::Rec;
use crate::rmi::rec::{ExitKind, RawExit, RealmCpu, RunConfig};
use shared::arch::{El1SysRegs, ExceptionKind, GuestRegs};
use shared::{read_sysreg, write_sysreg};

pub struct Cpu;

/// Number of GIC list registers (ICH_VTR_EL2.ListRegs + 1), at most 16.
fn num_lrs() -> usize {
    ((read_sysreg!(ich_vtr_el2) & 0x1f) as usize + 1).min(16)
}

macro_rules! each_lr {
    ($n:expr, $m:ident) => {
        match $n {
            0 => $m!(ich_lr0_el2), 1 => $m!(ich_lr1_el2), 2 => $m!(ich_lr2_el2), 3 => $m!(ich_lr3_el2),
            4 => $m!(ich_lr4_el2), 5 => $m!(ich_lr5_el2), 6 => $m!(ich_lr6_el2), 7 => $m!(ich_lr7_el2),
            8 => $m!(ich_lr8_el2), 9 => $m!(ich_lr9_el2), 10 => $m!(ich_lr10_el2), 11 => $m!(ich_lr11_el2),
            12 => $m!(ich_lr12_el2), 13 => $m!(ich_lr13_el2), 14 => $m!(ich_lr14_el2), _ => $m!(ich_lr15_el2),
        }
    };
}

/// Number of ICH_AP0R<n>_EL2 / ICH_AP1R<n>_EL2 registers: 1, 2 or 4 for
/// 5, 6 or 7 preemption bits (ICH_VTR_EL2.PREbits + 1, IHI0069H).
fn num_aprs() -> usize {
    crate::rec::aprs_for_prebits(((read_sysreg!(ich_vtr_el2) >> 29) & 7) as usize + 1)
}

fn read_aprs(n: usize, ap0: &mut [u64; 4], ap1: &mut [u64; 4]) {
    ap0[0] = read_sysreg!(ich_ap0r0_el2);
    ap1[0] = read_sysreg!(ich_ap1r0_el2);
    if n >= 2 {
        ap0[1] = read_sysreg!(ich_ap0r1_el2);
        ap1[1] = read_sysreg!(ich_ap1r1_el2);
    }
    if n >= 4 {
        ap0[2] = read_sysreg!(ich_ap0r2_el2);
        ap1[2] = read_sysreg!(ich_ap1r2_el2);
        ap0[3] = read_sysreg!(ich_ap0r3_el2);
        ap1[3] = read_sysreg!(ich_ap1r3_el2);
    }
}

/// Writes the active priority registers.
///
/// # Safety
/// Only while the virtual CPU interface belongs to the REC about to run
/// (or to nobody: zeroes on the way out).
unsafe fn write_aprs(n: usize, ap0: &[u64; 4], ap1: &[u64; 4]) {
    // SAFETY: ICH_AP{0,1}R<n>_EL2 exist for n < num_aprs() (IHI0069H) and are
    // writable at EL2; the caller owns the virtual CPU interface.
    unsafe {
        write_sysreg!(ich_ap0r0_el2, ap0[0]);
        write_sysreg!(ich_ap1r0_el2, ap1[0]);
        if n >= 2 {
            write_sysreg!(ich_ap0r1_el2, ap0[1]);
            write_sysreg!(ich_ap1r1_el2, ap1[1]);
        }
        if n >= 4 {
            write_sysreg!(ich_ap0r2_el2, ap0[2]);
            write_sysreg!(ich_ap1r2_el2, ap1[2]);
            write_sysreg!(ich_ap0r3_el2, ap0[3]);
            write_sysreg!(ich_ap1r3_el2, ap1[3]);
        }
    }
}

/// ICH_LR<n>_EL2.
fn read_lr(n: usize) -> u64 {
    macro_rules! rd { ($r:ident) => { read_sysreg!($r) }; }
    each_lr!(n, rd)
}

/// Writes ICH_LR<n>_EL2.
///
/// # Safety
/// Only while the list registers belong to the REC about to run (or to nobody).
unsafe fn write_lr(n: usize, v: u64) {
    macro_rules! wr {
        ($r:ident) => {
            // SAFETY: ICH_LR<n>_EL2 is writable at EL2 (GICv3 with the
            // virtual CPU interface); the caller guarantees the list
            // registers belong to the REC about to run, so no other
            // context's pending virtual interrupts are overwritten.
            unsafe { write_sysreg!($r, v) }
        };
    }
    each_lr!(n, wr)
}

/// HCR_EL2 while the RMM itself runs: RW (lower EL is AArch64), nothing trapped.
const HCR_RMM: u64 = 1 << 31;

impl RealmCpu for Cpu {
    fn run(&self, rec: &mut Rec, cfg: &RunConfig) -> RawExit {
        let mut host = El1SysRegs::default();
        host.save();
        let host_cntp = (read_sysreg!(cntp_ctl_el0), read_sysreg!(cntp_cval_el0));
        let mut g = GuestRegs::new();
        g.x = rec.x;
        g.elr = rec.pc;
        g.spsr = rec.pstate;
        g.q = rec.q;
        g.fpsr = rec.fpsr;
        g.fpcr = rec.fpcr;
        let lrs = num_lrs();
        let aprs = num_aprs();
        // ID_AA64MMFR1_EL1 and ID_AA64ISAR2_EL1 by encoding.
        let hcrx = crate::rec::realm_hcrx(read_sysreg!(s3_0_c0_c7_1), read_sysreg!(s3_0_c0_c6_2));
        // SAFETY: the REC's own EL1 state and the Realm's Stage-2 (RTTs the RMM
        // validated) confine it to its memory; interrupts are masked at EL2.
        let vector = unsafe {
            // Straight from the REC's words: a copy into an El1SysRegs first cost ~150 instructions per entry.
            El1SysRegs::restore_words(&rec.sysregs);
            write_sysreg!(cntp_cval_el0, rec.cntp_cval);
            write_sysreg!(cntp_ctl_el0, rec.cntp_ctl);
            write_sysreg!(vttbr_el2, cfg.vttbr);
            write_sysreg!(vtcr_el2, cfg.vtcr);
            write_sysreg!(vmpidr_el2, rec.mpidr | 1 << 31);
            write_sysreg!(vpidr_el2, read_sysreg!(midr_el1));
            write_sysreg!(cntvoff_el2, 0);
            // CNTHCTL_EL2 (E2H = 0): EL1PCTEN, EL1PCEN: the EL1 physical counter and timer;
            // an asserted timer masked (`Rec::timer_masks`).
            write_sysreg!(cnthctl_el2, 0b11 | rec.timer_masks());
            // GICv3 system register interface at EL2 (SRE, Enable for EL1).
            write_sysreg!(icc_sre_el2, 0b1001);
            core::arch::asm!("isb", options(nostack));
            for n in 0..lrs {
                write_lr(n, rec.gic_lrs[n]);
            }
            write_sysreg!(ich_vmcr_el2, rec.gic_vmcr);
            // The REC's own active priorities (`Rec::gic_ap0r`), not the last REC's.
            write_aprs(aprs, &rec.gic_ap0r, &rec.gic_ap1r);
            write_sysreg!(ich_hcr_el2, rec.gic_hcr);
            write_sysreg!(hcr_el2, cfg.hcr);
            if let Some(v) = hcrx {
                // HCRX_EL2 (S3_4_C1_C2_2): EL3 sets SCR_EL3.HXEn for every world with FEAT_HCX.
                write_sysreg!(s3_4_c1_c2_2, v);
            }
            core::arch::asm!("isb", options(nostack));
            shared::split::inner_begin();
            let vector = shared::arch::enter_guest(&mut g);
            shared::split::inner_end();
            vector
        };
        let (esr, far, hpfar) = (read_sysreg!(esr_el2), read_sysreg!(far_el2), read_sysreg!(hpfar_el2));
        let misr = read_sysreg!(ich_misr_el2);
        for n in 0..lrs {
            rec.gic_lrs[n] = read_lr(n);
        }
        rec.gic_hcr = read_sysreg!(ich_hcr_el2);
        rec.gic_vmcr = read_sysreg!(ich_vmcr_el2);
        read_aprs(aprs, &mut rec.gic_ap0r, &mut rec.gic_ap1r);
        rec.x = g.x;
        rec.pc = g.elr;
        rec.pstate = g.spsr;
        rec.q = g.q;
        rec.fpsr = g.fpsr;
        rec.fpcr = g.fpcr;
        El1SysRegs::save_words(&mut rec.sysregs);
        rec.cntp_ctl = read_sysreg!(cntp_ctl_el0);
        rec.cntp_cval = read_sysreg!(cntp_cval_el0);
        // SAFETY: back to the Host's EL1 state; nothing runs at EL1 until the Host does.
        unsafe {
            write_sysreg!(ich_hcr_el2, 0);
            // Nothing of the Realm's active priorities stays behind for the Host.
            write_aprs(aprs, &[0; 4], &[0; 4]);
            write_sysreg!(cnthctl_el2, 0b11);
            write_sysreg!(hcr_el2, HCR_RMM);
            if hcrx.is_some() {
                write_sysreg!(s3_4_c1_c2_2, 0);
            }
            write_sysreg!(cntp_ctl_el0, host_cntp.0);
            write_sysreg!(cntp_cval_el0, host_cntp.1);
            host.restore();
        }
        let (kind, _) = ExceptionKind::from_vector(vector);
        let kind = match kind {
            ExceptionKind::Sync => ExitKind::Sync,
            ExceptionKind::Irq => ExitKind::Irq,
            ExceptionKind::Fiq => ExitKind::Fiq,
            ExceptionKind::SError => ExitKind::SError,
        };
        RawExit { kind, esr, far, hpfar, gic_misr: misr }
    }

    fn invalidate_ipa(&self, vttbr: u64, ipa: u64) {
        // SAFETY: TLB maintenance for the Realm's VMID only; VTTBR is ours and restored.
        unsafe {
            let prev = read_sysreg!(vttbr_el2);
            write_sysreg!(vttbr_el2, vttbr);
            core::arch::asm!("isb", "dsb ishst", "tlbi ipas2e1is, {ipa}", "dsb ish", "tlbi vmalle1is", "dsb ish", "isb",
                ipa = in(reg) ipa >> 12, options(nostack));
            write_sysreg!(vttbr_el2, prev);
        }
    }

    fn invalidate_vmid(&self, vmid: u64) {
        // SAFETY: as above.
        unsafe {
            let prev = read_sysreg!(vttbr_el2);
            write_sysreg!(vttbr_el2, vmid << 48);
            core::arch::asm!("isb", "dsb ishst", "tlbi vmalls12e1is", "dsb ish", "isb", options(nostack));
            write_sysreg!(vttbr_el2, prev);
        }
    }
}
