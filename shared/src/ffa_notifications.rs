//! One receiver's notification state (DEN0077 v1.2 chapter
//! "Notifications"): which of its 64 notifications are bound to which
//! sender, global or per-vCPU, what is pending and what
//! FFA_NOTIFICATION_INFO_GET has not reported yet.  Pure logic, here in
//! `shared` so that both partition managers use one model: spmc for every
//! receiver it keeps (SPs, and the Normal world's VMs for their Secure
//! senders), ns-hyp for its VMs' notifications from other VMs (DEN0077
//! v1.2: VM-to-VM notifications are the hypervisor's).

use crate::abi::ffa::{self as ffa, FfaError};
use crate::percpu::MAX_CPUS;

/// Execution contexts (vCPUs) a receiver may have: one per PE at most.
const MAX_CONTEXTS: usize = MAX_CPUS;

/// SPM framework notification bit 0: "RX buffer full" (DEN0077 v1.2,
/// framework notifications), set for the receiver of FFA_MSG_SEND2.
pub const FWK_RX_BUFFER_FULL: u32 = 1 << 0;

/// One receiver's notification state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bitmaps {
    /// Created (an SP with notification support; endpoint 0 after
    /// FFA_NOTIFICATION_BITMAP_CREATE).
    created: bool,
    vcpu_count: usize,
    /// Which notifications are bound, to whom, and which of those are per-vCPU.
    bound: u64,
    sender: [u16; 64],
    per_vcpu: u64,
    /// Pending global notifications, and per-vCPU ones by vCPU.
    global: u64,
    vcpu: [u64; MAX_CONTEXTS],
    /// Pending SPM framework notifications.
    framework: u32,
    /// Pending and not yet reported by FFA_NOTIFICATION_INFO_GET: global
    /// (incl. framework), and per-vCPU by vCPU (bit n = vCPU n).
    unreported_global: bool,
    unreported_vcpus: u64,
    /// vCPUs given the Notification Pending Interrupt since their last
    /// FFA_NOTIFICATION_GET (bit n = vCPU n): one NPI per vCPU for what is
    /// pending, not one per run.
    npi_given: u64,
}

impl Default for Bitmaps {
    fn default() -> Self {
        Self::new()
    }
}

impl Bitmaps {
    pub const fn new() -> Self {
        Self {
            created: false,
            vcpu_count: 0,
            bound: 0,
            sender: [0; 64],
            per_vcpu: 0,
            global: 0,
            vcpu: [0; MAX_CONTEXTS],
            framework: 0,
            unreported_global: false,
            unreported_vcpus: 0,
            npi_given: 0,
        }
    }

    /// Created at once, for `vcpu_count` vCPUs (an SP's, from its manifest).
    pub fn created(vcpu_count: usize) -> Self {
        Self { created: true, vcpu_count: vcpu_count.min(MAX_CONTEXTS), ..Self::new() }
    }

    pub fn is_created(&self) -> bool {
        self.created
    }

    /// Any notification pending, framework ones included.
    pub fn any_pending(&self) -> bool {
        self.global != 0 || self.framework != 0 || self.vcpu.iter().any(|v| *v != 0)
    }

    /// Notifications pending for `vcpu`: global, framework or its own.
    pub fn pending_for(&self, vcpu: usize) -> bool {
        self.global != 0 || self.framework != 0 || self.vcpu.get(vcpu).is_some_and(|v| *v != 0)
    }

    /// Whether `vcpu` is owed the Notification Pending Interrupt as it is
    /// about to run: notifications are pending for it and it was not given
    /// the NPI since its last FFA_NOTIFICATION_GET.  Marks it given.  As
    /// Hafnium does (DEN0077 v1.2, notifications, "Notification Pending Interrupt": the
    /// SPMC pends it for a receiver SP's vCPU that has pending notifications
    /// when that vCPU is next run).
    pub fn take_npi(&mut self, vcpu: usize) -> bool {
        if !self.created || vcpu >= 64 || self.npi_given & (1 << vcpu) != 0 || !self.pending_for(vcpu) {
            return false;
        }
        self.npi_given |= 1 << vcpu;
        true
    }

    /// FFA_NOTIFICATION_BITMAP_CREATE: DENIED if it exists already;
    /// INVALID_PARAMETERS for more vCPUs than PEs.
    pub fn create(&mut self, vcpu_count: usize) -> Result<(), FfaError> {
        if self.created {
            return Err(FfaError::Denied);
        }
        if vcpu_count > MAX_CONTEXTS {
            return Err(FfaError::InvalidParameters);
        }
        *self = Self { created: true, vcpu_count, ..Self::new() };
        Ok(())
    }

    /// FFA_NOTIFICATION_BITMAP_DESTROY: DENIED if none was created or a
    /// notification is still pending (as Hafnium).
    pub fn destroy(&mut self) -> Result<(), FfaError> {
        if !self.created || self.any_pending() {
            return Err(FfaError::Denied);
        }
        *self = Self::new();
        Ok(())
    }

    /// FFA_NOTIFICATION_BIND of `bitmap` to `sender`: every bit must be
    /// unbound (DENIED otherwise); none for an empty bitmap
    /// (INVALID_PARAMETERS).
    pub fn bind(&mut self, sender: u16, bitmap: u64, per_vcpu: bool) -> Result<(), FfaError> {
        if !self.created {
            return Err(FfaError::Denied);
        }
        if bitmap == 0 {
            return Err(FfaError::InvalidParameters);
        }
        if self.bound & bitmap != 0 {
            return Err(FfaError::Denied);
        }
        for n in bits(bitmap) {
            self.sender[n] = sender;
        }
        self.bound |= bitmap;
        if per_vcpu {
            self.per_vcpu |= bitmap;
        } else {
            self.per_vcpu &= !bitmap;
        }
        Ok(())
    }

    /// FFA_NOTIFICATION_UNBIND: every bit must be bound to `sender` (DENIED
    /// otherwise) and none pending (DENIED: the receiver has not read it yet).
    pub fn unbind(&mut self, sender: u16, bitmap: u64) -> Result<(), FfaError> {
        if !self.created {
            return Err(FfaError::Denied);
        }
        if bitmap == 0 {
            return Err(FfaError::InvalidParameters);
        }
        if !self.bound_to(sender, bitmap) || self.pending_bits() & bitmap != 0 {
            return Err(FfaError::Denied);
        }
        self.bound &= !bitmap;
        self.per_vcpu &= !bitmap;
        Ok(())
    }

    fn bound_to(&self, sender: u16, bitmap: u64) -> bool {
        self.bound & bitmap == bitmap && bits(bitmap).all(|n| self.sender[n] == sender)
    }

    fn pending_bits(&self) -> u64 {
        self.vcpu.iter().fold(self.global, |a, v| a | v)
    }

    /// FFA_NOTIFICATION_SET from `sender`: every bit bound to it (DENIED);
    /// per-vCPU (`vcpu` Some) exactly for bits bound per-vCPU, to an
    /// existing vCPU (INVALID_PARAMETERS).
    pub fn set(&mut self, sender: u16, bitmap: u64, vcpu: Option<usize>) -> Result<(), FfaError> {
        if !self.created {
            return Err(FfaError::InvalidParameters);
        }
        if bitmap == 0 {
            return Err(FfaError::InvalidParameters);
        }
        if !self.bound_to(sender, bitmap) {
            return Err(FfaError::Denied);
        }
        match vcpu {
            Some(v) => {
                if v >= self.vcpu_count || self.per_vcpu & bitmap != bitmap {
                    return Err(FfaError::InvalidParameters);
                }
                self.vcpu[v] |= bitmap;
                self.unreported_vcpus |= 1 << v;
            }
            None => {
                if self.per_vcpu & bitmap != 0 {
                    return Err(FfaError::InvalidParameters);
                }
                self.global |= bitmap;
                self.unreported_global = true;
            }
        }
        Ok(())
    }

    /// Sets SPM framework notifications (FFA_MSG_SEND2: RX buffer full).
    pub fn set_framework(&mut self, bits: u32) {
        self.framework |= bits;
        self.unreported_global = true;
    }

    /// FFA_NOTIFICATION_GET on `vcpu`: takes (returns and clears) the pending
    /// global and that vCPU's notifications from SPs (`sp`) and from VMs
    /// (`vm`), and the SPM framework ones (`spm`).
    pub fn get(&mut self, vcpu: usize, sp: bool, vm: bool, spm: bool) -> Result<(u64, u64, u32), FfaError> {
        if !self.created {
            return Err(FfaError::Denied);
        }
        if vcpu >= self.vcpu_count.max(1) {
            return Err(FfaError::InvalidParameters);
        }
        let pending = self.global | self.vcpu[vcpu];
        let from_sp = bits(pending).filter(|&n| ffa::is_secure_endpoint(self.sender[n])).fold(0u64, |a, n| a | 1 << n);
        let from_vm = pending & !from_sp;
        let take = if sp { from_sp } else { 0 } | if vm { from_vm } else { 0 };
        self.global &= !take;
        self.vcpu[vcpu] &= !take;
        let fwk = if spm { core::mem::take(&mut self.framework) } else { 0 };
        if self.global == 0 && self.framework == 0 {
            self.unreported_global = false;
        }
        if self.vcpu[vcpu] == 0 {
            self.unreported_vcpus &= !(1 << vcpu);
        }
        // What is pending now is news again: the next run gets an NPI for it.
        self.npi_given &= !(1 << vcpu);
        Ok((if sp { from_sp } else { 0 }, if vm { from_vm } else { 0 }, fwk))
    }

    /// What FFA_NOTIFICATION_INFO_GET has not reported yet: a global
    /// notification (incl. framework) pending, and the vCPUs with per-vCPU
    /// ones.
    pub fn unreported(&self) -> (bool, u64) {
        (self.unreported_global, self.unreported_vcpus)
    }

    /// Marks what [`Bitmaps::unreported`] returned as reported: `global`,
    /// and the vCPUs of `vcpus`.
    pub fn mark_reported(&mut self, global: bool, vcpus: u64) {
        if global {
            self.unreported_global = false;
        }
        self.unreported_vcpus &= !vcpus;
    }
}

/// Bit numbers set in `bitmap`.
pub fn bits(bitmap: u64) -> impl Iterator<Item = usize> {
    (0..64).filter(move |n| bitmap & (1 << n) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_set_get_global_and_per_vcpu() {
        let mut b = Bitmaps::created(4);
        assert_eq!(b.bind(0x8001, 0b11, false), Ok(()));
        assert_eq!(b.bind(0, 1 << 40, true), Ok(()));
        // Already bound: DENIED, nothing changes.
        let before = b;
        assert_eq!(b.bind(0x8002, 0b10, false), Err(FfaError::Denied));
        assert_eq!(b.bind(0x8001, 0, false), Err(FfaError::InvalidParameters));
        assert_eq!(b, before);
        // SET: wrong sender DENIED; per-vCPU mismatch and bad vCPU INVALID_PARAMETERS.
        assert_eq!(b.set(0x8002, 0b01, None), Err(FfaError::Denied));
        assert_eq!(b.set(0x8001, 0b01, Some(0)), Err(FfaError::InvalidParameters));
        assert_eq!(b.set(0, 1 << 40, None), Err(FfaError::InvalidParameters));
        assert_eq!(b.set(0, 1 << 40, Some(4)), Err(FfaError::InvalidParameters));
        assert_eq!(b.set(0x8001, 0, None), Err(FfaError::InvalidParameters));
        assert_eq!(b, before);
        assert_eq!(b.set(0x8001, 0b01, None), Ok(()));
        assert_eq!(b.set(0, 1 << 40, Some(2)), Ok(()));
        assert_eq!(b.unreported(), (true, 0b100));
        // vCPU 1 sees the global one only; the VM bitmap holds endpoint 0's.
        assert_eq!(b.get(1, true, true, true), Ok((0b01, 0, 0)));
        assert_eq!(b.get(2, true, false, false), Ok((0, 0, 0)));
        assert_eq!(b.get(2, true, true, false), Ok((0, 1 << 40, 0)));
        assert!(!b.any_pending());
        assert_eq!(b.unreported(), (false, 0));
        assert_eq!(b.get(4, true, true, true), Err(FfaError::InvalidParameters));
    }

    /// The NPI: once per vCPU for what is pending; news again after its GET.
    #[test]
    fn npi_once_per_vcpu_until_get() {
        let mut b = Bitmaps::created(2);
        assert!(!b.take_npi(0), "nothing pending");
        b.bind(0x8001, 0b1, false).unwrap();
        b.bind(0, 0b10, true).unwrap();
        b.set(0x8001, 0b1, None).unwrap();
        assert!(b.take_npi(0) && b.take_npi(1), "a global one: each vCPU");
        assert!(!b.take_npi(0) && !b.take_npi(1), "once");
        b.get(0, true, true, true).unwrap();
        assert!(!b.take_npi(0), "taken: nothing pending");
        b.set(0, 0b10, Some(0)).unwrap();
        assert!(b.take_npi(0), "new since its GET");
        assert!(!b.take_npi(1), "vCPU 1 was given one already");
        assert!(!Bitmaps::new().take_npi(0), "no bitmaps: no NPI");
    }

    #[test]
    fn unbind_rules() {
        let mut b = Bitmaps::created(1);
        b.bind(0x8001, 0b1, false).unwrap();
        assert_eq!(b.unbind(0x8002, 0b1), Err(FfaError::Denied));
        assert_eq!(b.unbind(0x8001, 0b11), Err(FfaError::Denied));
        b.set(0x8001, 0b1, None).unwrap();
        // Pending: not yet.
        assert_eq!(b.unbind(0x8001, 0b1), Err(FfaError::Denied));
        b.get(0, true, true, true).unwrap();
        assert_eq!(b.unbind(0x8001, 0b1), Ok(()));
        assert_eq!(b.set(0x8001, 0b1, None), Err(FfaError::Denied));
        // Now another sender may bind it.
        assert_eq!(b.bind(0x8002, 0b1, true), Ok(()));
    }

    #[test]
    fn create_destroy() {
        let mut b = Bitmaps::new();
        assert_eq!(b.bind(0x8001, 1, false), Err(FfaError::Denied));
        assert_eq!(b.set(0x8001, 1, None), Err(FfaError::InvalidParameters));
        assert_eq!(b.get(0, true, true, true), Err(FfaError::Denied));
        assert_eq!(b.destroy(), Err(FfaError::Denied));
        assert_eq!(b.create(MAX_CONTEXTS + 1), Err(FfaError::InvalidParameters));
        assert_eq!(b.create(4), Ok(()));
        assert_eq!(b.create(4), Err(FfaError::Denied));
        b.set_framework(FWK_RX_BUFFER_FULL);
        assert_eq!(b.destroy(), Err(FfaError::Denied));
        assert_eq!(b.get(0, false, false, true), Ok((0, 0, FWK_RX_BUFFER_FULL)));
        assert_eq!(b.destroy(), Ok(()));
        assert!(!b.is_created());
    }
}
