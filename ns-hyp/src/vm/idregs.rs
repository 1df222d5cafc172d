//! The CPU features a guest is told about.  HCR_EL2.TID3 traps its reads of
//! the ID group 3 registers (op0=3, op1=0, CRn=0, CRm=1..7; DDI0487 D19.2);
//! we return the hardware value with the features ns-hyp does not virtualise
//! hidden, so an unmodified kernel never touches their registers:
//! SME, AMU, MPAM, RAS, SPE/TRBE/BRBE/trace, nested virtualisation, and the
//! features that need HCRX_EL2/FGT enables (TCR2, S1PIE/POE, MOPS, LS64, GCS,
//! NMI, THE, FPMR).  Pointer authentication is shown as the hardware has it:
//! ns-hyp switches each vCPU's keys (`shared::arch::PacKeys`) and does not
//! trap their use.  PMUv3, SVE and MTE are shown where [`Offered`] says so:
//! ns-hyp switches their state per vCPU (`guest::cpu_state`).

const fn f(shift: u32) -> u64 {
    0xf << shift
}

/// ID_AA64PFR0_EL1.SVE, bits [35:32].
const PFR0_SVE: u32 = 32;
/// ID_AA64PFR1_EL1.MTE, bits [11:8], and MTE_frac, bits [43:40].
const PFR1_MTE: u32 = 8;
const PFR1_MTE_FRAC: u32 = 40;
/// ID_AA64DFR0_EL1.PMUVer, bits [11:8].
const DFR0_PMUVER: u32 = 8;

/// The largest SVE vector length ns-hyp saves per vCPU, in bytes (2048
/// bits, the architectural maximum, DDI0487 "ZCR_EL2.LEN").
pub const SVE_MAX_VL_BYTES: usize = 256;

/// The optional CPU features ns-hyp virtualises on this CPU.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Offered {
    /// PMUv3 (PMUVer 1..=0xe; 0xf is an IMPLEMENTATION DEFINED PMU, not PMUv3).
    pub pmu: bool,
    /// SVE, with vector lengths up to [`SVE_MAX_VL_BYTES`].
    pub sve: bool,
    /// MTE with Allocation Tag storage (FEAT_MTE2, ID_AA64PFR1_EL1.MTE >= 2):
    /// FEAT_MTE alone (EL0 instructions, no tags) is of no use to a kernel.
    pub mte: bool,
}

impl Offered {
    /// What to offer on a CPU with these ID register values; `sve_vl_bytes`
    /// is the vector length EL2 runs with at ZCR_EL2.LEN = 0xf (the CPU's
    /// largest), 0 without SVE.
    pub fn from_hw(pfr0: u64, pfr1: u64, dfr0: u64, sve_vl_bytes: usize) -> Self {
        let field = |v: u64, shift: u32| (v >> shift) & 0xf;
        let pmuver = field(dfr0, DFR0_PMUVER);
        Offered {
            pmu: (1..0xf).contains(&pmuver),
            sve: field(pfr0, PFR0_SVE) != 0 && (16..=SVE_MAX_VL_BYTES).contains(&sve_vl_bytes),
            mte: field(pfr1, PFR1_MTE) >= 2,
        }
    }
}

/// Fields kept from the hardware value, per register (op2 index within CRm).
/// A zero field means "not implemented" for every field we clear.
pub fn sanitize(crm: u8, op2: u8, hw: u64, offered: Offered) -> u64 {
    let keep = |yes: bool, mask: u64| if yes { mask } else { 0 };
    match (crm, op2) {
        // ID_AA64PFR0_EL1: EL0, EL1, FP, AdvSIMD, GIC, CSV2, CSV3, DIT, and SVE
        // where offered; EL2/EL3 reported absent.
        (4, 0) => hw & (f(0) | f(4) | f(16) | f(20) | f(24) | f(48) | f(56) | f(60) | keep(offered.sve, f(PFR0_SVE))),
        // ID_AA64PFR1_EL1: BT, SSBS, CSV2_frac, and MTE/MTE_frac where offered.
        (4, 1) => hw & (f(0) | f(4) | f(32) | keep(offered.mte, f(PFR1_MTE) | f(PFR1_MTE_FRAC))),
        // ID_AA64ZFR0_EL1: the SVE instructions, where SVE is offered.
        (4, 4) => hw & keep(offered.sve, u64::MAX),
        // PFR2, SMFR0, FPFR0 and the rest of CRm=4.
        (4, _) => 0,
        // ID_AA64DFR0_EL1: DebugVer, BRPs, WRPs, CTX_CMPs, DoubleLock, and
        // PMUVer where offered.
        (5, 0) => hw & (f(0) | f(12) | f(20) | f(28) | f(36) | keep(offered.pmu, f(DFR0_PMUVER))),
        (5, _) => 0,
        (6, 0) => hw,
        // ID_AA64ISAR1_EL1: without XS, LS64.
        (6, 1) => hw & !(f(56) | f(60)),
        // ID_AA64ISAR2_EL1: RPRES, GPA3/APA3 (PAC with QARMA3), BC, CLRBHB, CSSC only.
        (6, 2) => hw & (f(4) | f(8) | f(12) | f(20) | f(28) | f(52)),
        (6, _) => 0,
        // ID_AA64MMFR0_EL1: PARange 40 bits (our Stage-2 covers 39).
        (7, 0) => (hw & !0xf) | 2,
        // ID_AA64MMFR1_EL1: without VH, LO, HCX, TIDCP1.
        (7, 1) => hw & !(f(8) | f(16) | f(40) | f(52)),
        // ID_AA64MMFR2_EL1: without NV.
        (7, 2) => hw & !f(24),
        (7, _) => 0,
        // AArch32 ID registers (CRm 1..3): as the hardware says.
        _ => hw,
    }
}

#[cfg(test)]
mod tests {
    use super::{sanitize, Offered};

    const NONE: Offered = Offered { pmu: false, sve: false, mte: false };
    const ALL: Offered = Offered { pmu: true, sve: true, mte: true };

    #[test]
    fn hides_what_we_do_not_virtualise() {
        // PFR0 with SVE (bits 35:32), AMU (47:44), RAS (31:28), EL2 (11:8) and FP/AdvSIMD/GIC.
        let pfr0 = 0x1_0001_1111_0022u64 | 1 << 32 | 1 << 44 | 1 << 28 | 1 << 8 | 1 << 24;
        let s = sanitize(4, 0, pfr0, NONE);
        assert_eq!(s & (0xf << 32), 0);
        assert_eq!(s & (0xf << 44), 0);
        assert_eq!(s & (0xf << 28), 0);
        assert_eq!(s & (0xf << 8), 0);
        assert_eq!(s & (0xf << 24), 1 << 24, "GIC system registers stay");
        // PFR1: SME (27:24), MTE (11:8) go; BT stays.
        assert_eq!(sanitize(4, 1, 1 << 24 | 1 << 8 | 1, NONE), 1);
        assert_eq!(sanitize(4, 4, u64::MAX, NONE), 0, "ZFR0");
        // ISAR1: PAC fields (APA, API, GPA, GPI) stay, LS64 and XS go.
        assert_eq!(sanitize(6, 1, 0x1100_0000_1111_1111, NONE), 0x1111_1111);
        // ISAR2: APA3/GPA3 stay, MOPS (19:16) goes.
        assert_eq!(sanitize(6, 2, 0x1_1100, NONE), 0x1100);
        assert_eq!(sanitize(7, 0, 0x5, NONE) & 0xf, 2);
        assert_eq!(sanitize(7, 3, u64::MAX, NONE), 0, "MMFR3: TCR2, S1PIE, ...");
        assert_eq!(sanitize(5, 0, 0x0000_0000_0000_0f00, NONE), 0, "PMUVer");
        assert_eq!(sanitize(2, 0, 0x1234, NONE), 0x1234, "AArch32 ID_ISAR0");
    }

    #[test]
    fn shows_what_is_offered_and_nothing_more() {
        let pfr0 = 1u64 << 32 | 1 << 44 | 1 << 16;
        assert_eq!(sanitize(4, 0, pfr0, ALL), 1 << 32 | 1 << 16, "SVE shown, AMU still hidden");
        // PFR1: MTE 3 and MTE_frac shown, SME (27:24) still hidden.
        assert_eq!(sanitize(4, 1, 3 << 8 | 1 << 24 | 1 << 40, ALL), 3 << 8 | 1 << 40);
        assert_eq!(sanitize(4, 4, 0x1234, ALL), 0x1234, "ZFR0 as the hardware");
        assert_eq!(sanitize(4, 5, u64::MAX, ALL), 0, "SMFR0 stays hidden");
        // DFR0: PMUVer (11:8) shown, PMSVer (SPE, 35:32) hidden.
        assert_eq!(sanitize(5, 0, 0x6 << 8 | 1 << 32, ALL), 0x6 << 8);
    }

    #[test]
    fn offers_only_what_the_cpu_has_and_ns_hyp_can_switch() {
        let o = Offered::from_hw(1 << 32, 2 << 8, 6 << 8, 256);
        assert_eq!(o, ALL);
        assert!(!Offered::from_hw(0, 0, 0xf << 8, 0).pmu, "IMPLEMENTATION DEFINED PMU");
        assert!(!Offered::from_hw(0, 0, 0, 0).pmu, "no PMU");
        assert!(!Offered::from_hw(0, 1 << 8, 0, 0).mte, "FEAT_MTE without tag storage");
        assert!(!Offered::from_hw(1 << 32, 0, 0, 512).sve, "a vector longer than our save area");
        assert!(!Offered::from_hw(1 << 32, 0, 0, 0).sve, "no vector length measured");
        assert!(!Offered::from_hw(0, 0, 0, 256).sve);
    }
}
