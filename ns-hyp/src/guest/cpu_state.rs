//! Per-vCPU state of the optional CPU features ns-hyp offers its guests
//! (`vm::idregs::Offered`): the PMUv3 registers, the MTE EL1 registers, and
//! the SVE controls.  Switched only when a physical CPU changes vCPU (`load`,
//! `save` in `guest`); a vCPU alone on its CPU keeps them in the hardware.
//!
//! Registers named by encoding are those the assembler knows only with a
//! feature enabled: GCR_EL1 S3_0_C1_C0_6, RGSR_EL1 S3_0_C1_C0_5, TFSR_EL1
//! S3_0_C5_C6_0, TFSRE0_EL1 S3_0_C5_C6_1 (FEAT_MTE2), ZCR_EL1 S3_0_C1_C2_0,
//! ZCR_EL2 S3_4_C1_C2_0 (FEAT_SVE) (DDI0487 D19).

use shared::{read_sysreg, write_sysreg};

/// The event counters a PMUv3 can have (PMCR_EL0.N is at most 31).
const MAX_COUNTERS: usize = 31;
/// PMCR_EL0 bits that act when written (P: reset event counters, C: reset
/// the cycle counter) and must not be replayed on restore.
const PMCR_P_C: u64 = 0b110;
/// PMCR_EL0.E, bit 0: the counters are enabled.
const PMCR_E: u64 = 1;
/// Every counter's bit in PMCNTEN*/PMINTEN*/PMOVS*: event counters and C (bit 31).
const ALL_COUNTERS: u64 = 0xffff_ffff;

/// PMUv3 state of one vCPU (DDI0487 D13, "The Performance Monitors Extension").
/// MDCR_EL2.HPMN = PMCR_EL0.N gives the guest every counter.
#[derive(Clone, Copy)]
pub struct PmuRegs {
    pmcr: u64,
    selr: u64,
    cnten: u64,
    inten: u64,
    ovs: u64,
    userenr: u64,
    ccfiltr: u64,
    ccntr: u64,
    evcntr: [u64; MAX_COUNTERS],
    evtyper: [u64; MAX_COUNTERS],
}

impl PmuRegs {
    /// A vCPU's PMU at reset: all counters disabled and zero.
    pub const fn reset() -> Self {
        PmuRegs { pmcr: 0, selr: 0, cnten: 0, inten: 0, ovs: 0, userenr: 0, ccfiltr: 0, ccntr: 0, evcntr: [0; MAX_COUNTERS], evtyper: [0; MAX_COUNTERS] }
    }

    /// The number of event counters (PMCR_EL0.N).
    pub fn counters() -> usize {
        (((read_sysreg!(pmcr_el0) >> 11) & 0x1f) as usize).min(MAX_COUNTERS)
    }

    /// Captures the PMU of the vCPU being descheduled, then stops its
    /// counting and its overflow interrupt request, so that nothing it
    /// programmed counts or interrupts while another vCPU runs.
    pub fn save(&mut self, n: usize) {
        self.pmcr = read_sysreg!(pmcr_el0);
        self.selr = read_sysreg!(pmselr_el0);
        self.cnten = read_sysreg!(pmcntenset_el0);
        self.inten = read_sysreg!(pmintenset_el1);
        self.ovs = read_sysreg!(pmovsset_el0);
        self.userenr = read_sysreg!(pmuserenr_el0);
        self.ccfiltr = read_sysreg!(pmccfiltr_el0);
        self.ccntr = read_sysreg!(pmccntr_el0);
        for i in 0..n {
            // SAFETY: selects which event counter PMXEV* name; the vCPU's own
            // PMSELR_EL0 was saved above and is restored by `restore`.
            unsafe { write_sysreg!(pmselr_el0, i as u64) };
            shared::arch::regs::isb();
            self.evcntr[i] = read_sysreg!(pmxevcntr_el0);
            self.evtyper[i] = read_sysreg!(pmxevtyper_el0);
        }
        // SAFETY: stops the descheduled vCPU's counters and lowers the PMU's
        // interrupt request; its values are saved above.
        unsafe {
            write_sysreg!(pmcr_el0, self.pmcr & !(PMCR_E | PMCR_P_C));
            write_sysreg!(pmcntenclr_el0, ALL_COUNTERS);
            write_sysreg!(pmintenclr_el1, ALL_COUNTERS);
        }
        shared::arch::regs::isb();
    }

    /// Loads this vCPU's PMU: values first, with counting off, then the
    /// enables, so no event is counted for it before it runs.
    pub fn restore(&self, n: usize) {
        // SAFETY: every PMU register written belongs to the vCPU about to run
        // (EL2 does not use the PMU); MDCR_EL2.HPMN gives the guest all counters.
        unsafe {
            write_sysreg!(pmcr_el0, self.pmcr & !(PMCR_E | PMCR_P_C));
            write_sysreg!(pmcntenclr_el0, ALL_COUNTERS);
            write_sysreg!(pmintenclr_el1, ALL_COUNTERS);
            write_sysreg!(pmovsclr_el0, ALL_COUNTERS);
            for i in 0..n {
                write_sysreg!(pmselr_el0, i as u64);
                shared::arch::regs::isb();
                write_sysreg!(pmxevtyper_el0, self.evtyper[i]);
                write_sysreg!(pmxevcntr_el0, self.evcntr[i]);
            }
            write_sysreg!(pmccfiltr_el0, self.ccfiltr);
            write_sysreg!(pmccntr_el0, self.ccntr);
            write_sysreg!(pmselr_el0, self.selr);
            write_sysreg!(pmuserenr_el0, self.userenr);
            write_sysreg!(pmovsset_el0, self.ovs);
            write_sysreg!(pmintenset_el1, self.inten);
            write_sysreg!(pmcntenset_el0, self.cnten);
            write_sysreg!(pmcr_el0, self.pmcr & !PMCR_P_C);
        }
        shared::arch::regs::isb();
    }

    /// Whether the loaded vCPU's PMU requests its overflow interrupt now
    /// (an enabled overflow flag is set; DDI0487 D13 "PMU overflow interrupt").
    pub fn irq_asserted() -> bool {
        read_sysreg!(pmovsset_el0) & read_sysreg!(pmintenset_el1) != 0
    }
}

/// MTE's EL1 registers of one vCPU (FEAT_MTE2).  SCTLR_EL1's ATA/TCF bits
/// are switched with the other EL1 registers; tags themselves live in the
/// tag storage beside each granule and need no switching.
#[derive(Clone, Copy, Default)]
pub struct MteRegs {
    gcr: u64,
    rgsr: u64,
    tfsr: u64,
    tfsre0: u64,
}

impl MteRegs {
    pub const fn reset() -> Self {
        MteRegs { gcr: 0, rgsr: 0, tfsr: 0, tfsre0: 0 }
    }

    pub fn save(&mut self) {
        self.gcr = read_sysreg!(S3_0_C1_C0_6);
        self.rgsr = read_sysreg!(S3_0_C1_C0_5);
        self.tfsr = read_sysreg!(S3_0_C5_C6_0);
        self.tfsre0 = read_sysreg!(S3_0_C5_C6_1);
    }

    /// # Safety
    /// Only where FEAT_MTE2 is implemented, for the vCPU about to run.
    pub unsafe fn restore(&self) {
        // SAFETY: per the contract; these registers affect only EL1/EL0 tag
        // generation and the record of asynchronous tag check faults.
        unsafe {
            write_sysreg!(S3_0_C1_C0_6, self.gcr);
            write_sysreg!(S3_0_C1_C0_5, self.rgsr);
            write_sysreg!(S3_0_C5_C6_0, self.tfsr);
            write_sysreg!(S3_0_C5_C6_1, self.tfsre0);
        }
    }
}

/// CPTR_EL2 (HCR_EL2.E2H = 0 layout): RES1 bits 13:12 (TSM: SME traps
/// stay on) and 9:0, TFP (bit 10) = 0; TZ (bit 8) traps SVE and ZCR_EL1/2.
pub const CPTR_SVE_TRAPPED: u64 = 0x33ff;
pub const CPTR_SVE_ON: u64 = CPTR_SVE_TRAPPED & !(1 << 8);

/// Writes CPTR_EL2.
///
/// # Safety
/// With TZ clear, the loaded context may use SVE: its state must be saved
/// by the exit path (`GuestRegs::sve_state`) before another context runs.
pub unsafe fn set_cptr(v: u64) {
    // SAFETY: per the contract; only which FP/SVE accesses trap to EL2.
    unsafe { write_sysreg!(cptr_el2, v) };
    shared::arch::regs::isb();
}

/// Sets ZCR_EL2.LEN to its largest value (EL2 and every guest may use the
/// CPU's longest vector) and returns that vector length in bytes (RDVL at
/// EL2).  Only where FEAT_SVE is implemented; leaves SVE trapped at EL2.
pub fn sve_setup_el2() -> usize {
    let vl: u64;
    // SAFETY: SVE is implemented (the caller checked ID_AA64PFR0_EL1.SVE);
    // TZ is cleared only for these instructions, no guest runs yet.
    unsafe {
        set_cptr(CPTR_SVE_ON);
        write_sysreg!(S3_4_C1_C2_0, 0xf);
        shared::arch::regs::isb();
        core::arch::asm!(".arch_extension sve", "rdvl {}, #1", out(reg) vl, options(nomem, nostack, preserves_flags));
        set_cptr(CPTR_SVE_TRAPPED);
    }
    vl as usize
}

/// ZCR_EL1 of the loaded vCPU.  Only with CPTR_EL2.TZ clear.
pub fn read_zcr_el1() -> u64 {
    read_sysreg!(S3_0_C1_C2_0)
}

/// # Safety
/// Only with CPTR_EL2.TZ clear, for the vCPU about to run.
pub unsafe fn write_zcr_el1(v: u64) {
    // SAFETY: per the contract; ZCR_EL1 limits only EL1/EL0's vector length.
    unsafe { write_sysreg!(S3_0_C1_C2_0, v) };
}
