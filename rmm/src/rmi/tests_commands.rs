//! Table-driven tests of every state-changing RMI command: each failure
//! condition returns the spec's status and index and changes nothing; the
//! success paths build, run and tear down a Realm.

use super::test_support::*;
use crate::granule::GranuleState::*;
use crate::measurement::HashAlgo;
use crate::rec::Rec;
use crate::rmi::rec::RawExit;
use shared::abi::rmi::*;
use shared::abi::rsi;

const INPUT: u64 = 1;
const REALM: u64 = 2;
const REC: u64 = 3;
fn rtt_err(level: u64) -> u64 {
    4 | level << 8
}
fn g(n: u64) -> u64 {
    World::g(n)
}

/// Runs each (name, fid, args, expected x0) against `w` and checks that a
/// failure left every granule state and every non-NS granule's contents as
/// they were.
fn table(w: &World, cases: &[(&str, u32, Vec<u64>, u64)]) {
    for (what, fid, args, expect) in cases {
        let before = w.snapshot();
        let r = w.call(*fid, args);
        assert_eq!(r[0], *expect, "{what}: got {:#x}", r[0]);
        if *expect != 0 {
            assert!(w.snapshot() == before, "{what}: state changed on failure");
        }
    }
}

#[test]
fn granule_delegation() {
    let w = World::new();
    table(&w, &[
        ("misaligned", RMI_GRANULE_DELEGATE, vec![g(3) + 8], INPUT),
        ("below DRAM", RMI_GRANULE_DELEGATE, vec![0x4000_0000], INPUT),
        ("above DRAM", RMI_GRANULE_DELEGATE, vec![g(PAGES)], INPUT),
        ("undelegate undelegated", RMI_GRANULE_UNDELEGATE, vec![g(3)], INPUT),
        ("delegate", RMI_GRANULE_DELEGATE, vec![g(3)], 0),
        ("delegate twice", RMI_GRANULE_DELEGATE, vec![g(3)], INPUT),
        ("undelegate", RMI_GRANULE_UNDELEGATE, vec![g(3)], 0),
    ]);
    assert_eq!(w.state(g(3)), Undelegated);
    assert_eq!(*w.el3.calls.lock().unwrap(), vec![("delegate", g(3)), ("undelegate", g(3))]);
    // EL3 refusing the GPT change leaves the granule as it was.
    w.el3.refuse.lock().unwrap().push(g(5));
    table(&w, &[("EL3 refuses", RMI_GRANULE_DELEGATE, vec![g(5)], INPUT)]);
}

#[test]
fn undelegate_scrubs() {
    let w = World::new();
    w.delegate(3);
    w.mem.page(g(3))[100] = 0xaa;
    w.ok(RMI_GRANULE_UNDELEGATE, &[g(3)]);
    assert_eq!(w.mem.page(g(3))[100], 0);
}

#[test]
fn realm_create_failures() {
    let w = World::new();
    w.delegate(1);
    w.delegate(4);
    w.delegate(6);
    let good = w.params(5, g(4));
    let mut cases: Vec<(&str, u32, Vec<u64>, u64)> = Vec::new();
    let put = |p: &RmiRealmParams| w.host_write(g(2), p);
    // Each case writes its params first, so run them one by one.
    let mut run = |what: &'static str, p: RmiRealmParams, rd: u64, params: u64, expect: u64| {
        put(&p);
        cases.clear();
        cases.push((what, RMI_REALM_CREATE, vec![rd, params], expect));
        table(&w, &cases);
    };
    run("rd misaligned", good.clone(), g(1) + 0x10, g(2), INPUT);
    run("rd out of range", good.clone(), 0x1000, g(2), INPUT);
    run("rd undelegated", good.clone(), g(3), g(2), INPUT);
    run("params misaligned", good.clone(), g(1), g(2) + 8, INPUT);
    run("params delegated", good.clone(), g(1), g(6), INPUT);
    run("params out of range", good.clone(), g(1), 0x9000_0000, INPUT);
    let mut p = good.clone();
    p.s2sz = 60;
    run("s2sz too big", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.s2sz = 20;
    run("s2sz too small", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.hash_algo = 7;
    run("unknown hash", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.flags = RMI_REALM_FLAGS_SVE;
    run("SVE not offered", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.num_bps = 9;
    run("too many breakpoints", p, g(1), g(2), INPUT);
    // 0 is reserved for both counts (RmiRealmParams; TF-RMM refuses it too).
    let mut p = good.clone();
    p.num_bps = 0;
    run("num_bps 0 (reserved)", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.num_wps = 0;
    run("num_wps 0 (reserved)", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.num_wps = 9;
    run("too many watchpoints", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.rtt_num_start = 2;
    run("rtt_num_start mismatch", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.rtt_level_start = 3;
    run("starting level 3", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.rtt_base = g(7);
    run("rtt undelegated", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.rtt_base = g(1);
    run("rtt is the rd", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.s2sz = 40;
    p.rtt_num_start = 2;
    p.rtt_base = g(4);
    run("concatenated rtts misaligned or undelegated", p, g(1), g(2), INPUT);
    let mut p = good.clone();
    p.vmid = 0x1_0000;
    run("vmid too wide", p, g(1), g(2), INPUT);
    run("good", good.clone(), g(1), g(2), 0);
    assert_eq!((w.state(g(1)), w.state(g(4))), (Rd, Rtt));
    // Same VMID for a second Realm.
    w.delegate(8);
    w.delegate(9);
    let mut p = good.clone();
    p.rtt_base = g(9);
    run("vmid in use", p.clone(), g(8), g(2), INPUT);
    p.vmid = 6;
    run("other vmid", p, g(8), g(2), 0);
}

#[test]
fn realm_lifecycle_and_live_objects() {
    let w = World::new();
    let rd = w.realm(1);
    w.delegate(10);
    w.delegate(11);
    table(&w, &[
        ("activate non-RD", RMI_REALM_ACTIVATE, vec![g(10)], INPUT),
        ("destroy non-RD", RMI_REALM_DESTROY, vec![g(4)], INPUT),
        ("rtt at level 2 for IPA 0", RMI_RTT_CREATE, vec![rd, g(10), 0, 2], 0),
        ("destroy with live rtt", RMI_REALM_DESTROY, vec![rd], REALM),
        ("rtt destroy", RMI_RTT_DESTROY, vec![rd, 0, 2], 0),
        // RTT_DESTROY leaves RIPAS DESTROYED behind, which is not live.
        ("destroy", RMI_REALM_DESTROY, vec![rd], 0),
    ]);
    assert_eq!((w.state(rd), w.state(g(4)), w.state(g(10))), (Delegated, Delegated, Delegated));
    // The VMID and the granules are free again.
    table(&w, &[("create again", RMI_REALM_CREATE, vec![rd, g(2)], 0)]);
    w.ok(RMI_REALM_ACTIVATE, &[rd]);
    table(&w, &[("activate twice", RMI_REALM_ACTIVATE, vec![rd], REALM)]);
}

#[test]
fn rtt_failures() {
    let w = World::new();
    let rd = w.realm(1);
    for n in 10..14 {
        w.delegate(n);
    }
    const L2: u64 = 1 << 21;
    const L1: u64 = 1 << 30;
    table(&w, &[
        ("create at start level", RMI_RTT_CREATE, vec![rd, g(10), 0, 1], INPUT),
        ("create at level 4", RMI_RTT_CREATE, vec![rd, g(10), 0, 4], INPUT),
        ("create misaligned ipa", RMI_RTT_CREATE, vec![rd, g(10), 0x1000, 2], INPUT),
        ("create ipa out of range", RMI_RTT_CREATE, vec![rd, g(10), 1 << 39, 2], INPUT),
        ("create rtt undelegated", RMI_RTT_CREATE, vec![rd, g(20), 0, 2], INPUT),
        ("create with rd as rtt", RMI_RTT_CREATE, vec![rd, rd, 0, 2], INPUT),
        ("create level 3 without level 2", RMI_RTT_CREATE, vec![rd, g(10), 0, 3], rtt_err(1)),
        ("create level 2", RMI_RTT_CREATE, vec![rd, g(10), 0, 2], 0),
        ("create level 2 again", RMI_RTT_CREATE, vec![rd, g(11), 0, 2], rtt_err(1)),
        ("create level 3", RMI_RTT_CREATE, vec![rd, g(11), L2, 3], 0),
        ("destroy level 2 with live child", RMI_RTT_DESTROY, vec![rd, 0, 2], rtt_err(2)),
        ("destroy level 3 not there", RMI_RTT_DESTROY, vec![rd, 0, 3], rtt_err(2)),
        ("destroy misaligned", RMI_RTT_DESTROY, vec![rd, L2 + 0x1000, 3], INPUT),
        ("fold level 3 (homogeneous)", RMI_RTT_FOLD, vec![rd, L2, 3], 0),
        ("fold level 3 again", RMI_RTT_FOLD, vec![rd, L2, 3], rtt_err(2)),
        ("read entry level 0", RMI_RTT_READ_ENTRY, vec![rd, 0, 0], INPUT),
        ("read entry misaligned", RMI_RTT_READ_ENTRY, vec![rd, 0x1000, 2], INPUT),
        ("read entry beyond", RMI_RTT_READ_ENTRY, vec![rd, 1 << 39, 1], INPUT),
        ("map unprotected at protected ipa", RMI_RTT_MAP_UNPROTECTED, vec![rd, L1, 3, 0x0900_0000], INPUT),
        ("map unprotected bad attrs", RMI_RTT_MAP_UNPROTECTED, vec![rd, 1 << 38, 3, 0x0900_0000 | 1 << 54], INPUT),
        ("map unprotected misaligned oa", RMI_RTT_MAP_UNPROTECTED, vec![rd, 1 << 38, 2, 0x0900_1000], INPUT),
        ("map unprotected without level 3", RMI_RTT_MAP_UNPROTECTED, vec![rd, 1 << 38, 3, 0x0900_0000], rtt_err(1)),
        ("unmap unprotected nothing", RMI_RTT_UNMAP_UNPROTECTED, vec![rd, 1 << 38, 1], rtt_err(1)),
        ("unmap protected", RMI_RTT_UNMAP_UNPROTECTED, vec![rd, 0, 2], INPUT),
        ("init ripas base misaligned", RMI_RTT_INIT_RIPAS, vec![rd, 0x10, 0x1000], INPUT),
        ("init ripas empty range", RMI_RTT_INIT_RIPAS, vec![rd, 0x1000, 0x1000], INPUT),
        ("init ripas unprotected", RMI_RTT_INIT_RIPAS, vec![rd, 1 << 38, (1 << 38) + 0x1000], INPUT),
        ("init ripas not covering an entry", RMI_RTT_INIT_RIPAS, vec![rd, 0, 0x1000], rtt_err(2)),
    ]);
    // Failures the spec gives result registers return them (`top`); every
    // other failure returns x0 alone.  x4 is the Host's either way.
    assert_eq!(w.call(RMI_RTT_DESTROY, &[rd, 0, 3, 0x4444]), [rtt_err(2), 0, L2, 0, 0x4444]);
    assert_eq!(w.call(RMI_RTT_UNMAP_UNPROTECTED, &[rd, 1 << 38, 1, 0x4444]), [rtt_err(1), (1 << 38) + L1, 0, 0, 0x4444]);
    assert_eq!(w.call(RMI_RTT_FOLD, &[rd, L2, 3, 0x4444]), [rtt_err(2), 0, 0, 0, 0x4444]);
    assert_eq!(w.call(RMI_RTT_CREATE, &[rd, g(10), 0x1000, 2, 0x4444]), [INPUT, 0, 0, 0, 2]);
    // The unprotected path: tables down to level 3 at 1 << 38, then map/unmap.
    let ns = 1u64 << 38;
    w.ok(RMI_RTT_CREATE, &[rd, g(12), ns, 2]);
    w.ok(RMI_RTT_CREATE, &[rd, g(13), ns, 3]);
    let desc = 0x0900_0000 | 0b11 << 6;
    table(&w, &[
        ("map", RMI_RTT_MAP_UNPROTECTED, vec![rd, ns, 3, desc], 0),
        ("map twice", RMI_RTT_MAP_UNPROTECTED, vec![rd, ns, 3, desc], rtt_err(3)),
    ]);
    assert_eq!(w.ok(RMI_RTT_READ_ENTRY, &[rd, ns, 3])[1..], [3, RMI_ASSIGNED, desc, 0]);
    table(&w, &[
        ("destroy rtt with mapping", RMI_RTT_DESTROY, vec![rd, ns, 3], rtt_err(3)),
        ("unmap", RMI_RTT_UNMAP_UNPROTECTED, vec![rd, ns, 3], 0),
        ("destroy rtt", RMI_RTT_DESTROY, vec![rd, ns, 3], 0),
    ]);
    assert_eq!(w.ok(RMI_RTT_READ_ENTRY, &[rd, ns, 3])[1..3], [2, RMI_UNASSIGNED]);
    assert_eq!(w.state(g(13)), Delegated);
}

/// Builds the Realm a Host following DEN0137 builds for realm-guest: RTTs
/// for IPA 0..2 MiB, RIPAS RAM over the image, measured DATA, one REC.
fn build(w: &World, image: &[[u8; 4096]]) -> (u64, u64) {
    let rd = w.realm(1);
    w.ok(RMI_RTT_CREATE, &[rd, w.delegate(10), 0, 2]);
    w.ok(RMI_RTT_CREATE, &[rd, w.delegate(11), 0, 3]);
    let top = image.len() as u64 * 0x1000;
    assert_eq!(w.ok(RMI_RTT_INIT_RIPAS, &[rd, 0, top])[1], top);
    for (i, page) in image.iter().enumerate() {
        w.host_write(g(3), page);
        let data = w.delegate(20 + i as u64);
        w.ok(RMI_DATA_CREATE, &[rd, data, i as u64 * 0x1000, g(3), RMI_MEASURE_CONTENT]);
    }
    let mut p = RmiRecParams::zeroed();
    p.flags = RMI_REC_FLAG_RUNNABLE;
    p.pc = 0;
    p.gprs[0] = 0x1234;
    w.host_write(g(3), &p);
    let rec = w.delegate(12);
    w.ok(RMI_REC_CREATE, &[rd, rec, g(3)]);
    (rd, rec)
}

/// The RIM computed from the documented rules with sha2 directly (no
/// `measurement` code), as xtask will.
fn expected_rim(image: &[[u8; 4096]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let h = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
    let mut params = [0u8; 4096];
    params[8] = 39; // s2sz
    params[0x18] = 1; // num_bps
    params[0x20] = 1; // num_wps; hash_algo 0 = SHA-256, everything else zero
    let mut rim = h(&params);
    let desc = |kind: u8, rim: &[u8; 32]| {
        let mut d = [0u8; 256];
        d[0] = kind;
        d[8] = 0x00;
        d[9] = 0x01; // len 0x100 LE
        d[0x10..0x30].copy_from_slice(rim);
        d
    };
    for i in 0..image.len() as u64 {
        let mut d = desc(2, &rim);
        d[0x50..0x58].copy_from_slice(&(i * 0x1000).to_le_bytes());
        d[0x58..0x60].copy_from_slice(&((i + 1) * 0x1000).to_le_bytes());
        rim = h(&d);
    }
    for (i, page) in image.iter().enumerate() {
        let mut d = desc(0, &rim);
        d[0x50..0x58].copy_from_slice(&(i as u64 * 0x1000).to_le_bytes());
        d[0x58] = 1;
        d[0x60..0x80].copy_from_slice(&h(page));
        rim = h(&d);
    }
    let mut r = [0u8; 4096];
    r[0] = 1; // flags: runnable
    r[0x300..0x308].copy_from_slice(&0x1234u64.to_le_bytes());
    let mut d = desc(1, &rim);
    d[0x50..0x70].copy_from_slice(&h(&r));
    h(&d)
}

fn rd_of(w: &World, rd: u64) -> &'static mut crate::realm::Rd {
    // SAFETY: test inspection, single-threaded.
    unsafe { crate::mem::realm(w.mem, rd) }
}

#[test]
fn build_measures_as_documented() {
    let w = World::new();
    let image = [[0x11u8; 4096], [0x22u8; 4096]];
    let (rd, _) = build(&w, &image);
    assert_eq!(rd_of(&w, rd).measurements[0][..32], expected_rim(&image));
    assert_eq!(rd_of(&w, rd).measurements[0][32..], [0u8; 32]);
    assert_eq!(rd_of(&w, rd).algo(), HashAlgo::Sha256);
    // RTT_READ_ENTRY shows the DATA.
    assert_eq!(w.ok(RMI_RTT_READ_ENTRY, &[rd, 0x1000, 3])[1..], [3, RMI_ASSIGNED, g(21), RMI_RAM]);
    assert_eq!(w.ok(RMI_RTT_READ_ENTRY, &[rd, 0x2000, 3])[1..], [3, RMI_UNASSIGNED, 0, RMI_EMPTY]);
}

#[test]
fn data_failures() {
    let w = World::new();
    let (rd, rec) = build(&w, &[[1u8; 4096]]);
    w.delegate(30);
    w.delegate(31);
    // Failures of DATA_DESTROY still return `top` in x2.
    assert_eq!(w.call(RMI_DATA_DESTROY, &[rd, 0x1000, 0, 0x4444]), [rtt_err(3), 0, 0x2000, 0, 0x4444]);
    assert_eq!(w.call(RMI_DATA_DESTROY, &[rd, 1 << 30, 0, 0x4444]), [rtt_err(1), 0, 1 << 31, 0, 0x4444]);
    table(&w, &[
        ("data undelegated", RMI_DATA_CREATE, vec![rd, g(40), 0x1000, g(3), 0], INPUT),
        ("data is the rd", RMI_DATA_CREATE, vec![rd, rd, 0x1000, g(3), 0], INPUT),
        ("src delegated", RMI_DATA_CREATE, vec![rd, g(30), 0x1000, g(31), 0], INPUT),
        ("bad flags", RMI_DATA_CREATE, vec![rd, g(30), 0x1000, g(3), 2], INPUT),
        ("ipa misaligned", RMI_DATA_CREATE, vec![rd, g(30), 0x1008, g(3), 0], INPUT),
        ("ipa unprotected", RMI_DATA_CREATE, vec![rd, g(30), 1 << 38, g(3), 0], INPUT),
        ("no level 3 table", RMI_DATA_CREATE, vec![rd, g(30), 1 << 30, g(3), 0], rtt_err(1)),
        ("already assigned", RMI_DATA_CREATE, vec![rd, g(30), 0, g(3), 0], rtt_err(3)),
        ("destroy unassigned", RMI_DATA_DESTROY, vec![rd, 0x1000], rtt_err(3)),
        ("destroy without table", RMI_DATA_DESTROY, vec![rd, 1 << 30], rtt_err(1)),
        ("rtt destroy with data", RMI_RTT_DESTROY, vec![rd, 0, 3], rtt_err(3)),
        ("rec destroy with rec as rd", RMI_REC_DESTROY, vec![rd], INPUT),
        ("realm destroy with a REC", RMI_REALM_DESTROY, vec![rd], REALM),
        ("activate", RMI_REALM_ACTIVATE, vec![rd], 0),
        ("data create after activation", RMI_DATA_CREATE, vec![rd, g(30), 0x1000, g(3), 0], REALM),
        ("init ripas after activation", RMI_RTT_INIT_RIPAS, vec![rd, 0x1000, 0x2000], REALM),
        ("data create unknown after activation", RMI_DATA_CREATE_UNKNOWN, vec![rd, g(30), 0x1000], 0),
    ]);
    let r = w.ok(RMI_DATA_DESTROY, &[rd, 0]);
    assert_eq!(r[1..3], [g(20), 0x1000]);
    assert_eq!(w.state(g(20)), Delegated);
    assert_eq!(w.ok(RMI_RTT_READ_ENTRY, &[rd, 0, 3])[2..], [RMI_UNASSIGNED, 0, RMI_DESTROYED]);
    w.ok(RMI_DATA_DESTROY, &[rd, 0x1000]);
    w.ok(RMI_REC_DESTROY, &[rec]);
    w.ok(RMI_RTT_DESTROY, &[rd, 0, 3]);
    w.ok(RMI_RTT_DESTROY, &[rd, 0, 2]);
    w.ok(RMI_REALM_DESTROY, &[rd]);
}

#[test]
fn rec_failures() {
    let w = World::new();
    let (rd, rec) = build(&w, &[[1u8; 4096]]);
    let rec2 = w.delegate(13);
    let mut p = RmiRecParams::zeroed();
    p.mpidr = 5;
    w.host_write(g(3), &p);
    table(&w, &[("mpidr not next index", RMI_REC_CREATE, vec![rd, rec2, g(3)], INPUT)]);
    p.mpidr = 1;
    p.num_aux = 1;
    w.host_write(g(3), &p);
    table(&w, &[("aux granules", RMI_REC_CREATE, vec![rd, rec2, g(3)], INPUT)]);
    p.num_aux = 0;
    w.host_write(g(3), &p);
    table(&w, &[
        ("params delegated", RMI_REC_CREATE, vec![rd, rec2, g(13)], INPUT),
        ("rec is the rd", RMI_REC_CREATE, vec![rd, rd, g(3)], INPUT),
        ("aux count", RMI_REC_AUX_COUNT, vec![rd], 0),
        ("aux count of non-RD", RMI_REC_AUX_COUNT, vec![rec], INPUT),
        ("enter before activation", RMI_REC_ENTER, vec![rec, g(3)], REALM),
        ("enter non-REC", RMI_REC_ENTER, vec![rd, g(3)], INPUT),
        ("enter with delegated run", RMI_REC_ENTER, vec![rec, g(13)], INPUT),
        ("second rec (not runnable)", RMI_REC_CREATE, vec![rd, rec2, g(3)], 0),
        ("activate", RMI_REALM_ACTIVATE, vec![rd], 0),
        ("create after activation", RMI_REC_CREATE, vec![rd, w.delegate(14), g(3)], REALM),
        ("enter non-runnable", RMI_REC_ENTER, vec![rec2, g(4)], INPUT),
        ("enter non-runnable (run in NS)", RMI_REC_ENTER, vec![rec2, g(5)], REC),
        ("psci complete without request", RMI_PSCI_COMPLETE, vec![rec, rec2, 0], INPUT),
        ("psci complete alias", RMI_PSCI_COMPLETE, vec![rec, rec, 0], INPUT),
    ]);
    assert_eq!(w.call(RMI_REC_AUX_COUNT, &[rd])[1], 0);
}

fn smc(args: &'static [u64]) -> Step {
    Box::new(move |r: &mut Rec| {
        r.x[..args.len()].copy_from_slice(args);
        sync(ESR_SMC)
    })
}

fn check(f: impl FnMut(&mut Rec) + Send + 'static) -> Step {
    let mut f = f;
    Box::new(move |r: &mut Rec| {
        f(r);
        RawExit { kind: crate::rmi::rec::ExitKind::Irq, esr: 0, far: 0, hpfar: 0, gic_misr: 0 }
    })
}

fn run_exit(w: &World) -> RmiRecExit {
    let page = w.mem.page(g(5));
    let run: &RmiRecRun = zerocopy::FromBytes::ref_from_bytes(&page[..]).unwrap();
    run.exit.clone()
}

#[test]
fn rec_enter_rsi_and_exits() {
    let w = World::new();
    let image = [[0u8; 4096], [0u8; 4096]];
    let (rd, rec) = build(&w, &image);
    w.ok(RMI_REALM_ACTIVATE, &[rd]);
    let rim = rd_of(&w, rd).measurements[0];
    let rim0 = u64::from_le_bytes(rim[..8].try_into().unwrap());
    {
        let mut s = w.cpu.script.lock().unwrap();
        // The REC starts at pc 0 with x0 from REC_CREATE.
        s.push(check(|r| assert_eq!((r.pc, r.x[0], r.pstate), (0, 0x1234, crate::rec::INITIAL_PSTATE))));
    }
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    assert_eq!(run_exit(&w).exit_reason, RMI_EXIT_IRQ);
    {
        let mut s = w.cpu.script.lock().unwrap();
        s.push(smc(&[rsi::RSI_VERSION as u64, rsi::RSI_ABI_VERSION]));
        s.push(check(|r| assert_eq!(r.x[..3], [0, 1 << 16, 1 << 16])));
    }
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    {
        let mut s = w.cpu.script.lock().unwrap();
        s.push(smc(&[rsi::RSI_MEASUREMENT_READ as u64, 0]));
        s.push(check(move |r| assert_eq!((r.x[0], r.x[1], r.x[5]), (0, rim0, 0))));
        s.push(smc(&[rsi::RSI_MEASUREMENT_READ as u64, 5]));
        s.push(check(|r| assert_eq!(r.x[0], 1)));
        s.push(smc(&[rsi::RSI_MEASUREMENT_EXTEND as u64, 1, 4, 0x6162_6364]));
        s.push(check(|r| assert_eq!(r.x[0], 0)));
        s.push(smc(&[rsi::RSI_MEASUREMENT_EXTEND as u64, 0, 4]));
        s.push(check(|r| assert_eq!(r.x[0], 1)));
        s.push(smc(&[rsi::RSI_REALM_CONFIG as u64, 0x1000]));
        s.push(check(|r| assert_eq!(r.x[0], 0)));
        s.push(smc(&[rsi::RSI_REALM_CONFIG as u64, 0x3000]));
        s.push(check(|r| assert_eq!(r.x[0], 1)));
        s.push(smc(&[rsi::RSI_IPA_STATE_GET as u64, 0, 0x10000]));
        s.push(check(|r| assert_eq!(r.x[..3], [0, 0x2000, rsi::RSI_RAM])));
        s.push(smc(&[rsi::RSI_ATTESTATION_TOKEN_INIT as u64]));
        s.push(check(|r| assert_eq!(r.x[..2], [0, crate::attest::TOKEN_SIZE_BOUND as u64])));
        s.push(smc(&[0xC400_01FF]));
        s.push(check(|r| assert_eq!(r.x[0], u64::MAX)));
    }
    for _ in 0..9 {
        w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    }
    // RSI_REALM_CONFIG wrote the Realm's config into its own memory.
    assert_eq!(w.mem.page(g(21))[0], 39);
    let mut expect = [0u8; 36];
    expect[32..].copy_from_slice(&0x6162_6364u32.to_le_bytes());
    assert_eq!(rd_of(&w, rd).measurements[1][..32], HashAlgo::Sha256.hash(&[&expect])[..32]);

    // Host call: the Realm's buffer at IPA 0x1100, imm 7, x0 = 42.
    {
        let page = w.mem.page(g(21));
        page[0x100] = 7;
        page[0x108] = 42;
        let mut s = w.cpu.script.lock().unwrap();
        s.push(smc(&[rsi::RSI_HOST_CALL as u64, 0x1100]));
    }
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    let e = run_exit(&w);
    assert_eq!((e.exit_reason, e.imm, e.gprs[0]), (RMI_EXIT_HOST_CALL, 7, 42));
    let mut enter = RmiRecEnter::new_zeroed_enter();
    enter.gprs[0] = 99;
    w.host_write(g(5), &enter);
    w.cpu.script.lock().unwrap().push(check(|r| assert_eq!(r.x[0], 0)));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    assert_eq!(w.mem.page(g(21))[0x108], 99);

    // MMIO write at an unprotected IPA: emulatable abort with the value in gprs[0].
    w.cpu.script.lock().unwrap().push(Box::new(|r: &mut Rec| {
        r.x[3] = 0x41;
        // EC 0x24, IL, ISV, SAS=0, SRT=3, WnR; DFSC translation fault level 3.
        RawExit { kind: crate::rmi::rec::ExitKind::Sync, esr: 0x24 << 26 | 1 << 25 | 1 << 24 | 3 << 16 | 1 << 6 | 7, far: 0x123, hpfar: ((1u64 << 38) >> 12) << 4, gic_misr: 0 }
    }));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    let e = run_exit(&w);
    assert_eq!((e.exit_reason, e.gprs[0], e.far, (e.esr >> 16) & 0x1f), (RMI_EXIT_SYNC, 0x41, 0x123, 0));
    assert_eq!(e.hpfar, ((1u64 << 38) >> 12) << 4);
    let mut enter = RmiRecEnter::new_zeroed_enter();
    enter.flags = RMI_REC_ENTER_EMUL_MMIO;
    w.host_write(g(5), &enter);
    let pc = rec_of(&w, rec).pc;
    w.cpu.script.lock().unwrap().push(check(move |r| assert_eq!(r.pc, pc + 4)));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);

    // Emulation or an SEA only after the exit that allows it; nothing changes otherwise.
    let mut bad = RmiRecEnter::new_zeroed_enter();
    bad.flags = RMI_REC_ENTER_EMUL_MMIO;
    w.host_write(g(5), &bad);
    table(&w, &[("emul_mmio after an IRQ exit", RMI_REC_ENTER, vec![rec, g(5)], REC)]);
    bad.flags = RMI_REC_ENTER_INJECT_SEA;
    w.host_write(g(5), &bad);
    table(&w, &[("inject_sea after an IRQ exit", RMI_REC_ENTER, vec![rec, g(5)], REC)]);
    w.host_write(g(5), &RmiRecEnter::new_zeroed_enter());

    // MMIO read at an unprotected IPA, answered with inject_sea: a Synchronous
    // External Abort at the access (ELR = its PC), to the EL1h vector, with
    // FAR_EL1 = the VA and the destination register untouched.
    w.cpu.script.lock().unwrap().push(Box::new(|r: &mut Rec| {
        r.x[5] = 7;
        // EC 0x24, IL, ISV, SAS=2 (32-bit), SRT=5, read; DFSC translation fault level 3.
        RawExit { kind: crate::rmi::rec::ExitKind::Sync, esr: 0x24 << 26 | 1 << 25 | 1 << 24 | 2 << 22 | 5 << 16 | 7, far: 0x456, hpfar: ((1u64 << 38) >> 12) << 4, gic_misr: 0 }
    }));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    assert_eq!(run_exit(&w).exit_reason, RMI_EXIT_SYNC);
    let (pc, vbar) = (rec_of(&w, rec).pc, rec_of(&w, rec).sysregs[Rec::VBAR]);
    let mut enter = RmiRecEnter::new_zeroed_enter();
    // With emul_mmio too: the abort wins, nothing is emulated (as TF-RMM).
    enter.flags = RMI_REC_ENTER_INJECT_SEA | RMI_REC_ENTER_EMUL_MMIO;
    enter.gprs[0] = 0x99;
    w.host_write(g(5), &enter);
    w.cpu.script.lock().unwrap().push(check(move |r| {
        assert_eq!(r.pc, vbar + 0x200);
        assert_eq!((r.sysregs[Rec::ELR], r.sysregs[Rec::FAR], r.sysregs[Rec::ESR] >> 26, r.sysregs[Rec::ESR] & 0x3f), (pc, 0x456, 0x25, 0x10));
        assert_eq!(r.x[5], 7);
    }));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    table(&w, &[("inject_sea twice", RMI_REC_ENTER, vec![rec, g(5)], REC)]);

    // A non-emulatable abort (ISV = 0) at an unprotected IPA: inject_sea is
    // allowed (with emul_mmio ignored), emul_mmio alone is not.
    w.host_write(g(5), &RmiRecEnter::new_zeroed_enter());
    w.cpu.script.lock().unwrap().push(Box::new(|_: &mut Rec| RawExit { kind: crate::rmi::rec::ExitKind::Sync, esr: 0x24 << 26 | 1 << 25 | 7, far: 0x789, hpfar: ((1u64 << 38) >> 12) << 4, gic_misr: 0 }));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    let mut enter = RmiRecEnter::new_zeroed_enter();
    enter.flags = RMI_REC_ENTER_EMUL_MMIO;
    w.host_write(g(5), &enter);
    table(&w, &[("emul_mmio after a non-emulatable abort", RMI_REC_ENTER, vec![rec, g(5)], REC)]);
    enter.flags = RMI_REC_ENTER_EMUL_MMIO | RMI_REC_ENTER_INJECT_SEA;
    w.host_write(g(5), &enter);
    w.cpu.script.lock().unwrap().push(check(move |r| assert_eq!((r.pc, r.sysregs[Rec::FAR]), (vbar + 0x200, 0x789))));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    w.host_write(g(5), &RmiRecEnter::new_zeroed_enter());

    // RIPAS change: exit, the Host applies it with RTT_SET_RIPAS, the Realm sees the answer.
    w.cpu.script.lock().unwrap().push(smc(&[rsi::RSI_IPA_STATE_SET as u64, 0x1000, 0x2000, rsi::RSI_EMPTY, 0]));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    let e = run_exit(&w);
    assert_eq!((e.exit_reason, e.ripas_base, e.ripas_top, e.ripas_value), (RMI_EXIT_RIPAS_CHANGE, 0x1000, 0x2000, 0));
    table(&w, &[
        ("set ripas wrong base", RMI_RTT_SET_RIPAS, vec![rd, rec, 0, 0x2000], INPUT),
        ("set ripas beyond request", RMI_RTT_SET_RIPAS, vec![rd, rec, 0x1000, 0x3000], INPUT),
        ("set ripas rec as rd", RMI_RTT_SET_RIPAS, vec![rec, rec, 0x1000, 0x2000], INPUT),
        ("set ripas", RMI_RTT_SET_RIPAS, vec![rd, rec, 0x1000, 0x2000], 0),
    ]);
    assert_eq!(w.ok(RMI_RTT_READ_ENTRY, &[rd, 0x1000, 3])[2..], [RMI_ASSIGNED, g(21), RMI_EMPTY]);
    w.cpu.script.lock().unwrap().push(check(|r| assert_eq!(r.x[..3], [0, 0x2000, rsi::RSI_ACCEPT])));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);

    // PSCI naming the caller itself is answered by rmm (psci_from_the_realm
    // covers the calls that reach the Host).
    w.cpu.script.lock().unwrap().push(smc(&[shared::abi::psci::PSCI_AFFINITY_INFO_64 as u64, 0, 0]));
    w.cpu.script.lock().unwrap().push(check(|r| assert_eq!(r.x[0], 0)));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    table(&w, &[("psci complete on itself", RMI_PSCI_COMPLETE, vec![rec, rec, 0], INPUT)]);
}

/// A Realm of two RECs (MPIDR 0 runnable, MPIDR 1 runnable if asked), activated.
fn build_two_recs(w: &World, second_runnable: bool) -> (u64, u64, u64) {
    let (rd, rec) = build(w, &[[0u8; 4096]; 2]);
    let mut p = RmiRecParams::zeroed();
    p.mpidr = 1;
    if second_runnable {
        p.flags = RMI_REC_FLAG_RUNNABLE;
    }
    w.host_write(g(3), &p);
    let rec2 = w.delegate(13);
    w.ok(RMI_REC_CREATE, &[rd, rec2, g(3)]);
    w.ok(RMI_REALM_ACTIVATE, &[rd]);
    (rd, rec, rec2)
}

#[test]
fn psci_from_the_realm() {
    use shared::abi::psci::{self as p, status};
    let st = |c: i32| c as i64 as u64;
    let w = World::new();
    let (_rd, rec, rec2) = build_two_recs(&w, false);
    let unprotected = 1u64 << 38;
    // Answered by rmm, no exit (DEN0137 PSCI_CPU_ON / PSCI_AFFINITY_INFO failure conditions).
    for (what, args, want) in [
        ("cpu_on entry unprotected", vec![p::PSCI_CPU_ON_64 as u64, 1, unprotected, 0], st(status::INVALID_ADDRESS)),
        ("cpu_on entry outside the IPA space", vec![p::PSCI_CPU_ON_64 as u64, 1, u64::MAX, 0], st(status::INVALID_ADDRESS)),
        ("cpu_on no such REC", vec![p::PSCI_CPU_ON_64 as u64, 2, 0x1000, 0], st(status::INVALID_PARAMETERS)),
        ("cpu_on not an MPIDR", vec![p::PSCI_CPU_ON_64 as u64, 1 << 40, 0x1000, 0], st(status::INVALID_PARAMETERS)),
        ("cpu_on itself", vec![p::PSCI_CPU_ON_64 as u64, 0, 0x1000, 0], st(status::ALREADY_ON)),
        ("affinity_info level 1", vec![p::PSCI_AFFINITY_INFO_64 as u64, 1, 1], st(status::INVALID_PARAMETERS)),
        ("affinity_info no such REC", vec![p::PSCI_AFFINITY_INFO_64 as u64, 0x100, 0], st(status::INVALID_PARAMETERS)),
        ("affinity_info itself", vec![p::PSCI_AFFINITY_INFO_64 as u64, 0, 0], 0),
        ("unknown psci fid", vec![0x8400_001f, 0, 0], u64::MAX),
    ] {
        assert_eq!(rsi_call(&w, rec, args)[0], want, "{what}");
        assert_eq!(run_exit(&w).exit_reason, RMI_EXIT_IRQ, "{what}: no PSCI exit");
        assert_eq!((rec_of(&w, rec).pending, rec_of(&w, rec2).runnable), (0, 0), "{what}: nothing pending, nothing started");
    }
    // The other REC: a PSCI exit, completed by the Host.
    w.cpu.script.lock().unwrap().push(smc(&[p::PSCI_AFFINITY_INFO_64 as u64, 1, 0]));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    let e = run_exit(&w);
    assert_eq!((e.exit_reason, e.gprs[0] as u32, e.gprs[1]), (RMI_EXIT_PSCI, p::PSCI_AFFINITY_INFO_64, 1));
    table(&w, &[("enter with PSCI pending", RMI_REC_ENTER, vec![rec, g(5)], REC)]);
    w.ok(RMI_PSCI_COMPLETE, &[rec, rec2, 0]);
    w.cpu.script.lock().unwrap().push(check(|r| assert_eq!(r.x[0], 1))); // OFF
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    // CPU_ON of it: exit, completion, and it starts where asked, with no
    // active priority left over from before it was off.
    rec_of(&w, rec2).gic_ap1r[0] = 1 << 24;
    w.cpu.script.lock().unwrap().push(smc(&[p::PSCI_CPU_ON_64 as u64, 1, 0x1000, 0x77]));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    assert_eq!(run_exit(&w).exit_reason, RMI_EXIT_PSCI);
    w.ok(RMI_PSCI_COMPLETE, &[rec, rec2, 0]);
    w.cpu.script.lock().unwrap().push(check(|r| assert_eq!(r.x[0], 0)));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    let t = rec_of(&w, rec2);
    assert_eq!((t.runnable, t.pc, t.x[0]), (1, 0x1000, 0x77));
    assert_eq!((t.gic_ap0r, t.gic_ap1r), ([0; 4], [0; 4]));
}

fn rec_of(w: &World, rec: u64) -> &'static mut Rec {
    // SAFETY: test inspection.
    unsafe { crate::mem::realm(w.mem, rec) }
}

trait NewEnter {
    fn new_zeroed_enter() -> Self;
}
impl NewEnter for RmiRecEnter {
    fn new_zeroed_enter() -> Self {
        RmiRecRun::zeroed().enter
    }
}

/// One RSI call from the Realm in its own RMI_REC_ENTER; returns x0, x1.
fn rsi_call(w: &World, rec: u64, args: Vec<u64>) -> [u64; 2] {
    let out = std::sync::Arc::new(std::sync::Mutex::new([0u64; 2]));
    let o = out.clone();
    {
        let mut s = w.cpu.script.lock().unwrap();
        s.push(Box::new(move |r: &mut Rec| {
            r.x[..args.len()].copy_from_slice(&args);
            sync(ESR_SMC)
        }));
        s.push(check(move |r| *o.lock().unwrap() = [r.x[0], r.x[1]]));
    }
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    *out.lock().unwrap()
}

const INIT: u64 = rsi::RSI_ATTESTATION_TOKEN_INIT as u64;
const CONTINUE: u64 = rsi::RSI_ATTESTATION_TOKEN_CONTINUE as u64;
const R_INPUT: u64 = rsi::RsiStatus::ErrorInput as u64;
const R_STATE: u64 = rsi::RsiStatus::ErrorState as u64;
const R_INCOMPLETE: u64 = rsi::RsiStatus::Incomplete as u64;
const R_UNKNOWN: u64 = rsi::RsiStatus::ErrorUnknown as u64;

/// The challenge x1..x8 = 1..=8 as bytes.
fn challenge_bytes() -> [u8; 64] {
    let mut c = [0u8; 64];
    for i in 0..8 {
        c[8 * i..8 * i + 8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    }
    c
}

/// INIT then CONTINUE into the granule at IPA 0x1000 (PA g(21)), `chunk`
/// bytes at offset `off` per call; the whole token.
fn read_token(w: &World, rec: u64, off: u64, chunk: u64) -> Vec<u8> {
    let init = rsi_call(w, rec, vec![INIT, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(init, [0, crate::attest::TOKEN_SIZE_BOUND as u64]);
    let mut token = Vec::new();
    for _ in 0..100 {
        let [st, len] = rsi_call(w, rec, vec![CONTINUE, 0x1000, off, chunk]);
        assert!(st == 0 || st == R_INCOMPLETE, "CONTINUE: {st}");
        assert!(len <= chunk);
        token.extend_from_slice(&w.mem.page(g(21))[off as usize..(off + len) as usize]);
        if st == 0 {
            assert!(token.len() <= crate::attest::TOKEN_SIZE_BOUND);
            return token;
        }
    }
    panic!("token never completed");
}

#[test]
fn attestation_token_in_parts_is_one_verifiable_token() {
    let w = World::new();
    let (rd, rec) = build(&w, &[[0u8; 4096], [0u8; 4096]]);
    w.ok(RMI_REALM_ACTIVATE, &[rd]);
    let whole = read_token(&w, rec, 0, 0x1000);
    let parts = read_token(&w, rec, 0xf00, 0x100);
    assert_eq!(whole, parts, "same inputs, same token, however it is read");
    let c = cca_token::decode_collection(&whole).unwrap();
    let claims = cca_token::verify_realm_token(&c.realm_token).unwrap();
    let r = rd_of(&w, rd);
    assert_eq!(claims.challenge, challenge_bytes());
    assert_eq!(claims.rim, r.measurements[0][..32]);
    assert_eq!(claims.rems, vec![vec![0u8; 32]; 4]);
    assert_eq!(claims.personalization_value, r.rpv);
    assert_eq!(claims.hash_algo_id, "sha-256");
    let rak = cca_token::RealmAttestationKey::from_el3(&crate::el3::test_support::QEMU_SAMPLE_RAK)
        .unwrap();
    assert_eq!(claims.public_key, rak.public_key());
    assert_eq!(
        c.platform_token,
        crate::el3::test_support::platform_token_for(&rak.public_key_hash())
    );
    // Byte for byte what cca-token makes from the same inputs (the code
    // xtask's verify-token tests round-trip).
    let claims_in = cca_token::RealmClaims {
        challenge: &challenge_bytes(),
        personalization_value: &r.rpv,
        hash_algo: cca_token::HashAlgo::Sha256,
        rim: &r.measurements[0][..32],
        rems: [&[0; 32], &[0; 32], &[0; 32], &[0; 32]],
    };
    let direct = cca_token::collection(&c.platform_token, &cca_token::realm_token(&claims_in, &rak).unwrap()).unwrap();
    assert_eq!(whole, direct);
    // EL3 was asked once for the key and the platform token, however many tokens.
    let asked = w
        .el3
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| *n != "delegate")
        .count();
    assert_eq!(asked, 2);
    // After the last part: no token in progress.
    assert_eq!(
        rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0x1000])[0],
        R_STATE
    );
}

#[test]
fn attestation_token_keeps_the_measurements_of_init() {
    let w = World::new();
    let (rd, rec) = build(&w, &[[0u8; 4096]; 2]);
    w.ok(RMI_REALM_ACTIVATE, &[rd]);
    assert_eq!(rsi_call(&w, rec, vec![INIT, 1, 2, 3, 4, 5, 6, 7, 8])[0], 0);
    let [st, len] = rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0x100]);
    assert_eq!((st, len), (R_INCOMPLETE, 0x100));
    let mut token = w.mem.page(g(21))[..0x100].to_vec();
    // REM 1 changes mid-token: the token still shows the value at INIT.
    assert_eq!(
        rsi_call(
            &w,
            rec,
            vec![rsi::RSI_MEASUREMENT_EXTEND as u64, 1, 1, 0x55]
        )[0],
        0
    );
    loop {
        let [st, len] = rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0x1000]);
        token.extend_from_slice(&w.mem.page(g(21))[..len as usize]);
        if st == 0 {
            break;
        }
        assert_eq!(st, R_INCOMPLETE);
    }
    let c = cca_token::decode_collection(&token).unwrap();
    assert_eq!(
        cca_token::verify_realm_token(&c.realm_token).unwrap().rems[0],
        vec![0u8; 32]
    );
    // A new token shows the new value.
    let again = read_token(&w, rec, 0, 0x1000);
    let c = cca_token::decode_collection(&again).unwrap();
    assert_eq!(
        cca_token::verify_realm_token(&c.realm_token).unwrap().rems[0],
        rd_of(&w, rd).measurements[1][..32]
    );
}

#[test]
fn attestation_token_continue_refuses_bad_input_and_state() {
    let w = World::new();
    let (rd, rec) = build(&w, &[[0u8; 4096]; 2]);
    w.ok(RMI_REALM_ACTIVATE, &[rd]);
    // No INIT yet.
    assert_eq!(
        rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0x1000])[0],
        R_STATE
    );
    assert_eq!(rsi_call(&w, rec, vec![INIT, 1, 2, 3, 4, 5, 6, 7, 8])[0], 0);
    let before = w.mem.page(g(21)).to_vec();
    let unprotected = 1u64 << 38;
    for (addr, off, size) in [
        (0x1001, 0, 0x100),               // unaligned
        (0x3000, 0, 0x100),               // protected, not RAM (unassigned)
        (unprotected, 0, 0x100),          // unprotected
        (unprotected + 0x1000, 0, 0x100), // unprotected
        (1 << 39, 0, 0x100),              // outside the IPA space
        (!0xfff, 0, 0x100),               // far outside
        (0x1000, 0x1000, 0),              // offset past the granule
        (0x1000, 0x800, 0x801),           // offset + size past the granule
        (0x1000, 0, 0x1001),              // size past the granule
        (0x1000, 8, u64::MAX),            // offset + size overflows
        (0x1000, u64::MAX, 2),            // offset overflows
    ] {
        assert_eq!(
            rsi_call(&w, rec, vec![CONTINUE, addr, off, size])[0],
            R_INPUT,
            "{addr:#x} {off:#x} {size:#x}"
        );
    }
    assert_eq!(
        w.mem.page(g(21)).to_vec(),
        before,
        "nothing written on errors"
    );
    // Errors did not end the token in progress.
    let [st, len] = rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0x10]);
    assert_eq!((st, len), (R_INCOMPLETE, 0x10));
    let first = w.mem.page(g(21))[..0x10].to_vec();
    // INIT in the middle restarts the token from its first byte.
    assert_eq!(rsi_call(&w, rec, vec![INIT, 1, 2, 3, 4, 5, 6, 7, 8])[0], 0);
    let [st, len] = rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0x800, 0x10]);
    assert_eq!((st, len), (R_INCOMPLETE, 0x10));
    assert_eq!(w.mem.page(g(21))[0x800..0x810], first[..]);
    // A zero size writes nothing and keeps the token in progress.
    assert_eq!(rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0]), [R_INCOMPLETE, 0]);
}

#[test]
fn attestation_token_state_is_per_rec_and_parts_may_move() {
    let w = World::new();
    let (_rd, rec, rec2) = build_two_recs(&w, true);
    let whole = read_token(&w, rec, 0, 0x1000);
    // Input is checked before state (TF-RMM's order too): no token, bad address.
    assert_eq!(rsi_call(&w, rec, vec![CONTINUE, 0x1008, 0, 0x10])[0], R_INPUT);
    assert_eq!(rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0x10])[0], R_STATE);
    // A token in progress on one REC is not the other's.
    assert_eq!(rsi_call(&w, rec, vec![INIT, 1, 2, 3, 4, 5, 6, 7, 8])[0], 0);
    assert_eq!(rsi_call(&w, rec2, vec![CONTINUE, 0x1000, 0, 0x10])[0], R_STATE);
    // ... and the other's INIT (another challenge) does not disturb it.
    assert_eq!(rsi_call(&w, rec2, vec![INIT, 9, 9, 9, 9, 9, 9, 9, 9])[0], 0);
    // Each part may go to another granule and offset: the parts still make the one token.
    let mut parts = Vec::new();
    for i in 0.. {
        let (addr, off, size) = if i % 2 == 0 { (0x1000, 0xf00, 0x100) } else { (0, 0x10, 0x300) };
        let [st, len] = rsi_call(&w, rec, vec![CONTINUE, addr, off, size]);
        let page = if addr == 0 { g(20) } else { g(21) };
        parts.extend_from_slice(&w.mem.page(page)[off as usize..(off + len) as usize]);
        if st == 0 {
            break;
        }
        assert_eq!((st, len), (R_INCOMPLETE, size));
        assert!(i < 100);
    }
    assert_eq!(parts, whole);
    // The second REC's token carries its own challenge.
    let mut t2 = Vec::new();
    loop {
        let [st, len] = rsi_call(&w, rec2, vec![CONTINUE, 0x1000, 0, 0x1000]);
        t2.extend_from_slice(&w.mem.page(g(21))[..len as usize]);
        if st == 0 {
            break;
        }
        assert_eq!(st, R_INCOMPLETE);
    }
    let c = cca_token::decode_collection(&t2).unwrap();
    assert_eq!(cca_token::verify_realm_token(&c.realm_token).unwrap().challenge, [9u8, 0, 0, 0, 0, 0, 0, 0].repeat(8));
    // Both done: neither has a token in progress.
    assert_eq!(rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0x10])[0], R_STATE);
    assert_eq!(rsi_call(&w, rec2, vec![CONTINUE, 0x1000, 0, 0x10])[0], R_STATE);
}

#[test]
fn attestation_with_a_bad_key_from_el3_is_an_error_not_a_panic() {
    for (rak, plat) in [
        (Ok(vec![0u8; 48]), None),
        (Ok(vec![0xffu8; 48]), None),
        (Ok(vec![1u8; 47]), None),
        (Ok(vec![]), None),
        (Err(shared::abi::rmm_el3::E_RMM_UNK), None),
        (
            Ok(crate::el3::test_support::QEMU_SAMPLE_RAK.to_vec()),
            Some(shared::abi::rmm_el3::E_RMM_INVAL),
        ),
    ] {
        let w = World::new();
        let (rd, rec) = build(&w, &[[0u8; 4096]; 2]);
        w.ok(RMI_REALM_ACTIVATE, &[rd]);
        *w.el3.rak.lock().unwrap() = rak.clone();
        *w.el3.platform_error.lock().unwrap() = plat;
        assert_eq!(rsi_call(&w, rec, vec![INIT, 1, 2, 3, 4, 5, 6, 7, 8])[0], 0);
        assert_eq!(
            rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0x1000])[0],
            R_UNKNOWN,
            "{rak:?} {plat:?}"
        );
        // The token was abandoned; a fixed EL3 is asked again.
        assert_eq!(
            rsi_call(&w, rec, vec![CONTINUE, 0x1000, 0, 0x1000])[0],
            R_STATE
        );
        *w.el3.rak.lock().unwrap() = Ok(crate::el3::test_support::QEMU_SAMPLE_RAK.to_vec());
        *w.el3.platform_error.lock().unwrap() = None;
        let t = read_token(&w, rec, 0, 0x1000);
        assert!(cca_token::decode_collection(&t).is_ok());
    }
}

/// What Linux as a Realm needs from REC_ENTER beyond realm-guest: trapped
/// system register accesses reach the Host with their value (ICC_SGI1R_EL1:
/// an IPI), and a timer output that changes while the Realm runs ends the
/// REC_ENTER (the Host injects the timer's virtual interrupt); an asserted
/// timer is masked at EL2 while the REC runs (TF-RMM's CNTVMASK rule).
#[test]
fn rec_enter_sysreg_and_timer_exits() {
    let w = World::new();
    let image = [[0u8; 4096], [0u8; 4096]];
    let (rd, rec) = build(&w, &image);
    w.ok(RMI_REALM_ACTIVATE, &[rd]);

    // SMCCC_VERSION is 1.2 and PSCI_FEATURES says so (Linux's SMCCC 1.1
    // conduit, which its Realm support checks first); SMCCC_ARCH_FEATURES.
    {
        let mut s = w.cpu.script.lock().unwrap();
        s.push(smc(&[0x8000_0000]));
        s.push(check(|r| assert_eq!(r.x[0], 0x1_0002)));
        s.push(smc(&[0x8400_000A, 0x8000_0000]));
        s.push(check(|r| assert_eq!(r.x[0], 0)));
        s.push(smc(&[0x8000_0001, 0x8000_8000]));
        s.push(check(|r| assert_eq!(r.x[0], u64::MAX, "ARCH_WORKAROUND_1: not implemented")));
        s.push(smc(&[0x8000_0001, 0x8000_0000]));
        s.push(check(|r| assert_eq!(r.x[0], 0)));
    }
    for _ in 0..4 {
        w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    }

    // MSR ICC_SGI1R_EL1, x7 (Op0 3, Op1 0, CRn 12, CRm 11, Op2 5; write).
    let iss = 3 << 20 | 5 << 17 | 12 << 10 | 11 << 1 | 7 << 5;
    w.cpu.script.lock().unwrap().push(Box::new(move |r: &mut Rec| {
        r.x[7] = 0x0100_0002;
        sync(0x18 << 26 | 1 << 25 | iss)
    }));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    let e = run_exit(&w);
    assert_eq!((e.exit_reason, e.gprs[0]), (RMI_EXIT_SYNC, 0x0100_0002));
    assert_eq!(e.esr, 0x18 << 26 | 1 << 25 | (iss & !(0x1f << 5)), "ISS without Rt");
    let pc = rec_of(&w, rec).pc;
    w.host_write(g(5), &RmiRecEnter::new_zeroed_enter());
    w.cpu.script.lock().unwrap().push(check(move |r| assert_eq!(r.pc, pc + 4)));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);

    // MRS x3, <trapped register>: the Host's gprs[0] lands in x3.
    w.cpu.script.lock().unwrap().push(Box::new(move |_: &mut Rec| sync(0x18 << 26 | 1 << 25 | 3 << 5 | 1)));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    assert_eq!(run_exit(&w).gprs[0], 0);
    let mut enter = RmiRecEnter::new_zeroed_enter();
    enter.gprs[0] = 0x77;
    w.host_write(g(5), &enter);
    let pc = rec_of(&w, rec).pc;
    w.cpu.script.lock().unwrap().push(check(move |r| assert_eq!((r.x[3], r.pc), (0x77, pc + 4))));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);

    // The virtual timer becomes asserted during an exit the RMM handles
    // itself (RSI_VERSION): REC_ENTER ends with an IRQ exit showing it.
    w.host_write(g(5), &RmiRecEnter::new_zeroed_enter());
    w.cpu.script.lock().unwrap().push(Box::new(|r: &mut Rec| {
        r.sysregs[Rec::CNTV_CTL] = 0b101; // ENABLE | ISTATUS
        r.x[0] = rsi::RSI_VERSION as u64;
        r.x[1] = rsi::RSI_ABI_VERSION;
        sync(ESR_SMC)
    }));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    let e = run_exit(&w);
    assert_eq!((e.exit_reason, e.cntv_ctl), (RMI_EXIT_IRQ, 0b101));
    assert_eq!(rec_of(&w, rec).timer_masks(), crate::rec::CNTHCTL_CNTVMASK, "masked while asserted");
    // Still asserted (the Host's interrupt pending): RSI calls do not exit.
    w.cpu.script.lock().unwrap().push(smc(&[rsi::RSI_VERSION as u64, rsi::RSI_ABI_VERSION]));
    w.cpu.script.lock().unwrap().push(Box::new(|r: &mut Rec| {
        // The Realm's handler masks it: retired, the Host hears of it.
        r.sysregs[Rec::CNTV_CTL] = 0b111;
        r.x[0] = rsi::RSI_VERSION as u64;
        sync(ESR_SMC)
    }));
    w.ok(RMI_REC_ENTER, &[rec, g(5)]);
    assert_eq!((run_exit(&w).exit_reason, run_exit(&w).cntv_ctl), (RMI_EXIT_IRQ, 0b111));
    assert_eq!(rec_of(&w, rec).timer_masks(), 0);
    assert!(w.cpu.script.lock().unwrap().is_empty());
}
