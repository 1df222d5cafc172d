//! The CPU features a guest is told about.  HCR_EL2.TID3 traps its reads of
//! the ID group 3 registers (op0=3, op1=0, CRn=0, CRm=1..7; DDI0487 D19.2);
//! we return the hardware value with the features ns-hyp does not virtualise
//! (yet) hidden, so an unmodified kernel never touches their registers:
//! SVE/SME (state we do not switch), MTE, AMU, MPAM, RAS,
//! SPE/TRBE/BRBE/PMU/trace, nested
//! virtualisation, and the features that need HCRX_EL2/FGT enables
//! (TCR2, S1PIE/POE, MOPS, LS64, GCS, NMI, THE, FPMR).  Pointer
//! authentication is shown as the hardware has it: ns-hyp switches each
//! vCPU's keys (`shared::arch::PacKeys`) and does not trap their use.

/// Fields kept from the hardware value, per register (op2 index within CRm).
/// A zero field means "not implemented" for every field we clear.
pub fn sanitize(crm: u8, op2: u8, hw: u64) -> u64 {
    const fn f(shift: u32) -> u64 {
        0xf << shift
    }
    match (crm, op2) {
        // ID_AA64PFR0_EL1: EL0, EL1, FP, AdvSIMD, GIC, CSV2, CSV3, DIT; EL2/EL3 reported absent.
        (4, 0) => hw & (f(0) | f(4) | f(16) | f(20) | f(24) | f(48) | f(56) | f(60)),
        // ID_AA64PFR1_EL1: BT, SSBS, CSV2_frac.
        (4, 1) => hw & (f(0) | f(4) | f(32)),
        // PFR2, ZFR0, SMFR0, FPFR0 and the rest of CRm=4.
        (4, _) => 0,
        // ID_AA64DFR0_EL1: DebugVer, BRPs, WRPs, CTX_CMPs, DoubleLock.
        (5, 0) => hw & (f(0) | f(12) | f(20) | f(28) | f(36)),
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
    use super::sanitize;

    #[test]
    fn hides_what_we_do_not_virtualise() {
        // PFR0 with SVE (bits 35:32), AMU (47:44), RAS (31:28), EL2 (11:8) and FP/AdvSIMD/GIC.
        let pfr0 = 0x1_0001_1111_0022u64 | 1 << 32 | 1 << 44 | 1 << 28 | 1 << 8 | 1 << 24;
        let s = sanitize(4, 0, pfr0);
        assert_eq!(s & (0xf << 32), 0);
        assert_eq!(s & (0xf << 44), 0);
        assert_eq!(s & (0xf << 28), 0);
        assert_eq!(s & (0xf << 8), 0);
        assert_eq!(s & (0xf << 24), 1 << 24, "GIC system registers stay");
        // PFR1: SME (27:24), MTE (11:8) go; BT stays.
        assert_eq!(sanitize(4, 1, 1 << 24 | 1 << 8 | 1), 1);
        assert_eq!(sanitize(4, 4, u64::MAX), 0, "ZFR0");
        // ISAR1: PAC fields (APA, API, GPA, GPI) stay, LS64 and XS go.
        assert_eq!(sanitize(6, 1, 0x1100_0000_1111_1111), 0x1111_1111);
        // ISAR2: APA3/GPA3 stay, MOPS (19:16) goes.
        assert_eq!(sanitize(6, 2, 0x1_1100), 0x1100);
        assert_eq!(sanitize(7, 0, 0x5) & 0xf, 2);
        assert_eq!(sanitize(7, 3, u64::MAX), 0, "MMFR3: TCR2, S1PIE, ...");
        assert_eq!(sanitize(5, 0, 0x0000_0000_0000_0f00), 0, "PMUVer");
        assert_eq!(sanitize(2, 0, 0x1234), 0x1234, "AArch32 ID_ISAR0");
    }
}
