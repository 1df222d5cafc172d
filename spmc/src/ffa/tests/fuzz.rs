//! Issue J: the SPMC's two entry points under seeded random calls on the
//! host — the Normal world through `handle_ns`, and hostile SPs whose every
//! run makes random calls before (maybe) answering — with random memory
//! descriptors in the TX buffers.
//!
//! After every Normal-world call: no panic; no context is left Running; no
//! page is in two live memory transactions; every Stage-2 mapping of
//! borrowed memory belongs to a receiver that retrieved it; and a call that
//! runs no SP and fails leaves the SPMC's state as it was.
//! `cargo xtask fuzz spmc` runs `spmc_fuzz_long` (ignored by default).

use super::*;
use shared::ffa_memory::testing::build;
use crate::ffa::memory::ids::*;
use std::collections::BTreeSet;

use shared::xorshift::XorShift64 as Rng;

const IDS: [u64; 5] = [0, 0x8001, 0x8002, 0x8123, 0xffff];
const ADDRS: [u64; 8] = [RX, TX, 0x6000_0000, 0x6000_1000, 0x0e30_0000, 0x0e40_0000, 0x4010_0000, 0];

fn arg(r: &mut Rng) -> u64 {
    match r.below(10) {
        0..=2 => IDS[r.below(5) as usize] << 16 | IDS[r.below(5) as usize],
        3 | 4 => ADDRS[r.below(8) as usize] + if r.below(4) == 0 { r.below(0x1000) } else { 0 },
        5 => 0x8000_0000_0000_0000 | r.below(40),
        6 | 7 => r.below(0x100),
        _ => r.next_u64(),
    }
}

fn random_fid(r: &mut Rng) -> u64 {
    if r.below(10) == 0 {
        return 0x8400_0000 | r.below(0x100) | (r.below(2) << 30);
    }
    CALLS[r.below(CALLS.len() as u64) as usize].id as u64
}

/// A hostile SP: each run first makes up to a few random calls, then
/// answers the request it was given (or waits); if the SPMC refuses that
/// often enough, it faults, and the SPMC aborts it.  Runs always end.
fn hostile_sp(id: u16, seed: u64) -> SpFn {
    let mut r = Rng::new(seed | 1);
    let mut request: Option<(u16, u32)> = None;
    let mut random_left = 0u64;
    let mut refusals = 0u32;
    Box::new(move |_ctx, answer| {
        if let Some(a) = answer {
            let f = a[0] as u32;
            if [fid::FFA_MSG_SEND_DIRECT_REQ_32, fid::FFA_MSG_SEND_DIRECT_REQ_64, fid::FFA_MSG_SEND_DIRECT_REQ2].contains(&f) {
                request = Some((ffa::unpack_endpoints(a[1]).0, f));
                random_left = r.below(4);
                refusals = 0;
            } else if f == fid::FFA_ERROR as u32 && random_left == 0 {
                refusals += 1;
            }
        } else {
            random_left = r.below(3);
        }
        if refusals > 6 {
            refusals = 0;
            request = None;
            return SpExit::Fault { esr: 0x9200_0000, far: 0, elr: 0, ipa: Some(0) };
        }
        if random_left > 0 {
            random_left -= 1;
            let mut regs = [0u64; 18];
            regs[0] = random_fid(&mut r);
            for x in regs[1..8].iter_mut() {
                *x = arg(&mut r);
            }
            return SpExit::Call(regs);
        }
        match request {
            Some((src, f)) if refusals < 3 => {
                let resp = match f {
                    fid::FFA_MSG_SEND_DIRECT_REQ_32 => fid::FFA_MSG_SEND_DIRECT_RESP_32,
                    fid::FFA_MSG_SEND_DIRECT_REQ_64 => fid::FFA_MSG_SEND_DIRECT_RESP_64,
                    _ => fid::FFA_MSG_SEND_DIRECT_RESP2,
                };
                SpExit::Call(regs(&[resp as u64, ffa::pack_endpoints(id, src)]))
            }
            _ => {
                request = None;
                SpExit::Call(regs(&[fid::FFA_MSG_WAIT as u64]))
            }
        }
    })
}

/// What a failed call that runs no SP must leave as it was.
#[derive(PartialEq, Debug)]
struct Snapshot {
    ns_version: u32,
    contexts: Vec<CtxState>,
    aborted: Vec<bool>,
    ns_mailbox: Option<setup::rxtx::Mailbox>,
    mailboxes: Vec<Option<setup::rxtx::Mailbox>>,
    transactions: Vec<(u64, u16, Vec<u16>, usize)>,
    borrowed: Vec<(usize, u64, u64, bool, bool)>,
}

fn snapshot(s: &Spmc, f: &Fake) -> Snapshot {
    Snapshot {
        ns_version: s.ns_version(),
        contexts: s.partitions().flat_map(|p| (0..p.context_count()).map(move |c| p.ctx_state(c))).collect(),
        aborted: s.partitions().map(|p| p.is_aborted()).collect(),
        ns_mailbox: *s.ns_mailbox.lock(),
        mailboxes: s.partitions().map(|p| *p.mailbox.lock()).collect(),
        transactions: s.memory.lock().transactions().map(|t| (t.handle, t.sender, t.receivers().map(|r| r.retrievals).collect(), t.received())).collect(),
        borrowed: f.borrowed.clone(),
    }
}

fn check_invariants(s: &Spmc, f: &Fake, what: &str) {
    for p in s.partitions() {
        for c in 0..p.context_count() {
            assert!(!matches!(p.ctx_state(c), CtxState::Running { .. } | CtxState::HandlingInterrupt), "{what}: SP {:#x} ctx {c} left {:?}", p.manifest.id, p.ctx_state(c));
        }
    }
    let store = s.memory.lock();
    let live: Vec<_> = store.transactions().filter(|t| !t.is_donated()).collect();
    for (a, ta) in live.iter().enumerate() {
        for tb in &live[a + 1..] {
            for ca in store.constituents(ta) {
                assert!(!store.constituents(tb).iter().any(|cb| cb.overlaps(ca)), "{what}: a page in two transactions");
            }
        }
    }
    for &(i, pa, size, _, ns) in &f.borrowed {
        let id = s.partition(i).unwrap().manifest.id;
        let owned = store.transactions().any(|t| {
            t.non_secure == ns
                && (t.receiver(id).is_some_and(|r| r.retrieved()) || (t.is_donated() && t.sender == id))
                && store.constituents(t).iter().any(|c| c.address <= pa && pa + size <= c.address + c.size())
        });
        assert!(owned, "{what}: SP {id:#x} maps {pa:#x}+{size:#x} (ns {ns}) that no retrieve gave it");
    }
}

/// Runs `calls` Normal-world calls from seed `seed`; returns the distinct
/// (fid, answer) outcomes.
fn campaign(seed: u64, calls: u64) -> BTreeSet<(u32, u64)> {
    let (mut s, _) = booted_pair();
    let mut f = Fake::new();
    f.sps.push(hostile_sp(0x8001, seed * 3));
    f.sps.push(hostile_sp(0x8002, seed * 5));
    f.mapped.push((0x0e30_0000, 0x20_0000));
    map_ns(&mut s, &mut f);
    let mut r = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut seen = BTreeSet::new();
    let mut handles: Vec<u64> = Vec::new();
    for n in 0..calls {
        let fidw = random_fid(&mut r);
        let mut regs = [0u64; 18];
        regs[0] = fidw;
        for x in regs[1..8].iter_mut() {
            *x = arg(&mut r);
        }
        if r.below(4) == 0 {
            // A well-formed call, so that the campaign keeps its RX/TX pair,
            // reaches the SPs and takes back what it shared.
            let h = if handles.is_empty() { 0 } else { handles[r.below(handles.len() as u64) as usize] };
            let list: [&[u64]; 8] = [
                &[fid::FFA_RXTX_MAP_64 as u64, TX, RX, 1],
                &[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, 0x8001, 0, 1, 2],
                &[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, 0x8002, 0, 1, 2],
                &[fid::FFA_RX_RELEASE as u64, 0],
                &[fid::FFA_PARTITION_INFO_GET as u64],
                &[fid::FFA_FEATURES as u64, CALLS[r.below(CALLS.len() as u64) as usize].id as u64],
                &[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32],
                &[fid::FFA_RUN as u64, 0x8002 << 16 | r.below(4)],
            ];
            regs = [0; 18];
            let pick = list[r.below(8) as usize];
            regs[..pick.len()].copy_from_slice(pick);
        }
        let fidw = regs[0];
        let f32 = fidw as u32;
        if [FFA_MEM_SHARE_64, FFA_MEM_LEND_64, FFA_MEM_DONATE_64, FFA_MEM_SHARE_32, FFA_MEM_LEND_32].contains(&f32) && r.below(2) == 0 {
            let rcv = [(0x8001u16, 0b0110u8), (0x8002, 0b0101), (0x8123, 0b0110)];
            let k = 1 + r.below(2) as usize;
            let list: Vec<(u64, u32)> = (0..1 + r.below(3)).map(|_| (0x6000_0000 + r.below(16) * 0x1000, 1 + r.below(2) as u32)).collect();
            let d = build(0, 0x2f, 0, &rcv[..k], 16, &list);
            for (i, b) in d.iter().enumerate() {
                f.mem.insert(TX + i as u64, *b);
            }
            regs[1] = d.len() as u64;
            regs[2] = d.len() as u64;
            regs[3] = 0;
            regs[4] = 0;
        }
        let runs_sp = [fid::FFA_MSG_SEND_DIRECT_REQ_32, fid::FFA_MSG_SEND_DIRECT_REQ_64, fid::FFA_MSG_SEND_DIRECT_REQ2, fid::FFA_RUN, fid::FFA_INTERRUPT].contains(&f32);
        let before = snapshot(&s, &f);
        let a = s.handle_ns(&regs, r.below(4) as usize, &mut f);
        let what = format!("seed {seed} call {n}: {regs:x?} -> {a:x?}");
        check_invariants(&s, &f, &what);
        if a[0] == fid::FFA_ERROR as u64 && !runs_sp {
            assert_eq!(snapshot(&s, &f), before, "{what}: a failed call changed state");
        }
        if a[0] == fid::FFA_SUCCESS_32 as u64 && [FFA_MEM_SHARE_64, FFA_MEM_LEND_64, FFA_MEM_SHARE_32, FFA_MEM_LEND_32, FFA_MEM_DONATE_64].contains(&f32) {
            handles.push(a[2] | a[3] << 32);
        }
        seen.insert((f32, if a[0] == fid::FFA_ERROR as u64 { a[2] } else { a[0] }));
    }
    seen
}

#[test]
fn spmc_fuzz_short() {
    for seed in 1..=4 {
        let seen = campaign(seed, 1_500);
        assert!(seen.len() > 20, "the calls reach many outcomes: {}", seen.len());
    }
}

/// `cargo xtask fuzz spmc --time S`: seeds for QUADRANT_FUZZ_SECS seconds.
#[test]
#[ignore]
fn spmc_fuzz_long() {
    let secs: u64 = std::env::var("QUADRANT_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let start = std::time::Instant::now();
    let mut all = BTreeSet::new();
    let (mut seed, mut execs) = (std::env::var("QUADRANT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1u64), 0u64);
    while start.elapsed().as_secs() < secs {
        all.extend(campaign(seed, 1_000));
        execs += 1_000;
        seed += 1;
    }
    println!("fuzz spmc: {execs} executions, {} seeds, {} distinct (fid, answer) outcomes, 0 crashes", seed - 1, all.len());
}
