//! Direct messaging (DEN0077 v1.2 chapter "Direct messaging interfaces"):
//! FFA_MSG_SEND_DIRECT_REQ_{32,64} / FFA_MSG_SEND_DIRECT_RESP_{32,64} and
//! FFA_MSG_SEND_DIRECT_REQ2 / FFA_MSG_SEND_DIRECT_RESP2, from the Normal
//! world or between SPs.

use super::calls::Call;
use super::context::ContextLocked;
use super::cpu_cycles::{CtxState, SpStep};
use super::{Caller, Platform, Regs, Spmc, error};
use crate::partition::Uuid;
use crate::partition::manifest::{MSG_DIRECT_REQ_RECV, MSG_DIRECT_REQ_SEND, MSG_DIRECT_REQ2_RECV, MSG_DIRECT_REQ2_SEND};
use shared::abi::ffa::{self as ffa, FfaError, fid, framework};

/// Which direct message ABI a request used; its response must match
/// (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_RESP and FFA_MSG_SEND_DIRECT_RESP2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqKind {
    Req32,
    Req64,
    Req2,
    /// A framework message of the hypervisor (DEN0077 v1.2, "VM availability
    /// messages": VM created/destroyed) in FFA_MSG_SEND_DIRECT_REQ_{32,64}
    /// (`wide`: the 64-bit one); `msg` its type (w2[7:0]): the response must
    /// be the matching framework response (type + 1).
    Framework { wide: bool, msg: u64 },
    /// No request: FFA_RUN from the Normal world's scheduler gave a waiting
    /// context cycles for its pending notifications or indirect message
    /// ([`super::notifications`]); it ends with FFA_MSG_WAIT, no response.
    Run,
}

/// The direct response function id that answers a request of `kind`.
pub(super) fn response_fid(kind: ReqKind) -> u32 {
    match kind {
        ReqKind::Req32 => fid::FFA_MSG_SEND_DIRECT_RESP_32,
        ReqKind::Req64 => fid::FFA_MSG_SEND_DIRECT_RESP_64,
        ReqKind::Req2 => fid::FFA_MSG_SEND_DIRECT_RESP2,
        ReqKind::Framework { wide: false, .. } => fid::FFA_MSG_SEND_DIRECT_RESP_32,
        ReqKind::Framework { wide: true, .. } => fid::FFA_MSG_SEND_DIRECT_RESP_64,
        // No direct response answers it.
        ReqKind::Run => 0,
    }
}

/// A direct request from the SPMD's endpoint to the SPMC itself: a framework
/// message ([`super::framework`]), not a request to an SP.
pub(super) fn is_framework_message(s: &Spmc, r: &Regs) -> bool {
    let (src, dst) = ffa::unpack_endpoints(r[1]);
    r[0] as u32 != fid::FFA_MSG_SEND_DIRECT_REQ2 && src == ffa::SPMD_ENDPOINT_ID && dst == s.id
}

impl Spmc {
    /// FFA_MSG_SEND_DIRECT_REQ_{32,64} and FFA_MSG_SEND_DIRECT_REQ2 from the
    /// Normal world or an SP on PE `cpu`: checks the endpoints, then runs the
    /// receiver until its direct response.
    ///
    /// Call chains (SP to SP) nest: the caller's context stays Running while
    /// the callee runs, so a request to any context already in the chain (a
    /// cycle) or otherwise busy gets BUSY, as Hafnium answers.
    ///
    /// The receiver's context is checked and made Running under its lock (for
    /// an SP caller, with the caller's context locked too, in the global
    /// order: [`Spmc::lock_two`]), then unlocked before it runs: a request on
    /// another PE for another context never waits for this one.
    pub(super) fn direct_request(&self, caller: Caller, caller_ctx: usize, cpu: usize, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let f = r[0] as u32;
        let mut kind = match f {
            fid::FFA_MSG_SEND_DIRECT_REQ_32 => ReqKind::Req32,
            fid::FFA_MSG_SEND_DIRECT_REQ_64 => ReqKind::Req64,
            _ => ReqKind::Req2,
        };
        let (src, dst) = ffa::unpack_endpoints(r[1]);
        let version = match caller {
            Caller::Ns => {
                // Any Normal-world endpoint (the hypervisor or one of its
                // VMs); the SPMD checks this too: a secure source id from NS is a lie.
                if !ffa::is_ns_endpoint(src) {
                    return error(FfaError::InvalidParameters);
                }
                self.ns_version()
            }
            Caller::Sp(ci) => {
                let p = self.part(ci);
                if src != p.manifest.id {
                    return error(FfaError::InvalidParameters);
                }
                let send = if kind == ReqKind::Req2 { MSG_DIRECT_REQ2_SEND } else { MSG_DIRECT_REQ_SEND };
                if p.manifest.messaging_method & send == 0 {
                    return error(FfaError::Denied);
                }
                p.version()
            }
        };
        // FFA_MSG_SEND_DIRECT_REQ2 is a v1.2 interface (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_REQ2).
        if kind == ReqKind::Req2 && version < 0x1_0002 {
            return error(FfaError::NotSupported);
        }
        let Some(i) = self.find(dst) else {
            return error(FfaError::InvalidParameters);
        };
        let p = self.part(i);
        if kind != ReqKind::Req2 && r[2] & framework::FLAG != 0 {
            // A framework message to an SP: only the VM availability
            // messages, only from the Normal world's hypervisor, only to an
            // SP that subscribed to that type (else INVALID_PARAMETERS, as
            // Hafnium answers).
            match vm_availability_message(caller, p.manifest.vm_availability_messages, r[2]) {
                Some(msg) => kind = ReqKind::Framework { wide: kind == ReqKind::Req64, msg },
                None => return error(FfaError::InvalidParameters),
            }
        }
        if kind == ReqKind::Req2 {
            // x2/x3: the UUID of the service; Nil = the partition's (first) one.
            let uuid = Uuid([r[2] as u32, (r[2] >> 32) as u32, r[3] as u32, (r[3] >> 32) as u32]);
            if !uuid.is_nil() && !p.manifest.uuids().contains(&uuid) {
                return error(FfaError::InvalidParameters);
            }
        }
        let recv = if kind == ReqKind::Req2 { MSG_DIRECT_REQ2_RECV } else { MSG_DIRECT_REQ_RECV };
        if p.manifest.messaging_method & recv == 0 {
            return error(FfaError::Denied);
        }
        if p.is_aborted() {
            return error(FfaError::Aborted);
        }
        let ctx = p.ctx_for(cpu);
        let taken = match caller {
            Caller::Ns => take_receiver(&mut self.lock_context(i, ctx), src, kind),
            Caller::Sp(ci) => match self.lock_two((ci, caller_ctx), (i, ctx)) {
                Some((sender, mut receiver)) if matches!(sender.state, CtxState::Running { .. }) => take_receiver(&mut receiver, src, kind),
                Some(_) => Err(FfaError::Denied),
                // The sender's own context: it is running, so busy.
                None => Err(FfaError::Busy),
            },
        };
        if let Err(e) = taken {
            return error(e);
        }
        // A request with nothing to mask goes from the caller's block
        // straight into the receiver's registers; only one with bits set
        // that its width leaves undefined is copied and masked (issue P
        // item 3: one 144-byte copy less per request; the callers' SMCCC
        // code leaves the unused registers zero).
        if !needs_masking(kind, r) {
            return self.run_until_response(i, ctx, cpu, Some(r), platform);
        }
        let mut req = *r;
        if matches!(kind, ReqKind::Req32 | ReqKind::Framework { wide: false, .. }) {
            // SMC32: only w0..w7 are defined (DEN0028 §2.6); upper halves and x8.. MBZ.
            for (n, x) in req.iter_mut().enumerate() {
                *x = if n < 8 { *x & 0xffff_ffff } else { 0 };
            }
        } else if matches!(kind, ReqKind::Req64 | ReqKind::Framework { wide: true, .. }) {
            for x in req[8..].iter_mut() {
                *x = 0;
            }
        }
        self.run_until_response(i, ctx, cpu, Some(&req), platform)
    }
}

/// Whether a request of `kind` has bits set that its width leaves
/// undefined and the receiver must see as zero: for SMC32, the upper halves
/// of x0..x7 and x8..x17 (DEN0028 §2.6); for SMC64 direct requests,
/// x8..x17.  FFA_MSG_SEND_DIRECT_REQ2 uses all of x0..x17.
pub(super) fn needs_masking(kind: ReqKind, r: &Regs) -> bool {
    match kind {
        ReqKind::Req32 | ReqKind::Framework { wide: false, .. } => any_set(r[..8].iter().map(|x| x >> 32)) || any_set(r[8..].iter().copied()),
        ReqKind::Req64 | ReqKind::Framework { wide: true, .. } => any_set(r[8..].iter().copied()),
        ReqKind::Req2 | ReqKind::Run => false,
    }
}

/// Whether any of `words` is non-zero.  Folded with a rotate, a serial
/// chain (one ORR with a rotated operand per word on AArch64): a plain OR
/// or `any` is vectorised through the stack under the target's strict
/// alignment, ~45 instructions instead of ~15 (issue P item 3).  A rotation
/// keeps a non-zero accumulator non-zero, so the answer is the same.
fn any_set(words: impl Iterator<Item = u64>) -> bool {
    words.fold(0u64, |acc, x| acc.rotate_left(1) | x) != 0
}

/// The type of a VM availability message (DEN0077 v1.2, framework messages:
/// w2[31] framework, w2[7:0] type, the rest of w2 MBZ) that `caller` may
/// send to an SP with `subscribed` (its `vm-availability-messages`): VM
/// created (4) or VM destroyed (6), from the Normal world only.
pub(super) fn vm_availability_message(caller: Caller, subscribed: u32, w2: u64) -> Option<u64> {
    use crate::partition::manifest::{VM_CREATED, VM_DESTROYED};
    if caller != Caller::Ns || w2 & !(framework::FLAG | framework::TYPE_MASK) != 0 {
        return None;
    }
    let msg = w2 & framework::TYPE_MASK;
    let wanted = match msg {
        framework::VM_CREATED_REQ => VM_CREATED,
        framework::VM_DESTROYED_REQ => VM_DESTROYED,
        _ => return None,
    };
    (subscribed & wanted != 0).then_some(msg)
}

/// Gives the locked receiver context a direct request from `src`: only a
/// context that waits for one takes it (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_REQ:
/// BUSY when the receiver's context cannot take it now).
fn take_receiver(receiver: &mut ContextLocked, src: u16, kind: ReqKind) -> Result<(), FfaError> {
    match receiver.state {
        CtxState::Waiting => {
            receiver.state = CtxState::Running { from: src, kind };
            Ok(())
        }
        CtxState::Running { .. } | CtxState::Preempted { .. } | CtxState::Interrupted { .. } | CtxState::HandlingInterrupt | CtxState::Off => Err(FfaError::Busy),
    }
}

/// FFA_MSG_SEND_DIRECT_REQ_{32,64} / FFA_MSG_SEND_DIRECT_REQ2.  From the
/// Normal world, a request from the SPMD's endpoint to us is a framework
/// message; from an SP, only a context that is handling a request may send
/// one (not during its initialisation, not while it waits).
pub(super) fn ffa_msg_send_direct_req(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    match c.caller {
        Caller::Ns if is_framework_message(s, c.regs) => s.framework_message(c.regs),
        Caller::Ns => s.direct_request(Caller::Ns, 0, c.cpu, c.regs, platform),
        Caller::Sp(i) => {
            // The calling context runs on this PE: a copy of its state is current.
            if !matches!(s.part(i).ctx_state(c.ctx), CtxState::Running { .. }) {
                return error(FfaError::Denied);
            }
            s.direct_request(c.caller, c.ctx, c.cpu, c.regs, platform)
        }
    }
}

/// FFA_MSG_SEND_DIRECT_RESP_{32,64} / FFA_MSG_SEND_DIRECT_RESP2 from an SP:
/// handed to the loop that runs it, which checks it against the request
/// ([`check_response`]) under the context's lock, taken there once: this
/// handler reading the state under the lock first cost a second lock per
/// response (issue P item 3).  Outside a request (its initialisation, an
/// interrupt's handling) that loop answers DENIED.
pub(super) fn ffa_msg_send_direct_resp(_: &Spmc, c: &Call, _: &mut dyn Platform) -> SpStep {
    match c.caller {
        Caller::Sp(_) => SpStep::Responded,
        Caller::Ns => SpStep::Resume(error(FfaError::NotSupported)),
    }
}

/// Whether `resp`, a direct response from SP `i` whose context handles a
/// request of `kind` from `from`, answers that request: from itself to
/// `from`, w2 as the request requires, and with the request's ABI and width
/// (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_RESP / _RESP2); INVALID_PARAMETERS
/// otherwise, as Hafnium answers.
pub(super) fn check_response(s: &Spmc, i: usize, from: u16, kind: ReqKind, resp: &Regs) -> Result<(), FfaError> {
    let (src, dst) = ffa::unpack_endpoints(resp[1]);
    if src != s.part(i).manifest.id || dst != from {
        return Err(FfaError::InvalidParameters);
    }
    let bad_w2 = match kind {
        // The framework response to its request: type + 1 (VM created
        // response 5, VM destroyed response 7), the rest of w2 MBZ.
        ReqKind::Framework { msg, .. } => resp[2] as u32 as u64 != framework::FLAG | (msg + 1),
        _ => reserved_w2_set(resp),
    };
    if bad_w2 || resp[0] as u32 != response_fid(kind) {
        return Err(FfaError::InvalidParameters);
    }
    Ok(())
}

/// FFA_MSG_SEND_DIRECT_RESP_{32,64}: w2 carries the framework message flags
/// (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_RESP: bit 31 framework message, the rest
/// reserved, MBZ).  We never send an SP a framework message, so its response
/// must have all of w2 clear (Hafnium answers INVALID_PARAMETERS too).
/// FFA_MSG_SEND_DIRECT_RESP2's x2/x3 are not checked here.
fn reserved_w2_set(r: &Regs) -> bool {
    match r[0] as u32 {
        fid::FFA_MSG_SEND_DIRECT_RESP_32 => r[2] as u32 != 0,
        fid::FFA_MSG_SEND_DIRECT_RESP_64 => r[2] != 0,
        _ => false,
    }
}
