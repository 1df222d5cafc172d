//! `spmc_memory_sharing` (issue D1): the Normal world shares and lends its
//! memory to the mp SP, which retrieves, reads, writes and relinquishes it
//! (sps/mp `CMD_MEM`); we reclaim it; a 1,200-constituent descriptor goes in
//! five fragments; and each error case is followed by a check that nothing
//! changed.  Descriptors are FF-A v1.1+ layout (DEN0077 v1.2, memory
//! transaction descriptor), built here by hand as a Normal-world driver does.

use crate::checks::{ISOLATION, ISO_READ, MP, Machine, check};
use shared::abi::ffa::{FfaError, FuncId, fid};
use shared::ffa_client::{FfaClient, HYPERVISOR_ID};
use shared::smccc::Conduit;

/// sps/mp's memory command and its modes.
const CMD_MEM: u64 = 4;
const MODE_RW: u64 = 0;
const MODE_RO: u64 = 1;
const MODE_KEEP: u64 = 2;
const MODE_RELINQUISH: u64 = 3;
/// Permissions: data RW / RO, instruction access not executable.
const RW: u8 = 0b0110;
const RO: u8 = 0b0101;
/// Normal memory, write-back, inner shareable.
const NORMAL_WB: u16 = 0x2f;
const HEADER: usize = 48;
const EMAD: usize = 16;
/// Pages nobody else uses, for the 1,200-constituent case (inside the
/// manifest's NS memory, above where TF-A loads BL33 and its DTB).
pub const FAR_PAGES: u64 = 0x9000_0000;

/// Writes a descriptor header, one receiver and the composite header for
/// `ranges` constituents of `pages` pages in total; returns its length.
fn header(out: &mut [u8], receiver: u16, perm: u8, attributes: u16, pages: u32, ranges: u32) -> usize {
    out[..HEADER + EMAD + 16].fill(0);
    out[2..4].copy_from_slice(&attributes.to_le_bytes());
    out[24..28].copy_from_slice(&(EMAD as u32).to_le_bytes());
    out[28..32].copy_from_slice(&1u32.to_le_bytes());
    out[32..36].copy_from_slice(&(HEADER as u32).to_le_bytes());
    out[HEADER..HEADER + 2].copy_from_slice(&receiver.to_le_bytes());
    out[HEADER + 2] = perm;
    let comp = HEADER + EMAD;
    out[HEADER + 4..HEADER + 8].copy_from_slice(&(comp as u32).to_le_bytes());
    out[comp..comp + 4].copy_from_slice(&pages.to_le_bytes());
    out[comp + 4..comp + 8].copy_from_slice(&ranges.to_le_bytes());
    comp + 16
}

fn constituent(out: &mut [u8], address: u64, pages: u32) {
    out[..16].fill(0);
    out[0..8].copy_from_slice(&address.to_le_bytes());
    out[8..12].copy_from_slice(&pages.to_le_bytes());
}

/// One call; Ok(registers) or Err(FF-A error code).
fn call<C: Conduit>(c: &C, f: u32, args: &[u64]) -> Result<[u64; 18], i32> {
    let mut a = [0u64; 17];
    a[..args.len()].copy_from_slice(args);
    let r = c.call(f, a);
    if r[0] as u32 == fid::FFA_ERROR {
        return Err(r[2] as u32 as i32);
    }
    Ok(r)
}

fn code(e: FfaError) -> i32 {
    e as i32
}

/// Shares (or lends) one page at `pa` with mp; the handle.
fn send_one<C: Conduit, M: Machine>(c: &C, m: &mut M, op: FuncId, pa: u64, perm: u8) -> Result<u64, i32> {
    send_one_to(c, m, op, MP, pa, perm)
}

/// Shares (or lends) one page at `pa` with `receiver`; the handle.
fn send_one_to<C: Conduit, M: Machine>(c: &C, m: &mut M, op: FuncId, receiver: u16, pa: u64, perm: u8) -> Result<u64, i32> {
    send_one_flags(c, m, op, receiver, pa, perm, 0)
}

/// The same with the transaction descriptor's flags (bit 0: zero memory).
fn send_one_flags<C: Conduit, M: Machine>(c: &C, m: &mut M, op: FuncId, receiver: u16, pa: u64, perm: u8, flags: u32) -> Result<u64, i32> {
    let mut d = [0u8; 128];
    let n = header(&mut d, receiver, perm, NORMAL_WB, 1, 1);
    d[4..8].copy_from_slice(&flags.to_le_bytes());
    constituent(&mut d[n..], pa, 1);
    m.write_tx(0, &d[..n + 16]);
    let r = call(c, op as u32, &[(n + 16) as u64, (n + 16) as u64])?;
    if r[0] as u32 != fid::FFA_SUCCESS_32 {
        return Err(-100);
    }
    Ok(r[2] | r[3] << 32)
}

fn reclaim<C: Conduit>(c: &C, h: u64) -> Result<(), i32> {
    reclaim_flags(c, h, 0)
}

/// FFA_MEM_RECLAIM with flags (bit 0: zero the memory first).
fn reclaim_flags<C: Conduit>(c: &C, h: u64, flags: u64) -> Result<(), i32> {
    call(c, FuncId::MemReclaim as u32, &[h & 0xffff_ffff, h >> 32, flags]).map(|_| ())
}

fn mp<C: Conduit>(ffa: &FfaClient<C>, h: u64, mode: u64, value: u64) -> [u64; 5] {
    ffa.direct_req64(HYPERVISOR_ID, MP, [CMD_MEM, h, 0, mode, value]).unwrap_or([u64::MAX; 5])
}

/// One bench round: share `pages` pages at `pa` (one constituent) with mp,
/// mp retrieves RW, touches the first word and relinquishes, we reclaim.
pub fn share_round_trip<C: Conduit, M: Machine>(c: &C, m: &mut M, ffa: &FfaClient<C>, pa: u64, pages: u32) -> bool {
    let mut d = [0u8; 128];
    let n = header(&mut d, MP, RW, NORMAL_WB, pages, 1);
    constituent(&mut d[n..], pa, pages);
    m.write_tx(0, &d[..n + 16]);
    let Ok(r) = call(c, FuncId::MemShare64 as u32, &[(n + 16) as u64, (n + 16) as u64]) else { return false };
    let h = r[2] | r[3] << 32;
    let a = mp(ffa, h, MODE_RW, 1);
    reclaim(c, h).is_ok() && a[0] == 0
}

pub fn run_memory<C: Conduit, M: Machine>(c: &C, m: &mut M) {
    let ffa = FfaClient::new(c);
    let v = ffa.version(shared::ffa_client::REQUESTED_VERSION);
    check(format_args!("ffa_version"), v.is_ok(), format_args!(""));
    let (rx, tx) = m.rx_tx();
    let r = ffa.rxtx_map(rx, tx, 1);
    check(format_args!("ffa_rxtx_map"), r.is_ok(), format_args!(""));
    let page = m.shared_page();

    // Share RW: mp reads what we wrote and writes its own value back.
    m.write_u64(page, 0x1111);
    let h = send_one(c, m, FuncId::MemShare64, page, RW);
    let a = h.map(|h| mp(&ffa, h, MODE_RW, 0x2222));
    let seen = m.read_u64(page);
    let rec = h.and_then(|h| reclaim(c, h));
    check(
        format_args!("memory_share_retrieve_relinquish_reclaim"),
        matches!(a, Ok([0, 0x1111, 1, 1, 1])) && seen == 0x2222 && rec.is_ok(),
        format_args!("handle {h:x?}, mp {a:x?}, page now {seen:#x}, reclaim {rec:?}"),
    );

    // Lend read-only.
    m.write_u64(page, 0x3333);
    let h = send_one(c, m, FuncId::MemLend64, page, RO);
    let a = h.map(|h| mp(&ffa, h, MODE_RO, 0));
    let rec = h.and_then(|h| reclaim(c, h));
    check(format_args!("memory_lend_read_only"), matches!(a, Ok([0, 0x3333, 1, 1, 1])) && rec.is_ok(), format_args!("mp {a:x?}, reclaim {rec:?}"));

    // A read-only lend retrieved read-write: DENIED, and the lend is intact.
    let h = send_one(c, m, FuncId::MemLend64, page, RO);
    let a = h.map(|h| mp(&ffa, h, MODE_RW, 0));
    let again = h.map(|h| mp(&ffa, h, MODE_RO, 0));
    let rec = h.and_then(|h| reclaim(c, h));
    check(
        format_args!("memory_retrieve_wider_than_granted_denied"),
        matches!(a, Ok([e, ..]) if e as i64 == code(FfaError::Denied) as i64) && matches!(again, Ok([0, ..])) && rec.is_ok(),
        format_args!("rw {a:x?}, then ro {again:x?}, reclaim {rec:?}"),
    );

    // Reclaim while mp holds it: DENIED; after its relinquish: ok.
    let h = send_one(c, m, FuncId::MemShare64, page, RW);
    let held = h.map(|h| mp(&ffa, h, MODE_KEEP, 0x4444));
    let early = h.and_then(|h| reclaim(c, h));
    let given = h.map(|h| mp(&ffa, h, MODE_RELINQUISH, 0));
    let late = h.and_then(|h| reclaim(c, h));
    check(
        format_args!("memory_reclaim_while_borrowed_denied"),
        matches!(held, Ok([0, ..])) && early == Err(code(FfaError::Denied)) && matches!(given, Ok([0, ..])) && late.is_ok(),
        format_args!("keep {held:x?}, reclaim {early:?}, relinquish {given:x?}, reclaim {late:?}"),
    );
    let twice = h.and_then(|h| reclaim(c, h));
    check(format_args!("memory_reclaim_twice_invalid"), twice == Err(code(FfaError::InvalidParameters)), format_args!("{twice:?}"));

    // Secure memory from the Normal world: DENIED; nothing created.
    let s = send_one(c, m, FuncId::MemShare64, 0x0e30_0000, RW);
    check(format_args!("memory_share_secure_denied"), s == Err(code(FfaError::Denied)), format_args!("{s:?}"));
    // A buffer other than TX: NOT_SUPPORTED.
    let r = call(c, FuncId::MemShare64 as u32, &[80, 80, page, 1]);
    check(format_args!("memory_share_buffer_not_supported"), r.err() == Some(code(FfaError::NotSupported)), format_args!("{:?}", r.err()));
    // Five receivers: more than the SPMC tracks.
    let mut d = [0u8; 256];
    let n = header(&mut d, MP, RW, NORMAL_WB, 1, 1);
    d[28..32].copy_from_slice(&5u32.to_le_bytes());
    m.write_tx(0, &d[..n]);
    let r = call(c, FuncId::MemShare64 as u32, &[n as u64, n as u64]);
    check(format_args!("memory_share_too_many_receivers"), r.err() == Some(code(FfaError::NoMemory)), format_args!("{:?}", r.err()));
    // The page is still ours to share after all that.
    let h = send_one(c, m, FuncId::MemShare64, page, RW);
    let rec = h.and_then(|h| reclaim(c, h));
    check(format_args!("memory_state_unchanged_after_errors"), rec.is_ok(), format_args!("{h:x?} {rec:?}"));

    zero_memory(c, m, &ffa, page);
    retrieve_twice(c, m, &ffa, page);
    hypervisor_retrieve(c, m, &ffa, page);
    fragmented(c, m, &ffa);
    two_borrowers(c, m, &ffa, page);
    sp_to_sp(&ffa);
    sp_donation(&ffa);
    // Last: it leaves the isolation SP aborted.
    fault_after_relinquish(c, m, &ffa, page);
}

/// The zero-memory flags (DEN0077 v1.2 §11.4): a lend that asks for
/// zeroing reaches mp as zeros; a reclaim that asks for it gives us zeros
/// back; a share that asks for it is INVALID_PARAMETERS.
fn zero_memory<C: Conduit, M: Machine>(c: &C, m: &mut M, ffa: &FfaClient<C>, page: u64) {
    m.write_u64(page, 0x5555);
    let h = send_one_flags(c, m, FuncId::MemLend64, MP, page, RW, 1);
    let a = h.map(|h| mp(ffa, h, MODE_RW, 0x6666));
    let back = m.read_u64(page);
    let rec = h.and_then(|h| reclaim(c, h));
    check(
        format_args!("memory_lend_zeroed"),
        matches!(a, Ok([0, 0, 1, 1, 1])) && back == 0x6666 && rec.is_ok(),
        format_args!("mp {a:x?} (read 0 expected), page now {back:#x}, reclaim {rec:?}"),
    );
    let h = send_one(c, m, FuncId::MemLend64, page, RW);
    let a = h.map(|h| mp(ffa, h, MODE_RW, 0x7777));
    let rec = h.and_then(|h| reclaim_flags(c, h, 1));
    let back = m.read_u64(page);
    check(
        format_args!("memory_reclaim_zeroed"),
        matches!(a, Ok([0, ..])) && rec.is_ok() && back == 0,
        format_args!("mp {a:x?}, reclaim {rec:?}, page now {back:#x}"),
    );
    let s = send_one_flags(c, m, FuncId::MemShare64, MP, page, RW, 1);
    let after = send_one(c, m, FuncId::MemShare64, page, RW);
    let rec = after.and_then(|h| reclaim(c, h));
    check(
        format_args!("memory_share_zero_invalid"),
        s == Err(code(FfaError::InvalidParameters)) && rec.is_ok(),
        format_args!("{s:?}, then share {after:x?}, reclaim {rec:?}"),
    );
}

/// A borrower retrieves what it holds once more; only its second
/// relinquish lets us reclaim.
fn retrieve_twice<C: Conduit, M: Machine>(c: &C, m: &mut M, ffa: &FfaClient<C>, page: u64) {
    let h = send_one(c, m, FuncId::MemShare64, page, RW);
    let first = h.map(|h| mp(ffa, h, MODE_KEEP, 0x8888));
    let second = h.map(|h| mp(ffa, h, MODE_KEEP, 0x9999));
    let give1 = h.map(|h| mp(ffa, h, MODE_RELINQUISH, 0));
    let early = h.and_then(|h| reclaim(c, h));
    let give2 = h.map(|h| mp(ffa, h, MODE_RELINQUISH, 0));
    let late = h.and_then(|h| reclaim(c, h));
    check(
        format_args!("memory_retrieve_twice"),
        matches!(first, Ok([0, ..]))
            && matches!(second, Ok([0, 0x8888, ..]))
            && matches!(give1, Ok([0, ..]))
            && early == Err(code(FfaError::Denied))
            && matches!(give2, Ok([0, ..]))
            && late.is_ok(),
        format_args!("{first:x?} {second:x?} {give1:x?} reclaim {early:?} {give2:x?} reclaim {late:?}"),
    );
}

/// The hypervisor retrieve request (DEN0077 v1.2 §17.4.3): we read back
/// the whole descriptor of our own transaction, as pKVM does before a reclaim.
fn hypervisor_retrieve<C: Conduit, M: Machine>(c: &C, m: &mut M, ffa: &FfaClient<C>, page: u64) {
    let h = send_one(c, m, FuncId::MemLend64, page, RW);
    let mut q = [0u8; HEADER];
    if let Ok(h) = h {
        q[8..16].copy_from_slice(&h.to_le_bytes());
    }
    q[24..28].copy_from_slice(&(EMAD as u32).to_le_bytes());
    q[32..36].copy_from_slice(&(HEADER as u32).to_le_bytes());
    m.write_tx(0, &q);
    let r = call(c, FuncId::MemRetrieveReq64 as u32, &[HEADER as u64, HEADER as u64]);
    let mut rx = [0u8; 128];
    m.read_rx(&mut rx);
    // Our RX buffer is full until we release it: a second request is BUSY.
    let busy = call(c, FuncId::MemRetrieveReq64 as u32, &[HEADER as u64, HEADER as u64]);
    let _ = ffa.rx_release();
    check(format_args!("memory_retrieve_rx_full_busy"), busy.err() == Some(code(FfaError::Busy)), format_args!("{:?}", busy.map(|a| a[0])));
    let le16 = |o: usize| u16::from_le_bytes([rx[o], rx[o + 1]]);
    let le32 = |o: usize| u32::from_le_bytes([rx[o], rx[o + 1], rx[o + 2], rx[o + 3]]);
    let le64 = |o: usize| le32(o) as u64 | (le32(o + 4) as u64) << 32;
    let emad = le32(32) as usize;
    let ok = matches!(r, Ok(a) if a[0] as u32 == FuncId::MemRetrieveResp as u32)
        && Ok(le64(8)) == h
        && le32(28) == 1
        && emad + 2 <= rx.len()
        && le16(emad) == MP;
    let rec = h.and_then(|h| reclaim(c, h));
    check(
        format_args!("memory_hypervisor_retrieve"),
        ok && rec.is_ok(),
        format_args!("{:x?}, handle {h:x?}, header {:x?}, reclaim {rec:?}", r.map(|a| a[0]), &rx[..64]),
    );
}

/// sps/isolation's `CMD_MEM` (the same command as mp's).
fn iso<C: Conduit>(ffa: &FfaClient<C>, h: u64, mode: u64, value: u64) -> [u64; 5] {
    ffa.direct_req64(HYPERVISOR_ID, ISOLATION, [CMD_MEM, h, 0, mode, value]).unwrap_or([u64::MAX; 5])
}

/// One share with two receivers (mp and isolation): reclaim waits for both.
fn two_borrowers<C: Conduit, M: Machine>(c: &C, m: &mut M, ffa: &FfaClient<C>, page: u64) {
    let mut d = [0u8; 160];
    let n = header(&mut d, MP, RW, NORMAL_WB, 1, 1);
    // A second receiver descriptor: shift the composite behind it.
    d.copy_within(HEADER + EMAD..n, HEADER + 2 * EMAD);
    d[HEADER + EMAD..HEADER + 2 * EMAD].fill(0);
    d[HEADER + EMAD..HEADER + EMAD + 2].copy_from_slice(&ISOLATION.to_le_bytes());
    d[HEADER + EMAD + 2] = RW;
    let comp = (HEADER + 2 * EMAD) as u32;
    d[HEADER + 4..HEADER + 8].copy_from_slice(&comp.to_le_bytes());
    d[HEADER + EMAD + 4..HEADER + EMAD + 8].copy_from_slice(&comp.to_le_bytes());
    d[28..32].copy_from_slice(&2u32.to_le_bytes());
    let n = n + EMAD;
    constituent(&mut d[n..], page, 1);
    m.write_tx(0, &d[..n + 16]);
    m.write_u64(page, 0x6666);
    let h = call(c, FuncId::MemShare64 as u32, &[(n + 16) as u64, (n + 16) as u64]).map(|r| r[2] | r[3] << 32);
    let a = h.map(|h| mp(ffa, h, MODE_KEEP, 0x7777));
    let b = h.map(|h| iso(ffa, h, MODE_KEEP, 0x8888));
    let r1 = h.and_then(|h| reclaim(c, h));
    let g1 = h.map(|h| mp(ffa, h, MODE_RELINQUISH, 0));
    let r2 = h.and_then(|h| reclaim(c, h));
    let g2 = h.map(|h| iso(ffa, h, MODE_RELINQUISH, 0));
    let r3 = h.and_then(|h| reclaim(c, h));
    let seen = m.read_u64(page);
    let denied = Err(code(FfaError::Denied));
    check(
        format_args!("memory_two_borrowers"),
        matches!(a, Ok([0, 0x6666, ..])) && matches!(b, Ok([0, 0x7777, ..])) && r1 == denied && matches!(g1, Ok([0, ..])) && r2 == denied && matches!(g2, Ok([0, ..])) && r3.is_ok() && seen == 0x8888,
        format_args!("mp {a:x?}, isolation {b:x?}, reclaims {r1:?} {r2:?} {r3:?}, page {seen:#x}"),
    );
}

/// SP to SP: mp shares a page of its own Secure memory with isolation,
/// which reads mp's value and writes its own; mp reads it back and reclaims.
fn sp_to_sp<C: Conduit>(ffa: &FfaClient<C>) {
    const CMD_MEM_SHARE_TO: u64 = 5;
    let a = ffa.direct_req64(HYPERVISOR_ID, MP, [CMD_MEM_SHARE_TO, ISOLATION as u64, 0x9999, 0, 0]);
    // [isolation's status, what it read, what mp reads back, reclaim status, NS = 0].
    check(format_args!("memory_sp_to_sp_share"), a == Ok([0, 0x9999, 0x999a, 0, 0]), format_args!("{a:x?}"));
}

/// SP to SP donation: mp donates a page of its own to isolation, which keeps
/// it; the handle is gone at once, so mp's reclaim is INVALID_PARAMETERS.
fn sp_donation<C: Conduit>(ffa: &FfaClient<C>) {
    const CMD_MEM_DONATE_TO: u64 = 6;
    let a = ffa.direct_req64(HYPERVISOR_ID, MP, [CMD_MEM_DONATE_TO, ISOLATION as u64, 0xd0d0, 0, 0]);
    let invalid = code(FfaError::InvalidParameters) as i64 as u64;
    check(format_args!("memory_sp_to_sp_donate"), a == Ok([0, 0xd0d0, invalid, 0, 0]), format_args!("{a:x?}"));
}

/// After relinquishing, the borrower's access faults (the SPMC aborts it)
/// while the lender's own access still works.
fn fault_after_relinquish<C: Conduit, M: Machine>(c: &C, m: &mut M, ffa: &FfaClient<C>, page: u64) {
    m.write_u64(page, 0xaaaa);
    let h = send_one_to(c, m, FuncId::MemLend64, ISOLATION, page, RW);
    let a = h.map(|h| iso(ffa, h, MODE_RW, 0xbbbb));
    let rec = h.and_then(|h| reclaim(c, h));
    let touch = ffa.direct_req64(HYPERVISOR_ID, ISOLATION, [ISO_READ, page, 0, 0, 0]);
    let ours = m.read_u64(page);
    m.write_u64(page, 0xcccc);
    let ours2 = m.read_u64(page);
    check(
        format_args!("memory_borrower_faults_after_relinquish"),
        matches!(a, Ok([0, 0xaaaa, ..])) && rec.is_ok() && touch.is_err() && ours == 0xbbbb && ours2 == 0xcccc,
        format_args!("isolation {a:x?}, reclaim {rec:?}, its read afterwards {touch:x?}, ours {ours:#x} then {ours2:#x}"),
    );
    // A share to an aborted partition: ABORTED, and nothing is left behind.
    let s = send_one_to(c, m, FuncId::MemShare64, ISOLATION, page, RW);
    let again = send_one(c, m, FuncId::MemShare64, page, RW);
    let rec = again.and_then(|h| reclaim(c, h));
    check(
        format_args!("memory_share_to_aborted_sp"),
        s == Err(code(FfaError::Aborted)) && rec.is_ok(),
        format_args!("{s:?}, then to mp {again:x?} reclaim {rec:?}"),
    );
}

/// 1,200 one-page constituents in five fragments through our 4 KiB TX
/// buffer (FFA_MEM_SHARE, then FFA_MEM_FRAG_TX four times); mp retrieves the
/// whole (its response comes in fragments too) and relinquishes.
fn fragmented<C: Conduit, M: Machine>(c: &C, m: &mut M, ffa: &FfaClient<C>) {
    const N: usize = 1200;
    let mut buf = [0u8; 4096];
    let n = header(&mut buf, MP, RW, NORMAL_WB, N as u32, N as u32);
    let total = n + N * 16;
    let mut next = 0usize;
    let mut fill = |buf: &mut [u8], count: usize, at: usize| {
        for k in 0..count {
            constituent(&mut buf[at + 16 * k..], FAR_PAGES + (next + k) as u64 * 0x1000, 1);
        }
        next += count;
        at + 16 * count
    };
    let len = fill(&mut buf, 200, n);
    m.write_tx(0, &buf[..len]);
    let mut r = call(c, FuncId::MemShare64 as u32, &[total as u64, len as u64]);
    let mut frags = 1;
    while let Ok(a) = r {
        if a[0] as u32 != FuncId::MemFragRx as u32 {
            break;
        }
        let h = a[1] | a[2] << 32;
        let len = fill(&mut buf, 250, 0);
        m.write_tx(0, &buf[..len]);
        r = call(c, FuncId::MemFragTx as u32, &[h & 0xffff_ffff, h >> 32, len as u64, 0]);
        frags += 1;
    }
    let h = r.map(|a| a[2] | a[3] << 32);
    let a = h.map(|h| mp(ffa, h, MODE_KEEP, 0x5555));
    let given = h.map(|h| mp(ffa, h, MODE_RELINQUISH, 0));
    let rec = h.and_then(|h| reclaim(c, h));
    let first = m.read_u64(FAR_PAGES);
    check(
        format_args!("memory_fragmented_1200_constituents"),
        frags == 5 && matches!(a, Ok([0, _, 1, 1200, 1])) && matches!(given, Ok([0, ..])) && rec.is_ok() && first == 0x5555,
        format_args!("{frags} fragments, mp {a:x?}, relinquish {given:x?}, reclaim {rec:?}, first page {first:#x}"),
    );
}
