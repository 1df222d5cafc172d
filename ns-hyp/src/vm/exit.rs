//! Guest exits by exception class: ESR_EL2 decoded into named classes
//! (DDI0487, ESR_EL2.EC) and the table from a class to its handler that both
//! the exit statistics and the handling read, the shape of KVM's
//! `arm_exit_handlers[]`.  The handlers themselves touch the hardware and
//! live in `crate::guest`; the table type, the decode and the statistics
//! rule are plain logic, tested here.

use super::stats::ExitKind;

/// ESR_EL2.EC values ns-hyp names (DDI0487, ESR_EL2 "EC, bits [31:26]").
/// Guests run in AArch64 state only (HCR_EL2.RW = 1), so the AArch32 classes
/// are not listed: like every class without a row, they reach the
/// table's fallback handler.
#[allow(clippy::upper_case_acronyms)] // the architecture's names
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExceptionClass {
    /// Unknown reason.
    Unknown = 0x00,
    /// Trapped WFI, WFE, WFIT or WFET.
    WFx = 0x01,
    /// Access to SME, SVE, Advanced SIMD or floating-point functionality.
    FPAccess = 0x07,
    /// Illegal Execution state.
    IllegalState = 0x0e,
    /// SVC in AArch64 state.
    SVC64 = 0x15,
    /// HVC in AArch64 state.
    HVC64 = 0x16,
    /// SMC in AArch64 state (trapped by HCR_EL2.TSC).
    SMC64 = 0x17,
    /// Trapped MSR, MRS or System instruction in AArch64 state.
    SysReg = 0x18,
    /// Access to SVE functionality trapped by CPTR_EL2.TZ.
    SVEAccess = 0x19,
    /// Instruction Abort from a lower Exception level.
    InstrAbortLowerEL = 0x20,
    /// Instruction Abort taken without a change in Exception level.
    InstrAbortSameEL = 0x21,
    /// PC alignment fault.
    PCAlignment = 0x22,
    /// Data Abort from a lower Exception level.
    DataAbortLowerEL = 0x24,
    /// Data Abort taken without a change in Exception level.
    DataAbortSameEL = 0x25,
    /// SP alignment fault.
    SPAlignment = 0x26,
    /// SError exception.
    SError = 0x2f,
    /// BRK in AArch64 state.
    BRK64 = 0x3c,
}

impl ExceptionClass {
    const ALL: [ExceptionClass; 17] = [
        Self::Unknown, Self::WFx, Self::FPAccess, Self::IllegalState, Self::SVC64, Self::HVC64, Self::SMC64, Self::SysReg, Self::SVEAccess,
        Self::InstrAbortLowerEL, Self::InstrAbortSameEL, Self::PCAlignment, Self::DataAbortLowerEL, Self::DataAbortSameEL,
        Self::SPAlignment, Self::SError, Self::BRK64,
    ];

    /// The named class of a raw ESR_EL2.EC, if it has a name here.
    pub fn from_ec(ec: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|&c| c as u8 == ec)
    }

    /// This class as ESR_ELx.EC, shifted into place (for a syndrome ns-hyp injects).
    pub const fn esr(self) -> u64 {
        (self as u64) << ESR_EC_SHIFT
    }
}

const ESR_EC_SHIFT: u32 = 26;
/// ESR_ELx.IL: a 32-bit instruction trapped.
pub const ESR_IL: u64 = 1 << 25;

/// An ESR_EL2 value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esr(pub u64);

impl Esr {
    /// ESR_EL2.EC, the raw 6-bit class (also those without a name here).
    pub fn ec(self) -> u8 {
        ((self.0 >> ESR_EC_SHIFT) & 0x3f) as u8
    }

    /// ESR_EL2.ISS, bits [24:0].
    pub fn iss(self) -> u64 {
        self.0 & 0x1ff_ffff
    }
}

/// Which exit counter an exit of one class goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStat {
    Kind(ExitKind),
    /// WFx: ISS.TI bit 0 tells WFE (1) from WFI (0).
    WfiOrWfe,
    /// The handler counts it (a data abort is counted by the device it hits).
    ByHandler,
}

impl ExitStat {
    /// The counter for an exit with this ISS, if the table counts it.
    pub fn kind(self, iss: u64) -> Option<ExitKind> {
        match self {
            ExitStat::Kind(k) => Some(k),
            ExitStat::WfiOrWfe => Some(if iss & 1 == 0 { ExitKind::Wfi } else { ExitKind::Wfe }),
            ExitStat::ByHandler => None,
        }
    }
}

/// One row: a class, its counter and its handler.
#[derive(Clone, Copy, Debug)]
pub struct ExitHandler<H> {
    pub ec: ExceptionClass,
    pub stat: ExitStat,
    pub handle: H,
}

/// Every 6-bit EC to its row; classes without a row go to the fallback
/// handler and count as `ExitKind::Other`.
pub struct ExitTable<H> {
    by_ec: [ExitHandler<H>; 64],
}

impl<H: Copy> ExitTable<H> {
    /// Builds the table at compile time; a class named twice is a build error.
    pub const fn new(rows: &[ExitHandler<H>], fallback: H) -> Self {
        let other = ExitHandler { ec: ExceptionClass::Unknown, stat: ExitStat::Kind(ExitKind::Other), handle: fallback };
        let mut by_ec = [other; 64];
        let mut seen = [false; 64];
        let mut i = 0;
        while i < rows.len() {
            let ec = rows[i].ec as usize;
            assert!(!seen[ec], "exception class with two rows");
            seen[ec] = true;
            by_ec[ec] = rows[i];
            i += 1;
        }
        ExitTable { by_ec }
    }

    /// The row for this syndrome's class.
    pub fn get(&self, esr: Esr) -> &ExitHandler<H> {
        &self.by_ec[esr.ec() as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: ExitTable<&str> = ExitTable::new(
        &[
            ExitHandler { ec: ExceptionClass::WFx, stat: ExitStat::WfiOrWfe, handle: "wfx" },
            ExitHandler { ec: ExceptionClass::HVC64, stat: ExitStat::Kind(ExitKind::Hvc), handle: "hvc" },
            ExitHandler { ec: ExceptionClass::DataAbortLowerEL, stat: ExitStat::ByHandler, handle: "dabt" },
        ],
        "undef",
    );

    #[test]
    fn esr_fields() {
        // HVC #0 from the guest: EC 0x16, IL, ISS = imm16.
        let esr = Esr(ExceptionClass::HVC64.esr() | ESR_IL | 0x1234);
        assert_eq!(esr.ec(), 0x16);
        assert_eq!(esr.iss(), 0x1234);
        assert_eq!(ExceptionClass::DataAbortLowerEL.esr() >> 26, 0x24);
        assert_eq!(ExceptionClass::from_ec(0x18), Some(ExceptionClass::SysReg));
        assert_eq!(ExceptionClass::from_ec(0x3f), None);
        for c in ExceptionClass::ALL {
            assert_eq!(ExceptionClass::from_ec(c as u8), Some(c));
        }
    }

    #[test]
    fn table_lookup_and_stats() {
        let wfe = Esr(ExceptionClass::WFx.esr() | ESR_IL | 1);
        let row = TABLE.get(wfe);
        assert_eq!(row.handle, "wfx");
        assert_eq!(row.stat.kind(wfe.iss()), Some(ExitKind::Wfe));
        assert_eq!(row.stat.kind(0), Some(ExitKind::Wfi));
        assert_eq!(TABLE.get(Esr(ExceptionClass::HVC64.esr())).stat.kind(0), Some(ExitKind::Hvc));
        assert_eq!(TABLE.get(Esr(ExceptionClass::DataAbortLowerEL.esr())).stat.kind(0), None);
        // Every class without a row, named or not, falls back and counts as Other.
        for ec in 0..64u64 {
            if [0x01, 0x16, 0x24].contains(&ec) {
                continue;
            }
            let row = TABLE.get(Esr(ec << 26));
            assert_eq!((row.handle, row.stat.kind(0)), ("undef", Some(ExitKind::Other)));
        }
    }
}
