//! Trapped system register accesses (ESR_EL2.EC = SysReg): the ISS decoded
//! into (Op0, Op1, CRn, CRm, Op2), Rt and the direction, and the table of
//! the registers ns-hyp emulates, by their DDI0487 names, the shape of
//! KVM's `sys_regs.c` descriptor table.  What an access does to the
//! hardware or the vGIC is `crate::guest`'s (`sysreg_trap`); finding the
//! row is plain logic, tested here.

/// ESR_EL2.ISS for EC 0x18 (DDI0487, "ISS encoding for an exception from
/// MSR, MRS, or System instruction execution in AArch64 state").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegIss {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    /// The general-purpose register transferred (31: XZR).
    pub rt: u8,
    /// Direction = 1: MRS (a read).
    pub read: bool,
}

impl SysRegIss {
    pub fn decode(iss: u64) -> Self {
        SysRegIss {
            op0: ((iss >> 20) & 3) as u8,
            op2: ((iss >> 17) & 7) as u8,
            op1: ((iss >> 14) & 7) as u8,
            crn: ((iss >> 10) & 0xf) as u8,
            rt: ((iss >> 5) & 0x1f) as u8,
            crm: ((iss >> 1) & 0xf) as u8,
            read: iss & 1 == 1,
        }
    }
}

/// What an emulated access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysRegAccess {
    /// ICC_SGI1R_EL1: SGIs between vCPUs (`Vgic::send_sgi`).
    GenerateSgi1,
    /// Write ignored.
    WriteIgnored,
    /// The ID register, sanitized for the guest (`vm::idregs`).
    IdRegister,
    /// Reads as zero, writes ignored.
    Raz,
    /// The emulated EL1 physical timer (`vm::timer::EmulTimer`).
    PhysTimer(TimerReg),
    /// The virtual timer, trapped (FEAT_ECV, CNTHCTL_EL2.EL1TVT) while its
    /// interrupt is pending in a list register: the access is done on the
    /// hardware and the interrupt's level re-sampled (`vm::timer`).
    VirtTimer(TimerReg),
}

/// Which accesses a row covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Read,
    Write,
    Both,
}

/// One emulated register, or a range of encodings (CRm and Op2 inclusive).
#[derive(Clone, Copy, Debug)]
pub struct SysReg {
    /// The register's name (DDI0487): what to grep for; read by the tests.
    #[cfg_attr(target_os = "none", allow(dead_code))]
    pub name: &'static str,
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: (u8, u8),
    pub op2: (u8, u8),
    pub dir: Dir,
    pub access: SysRegAccess,
}

impl SysReg {
    fn matches(&self, i: &SysRegIss) -> bool {
        let dir = match self.dir {
            Dir::Read => i.read,
            Dir::Write => !i.read,
            Dir::Both => true,
        };
        dir && (self.op0, self.op1, self.crn) == (i.op0, i.op1, i.crn)
            && (self.crm.0..=self.crm.1).contains(&i.crm)
            && (self.op2.0..=self.op2.1).contains(&i.op2)
    }
}

#[allow(clippy::too_many_arguments)] // one argument per column of the table
const fn reg(name: &'static str, op0: u8, op1: u8, crn: u8, crm: u8, op2: u8, dir: Dir, access: SysRegAccess) -> SysReg {
    SysReg { name, op0, op1, crn, crm: (crm, crm), op2: (op2, op2), dir, access }
}

/// The system registers HCR_EL2 makes trap and ns-hyp emulates.  Every other
/// trapped encoding (or direction) is UNDEFINED to the guest.
pub const SYS_REGS: &[SysReg] = &[
    // HCR_EL2.TACR: IMPLEMENTATION DEFINED, nothing to offer.
    reg("ACTLR_EL1", 3, 0, 1, 0, 1, Dir::Both, SysRegAccess::Raz),
    // HCR_EL2.TID3: ID group 3 (ID_PFR0_EL1 .. ID_AA64*_EL1, and the
    // reserved encodings of that space, which read as zero).
    SysReg { name: "ID group 3 (Op0=3, Op1=0, CRn=0, CRm=1..7)", op0: 3, op1: 0, crn: 0, crm: (1, 7), op2: (0, 7), dir: Dir::Read, access: SysRegAccess::IdRegister },
    // With HCR_EL2.IMO/FMO = 1, EL1 writes to the SGI generation registers trap
    // to EL2 (DDI0487, ICC_SGI1R_EL1 and ICC_ASGI1R_EL1/ICC_SGI0R_EL1).
    reg("ICC_SGI1R_EL1", 3, 0, 12, 11, 5, Dir::Write, SysRegAccess::GenerateSgi1),
    // Group 0 SGIs do not exist in a DS=1 guest using Group 1 only.
    reg("ICC_ASGI1R_EL1", 3, 0, 12, 11, 6, Dir::Write, SysRegAccess::WriteIgnored),
    reg("ICC_SGI0R_EL1", 3, 0, 12, 11, 7, Dir::Write, SysRegAccess::WriteIgnored),
    // The EL1 physical timer, emulated: with CNTHCTL_EL2.EL1PCEN = 0 every
    // EL0/EL1 access to its registers traps (DDI0487, CNTHCTL_EL2).
    reg("CNTP_TVAL_EL0", 3, 3, 14, 2, 0, Dir::Both, SysRegAccess::PhysTimer(TimerReg::Tval)),
    reg("CNTP_CTL_EL0", 3, 3, 14, 2, 1, Dir::Both, SysRegAccess::PhysTimer(TimerReg::Ctl)),
    reg("CNTP_CVAL_EL0", 3, 3, 14, 2, 2, Dir::Both, SysRegAccess::PhysTimer(TimerReg::Cval)),
    // The virtual timer's registers trap only with CNTHCTL_EL2.EL1TVT (FEAT_ECV) set.
    reg("CNTV_TVAL_EL0", 3, 3, 14, 3, 0, Dir::Both, SysRegAccess::VirtTimer(TimerReg::Tval)),
    reg("CNTV_CTL_EL0", 3, 3, 14, 3, 1, Dir::Both, SysRegAccess::VirtTimer(TimerReg::Ctl)),
    reg("CNTV_CVAL_EL0", 3, 3, 14, 3, 2, Dir::Both, SysRegAccess::VirtTimer(TimerReg::Cval)),
];

use super::timer::TimerReg;

/// The row for a trapped access, if ns-hyp emulates it.
pub fn find(iss: &SysRegIss) -> Option<&'static SysReg> {
    SYS_REGS.iter().find(|r| r.matches(iss))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ISS of an MSR/MRS to (op0, op1, CRn, CRm, op2) with Rt.
    fn iss(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, rt: u64, read: bool) -> u64 {
        op0 << 20 | op2 << 17 | op1 << 14 | crn << 10 | rt << 5 | crm << 1 | read as u64
    }

    #[test]
    fn decode() {
        // msr icc_sgi1r_el1, x3
        let d = SysRegIss::decode(iss(3, 0, 12, 11, 5, 3, false));
        assert_eq!(d, SysRegIss { op0: 3, op1: 0, crn: 12, crm: 11, op2: 5, rt: 3, read: false });
        assert_eq!(find(&d).unwrap().name, "ICC_SGI1R_EL1");
        assert_eq!(find(&d).unwrap().access, SysRegAccess::GenerateSgi1);
        // mrs x0, icc_sgi1r_el1: not emulated (as before: UNDEFINED).
        assert!(find(&SysRegIss::decode(iss(3, 0, 12, 11, 5, 0, true))).is_none());
    }

    #[test]
    fn names() {
        let name = |i| find(&SysRegIss::decode(i)).map(|r| r.name);
        assert_eq!(name(iss(3, 3, 14, 2, 1, 0, true)), Some("CNTP_CTL_EL0"));
        assert_eq!(name(iss(3, 3, 14, 2, 2, 0, false)), Some("CNTP_CVAL_EL0"));
        assert_eq!(name(iss(3, 0, 1, 0, 1, 9, true)), Some("ACTLR_EL1"));
        assert_eq!(find(&SysRegIss::decode(iss(3, 0, 0, 4, 0, 1, true))).unwrap().access, SysRegAccess::IdRegister); // ID_AA64PFR0_EL1
        assert!(name(iss(3, 0, 0, 4, 0, 1, false)).is_none(), "ID registers are read-only");
        assert!(name(iss(3, 0, 0, 0, 5, 1, true)).is_none(), "MPIDR_EL1 is not trapped by TID3");
        assert!(name(iss(3, 3, 14, 2, 3, 0, true)).is_none());
        assert_eq!(find(&SysRegIss::decode(iss(3, 3, 14, 2, 0, 0, false))).unwrap().access, SysRegAccess::PhysTimer(TimerReg::Tval));
        assert_eq!(find(&SysRegIss::decode(iss(3, 3, 14, 3, 1, 0, true))).unwrap().access, SysRegAccess::VirtTimer(TimerReg::Ctl));
        assert_eq!(name(iss(3, 3, 14, 3, 2, 0, false)), Some("CNTV_CVAL_EL0"));
    }

    /// No two rows claim one encoding and direction.
    #[test]
    fn rows_do_not_overlap() {
        for op0 in 0..4 {
            for op1 in 0..8 {
                for crn in 0..16 {
                    for crm in 0..16 {
                        for op2 in 0..8 {
                            for read in [false, true] {
                                let i = SysRegIss { op0, op1, crn, crm, op2, rt: 0, read };
                                assert!(SYS_REGS.iter().filter(|r| r.matches(&i)).count() <= 1);
                            }
                        }
                    }
                }
            }
        }
    }
}
