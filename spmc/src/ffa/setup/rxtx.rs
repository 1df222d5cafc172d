//! RX/TX buffer pairs (DEN0077 v1.2 FFA_RXTX_MAP, FFA_RXTX_UNMAP, FFA_RX_RELEASE).
//!
//! One pair for the Normal world (endpoint 0; its buffers are in the
//! Non-secure PAS and get mapped into the SPMC's Stage-1 with the NS bit) and
//! one per SP (inside the SP's own memory, which the SPMC maps already).

use crate::ffa::calls::Call;
use crate::ffa::{Caller, NS_ENDPOINT_ID, Platform, Regs, Spmc, error, success};
use crate::manifest::Range;
use shared::abi::ffa::interface_args::RxTxAddr;
use shared::abi::ffa::{FfaError, Interface};

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

impl Spmc {
    /// FFA_RXTX_MAP: `tx`, `rx` buffer addresses of `pages` 4 KiB pages each.
    fn rxtx_map(&self, caller: Caller, tx: u64, rx: u64, pages: u64, platform: &mut dyn Platform) -> Regs {
        // w3 bits 31:6 are reserved (MBZ).
        if pages == 0 || pages > MAX_PAGES || tx % PAGE != 0 || rx % PAGE != 0 {
            return error(FfaError::InvalidParameters);
        }
        let size = pages * PAGE;
        let (Some(_), Some(_)) = (tx.checked_add(size), rx.checked_add(size)) else {
            return error(FfaError::InvalidParameters);
        };
        if (Range { base: tx, size }).overlaps(&Range { base: rx, size }) {
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

    /// FFA_RXTX_UNMAP of endpoint `id`'s buffers (w1 bits 31:16): only the
    /// caller's own (0 means "the caller" for a non-hypervisor caller) are accepted.
    fn rxtx_unmap(&self, caller: Caller, id: u16, platform: &mut dyn Platform) -> Regs {
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

    /// FFA_RX_RELEASE of endpoint `id`'s RX buffer (w1 bits 15:0).
    fn rx_release(&self, caller: Caller, id: u16) -> Regs {
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
    /// gives it back with FFA_RX_RELEASE.  We only know the Normal world's own
    /// buffer pair (endpoint 0; no VMs yet).
    fn rx_acquire(&self, id: u16) -> Regs {
        if id != NS_ENDPOINT_ID {
            return error(FfaError::InvalidParameters);
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
