//! FF-A memory management from guests (DEN0077 v1.2, "Memory management
//! interfaces"), with ns-hyp in the hypervisor's place between a VM and the
//! SPMC.
//!
//! A VM names its memory by IPA, in a transaction descriptor in its own TX
//! buffer; the SPMC knows PAs and ns-hyp's TX buffer only.  So for a VM's
//! FFA_MEM_SHARE / FFA_MEM_LEND (and the FFA_MEM_FRAG_TX fragments that
//! follow one), ns-hyp:
//! - checks the descriptor (sender = the VM's own id, handle 0, receivers
//!   are SPs) and that the VM owns every page it names: inside its RAM, not
//!   one of its RX/TX pages, not already in one of its transactions.  A page
//!   it does not own is DENIED (the spec's "ownership or access state of the
//!   memory region is invalid"); a malformed descriptor INVALID_PARAMETERS;
//! - copies the fragment into ns-hyp's TX buffer with each constituent's IPA
//!   replaced by its PA.  A VM's RAM is one contiguous PA range, so each
//!   constituent stays one constituent and the lengths do not change;
//! - records the pages in a [`Ledger`]: one byte per page of the guest area,
//!   naming the transaction that holds it;
//! - for a lend, takes the pages out of the VM's Stage-2 *before* the SPMC
//!   sees the transaction (a borrower may be given exclusive access at once),
//!   and puts them back when the VM reclaims them (FFA_MEM_RECLAIM) or when
//!   the SPMC refuses the transaction.
//!
//! On VM teardown every transaction of the VM is reclaimed ([`teardown`]).
//! FFA_MEM_DONATE is refused (NOT_SUPPORTED): a donated page would leave the
//! VM's RAM for good, and ns-hyp scrubs and reuses that RAM.
//!
//! The SPMC keeps the transaction itself (handle, receivers, retrievals); the
//! ledger only answers "whose pages are these" and "which pages does this
//! handle hold", which the SPMC cannot know for IPAs.

use super::{Guests, Handler, Proxy, Regs, Upstream};
use crate::vm::layout::RAM_IPA;
use shared::abi::ffa::{FfaError, FuncId, fid};
use shared::ffa_memory::{self as desc, COMPOSITE_SIZE, CONSTITUENT_SIZE, DescError, PAGE};

/// Transactions in flight over all VMs.  Slot `i` is byte `i + 1` in the
/// page map (0: the page is in no transaction).
pub const MAX_TRANSACTIONS: usize = 254;
/// The page-map byte of a page being checked (not yet any slot's).
const CHECKING: u8 = 0xff;

/// FFA_MEM_SHARE and FFA_MEM_LEND (DEN0077 v1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemOp {
    Share,
    Lend,
}

/// A VM's RAM: IPA `ipa` maps to PA `pa`, `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRam {
    pub ipa: u64,
    pub pa: u64,
    pub size: u64,
}

impl GuestRam {
    /// The PA of `pages` pages from `ipa`, all inside the RAM, or None.
    fn pa_of(&self, ipa: u64, pages: u64) -> Option<u64> {
        let len = pages.checked_mul(PAGE)?;
        let end = ipa.checked_add(len)?;
        (ipa >= self.ipa && end <= self.ipa + self.size).then(|| ipa - self.ipa + self.pa)
    }
}

/// The VM a memory call comes from, as the ledger needs it.
#[derive(Clone, Copy)]
pub struct Sender<'a> {
    /// VM index (ns-hyp's).
    pub vm: usize,
    /// Its FF-A id.
    pub id: u16,
    /// The FF-A version it negotiated (the descriptor layout).
    pub version: u32,
    pub ram: GuestRam,
    /// Whether the page at this PA is one of the VM's RX/TX pages.
    pub pinned: &'a dyn Fn(u64) -> bool,
}

/// One transaction of a VM, from its first fragment until it is reclaimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub vm: usize,
    pub op: MemOp,
    /// The SPMC's handle, once it gave one (after the first fragment).
    pub handle: Option<u64>,
    /// The descriptor's total length and how much of it went to the SPMC.
    pub total_len: u32,
    pub sent_len: u32,
    /// The SPMC answered FFA_SUCCESS to the last fragment.
    pub complete: bool,
}

/// Which transaction holds each page of the guest area.
pub struct Ledger<'a> {
    /// PA of the first page `pages` describes.
    base: u64,
    pages: &'a mut [u8],
    txs: [Option<Transaction>; MAX_TRANSACTIONS],
}

fn invalid(e: DescError) -> FfaError {
    match e {
        DescError::Invalid => FfaError::InvalidParameters,
        // More receivers than the SPMC tracks (it would say NO_MEMORY too).
        DescError::TooManyReceivers => FfaError::NoMemory,
    }
}

impl<'a> Ledger<'a> {
    /// A ledger for the guest area from PA `base`, one byte per page in `pages`.
    pub fn new(base: u64, pages: &'a mut [u8]) -> Self {
        pages.fill(0);
        Ledger { base, pages, txs: [None; MAX_TRANSACTIONS] }
    }

    fn index(&self, pa: u64) -> Option<usize> {
        let i = usize::try_from(pa.checked_sub(self.base)? / PAGE).ok()?;
        (i < self.pages.len()).then_some(i)
    }

    pub fn transaction(&self, slot: usize) -> Option<&Transaction> {
        self.txs.get(slot)?.as_ref()
    }

    /// The slot of VM `vm`'s transaction with `handle`.
    pub fn find(&self, vm: usize, handle: u64) -> Option<usize> {
        self.txs.iter().position(|t| t.is_some_and(|t| t.vm == vm && t.handle == Some(handle)))
    }

    /// Every slot VM `vm` holds.
    pub fn slots_of(&self, vm: usize) -> impl Iterator<Item = usize> + '_ {
        self.txs.iter().enumerate().filter(move |(_, t)| t.is_some_and(|t| t.vm == vm)).map(|(i, _)| i)
    }

    /// The transaction holding the page at `pa`, if any.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn owner(&self, pa: u64) -> Option<usize> {
        let b = *self.pages.get(self.index(pa)?)?;
        (b != 0).then(|| b as usize - 1)
    }

    /// The runs of pages slot `slot` holds inside `ram`, as (IPA, page count).
    pub fn runs(&self, slot: usize, ram: GuestRam) -> impl Iterator<Item = (u64, u64)> + '_ {
        let tag = slot as u8 + 1;
        let first = self.index(ram.pa).unwrap_or(self.pages.len());
        let count = (ram.size / PAGE) as usize;
        let pages = &self.pages[first..(first + count).min(self.pages.len())];
        let mut i = 0;
        core::iter::from_fn(move || {
            while i < pages.len() && pages[i] != tag {
                i += 1;
            }
            if i == pages.len() {
                return None;
            }
            let start = i;
            while i < pages.len() && pages[i] == tag {
                i += 1;
            }
            Some((ram.ipa + start as u64 * PAGE, (i - start) as u64))
        })
    }

    /// Frees slot `slot` and every page it holds.
    pub fn release(&mut self, slot: usize) {
        let tag = slot as u8 + 1;
        if let Some(t) = self.txs.get_mut(slot) {
            *t = None;
        }
        for b in self.pages.iter_mut().filter(|b| **b == tag) {
            *b = 0;
        }
    }

    /// Checks and translates the constituents in `src` (whole 16-byte
    /// entries) into `dst` (same length), and marks their pages as slot
    /// `slot`'s.  All or nothing: on an error no page of `src` is marked.
    fn take_constituents(&mut self, slot: usize, s: &Sender<'_>, src: &[u8], dst: &mut [u8]) -> Result<(), FfaError> {
        let list = || desc::constituents(src).map_err(invalid);
        // Pass 1: every page owned by the VM and free, none twice (marked
        // CHECKING meanwhile).
        let mut result = Ok(());
        'outer: for c in list()? {
            let Some(pa) = s.ram.pa_of(c.address, c.page_count as u64) else {
                result = Err(FfaError::Denied);
                break;
            };
            for p in 0..c.page_count as u64 {
                let page = pa + p * PAGE;
                let i = match self.index(page) {
                    Some(i) if !(s.pinned)(page) => i,
                    _ => {
                        result = Err(FfaError::Denied);
                        break 'outer;
                    }
                };
                match self.pages[i] {
                    0 => self.pages[i] = CHECKING,
                    // The same page twice in this transaction.
                    b if b == CHECKING || b == slot as u8 + 1 => {
                        result = Err(FfaError::InvalidParameters);
                        break 'outer;
                    }
                    // Already shared or lent.
                    _ => {
                        result = Err(FfaError::Denied);
                        break 'outer;
                    }
                }
            }
        }
        // Pass 2: the marks become the slot's (or are dropped), and on
        // success the constituents are written with their PAs.
        let mark = if result.is_ok() { slot as u8 + 1 } else { 0 };
        for (c, out) in list()?.zip(dst.chunks_exact_mut(CONSTITUENT_SIZE)) {
            let Some(pa) = s.ram.pa_of(c.address, c.page_count as u64) else { continue };
            for p in 0..c.page_count as u64 {
                if let Some(i) = self.index(pa + p * PAGE).filter(|&i| self.pages[i] == CHECKING) {
                    self.pages[i] = mark;
                }
            }
            if result.is_ok() {
                desc::write_constituent(out, &desc::Constituent { address: pa, page_count: c.page_count }).ok_or(FfaError::InvalidParameters)?;
            }
        }
        result
    }

    /// The first fragment of a VM's FFA_MEM_SHARE/LEND: `src` (its length is
    /// the fragment's) from the VM's TX buffer, `total_len` from w1.  Writes
    /// the translated fragment into `dst` (ns-hyp's TX buffer) and returns
    /// the new transaction's slot; the caller forwards it and then calls
    /// [`Ledger::forwarded`].
    pub fn begin(&mut self, s: &Sender<'_>, op: MemOp, src: &[u8], total_len: u32, dst: &mut [u8]) -> Result<usize, FfaError> {
        let len = src.len();
        if len == 0 || len > total_len as usize || len > dst.len() {
            return Err(FfaError::InvalidParameters);
        }
        let d = desc::parse(src, s.version, true).map_err(invalid)?;
        if d.sender != s.id || d.handle != 0 {
            return Err(FfaError::InvalidParameters);
        }
        // Receivers are SPs: the SPMC knows no other VM (VM-to-VM memory
        // sharing is not proxied).
        if d.receivers().any(|r| !shared::abi::ffa::is_secure_endpoint(r.receiver)) {
            return Err(FfaError::InvalidParameters);
        }
        let first = d.composite_offset + COMPOSITE_SIZE;
        if first > len {
            return Err(FfaError::InvalidParameters);
        }
        let slot = self.txs.iter().position(Option::is_none).ok_or(FfaError::NoMemory)?;
        self.txs[slot] = Some(Transaction { vm: s.vm, op, handle: None, total_len, sent_len: len as u32, complete: false });
        dst[..first].copy_from_slice(&src[..first]);
        if let Err(e) = self.take_constituents(slot, s, &src[first..], &mut dst[first..len]) {
            self.release(slot);
            return Err(e);
        }
        Ok(slot)
    }

    /// A VM's FFA_MEM_FRAG_TX for `handle`: the next fragment `src` (whole
    /// constituents), translated into `dst`.  Returns the slot.
    pub fn fragment(&mut self, s: &Sender<'_>, handle: u64, src: &[u8], dst: &mut [u8]) -> Result<usize, FfaError> {
        let slot = self.find(s.vm, handle).ok_or(FfaError::InvalidParameters)?;
        let t = self.txs[slot].ok_or(FfaError::InvalidParameters)?;
        let len = src.len();
        if t.complete || len == 0 || len > dst.len() || t.sent_len as usize + len > t.total_len as usize {
            return Err(FfaError::InvalidParameters);
        }
        // A bad fragment leaves the transaction as it was: the VM may send
        // it again correctly (the SPMC has not seen it).
        self.take_constituents(slot, s, src, &mut dst[..len])?;
        if let Some(t) = self.txs[slot].as_mut() {
            t.sent_len += len as u32;
        }
        Ok(slot)
    }

    /// The SPMC's answer `reply` (x0..x7) to the fragment of slot `slot`
    /// ns-hyp forwarded.  Returns what the VM gets: the reply itself, or
    /// the error.  On an error the transaction is gone; its pages are
    /// released after the caller put a lend's pages back (it reads
    /// [`Ledger::runs`] before calling this).
    pub fn forwarded(&mut self, slot: usize, reply: &[u64; 8]) -> Result<(), FfaError> {
        let Some(t) = self.txs.get_mut(slot).and_then(Option::as_mut) else { return Err(FfaError::InvalidParameters) };
        let f = reply[0] as u32;
        let handle = |lo: u64, hi: u64| (lo & 0xffff_ffff) | (hi & 0xffff_ffff) << 32;
        if f == fid::FFA_SUCCESS_32 || f == fid::FFA_SUCCESS_64 {
            let h = handle(reply[2], reply[3]);
            if t.sent_len != t.total_len || t.handle.is_some_and(|old| old != h) {
                // The SPMC completed something else than we sent: keep the
                // pages held; the VM reclaims by the handle it was given.
                log::warn!("FF-A memory: SPMC answered SUCCESS with {} of {} bytes sent", t.sent_len, t.total_len);
            }
            t.handle = Some(h);
            t.complete = true;
            Ok(())
        } else if f == FFA_MEM_FRAG_RX {
            t.handle = Some(handle(reply[1], reply[2]));
            Ok(())
        } else {
            let e = if f == fid::FFA_ERROR { FfaError::try_from(reply[2] as i32).unwrap_or(FfaError::Aborted) } else { FfaError::Aborted };
            Err(e)
        }
    }
}

/// FFA_MEM_FRAG_RX: the SPMC wants the next fragment (DEN0077 v1.2).
const FFA_MEM_FRAG_RX: u32 = FuncId::MemFragRx as u32;

/// What the memory calls need of the world around them: ns-hyp's TX buffer,
/// an SMC to the SPMC, and the VMs' Stage-2 (the target's in
/// `guest::ffa`; a fake in the host tests).
pub trait MemWorld {
    /// ns-hyp's TX buffer, held by the caller for the whole call.
    fn hyp_tx(&mut self) -> &mut [u8];
    /// An FF-A call to the SPMC: x0..x7 in, x0..x7 out.
    fn call(&mut self, regs: [u64; 8]) -> [u64; 8];
    /// Takes `pages` pages from `ipa` out of VM `vm`'s Stage-2; false if
    /// that failed (no memory for a split table).
    fn unmap(&mut self, vm: usize, ipa: u64, pages: u64) -> bool;
    /// Puts them back (RAM, read/write/execute, as the VM had them).
    fn map(&mut self, vm: usize, ipa: u64, pages: u64);
}

/// FFA_ERROR with `e` ([`super::error`]'s x0..x7).
pub fn error(e: FfaError) -> [u64; 8] {
    let mut r = [0; 8];
    r.copy_from_slice(&super::error(e)[..8]);
    r
}

fn handle_regs(h: u64) -> (u64, u64) {
    (h & 0xffff_ffff, h >> 32)
}

fn put_back<W: MemWorld>(ledger: &Ledger<'_>, slot: usize, ram: GuestRam, vm: usize, world: &mut W) {
    for (ipa, pages) in ledger.runs(slot, ram) {
        world.map(vm, ipa, pages);
    }
}

/// A VM's FFA_MEM_SHARE/LEND/DONATE (32 or 64): x1 total length, x2 this
/// fragment's length, x3/x4 a buffer other than the TX buffer (not
/// supported: FFA_FEATURES says so, they must be 0).  `guest_tx` is the VM's
/// TX buffer.
pub fn mem_send<W: MemWorld>(ledger: &mut Ledger<'_>, s: &Sender<'_>, guest_tx: &[u8], r: &[u64; 8], world: &mut W) -> [u64; 8] {
    let f = r[0] as u32;
    let op = match f {
        _ if f == FuncId::MemShare32 as u32 || f == FuncId::MemShare64 as u32 => MemOp::Share,
        _ if f == FuncId::MemLend32 as u32 || f == FuncId::MemLend64 as u32 => MemOp::Lend,
        _ => return error(FfaError::NotSupported),
    };
    let (total, frag) = (r[1] as u32, r[2] as u32 as usize);
    if r[3] != 0 || r[4] as u32 != 0 || frag > guest_tx.len() {
        return error(FfaError::InvalidParameters);
    }
    let slot = match ledger.begin(s, op, &guest_tx[..frag], total, world.hyp_tx()) {
        Ok(slot) => slot,
        Err(e) => return error(e),
    };
    if op == MemOp::Lend {
        let mut unmapped = true;
        for (ipa, pages) in ledger.runs(slot, s.ram) {
            unmapped &= world.unmap(s.vm, ipa, pages);
        }
        if !unmapped {
            // A lent page the VM could still reach must not reach the SPMC:
            // refused before forwarding, every page mapped again.
            put_back(ledger, slot, s.ram, s.vm, world);
            ledger.release(slot);
            return error(FfaError::NoMemory);
        }
    }
    finish(ledger, slot, s, world, [r[0], total as u64, frag as u64, 0, 0, 0, 0, 0])
}

/// Forwards the fragment in ns-hyp's TX buffer and settles the ledger.
fn finish<W: MemWorld>(ledger: &mut Ledger<'_>, slot: usize, s: &Sender<'_>, world: &mut W, fwd: [u64; 8]) -> [u64; 8] {
    let reply = world.call(fwd);
    match ledger.forwarded(slot, &reply) {
        Ok(()) => reply,
        Err(e) => {
            // The SPMC dropped the transaction: the VM has its pages back.
            if ledger.transaction(slot).is_some_and(|t| t.op == MemOp::Lend) {
                put_back(ledger, slot, s.ram, s.vm, world);
            }
            ledger.release(slot);
            error(e)
        }
    }
}

/// A VM's FFA_MEM_FRAG_TX: x1/x2 the handle, x3 the fragment's length.
/// Forwarded with the VM's id in w4, as a hypervisor does (DEN0077 v1.2,
/// FFA_MEM_FRAG_TX: w4[31:16] the sender endpoint ID when the caller is a hypervisor).
pub fn frag_tx<W: MemWorld>(ledger: &mut Ledger<'_>, s: &Sender<'_>, guest_tx: &[u8], r: &[u64; 8], world: &mut W) -> [u64; 8] {
    let h = (r[1] & 0xffff_ffff) | (r[2] & 0xffff_ffff) << 32;
    let frag = r[3] as u32 as usize;
    if frag > guest_tx.len() || r[4] as u32 != 0 {
        return error(FfaError::InvalidParameters);
    }
    let slot = match ledger.fragment(s, h, &guest_tx[..frag], world.hyp_tx()) {
        Ok(slot) => slot,
        Err(e) => return error(e),
    };
    if ledger.transaction(slot).is_some_and(|t| t.op == MemOp::Lend) {
        for (ipa, pages) in ledger.runs(slot, s.ram) {
            // A later fragment's unmap failing cannot be refused the same way
            // (the SPMC holds the earlier fragments and FF-A has no call to
            // drop them): it is logged; see docs/ns-hyp.md.
            if !world.unmap(s.vm, ipa, pages) {
                log::error!("vm{}: FF-A lend: IPA {:#x} ({} pages) could not leave the Stage-2", s.vm, ipa, pages);
            }
        }
    }
    let (lo, hi) = handle_regs(h);
    finish(ledger, slot, s, world, [FuncId::MemFragTx as u64, lo, hi, frag as u64, (s.id as u64) << 16, 0, 0, 0])
}

/// A VM's FFA_MEM_RECLAIM: x1/x2 the handle, x3 flags.  Only the VM's own
/// complete transactions; on the SPMC's SUCCESS a lend's pages return to
/// the VM's Stage-2.
pub fn reclaim<W: MemWorld>(ledger: &mut Ledger<'_>, s: &Sender<'_>, r: &[u64; 8], world: &mut W) -> [u64; 8] {
    let h = (r[1] & 0xffff_ffff) | (r[2] & 0xffff_ffff) << 32;
    let Some(slot) = ledger.find(s.vm, h).filter(|&i| ledger.transaction(i).is_some_and(|t| t.complete)) else {
        return error(FfaError::InvalidParameters);
    };
    let reply = world.call([FuncId::MemReclaim as u64, r[1] & 0xffff_ffff, r[2] & 0xffff_ffff, r[3] & 0xffff_ffff, 0, 0, 0, 0]);
    if reply[0] as u32 == fid::FFA_SUCCESS_32 {
        if ledger.transaction(slot).is_some_and(|t| t.op == MemOp::Lend) {
            put_back(ledger, slot, s.ram, s.vm, world);
        }
        ledger.release(slot);
    }
    reply
}

/// VM `vm` (RAM `ram`) is going away: every transaction it holds is
/// reclaimed from the SPMC and its pages freed, a lend's pages mapped back
/// (a reset starts the VM again on the same Stage-2).  A transaction the
/// SPMC will not give back (a borrower still holds it) keeps its pages
/// marked and unmapped, so neither this VM's next life nor a later VM in
/// that RAM can reach or share them; returns (reclaimed, kept).
pub fn teardown<W: MemWorld>(ledger: &mut Ledger<'_>, vm: usize, ram: GuestRam, world: &mut W) -> (usize, usize) {
    let (mut reclaimed, mut kept) = (0, 0);
    let slots: heapless_runs::Slots = ledger.slots_of(vm).collect();
    for &slot in slots.iter() {
        let Some(t) = ledger.transaction(slot).copied() else { continue };
        let ok = match t.handle {
            // The SPMC never saw it complete and holds nothing to give back,
            // or it did: ask for it.
            None => true,
            Some(h) => {
                let (lo, hi) = handle_regs(h);
                let reply = world.call([FuncId::MemReclaim as u64, lo, hi, 0, 0, 0, 0, 0]);
                reply[0] as u32 == fid::FFA_SUCCESS_32 || !t.complete
            }
        };
        if ok {
            if t.op == MemOp::Lend {
                put_back(ledger, slot, ram, vm, world);
            }
            ledger.release(slot);
            reclaimed += 1;
        } else {
            log::error!("vm{}: FF-A memory handle {:#x} not reclaimed (a borrower holds it): its pages stay out of use", vm, t.handle.unwrap_or(0));
            kept += 1;
        }
    }
    (reclaimed, kept)
}

/// The proxy's side of the memory calls: the SPMC, ns-hyp's TX buffer and
/// the VMs' Stage-2 as [`MemWorld`] wants them.
/// What goes to ns-hyp's TX buffer is built in `tx` first and copied there
/// just before the call that reads it.
struct ProxyWorld<'a, U: Upstream, M: Guests> {
    tx: [u8; TX_COPY],
    up: &'a U,
    mem: &'a M,
}

impl<'a, U: Upstream, M: Guests> ProxyWorld<'a, U, M> {
    fn new(up: &'a U, mem: &'a M) -> Self {
        ProxyWorld { tx: [0; TX_COPY], up, mem }
    }
}

impl<U: Upstream, M: Guests> MemWorld for ProxyWorld<'_, U, M> {
    fn hyp_tx(&mut self) -> &mut [u8] {
        &mut self.tx
    }
    fn call(&mut self, regs: [u64; 8]) -> [u64; 8] {
        // The fragment's length: w2 of a send, w3 of FRAG_TX; RECLAIM has none.
        let f = regs[0] as u32;
        let len = if f == FuncId::MemFragTx as u32 {
            regs[3]
        } else if f == FuncId::MemReclaim as u32 {
            0
        } else {
            regs[2]
        };
        self.up.write_hyp_tx(&self.tx[..(len as usize).min(TX_COPY)]);
        let mut r = [0; 18];
        r[..8].copy_from_slice(&regs);
        let a = self.up.call(&r);
        let mut out = [0; 8];
        out.copy_from_slice(&a[..8]);
        out
    }
    fn unmap(&mut self, vm: usize, ipa: u64, pages: u64) -> bool {
        self.mem.set_mapped(vm, ipa, pages, false)
    }
    fn map(&mut self, vm: usize, ipa: u64, pages: u64) {
        if !self.mem.set_mapped(vm, ipa, pages, true) {
            log::error!("vm{}: FF-A memory: IPA {:#x} ({} pages) could not be mapped back", vm, ipa, pages);
        }
    }
}

/// The most of a VM's TX buffer one call reads: ns-hyp's own TX buffer is
/// one page, so a fragment must fit in it (Linux's driver, with 4 KiB
/// pages, sends fragments of at most its one-page TX buffer).
const TX_COPY: usize = PAGE as usize;

/// VM `k`'s FFA_MEM_SHARE/LEND (32/64), FFA_MEM_FRAG_TX or FFA_MEM_RECLAIM.
/// The VM's TX buffer is copied once before anything is checked: another
/// of its vCPUs may write it meanwhile, and what ns-hyp checks must be what
/// it forwards.
pub(super) fn call<U: Upstream, M: Guests>(p: &Proxy, k: usize, h: Handler, a: &Regs, up: &U, mem: &M) -> Regs {
    let mut guard = p.memory.lock();
    let Some(ledger) = guard.as_mut() else { return super::error(FfaError::NotSupported) };
    let vm = p.vm(k);
    let (pa, size) = mem.ram(k);
    let mut r = [0u64; 8];
    r.copy_from_slice(&a[..8]);
    let widen = |x: [u64; 8]| {
        let mut out = [0; 18];
        out[..8].copy_from_slice(&x);
        out
    };
    if h == Handler::MemReclaim {
        let s = Sender { vm: k, id: vm.id, version: vm.version, ram: GuestRam { ipa: RAM_IPA, pa, size }, pinned: &|_| false };
        return widen(reclaim(ledger, &s, &r, &mut ProxyWorld::new(up, mem)));
    }
    // Sending needs the VM's TX buffer (the descriptor is in it: x3 = 0).
    let Some(mb) = vm.mailbox else { return super::error(FfaError::Denied) };
    let len = if h == Handler::MemFragTx { r[3] } else { r[2] } as u32 as usize;
    if len > TX_COPY || len as u64 > mb.pages * PAGE {
        return super::error(FfaError::InvalidParameters);
    }
    let mut copy = [0u8; TX_COPY];
    mem.read(mb.tx_pa, &mut copy[..len]);
    let pinned = |pa: u64| mb.holds(pa);
    let s = Sender { vm: k, id: vm.id, version: vm.version, ram: GuestRam { ipa: RAM_IPA, pa, size }, pinned: &pinned };
    let mut w = ProxyWorld::new(up, mem);
    widen(if h == Handler::MemFragTx { frag_tx(ledger, &s, &copy[..len], &r, &mut w) } else { mem_send(ledger, &s, &copy[..len], &r, &mut w) })
}

/// VM `k` is going away: [`teardown`] of its transactions.
pub(super) fn vm_gone<U: Upstream, M: Guests>(p: &Proxy, k: usize, up: &U, mem: &M) {
    let mut guard = p.memory.lock();
    let Some(ledger) = guard.as_mut() else { return };
    if ledger.slots_of(k).next().is_none() {
        return;
    }
    let (pa, size) = mem.ram(k);
    let (reclaimed, kept) = teardown(ledger, k, GuestRam { ipa: RAM_IPA, pa, size }, &mut ProxyWorld::new(up, mem));
    log::info!("vm{}: FF-A memory: {} transaction(s) reclaimed, {} held by a borrower", k, reclaimed, kept);
}

/// A fixed-size list (ns-hyp has no allocator).
mod heapless_runs {
    use super::MAX_TRANSACTIONS;

    pub struct List<T: Copy + Default, const N: usize> {
        items: [T; N],
        len: usize,
    }

    impl<T: Copy + Default, const N: usize> List<T, N> {
        pub fn iter(&self) -> impl Iterator<Item = &T> {
            self.items[..self.len].iter()
        }
    }

    impl<T: Copy + Default, const N: usize> FromIterator<T> for List<T, N> {
        fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Self {
            let mut l = List { items: [T::default(); N], len: 0 };
            for x in it.into_iter().take(N) {
                l.items[l.len] = x;
                l.len += 1;
            }
            l
        }
    }

    pub type Slots = List<usize, MAX_TRANSACTIONS>;
}

#[cfg(test)]
pub(super) mod tests;
