//! Memory transactions and their handles (DEN0077 v1.2, "Memory management":
//! lifetime of a memory transaction, ownership and access states): who owns
//! which pages, who borrowed them, and what may happen next.  Plain data, so
//! the rules are host-tested; the SPMC glue maps and unmaps Stage-2 for them.
//!
//! The invariants the store keeps (and the tests check):
//! - a page is in at most one live transaction (share, lend or a donation
//!   not yet retrieved), so it never has two owners or two lenders;
//! - a page leaves a borrower's access only through relinquish, and the
//!   lender gets it back (reclaim) only when no borrower holds it;
//! - a donation, once retrieved, moves ownership: the donor can no longer
//!   send it, the receiver can.
//!
//! Constituents live in one fixed pool (no allocator in the SPMC), each
//! transaction a contiguous run of it.

use super::descriptor::{Constituent, EndpointMemAccess, MAX_RECEIVERS, MemAccessPermissions, MemRegionAttributes};
use shared::abi::ffa::FfaError;

/// Most live transactions (and donated regions).
pub const MAX_TRANSACTIONS: usize = 32;
/// Constituent slots shared by every transaction.
pub const POOL_SIZE: usize = 4096;
/// Bit 63 of a handle: allocated by the SPMC (DEN0077 v1.2, memory region
/// handle; Hafnium's allocator bit).
pub const HANDLE_ALLOCATOR_SPMC: u64 = 1 << 63;

/// What kind of transaction (flags [4:3] of a retrieve: 1, 2, 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemOp {
    Share,
    Lend,
    Donate,
}

impl MemOp {
    /// The transaction type field of retrieve flags ([4:3]).
    pub fn type_field(self) -> u32 {
        match self {
            MemOp::Share => 1,
            MemOp::Lend => 2,
            MemOp::Donate => 3,
        }
    }
}

/// Most retrievals of one transaction by one borrower not yet relinquished.
pub const MAX_RETRIEVALS: u16 = u16::MAX;

/// A receiver's place in a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receiver {
    pub access: EndpointMemAccess,
    /// Retrievals not yet relinquished (DEN0077 v1.2 §11.4, retrieve: a
    /// borrower may retrieve a region it holds again; each relinquish gives
    /// one back).  Non-zero: its Stage-2 maps the region.
    pub retrievals: u16,
    /// What the first retrieval mapped (the later ones must ask no more).
    pub mapped: Option<MemAccessPermissions>,
}

impl Receiver {
    /// Retrieved and not wholly relinquished: its Stage-2 maps the region.
    pub fn retrieved(&self) -> bool {
        self.retrievals != 0
    }
}

/// What a retrieve did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retrieval {
    /// The borrower's first: the caller maps the region.
    First,
    /// The borrower holds it already, mapped with these permissions.
    Again(MemAccessPermissions),
}

/// What a relinquish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relinquished {
    /// The borrower's last retrieval: the caller unmaps the region.
    pub last: bool,
    /// Zero the region now: no borrower holds it any more, and this
    /// relinquish or an earlier retrieve or relinquish asked for it.
    pub zero: bool,
}

/// One live transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub handle: u64,
    pub op: MemOp,
    /// The owner (lender, donor) — after a donation is retrieved, the new owner.
    pub sender: u16,
    pub attributes: MemRegionAttributes,
    pub flags: u32,
    pub tag: u64,
    pub receivers: [Option<Receiver>; MAX_RECEIVERS],
    /// The pages are in the Non-secure PAS (a Normal-world sender).
    pub non_secure: bool,
    /// Bytes of the sender's descriptor before its first constituent.
    pub header_len: u32,
    pub total_page_count: u32,
    pub address_range_count: u32,
    /// Its constituents: `pool[start..start + received]` so far.
    start: usize,
    received: usize,
    /// A retrieved donation: the pages are `sender`'s now, no handle is live.
    donated: bool,
    /// A borrower asked for the region to be zeroed once no borrower holds
    /// it (retrieve flag bit 2, relinquish flag bit 0).
    zero_when_free: bool,
}

impl Transaction {
    /// All fragments of the sender's descriptor arrived.
    pub fn complete(&self) -> bool {
        self.received == self.address_range_count as usize
    }

    pub fn receiver(&self, id: u16) -> Option<&Receiver> {
        self.receivers.iter().flatten().find(|r| r.access.receiver == id)
    }

    fn receiver_mut(&mut self, id: u16) -> Option<&mut Receiver> {
        self.receivers.iter_mut().flatten().find(|r| r.access.receiver == id)
    }

    pub fn receivers(&self) -> impl Iterator<Item = &Receiver> {
        self.receivers.iter().flatten()
    }

    /// Constituents received so far.
    pub fn received(&self) -> usize {
        self.received
    }

    pub fn is_donated(&self) -> bool {
        self.donated
    }
}

/// Every memory transaction the SPMC knows.
pub struct MemoryStore {
    transactions: [Option<Transaction>; MAX_TRANSACTIONS],
    pool: [Constituent; POOL_SIZE],
    /// Which pool slots belong to a transaction.
    used: [bool; POOL_SIZE],
    next_handle: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// What a new transaction says about itself (from its first fragment).
#[derive(Clone, Copy, Debug)]
pub struct NewTransaction {
    pub op: MemOp,
    pub sender: u16,
    pub attributes: MemRegionAttributes,
    pub flags: u32,
    pub tag: u64,
    pub receivers: [Option<EndpointMemAccess>; MAX_RECEIVERS],
    pub non_secure: bool,
    pub header_len: u32,
    pub total_page_count: u32,
    pub address_range_count: u32,
}

impl MemoryStore {
    pub const fn new() -> Self {
        Self {
            transactions: [None; MAX_TRANSACTIONS],
            pool: [Constituent { address: 0, page_count: 0 }; POOL_SIZE],
            used: [false; POOL_SIZE],
            next_handle: 1,
        }
    }

    fn slot(&self, handle: u64) -> Option<usize> {
        self.transactions.iter().position(|t| t.is_some_and(|t| t.handle == handle && !t.donated))
    }

    /// The live transaction `handle` (not a retrieved donation).
    pub fn get(&self, handle: u64) -> Option<&Transaction> {
        self.transactions[self.slot(handle)?].as_ref()
    }

    /// Constituents of `t` received so far.  For a transaction that
    /// `reclaim` just freed they stay readable until the next `begin`, which
    /// cannot come while the caller holds the store.
    pub fn constituents(&self, t: &Transaction) -> &[Constituent] {
        &self.pool[t.start..t.start + t.received]
    }

    /// Whether `c` overlaps a page of any transaction but `except` (a live
    /// one, or a donation whose new owner is not `owner`).
    fn taken(&self, c: &Constituent, owner: u16, except: Option<u64>) -> bool {
        self.transactions.iter().flatten().any(|t| {
            Some(t.handle) != except && !(t.donated && t.sender == owner) && self.constituents(t).iter().any(|o| o.overlaps(c))
        })
    }

    /// Whether `owner` got `c` wholly by a retrieved donation.
    pub fn donated_to(&self, owner: u16, c: &Constituent) -> bool {
        self.transactions.iter().flatten().any(|t| {
            t.donated && t.sender == owner && self.constituents(t).iter().any(|o| o.address <= c.address && c.end() <= o.end())
        })
    }

    /// Whether someone other than `owner` got pages of `c` by donation.
    fn donated_away(&self, owner: u16, c: &Constituent) -> bool {
        self.transactions.iter().flatten().any(|t| t.donated && t.sender != owner && self.constituents(t).iter().any(|o| o.overlaps(c)))
    }

    /// Starts a transaction (FFA_MEM_SHARE/LEND/DONATE's first fragment):
    /// allocates its handle and its constituent run, then adds `first`.
    /// `owns` says whether the sender owns a range by its manifest (or the
    /// Normal world's memory); the store adds what donations changed.
    pub fn begin(&mut self, new: NewTransaction, first: &[Constituent], owns: &dyn Fn(&Constituent) -> bool) -> Result<(u64, bool), FfaError> {
        let n = new.address_range_count as usize;
        if n == 0 || first.len() > n {
            return Err(FfaError::InvalidParameters);
        }
        let slot = self.transactions.iter().position(Option::is_none).ok_or(FfaError::NoMemory)?;
        let start = self.find_run(n).ok_or(FfaError::NoMemory)?;
        let handle = HANDLE_ALLOCATOR_SPMC | self.next_handle;
        let t = Transaction {
            handle,
            op: new.op,
            sender: new.sender,
            attributes: new.attributes,
            flags: new.flags,
            tag: new.tag,
            receivers: new.receivers.map(|r| r.map(|access| Receiver { access, retrievals: 0, mapped: None })),
            non_secure: new.non_secure,
            header_len: new.header_len,
            total_page_count: new.total_page_count,
            address_range_count: new.address_range_count,
            start,
            received: 0,
            donated: false,
            zero_when_free: false,
        };
        self.check_constituents(&t, first, owns)?;
        self.next_handle = (self.next_handle + 1) & !HANDLE_ALLOCATOR_SPMC;
        self.used[start..start + n].iter_mut().for_each(|u| *u = true);
        self.transactions[slot] = Some(t);
        self.append(slot, first);
        let complete = self.finish_if_complete(slot)?;
        Ok((handle, complete))
    }

    /// One more fragment of constituents (FFA_MEM_FRAG_TX) from `sender`.
    /// Returns whether the descriptor is complete now.  A fragment that is
    /// refused ends the transaction (the sender starts again; Hafnium does the same).
    pub fn fragment(&mut self, handle: u64, sender: u16, more: &[Constituent], owns: &dyn Fn(&Constituent) -> bool) -> Result<bool, FfaError> {
        let slot = self.slot(handle).ok_or(FfaError::InvalidParameters)?;
        let Some(t) = self.transactions[slot] else { return Err(FfaError::InvalidParameters) };
        if t.sender != sender || t.complete() {
            return Err(FfaError::InvalidParameters);
        }
        if t.received + more.len() > t.address_range_count as usize {
            self.free(slot);
            return Err(FfaError::InvalidParameters);
        }
        if let Err(e) = self.check_constituents(&t, more, owns) {
            self.free(slot);
            return Err(e);
        }
        self.append(slot, more);
        self.finish_if_complete(slot)
    }

    fn append(&mut self, slot: usize, more: &[Constituent]) {
        let Some(t) = self.transactions[slot].as_mut() else { return };
        let at = t.start + t.received;
        self.pool[at..at + more.len()].copy_from_slice(more);
        t.received += more.len();
    }

    /// The last fragment: the page count must match the composite's.
    fn finish_if_complete(&mut self, slot: usize) -> Result<bool, FfaError> {
        let Some(t) = self.transactions[slot] else { return Err(FfaError::InvalidParameters) };
        if !t.complete() {
            return Ok(false);
        }
        let pages: u64 = self.constituents(&t).iter().map(|c| c.page_count as u64).sum();
        if pages != t.total_page_count as u64 {
            self.free(slot);
            return Err(FfaError::InvalidParameters);
        }
        Ok(true)
    }

    /// New constituents must be the sender's, in no other live transaction,
    /// and not overlap each other or those already received.
    fn check_constituents(&self, t: &Transaction, more: &[Constituent], owns: &dyn Fn(&Constituent) -> bool) -> Result<(), FfaError> {
        let so_far = &self.pool[t.start..t.start + t.received];
        for (n, c) in more.iter().enumerate() {
            if so_far.iter().chain(&more[..n]).any(|o| o.overlaps(c)) {
                return Err(FfaError::InvalidParameters);
            }
            let own = (owns(c) && !self.donated_away(t.sender, c)) || self.donated_to(t.sender, c);
            if !own || self.taken(c, t.sender, Some(t.handle)) {
                return Err(FfaError::Denied);
            }
        }
        Ok(())
    }

    fn find_run(&self, n: usize) -> Option<usize> {
        let mut run = 0;
        for (i, used) in self.used.iter().enumerate() {
            run = if *used { 0 } else { run + 1 };
            if run == n {
                return Some(i + 1 - n);
            }
        }
        None
    }

    fn free(&mut self, slot: usize) {
        if let Some(t) = self.transactions[slot].take() {
            let n = t.address_range_count as usize;
            self.used[t.start..t.start + n].iter_mut().for_each(|u| *u = false);
        }
    }

    /// FFA_MEM_RETRIEVE_REQ by `receiver` for `handle`: it must be one of the
    /// receivers and the descriptor complete.  A first retrieval is recorded
    /// with the permissions it maps (`access`); a later one by the same
    /// borrower counts once more and must ask for no more than the first got
    /// (DENIED).  `zero_after_relinquish` is the request's flag bit 2: the
    /// region is zeroed when no borrower holds it any more.
    pub fn retrieve(&mut self, handle: u64, receiver: u16, access: MemAccessPermissions, zero_after_relinquish: bool) -> Result<(Transaction, Retrieval), FfaError> {
        let slot = self.slot(handle).ok_or(FfaError::InvalidParameters)?;
        let Some(t) = self.transactions[slot].as_mut() else { return Err(FfaError::InvalidParameters) };
        if !t.complete() {
            return Err(FfaError::InvalidParameters);
        }
        let r = t.receiver_mut(receiver).ok_or(FfaError::InvalidParameters)?;
        let done = match r.mapped {
            Some(m) if r.retrieved() => {
                if !access.within(m) {
                    return Err(FfaError::Denied);
                }
                if r.retrievals == MAX_RETRIEVALS {
                    return Err(FfaError::NoMemory);
                }
                r.retrievals += 1;
                Retrieval::Again(m)
            }
            _ => {
                r.retrievals = 1;
                r.mapped = Some(access);
                Retrieval::First
            }
        };
        t.zero_when_free |= zero_after_relinquish;
        Ok((*t, done))
    }

    /// Undoes a retrieve whose mapping or response failed.
    pub fn unretrieve(&mut self, handle: u64, receiver: u16) {
        if let Some(slot) = self.slot(handle)
            && let Some(r) = self.transactions[slot].as_mut().and_then(|t| t.receiver_mut(receiver)) {
                r.retrievals = r.retrievals.saturating_sub(1);
                if r.retrievals == 0 {
                    r.mapped = None;
                }
            }
    }

    /// A donation's receiver retrieved (and mapped) it: the pages are its
    /// own now, and the handle is gone (DEN0077 v1.2, FFA_MEM_DONATE).
    pub fn finish_donation(&mut self, handle: u64) {
        if let Some(slot) = self.slot(handle)
            && let Some(t) = self.transactions[slot].as_mut() {
                let new_owner = t.receivers().find(|r| r.retrieved()).map(|r| r.access.receiver);
                if let Some(r) = new_owner {
                    t.sender = r;
                    t.donated = true;
                }
            }
    }

    /// FFA_MEM_RELINQUISH by `receiver`: it gives one retrieval back; the
    /// last one ends its access.  `zero` is the relinquish flag bit 0.
    pub fn relinquish(&mut self, handle: u64, receiver: u16, zero: bool) -> Result<(Transaction, Relinquished), FfaError> {
        let slot = self.slot(handle).ok_or(FfaError::InvalidParameters)?;
        let Some(t) = self.transactions[slot].as_mut() else { return Err(FfaError::InvalidParameters) };
        let r = t.receiver_mut(receiver).ok_or(FfaError::InvalidParameters)?;
        if !r.retrieved() {
            // Nothing to give back (DEN0077: the borrower must have retrieved it).
            return Err(FfaError::Denied);
        }
        r.retrievals -= 1;
        let last = r.retrievals == 0;
        if last {
            r.mapped = None;
        }
        t.zero_when_free |= zero;
        let free = !t.receivers().any(Receiver::retrieved);
        let zero_now = free && t.zero_when_free;
        if zero_now {
            t.zero_when_free = false;
        }
        Ok((*t, Relinquished { last, zero: zero_now }))
    }

    /// Undoes a relinquish that could not be completed (zeroing failed):
    /// the store is as before it.
    pub fn unrelinquish(&mut self, before: &Transaction) {
        if let Some(slot) = self.slot(before.handle)
            && let Some(t) = self.transactions[slot].as_mut() {
                t.receivers = before.receivers;
                t.zero_when_free = before.zero_when_free;
            }
    }

    /// FFA_MEM_RECLAIM by `owner`: only when no receiver holds the pages.
    /// Returns the transaction (for the lender's Stage-2) and frees it.
    pub fn reclaim(&mut self, handle: u64, owner: u16) -> Result<Transaction, FfaError> {
        let slot = self.slot(handle).ok_or(FfaError::InvalidParameters)?;
        let Some(t) = self.transactions[slot] else { return Err(FfaError::InvalidParameters) };
        if t.sender != owner {
            return Err(FfaError::InvalidParameters);
        }
        if t.receivers().any(Receiver::retrieved) {
            return Err(FfaError::Denied);
        }
        // Constituents copied out before the slot is reused.
        self.free(slot);
        Ok(t)
    }

    /// Live transactions (for tests and the log).
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.transactions.iter().flatten()
    }
}

#[cfg(test)]
mod tests;
