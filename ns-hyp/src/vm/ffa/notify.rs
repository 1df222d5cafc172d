//! Notifications for VMs (DEN0077 v1.2 chapter "Notifications"), with
//! ns-hyp in the hypervisor's role:
//!
//! - **Bitmaps.**  The SPMC keeps each VM's notifications from SPs; ns-hyp
//!   creates them there for every endpoint VM (FFA_NOTIFICATION_BITMAP_CREATE
//!   with the VM's id and vCPU count, "invoked by the hypervisor") and
//!   destroys and recreates them when the VM is torn down or reset.  ns-hyp
//!   keeps itself what the SPMC does not see: each VM's notifications from
//!   other VMs, and the hypervisor framework notification "RX buffer full"
//!   of a VM-to-VM indirect message ([`super::indirect`]), in one
//!   [`Bitmaps`] per VM (`shared::ffa_notifications`, the model spmc uses).
//! - **Calls.**  BIND/UNBIND/SET/GET name the VM itself as receiver (BIND,
//!   GET) or sender (SET), else INVALID_PARAMETERS.  What involves an SP goes
//!   to the SPMC as it is (the VM's id in w1: the SPMC trusts the
//!   hypervisor to name its VMs, as Hafnium's does); what is between two VMs
//!   is decided here.  A GET returns both halves: the SPMC's (from SPs, SPM
//!   framework) and ns-hyp's (from VMs, hypervisor framework).
//! - **Interrupts.**  ns-hyp is the receivers' scheduler: it takes the
//!   physical Schedule Receiver Interrupt the SPMC sends to the Normal
//!   world, asks FFA_NOTIFICATION_INFO_GET which VMs (and vCPUs) have
//!   notifications pending, and pends the Notification Pending Interrupt
//!   ([`NPI_INTID`]) on those vCPUs ([`sri`]).  A VM gets FFA_FEATURES(NPI)
//!   and no SRI: it schedules no one (FFA_NOTIFICATION_INFO_GET and
//!   BITMAP_CREATE/DESTROY are NOT_SUPPORTED for it).  Linux's arm_ffa then
//!   requests the NPI as a per-CPU interrupt and, on it, calls
//!   FFA_NOTIFICATION_GET on that CPU.

use super::{error, success, Guests, Proxy, Regs, Upstream, MAX_VMS};
use shared::abi::ffa::interface_args::SuccessArgs;
use shared::abi::ffa::notification::SuccessArgsNotificationInfoGet64;
use shared::abi::ffa::{fid, is_secure_endpoint, FfaError};
use shared::ffa_notifications::Bitmaps;

/// The Notification Pending Interrupt a VM gets: SGI 8, the first SGI that
/// Linux does not take for its own IPIs (its GICv3 driver reserves 0..=7),
/// as Xen's FF-A mediator gives its guests.
pub const NPI_INTID: u32 = 8;

/// FFA_FEATURES feature ids (DEN0077 v1.2, FFA_FEATURES "feature IDs").
pub const FEATURE_NPI: u32 = 1;
pub const FEATURE_SRI: u32 = 2;

/// FFA_NOTIFICATION_BIND flags: bit 0 per-vCPU, the rest MBZ.
const BIND_PER_VCPU: u32 = 1;
/// FFA_NOTIFICATION_SET flags: bit 0 per-vCPU, bit 1 delay SRI (accepted,
/// and of no meaning between two VMs: it is about the physical SRI), bits
/// 31:16 the vCPU of a per-vCPU notification; the rest MBZ.
const SET_PER_VCPU: u32 = 1 << 0;
const SET_MBZ: u32 = 0x0000_fffc;
/// FFA_NOTIFICATION_GET flags: which bitmaps (SPs', VMs', SPM framework,
/// hypervisor framework); the rest MBZ.
const GET_SP: u32 = 1 << 0;
const GET_VM: u32 = 1 << 1;
const GET_SPM: u32 = 1 << 2;
const GET_HYP: u32 = 1 << 3;

/// FFA_NOTIFICATION_INFO_GET_64 calls per SRI at most: each answers up to
/// 20 ids and says whether more are pending.
const INFO_GET_ROUNDS: usize = 8;

/// VM `k`'s notification state in ns-hyp: its notifications from other VMs
/// and its hypervisor framework ones.
pub struct VmNotifications {
    bitmaps: [spin::Mutex<Bitmaps>; MAX_VMS],
}

impl VmNotifications {
    pub const fn new() -> Self {
        VmNotifications { bitmaps: [const { spin::Mutex::new(Bitmaps::new()) }; MAX_VMS] }
    }
}

impl Default for VmNotifications {
    fn default() -> Self {
        Self::new()
    }
}

fn call4<U: Upstream>(up: &U, f: u32, w: [u64; 4]) -> Regs {
    let mut r = [0; 18];
    r[0] = f as u64;
    r[1..5].copy_from_slice(&w);
    up.call(&r)
}

fn is_success(r: &Regs) -> bool {
    matches!(r[0] as u32, fid::FFA_SUCCESS_32 | fid::FFA_SUCCESS_64)
}

/// VM `k` became an endpoint with `vcpus` vCPUs: its bitmaps here.
pub fn add_vm(p: &Proxy, k: usize, vcpus: usize) {
    *p.notes.bitmaps[k].lock() = Bitmaps::created(vcpus);
}

/// VM `k`'s bitmaps at the SPMC (once it is an endpoint), and fresh ones
/// here.  Returns the SPMC's answer (x0..x17) for the log.
pub fn create_bitmaps<U: Upstream>(p: &Proxy, k: usize, up: &U) -> Regs {
    let vm = p.vm(k);
    add_vm(p, k, vm.vcpus as usize);
    call4(up, fid::FFA_NOTIFICATION_BITMAP_CREATE, [vm.id as u64, vm.vcpus as u64, 0, 0])
}

/// VM `k` is torn down or reset: what is pending for it is dropped and its
/// bindings forgotten, here and at the SPMC (which refuses to destroy
/// bitmaps with notifications pending: they are taken first, with GET for
/// each vCPU), then created anew for its next boot.
pub fn vm_gone<U: Upstream>(p: &Proxy, k: usize, up: &U) {
    let vm = p.vm(k);
    if !vm.endpoint {
        return;
    }
    for v in 0..vm.vcpus.max(1) as u64 {
        call4(up, fid::FFA_NOTIFICATION_GET, [v << 16 | vm.id as u64, (GET_SP | GET_SPM) as u64, 0, 0]);
    }
    let destroyed = call4(up, fid::FFA_NOTIFICATION_BITMAP_DESTROY, [vm.id as u64, 0, 0, 0]);
    if !is_success(&destroyed) {
        log::warn!("vm{}: FFA_NOTIFICATION_BITMAP_DESTROY: {:#x} {:#x}", k, destroyed[0], destroyed[2]);
    }
    let created = create_bitmaps(p, k, up);
    if !is_success(&created) {
        log::warn!("vm{}: FFA_NOTIFICATION_BITMAP_CREATE: {:#x} {:#x}", k, created[0], created[2]);
    }
}

/// w1 of BIND/UNBIND/SET: sender [31:16], receiver [15:0].
fn ids(a: &Regs) -> (u16, u16) {
    ((a[1] >> 16) as u16, a[1] as u16)
}

/// FFA_NOTIFICATION_BIND and _UNBIND (w1 sender | receiver, w2 flags, w3/w4
/// the bitmap): the receiver is the VM itself, the sender an SP (forwarded)
/// or another endpoint VM (bound here); else INVALID_PARAMETERS.
pub fn bind<U: Upstream>(p: &Proxy, k: usize, a: &Regs, up: &U, unbind: bool) -> Regs {
    let (sender, receiver) = ids(a);
    let me = p.vm(k).id;
    let flags = a[2] as u32;
    // UNBIND's w2 MBZ; BIND's only bit 0.
    let bad_flags = if unbind { flags != 0 } else { flags & !BIND_PER_VCPU != 0 };
    if receiver != me || sender == me || bad_flags || a[1] >> 32 != 0 {
        return error(FfaError::InvalidParameters);
    }
    if is_secure_endpoint(sender) {
        return up.call(a);
    }
    if p.vm_by_id(sender).is_none() {
        return error(FfaError::InvalidParameters);
    }
    let bitmap = (a[3] & 0xffff_ffff) | (a[4] & 0xffff_ffff) << 32;
    let mut b = p.notes.bitmaps[k].lock();
    let r = if unbind { b.unbind(sender, bitmap) } else { b.bind(sender, bitmap, flags & BIND_PER_VCPU != 0) };
    match r {
        Ok(()) => success(0, 0),
        Err(e) => error(e),
    }
}

/// FFA_NOTIFICATION_SET (w1 sender | receiver, w2 flags, w3/w4 the bitmap):
/// the sender is the VM itself; an SP receiver gets it through the SPMC,
/// another VM here, with the NPI pended on the vCPU that should look.
pub fn set<U: Upstream, M: Guests>(p: &Proxy, k: usize, a: &Regs, up: &U, mem: &M) -> Regs {
    let (sender, receiver) = ids(a);
    let me = p.vm(k).id;
    let flags = a[2] as u32;
    if sender != me || receiver == me || flags & SET_MBZ != 0 || a[1] >> 32 != 0 {
        return error(FfaError::InvalidParameters);
    }
    if is_secure_endpoint(receiver) {
        return up.call(a);
    }
    let Some(j) = p.vm_by_id(receiver) else { return error(FfaError::InvalidParameters) };
    let bitmap = (a[3] & 0xffff_ffff) | (a[4] & 0xffff_ffff) << 32;
    let vcpu = (flags & SET_PER_VCPU != 0).then_some((flags >> 16) as usize);
    // The NPI goes to the vCPU named, or for a global one to vCPU 0, which
    // every guest keeps online.
    let target = vcpu.unwrap_or(0);
    let npi = {
        let mut b = p.notes.bitmaps[j].lock();
        if let Err(e) = b.set(sender, bitmap, vcpu) {
            return error(e);
        }
        b.take_npi(target)
    };
    if npi {
        mem.pend_npi(j, target);
    }
    success(0, 0)
}

/// FFA_NOTIFICATION_GET (w1 vCPU [31:16] | receiver [15:0], w2 which
/// bitmaps): the receiver is the VM itself and the vCPU one of its own.  The
/// SPs' and SPM framework bitmaps come from the SPMC, the VMs' and the
/// hypervisor framework one from ns-hyp: w2/w3 SPs', w4/w5 VMs', w6 SPM
/// framework, w7 hypervisor framework.
pub fn get<U: Upstream>(p: &Proxy, k: usize, a: &Regs, up: &U) -> Regs {
    let vm = p.vm(k);
    let (vcpu, receiver) = ((a[1] >> 16) as u16 as usize, a[1] as u16);
    let flags = a[2] as u32;
    if receiver != vm.id || vcpu >= vm.vcpus.max(1) as usize || flags & !(GET_SP | GET_VM | GET_SPM | GET_HYP) != 0 || a[1] >> 32 != 0 {
        return error(FfaError::InvalidParameters);
    }
    let mut out = success(0, 0);
    if flags & (GET_SP | GET_SPM) != 0 {
        let r = call4(up, fid::FFA_NOTIFICATION_GET, [a[1] & 0xffff_ffff, (flags & (GET_SP | GET_SPM)) as u64, 0, 0]);
        if !is_success(&r) {
            return if r[0] as u32 == fid::FFA_ERROR { r } else { error(FfaError::Aborted) };
        }
        out[2] = r[2] & 0xffff_ffff;
        out[3] = r[3] & 0xffff_ffff;
        out[6] = r[6] & 0xffff_ffff;
    }
    match p.notes.bitmaps[k].lock().get(vcpu, false, flags & GET_VM != 0, flags & GET_HYP != 0) {
        Ok((_, from_vm, hyp)) => {
            out[4] = from_vm & 0xffff_ffff;
            out[5] = from_vm >> 32;
            out[7] = hyp as u64;
        }
        Err(e) => return error(e),
    }
    out
}

/// Sets the hypervisor framework notification "RX buffer full" for VM `j`
/// (a VM-to-VM indirect message is in its RX buffer) and pends its NPI.
pub fn rx_buffer_full<M: Guests>(p: &Proxy, j: usize, mem: &M) {
    let npi = {
        let mut b = p.notes.bitmaps[j].lock();
        b.set_framework(shared::ffa_notifications::FWK_RX_BUFFER_FULL);
        b.take_npi(0)
    };
    if npi {
        mem.pend_npi(j, 0);
    }
}

/// FFA_FEATURES of a feature id: the NPI's interrupt id; the SRI, managed
/// exit and anything else NOT_SUPPORTED.
pub fn feature(id: u32) -> Regs {
    match id {
        FEATURE_NPI => success(NPI_INTID, 0),
        // A VM schedules no receivers: ns-hyp takes the SRI itself.
        FEATURE_SRI => error(FfaError::NotSupported),
        _ => error(FfaError::NotSupported),
    }
}

/// The physical Schedule Receiver Interrupt: asks the SPMC which endpoints
/// have notifications pending (FFA_NOTIFICATION_INFO_GET_64, again while it
/// says more are pending) and pends the NPI on each VM's vCPUs named (a
/// global notification: vCPU 0).  Ids that are no endpoint VM (ns-hyp's own
/// 0: it binds nothing) are skipped.  Returns how many NPIs were pended.
pub fn sri<U: Upstream, M: Guests>(p: &Proxy, up: &U, mem: &M) -> usize {
    let mut pended = 0;
    for _ in 0..INFO_GET_ROUNDS {
        let r = call4(up, fid::FFA_NOTIFICATION_INFO_GET_64, [0; 4]);
        if r[0] as u32 != fid::FFA_SUCCESS_64 {
            break;
        }
        let mut args = [0u64; 16];
        args.copy_from_slice(&r[2..18]);
        let Ok(info) = SuccessArgsNotificationInfoGet64::try_from(SuccessArgs::Args64(args)) else {
            log::warn!("FFA_NOTIFICATION_INFO_GET_64: an answer that does not parse (w2 {:#x})", r[2]);
            break;
        };
        for (id, vcpus) in info.iter() {
            let Some(k) = p.vm_by_id(id) else { continue };
            let count = p.vm(k).vcpus.max(1);
            if vcpus.is_empty() {
                mem.pend_npi(k, 0);
                pended += 1;
            }
            for &v in vcpus.iter().filter(|&&v| v < count) {
                mem.pend_npi(k, v as usize);
                pended += 1;
            }
        }
        if !info.more_pending_notifications {
            break;
        }
    }
    pended
}
