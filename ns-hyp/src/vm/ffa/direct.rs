//! Direct messaging from a VM (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_REQ_32/64,
//! FFA_MSG_SEND_DIRECT_REQ2) and the CPU cycles an SP needs to finish one
//! (FFA_RUN after FFA_INTERRUPT or FFA_YIELD).
//!
//! A request to an SP goes to the SPMC unchanged: the SPMC accepts any
//! non-secure source id from the Normal world, so the VM's own id travels
//! with it and the SP answers that VM.  The proxy only checks that the VM
//! names itself as the sender; the SPMC's reply (the response, FFA_INTERRUPT,
//! FFA_YIELD, FFA_ERROR) comes back to the guest as it is.

use super::{error, Preempted, Proxy, Regs, Upstream, HYPERVISOR_ID};
use shared::abi::ffa::{fid, is_secure_endpoint, unpack_endpoints, FfaError};

/// FFA_YIELD's and FFA_INTERRUPT's SMC32 ids: how the SPMC hands a VM's
/// request back unfinished.
fn unfinished(r: &Regs) -> bool {
    matches!(r[0] as u32, fid::FFA_INTERRUPT | fid::FFA_YIELD)
}

/// A direct response (any form).
fn is_response(r: &Regs) -> bool {
    matches!(r[0] as u32, fid::FFA_MSG_SEND_DIRECT_RESP_32 | fid::FFA_MSG_SEND_DIRECT_RESP_64 | fid::FFA_MSG_SEND_DIRECT_RESP2)
}

/// What VM `me` gets of the SPMC's `reply`: as it is, except a response
/// addressed to another endpoint (an SP context that served a VM torn down
/// since, resumed by this one): that VM's data is not passed on.
fn deliver(p: &Proxy, me: u16, target: Option<u32>, reply: Regs) -> Regs {
    let mut pre = p.preempted.lock();
    if unfinished(&reply) {
        let t = reply[1] as u32;
        // Replace this context's record, else take a free slot; a full table
        // leaves the context unguarded (the SPMC still checks its state).
        let slot = pre.iter().position(|x| x.is_some_and(|x| x.target == t)).or_else(|| pre.iter().position(Option::is_none));
        if let Some(s) = slot {
            pre[s] = Some(Preempted { target: t, owner: me });
        }
        return reply;
    }
    if let Some(t) = target {
        for x in pre.iter_mut().filter(|x| x.is_some_and(|x| x.target == t && x.owner == me)) {
            *x = None;
        }
    }
    drop(pre);
    if is_response(&reply) && unpack_endpoints(reply[1]).1 != me {
        return error(FfaError::Aborted);
    }
    reply
}

/// FFA_MSG_SEND_DIRECT_REQ_32/64 and REQ2: w1 = sender << 16 | receiver.
/// - the sender must be the VM itself: else INVALID_PARAMETERS;
/// - REQ_32/64: w2 = 0 (bit 31 set is a framework message, which only the
///   hypervisor and the SPMD send; bits 30:0 are reserved): else INVALID_PARAMETERS;
/// - an SP receiver: forwarded (x0..x7, REQ2 x0..x17);
/// - another VM: DENIED, as its partition properties say (Linux VMs
///   receive no direct requests, `setup::VM_PROPERTIES`);
/// - the VM itself, the hypervisor or no endpoint at all: INVALID_PARAMETERS.
pub fn direct_req<U: Upstream>(p: &Proxy, k: usize, a: &Regs, up: &U) -> Regs {
    let me = p.vm(k).id;
    let (src, dst) = unpack_endpoints(a[1]);
    let req2 = a[0] as u32 == fid::FFA_MSG_SEND_DIRECT_REQ2;
    if src != me || (a[1] >> 32) != 0 || (!req2 && a[2] != 0) {
        return error(FfaError::InvalidParameters);
    }
    if is_secure_endpoint(dst) {
        let n = if req2 { 18 } else { 8 };
        let mut out = [0; 18];
        out[..n].copy_from_slice(&a[..n]);
        return deliver(p, me, None, up.call(&out));
    }
    if dst != me && dst != HYPERVISOR_ID && p.vm_by_id(dst).is_some() {
        return error(FfaError::Denied);
    }
    error(FfaError::InvalidParameters)
}

/// FFA_RUN: w1 = target id << 16 | its vCPU.  Only an SP's context is run
/// for a VM (ns-hyp schedules the VMs itself: DENIED for any other target),
/// and only by the VM it was serving when it was preempted or yielded
/// (another VM: DENIED).  w2..w7 are reserved and not passed on.
pub fn run<U: Upstream>(p: &Proxy, k: usize, a: &Regs, up: &U) -> Regs {
    let me = p.vm(k).id;
    let target = a[1] as u32;
    if !is_secure_endpoint((target >> 16) as u16) {
        return error(FfaError::Denied);
    }
    if p.preempted.lock().iter().flatten().any(|x| x.target == target && x.owner != me) {
        return error(FfaError::Denied);
    }
    let mut out = [0; 18];
    out[0] = fid::FFA_RUN as u64;
    out[1] = target as u64;
    deliver(p, me, Some(target), up.call(&out))
}

/// Preempted contexts now remembered.
#[cfg(test)]
pub fn preempted_count(p: &Proxy) -> usize {
    p.preempted.lock().iter().flatten().count()
}
