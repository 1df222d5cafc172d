//! Interrupt decisions of the SPMC (DEN0077 v1.2, "Interrupt management"),
//! as plain functions of the partition's manifest and its context's state, so
//! they are host-tested.  The hardware half (what traps where) is in
//! `arch/platform.rs`; this is what to do once an interrupt got to us.
//!
//! With the SPMC at S-EL2 and GICv3 (TF-A SPMD, `SPMD_SPM_AT_SEL2=1`), while a
//! secure partition runs the PE is in Secure state, so:
//! - a Non-secure Group 1 interrupt is signalled as FIQ, a Secure Group 1
//!   interrupt as IRQ (GICv3 architecture, "interrupt signalling" by group and
//!   Security state).  The SPMD leaves SCR_EL3.FIQ/IRQ clear for the Secure
//!   world (it registers an EL3 handler only for Secure interrupts that arrive
//!   while the Normal world runs), so with HCR_EL2.FMO/IMO set both trap to
//!   us at S-EL2 while an SP runs;
//! - a Secure interrupt that fires while the Normal world runs is taken to EL3
//!   (FIQ in Non-secure state) and the SPMD enters us with FFA_INTERRUPT; we
//!   answer FFA_NORMAL_WORLD_RESUME when it has been handled
//!   (`spmd_secure_interrupt_handler`, TF-A 2.12 services/std_svc/spmd).
//!
//! Virtual interrupts reach an SP through HCR_EL2.VI (a virtual IRQ; no vGIC
//! list registers): the SP sees the IRQ pending (ISR_EL1.I, or its IRQ vector
//! if it unmasks PSTATE.I) and reads the interrupt's id with Hafnium's
//! paravirtualised HF_INTERRUPT_GET, which also clears it; HF_INTERRUPT_DEACTIVATE
//! ends a physical (device) interrupt.

use super::calls::Call;
use super::context::ContextLocked;
use super::cpu_cycles::CtxState;
use super::{Caller, Platform, Regs, RunFlags, Spmc};
use crate::partition::manifest::NsInterruptsAction;
use shared::abi::ffa as ffa;

pub use shared::abi::hafnium::{HF_INT_RECONFIGURE_STATUS, HF_INTERRUPT_DEACTIVATE, HF_INTERRUPT_ENABLE, HF_INTERRUPT_GET, HF_INTERRUPT_RECONFIGURE, HF_INVALID_INTID, MANAGED_EXIT_INTID, VIRTUAL_TIMER_INTID};
/// PPI of the Secure EL2 physical timer (CNTHPS; Arm BSA / QEMU virt): the
/// SPMC's own timer, which backs the SPs' emulated EL1 physical timers.
pub const SEL2_PHYS_TIMER_INTID: u32 = 20;
/// INTIDs 1020..1023 are special (GICv3): 1023 = nothing to acknowledge.
pub const SPURIOUS_INTID: u32 = 1023;

/// What the SPMC does with a Non-secure interrupt that arrives while an SP
/// context runs (DEN0077 v1.2, Non-secure interrupt actions, per the SP's `ns-interrupts-action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NsAction {
    /// Keep running the SP; the interrupt stays pending in the GIC until the
    /// SP returns to the Normal world (action 0, "queued").
    Queue,
    /// Give the SP a managed-exit virtual interrupt; it answers its caller
    /// with a direct response, then the Normal world takes the interrupt
    /// (action 1).
    ManagedExit,
    /// Preempt the SP (its state saved) and return FFA_INTERRUPT to the
    /// Normal world, which resumes it later with FFA_RUN (action 2, "signalled").
    Signal,
}

/// Who the running context serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    /// Initialising, or handling a secure interrupt: no caller to return to.
    Nobody,
    /// A direct request from the Normal world (the head of the call chain).
    Normal,
    /// A direct request from another SP (inside an SP-to-SP call chain).
    Secure,
}

/// The action for a Non-secure interrupt while a context of an SP with
/// `action` runs, serving `serving`, with a managed exit already signalled
/// (`managed_exit_pending`) or not.
///
/// Only a context that serves the Normal world directly can be preempted
/// towards it; inside an SP-to-SP chain, during initialisation and while a
/// secure interrupt is handled the interrupt is queued (the chain runs to
/// its end; not yet: preempting a whole chain).  Once a managed exit was
/// given, further NS interrupts wait until the SP answered it.
pub fn ns_action(action: NsInterruptsAction, serving: Serving, managed_exit_pending: bool) -> NsAction {
    if serving != Serving::Normal || managed_exit_pending {
        return NsAction::Queue;
    }
    match action {
        NsInterruptsAction::Queued => NsAction::Queue,
        NsInterruptsAction::ManagedExit => NsAction::ManagedExit,
        NsInterruptsAction::Signaled => NsAction::Signal,
    }
}

/// Who a context in `state` serves, for the NS interrupt decision.
pub fn serving(state: CtxState) -> Serving {
    match state {
        CtxState::Running { from, .. } if !ffa::is_secure_endpoint(from) => Serving::Normal,
        CtxState::Running { .. } => Serving::Secure,
        _ => Serving::Nobody,
    }
}

/// Whether Non-secure interrupts must trap to the SPMC (HCR_EL2.FMO) while
/// this context runs: only when we would act on them.  Otherwise FIQs stay
/// with S-EL1, where the SP keeps them masked (PSTATE.F), so they wait
/// pending in the GIC ("queued") without stopping the SP.
pub fn trap_ns_interrupts(action: NsInterruptsAction, serving: Serving, managed_exit_pending: bool) -> bool {
    ns_action(action, serving, managed_exit_pending) != NsAction::Queue
}

/// State of the context a secure (virtual) interrupt targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    /// It is the context that was running when the interrupt came.
    Current,
    /// Blocked in FFA_MSG_WAIT.
    Waiting,
    /// Running but not on the CPU (it called another SP), preempted, or
    /// handling another interrupt.
    Busy,
    /// Not initialised on this PE.
    Off,
}

/// What to do with a secure interrupt for an SP context (DEN0077 v1.2,
/// secure interrupt handling: the SPMC signals it to the SP as a virtual interrupt; a waiting SP is
/// resumed with FFA_INTERRUPT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecureAction {
    /// Mark it pending and resume the current context: it sees the virtual IRQ.
    InjectAndResume,
    /// Mark it pending and run the waiting context with FFA_INTERRUPT until it
    /// calls FFA_MSG_WAIT again.
    RunWithFfaInterrupt,
    /// Mark it pending; the context sees it when it next runs.
    Pend,
    /// Nobody to take it (the context is off): drop it.
    Drop,
}

pub fn secure_action(target: TargetState) -> SecureAction {
    match target {
        TargetState::Current => SecureAction::InjectAndResume,
        TargetState::Waiting => SecureAction::RunWithFfaInterrupt,
        TargetState::Busy => SecureAction::Pend,
        TargetState::Off => SecureAction::Drop,
    }
}

/// Virtual interrupts pending for one context, oldest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirqQueue {
    ids: [u32; 4],
    len: usize,
}

impl VirqQueue {
    pub const fn new() -> Self {
        Self { ids: [0; 4], len: 0 }
    }

    /// Adds `id` unless it is already pending (a virtual interrupt is either
    /// pending or not; a second assertion before it was taken is the same one).
    pub fn push(&mut self, id: u32) -> bool {
        if self.ids[..self.len].contains(&id) {
            return true;
        }
        if self.len == self.ids.len() {
            return false;
        }
        self.ids[self.len] = id;
        self.len += 1;
        true
    }

    /// HF_INTERRUPT_GET: the oldest pending id, no longer pending.
    pub fn pop(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let id = self.ids[0];
        self.ids.copy_within(1..self.len, 0);
        self.len -= 1;
        Some(id)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Spmc {
    /// How to run the locked context now (see [`trap_ns_interrupts`]).  A
    /// context with notifications pending for it gets the Notification
    /// Pending Interrupt here, once (see [`super::notifications::Bitmaps::take_npi`]).
    pub(super) fn run_flags(&self, c: &mut ContextLocked) -> RunFlags {
        let p = self.part(c.index);
        // Leaf lock under the context lock (context.rs lock order), taken
        // only if something may be pending ([`super::notifications::SpBitmaps`]).
        if p.notifications.may_be_pending() && p.notifications.lock().take_npi(c.ctx) && !c.virqs.push(super::notifications::NPI_INTID) {
            log::warn!("NPI for SP {:#06x} ctx {} lost: too many pending", p.manifest.id, c.ctx);
        }
        RunFlags {
            trap_ns: trap_ns_interrupts(p.manifest.ns_interrupts_action, serving(c.state), c.managed_exit),
            virq: !c.virqs.is_empty(),
        }
    }

    /// The partition whose manifest claims physical interrupt `intid` (device-regions).
    fn interrupt_owner(&self, intid: u32) -> Option<usize> {
        (0..self.count).find(|&i| {
            self.partitions[i].as_ref().is_some_and(|p| {
                !p.is_aborted() && p.manifest.device_regions().iter().any(|d| d.interrupts[..d.interrupt_count].iter().any(|irq| irq.0 == intid))
            })
        })
    }

    /// A Secure interrupt `intid` (acknowledged, priority dropped) on PE
    /// `cpu`; `current` is the context it stopped, if an SP was running.
    /// Turns it into a virtual interrupt for its SP (DEN0077 v1.2, secure interrupt handling).
    pub fn secure_interrupt(&self, intid: u32, cpu: usize, current: Option<(usize, usize)>, platform: &mut dyn Platform) {
        if intid == SEL2_PHYS_TIMER_INTID {
            // Our own timer, backing the SPs' emulated EL1 physical timers.
            let mut expired = [(0usize, 0usize); 8];
            let n = platform.timer_expired(&mut expired);
            platform.deactivate_interrupt(intid);
            for &(i, ctx) in &expired[..n] {
                if i < self.count {
                    self.deliver(i, ctx, VIRTUAL_TIMER_INTID, cpu, current, platform);
                }
            }
            return;
        }
        let Some(i) = self.interrupt_owner(intid) else {
            log::warn!("secure interrupt {} has no partition: ignored", intid);
            platform.deactivate_interrupt(intid);
            return;
        };
        // Deactivated when the SP says it is done (HF_INTERRUPT_DEACTIVATE).
        let noted = {
            let mut active = self.part(i).active.lock();
            active.iter_mut().find(|a| a.is_none() || **a == Some(intid)).map(|slot| *slot = Some(intid)).is_some()
        };
        if !noted {
            platform.deactivate_interrupt(intid);
        }
        let ctx = self.part(i).ctx_for(cpu);
        self.deliver(i, ctx, intid, cpu, current, platform);
    }

    /// Makes virtual interrupt `vint` pending for context `ctx` of SP `i`
    /// and acts on the context's state.
    fn deliver(&self, i: usize, ctx: usize, vint: u32, cpu: usize, current: Option<(usize, usize)>, platform: &mut dyn Platform) {
        // The state is read, the interrupt pended and a waiting context taken
        // (HandlingInterrupt) under one lock: a direct request on another PE
        // then finds it busy instead of racing us to run it.
        let mut c = self.lock_context(i, ctx);
        let target = if current == Some((i, ctx)) {
            TargetState::Current
        } else {
            match c.state {
                CtxState::Waiting => TargetState::Waiting,
                CtxState::Off => TargetState::Off,
                _ => TargetState::Busy,
            }
        };
        let action = secure_action(target);
        if action == SecureAction::Drop || self.part(i).is_aborted() {
            drop(c);
            log::warn!("virtual interrupt {} for SP {:#06x} ctx {} dropped: context not running", vint, self.part(i).manifest.id, ctx);
            return;
        }
        if !c.virqs.push(vint) {
            log::warn!("virtual interrupt {} for SP {:#06x} lost: too many pending", vint, self.part(i).manifest.id);
        }
        if action == SecureAction::RunWithFfaInterrupt {
            c.state = CtxState::HandlingInterrupt;
            drop(c);
            self.run_interrupt_handler(i, ctx, cpu, platform);
        }
    }
}

/// HF_INTERRUPT_GET: the next pending virtual interrupt of the calling
/// context (and clears it), or [`HF_INVALID_INTID`].
pub(super) fn hf_interrupt_get(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let mut a = [0u64; 18];
    if let Caller::Sp(i) = c.caller {
        a[0] = s.lock_context(i, c.ctx).virqs.pop().map_or(HF_INVALID_INTID, u64::from);
    }
    a
}

/// HF_INTERRUPT_DEACTIVATE: x1 = virtual id, x2 = physical id (Hafnium);
/// only an active interrupt of this SP is deactivated physically.
pub(super) fn hf_interrupt_deactivate(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let mut a = [0u64; 18];
    let Caller::Sp(i) = c.caller else { return a };
    let r = c.regs;
    let phys = r[2] as u32;
    let mut active = s.part(i).active.lock();
    match active.iter_mut().find(|s| **s == Some(phys)) {
        Some(slot) => {
            *slot = None;
            platform.deactivate_interrupt(phys);
        }
        // Virtual-only interrupts (timer, managed exit, NPI) need nothing.
        None if matches!(r[1] as u32, VIRTUAL_TIMER_INTID | MANAGED_EXIT_INTID | super::notifications::NPI_INTID) => {}
        None => a[0] = u64::MAX, // -1: not an active interrupt of this SP
    }
    a
}

/// HF_INTERRUPT_ENABLE: interrupts are enabled from the manifest at boot;
/// the call is accepted.
pub(super) fn hf_interrupt_enable(_: &Spmc, _: &Call, _: &mut dyn Platform) -> Regs {
    [0u64; 18]
}

/// HF_INTERRUPT_RECONFIGURE: x1 = id, x2 = command, x3 = value.  Only the
/// enable/disable status command is offered, and accepted as
/// HF_INTERRUPT_ENABLE is (OP-TEE's hfic driver uses it to unmask its
/// interrupts); the others (target PE, security state) answer -1.
pub(super) fn hf_interrupt_reconfigure(_: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let mut a = [0u64; 18];
    if c.regs[2] != HF_INT_RECONFIGURE_STATUS || c.regs[3] > 1 {
        a[0] = u64::MAX;
    }
    a
}


#[cfg(test)]
mod tests {
    use super::*;
    use NsInterruptsAction::*;

    #[test]
    fn ns_interrupt_actions_per_manifest_and_state() {
        assert_eq!(ns_action(Queued, Serving::Normal, false), NsAction::Queue);
        assert_eq!(ns_action(ManagedExit, Serving::Normal, false), NsAction::ManagedExit);
        assert_eq!(ns_action(Signaled, Serving::Normal, false), NsAction::Signal);
        // Inside SP-to-SP chains, at init and during secure interrupt handling: queued.
        for a in [Queued, ManagedExit, Signaled] {
            assert_eq!(ns_action(a, Serving::Secure, false), NsAction::Queue);
            assert_eq!(ns_action(a, Serving::Nobody, false), NsAction::Queue);
        }
        // A managed exit already given: wait for the SP's answer.
        assert_eq!(ns_action(ManagedExit, Serving::Normal, true), NsAction::Queue);
        assert!(trap_ns_interrupts(Signaled, Serving::Normal, false));
        assert!(!trap_ns_interrupts(Queued, Serving::Normal, false));
    }

    #[test]
    fn secure_interrupt_actions() {
        assert_eq!(secure_action(TargetState::Current), SecureAction::InjectAndResume);
        assert_eq!(secure_action(TargetState::Waiting), SecureAction::RunWithFfaInterrupt);
        assert_eq!(secure_action(TargetState::Busy), SecureAction::Pend);
        assert_eq!(secure_action(TargetState::Off), SecureAction::Drop);
    }

    #[test]
    fn virq_queue() {
        let mut q = VirqQueue::default();
        assert_eq!(q.pop(), None);
        assert!(q.push(3) && q.push(4) && q.push(3));
        assert_eq!(q.pop(), Some(3));
        assert_eq!(q.pop(), Some(4));
        assert!(q.is_empty());
        for i in 0..4 {
            assert!(q.push(100 + i));
        }
        assert!(!q.push(200), "full");
    }
}
