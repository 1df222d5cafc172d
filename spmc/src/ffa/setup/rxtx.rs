//! RX/TX buffer pairs (DEN0077 v1.2 FFA_RXTX_MAP, FFA_RXTX_UNMAP, FFA_RX_RELEASE).
//!
//! One pair for the Normal world (endpoint 0; its buffers are in the
//! Non-secure PAS and get mapped into the SPMC's Stage-1 with the NS bit) and
//! one per SP (inside the SP's own memory, which the SPMC maps already).

use crate::ffa::calls::Call;
use crate::ffa::{Caller, NS_ENDPOINT_ID, Platform, Regs, Spmc, error, success};
use crate::manifest::Range;
use shared::abi::ffa::{FfaError, fid};

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
    pub(crate) fn rxtx_map(&mut self, caller: Caller, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let is32 = r[0] as u32 == fid::FFA_RXTX_MAP_32;
        let mask = if is32 { 0xffff_ffff } else { u64::MAX };
        let (tx, rx) = (r[1] & mask, r[2] & mask);
        let pages = r[3] & 0xffff_ffff;
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
        if self.mailbox(caller).is_some() {
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
                let m = self.part_mut(i).memory;
                let mem = Range { base: m.base, size: m.size };
                if !mem.contains(tx, size) || !mem.contains(rx, size) {
                    return error(FfaError::InvalidParameters);
                }
            }
        }
        *self.mailbox(caller) = Some(Mailbox { tx, rx, size, rx_full: false });
        success(&[])
    }

    pub(crate) fn rxtx_unmap(&mut self, caller: Caller, r: &Regs, platform: &mut dyn Platform) -> Regs {
        // w1 bits 31:16: the endpoint whose buffers go; only the caller's own
        // (0 means "the caller" for a non-hypervisor caller) are accepted.
        let id = ((r[1] >> 16) & 0xffff) as u16;
        if id != 0 && id != self.caller_id(caller) {
            return error(FfaError::InvalidParameters);
        }
        let Some(mb) = self.mailbox(caller).take() else {
            return error(FfaError::InvalidParameters);
        };
        if caller == Caller::Ns {
            platform.unmap_ns(mb.tx, mb.size);
            platform.unmap_ns(mb.rx, mb.size);
        }
        success(&[])
    }

    pub(crate) fn rx_release(&mut self, caller: Caller, r: &Regs) -> Regs {
        let id = (r[1] & 0xffff) as u16;
        if id != 0 && id != self.caller_id(caller) {
            return error(FfaError::InvalidParameters);
        }
        match self.mailbox(caller) {
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
    pub(crate) fn rx_acquire(&mut self, r: &Regs) -> Regs {
        if (r[1] & 0xffff) as u16 != NS_ENDPOINT_ID {
            return error(FfaError::InvalidParameters);
        }
        match &mut self.ns_mailbox {
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

pub(crate) fn ffa_rxtx_map(s: &mut Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    s.rxtx_map(c.caller, c.regs, platform)
}

pub(crate) fn ffa_rxtx_unmap(s: &mut Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    s.rxtx_unmap(c.caller, c.regs, platform)
}

pub(crate) fn ffa_rx_release(s: &mut Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    s.rx_release(c.caller, c.regs)
}

/// FFA_RX_ACQUIRE: the Normal world only (its row says so).
pub(crate) fn ffa_rx_acquire(s: &mut Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    s.rx_acquire(c.regs)
}
