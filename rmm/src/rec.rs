//! The Realm Execution Context (DEN0137 RMM 1.0, A2.3 "Realm Execution
//! Context"), kept in the REC granule itself: the vCPU's registers while it
//! is not running and the requests it has pending with the Host.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// EL1 system registers saved per REC, in `shared::arch::El1SysRegs` field order.
pub const NUM_SYSREGS: usize = 26;

/// What a REC waits for from the Host (at most one at a time).
pub mod pending {
    pub const NONE: u64 = 0;
    /// RSI_IPA_STATE_SET: a RIPAS change ([ripas_base, ripas_top) to ripas_value).
    pub const RIPAS: u64 = 1;
    /// RSI_HOST_CALL: the RsiHostCall at `host_call` (a PA).
    pub const HOST_CALL: u64 = 2;
    /// A PSCI call forwarded to the Host (`psci_fid`).
    pub const PSCI: u64 = 3;
    /// An emulatable MMIO read into x[`mmio_reg`].
    pub const MMIO_READ: u64 = 4;
    /// An emulatable MMIO write (only the PC advances).
    pub const MMIO_WRITE: u64 = 5;
    /// A trapped system register read (MRS) into x[`mmio_reg`]: the Host's
    /// value comes in RmiRecEnter.gprs[0].
    pub const SYSREG_READ: u64 = 6;
    /// A trapped system register write (MSR; e.g. ICC_SGI1R_EL1, which
    /// HCR_EL2.IMO traps): the value went out in RmiRecExit.gprs[0].
    pub const SYSREG_WRITE: u64 = 7;
}

/// CNTx_CTL_EL0 ENABLE, IMASK, ISTATUS (DDI0487, CNTV_CTL_EL0).
const CNT_CTL_ENABLE: u64 = 1 << 0;
const CNT_CTL_IMASK: u64 = 1 << 1;
const CNT_CTL_ISTATUS: u64 = 1 << 2;

/// Whether an EL1 timer's output is asserted: enabled, condition met, not masked.
pub fn timer_asserted(ctl: u64) -> bool {
    ctl & (CNT_CTL_ENABLE | CNT_CTL_IMASK | CNT_CTL_ISTATUS) == CNT_CTL_ENABLE | CNT_CTL_ISTATUS
}

/// CNTHCTL_EL2.CNTVMASK / CNTPMASK (FEAT_RME, DDI0487 CNTHCTL_EL2).
pub const CNTHCTL_CNTVMASK: u64 = 1 << 18;
pub const CNTHCTL_CNTPMASK: u64 = 1 << 19;

#[repr(C, align(16))]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Rec {
    /// PA of the owning RD.
    pub owner: u64,
    pub mpidr: u64,
    /// RecIndex within the Realm.
    pub index: u64,
    /// 1 when runnable (DEN0137 RecRunnable).
    pub runnable: u64,
    /// 1 while a CPU runs it (RMI_REC_ENTER in progress): other commands
    /// that find it running fail with RMI_ERROR_REC.
    pub running: u64,
    pub x: [u64; 31],
    pub pc: u64,
    pub pstate: u64,
    pub fpsr: u64,
    pub fpcr: u64,
    pub q: [u128; 32],
    pub sysregs: [u64; NUM_SYSREGS],
    pub cntp_ctl: u64,
    pub cntp_cval: u64,
    /// GICv3 virtual CPU interface state.
    pub gic_hcr: u64,
    pub gic_vmcr: u64,
    pub gic_lrs: [u64; 16],
    /// ICH_AP0R<n>_EL2 / ICH_AP1R<n>_EL2: the active priorities of the
    /// REC's virtual CPU interface (IHI0069H; up to 4 each, ICH_VTR_EL2.PREbits).
    /// Part of the REC's GIC state that the RMM keeps and the Host never
    /// sees (DEN0137 RMM 1.0, "REC entry" / "REC exit": RmiRecEnter/RmiRecExit
    /// carry only HCR, LRs, VMCR and MISR).  Without them a REC inherited
    /// the active priority of the REC that ran before it on that CPU: an
    /// interrupt taken by REC 0 and not yet deactivated when it exited
    /// masked every interrupt of that priority or lower in REC 1.
    pub gic_ap0r: [u64; 4],
    pub gic_ap1r: [u64; 4],
    pub pending: u64,
    pub ripas_base: u64,
    pub ripas_top: u64,
    pub ripas_value: u64,
    pub ripas_destroyed: u64,
    pub host_call: u64,
    pub psci_fid: u64,
    pub psci_target: u64,
    pub mmio_reg: u64,
    /// 1 when the last exit to the Host was a Data Abort at an Unprotected
    /// IPA: only then may the Host ask for a Synchronous External Abort
    /// (RmiRecEnter.flags.inject_sea); `sea_far` is that abort's VA.
    pub sea_allowed: u64,
    pub sea_far: u64,
    /// 1 between RSI_ATTESTATION_TOKEN_INIT and the CONTINUE that hands out
    /// the token's last byte (DEN0137: the REC's attestation token state).
    pub attest_in_progress: u64,
    /// Token bytes already handed out by RSI_ATTESTATION_TOKEN_CONTINUE.
    pub attest_offset: u64,
    /// INIT's challenge: x1..x8, each little-endian, in order.
    pub attest_challenge: [u8; 64],
    /// The Realm's measurements when INIT was called (RIM, then the REMs):
    /// every part of one token shows the same values.
    pub attest_measurements: [[u8; 64]; 5],
    /// Keeps the size a multiple of the 16-byte alignment (no padding for zerocopy).
    pub _res_attest: u64,
}

const _: () = assert!(core::mem::size_of::<Rec>() <= 4096);

impl Rec {
    /// The REC's timer outputs as last saved: (virtual, physical) asserted.
    pub fn timers_asserted(&self) -> (bool, bool) {
        (timer_asserted(self.sysregs[Self::CNTV_CTL]), timer_asserted(self.cntp_ctl))
    }

    /// CNTHCTL_EL2's timer masks while this REC runs: an asserted timer
    /// output is masked at EL2, so it does not exit the Realm again and again
    /// while the Host's virtual interrupt for it is pending; an unasserted one
    /// is not, so its next assertion exits the Realm (to the Host, which
    /// injects the interrupt).  What TF-RMM does (`check_pending_timers`).
    pub fn timer_masks(&self) -> u64 {
        let (v, p) = self.timers_asserted();
        (if v { CNTHCTL_CNTVMASK } else { 0 }) | (if p { CNTHCTL_CNTPMASK } else { 0 })
    }
}

/// HCRX_EL2.MSCEn (DDI0487, HCRX_EL2): the FEAT_MOPS memory copy and set
/// instructions (CPYP/CPYM/CPYE, SETP/...) are UNDEFINED at EL1 and EL0
/// while EL2 is enabled and this bit is 0.
pub const HCRX_MSCEN: u64 = 1 << 11;

/// HCRX_EL2 while a REC runs, from ID_AA64MMFR1_EL1 and ID_AA64ISAR2_EL1;
/// None without FEAT_HCX (no HCRX_EL2 to write).  A Realm reads the ID
/// registers as the hardware has them (the RMM does not trap them), so what
/// they show must work: with FEAT_MOPS, MSCEn.  Without it Linux 7.3, seeing
/// "Memory Copy and Memory Set instructions", patched its memcpy/memmove to
/// CPYP/CPYM/CPYE and both CPUs of the Realm died on an Undefined
/// Instruction in memmove (in the timer interrupt, each waiting for the
/// other's die_lock).
pub fn realm_hcrx(mmfr1: u64, isar2: u64) -> Option<u64> {
    let hcx = (mmfr1 >> 40) & 0xf != 0;
    let mops = (isar2 >> 16) & 0xf != 0;
    hcx.then_some(if mops { HCRX_MSCEN } else { 0 })
}

/// ICH_AP0R<n>_EL2 / ICH_AP1R<n>_EL2 registers per group for `prebits`
/// preemption bits (IHI0069H, ICH_VTR_EL2.PREbits + 1): 5 → 1, 6 → 2, 7 → 4.
pub fn aprs_for_prebits(prebits: usize) -> usize {
    match prebits {
        7.. => 4,
        6 => 2,
        _ => 1,
    }
}

/// SPSR for a REC's first entry: AArch64 EL1h, DAIF masked (DEN0137 "REC
/// initial state" asks for EL1h with exceptions masked).
pub const INITIAL_PSTATE: u64 = 0x3c5;

/// SCTLR_EL1 reset value: MMU and caches off, RES1 bits (DDI0487, the register's own description).
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;
/// CPACR_EL1 FPEN = 0b11: FP/SIMD not trapped.
pub const CPACR_EL1_FPEN: u64 = 3 << 20;

/// RecIndex from an MPIDR (DEN0137 "MPIDR_EL1 of a REC"): Aff0[3:0] + Aff1,
/// Aff2, Aff3 above it; other bits must be zero.
pub fn mpidr_to_index(mpidr: u64) -> Option<u64> {
    const AFF: u64 = 0xff_00ff_ff0f;
    if mpidr & !AFF != 0 {
        return None;
    }
    let aff0 = mpidr & 0xf;
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    Some(aff0 | aff1 << 4 | aff2 << 12 | aff3 << 20)
}

impl Rec {
    /// Index in `sysregs` of the registers the RMM itself sets.
    pub const SCTLR: usize = 0;
    pub const VBAR: usize = 6;
    pub const ELR: usize = 9;
    pub const SPSR: usize = 10;
    pub const ESR: usize = 11;
    pub const FAR: usize = 12;
    pub const CPACR: usize = 19;
    pub const CNTV_CTL: usize = 24;
    pub const CNTV_CVAL: usize = 25;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcrx_for_a_realm() {
        assert_eq!(realm_hcrx(0, 1 << 16), None, "no FEAT_HCX: HCRX_EL2 does not exist");
        assert_eq!(realm_hcrx(1 << 40, 0), Some(0));
        assert_eq!(realm_hcrx(1 << 40, 1 << 16), Some(HCRX_MSCEN));
        assert_eq!(realm_hcrx(2 << 40, 0xf << 12), Some(0), "other ISAR2 fields do not count");
    }

    #[test]
    fn active_priority_registers() {
        assert_eq!(aprs_for_prebits(5), 1);
        assert_eq!(aprs_for_prebits(6), 2);
        assert_eq!(aprs_for_prebits(7), 4);
        assert!(aprs_for_prebits(8) <= 4, "never more than the REC keeps");
    }

    #[test]
    fn mpidr_encoding() {
        assert_eq!(mpidr_to_index(0), Some(0));
        assert_eq!(mpidr_to_index(3), Some(3));
        assert_eq!(mpidr_to_index(0x100), Some(16));
        assert_eq!(mpidr_to_index(0x10), None);
        assert_eq!(mpidr_to_index(1 << 31), None);
    }
}
