//! The EL1 Generic Timers a guest sees (DDI0487, D12 "The Generic Timer in
//! AArch64 state"; the registers CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTV_TVAL_EL0
//! and their CNTP_* counterparts): what their control, compare and timer
//! value views read and how their interrupt output follows them.
//!
//! - The **virtual timer** runs on the hardware (its registers are part of a
//!   vCPU's EL1 context).  Its interrupt (PPI 27) is level-sensitive: the
//!   output is ISTATUS and not IMASK, and it goes low as soon as the guest
//!   disables or masks the timer or moves CVAL ahead.  ns-hyp injects it
//!   into a list register when the physical PPI fires; while it sits there
//!   pending, the guest's accesses to CNTV_* trap (FEAT_ECV,
//!   CNTHCTL_EL2.EL1TVT) and ns-hyp withdraws the interrupt if the output
//!   went low, as KVM resamples its level-triggered timer line
//!   (`kvm_timer_should_fire`).  Without FEAT_ECV it is resampled at every
//!   exit only.
//! - The **EL1 physical timer** is emulated: every CNTP_* access traps
//!   (CNTHCTL_EL2.EL1PCEN = 0) to [`EmulTimer`], which keeps ENABLE, IMASK
//!   and CVAL per vCPU; its output drives PPI 30 as a level, resampled after
//!   each access and at every exit, and the scheduler's EL2 timer makes the
//!   vCPU exit at CVAL.
//! - **Time.**  The guest's physical count is the hardware's CNTPCT_EL0
//!   (CNTHCTL_EL2.EL1PCTEN = 1, no CNTPOFF), the same count ns-hyp compares
//!   the emulated timer with; its virtual count is that minus CNTVOFF_EL2,
//!   which is 0 on every CPU, so all vCPUs of the VM share one time and the
//!   two timers agree.

/// CNTx_CTL_EL0 bits (DDI0487, CNTP_CTL_EL0): ENABLE, IMASK, ISTATUS (read-only).
pub const CTL_ENABLE: u64 = 1 << 0;
pub const CTL_IMASK: u64 = 1 << 1;
pub const CTL_ISTATUS: u64 = 1 << 2;

/// ISTATUS: the timer is enabled and its condition is met (CNT >= CVAL,
/// the unsigned 64-bit comparison of the CompareValue view).
pub fn istatus(ctl: u64, cval: u64, now: u64) -> bool {
    ctl & CTL_ENABLE != 0 && now >= cval
}

/// The timer's interrupt output: ISTATUS and not IMASK.
pub fn output(ctl: u64, cval: u64, now: u64) -> bool {
    istatus(ctl, cval, now) && ctl & CTL_IMASK == 0
}

/// When the output goes high if nothing changes: CVAL, for an enabled,
/// unmasked timer (possibly in the past: then it is high already).
pub fn deadline(ctl: u64, cval: u64) -> Option<u64> {
    (ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE).then_some(cval)
}

/// TimerValue view, read: (CVAL - CNT)[31:0], a signed 32-bit count down
/// (negative once the timer has expired); bits [63:32] are RES0.
pub fn tval_read(cval: u64, now: u64) -> u64 {
    cval.wrapping_sub(now) & 0xffff_ffff
}

/// TimerValue view, write: CVAL = CNT + SignExtend(TVAL[31:0]).
pub fn tval_write(v: u64, now: u64) -> u64 {
    now.wrapping_add(v as u32 as i32 as i64 as u64)
}

/// One trapped access to a timer's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerReg {
    Ctl,
    Cval,
    Tval,
}

/// The emulated EL1 physical timer of one vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmulTimer {
    /// ENABLE and IMASK as the guest wrote them (ISTATUS is computed).
    pub ctl: u64,
    pub cval: u64,
}

impl EmulTimer {
    pub const fn new() -> Self {
        EmulTimer { ctl: 0, cval: 0 }
    }

    pub fn read(&self, r: TimerReg, now: u64) -> u64 {
        match r {
            TimerReg::Ctl => self.ctl | if istatus(self.ctl, self.cval, now) { CTL_ISTATUS } else { 0 },
            TimerReg::Cval => self.cval,
            TimerReg::Tval => tval_read(self.cval, now),
        }
    }

    pub fn write(&mut self, r: TimerReg, v: u64, now: u64) {
        match r {
            // ISTATUS is read-only, the other bits RES0.
            TimerReg::Ctl => self.ctl = v & (CTL_ENABLE | CTL_IMASK),
            TimerReg::Cval => self.cval = v,
            TimerReg::Tval => self.cval = tval_write(v, now),
        }
    }

    pub fn output(&self, now: u64) -> bool {
        output(self.ctl, self.cval, now)
    }

    /// The counter value at which the vCPU must exit for the output to be
    /// seen rising: only while it is low (a high one is already asserted).
    pub fn wake_at(&self, now: u64) -> Option<u64> {
        deadline(self.ctl, self.cval).filter(|&t| t > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_or_masked_never_fires() {
        // Disabled: no ISTATUS, no output, whatever CVAL says.
        assert!(!istatus(0, 0, 100));
        assert!(!output(0, 0, 100));
        assert!(!output(CTL_IMASK, 0, 100));
        // Masked: ISTATUS set (the condition is met), the output low.
        assert!(istatus(CTL_ENABLE | CTL_IMASK, 50, 100));
        assert!(!output(CTL_ENABLE | CTL_IMASK, 50, 100));
        assert_eq!(deadline(CTL_ENABLE | CTL_IMASK, 50), None);
        assert_eq!(deadline(0, 50), None);
        // Enabled, unmasked: fires from CVAL on.
        assert!(!output(CTL_ENABLE, 101, 100));
        assert!(output(CTL_ENABLE, 100, 100));
        assert_eq!(deadline(CTL_ENABLE, 101), Some(101));
    }

    #[test]
    fn cval_in_the_past_fires_at_once() {
        let mut t = EmulTimer::new();
        t.write(TimerReg::Cval, 10, 1000);
        t.write(TimerReg::Ctl, CTL_ENABLE, 1000);
        assert!(t.output(1000));
        assert_eq!(t.read(TimerReg::Ctl, 1000), CTL_ENABLE | CTL_ISTATUS);
        // Nothing to wait for: it is high already.
        assert_eq!(t.wake_at(1000), None);
        // Masking it drops the output, ISTATUS stays.
        t.write(TimerReg::Ctl, CTL_ENABLE | CTL_IMASK, 1001);
        assert!(!t.output(1001));
        assert_eq!(t.read(TimerReg::Ctl, 1001), CTL_ENABLE | CTL_IMASK | CTL_ISTATUS);
        // Disabling it clears ISTATUS.
        t.write(TimerReg::Ctl, 0, 1002);
        assert_eq!(t.read(TimerReg::Ctl, 1002), 0);
        // ISTATUS and RES0 bits are not writable.
        t.write(TimerReg::Ctl, !0, 1003);
        assert_eq!(t.ctl, CTL_ENABLE | CTL_IMASK);
    }

    #[test]
    fn tval_counts_down_and_sign_extends() {
        let mut t = EmulTimer::new();
        t.write(TimerReg::Tval, 500, 1000);
        assert_eq!(t.cval, 1500);
        assert_eq!(t.read(TimerReg::Tval, 1000), 500);
        assert_eq!(t.read(TimerReg::Tval, 1200), 300);
        // Past CVAL: negative, 32 bits.
        assert_eq!(t.read(TimerReg::Tval, 1501), 0xffff_ffff);
        // A negative TVAL puts CVAL in the past: fires at once when enabled.
        t.write(TimerReg::Tval, (-5i32) as u32 as u64, 1000);
        assert_eq!(t.cval, 995);
        t.write(TimerReg::Ctl, CTL_ENABLE, 1000);
        assert!(t.output(1000));
        // Only TVAL[31:0] counts on a write.
        t.write(TimerReg::Tval, 0xdead_0000_0000_0010, 1000);
        assert_eq!(t.cval, 1016);
        // Wrap-around of the 64-bit sum.
        assert_eq!(tval_write(10, u64::MAX), 9);
    }

    #[test]
    fn wake_at_only_while_low() {
        let mut t = EmulTimer::new();
        t.write(TimerReg::Cval, 2000, 0);
        assert_eq!(t.wake_at(1000), None, "disabled");
        t.write(TimerReg::Ctl, CTL_ENABLE, 1000);
        assert_eq!(t.wake_at(1000), Some(2000));
        assert_eq!(t.wake_at(2000), None);
        t.write(TimerReg::Ctl, CTL_ENABLE | CTL_IMASK, 1000);
        assert_eq!(t.wake_at(1000), None, "masked");
    }
}
