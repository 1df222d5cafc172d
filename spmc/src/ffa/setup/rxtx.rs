//! RX/TX buffer pairs (DEN0077 v1.2 FFA_RXTX_MAP, FFA_RXTX_UNMAP, FFA_RX_RELEASE).
//!
//! One pair for the Normal world (endpoint 0; its buffers are in the
//! Non-secure PAS and get mapped into the SPMC's Stage-1 with the NS bit) and
//! one per SP (inside the SP's own memory, which the SPMC maps already).
//!
//! And one per VM of the hypervisor ([`VmMailboxes`], up to
//! [`MAX_NS_VMS`]): the hypervisor forwards a VM's FFA_RXTX_MAP with w1, w2
//! and w3 zero and an endpoint RX/TX descriptor in its own TX buffer
//! (DEN0077 v1.2, FFA_RXTX_MAP: "Endpoint RX/TX descriptor"), so that SPs
//! can send the VM indirect messages.  The SPMC and the hypervisor are both
//! producers for a VM's RX buffer: the SPMC owns it from the map on; the
//! hypervisor takes it with FFA_RX_ACQUIRE (VM id in w1[15:0]) before it
//! writes, and gives it back with FFA_RX_RELEASE (VM id in w1[15:0]) once
//! the VM released it, which is also how the SPMC learns that a message it
//! wrote was read.  FFA_RXTX_UNMAP with the VM id in w1[31:16] forgets the pair.
//! Each VM's pair is a leaf lock; `alloc` is held by map and unmap while
//! they look for the id and a free slot (then one slot lock at a time, and
//! the Normal world's mailbox lock, never two at once).

use crate::ffa::calls::Call;
use crate::ffa::{Caller, MAX_NS_VMS, NS_ENDPOINT_ID, Platform, Regs, Spmc, error, success};
use crate::manifest::Range;
use shared::abi::ffa::interface_args::RxTxAddr;
use shared::abi::ffa::{self as ffa, FfaError, Interface};

pub const PAGE: u64 = 0x1000;
/// FFA_RXTX_MAP w3 bits 5:0: page count; 6 bits, so at most 63 pages.
pub const MAX_PAGES: u64 = 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub tx: u64,
    pub rx: u64,
    pub size: u64,
    /// The RX buffer holds a message the owner has not released: the
    /// producer (us) may not write it (DEN0077, RX/TX buffer ownership).
    pub rx_full: bool,
}

/// A VM's buffer pair, known from the hypervisor's forwarded FFA_RXTX_MAP.
/// `mailbox.rx_full`: the RX buffer is not the SPMC's to write (a message
/// the VM has not released, or the hypervisor acquired it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmMailbox {
    pub id: u16,
    pub mailbox: Mailbox,
}

/// The buffer pairs of up to [`MAX_NS_VMS`] VMs of the hypervisor.
pub struct VmMailboxes {
    slots: [spin::Mutex<Option<VmMailbox>>; MAX_NS_VMS],
    alloc: spin::Mutex<()>,
}

impl VmMailboxes {
    pub const fn new() -> Self {
        Self { slots: [const { spin::Mutex::new(None) }; MAX_NS_VMS], alloc: spin::Mutex::new(()) }
    }
}

impl Default for VmMailboxes {
    fn default() -> Self {
        Self::new()
    }
}

/// Size of the endpoint RX/TX descriptor (DEN0077 v1.2, FFA_RXTX_MAP,
/// "Endpoint RX/TX descriptor"): endpoint id (2 bytes), reserved (2), offset
/// of the RX buffer's composite memory region descriptor (4), offset of the
/// TX buffer's (4), reserved (4).
pub const ENDPOINT_RXTX_DESCRIPTOR: usize = 16;
/// A composite memory region descriptor with its one constituent (DEN0077
/// v1.2, "Composite memory region descriptor"): total page count (4), address
/// range count (4), reserved (8); then the constituent: address (8), page
/// count (4), reserved (4).
pub const COMPOSITE_ONE: usize = 32;

/// One buffer from its composite memory region descriptor: (address, pages).
/// One address range only (the SPMC maps and writes a buffer as one
/// contiguous range), whose page count is the total's.
fn parse_composite(c: &[u8; COMPOSITE_ONE]) -> Result<(u64, u64), FfaError> {
    let le32 = |o: usize| u32::from_le_bytes([c[o], c[o + 1], c[o + 2], c[o + 3]]) as u64;
    let total = le32(0);
    let ranges = le32(4);
    let addr = u64::from_le_bytes(c[16..24].try_into().unwrap_or([0; 8]));
    let pages = le32(24);
    if ranges != 1 || pages != total {
        return Err(FfaError::InvalidParameters);
    }
    Ok((addr, pages))
}

/// A forwarded FFA_RXTX_MAP's endpoint RX/TX descriptor, read through
/// `read(offset, out)` from a TX buffer of `size` bytes: (VM id, RX, TX, pages).
/// The id must be a VM's (a Normal-world id other than the hypervisor's
/// 0), reserved fields zero, both composite descriptors 8-byte aligned and
/// inside the buffer, and RX and TX of the same page count.
pub fn parse_endpoint_rxtx(size: u64, mut read: impl FnMut(u64, &mut [u8])) -> Result<(u16, u64, u64, u64), FfaError> {
    let mut d = [0u8; ENDPOINT_RXTX_DESCRIPTOR];
    if size < ENDPOINT_RXTX_DESCRIPTOR as u64 {
        return Err(FfaError::InvalidParameters);
    }
    read(0, &mut d);
    let id = u16::from_le_bytes([d[0], d[1]]);
    let le32 = |o: usize| u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]) as u64;
    if id == NS_ENDPOINT_ID || !ffa::is_ns_endpoint(id) || d[2..4] != [0, 0] || le32(12) != 0 {
        return Err(FfaError::InvalidParameters);
    }
    let mut buffer = |offset: u64| {
        if offset % 8 != 0 || offset < ENDPOINT_RXTX_DESCRIPTOR as u64 || offset + COMPOSITE_ONE as u64 > size {
            return Err(FfaError::InvalidParameters);
        }
        let mut c = [0u8; COMPOSITE_ONE];
        read(offset, &mut c);
        parse_composite(&c)
    };
    let (rx, rx_pages) = buffer(le32(4))?;
    let (tx, tx_pages) = buffer(le32(8))?;
    if rx_pages != tx_pages {
        return Err(FfaError::InvalidParameters);
    }
    Ok((id, rx, tx, rx_pages))
}

/// The checks of FFA_RXTX_MAP on a pair: 1..=[`MAX_PAGES`] pages, page
/// aligned, no wrap, apart.
fn pair_ok(tx: u64, rx: u64, pages: u64) -> bool {
    if pages == 0 || pages > MAX_PAGES || tx % PAGE != 0 || rx % PAGE != 0 {
        return false;
    }
    let size = pages * PAGE;
    if tx.checked_add(size).is_none() || rx.checked_add(size).is_none() {
        return false;
    }
    !(Range { base: tx, size }).overlaps(&Range { base: rx, size })
}

/// Whether either buffer of `m` overlaps `[base, base + size)`.
fn mailbox_overlaps(m: &Mailbox, base: u64, size: u64) -> bool {
    let r = Range { base, size };
    (Range { base: m.tx, size: m.size }).overlaps(&r) || (Range { base: m.rx, size: m.size }).overlaps(&r)
}

impl Spmc {
    /// Runs `f` over VM `id`'s buffer pair, under its slot's lock; None if
    /// the hypervisor forwarded none for it.
    pub(crate) fn with_vm_mailbox<R>(&self, id: u16, f: impl FnOnce(&mut Mailbox) -> R) -> Option<R> {
        if id == NS_ENDPOINT_ID || !ffa::is_ns_endpoint(id) {
            return None;
        }
        for slot in &self.vm_mailboxes.slots {
            let mut s = slot.lock();
            if let Some(v) = s.as_mut().filter(|v| v.id == id) {
                return Some(f(&mut v.mailbox));
            }
        }
        None
    }

    /// VM `id`'s buffer pair (tests, logs).
    pub fn vm_mailbox(&self, id: u16) -> Option<Mailbox> {
        self.with_vm_mailbox(id, |m| *m)
    }

    /// FFA_RXTX_MAP forwarded by the hypervisor for one of its VMs (w1, w2,
    /// w3 zero): the endpoint RX/TX descriptor is in the hypervisor's TX
    /// buffer.  Both buffers must be Normal-world memory of our manifest
    /// (never Secure or Realm memory), apart from each other, from the
    /// hypervisor's own pair and from every other VM's.  Errors: no TX
    /// buffer of the hypervisor's or a bad descriptor: INVALID_PARAMETERS;
    /// the VM has a pair already: DENIED; no free slot or no mapping:
    /// NO_MEMORY.
    fn rxtx_map_forwarded(&self, platform: &mut dyn Platform) -> Regs {
        let parsed = {
            let hyp = self.ns_mailbox.lock();
            let Some(hyp) = *hyp else { return error(FfaError::InvalidParameters) };
            parse_endpoint_rxtx(hyp.size, |offset, out| platform.read(hyp.tx + offset, out))
        };
        let (id, rx, tx, pages) = match parsed {
            Ok(p) => p,
            Err(e) => return error(e),
        };
        if !pair_ok(tx, rx, pages) {
            return error(FfaError::InvalidParameters);
        }
        let size = pages * PAGE;
        if !self.ns_memory.contains(tx, size) || !self.ns_memory.contains(rx, size) {
            return error(FfaError::InvalidParameters);
        }
        if platform.take_access_fault() {
            return error(FfaError::Aborted);
        }
        let _alloc = self.vm_mailboxes.alloc.lock();
        if self.with_vm_mailbox(id, |_| ()).is_some() {
            return error(FfaError::Denied);
        }
        let clash = |m: &Mailbox| mailbox_overlaps(m, tx, size) || mailbox_overlaps(m, rx, size);
        if self.ns_mailbox.lock().as_ref().is_some_and(clash) {
            return error(FfaError::InvalidParameters);
        }
        let mut free = None;
        for (i, slot) in self.vm_mailboxes.slots.iter().enumerate() {
            match &*slot.lock() {
                Some(v) if clash(&v.mailbox) => return error(FfaError::InvalidParameters),
                Some(_) => {}
                None => free = free.or(Some(i)),
            }
        }
        let Some(i) = free else { return error(FfaError::NoMemory) };
        if platform.map_ns(tx, size).is_err() {
            return error(FfaError::NoMemory);
        }
        if platform.map_ns(rx, size).is_err() {
            platform.unmap_ns(tx, size);
            return error(FfaError::NoMemory);
        }
        *self.vm_mailboxes.slots[i].lock() = Some(VmMailbox { id, mailbox: Mailbox { tx, rx, size, rx_full: false } });
        success(&[])
    }

    /// FFA_RXTX_UNMAP from the hypervisor for its VM `id`: the pair is
    /// forgotten and unmapped; INVALID_PARAMETERS if there is none.
    fn rxtx_unmap_vm(&self, id: u16, platform: &mut dyn Platform) -> Regs {
        if !ffa::is_ns_endpoint(id) {
            return error(FfaError::InvalidParameters);
        }
        let _alloc = self.vm_mailboxes.alloc.lock();
        let mut taken = None;
        for slot in &self.vm_mailboxes.slots {
            let mut s = slot.lock();
            if s.is_some_and(|v| v.id == id) {
                taken = s.take();
                break;
            }
        }
        let Some(v) = taken else { return error(FfaError::InvalidParameters) };
        platform.unmap_ns(v.mailbox.tx, v.mailbox.size);
        platform.unmap_ns(v.mailbox.rx, v.mailbox.size);
        success(&[])
    }

    /// FFA_RXTX_MAP: `tx`, `rx` buffer addresses of `pages` 4 KiB pages each.
    fn rxtx_map(&self, caller: Caller, tx: u64, rx: u64, pages: u64, platform: &mut dyn Platform) -> Regs {
        if caller == Caller::Ns && tx == 0 && rx == 0 && pages == 0 {
            return self.rxtx_map_forwarded(platform);
        }
        // w3 bits 31:6 are reserved (MBZ).
        if !pair_ok(tx, rx, pages) {
            return error(FfaError::InvalidParameters);
        }
        let size = pages * PAGE;
        // Nor the pages of a VM's pair (one Stage-1 mapping each: unmapping
        // one pair must not unmap the other's).
        if caller == Caller::Ns && self.vm_mailboxes.slots.iter().any(|s| s.lock().is_some_and(|v| mailbox_overlaps(&v.mailbox, tx, size) || mailbox_overlaps(&v.mailbox, rx, size))) {
            return error(FfaError::InvalidParameters);
        }
        let mut mailbox = self.mailbox(caller).lock();
        if mailbox.is_some() {
            // A pair is already registered for this endpoint.
            return error(FfaError::Denied);
        }
        match caller {
            Caller::Ns => {
                // Only Normal-world DRAM named by our manifest: never Secure or Realm memory.
                if !self.ns_memory.contains(tx, size) || !self.ns_memory.contains(rx, size) {
                    return error(FfaError::InvalidParameters);
                }
                if platform.map_ns(tx, size).is_err() {
                    return error(FfaError::NoMemory);
                }
                if platform.map_ns(rx, size).is_err() {
                    platform.unmap_ns(tx, size);
                    return error(FfaError::NoMemory);
                }
            }
            Caller::Sp(i) => {
                let m = self.part(i).memory;
                let mem = Range { base: m.base, size: m.size };
                if !mem.contains(tx, size) || !mem.contains(rx, size) {
                    return error(FfaError::InvalidParameters);
                }
            }
        }
        *mailbox = Some(Mailbox { tx, rx, size, rx_full: false });
        success(&[])
    }

    /// FFA_RXTX_UNMAP of endpoint `id`'s buffers (w1 bits 31:16): the
    /// caller's own (0 means "the caller"), or from the Normal world one of
    /// the hypervisor's VMs ([`Spmc::rxtx_unmap_vm`]).
    fn rxtx_unmap(&self, caller: Caller, id: u16, platform: &mut dyn Platform) -> Regs {
        if caller == Caller::Ns && id != NS_ENDPOINT_ID {
            return self.rxtx_unmap_vm(id, platform);
        }
        if id != 0 && id != self.caller_id(caller) {
            return error(FfaError::InvalidParameters);
        }
        let Some(mb) = self.mailbox(caller).lock().take() else {
            return error(FfaError::InvalidParameters);
        };
        if caller == Caller::Ns {
            platform.unmap_ns(mb.tx, mb.size);
            platform.unmap_ns(mb.rx, mb.size);
        }
        success(&[])
    }

    /// FFA_RX_RELEASE of endpoint `id`'s RX buffer (w1 bits 15:0).  From
    /// the hypervisor with a VM's id: the VM's RX buffer is the SPMC's again
    /// (the VM read the message the SPMC wrote, or the hypervisor is done
    /// with the buffer it acquired); INVALID_PARAMETERS if the VM has no
    /// pair here, DENIED if the SPMC owns it already.
    fn rx_release(&self, caller: Caller, id: u16) -> Regs {
        if caller == Caller::Ns && id != NS_ENDPOINT_ID {
            return match self.with_vm_mailbox(id, |m| core::mem::replace(&mut m.rx_full, false)) {
                None => error(FfaError::InvalidParameters),
                Some(true) => success(&[]),
                Some(false) => error(FfaError::Denied),
            };
        }
        if id != 0 && id != self.caller_id(caller) {
            return error(FfaError::InvalidParameters);
        }
        match &mut *self.mailbox(caller).lock() {
            Some(mb) if mb.rx_full => {
                mb.rx_full = false;
                success(&[])
            }
            // The caller does not own a full RX buffer.
            _ => error(FfaError::Denied),
        }
    }

    /// FFA_RX_ACQUIRE from the Normal world (DEN0077 v1.2, FFA_RX_ACQUIRE; buffer
    /// ownership as v1.1 defines it): the hypervisor takes the RX buffer of
    /// endpoint w1[15:0] from its producer (the SPMC) to write into it; it
    /// gives it back with FFA_RX_RELEASE.  For endpoint 0 (the Normal
    /// world's own pair) and the hypervisor's VMs: a VM's buffer not known
    /// here is INVALID_PARAMETERS, one the SPMC cannot give (a message the
    /// VM has not released, or acquired already) DENIED, as the spec's
    /// FFA_RX_ACQUIRE errors say.
    fn rx_acquire(&self, id: u16) -> Regs {
        if id != NS_ENDPOINT_ID {
            return match self.with_vm_mailbox(id, |m| core::mem::replace(&mut m.rx_full, true)) {
                None => error(FfaError::InvalidParameters),
                Some(false) => success(&[]),
                Some(true) => error(FfaError::Denied),
            };
        }
        match &mut *self.ns_mailbox.lock() {
            None => error(FfaError::Denied),
            // The consumer owns it already (a message not yet released).
            Some(mb) if mb.rx_full => error(FfaError::Busy),
            Some(mb) => {
                mb.rx_full = true;
                success(&[])
            }
        }
    }
}

pub(crate) fn ffa_rxtx_map(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let Some(Interface::RxTxMap { addr, page_cnt }) = c.decoded else { return error(FfaError::InvalidParameters) };
    let (tx, rx) = match addr {
        RxTxAddr::Addr32 { rx, tx } => (tx as u64, rx as u64),
        RxTxAddr::Addr64 { rx, tx } => (tx, rx),
    };
    s.rxtx_map(c.caller, tx, rx, page_cnt as u64, platform)
}

pub(crate) fn ffa_rxtx_unmap(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let Some(Interface::RxTxUnmap { id }) = c.decoded else { return error(FfaError::InvalidParameters) };
    s.rxtx_unmap(c.caller, id, platform)
}

pub(crate) fn ffa_rx_release(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::RxRelease { vm_id }) = c.decoded else { return error(FfaError::InvalidParameters) };
    s.rx_release(c.caller, vm_id)
}

/// FFA_RX_ACQUIRE: the Normal world only (its row says so).
pub(crate) fn ffa_rx_acquire(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::RxAcquire { vm_id }) = c.decoded else { return error(FfaError::InvalidParameters) };
    s.rx_acquire(vm_id)
}
