//! Issue J: the RMI dispatcher (and, through REC_ENTER, the RSI one) under
//! seeded random calls on the host.  Arguments are drawn mostly from
//! addresses that matter (granules of the bank, their unaligned and
//! out-of-bank neighbours, IPAs, small integers) and sometimes from the
//! whole u64 range; parameter pages are sometimes filled plausibly.
//!
//! After every call: no panic, and a call that failed left every granule
//! state and every non-NS granule's contents as they were (`World::snapshot`).
//! `cargo xtask fuzz rmm` runs the long campaign (`rmi_fuzz_long`, ignored by
//! default) for a given time; `rmi_fuzz_short` runs in every `cargo test`.
//! The same calls drawn from a libFuzzer input instead of a seed
//! ([`fuzz_one`], `shared::xorshift::Source` behind both) make ci/fuzz's coverage-guided
//! `rmm_dispatcher` target.

use super::test_support::*;
use crate::granule::GranuleState;
use crate::rec::Rec;
use crate::rmi::rec::{ExitKind, RawExit};
use shared::abi::rmi::*;
use shared::abi::rsi;
use std::collections::BTreeSet;

use shared::xorshift::{Bytes, Source, XorShift64};

const RMI_FIDS: &[u32] = &[
    RMI_VERSION, RMI_GRANULE_DELEGATE, RMI_GRANULE_UNDELEGATE, RMI_DATA_CREATE, RMI_DATA_CREATE_UNKNOWN, RMI_DATA_DESTROY,
    RMI_REALM_ACTIVATE, RMI_REALM_CREATE, RMI_REALM_DESTROY, RMI_REC_CREATE, RMI_REC_DESTROY, RMI_REC_ENTER, RMI_RTT_CREATE,
    RMI_RTT_DESTROY, RMI_RTT_MAP_UNPROTECTED, RMI_RTT_READ_ENTRY, RMI_RTT_UNMAP_UNPROTECTED, RMI_PSCI_COMPLETE, RMI_FEATURES,
    RMI_RTT_FOLD, RMI_REC_AUX_COUNT, RMI_RTT_INIT_RIPAS, RMI_RTT_SET_RIPAS,
];

const RSI_FIDS: &[u32] = &[
    rsi::RSI_VERSION, rsi::RSI_FEATURES, rsi::RSI_MEASUREMENT_READ, rsi::RSI_MEASUREMENT_EXTEND, rsi::RSI_ATTESTATION_TOKEN_INIT,
    rsi::RSI_ATTESTATION_TOKEN_CONTINUE, rsi::RSI_REALM_CONFIG, rsi::RSI_IPA_STATE_SET, rsi::RSI_IPA_STATE_GET, rsi::RSI_HOST_CALL,
    shared::abi::psci::PSCI_CPU_ON_64, shared::abi::psci::PSCI_AFFINITY_INFO_64, shared::abi::psci::PSCI_CPU_OFF,
];

/// Granules the fuzzer mostly uses: the first 40 of the bank.
const HOT: u64 = 40;

fn arg(r: &mut impl Source) -> u64 {
    match r.below(16) {
        0..=7 => World::g(r.below(HOT)),
        8 => World::g(r.below(HOT)) + 1 + r.below(0xfff),
        9 => World::g(PAGES + r.below(8)),
        10 => BASE - 0x1000 * (1 + r.below(4)),
        11 => r.below(8),
        12 => r.below(1 << 39) & !0xfff,
        13 => (1 << 38) | (r.below(1 << 20) << 12),
        _ => r.next_u64(),
    }
}

/// A REC_ENTER's script: one Realm call (an RSI or PSCI id with random
/// arguments, or a random id), then IRQ exits to end the entry whatever
/// rmm does with it.
fn realm_step(r: &mut impl Source) -> Step {
    let fid = if r.below(8) == 0 { r.next_u64() } else { RSI_FIDS[r.below(RSI_FIDS.len() as u64) as usize] as u64 };
    let args: Vec<u64> = (0..8).map(|_| arg(r)).collect();
    Box::new(move |rec: &mut Rec| {
        rec.x[0] = fid;
        rec.x[1..9].copy_from_slice(&args);
        sync(ESR_SMC)
    })
}

fn irq() -> Step {
    Box::new(|_| RawExit { kind: ExitKind::Irq, esr: 0, far: 0, hpfar: 0, gic_misr: 0 })
}

/// Fills a Host (undelegated) granule with plausible realm or REC parameters.
fn host_params(w: &World, r: &mut impl Source) {
    let n = r.below(HOT);
    if w.state(World::g(n)) != GranuleState::Undelegated {
        return;
    }
    if r.below(2) == 0 {
        let mut p = w.params(r.below(8), World::g(r.below(HOT)));
        p.s2sz = [32, 39, 40, 48, r.below(64)][r.below(5) as usize];
        p.rtt_level_start = r.below(4) as i64 as _;
        p.rtt_num_start = 1 + r.below(2);
        w.host_write(World::g(n), &p);
    } else {
        let mut p = RmiRecParams::zeroed();
        p.flags = r.below(2);
        p.mpidr = r.below(4);
        p.pc = r.below(1 << 20) & !3;
        w.host_write(World::g(n), &p);
    }
}

/// Granules of the hot range in `state`.
fn in_state(w: &World, state: GranuleState) -> Vec<u64> {
    (0..HOT).map(World::g).filter(|&g| w.state(g) == state).collect()
}

fn pick(r: &mut impl Source, v: &[u64]) -> u64 {
    if v.is_empty() { arg(r) } else { v[r.below(v.len() as u64) as usize] }
}

/// Arguments that respect the call's shape and the World's current state
/// (an RD where an RD is expected, a delegated granule for a new object,
/// IPAs aligned to the level), so that the fuzzer gets past the first checks
/// and into realm creation, RTTs, data and REC entry.
fn structured(w: &World, r: &mut impl Source, fid: u32) -> Vec<u64> {
    let delegated = in_state(w, GranuleState::Delegated);
    let rds = in_state(w, GranuleState::Rd);
    let recs = in_state(w, GranuleState::Rec);
    let host = in_state(w, GranuleState::Undelegated);
    let page_ipa = r.below(32) * 0x1000;
    let level = 2 + r.below(2);
    let level_ipa = if level == 2 { r.below(2) << 30 } else { r.below(4) << 21 };
    match fid {
        RMI_GRANULE_DELEGATE => vec![pick(r, &host)],
        RMI_GRANULE_UNDELEGATE => vec![pick(r, &delegated)],
        RMI_REALM_CREATE => {
            let (rd, rtt, params) = (pick(r, &delegated), pick(r, &delegated), pick(r, &host));
            if w.granules.state(params) == Some(GranuleState::Undelegated) {
                w.host_write(params, &w.params(r.below(4), rtt));
            }
            vec![rd, params]
        }
        RMI_REC_CREATE => {
            let params = pick(r, &host);
            if w.granules.state(params) == Some(GranuleState::Undelegated) {
                let mut p = RmiRecParams::zeroed();
                p.flags = r.below(2);
                p.mpidr = r.below(2);
                p.pc = page_ipa;
                w.host_write(params, &p);
            }
            vec![pick(r, &rds), pick(r, &delegated), params]
        }
        RMI_REALM_ACTIVATE | RMI_REALM_DESTROY => vec![pick(r, &rds)],
        RMI_REC_DESTROY => vec![pick(r, &recs)],
        RMI_REC_ENTER => vec![pick(r, &recs), pick(r, &host)],
        RMI_RTT_CREATE => vec![pick(r, &rds), pick(r, &delegated), level_ipa, level],
        RMI_RTT_DESTROY | RMI_RTT_FOLD => vec![pick(r, &rds), level_ipa, level],
        RMI_RTT_READ_ENTRY => vec![pick(r, &rds), page_ipa, 1 + r.below(3)],
        RMI_DATA_CREATE => vec![pick(r, &rds), pick(r, &delegated), page_ipa, pick(r, &host), r.below(2)],
        RMI_DATA_CREATE_UNKNOWN => vec![pick(r, &rds), pick(r, &delegated), page_ipa],
        RMI_DATA_DESTROY => vec![pick(r, &rds), page_ipa],
        RMI_RTT_INIT_RIPAS | RMI_RTT_SET_RIPAS => vec![pick(r, &rds), page_ipa, page_ipa + 0x1000 * (1 + r.below(4))],
        RMI_RTT_MAP_UNPROTECTED => vec![pick(r, &rds), (1 << 38) | page_ipa, 3, pick(r, &host) | 0x4c4],
        RMI_RTT_UNMAP_UNPROTECTED => vec![pick(r, &rds), (1 << 38) | page_ipa, 3],
        RMI_PSCI_COMPLETE => vec![pick(r, &recs), pick(r, &recs), r.below(8)],
        _ => (0..6).map(|_| arg(r)).collect(),
    }
}

/// One call drawn from `r` (sometimes after filling a parameter page),
/// checked: a failed call (other than REC_ENTER, whose Realm side may have
/// acted) leaves every granule state and non-NS granule as it was.
fn step(w: &World, r: &mut impl Source, what: &dyn core::fmt::Display, seen: &mut BTreeSet<(u32, u64)>) {
    if r.below(8) == 0 {
        host_params(w, r);
    }
    let fid = if r.below(32) == 0 { 0xC400_0100 | r.below(0x100) as u32 } else { RMI_FIDS[r.below(RMI_FIDS.len() as u64) as usize] };
    let args: Vec<u64> = if r.below(4) != 0 { structured(w, r, fid) } else { (0..6).map(|_| arg(r)).collect() };
    if fid == RMI_REC_ENTER {
        let mut s = w.cpu.script.lock().unwrap();
        s.clear();
        s.push(realm_step(r));
        s.push(irq());
        s.push(irq());
    }
    let before = w.snapshot();
    let res = w.call(fid, &args);
    if res[0] != 0 && fid != RMI_REC_ENTER {
        assert!(w.snapshot() == before, "{what}: {fid:#x} {args:x?} failed with {:#x} and changed state", res[0]);
    }
    seen.insert((fid, res[0] & 0xff));
}

/// Runs `calls` seeded random calls against a fresh World; returns the
/// distinct (fid, status) outcomes seen, a rough measure of coverage.
pub fn campaign(seed: u64, calls: u64) -> BTreeSet<(u32, u64)> {
    let w = World::new();
    let mut r = XorShift64::new(seed);
    let mut seen = BTreeSet::new();
    for n in 0..calls {
        step(&w, &mut r, &format_args!("seed {seed} call {n}"), &mut seen);
    }
    seen
}

/// Most calls one fuzz input makes.
pub const FUZZ_MAX_CALLS: usize = 64;

/// Calls drawn from `data` until it runs out or [`FUZZ_MAX_CALLS`].
fn run_input(w: &World, data: &[u8]) -> BTreeSet<(u32, u64)> {
    let mut r = Bytes(data);
    let mut seen = BTreeSet::new();
    for n in 0..FUZZ_MAX_CALLS {
        if r.is_empty() {
            break;
        }
        step(w, &mut r, &format_args!("input call {n}"), &mut seen);
    }
    seen
}

/// One libFuzzer input against a machine reset to its first state (one
/// World per thread, reused).  Panics (a libFuzzer crash) on a broken
/// invariant or a panic in rmm.
pub fn fuzz_one(data: &[u8]) {
    std::thread_local! {
        static WORLD: World = World::new();
    }
    WORLD.with(|w| {
        w.reset();
        run_input(w, data);
    });
}

/// A reset World behaves as a new one: an input gives the same outcomes
/// and the same final machine either way (what makes a libFuzzer crash
/// reproducible on its own).
#[test]
fn a_reset_world_is_a_new_world() {
    let input = |k: u32| -> Vec<u8> { (0..4096u32).map(|i| (i.wrapping_add(k).wrapping_mul(2_654_435_761) >> 13) as u8).collect() };
    let reused = World::new();
    run_input(&reused, &input(7));
    reused.reset();
    let a = (run_input(&reused, &input(1)), reused.snapshot());
    let fresh = World::new();
    let b = (run_input(&fresh, &input(1)), fresh.snapshot());
    assert!(a.0.iter().any(|(_, s)| *s == 0), "some calls succeed: {:?}", a.0);
    assert!(a == b);
}

#[test]
fn rmi_fuzz_short() {
    for seed in 1..=4 {
        let seen = campaign(seed, 2_500);
        assert!(seen.iter().any(|(_, s)| *s == 0), "some calls succeed");
    }
}

/// `cargo xtask fuzz rmm --time S`: as many seeds as fit in
/// QUADRANT_FUZZ_SECS seconds (default 30); prints the executions and the
/// distinct outcomes.
#[test]
#[ignore]
fn rmi_fuzz_long() {
    let secs: u64 = std::env::var("QUADRANT_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let start = std::time::Instant::now();
    let mut all = BTreeSet::new();
    let (mut seed, mut execs) = (std::env::var("QUADRANT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1u64), 0u64);
    while start.elapsed().as_secs() < secs {
        all.extend(campaign(seed, 2_000));
        execs += 2_000;
        seed += 1;
    }
    println!("fuzz rmm: {execs} executions, {} seeds, {} distinct (fid, status) outcomes, 0 crashes", seed - 1, all.len());
}

