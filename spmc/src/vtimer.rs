//! The EL1 physical timer of an SP, emulated (as Hafnium does): the EL1
//! physical timer registers are one set for both Security states, so an SP
//! may not use the real ones (it would change the Normal world's timer).
//! With CNTHCTL_EL2.EL1PCEN clear, the SP's CNTP_CTL_EL0 / CNTP_CVAL_EL0 /
//! CNTP_TVAL_EL0 accesses trap to the SPMC (ESR_EL2.EC 0x18), which keeps
//! them here; the earliest armed deadline of all SPs is programmed into the
//! SPMC's own Secure EL2 physical timer (CNTHPS, PPI 20, Group 1 Secure), and
//! its expiry reaches the SP as virtual interrupt
//! [`crate::ffa::interrupts::VIRTUAL_TIMER_INTID`].
//!
//! Plain logic, host-tested; `arch/platform.rs` does the trapping.

/// CNTP_CTL bits (DDI0487 D24.x CNTP_CTL_EL0).
pub const CTL_ENABLE: u64 = 1 << 0;
pub const CTL_IMASK: u64 = 1 << 1;
pub const CTL_ISTATUS: u64 = 1 << 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerReg {
    Tval,
    Ctl,
    Cval,
}

/// A trapped MSR/MRS (ESR_EL2 ISS for EC 0x18: Op0 [21:20], Op2 [19:17],
/// Op1 [16:14], CRn [13:10], Rt [9:5], CRm [4:1], Direction [0], 1 = read).
/// Returns the timer register, Rt and whether it is a read; None for any
/// other system register.
pub fn decode(iss: u64) -> Option<(TimerReg, usize, bool)> {
    let op0 = (iss >> 20) & 3;
    let op2 = (iss >> 17) & 7;
    let op1 = (iss >> 14) & 7;
    let crn = (iss >> 10) & 0xf;
    let rt = ((iss >> 5) & 0x1f) as usize;
    let crm = (iss >> 1) & 0xf;
    let read = iss & 1 == 1;
    // CNTP_{TVAL,CTL,CVAL}_EL0 = S3_3_C14_C2_{0,1,2}.
    if (op0, op1, crn, crm) != (3, 3, 14, 2) {
        return None;
    }
    let reg = match op2 {
        0 => TimerReg::Tval,
        1 => TimerReg::Ctl,
        2 => TimerReg::Cval,
        _ => return None,
    };
    Some((reg, rt, read))
}

/// One context's emulated EL1 physical timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VTimer {
    /// ENABLE and IMASK as the SP wrote them.
    pub ctl: u64,
    pub cval: u64,
}

impl VTimer {
    /// The value an MRS of `reg` reads at counter value `now`.
    pub fn read(&self, reg: TimerReg, now: u64) -> u64 {
        match reg {
            TimerReg::Ctl => {
                let fired = self.ctl & CTL_ENABLE != 0 && now >= self.cval;
                self.ctl | if fired { CTL_ISTATUS } else { 0 }
            }
            TimerReg::Cval => self.cval,
            // TVAL: the low 32 bits of CVAL - now, sign-extended on use.
            TimerReg::Tval => self.cval.wrapping_sub(now) & 0xffff_ffff,
        }
    }

    /// An MSR of `value` to `reg` at `now`.
    pub fn write(&mut self, reg: TimerReg, value: u64, now: u64) {
        match reg {
            TimerReg::Ctl => self.ctl = value & (CTL_ENABLE | CTL_IMASK),
            TimerReg::Cval => self.cval = value,
            TimerReg::Tval => self.cval = now.wrapping_add(value as u32 as i32 as i64 as u64),
        }
    }

    /// When the SP wants an interrupt: enabled and not masked.
    pub fn deadline(&self) -> Option<u64> {
        (self.ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE).then_some(self.cval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iss(op2: u64, rt: u64, read: bool) -> u64 {
        (3 << 20) | (op2 << 17) | (3 << 14) | (14 << 10) | (rt << 5) | (2 << 1) | read as u64
    }

    #[test]
    fn decodes_only_the_el1_physical_timer() {
        assert_eq!(decode(iss(1, 3, false)), Some((TimerReg::Ctl, 3, false)));
        assert_eq!(decode(iss(2, 30, true)), Some((TimerReg::Cval, 30, true)));
        assert_eq!(decode(iss(0, 0, true)), Some((TimerReg::Tval, 0, true)));
        assert_eq!(decode(iss(3, 0, true)), None);
        // CNTV_CTL_EL0 (CRm 3) is not ours.
        assert_eq!(decode(iss(1, 0, true) | (1 << 1)), None);
    }

    #[test]
    fn tval_ctl_cval_and_deadline() {
        let mut t = VTimer::default();
        assert_eq!(t.deadline(), None);
        t.write(TimerReg::Tval, 1000, 5000);
        assert_eq!(t.cval, 6000);
        assert_eq!(t.read(TimerReg::Tval, 5500), 500);
        t.write(TimerReg::Ctl, CTL_ENABLE | CTL_ISTATUS, 5500);
        assert_eq!(t.deadline(), Some(6000));
        assert_eq!(t.read(TimerReg::Ctl, 5999), CTL_ENABLE);
        assert_eq!(t.read(TimerReg::Ctl, 6000), CTL_ENABLE | CTL_ISTATUS);
        // Past the deadline TVAL counts negative (32-bit).
        assert_eq!(t.read(TimerReg::Tval, 6001), 0xffff_ffff);
        t.write(TimerReg::Ctl, CTL_ENABLE | CTL_IMASK, 0);
        assert_eq!(t.deadline(), None, "masked");
        // A negative TVAL sets a deadline in the past.
        t.write(TimerReg::Tval, 0xffff_fff0, 100);
        assert_eq!(t.cval, 84);
    }
}
