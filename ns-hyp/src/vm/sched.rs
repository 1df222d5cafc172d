//! The scheduling decision for the vCPUs that share one physical CPU, made
//! after every exit of the running vCPU (`crate::guest` gathers the states and
//! applies the decision).  Rules:
//!
//! - a vCPU is runnable when it is ready, or waiting (WFI, CPU_SUSPEND) with
//!   an interrupt to take (even one it masks: WFI wakes on it) or a timer
//!   deadline reached;
//! - the running vCPU keeps the CPU until its slice ends, and past the end
//!   only while no other vCPU is runnable; the slice is fixed when the vCPU
//!   is switched in, NOT restarted at each exit (a vCPU that traps often,
//!   e.g. writing the console, must not starve the others);
//! - a WFI/WFE exit gives up the rest of the slice;
//! - the next vCPU is picked round robin after the one that ran, unless the
//!   one that gave up its slice named whom it waits for (it sent that vCPU
//!   an IPI: KVM's directed yield, `kvm_vcpu_on_spin`, picks the vCPU a
//!   spinner most likely waits for in the same spirit) and that one can run;
//! - the hyp timer is armed for the slice end when another vCPU is runnable,
//!   else for the earliest timer deadline of a waiting vCPU, so a WFI never
//!   blocks the CPU while another vCPU on it could run, and a vCPU that spins
//!   with interrupts masked (Linux's cpu_park_loop) only ever uses its slice.

/// What the scheduler knows of a vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Powered off: never runs.
    Off,
    /// Ready to run (or powering on).
    Ready,
    /// WFI/CPU_SUSPEND: `wake` if an interrupt is pending for it now;
    /// `deadline` when its virtual timer fires (counter ticks).
    Waiting { wake: bool, deadline: Option<u64> },
}

impl State {
    pub fn runnable(self, now: u64) -> bool {
        match self {
            State::Off => false,
            State::Ready => true,
            State::Waiting { wake, deadline } => wake || deadline.is_some_and(|d| d <= now),
        }
    }

    fn deadline(self) -> Option<u64> {
        match self {
            State::Waiting { deadline, .. } => deadline,
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Index (into the states) of the vCPU to run; None: nothing can run, wait for an interrupt.
    pub run: Option<usize>,
    /// End of the running vCPU's slice (unchanged if it keeps running).
    pub slice_end: u64,
    /// When the hyp timer must fire (None: off).
    pub timer: Option<u64>,
}

/// `current`: the vCPU that ran last (its slice ends at `slice_end`).
pub fn decide(states: &[State], current: Option<usize>, slice_end: u64, now: u64, quantum: u64) -> Decision {
    let n = states.len();
    let others_runnable = |me: usize| (0..n).any(|k| k != me && states[k].runnable(now));
    let earliest_deadline = |me: Option<usize>| (0..n).filter(|&k| Some(k) != me).filter_map(|k| states[k].deadline()).min();
    let timer_for = |me: usize, end: u64| if others_runnable(me) { Some(end) } else { earliest_deadline(Some(me)) };

    if let Some(c) = current.filter(|&c| c < n && states[c].runnable(now)) {
        if now < slice_end || !others_runnable(c) {
            return Decision { run: Some(c), slice_end, timer: timer_for(c, slice_end) };
        }
    }
    let start = current.map_or(0, |c| c + 1);
    match (0..n).map(|k| (start + k) % n).find(|&k| states[k].runnable(now)) {
        Some(k) => {
            let end = now.saturating_add(quantum);
            Decision { run: Some(k), slice_end: end, timer: timer_for(k, end) }
        }
        None => Decision { run: None, slice_end, timer: earliest_deadline(None) },
    }
}

/// [`decide`], with a directed yield: when the running vCPU's slice is over
/// (it gave it up) and `to` is runnable, `to` runs next instead of the round
/// robin's pick.  The caller clears its hint once used.
pub fn decide_directed(states: &[State], current: Option<usize>, slice_end: u64, now: u64, quantum: u64, to: Option<usize>) -> Decision {
    match to {
        Some(t) if t < states.len() && Some(t) != current && now >= slice_end && states[t].runnable(now) => {
            // As if the vCPU before `t` had just given up its slice: the
            // round robin then picks `t` (runnable, and another than that
            // one since there are at least two), with a fresh slice and the
            // right timer.
            let before = (t + states.len() - 1) % states.len();
            decide(states, Some(before), 0, now, quantum)
        }
        _ => decide(states, current, slice_end, now, quantum),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    #[test]
    fn directed_yield_runs_the_ipi_target_next() {
        let s = [Ready, Ready, Ready, Ready];
        // vCPU 0 gave up its slice after an IPI to 3: 3 runs, not 1.
        let d = decide_directed(&s, Some(0), 0, 100, Q, Some(3));
        assert_eq!(d, Decision { run: Some(3), slice_end: 200, timer: Some(200) });
        // Without a hint, or with one that cannot run, round robin.
        assert_eq!(decide_directed(&s, Some(0), 0, 100, Q, None).run, Some(1));
        let s2 = [Ready, Ready, Ready, Waiting { wake: false, deadline: None }];
        assert_eq!(decide_directed(&s2, Some(0), 0, 100, Q, Some(3)).run, Some(1));
        // The slice is not over: the hint waits.
        assert_eq!(decide_directed(&s, Some(0), 150, 100, Q, Some(3)).run, Some(0));
        // A hint naming the running vCPU or out of range changes nothing.
        assert_eq!(decide_directed(&s, Some(0), 0, 100, Q, Some(0)).run, Some(1));
        assert_eq!(decide_directed(&s, Some(0), 0, 100, Q, Some(9)).run, Some(1));
    }

    const Q: u64 = 100;

    #[test]
    fn keeps_the_slice_then_rotates() {
        let s = [Ready, Ready, Ready, Ready];
        let d = decide(&s, Some(0), 150, 100, Q);
        assert_eq!(d, Decision { run: Some(0), slice_end: 150, timer: Some(150) }, "slice not restarted by an exit");
        let d = decide(&s, Some(0), 150, 150, Q);
        assert_eq!(d, Decision { run: Some(1), slice_end: 250, timer: Some(250) });
        let d = decide(&s, Some(3), 0, 10, Q);
        assert_eq!(d.run, Some(0), "round robin wraps");
    }

    #[test]
    fn alone_it_runs_past_its_slice_without_a_quantum() {
        let s = [Ready, Off, Waiting { wake: false, deadline: None }, Off];
        let d = decide(&s, Some(0), 50, 100, Q);
        assert_eq!(d, Decision { run: Some(0), slice_end: 50, timer: None });
        // A waiting vCPU's deadline still wakes the CPU, and then wins the CPU at once.
        let s = [Ready, Waiting { wake: false, deadline: Some(500) }];
        assert_eq!(decide(&s, Some(0), 50, 100, Q).timer, Some(500));
        assert_eq!(decide(&s, Some(0), 50, 500, Q).run, Some(1));
    }

    #[test]
    fn wfi_never_blocks_a_runnable_vcpu() {
        // vCPU 0 waits (WFI, slice given up); 1 has an interrupt: it runs.
        let s = [Waiting { wake: false, deadline: None }, Waiting { wake: true, deadline: None }, Off, Off];
        assert_eq!(decide(&s, Some(0), 0, 10, Q).run, Some(1));
        // A waiting vCPU woken by an interrupt (an SGI from the running one) takes the CPU once the slice ends.
        let s = [Ready, Waiting { wake: true, deadline: None }, Waiting { wake: false, deadline: Some(1000) }, Off];
        let d = decide(&s, Some(0), 150, 100, Q);
        assert_eq!(d, Decision { run: Some(0), slice_end: 150, timer: Some(150) });
        // Nothing runnable: idle until the earliest deadline.
        let s = [Waiting { wake: false, deadline: Some(900) }, Off, Waiting { wake: false, deadline: Some(700) }, Waiting { wake: false, deadline: None }];
        assert_eq!(decide(&s, Some(0), 0, 10, Q), Decision { run: None, slice_end: 0, timer: Some(700) });
        assert_eq!(decide(&[Off, Off], None, 0, 10, Q).run, None);
    }

    #[test]
    fn a_masked_spinner_only_gets_its_slice() {
        // Linux's smp_send_stop: vCPU 0 spins with IRQs masked waiting for the
        // others; 1..3 are parked (WFI with a masked interrupt pending: WFI
        // does not even trap, they spin).  Everyone keeps getting slices, and
        // vCPU 0 comes back after at most 3 of them.
        let s = [Ready, Waiting { wake: true, deadline: None }, Ready, Waiting { wake: true, deadline: Some(5) }];
        let mut cur = Some(0);
        let mut end = 100;
        let mut now = 100;
        let mut ran = [0; 4];
        for _ in 0..40 {
            let d = decide(&s, cur, end, now, Q);
            let v = d.run.unwrap();
            assert_eq!(d.timer, Some(d.slice_end), "another vCPU is runnable: quantum armed");
            ran[v] += 1;
            cur = Some(v);
            end = d.slice_end;
            now = end; // the quantum fires
        }
        assert_eq!(ran, [10, 10, 10, 10]);
    }

    #[test]
    fn off_and_out_of_range_current() {
        let s = [Off, Ready];
        assert_eq!(decide(&s, Some(0), 1000, 10, Q).run, Some(1), "the last one powered off");
        assert_eq!(decide(&s, Some(7), 0, 10, Q).run, Some(1));
        assert_eq!(decide(&s, None, 0, u64::MAX, Q).slice_end, u64::MAX, "no overflow");
    }
}
