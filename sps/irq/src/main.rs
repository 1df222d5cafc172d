//! irq: a secure partition for spmc's interrupt handling (DEN0077 v1.2 §8).
//! Its manifest asks for managed exit (`ns-interrupts-action = <1>`), and it
//! uses its EL1 physical timer, which spmc emulates on the Secure EL2
//! physical timer and delivers as a virtual interrupt.
//!
//! Requests (x3 = command):
//! - `CMD_PING` (0): echoes the payload;
//! - `CMD_SPIN` (1): busy work for x4 counter ticks; a managed exit (virtual
//!   interrupt 4) ends it early with the managed-exit response
//!   `[MANAGED_EXIT_RESP, 4, ticks spent, 0, 0]`, else `[0, 0, ticks spent, 0, 0]`;
//! - `CMD_TIMER_ARM` (2): arms its timer x4 ticks from now, answers `[0, ..]`
//!   and waits; the expiry comes while it waits (FFA_INTERRUPT);
//! - `CMD_TIMER_COUNT` (3): `[timer interrupts seen, last interrupt id, ..]`;
//! - `CMD_TIMER_WAIT` (4): arms its timer x4 ticks from now and spins until
//!   its virtual interrupt (at most x5 ticks): `[id, ticks spent, count, ..]`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use sp_runtime as _;

#[cfg(not(target_os = "none"))]
fn main() {}

use sp_runtime::interrupts::{MANAGED_EXIT_INTID, SpinEnd, VIRTUAL_TIMER_INTID};

pub const CMD_PING: u64 = 0;
pub const CMD_SPIN: u64 = 1;
pub const CMD_TIMER_ARM: u64 = 2;
pub const CMD_TIMER_COUNT: u64 = 3;
pub const CMD_TIMER_WAIT: u64 = 4;
/// x3 of the managed-exit response ("ME").
pub const MANAGED_EXIT_RESP: u64 = 0x4d45;

/// What the SP remembers about interrupts.
#[derive(Default)]
pub struct State {
    pub timer_count: u64,
    pub last_id: u64,
}

impl State {
    pub fn on_interrupt(&mut self, id: u32) {
        if id == VIRTUAL_TIMER_INTID {
            self.timer_count += 1;
        }
        self.last_id = id as u64;
    }
}

/// The machine the handler needs (host-testable).
pub trait Hw {
    fn spin(&mut self, ticks: u64, stop: &mut dyn FnMut(u32) -> bool) -> (u64, SpinEnd);
    fn timer_arm(&mut self, ticks: u64);
}

pub fn handle(req: &sp_runtime::DirectRequest, st: &mut State, hw: &mut dyn Hw) -> [u64; 5] {
    let a = req.args;
    match a[0] {
        CMD_SPIN => {
            let (spent, end) = hw.spin(a[1], &mut |id| {
                st.on_interrupt(id);
                id == MANAGED_EXIT_INTID
            });
            match end {
                SpinEnd::Interrupted(id) => [MANAGED_EXIT_RESP, id as u64, spent, 0, 0],
                SpinEnd::Done => [0, 0, spent, 0, 0],
            }
        }
        CMD_TIMER_ARM => {
            hw.timer_arm(a[1]);
            [0, 0, 0, 0, 0]
        }
        CMD_TIMER_COUNT => [st.timer_count, st.last_id, 0, 0, 0],
        CMD_TIMER_WAIT => {
            hw.timer_arm(a[1]);
            let (spent, end) = hw.spin(a[2], &mut |id| {
                st.on_interrupt(id);
                id == VIRTUAL_TIMER_INTID
            });
            let id = match end {
                SpinEnd::Interrupted(id) => id as u64,
                SpinEnd::Done => u64::MAX,
            };
            [id, spent, st.timer_count, 0, 0]
        }
        _ => a,
    }
}

#[cfg(target_os = "none")]
struct Real;

#[cfg(target_os = "none")]
impl Hw for Real {
    fn spin(&mut self, ticks: u64, stop: &mut dyn FnMut(u32) -> bool) -> (u64, SpinEnd) {
        sp_runtime::interrupts::spin(ticks, stop)
    }
    fn timer_arm(&mut self, ticks: u64) {
        sp_runtime::interrupts::timer_arm(ticks)
    }
}

#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
extern "C" fn sp_main(_secondary: u64) -> ! {
    sp_runtime::println!("ready");
    let st = core::cell::RefCell::new(State::default());
    sp_runtime::run_with_interrupts(
        |req| handle(req, &mut st.borrow_mut(), &mut Real),
        |id| {
            sp_runtime::println!("virtual interrupt {}", id);
            st.borrow_mut().on_interrupt(id);
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Vec<u32>, Vec<u64>);
    impl Hw for Fake {
        fn spin(&mut self, ticks: u64, stop: &mut dyn FnMut(u32) -> bool) -> (u64, SpinEnd) {
            for id in self.0.drain(..) {
                if stop(id) {
                    return (1, SpinEnd::Interrupted(id));
                }
            }
            (ticks, SpinEnd::Done)
        }
        fn timer_arm(&mut self, ticks: u64) {
            self.1.push(ticks);
        }
    }

    fn req(args: [u64; 5]) -> sp_runtime::DirectRequest {
        let mut r = [0u64; 18];
        r[0] = 0xC400_006F;
        r[1] = 0x0000_8004;
        r[3..8].copy_from_slice(&args);
        sp_runtime::DirectRequest::from_regs(&r).unwrap()
    }

    #[test]
    fn managed_exit_timer_and_spin() {
        let mut st = State::default();
        let mut hw = Fake(vec![], vec![]);
        assert_eq!(handle(&req([CMD_SPIN, 100, 0, 0, 0]), &mut st, &mut hw), [0, 0, 100, 0, 0]);
        hw.0 = vec![VIRTUAL_TIMER_INTID, MANAGED_EXIT_INTID];
        assert_eq!(handle(&req([CMD_SPIN, 100, 0, 0, 0]), &mut st, &mut hw), [MANAGED_EXIT_RESP, 4, 1, 0, 0]);
        assert_eq!(st.timer_count, 1);
        assert_eq!(handle(&req([CMD_TIMER_ARM, 50, 0, 0, 0]), &mut st, &mut hw)[0], 0);
        assert_eq!(hw.1, vec![50]);
        st.on_interrupt(VIRTUAL_TIMER_INTID);
        assert_eq!(handle(&req([CMD_TIMER_COUNT, 0, 0, 0, 0]), &mut st, &mut hw)[..2], [2, 3]);
        hw.0 = vec![VIRTUAL_TIMER_INTID];
        assert_eq!(handle(&req([CMD_TIMER_WAIT, 5, 100, 0, 0]), &mut st, &mut hw)[..3], [3, 1, 3]);
        assert_eq!(handle(&req([CMD_TIMER_WAIT, 5, 100, 0, 0]), &mut st, &mut hw)[0], u64::MAX);
        assert_eq!(handle(&req([9, 1, 2, 3, 4]), &mut st, &mut hw), [9, 1, 2, 3, 4]);
    }
}
