//! Memory management (DEN0077 v1.2 chapters "Memory management" and "Memory
//! management interfaces"): FFA_MEM_SHARE, FFA_MEM_LEND, FFA_MEM_DONATE (32-
//! and 64-bit), FFA_MEM_RETRIEVE_REQ/RESP, FFA_MEM_RELINQUISH,
//! FFA_MEM_RECLAIM and FFA_MEM_FRAG_TX/RX, from the Normal world to SPs and
//! between SPs.
//!
//! - [`descriptor`]: the transaction descriptors, v1.0 and v1.1+ layouts
//!   (`shared::ffa_memory`, shared with ns-hyp, which translates its
//!   guests' descriptors with it);
//! - [`transaction`]: handles, owners and borrowers, and their rules;
//! - here: the calls, reading the sender's TX buffer and writing the
//!   borrower's RX buffer, and the borrowers' Stage-2 through the platform.
//!
//! Descriptors always come in the caller's TX buffer (w3/w4 = 0; a buffer
//! elsewhere is NOT_SUPPORTED, as Hafnium answers).  A first fragment must
//! hold the header, every receiver and the composite header within its first
//! [`CHUNK`] bytes; constituents may span any number of fragments
//! (FFA_MEM_FRAG_TX), and a retrieve response longer than the borrower's RX
//! buffer is handed out in fragments (FFA_MEM_FRAG_RX).
//!
//! Senders from the Normal world: the hypervisor (endpoint 0, or the OS
//! without one) sends for itself or, in the FF-A hypervisor role, forwards
//! the transactions of its VMs: the descriptor's sender is then the VM's id
//! (any Normal-world id, [`shared::abi::ffa::is_ns_endpoint`]) and its
//! constituents are PAs the hypervisor translated.  spmc cannot tell the
//! VMs apart (they all arrive as the one Normal-world caller, through the
//! hypervisor's TX buffer), so the hypervisor is trusted to name the right
//! VM, as Hafnium's SPMC trusts it: FFA_MEM_FRAG_TX names the sender in
//! w4[31:16] and must match the transaction's; FFA_MEM_RECLAIM, which names
//! no endpoint, is accepted from the Normal world for any handle whose
//! sender is a Normal-world endpoint (the hypervisor reclaims for its VM).
//! Pages are checked against the Normal world's memory ranges as for the
//! hypervisor's own, and a page is in one live transaction at most,
//! whichever VM sent it.
//!
//! Borrowers are SPs.  Memory of the Normal world is mapped into the
//! borrower's Non-secure IPA space (its Stage-1 maps it with NS = 1, as the
//! retrieve response's NS attribute tells it); Secure memory of a lending SP
//! into its Secure IPA space, at IPA == PA both.

pub use shared::ffa_memory as descriptor;
pub mod transaction;

use super::calls::Call;
use super::setup::rxtx::Mailbox;
use super::{Caller, Platform, Regs, Spmc, error, success};
use crate::manifest::Range;
use descriptor::{Constituent, DataAccess, DescError, EndpointMemAccess, InstructionAccess, MemAccessPermissions, MemRegionAttributes, CONSTITUENT_SIZE};
use shared::abi::ffa::{self as ffa, FfaError};
use transaction::{MemOp, MemoryStore, NewTransaction, Retrieval, Transaction};

/// An empty list of receivers to fill.
const NO_RECEIVERS: [EndpointMemAccess; descriptor::MAX_RECEIVERS] =
    [EndpointMemAccess { receiver: 0, permissions: MemAccessPermissions { data: DataAccess::NotSpecified, instruction: InstructionAccess::NotSpecified }, flags: 0, impdef: [0; 2] }; descriptor::MAX_RECEIVERS];

/// How much of a TX buffer is read at a time (on the stack).
pub const CHUNK: usize = 4096;

/// How a borrower may access what it retrieved (its Stage-2 permissions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BorrowedAccess {
    pub write: bool,
    pub execute: bool,
}

/// w0 ids of the calls (from `arm-ffa`'s FuncId through `shared`).
pub mod ids {
    use shared::abi::ffa::FuncId;
    pub const FFA_MEM_DONATE_32: u32 = FuncId::MemDonate32 as u32;
    pub const FFA_MEM_DONATE_64: u32 = FuncId::MemDonate64 as u32;
    pub const FFA_MEM_LEND_32: u32 = FuncId::MemLend32 as u32;
    pub const FFA_MEM_LEND_64: u32 = FuncId::MemLend64 as u32;
    pub const FFA_MEM_SHARE_32: u32 = FuncId::MemShare32 as u32;
    pub const FFA_MEM_SHARE_64: u32 = FuncId::MemShare64 as u32;
    pub const FFA_MEM_RETRIEVE_REQ_32: u32 = FuncId::MemRetrieveReq32 as u32;
    pub const FFA_MEM_RETRIEVE_REQ_64: u32 = FuncId::MemRetrieveReq64 as u32;
    pub const FFA_MEM_RETRIEVE_RESP: u32 = FuncId::MemRetrieveResp as u32;
    pub const FFA_MEM_RELINQUISH: u32 = FuncId::MemRelinquish as u32;
    pub const FFA_MEM_RECLAIM: u32 = FuncId::MemReclaim as u32;
    pub const FFA_MEM_FRAG_RX: u32 = FuncId::MemFragRx as u32;
    pub const FFA_MEM_FRAG_TX: u32 = FuncId::MemFragTx as u32;
}
use ids::*;

/// Flags of FFA_MEM_SHARE/LEND/DONATE: bit 0 zero memory (not for share),
/// bit 1 operation time slicing; the rest MBZ.
const SEND_FLAGS: u32 = 0b11;
/// Bit 0 of the send, reclaim and relinquish flags: zero the memory.
const ZERO_MEMORY: u32 = 1;
/// Flags of a retrieve request (DEN0077 v1.2 §11.4.2, "Flags usage in
/// FFA_MEM_RETRIEVE_REQ"): zero before retrieve [0], time slicing [1], zero
/// after relinquish [2], transaction type [4:3], address range alignment
/// hint [8:5] and its valid bit [9]; the rest MBZ before v1.2.
const RETRIEVE_FLAGS: u32 = 0x3ff;
/// v1.2 adds [10], "bypass multiple borrower identification check": a
/// request that lists only its caller.  Ours are accepted so with or without
/// it (a borrower names itself; the others' entries are not needed).
const RETRIEVE_FLAGS_V1_2: u32 = 0x7ff;
const RETRIEVE_ZERO_BEFORE: u32 = 1 << 0;
const RETRIEVE_ZERO_AFTER_RELINQUISH: u32 = 1 << 2;
const RETRIEVE_HINT_VALID: u32 = 1 << 9;
const RETRIEVE_HINT_SHIFT: u32 = 5;

fn op_of(f: u32) -> Option<MemOp> {
    match f {
        FFA_MEM_SHARE_32 | FFA_MEM_SHARE_64 => Some(MemOp::Share),
        FFA_MEM_LEND_32 | FFA_MEM_LEND_64 => Some(MemOp::Lend),
        FFA_MEM_DONATE_32 | FFA_MEM_DONATE_64 => Some(MemOp::Donate),
        _ => None,
    }
}

fn handle_regs(h: u64) -> (u64, u64) {
    (h & 0xffff_ffff, h >> 32)
}

fn handle_of(lo: u64, hi: u64) -> u64 {
    (lo & 0xffff_ffff) | (hi & 0xffff_ffff) << 32
}

fn desc_error(e: DescError) -> FfaError {
    match e {
        DescError::Invalid => FfaError::InvalidParameters,
        DescError::TooManyReceivers => FfaError::NoMemory,
    }
}

fn regs(list: &[u64]) -> Regs {
    let mut r = [0u64; 18];
    r[..list.len()].copy_from_slice(list);
    r
}

/// FFA_MEM_FRAG_RX to a sender: the SPMC wants the next fragment; w3 = bytes
/// received so far; w4[31:16] the sender endpoint for the Normal world (the
/// hypervisor checks it is the VM it forwards for; DEN0077 v1.2,
/// FFA_MEM_FRAG_RX), 0 for an SP.
fn frag_rx(handle: u64, offset: u64, sender_for_ns: u16) -> Regs {
    let (lo, hi) = handle_regs(handle);
    regs(&[FFA_MEM_FRAG_RX as u64, lo, hi, offset, (sender_for_ns as u64) << 16])
}

impl Spmc {
    /// The caller's mailbox, or BUSY/DENIED as the calls need.
    fn tx_of(&self, caller: Caller) -> Result<Mailbox, FfaError> {
        (*self.mailbox(caller).lock()).ok_or(FfaError::Denied)
    }

    /// w1 total length and w2 fragment length of a descriptor that must be
    /// in the caller's TX buffer (w3/w4 = 0; elsewhere: NOT_SUPPORTED, as
    /// Hafnium answers), with that buffer.
    fn descriptor_in_tx(&self, caller: Caller, r: &Regs) -> Result<(usize, usize, Mailbox), FfaError> {
        if r[3] != 0 || r[4] != 0 {
            return Err(FfaError::NotSupported);
        }
        Ok((r[1] as u32 as usize, r[2] as u32 as usize, self.tx_of(caller)?))
    }

    /// Whether `caller` owns `c` by its manifest (an SP: its package or a
    /// memory region, never a device region) or as the Normal world.
    fn owns(&self, caller: Caller, c: &Constituent) -> bool {
        let size = c.size();
        match caller {
            Caller::Ns => self.ns_memory.contains(c.address, size),
            Caller::Sp(i) => {
                let p = self.part(i);
                let pkg = Range { base: p.memory.base, size: p.memory.size };
                pkg.contains(c.address, size)
                    || p.manifest.memory_regions().iter().any(|r| (Range { base: r.base, size: r.size() }).contains(c.address, size))
            }
        }
    }

    /// Reads constituents from the TX buffer at `[from, to)` in chunks and
    /// hands each chunk to `f`.
    fn for_constituent_chunks(
        &self,
        tx: u64,
        from: usize,
        to: usize,
        platform: &mut dyn Platform,
        mut f: impl FnMut(&[Constituent]) -> Result<(), FfaError>,
    ) -> Result<(), FfaError> {
        let mut buf = [0u8; CHUNK];
        let mut list = [Constituent { address: 0, page_count: 0 }; CHUNK / CONSTITUENT_SIZE];
        let mut at = from;
        while at < to {
            let n = (to - at).min(CHUNK);
            platform.read(tx + at as u64, &mut buf[..n]);
            let mut k = 0;
            for c in descriptor::constituents(&buf[..n]).map_err(desc_error)? {
                list[k] = c;
                k += 1;
            }
            f(&list[..k])?;
            at += n;
        }
        Ok(())
    }

    /// FFA_MEM_SHARE/LEND/DONATE: w1 total length, w2 fragment length, w3/w4
    /// buffer address and page count (0: the TX buffer).
    fn mem_send(&self, caller: Caller, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let Some(op) = op_of(r[0] as u32) else { return error(FfaError::NotSupported) };
        let (total, frag, mb) = match self.descriptor_in_tx(caller, r) {
            Ok(t) => t,
            Err(e) => return error(e),
        };
        if frag == 0 || frag > total || frag as u64 > mb.size {
            return error(FfaError::InvalidParameters);
        }
        let mut head = [0u8; CHUNK];
        let n = frag.min(CHUNK);
        platform.read(mb.tx, &mut head[..n]);
        let version = self.version_of(caller);
        let d = match descriptor::parse(&head[..n], version, true) {
            Ok(d) => d,
            Err(e) => return error(desc_error(e)),
        };
        // From the Normal world the descriptor names the sender: the
        // hypervisor, or the VM it forwards for (trusted, as in Hafnium).
        let sender_id = match caller {
            Caller::Ns if ffa::is_ns_endpoint(d.sender) => d.sender,
            Caller::Ns => return error(FfaError::InvalidParameters),
            Caller::Sp(_) => self.caller_id(caller),
        };
        if let Err(e) = self.check_send(caller, sender_id, op, &d) {
            return error(e);
        }
        // Bytes of the whole descriptor: header .. the last constituent.
        let Some(end) = d.constituent_offset(d.address_range_count as usize) else { return error(FfaError::InvalidParameters) };
        if end != total {
            return error(FfaError::InvalidParameters);
        }
        let first = match d.constituent_offset(0) {
            Some(o) if o <= frag && (frag - o) % CONSTITUENT_SIZE == 0 => o,
            _ => return error(FfaError::InvalidParameters),
        };
        let new = NewTransaction {
            op,
            sender: sender_id,
            attributes: d.attributes,
            flags: d.flags,
            tag: d.tag,
            receivers: d.receivers,
            non_secure: caller == Caller::Ns,
            header_len: first as u32,
            total_page_count: d.total_page_count,
            address_range_count: d.address_range_count,
        };
        let owns = |c: &Constituent| self.owns(caller, c);
        let mut store = self.memory.lock();
        let mut handle = None;
        let mut complete = false;
        let result = self.for_constituent_chunks(mb.tx, first, frag, platform, |list| {
            let done = match handle {
                None => {
                    let (h, done) = store.begin(new, list, &owns)?;
                    handle = Some(h);
                    done
                }
                Some(h) => store.fragment(h, sender_id, list, &owns)?,
            };
            complete = done;
            Ok(())
        });
        // A fragment with no constituents (all in later fragments).
        if result.is_ok() && handle.is_none() {
            match store.begin(new, &[], &owns) {
                Ok((h, done)) => {
                    handle = Some(h);
                    complete = done;
                }
                Err(e) => return error(e),
            }
        }
        if let Err(e) = result {
            return error(e);
        }
        let Some(h) = handle else { return error(FfaError::InvalidParameters) };
        if !complete {
            return frag_rx(h, frag as u64, if caller == Caller::Ns { sender_id } else { 0 });
        }
        self.send_complete(&mut store, h, platform)
    }

    /// The rules a sender's descriptor must follow, before any state changes.
    fn check_send(&self, caller: Caller, sender_id: u16, op: MemOp, d: &descriptor::TransactionDescriptor) -> Result<(), FfaError> {
        if d.sender != sender_id || d.handle != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let reserved = if op == MemOp::Share { !0b10 } else { !SEND_FLAGS };
        if d.flags & reserved != 0 {
            return Err(FfaError::InvalidParameters);
        }
        if d.attributes.0 & MemRegionAttributes::NS != 0 || d.attributes.0 >> 7 != 0 {
            return Err(FfaError::InvalidParameters);
        }
        if d.attributes.memory_type() == MemRegionAttributes::TYPE_DEVICE {
            // MMIO is not lent (Hafnium refuses it too).
            return Err(FfaError::Denied);
        }
        if op == MemOp::Donate && d.receiver_count != 1 {
            return Err(FfaError::InvalidParameters);
        }
        if op == MemOp::Donate && caller == Caller::Ns {
            // Normal-world memory stays the Normal world's: it is lent or shared.
            return Err(FfaError::Denied);
        }
        for rcv in d.receivers() {
            // Receivers are SPs, never the sender itself.
            if rcv.receiver == sender_id || self.find(rcv.receiver).is_none() {
                return Err(FfaError::InvalidParameters);
            }
            if self.find(rcv.receiver).is_some_and(|i| self.part(i).is_aborted()) {
                return Err(FfaError::Aborted);
            }
            let p = rcv.permissions;
            match op {
                // A donor gives the pages away: the receiver's permissions are its own choice.
                MemOp::Donate if p.data != DataAccess::NotSpecified || p.instruction != InstructionAccess::NotSpecified => {
                    return Err(FfaError::InvalidParameters);
                }
                MemOp::Share | MemOp::Lend if p.data == DataAccess::NotSpecified => return Err(FfaError::InvalidParameters),
                MemOp::Share | MemOp::Lend if p.instruction == InstructionAccess::Executable => return Err(FfaError::Denied),
                _ => {}
            }
        }
        Ok(())
    }

    /// The whole descriptor arrived: a lending or donating SP loses its own
    /// access now (DEN0077 v1.2, lend and donate: the owner relinquishes
    /// access), then the handle goes back to the sender.
    /// With the zero-memory flag (lend and donate; DEN0077 v1.2 §11.4.1,
    /// "Flags usage in FFA_MEM_SHARE, FFA_MEM_LEND and FFA_MEM_DONATE") the
    /// pages are zeroed here, after the sender lost them and before any
    /// receiver can map them; if that fails the sender gets them back and
    /// the transaction is dropped (NO_MEMORY).
    fn send_complete(&self, store: &mut MemoryStore, h: u64, platform: &mut dyn Platform) -> Regs {
        let Some(t) = store.get(h).copied() else { return error(FfaError::InvalidParameters) };
        let lender = if t.op != MemOp::Share { self.find(t.sender) } else { None };
        if let Some(i) = lender {
            for c in store.constituents(&t) {
                platform.unmap_borrowed(i, c.address, c.size(), false);
            }
        }
        if t.flags & ZERO_MEMORY != 0 && zero_all(store.constituents(&t), t.non_secure, platform).is_err() {
            if let Some(i) = lender {
                restore_owner(store.constituents(&t), i, platform);
            }
            let _ = store.reclaim(h, t.sender);
            return error(FfaError::NoMemory);
        }
        let (lo, hi) = handle_regs(h);
        success(&[lo, hi])
    }

    /// Whether `caller` acts as the sender (owner) of `t`: an SP for its
    /// own transactions; the Normal world for any whose sender is a
    /// Normal-world endpoint (itself or one of its VMs).
    fn acts_as_sender(&self, caller: Caller, t: &Transaction) -> bool {
        match caller {
            Caller::Ns => t.non_secure && ffa::is_ns_endpoint(t.sender),
            Caller::Sp(_) => t.sender == self.caller_id(caller),
        }
    }

    /// FFA_MEM_FRAG_TX from a sender: w1/w2 handle, w3 fragment length,
    /// w4[31:16] the sender endpoint when the Normal world sends it (the
    /// hypervisor or its VM: it must be the transaction's sender).
    fn mem_frag_tx(&self, caller: Caller, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let h = handle_of(r[1], r[2]);
        let frag = r[3] as u32 as usize;
        let mb = match self.tx_of(caller) {
            Ok(m) => m,
            Err(e) => return error(e),
        };
        if frag == 0 || frag as u64 > mb.size || !frag.is_multiple_of(CONSTITUENT_SIZE) {
            return error(FfaError::InvalidParameters);
        }
        let sender_id = match caller {
            Caller::Ns => (r[4] >> 16) as u16,
            Caller::Sp(_) => self.caller_id(caller),
        };
        let owns = |c: &Constituent| self.owns(caller, c);
        let mut store = self.memory.lock();
        let Some(t) = store.get(h).copied() else { return error(FfaError::InvalidParameters) };
        if t.sender != sender_id || !self.acts_as_sender(caller, &t) || t.complete() {
            return error(FfaError::InvalidParameters);
        }
        let mut complete = false;
        let result = self.for_constituent_chunks(mb.tx, 0, frag, platform, |list| {
            complete = store.fragment(h, sender_id, list, &owns)?;
            Ok(())
        });
        if let Err(e) = result {
            return error(e);
        }
        if !complete {
            let Some(t) = store.get(h) else { return error(FfaError::InvalidParameters) };
            // Bytes received: the header part plus the constituents so far.
            let ns_sender = if caller == Caller::Ns { sender_id } else { 0 };
            return frag_rx(h, (t.header_len as usize + t.received() * CONSTITUENT_SIZE) as u64, ns_sender);
        }
        self.send_complete(&mut store, h, platform)
    }
}

impl Spmc {
    /// A retrieve request from `caller`'s TX buffer into `buf`: w1 total
    /// length = w2 fragment length (never fragmented), at most [`CHUNK`]
    /// bytes, w3/w4 = 0.  Returns its length.
    fn retrieve_request_in_tx(&self, caller: Caller, r: &Regs, buf: &mut [u8; CHUNK], platform: &mut dyn Platform) -> Result<usize, FfaError> {
        let (total, frag, mb) = self.descriptor_in_tx(caller, r)?;
        if frag == 0 || frag != total || frag as u64 > mb.size || frag > CHUNK {
            return Err(FfaError::InvalidParameters);
        }
        platform.read(mb.tx, &mut buf[..frag]);
        Ok(frag)
    }

    /// FFA_MEM_RETRIEVE_REQ from SP `i`: w1 total length = w2 fragment
    /// length (the request is never fragmented), w3/w4 = 0.
    fn mem_retrieve_req(&self, i: usize, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let caller = Caller::Sp(i);
        let mut buf = [0u8; CHUNK];
        let frag = match self.retrieve_request_in_tx(caller, r, &mut buf, platform) {
            Ok(n) => n,
            Err(e) => return error(e),
        };
        let version = self.version_of(caller);
        let d = match descriptor::parse(&buf[..frag], version, false) {
            Ok(d) => d,
            Err(e) => return error(desc_error(e)),
        };
        let me = self.part(i).manifest.id;
        let Some(want) = d.receivers().find(|e| e.receiver == me).copied() else {
            return error(FfaError::InvalidParameters);
        };
        let allowed = if version >= 0x1_0002 { RETRIEVE_FLAGS_V1_2 } else { RETRIEVE_FLAGS };
        if d.flags & !allowed != 0 {
            return error(FfaError::InvalidParameters);
        }
        // Hint bits [8:5] without the valid bit [9]: MBZ.
        if d.flags & RETRIEVE_HINT_VALID == 0 && (d.flags >> RETRIEVE_HINT_SHIFT) & 0xf != 0 {
            return error(FfaError::InvalidParameters);
        }
        let mut store = self.memory.lock();
        let Some(t) = store.get(d.handle).copied() else { return error(FfaError::InvalidParameters) };
        let ty = (d.flags >> 3) & 0b11;
        if d.sender != t.sender || d.tag != t.tag || (ty != 0 && ty != t.op.type_field()) {
            return error(FfaError::InvalidParameters);
        }
        let Some(granted) = t.receiver(me).map(|r| r.access) else { return error(FfaError::InvalidParameters) };
        let access = match effective_access(t.op, granted.permissions, want.permissions) {
            Ok(a) => a,
            Err(e) => return error(e),
        };
        if let Err(e) = check_retrieve_flags(d.flags, &t, access, store.constituents(&t)) {
            return error(e);
        }
        // The response goes to our RX buffer: it must be free.
        let mut rx_lock = self.mailbox(caller).lock();
        let Some(rx) = rx_lock.as_mut() else { return error(FfaError::Busy) };
        if rx.rx_full {
            return error(FfaError::Busy);
        }
        let (t, retrieval) = match store.retrieve(d.handle, me, access, d.flags & RETRIEVE_ZERO_AFTER_RELINQUISH != 0) {
            Ok(t) => t,
            Err(e) => return error(e),
        };
        let mapped = match retrieval {
            // Held already: the same mapping serves this retrieval too.
            Retrieval::Again(m) => m,
            Retrieval::First => {
                let kind = BorrowedAccess { write: access.data == DataAccess::ReadWrite, execute: access.instruction == InstructionAccess::Executable };
                let mut n = 0;
                for c in store.constituents(&t) {
                    if platform.map_borrowed(i, c.address, c.size(), kind, t.non_secure).is_err() {
                        break;
                    }
                    n += 1;
                }
                if n != store.constituents(&t).len() {
                    for c in &store.constituents(&t)[..n] {
                        platform.unmap_borrowed(i, c.address, c.size(), t.non_secure);
                    }
                    store.unretrieve(d.handle, me);
                    return error(FfaError::NoMemory);
                }
                if t.op == MemOp::Donate {
                    store.finish_donation(d.handle);
                }
                access
            }
        };
        let receiver = EndpointMemAccess { permissions: mapped, ..granted };
        let (total, written) = write_response(&store, &t, core::slice::from_ref(&receiver), version, 0, rx, platform);
        rx.rx_full = true;
        regs(&[FFA_MEM_RETRIEVE_RESP as u64, total as u64, written as u64])
    }

    /// A hypervisor retrieve request (DEN0077 v1.2 §17.4.3): the Normal
    /// world's hypervisor asks for the whole descriptor of a transaction it
    /// sent (no receiver in the request), e.g. to check it before
    /// FFA_MEM_RECLAIM, as pKVM does.  Nothing is mapped and no state
    /// changes; the answer goes to its RX buffer, in fragments if long.
    fn mem_retrieve_req_hypervisor(&self, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let caller = Caller::Ns;
        let mut buf = [0u8; CHUNK];
        let frag = match self.retrieve_request_in_tx(caller, r, &mut buf, platform) {
            Ok(n) => n,
            Err(e) => return error(e),
        };
        let version = self.version_of(caller);
        let handle = match descriptor::parse_hypervisor_retrieve(&buf[..frag], version) {
            Ok(h) => h,
            Err(e) => return error(desc_error(e)),
        };
        let store = self.memory.lock();
        let Some(t) = store.get(handle).copied() else { return error(FfaError::InvalidParameters) };
        if !self.acts_as_sender(caller, &t) || !t.complete() {
            return error(FfaError::InvalidParameters);
        }
        let mut rx_lock = self.mailbox(caller).lock();
        let Some(rx) = rx_lock.as_mut() else { return error(FfaError::Denied) };
        if rx.rx_full {
            return error(FfaError::Busy);
        }
        let list = t.receivers().map(|r| r.access);
        let mut receivers = NO_RECEIVERS;
        let mut n = 0;
        for a in list {
            receivers[n] = a;
            n += 1;
        }
        let (total, written) = write_response(&store, &t, &receivers[..n], version, 0, rx, platform);
        if written == 0 {
            return error(FfaError::NoMemory);
        }
        rx.rx_full = true;
        regs(&[FFA_MEM_RETRIEVE_RESP as u64, total as u64, written as u64])
    }

    /// FFA_MEM_FRAG_RX from a borrower (or from the Normal world continuing
    /// a hypervisor retrieve request of its own transaction): w1/w2 handle,
    /// w3 offset of the next fragment of the retrieve response.
    fn mem_frag_rx(&self, caller: Caller, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let h = handle_of(r[1], r[2]);
        let offset = r[3] as u32 as usize;
        let me = self.caller_id(caller);
        let store = self.memory.lock();
        let Some(t) = store.get(h).copied() else { return error(FfaError::InvalidParameters) };
        let mut receivers = NO_RECEIVERS;
        let n = match caller {
            Caller::Sp(_) => {
                let Some(rcv) = t.receiver(me).filter(|r| r.retrieved()) else { return error(FfaError::InvalidParameters) };
                receivers[0] = EndpointMemAccess { permissions: rcv.mapped.unwrap_or(rcv.access.permissions), ..rcv.access };
                1
            }
            Caller::Ns if self.acts_as_sender(caller, &t) && t.complete() => {
                let mut n = 0;
                for a in t.receivers() {
                    receivers[n] = a.access;
                    n += 1;
                }
                n
            }
            Caller::Ns => return error(FfaError::InvalidParameters),
        };
        let mut rx_lock = self.mailbox(caller).lock();
        let Some(rx) = rx_lock.as_mut() else { return error(FfaError::Denied) };
        if rx.rx_full {
            // The previous fragment was not released yet.
            return error(FfaError::Denied);
        }
        let version = self.version_of(caller);
        let (total, written) = write_response(&store, &t, &receivers[..n], version, offset, rx, platform);
        if offset >= total || written == 0 {
            return error(FfaError::InvalidParameters);
        }
        rx.rx_full = true;
        let (lo, hi) = handle_regs(h);
        // w4[31:16]: the endpoint whose response this is (an SP; 0 for the hypervisor).
        let endpoint = if matches!(caller, Caller::Sp(_)) { me as u64 } else { 0 };
        regs(&[FFA_MEM_FRAG_TX as u64, lo, hi, written as u64, endpoint << 16])
    }

    /// FFA_MEM_RELINQUISH from SP `i`: the descriptor in its TX buffer names
    /// the handle and itself.  Its last retrieval given back unmaps the
    /// region; zeroing (flag bit 0 here, or bit 2 of a retrieve request) is
    /// done once no borrower holds it (DEN0077 v1.2 §11.4.3), before the
    /// borrower loses its mapping, so a failure leaves everything as it was.
    fn mem_relinquish(&self, i: usize, platform: &mut dyn Platform) -> Regs {
        let caller = Caller::Sp(i);
        let mb = match self.tx_of(caller) {
            Ok(m) => m,
            Err(e) => return error(e),
        };
        let mut buf = [0u8; 32];
        platform.read(mb.tx, &mut buf);
        let d = match descriptor::parse_relinquish(&buf) {
            Ok(d) => d,
            Err(e) => return error(desc_error(e)),
        };
        let me = self.part(i).manifest.id;
        // Flags: zero after relinquish [0], time slicing [1]; the rest MBZ.
        if d.endpoint != me || d.flags & !0b11 != 0 {
            return error(FfaError::InvalidParameters);
        }
        let zero = d.flags & ZERO_MEMORY != 0;
        let mut store = self.memory.lock();
        let Some(before) = store.get(d.handle).copied() else { return error(FfaError::InvalidParameters) };
        if zero {
            // The lender of shared memory never lost it: nothing to zero for.
            if before.op == MemOp::Share {
                return error(FfaError::InvalidParameters);
            }
            if before.receiver(me).and_then(|r| r.mapped).is_some_and(|m| m.data == DataAccess::ReadOnly) {
                return error(FfaError::Denied);
            }
        }
        let (t, done) = match store.relinquish(d.handle, me, zero) {
            Ok(t) => t,
            Err(e) => return error(e),
        };
        if done.zero && zero_all(store.constituents(&t), t.non_secure, platform).is_err() {
            store.unrelinquish(&before);
            return error(FfaError::NoMemory);
        }
        if done.last {
            for c in store.constituents(&t) {
                platform.unmap_borrowed(i, c.address, c.size(), t.non_secure);
            }
        }
        success(&[])
    }

    /// FFA_MEM_RECLAIM from the owner: w1/w2 handle, w3 flags.  From the
    /// Normal world, for a handle of the hypervisor or of any of its VMs
    /// (the call names no endpoint: the hypervisor reclaims for its VM and
    /// is trusted to pick the right handle, as in Hafnium).  With the
    /// zero-memory flag the pages are zeroed before the owner has them back
    /// (DEN0077 v1.2 §11.4.4); not for shared memory, which it never lost.
    fn mem_reclaim(&self, caller: Caller, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let h = handle_of(r[1], r[2]);
        // Zero memory [0], time slicing [1]; the rest MBZ.
        if r[3] as u32 & !0b11 != 0 {
            return error(FfaError::InvalidParameters);
        }
        let zero = r[3] as u32 & ZERO_MEMORY != 0;
        let mut store = self.memory.lock();
        let Some(t) = store.get(h).copied() else { return error(FfaError::InvalidParameters) };
        if !self.acts_as_sender(caller, &t) {
            return error(FfaError::InvalidParameters);
        }
        let me = t.sender;
        if t.receivers().any(|r| r.retrieved()) {
            return error(FfaError::Denied);
        }
        if zero {
            if t.op == MemOp::Share {
                return error(FfaError::InvalidParameters);
            }
            if zero_all(store.constituents(&t), t.non_secure, platform).is_err() {
                return error(FfaError::NoMemory);
            }
        }
        let t = match store.reclaim(h, me) {
            Ok(t) => t,
            Err(e) => return error(e),
        };
        if let (MemOp::Lend, Caller::Sp(i)) = (t.op, caller) {
            // The lender's own access comes back.
            restore_owner(store.constituents(&t), i, platform);
        }
        success(&[])
    }
}

/// Zeroes every constituent (in the Non-secure PAS or the Secure one).
fn zero_all(list: &[Constituent], non_secure: bool, platform: &mut dyn Platform) -> Result<(), ()> {
    list.iter().try_for_each(|c| platform.zero(c.address, c.size(), non_secure))
}

/// A lending SP's own access to its pages, back (reclaim, or a send undone).
fn restore_owner(list: &[Constituent], i: usize, platform: &mut dyn Platform) {
    for c in list {
        let _ = platform.map_borrowed(i, c.address, c.size(), BorrowedAccess { write: true, execute: false }, false);
    }
}

/// The retrieve request's zero and alignment-hint flags against the
/// transaction (DEN0077 v1.2 §11.4.2), before any state changes:
/// - zeroing is for lent or donated memory (shared memory: INVALID_PARAMETERS);
/// - zero-before-retrieve only if the sender asked for it (the pages were
///   zeroed when the send completed), else DENIED;
/// - a borrower with read-only access cannot ask for zeroing (DENIED);
/// - the alignment hint (2^n 4 KiB pages): we map at IPA == PA, so it is
///   honoured when every address range is so aligned, else DENIED.
fn check_retrieve_flags(flags: u32, t: &Transaction, access: MemAccessPermissions, list: &[Constituent]) -> Result<(), FfaError> {
    let zero_flags = flags & (RETRIEVE_ZERO_BEFORE | RETRIEVE_ZERO_AFTER_RELINQUISH);
    if zero_flags != 0 {
        if t.op == MemOp::Share {
            return Err(FfaError::InvalidParameters);
        }
        if flags & RETRIEVE_ZERO_BEFORE != 0 && t.flags & ZERO_MEMORY == 0 {
            return Err(FfaError::Denied);
        }
        if access.data == DataAccess::ReadOnly {
            return Err(FfaError::Denied);
        }
    }
    if flags & RETRIEVE_HINT_VALID != 0 {
        let align = descriptor::PAGE << ((flags >> RETRIEVE_HINT_SHIFT) & 0xf);
        if list.iter().any(|c| !c.address.is_multiple_of(align)) {
            return Err(FfaError::Denied);
        }
    }
    Ok(())
}

/// What a borrower gets: what it asked for, within what the sender granted
/// (DEN0077 v1.2, retrieve request: permissions no wider than the lender's).
fn effective_access(op: MemOp, granted: MemAccessPermissions, asked: MemAccessPermissions) -> Result<MemAccessPermissions, FfaError> {
    let data = match (op, granted.data, asked.data) {
        (MemOp::Donate, _, DataAccess::NotSpecified) => DataAccess::ReadWrite,
        (MemOp::Donate, _, d) => d,
        (_, g, DataAccess::NotSpecified) => g,
        (_, DataAccess::ReadOnly, DataAccess::ReadWrite) => return Err(FfaError::Denied),
        (_, _, d) => d,
    };
    let instruction = match asked.instruction {
        InstructionAccess::Executable if op != MemOp::Donate => return Err(FfaError::Denied),
        InstructionAccess::NotSpecified => InstructionAccess::NotExecutable,
        i => i,
    };
    Ok(MemAccessPermissions { data, instruction })
}

/// Writes the retrieve response of `t` for `receivers` (the borrower alone,
/// or every receiver for the hypervisor) from byte `offset` into the RX
/// buffer: as much as fits, whole constituents only.  Returns (total
/// length, bytes written).
fn write_response(store: &MemoryStore, t: &Transaction, receivers: &[EndpointMemAccess], version: u32, offset: usize, rx: &Mailbox, platform: &mut dyn Platform) -> (usize, usize) {
    let mut head = [0u8; 512];
    let attributes = if t.non_secure { MemRegionAttributes(t.attributes.0 | MemRegionAttributes::NS) } else { t.attributes };
    // The sender's flags (zero memory, time slicing) and the transaction type.
    let flags = (t.flags & SEND_FLAGS) | t.op.type_field() << 3;
    let list = store.constituents(t);
    let Some(hlen) = descriptor::write_response_header(&mut head, version, t.sender, attributes, flags, t.handle, t.tag, receivers, t.total_page_count, list.len() as u32) else {
        return (0, 0);
    };
    let total = hlen + list.len() * CONSTITUENT_SIZE;
    let room = rx.size as usize;
    let mut at = 0usize;
    if offset == 0 {
        if hlen > room {
            return (total, 0);
        }
        platform.write(rx.rx, &head[..hlen]);
        at = hlen;
    } else if offset < hlen || !(offset - hlen).is_multiple_of(CONSTITUENT_SIZE) {
        return (total, 0);
    }
    let first = if offset == 0 { 0 } else { (offset - hlen) / CONSTITUENT_SIZE };
    let mut one = [0u8; CONSTITUENT_SIZE];
    for c in list.iter().skip(first) {
        if at + CONSTITUENT_SIZE > room {
            break;
        }
        let _ = descriptor::write_constituent(&mut one, c);
        platform.write(rx.rx + at as u64, &one);
        at += CONSTITUENT_SIZE;
    }
    (total, at)
}

pub(super) fn ffa_mem_send(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    s.mem_send(c.caller, c.regs, platform)
}

pub(super) fn ffa_mem_frag_tx(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    s.mem_frag_tx(c.caller, c.regs, platform)
}

pub(super) fn ffa_mem_retrieve_req(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    match c.caller {
        Caller::Sp(i) => s.mem_retrieve_req(i, c.regs, platform),
        Caller::Ns => s.mem_retrieve_req_hypervisor(c.regs, platform),
    }
}

pub(super) fn ffa_mem_frag_rx(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    s.mem_frag_rx(c.caller, c.regs, platform)
}

pub(super) fn ffa_mem_relinquish(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let Caller::Sp(i) = c.caller else { return error(FfaError::NotSupported) };
    s.mem_relinquish(i, platform)
}

pub(super) fn ffa_mem_reclaim(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    s.mem_reclaim(c.caller, c.regs, platform)
}
