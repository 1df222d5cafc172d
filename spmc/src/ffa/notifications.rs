//! Notifications (DEN0077 v1.2 chapter "Notifications"):
//! FFA_NOTIFICATION_BITMAP_CREATE/DESTROY, FFA_NOTIFICATION_BIND/UNBIND,
//! FFA_NOTIFICATION_SET/GET, FFA_NOTIFICATION_INFO_GET_32/64, the SPM
//! framework notification "RX buffer full" (set by FFA_MSG_SEND2,
//! [`super::indirect_messaging`]) and the Schedule Receiver Interrupt (SRI).
//!
//! Every receiver has one [`Bitmaps`]: each SP whose manifest has
//! `notification-support` (created at boot), and each Normal-world endpoint
//! once the hypervisor (or the OS without one, as Linux's arm_ffa driver
//! does) called FFA_NOTIFICATION_BITMAP_CREATE for it: endpoint 0 itself
//! and up to [`super::MAX_NS_VMS`] VMs of the hypervisor, by any
//! Normal-world id (NO_MEMORY past that, as Hafnium's SPMC answers).  The
//! hypervisor calls for its VMs: it creates and destroys their bitmaps,
//! binds and unbinds SP senders for them, sets notifications from them to
//! SPs and gets theirs (the receiver id in w1), trusted to name the right
//! VM as in Hafnium; SPs bind VM senders and set notifications for VM
//! receivers; FFA_NOTIFICATION_INFO_GET lists the VMs (and their vCPUs)
//! with notifications pending, and the SRI goes to the Normal world as for
//! endpoint 0.  Each of the 64
//! notifications of a receiver is bound to one sender at a time, as global
//! or per-vCPU.  A receiver's bitmaps are a leaf lock
//! ([`super::context`]'s order): never held while another lock is taken.
//!
//! The SRI tells the Normal world's scheduler that some receiver has
//! notifications pending; it calls FFA_NOTIFICATION_INFO_GET to learn which
//! (DEN0077 v1.2, "Schedule Receiver Interrupt").  As Hafnium does, it is an
//! SGI ([`SRI_INTID`], Hafnium's HF_SCHEDULE_RECEIVER_INTID) made Group 1
//! Non-secure, whose id FFA_FEATURES(SRI) reports to the Normal world; spmc
//! pends it on the PE where the notification was set
//! ([`super::Platform::send_sri`]).  It is always sent when the PE next
//! returns to the Normal world (as FFA_NOTIFICATION_SET's "delay SRI" flag
//! asks): pended earlier, with an SP running and HCR_EL2.FMO set, it would
//! preempt that SP as a Non-secure interrupt.

use super::calls::Call;
use super::{Caller, MAX_CONTEXTS, MAX_NS_VMS, NS_ENDPOINT_ID, Platform, Regs, Spmc, codec, error, success};
use shared::abi::ffa::interface_args::{SuccessArgs, TargetInfo};
use shared::abi::ffa::notification::{SuccessArgsNotificationInfoGet32, SuccessArgsNotificationInfoGet64};
use shared::abi::ffa::{self as ffa, FfaError, Interface};

/// The SRI: SGI 8, Hafnium's HF_SCHEDULE_RECEIVER_INTID.  Linux's arm_ffa
/// asks FFA_FEATURES for it and requests it as a per-CPU interrupt.
pub const SRI_INTID: u32 = 8;
/// The Notification Pending Interrupt, a virtual interrupt for SPs:
/// Hafnium's HF_NOTIFICATION_PENDING_INTID.  Reported by FFA_FEATURES(NPI)
/// to SPs, and pended for an SP's vCPU that has pending notifications when
/// it is next run (see [`Bitmaps::take_npi`]).
pub const NPI_INTID: u32 = shared::abi::hafnium::NOTIFICATION_PENDING_INTID;
pub use shared::ffa_notifications::{Bitmaps, FWK_RX_BUFFER_FULL};
use shared::ffa_notifications::bits;
use core::sync::atomic::{AtomicBool, Ordering};

/// An SP's notification bitmaps under their lock, with a hint read without
/// it: whether anything was pending when the lock was last let go.  Each
/// run of one of its contexts asks whether that context is owed the
/// Notification Pending Interrupt ([`Bitmaps::take_npi`]); with nothing
/// pending the answer is no, now without the lock, the call and the unlock
/// (three runs per SP-to-SP round trip; issue P item 3).
pub struct SpBitmaps {
    bitmaps: spin::Mutex<Bitmaps>,
    /// [`Bitmaps::any_pending`] as of the last unlock; written only under the lock.
    any_pending: AtomicBool,
}

impl SpBitmaps {
    pub fn new(b: Bitmaps) -> Self {
        Self { any_pending: AtomicBool::new(b.any_pending()), bitmaps: spin::Mutex::new(b) }
    }

    /// Locks the bitmaps; the hint is brought up to date as the guard goes.
    pub fn lock(&self) -> SpBitmapsGuard<'_> {
        SpBitmapsGuard { any_pending: &self.any_pending, guard: self.bitmaps.lock() }
    }

    /// False only if nothing was pending at the last unlock.  A SET racing
    /// with this read on another PE may be missed, as it is when the run
    /// takes the lock just before the SET does: the NPI then comes at the
    /// context's next run (DEN0077 v1.2, notifications: the SPMC pends it
    /// when the receiver's vCPU is next run).
    pub fn may_be_pending(&self) -> bool {
        self.any_pending.load(Ordering::Acquire)
    }
}

/// [`SpBitmaps`] locked.
pub struct SpBitmapsGuard<'a> {
    any_pending: &'a AtomicBool,
    guard: spin::MutexGuard<'a, Bitmaps>,
}

impl core::ops::Deref for SpBitmapsGuard<'_> {
    type Target = Bitmaps;
    fn deref(&self) -> &Bitmaps {
        &self.guard
    }
}

impl core::ops::DerefMut for SpBitmapsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Bitmaps {
        &mut self.guard
    }
}

impl Drop for SpBitmapsGuard<'_> {
    fn drop(&mut self) {
        // Still under the lock: `guard` is dropped after this body.
        self.any_pending.store(self.guard.any_pending(), Ordering::Release);
    }
}

/// FFA_NOTIFICATION_BIND flags: bit 0 per-vCPU; the rest MBZ.
const BIND_PER_VCPU: u64 = 1;
/// FFA_NOTIFICATION_GET flags (w2): which bitmaps to return.
const GET_SP: u64 = 1 << 0;
const GET_VM: u64 = 1 << 1;
const GET_SPM: u64 = 1 << 2;
const GET_HYP: u64 = 1 << 3;

/// A VM's bitmaps and its id (meaningful while the bitmaps are created).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmSlot {
    pub id: u16,
    pub bitmaps: Bitmaps,
}

/// The notification bitmaps of up to [`MAX_NS_VMS`] VMs of the Normal
/// world's hypervisor, each slot a leaf lock; `alloc` is taken by
/// BITMAP_CREATE/DESTROY while they look for the id and a free slot, so two
/// creates never claim two slots for one id (then a slot's lock).
pub struct VmBitmaps {
    slots: [spin::Mutex<VmSlot>; MAX_NS_VMS],
    alloc: spin::Mutex<()>,
}

impl VmBitmaps {
    pub const fn new() -> Self {
        Self { slots: [const { spin::Mutex::new(VmSlot { id: NS_ENDPOINT_ID, bitmaps: Bitmaps::new() }) }; MAX_NS_VMS], alloc: spin::Mutex::new(()) }
    }

    /// Every slot free again (host fuzzing reuses one table).
    pub fn clear(&self) {
        for s in &self.slots {
            s.lock().bitmaps = Bitmaps::new();
        }
    }
}

impl Default for VmBitmaps {
    fn default() -> Self {
        Self::new()
    }
}


/// One receiver's entry in FFA_NOTIFICATION_INFO_GET: its id, whether a
/// global notification is pending, and which vCPUs have per-vCPU ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InfoEntry {
    pub id: u16,
    pub global: bool,
    pub vcpus: u64,
}

/// Packs receivers into FFA_NOTIFICATION_INFO_GET's lists (DEN0077 v1.2,
/// FFA_NOTIFICATION_INFO_GET), one receiver at a time (each under its own
/// lock, so what is marked reported is exactly what was packed): a global
/// notification is a list with the endpoint id alone; per-vCPU ones are
/// lists of the id and up to three vCPU ids each.  At most `max_ids` ids fit
/// (10 for the 32-bit form, 20 for the 64-bit one); `more` when something
/// did not.
pub struct InfoPacker {
    pub lists: [(u16, [u16; 3], usize); 20],
    pub list_count: usize,
    used: usize,
    max_ids: usize,
    pub more: bool,
}

impl InfoPacker {
    pub fn new(max_ids: usize) -> Self {
        Self { lists: [(0, [0; 3], 0); 20], list_count: 0, used: 0, max_ids: max_ids.min(20), more: false }
    }

    /// Adds what `e` has pending; returns what fitted (global, vCPU mask),
    /// to be marked reported.
    pub fn add(&mut self, e: InfoEntry) -> (bool, u64) {
        let mut reported = (false, 0u64);
        if e.global {
            if self.used < self.max_ids {
                self.lists[self.list_count] = (e.id, [0; 3], 0);
                self.list_count += 1;
                self.used += 1;
                reported.0 = true;
            } else {
                self.more = true;
            }
        }
        let mut vcpus = bits(e.vcpus).peekable();
        while vcpus.peek().is_some() {
            // The id, then at least one vCPU: two ids at least.
            if self.used + 2 > self.max_ids {
                self.more = true;
                break;
            }
            let mut ids = [0u16; 3];
            let mut n = 0;
            while n < 3 && self.used + 1 + n < self.max_ids {
                let Some(v) = vcpus.next() else { break };
                ids[n] = v as u16;
                reported.1 |= 1 << v;
                n += 1;
            }
            self.lists[self.list_count] = (e.id, ids, n);
            self.list_count += 1;
            self.used += 1 + n;
        }
        if vcpus.peek().is_some() {
            self.more = true;
        }
        reported
    }
}

/// The FFA_SUCCESS of FFA_NOTIFICATION_INFO_GET_32/64 for `p`, through the
/// crate's packing.
fn info_get_answer(p: &InfoPacker, is_32bit: bool) -> Regs {
    macro_rules! build {
        ($t:ty) => {{
            let mut a = <$t>::default();
            a.more_pending_notifications = p.more;
            for (id, ids, n) in &p.lists[..p.list_count] {
                // Cannot fail: pack_info respects the same limits.
                let _ = a.add_list(*id, &ids[..*n]);
            }
            SuccessArgs::from(a)
        }};
    }
    let args = if is_32bit { build!(SuccessArgsNotificationInfoGet32) } else { build!(SuccessArgsNotificationInfoGet64) };
    codec::encode(Interface::Success { target_info: TargetInfo::from(0u32), args })
}

impl Spmc {
    /// Runs `f` on the notification bitmaps of endpoint `id` under their
    /// lock: an SP's, endpoint 0's (created or not), or a VM's whose bitmaps
    /// were created.  None: no such endpoint (or a VM without bitmaps).
    fn with_bitmaps<R>(&self, id: u16, f: impl FnOnce(&mut Bitmaps) -> R) -> Option<R> {
        if id == NS_ENDPOINT_ID {
            return Some(f(&mut self.ns_notifications.lock()));
        }
        if ffa::is_ns_endpoint(id) {
            for slot in &self.vm_notifications.slots {
                let mut b = slot.lock();
                if b.id == id && b.bitmaps.is_created() {
                    return Some(f(&mut b.bitmaps));
                }
            }
            return None;
        }
        let i = self.find(id)?;
        Some(f(&mut self.part(i).notifications.lock()))
    }

    /// FFA_NOTIFICATION_BITMAP_CREATE for Normal-world endpoint `id`: slot 0
    /// for endpoint 0, a free one for a VM (NO_MEMORY if none); DENIED if
    /// `id` has bitmaps already.
    fn ns_bitmap_create(&self, id: u16, vcpu_count: usize) -> Result<(), FfaError> {
        if id == NS_ENDPOINT_ID {
            return self.ns_notifications.lock().create(vcpu_count);
        }
        let _alloc = self.vm_notifications.alloc.lock();
        if self.with_bitmaps(id, |_| ()).is_some() {
            return Err(FfaError::Denied);
        }
        if vcpu_count > MAX_CONTEXTS {
            return Err(FfaError::InvalidParameters);
        }
        for slot in &self.vm_notifications.slots {
            let mut b = slot.lock();
            if !b.bitmaps.is_created() {
                b.bitmaps.create(vcpu_count)?;
                b.id = id;
                return Ok(());
            }
        }
        Err(FfaError::NoMemory)
    }

    /// FFA_NOTIFICATION_BITMAP_DESTROY for Normal-world endpoint `id`:
    /// DENIED if it has none or notifications are still pending for it.
    fn ns_bitmap_destroy(&self, id: u16) -> Result<(), FfaError> {
        let _alloc = self.vm_notifications.alloc.lock();
        self.with_bitmaps(id, |b| b.destroy()).unwrap_or(Err(FfaError::Denied))
    }

    /// An SRI is owed to the Normal world on `cpu`: sent when that PE next
    /// returns to it ([`Spmc::flush_sri`]).
    pub(super) fn request_sri(&self, cpu: usize) {
        if let Some(f) = self.sri_owed.get(cpu) {
            f.store(true, core::sync::atomic::Ordering::Release);
        }
    }

    /// Sends the SRI owed on `cpu`, if any (on the way back to the Normal world).
    pub(super) fn flush_sri(&self, cpu: usize, platform: &mut dyn Platform) {
        if self.sri_owed.get(cpu).is_some_and(|f| f.swap(false, core::sync::atomic::Ordering::AcqRel)) {
            platform.send_sri();
        }
    }

    /// Sets SPM framework notifications `bits` for receiver `id` and owes
    /// the SRI on `cpu` (FFA_MSG_SEND2).
    pub(super) fn set_framework_notification(&self, id: u16, bits: u32, cpu: usize) {
        let set = self.with_bitmaps(id, |b| {
            if b.is_created() {
                b.set_framework(bits);
            }
            b.is_created()
        });
        if set == Some(true) {
            self.request_sri(cpu);
        }
    }

    /// Context `vcpu` of SP `i` has something to do: notifications pending
    /// for it (global or its own) or an indirect message in its RX buffer.
    /// Leaf locks, taken with its context lock held (the outer one).
    pub(super) fn has_pending_work(&self, i: usize, vcpu: usize) -> bool {
        let p = self.part(i);
        p.notifications.lock().pending_for(vcpu) || p.mailbox.lock().is_some_and(|m| m.rx_full)
    }

    /// A copy of endpoint `id`'s notification state (tests, logs).
    pub fn notification_bitmaps(&self, id: u16) -> Option<Bitmaps> {
        self.with_bitmaps(id, |b| *b)
    }
}

/// Is `id` an endpoint the caller may name as the other side of a binding
/// or a SET: an existing SP, or any Normal-world endpoint (the hypervisor
/// or one of its VMs; a receiver must also have bitmaps).
fn known_endpoint(s: &Spmc, id: u16) -> bool {
    ffa::is_ns_endpoint(id) || s.find(id).is_some()
}

/// FFA_NOTIFICATION_BITMAP_CREATE from the Normal world (w1 VM id, w2 vCPU
/// count): for endpoint 0 or any VM id of the hypervisor, up to
/// [`super::MAX_NS_VMS`] VMs (NO_MEMORY past that); DENIED for an id that
/// has bitmaps already; a secure id is INVALID_PARAMETERS.
pub(super) fn ffa_notification_bitmap_create(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::NotificationBitmapCreate { vm_id, vcpu_cnt }) = c.decoded else { return error(FfaError::InvalidParameters) };
    if !ffa::is_ns_endpoint(vm_id) {
        return error(FfaError::InvalidParameters);
    }
    match s.ns_bitmap_create(vm_id, vcpu_cnt as usize) {
        Ok(()) => success(&[]),
        Err(e) => error(e),
    }
}

/// FFA_NOTIFICATION_BITMAP_DESTROY from the Normal world (w1 VM id):
/// DENIED for an id without bitmaps or with notifications pending.
pub(super) fn ffa_notification_bitmap_destroy(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::NotificationBitmapDestroy { vm_id }) = c.decoded else { return error(FfaError::InvalidParameters) };
    if !ffa::is_ns_endpoint(vm_id) {
        return error(FfaError::InvalidParameters);
    }
    match s.ns_bitmap_destroy(vm_id) {
        Ok(()) => success(&[]),
        Err(e) => error(e),
    }
}

/// The receiver of a BIND/UNBIND/GET: an SP names itself; the Normal world
/// names itself or one of its VMs (the hypervisor acts for them).
fn own_receiver(s: &Spmc, caller: Caller, receiver: u16) -> bool {
    match caller {
        Caller::Ns => ffa::is_ns_endpoint(receiver),
        Caller::Sp(_) => receiver == s.caller_id(caller),
    }
}

/// FFA_NOTIFICATION_BIND / _UNBIND (w1 sender [31:16] | receiver [15:0],
/// w2 flags, w3/w4 bitmap): by the receiver.
pub(super) fn ffa_notification_bind(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let (sender, receiver, bitmap, per_vcpu) = match c.decoded {
        Some(Interface::NotificationBind { sender_id, receiver_id, bitmap, .. }) => {
            // Flags: bit 0 per-vCPU, bits 31:1 MBZ (the crate ignores them).
            if c.regs[2] as u32 as u64 & !BIND_PER_VCPU != 0 {
                return error(FfaError::InvalidParameters);
            }
            (sender_id, receiver_id, bitmap, Some(c.regs[2] & BIND_PER_VCPU != 0))
        }
        Some(Interface::NotificationUnbind { sender_id, receiver_id, bitmap }) => (sender_id, receiver_id, bitmap, None),
        _ => return error(FfaError::InvalidParameters),
    };
    if !own_receiver(s, c.caller, receiver) || sender == receiver || !known_endpoint(s, sender) {
        return error(FfaError::InvalidParameters);
    }
    // The Normal world binds senders of the Secure world only (VM-to-VM
    // notifications are the hypervisor's).
    if c.caller == Caller::Ns && !ffa::is_secure_endpoint(sender) {
        return error(FfaError::InvalidParameters);
    }
    let r = s.with_bitmaps(receiver, |b| match per_vcpu {
        Some(per_vcpu) => b.bind(sender, bitmap, per_vcpu),
        None => b.unbind(sender, bitmap),
    });
    match r {
        Some(Ok(())) => success(&[]),
        Some(Err(e)) => error(e),
        None => error(FfaError::InvalidParameters),
    }
}

/// FFA_NOTIFICATION_SET (w1 sender [31:16] | receiver [15:0], w2 flags:
/// bit 0 per-vCPU, bit 1 delay SRI, bits 31:16 vCPU id; w3/w4 bitmap): by
/// the sender.  Owes the SRI to the Normal world on this PE.
pub(super) fn ffa_notification_set(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::NotificationSet { sender_id, receiver_id, flags, bitmap }) = c.decoded else {
        return error(FfaError::InvalidParameters);
    };
    // The sender is the caller: an SP itself; from the Normal world the
    // hypervisor or the VM it sets for.
    let own_sender = match c.caller {
        Caller::Ns => ffa::is_ns_endpoint(sender_id),
        Caller::Sp(_) => sender_id == s.caller_id(c.caller),
    };
    if !own_sender || sender_id == receiver_id || !known_endpoint(s, receiver_id) {
        return error(FfaError::InvalidParameters);
    }
    // From the Normal world only to SPs (VM to VM is the hypervisor's).
    if c.caller == Caller::Ns && !ffa::is_secure_endpoint(receiver_id) {
        return error(FfaError::InvalidParameters);
    }
    let r = s.with_bitmaps(receiver_id, |b| b.set(sender_id, bitmap, flags.vcpu_id.map(usize::from)));
    match r {
        Some(Ok(())) => {
            s.request_sri(c.cpu);
            success(&[])
        }
        Some(Err(e)) => error(e),
        None => error(FfaError::InvalidParameters),
    }
}

/// FFA_NOTIFICATION_GET (w1 vCPU [31:16] | receiver [15:0], w2 flags): by
/// the receiver; an SP asks for its calling context's vCPU.  Answer: w2/w3
/// from SPs, w4/w5 from VMs, w6 SPM framework, w7 hypervisor framework
/// (none: spmc is no hypervisor).
pub(super) fn ffa_notification_get(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::NotificationGet { vcpu_id, endpoint_id, .. }) = c.decoded else { return error(FfaError::InvalidParameters) };
    let flags = c.regs[2] as u32 as u64;
    if !own_receiver(s, c.caller, endpoint_id) {
        return error(FfaError::InvalidParameters);
    }
    let vcpu = vcpu_id as usize;
    if let Caller::Sp(i) = c.caller
        && s.part(i).manifest.is_mp()
        && vcpu != c.ctx
    {
        // An MP SP's context reads its own per-vCPU notifications only.
        return error(FfaError::InvalidParameters);
    }
    let r = s.with_bitmaps(endpoint_id, |b| b.get(vcpu, flags & GET_SP != 0, flags & GET_VM != 0, flags & GET_SPM != 0));
    let _ = GET_HYP;
    match r {
        Some(Ok((from_sp, from_vm, fwk))) => success(&[from_sp & 0xffff_ffff, from_sp >> 32, from_vm & 0xffff_ffff, from_vm >> 32, fwk as u64, 0]),
        Some(Err(e)) => error(e),
        None => error(FfaError::InvalidParameters),
    }
}

/// FFA_NOTIFICATION_INFO_GET_32/64 from the Normal world's scheduler: the
/// endpoints (and vCPUs) with notifications pending that it was not told
/// of yet; NO_DATA if none.
pub(super) fn ffa_notification_info_get(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::NotificationInfoGet { is_32bit }) = c.decoded else { return error(FfaError::InvalidParameters) };
    // Endpoint 0 first, then the VMs by slot, then the SPs in manifest
    // order; each receiver's pending state is read, packed and marked
    // reported under its lock.
    let mut p = InfoPacker::new(if is_32bit { 10 } else { 20 });
    let mut add = |id: u16, b: &mut Bitmaps| {
        let (global, vcpus) = b.unreported();
        if global || vcpus != 0 {
            let (g, v) = p.add(InfoEntry { id, global, vcpus });
            b.mark_reported(g, v);
        }
    };
    add(NS_ENDPOINT_ID, &mut s.ns_notifications.lock());
    for slot in &s.vm_notifications.slots {
        let mut b = slot.lock();
        let id = b.id;
        add(id, &mut b.bitmaps);
    }
    for part in s.partitions() {
        add(part.manifest.id, &mut part.notifications.lock());
    }
    if p.list_count == 0 {
        return error(FfaError::NoData);
    }
    info_get_answer(&p, is_32bit)
}

#[cfg(test)]
mod tests {
    use super::*;

/// [`InfoPacker`] over `entries`: the packer and what each entry had reported.
fn pack_info(entries: &[InfoEntry], max_ids: usize) -> (InfoPacker, Vec<(bool, u64)>) {
    let mut p = InfoPacker::new(max_ids);
    let reported = entries.iter().map(|e| p.add(*e)).collect();
    (p, reported)
}


    #[test]
    fn info_packing() {
        // A global entry and per-vCPU ones on 5 vCPUs: id+3, id+2 lists.
        let e = [InfoEntry { id: 0x8001, global: true, vcpus: 0 }, InfoEntry { id: 0x8002, global: false, vcpus: 0b11111 }];
        let (p, reported) = pack_info(&e, 10);
        assert_eq!(p.list_count, 3);
        assert_eq!(p.lists[0], (0x8001, [0, 0, 0], 0));
        assert_eq!(p.lists[1], (0x8002, [0, 1, 2], 3));
        assert_eq!(p.lists[2], (0x8002, [3, 4, 0], 2));
        assert!(!p.more);
        assert_eq!(reported, vec![(true, 0), (false, 0b11111)]);
        // Only 5 ids fit: the second per-vCPU list is left out, "more".
        let (p, reported) = pack_info(&e, 5);
        assert!(p.more);
        assert_eq!(reported[1], (false, 0b111));
        // Exactly 6: id + 3, then id + 1 of the remaining 2: partial, "more".
        let (p, reported) = pack_info(&e, 7);
        assert!(p.more);
        assert_eq!(reported[1], (false, 0b1111));
        assert_eq!(p.lists[2], (0x8002, [3, 0, 0], 1));
        // The 32-bit answer through the crate, read back the way Linux does.
        let (p, _) = pack_info(&e, 10);
        let a = info_get_answer(&p, true);
        assert_eq!(a[0], shared::abi::ffa::fid::FFA_SUCCESS_32 as u64);
        assert_eq!((a[2] >> 7) & 0x1f, 3, "list count");
        assert_eq!((a[2] >> 12) & 0b11_11_11, 0b10_11_00, "ids per list");
        assert_eq!(a[3] & 0xffff, 0x8001);
        let a = info_get_answer(&p, false);
        assert_eq!(a[0], shared::abi::ffa::fid::FFA_SUCCESS_64 as u64);
    }

    #[test]
    fn info_packing_many_globals() {
        // 12 receivers with global notifications: 10 fit the 32-bit form, 12 the 64-bit one.
        let e: Vec<InfoEntry> = (0..12).map(|k| InfoEntry { id: 0x8001 + k, global: true, vcpus: 0 }).collect();
        let (p, reported) = pack_info(&e, 10);
        assert_eq!((p.list_count, p.more), (10, true));
        assert_eq!(reported.iter().filter(|r| r.0).count(), 10);
        let (p, _) = pack_info(&e, 20);
        assert_eq!((p.list_count, p.more), (12, false));
        // Many vCPUs of one receiver: never more than 20 ids, never a panic.
        let (p, reported) = pack_info(&[InfoEntry { id: 1, global: true, vcpus: u64::MAX }], 20);
        assert!(p.more);
        let ids: usize = p.lists[..p.list_count].iter().map(|l| 1 + l.2).sum();
        assert!(ids <= 20);
        assert_eq!(reported[0].1.count_ones() as usize, ids - p.list_count);
    }
}
