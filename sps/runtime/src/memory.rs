//! The borrower's side of FF-A memory management (DEN0077 v1.2,
//! FFA_MEM_RETRIEVE_REQ, FFA_MEM_FRAG_RX, FFA_MEM_RELINQUISH): an RX/TX pair
//! in the SP's own image, a retrieve request for a handle, the response's
//! region, and giving it back.
//!
//! One RX/TX pair per partition: an MP partition's contexts must not use
//! these calls at the same time (our test SPs use them from one context).
//! Normal-world memory arrives in the SP's Non-secure IPA space: the runtime's
//! Stage-1 maps 1..4 GiB with NS = 1 (entry.rs), at VA == IPA == PA.

use crate::ffa::{Regs, call, error_code, id_get};
use shared::abi::ffa::fid;
use shared::abi::ffa::FuncId;

const PAGE: usize = 4096;

#[repr(C, align(4096))]
struct Pair {
    rx: core::cell::UnsafeCell<[u8; PAGE]>,
    tx: core::cell::UnsafeCell<[u8; PAGE]>,
}

// SAFETY: the SPMC writes RX only while it owns it (between our call and its
// answer); we touch the pair from one context at a time (module docs).
unsafe impl Sync for Pair {}

static PAIR: Pair = Pair { rx: core::cell::UnsafeCell::new([0; PAGE]), tx: core::cell::UnsafeCell::new([0; PAGE]) };
static MAPPED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

fn regs(list: &[u64]) -> Regs {
    let mut r = [0u64; 18];
    r[..list.len()].copy_from_slice(list);
    r
}

fn expect(r: &Regs, want: u32) -> Result<Regs, i32> {
    if let Some(e) = error_code(r) {
        return Err(e);
    }
    if r[0] as u32 != want {
        return Err(-1);
    }
    Ok(*r)
}

/// The partition's one RX/TX pair: (TX, RX) addresses (also used for
/// indirect messages, `crate::messaging`).
pub(crate) fn pair() -> (u64, u64) {
    (PAIR.tx.get() as u64, PAIR.rx.get() as u64)
}

/// FFA_RXTX_MAP of our pair, once.
pub(crate) fn ensure_mapped() -> Result<(), i32> {
    if MAPPED.load(core::sync::atomic::Ordering::Acquire) {
        return Ok(());
    }
    let r = call(&regs(&[fid::FFA_RXTX_MAP_64 as u64, PAIR.tx.get() as u64, PAIR.rx.get() as u64, 1]));
    expect(&r, fid::FFA_SUCCESS_32)?;
    MAPPED.store(true, core::sync::atomic::Ordering::Release);
    Ok(())
}

fn rx() -> &'static [u8; PAGE] {
    // SAFETY: read only after the SPMC handed RX to us (module docs).
    unsafe { &*PAIR.rx.get() }
}

fn tx() -> &'static mut [u8; PAGE] {
    // SAFETY: the SPMC reads TX only during our calls (module docs).
    unsafe { &mut *PAIR.tx.get() }
}

/// Fills our TX buffer with words from `word` (a storm's noise).
pub(crate) fn fill_tx(mut word: impl FnMut() -> u64) {
    for chunk in tx()[..512].chunks_mut(8) {
        chunk.copy_from_slice(&word().to_le_bytes());
    }
}

/// Our RX/TX pair unmapped (whatever state it was left in) and mapped again
/// on the next use.
pub(crate) fn reset_buffers() {
    let id = id_get();
    let _ = call(&regs(&[fid::FFA_RXTX_UNMAP as u64, (id as u64) << 16]));
    MAPPED.store(false, core::sync::atomic::Ordering::Release);
}

fn rx_release() {
    let _ = call(&regs(&[fid::FFA_RX_RELEASE as u64, 0]));
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn le64(b: &[u8], o: usize) -> u64 {
    (le32(b, o) as u64) | (le32(b, o + 4) as u64) << 32
}

/// A retrieved region: its first constituent, and how many it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retrieved {
    pub address: u64,
    pub pages: u32,
    pub constituents: u32,
    /// In the Non-secure PAS (memory region attributes bit 6).
    pub non_secure: bool,
}

/// Data access asked for: read-only or read-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// FFA_MEM_RETRIEVE_REQ for `handle` from `sender` (v1.1 layout, one
/// 16-byte receiver descriptor: ourselves), reading every fragment of the
/// response (FFA_MEM_FRAG_RX) to count its constituents.
pub fn retrieve(handle: u64, sender: u16, access: Access) -> Result<Retrieved, i32> {
    ensure_mapped()?;
    let me = id_get();
    let t = tx();
    t[..64].fill(0);
    t[0..2].copy_from_slice(&sender.to_le_bytes());
    t[8..16].copy_from_slice(&handle.to_le_bytes());
    t[24..28].copy_from_slice(&16u32.to_le_bytes());
    t[28..32].copy_from_slice(&1u32.to_le_bytes());
    t[32..36].copy_from_slice(&48u32.to_le_bytes());
    t[48..50].copy_from_slice(&me.to_le_bytes());
    // Data access [1:0] (1 RO, 2 RW), instruction access [3:2] = 1: not executable.
    t[50] = match access {
        Access::ReadOnly => 0b0101,
        Access::ReadWrite => 0b0110,
    };
    let r = call(&regs(&[FuncId::MemRetrieveReq64 as u64, 64, 64]));
    let r = expect(&r, FuncId::MemRetrieveResp as u32)?;
    let (total, mut got) = (r[1] as usize, r[2] as usize);
    let b = rx();
    let attributes = u16::from_le_bytes([b[2], b[3]]);
    let emad = le32(b, 32) as usize;
    let composite = le32(b, emad + 4) as usize;
    if composite + 32 > PAGE {
        rx_release();
        // Not an FF-A code: a response we cannot read.
        return Err(-64);
    }
    let count = le32(b, composite + 4);
    let first = composite + 16;
    let out = Retrieved { address: le64(b, first), pages: le32(b, first + 8), constituents: count, non_secure: attributes & (1 << 6) != 0 };
    rx_release();
    while got < total {
        let r = call(&regs(&[FuncId::MemFragRx as u64, handle & 0xffff_ffff, handle >> 32, got as u64]));
        let r = expect(&r, FuncId::MemFragTx as u32)?;
        got += r[3] as usize;
        rx_release();
    }
    Ok(out)
}

/// FFA_MEM_RELINQUISH of `handle` for ourselves.
pub fn relinquish(handle: u64) -> Result<(), i32> {
    ensure_mapped()?;
    let t = tx();
    t[..18].fill(0);
    t[0..8].copy_from_slice(&handle.to_le_bytes());
    t[12..16].copy_from_slice(&1u32.to_le_bytes());
    t[16..18].copy_from_slice(&id_get().to_le_bytes());
    let r = call(&regs(&[FuncId::MemRelinquish as u64]));
    expect(&r, fid::FFA_SUCCESS_32).map(|_| ())
}

/// FFA_MEM_SHARE of `pages` of our own memory at `pa` with `receiver`,
/// read-write (v1.1 layout); the handle.
pub fn share(receiver: u16, pa: u64, pages: u32) -> Result<u64, i32> {
    send(FuncId::MemShare64, receiver, pa, pages)
}

/// FFA_MEM_DONATE of `pages` of our own memory at `pa` to `receiver` (the
/// receiver's permissions are its own to ask: not specified here).
pub fn donate(receiver: u16, pa: u64, pages: u32) -> Result<u64, i32> {
    send(FuncId::MemDonate64, receiver, pa, pages)
}

fn send(op: FuncId, receiver: u16, pa: u64, pages: u32) -> Result<u64, i32> {
    ensure_mapped()?;
    let t = tx();
    t[..96].fill(0);
    t[0..2].copy_from_slice(&id_get().to_le_bytes());
    // Normal memory, write-back, inner shareable.
    t[2..4].copy_from_slice(&0x2fu16.to_le_bytes());
    t[24..28].copy_from_slice(&16u32.to_le_bytes());
    t[28..32].copy_from_slice(&1u32.to_le_bytes());
    t[32..36].copy_from_slice(&48u32.to_le_bytes());
    t[48..50].copy_from_slice(&receiver.to_le_bytes());
    t[50] = if op == FuncId::MemDonate64 { 0 } else { 0b0110 };
    t[52..56].copy_from_slice(&64u32.to_le_bytes());
    t[64..68].copy_from_slice(&pages.to_le_bytes());
    t[68..72].copy_from_slice(&1u32.to_le_bytes());
    t[80..88].copy_from_slice(&pa.to_le_bytes());
    t[88..92].copy_from_slice(&pages.to_le_bytes());
    let r = call(&regs(&[op as u64, 96, 96]));
    let r = expect(&r, fid::FFA_SUCCESS_32)?;
    Ok(r[2] | r[3] << 32)
}

/// FFA_MEM_RECLAIM of `handle`.
pub fn reclaim(handle: u64) -> Result<(), i32> {
    let r = call(&regs(&[FuncId::MemReclaim as u64, handle & 0xffff_ffff, handle >> 32, 0]));
    expect(&r, fid::FFA_SUCCESS_32).map(|_| ())
}

/// The memory command our test SPs share (sps/mp and sps/isolation
/// `CMD_MEM`): x4 = handle, x5 = sender, x6 = mode, x7 = value.  Modes: 0
/// retrieve RW, read the first u64, write `value` there, relinquish; 1
/// retrieve read-only, read, relinquish; 2 retrieve RW, write, keep it; 3
/// relinquish only.  Answers `[0, value read, pages of the first
/// constituent, constituents, NS]` or `[error code as u64, ..]`.
pub fn command(handle: u64, sender: u16, mode: u64, value: u64) -> [u64; 5] {
    let fail = |e: i32| [e as i64 as u64, 0, 0, 0, 0];
    if mode == 3 {
        return match relinquish(handle) {
            Ok(()) => [0; 5],
            Err(e) => fail(e),
        };
    }
    let access = if mode == 1 { Access::ReadOnly } else { Access::ReadWrite };
    let r = match retrieve(handle, sender, access) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let p = r.address as *mut u64;
    // SAFETY: the SPMC mapped the region into our Stage-2 (the NS IPA space
    // for Normal-world memory, which our Stage-1 maps with NS = 1) at IPA == PA.
    let read = unsafe { core::ptr::read_volatile(p) };
    if mode == 0 || mode == 2 {
        // SAFETY: as above, retrieved read-write.
        unsafe { core::ptr::write_volatile(p, value) };
    }
    if mode != 2
        && let Err(e) = relinquish(handle)
    {
        return fail(e);
    }
    [0, read, r.pages as u64, r.constituents as u64, r.non_secure as u64]
}
