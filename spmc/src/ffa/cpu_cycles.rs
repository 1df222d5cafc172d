//! CPU cycle management (DEN0077 v1.2 chapter "CPU cycle management
//! interfaces"): FFA_MSG_WAIT, FFA_YIELD, FFA_RUN and FFA_INTERRUPT, the
//! runtime states of an execution context, and the loops that run an SP
//! until it gives the CPU back.

use super::calls::Call;
use super::direct_messaging::{ReqKind, check_response};
use super::regs_copy::first_eight;
use super::interrupts::{self, NsAction};
use super::{Caller, Platform, Regs, SpExit, Spmc, codec, error, success};
use shared::abi::ffa::interface_args::TargetInfo;
use shared::abi::ffa::{self as ffa, FfaError, Interface, fid};

/// Life cycle of one execution context (DEN0077 v1.2, execution context runtime states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxState {
    /// Not initialised on its PE (yet, or again after CPU_OFF).
    Off,
    /// Blocked in FFA_MSG_WAIT: may receive a direct request.
    Waiting,
    /// Handling a direct request from `from` (and maybe calling further SPs).
    Running { from: u16, kind: ReqKind },
    /// Gave the CPU back with FFA_YIELD while handling a request from the
    /// Normal world; resumed by FFA_RUN.
    Preempted { from: u16, kind: ReqKind },
    /// Preempted by a Non-secure interrupt (`ns-interrupts-action` 2) while
    /// handling a request from the Normal world; FFA_RUN resumes it where it
    /// was (DEN0077 v1.2, Non-secure interrupt actions).
    Interrupted { from: u16, kind: ReqKind },
    /// Resumed from FFA_MSG_WAIT with FFA_INTERRUPT to handle a virtual
    /// interrupt; back to Waiting at its next FFA_MSG_WAIT.
    HandlingInterrupt,
}

/// What to do after an SP's call was handled.
pub enum SpStep {
    /// Resume the SP with this answer.
    Resume(Regs),
    /// Resume the SP exactly where it stopped (after an interrupt).
    Continue,
    /// A Non-secure interrupt stopped it (only when trapped: see [`super::RunFlags`]).
    NsInterrupt,
    /// The SP blocked in FFA_MSG_WAIT.
    Waited,
    /// The SP answered a direct request: the response is the call it just
    /// made (its registers stay in the caller's [`SpExit::Call`], not copied
    /// into the step; issue P item 3).
    Responded,
    /// The SP gave the CPU back to the Normal world caller (FFA_YIELD).
    Yielded,
    /// The SP reported a failure (FFA_ERROR) or faulted: it is aborted.
    Failed,
}

/// w1 of FFA_YIELD, FFA_INTERRUPT and FFA_RUN: endpoint id [31:16] | vCPU id [15:0].
fn target_info(id: u16, ctx: usize) -> u64 {
    ((id as u64) << 16) | ctx as u64
}

/// FFA_INTERRUPT for context `ctx` of endpoint `id` (w1: target information;
/// w2, the interrupt id, 0: the SP gets it with HF_INTERRUPT_GET).
fn ffa_interrupt_to(id: u16, ctx: usize) -> Interface {
    Interface::Interrupt { target_info: TargetInfo { endpoint_id: id, vcpu_id: ctx as u16 }, interrupt_id: 0, is_32bit: true }
}

impl Spmc {
    /// Runs context `ctx` of SP `i` (first with `answer` in its registers, if
    /// any) until it calls FFA_MSG_WAIT, which leaves the context Waiting.  A
    /// response with no request or a yield with no caller is refused with
    /// DENIED and the SP goes on.  Returns false if the SP failed (its fault or
    /// an invalid exit); the caller decides what that means.
    pub(super) fn run_until_wait(&self, i: usize, ctx: usize, cpu: usize, mut answer: Option<Regs>, platform: &mut dyn Platform) -> bool {
        loop {
            let flags = self.run_flags(&mut self.lock_context(i, ctx));
            let exit = platform.run_sp(i, ctx, answer.as_ref(), flags);
            match self.sp_exit(i, ctx, cpu, &exit, platform) {
                SpStep::Resume(r) => answer = Some(r),
                SpStep::Continue | SpStep::NsInterrupt => answer = None,
                SpStep::Waited => {
                    self.lock_context(i, ctx).state = CtxState::Waiting;
                    return true;
                }
                SpStep::Responded | SpStep::Yielded => answer = Some(error(FfaError::Denied)),
                SpStep::Failed => return false,
            }
        }
    }

    fn sp_exit(&self, i: usize, ctx: usize, cpu: usize, exit: &SpExit, platform: &mut dyn Platform) -> SpStep {
        match *exit {
            SpExit::Fault { esr, far, elr, ipa } => self.fault(i, ctx, esr, far, elr, ipa),
            SpExit::Call(ref regs) => self.handle_sp_call(i, ctx, cpu, regs, platform),
            SpExit::NsInterrupt => SpStep::NsInterrupt,
            SpExit::SecureInterrupt(intid) => {
                self.secure_interrupt(intid, cpu, Some((i, ctx)), platform);
                SpStep::Continue
            }
        }
    }

    /// Runs context `ctx` of SP `i`, handling its calls, until it answers the
    /// request it is Running for, yields, or dies.  The context is Running
    /// for this PE (set under its lock by whoever gave it the request), so no
    /// other PE runs it meanwhile; its lock is taken only around each
    /// decision, never across a run.
    /// `first` is borrowed, not moved in: the request goes from the
    /// caller's block straight into the SP's registers (issue P item 3).
    pub(super) fn run_until_response(&self, i: usize, ctx: usize, cpu: usize, first: Option<&Regs>, platform: &mut dyn Platform) -> Regs {
        // What the next run returns to the SP: `first`, then answers of ours.
        let mut answer: Option<Regs> = None;
        let mut use_first = true;
        loop {
            let flags = self.run_flags(&mut self.lock_context(i, ctx));
            let next = if use_first { first } else { answer.as_ref() };
            let exit = platform.run_sp(i, ctx, next, flags);
            use_first = false;
            match self.sp_exit(i, ctx, cpu, &exit, platform) {
                SpStep::Resume(a) => answer = Some(a),
                SpStep::Continue => answer = None,
                SpStep::NsInterrupt => {
                    answer = None;
                    let mut c = self.lock_context(i, ctx);
                    let CtxState::Running { from, kind } = c.state else { continue };
                    let p = self.part(i);
                    match interrupts::ns_action(p.manifest.ns_interrupts_action, interrupts::serving(c.state), c.managed_exit) {
                        // Not trapped for these (RunFlags); if one comes anyway, go on.
                        NsAction::Queue => {}
                        NsAction::ManagedExit => {
                            // The SP answers its caller itself (direct response);
                            // NS interrupts stay pending until then.
                            c.managed_exit = true;
                            c.virqs.push(interrupts::MANAGED_EXIT_INTID);
                            drop(c);
                            log::info!("NS interrupt: managed exit for SP {:#06x} ctx {}", p.manifest.id, ctx);
                        }
                        NsAction::Signal => {
                            c.state = CtxState::Interrupted { from, kind };
                            drop(c);
                            log::info!("NS interrupt: SP {:#06x} ctx {} preempted, FFA_INTERRUPT to NS", self.part(i).manifest.id, ctx);
                            // FFA_INTERRUPT to the caller: w1 = SP id [31:16] | vCPU [15:0];
                            // it resumes the SP with FFA_RUN (DEN0077 v1.2, Non-secure interrupt actions).
                            return codec::encode(ffa_interrupt_to(self.part(i).manifest.id, ctx));
                        }
                    }
                }
                SpStep::Responded => {
                    // Only a call returns Responded (`ffa_msg_send_direct_resp`).
                    let SpExit::Call(resp) = &exit else {
                        answer = Some(error(FfaError::Denied));
                        continue;
                    };
                    // State and response checked under this one lock.
                    let mut c = self.lock_context(i, ctx);
                    let CtxState::Running { from, kind } = c.state else {
                        answer = Some(error(FfaError::Denied));
                        continue;
                    };
                    if let Err(e) = check_response(self, i, from, kind, resp) {
                        answer = Some(error(e));
                        continue;
                    }
                    c.state = CtxState::Waiting;
                    c.managed_exit = false;
                    drop(c);
                    return match kind {
                        // RESP2: x4..x17 carry the payload; x2/x3 MBZ.
                        ReqKind::Req2 => {
                            let mut out = *resp;
                            out[2] = 0;
                            out[3] = 0;
                            out
                        }
                        ReqKind::Run => *resp,
                        // DIRECT_RESP_{32,64}: x0..x7 only, x8..x17 zero.
                        ReqKind::Req32 | ReqKind::Req64 | ReqKind::Framework { .. } => first_eight(resp),
                    };
                }
                SpStep::Yielded => {
                    let mut c = self.lock_context(i, ctx);
                    let CtxState::Running { from, kind } = c.state else {
                        answer = Some(error(FfaError::Denied));
                        continue;
                    };
                    c.state = CtxState::Preempted { from, kind };
                    drop(c);
                    // FFA_YIELD to the caller: w1 = SP id [31:16] | vCPU [15:0]
                    // (DEN0077 v1.2, FFA_YIELD).
                    let mut y = [0u64; 18];
                    y[0] = fid::FFA_YIELD as u64;
                    y[1] = target_info(self.part(i).manifest.id, ctx);
                    return y;
                }
                SpStep::Waited => {
                    let mut c = self.lock_context(i, ctx);
                    if let CtxState::Running { kind: ReqKind::Run, .. } = c.state {
                        // Run by the scheduler: done, back to it with FFA_MSG_WAIT.
                        c.state = CtxState::Waiting;
                        c.managed_exit = false;
                        drop(c);
                        let mut w = [0u64; 18];
                        w[0] = fid::FFA_MSG_WAIT as u64;
                        return w;
                    }
                    drop(c);
                    answer = Some(error(FfaError::Denied));
                }
                SpStep::Failed => {
                    // The context is gone with its partition; the caller learns why.
                    self.lock_context(i, ctx).state = CtxState::Off;
                    return error(FfaError::Aborted);
                }
            }
        }
    }

    /// FFA_RUN from the Normal world (DEN0077 v1.2, FFA_RUN): w1 = target
    /// id [31:16] | vCPU [15:0].  Resumes a context that yielded.
    fn run(&self, id: u16, vcpu: usize, cpu: usize, platform: &mut dyn Platform) -> Regs {
        let Some(i) = self.find(id) else {
            return error(FfaError::InvalidParameters);
        };
        let p = self.part(i);
        if vcpu >= p.context_count() || (p.manifest.is_mp() && vcpu != cpu) {
            // An MP partition's context runs only on its own PE.
            return error(FfaError::InvalidParameters);
        }
        if p.is_aborted() {
            return error(FfaError::Aborted);
        }
        // Checked and taken under one lock: two PEs cannot both resume it.
        let mut c = self.lock_context(i, vcpu);
        let first = match c.state {
            CtxState::Preempted { from, kind } => {
                c.state = CtxState::Running { from, kind };
                // FFA_YIELD returns FFA_SUCCESS to the SP when it is run again.
                Some(success(&[]))
            }
            CtxState::Interrupted { from, kind } => {
                c.state = CtxState::Running { from, kind };
                // Preempted asynchronously: it continues where it was, registers untouched.
                None
            }
            CtxState::Running { .. } | CtxState::HandlingInterrupt => return error(FfaError::Busy),
            // Waiting with notifications or an indirect message pending: the
            // scheduler's FFA_RUN after the SRI and FFA_NOTIFICATION_INFO_GET
            // gives it cycles; it gets FFA_RUN (w1 = its id | vCPU) and ends
            // with FFA_MSG_WAIT, which the scheduler gets back.
            CtxState::Waiting if self.has_pending_work(i, vcpu) => {
                c.state = CtxState::Running { from: super::NS_ENDPOINT_ID, kind: ReqKind::Run };
                let mut r = [0u64; 18];
                r[0] = fid::FFA_RUN as u64;
                r[1] = target_info(id, vcpu);
                Some(r)
            }
            // Nothing to run: it waits for a message.
            CtxState::Waiting | CtxState::Off => return error(FfaError::Denied),
        };
        drop(c);
        self.run_until_response(i, vcpu, cpu, first.as_ref(), platform)
    }

    /// Runs a waiting context with FFA_INTERRUPT (DEN0077 v1.2, FFA_INTERRUPT:
    /// the SP's handling of a virtual interrupt while it waits) until its next
    /// FFA_MSG_WAIT.
    /// The context was Waiting and is HandlingInterrupt now, set under its
    /// lock by the caller.
    pub(super) fn run_interrupt_handler(&self, i: usize, ctx: usize, cpu: usize, platform: &mut dyn Platform) {
        let first = codec::encode(ffa_interrupt_to(self.part(i).manifest.id, ctx));
        if !self.run_until_wait(i, ctx, cpu, Some(first), platform) {
            self.lock_context(i, ctx).state = CtxState::Off;
        }
    }
}

/// FFA_MSG_WAIT from an SP: it blocks until a message (or an interrupt)
/// comes.  During a direct request it must answer it first (DEN0077 v1.2,
/// FFA_MSG_SEND_DIRECT_REQ).
pub(super) fn ffa_msg_wait(s: &Spmc, c: &Call, _: &mut dyn Platform) -> SpStep {
    let Caller::Sp(i) = c.caller else { return SpStep::Resume(error(FfaError::NotSupported)) };
    match s.part(i).ctx_state(c.ctx) {
        // Run by the scheduler (FFA_RUN): done.
        CtxState::Running { kind: ReqKind::Run, .. } => SpStep::Waited,
        CtxState::Running { .. } | CtxState::Preempted { .. } | CtxState::Interrupted { .. } => SpStep::Resume(error(FfaError::Denied)),
        _ => SpStep::Waited,
    }
}

/// FFA_YIELD from an SP: only a Normal-world caller can resume it with FFA_RUN.
pub(super) fn ffa_yield(s: &Spmc, c: &Call, _: &mut dyn Platform) -> SpStep {
    let Caller::Sp(i) = c.caller else { return SpStep::Resume(error(FfaError::NotSupported)) };
    match s.part(i).ctx_state(c.ctx) {
        CtxState::Running { from, .. } if !ffa::is_secure_endpoint(from) => SpStep::Yielded,
        _ => SpStep::Resume(error(FfaError::Denied)),
    }
}

pub(super) fn ffa_run(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let Some(Interface::Run { target_info, .. }) = c.decoded else { return error(FfaError::InvalidParameters) };
    s.run(target_info.endpoint_id, target_info.vcpu_id as usize, c.cpu, platform)
}

/// FFA_INTERRUPT from the SPMD (it refuses it from NS): a Secure interrupt
/// fired while the Normal world ran (TF-A `spmd_secure_interrupt_handler`).
/// Handle it, then let NS go on with FFA_NORMAL_WORLD_RESUME.
pub(super) fn ffa_interrupt(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let intid = platform.acknowledge_interrupt();
    if intid != interrupts::SPURIOUS_INTID {
        s.secure_interrupt(intid, c.cpu, None, platform);
    }
    shared::request_log!("secure interrupt {} while NS ran: handled", intid);
    codec::encode(Interface::NormalWorldResume { is_32bit: true })
}
