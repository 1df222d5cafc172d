//! `quadrant.rmi-tests`: every RMI command given input that must fail, each
//! answer checked against the exact RmiStatusCode (status and index,
//! DEN0137 RMM 1.0, RmiStatusCode) the command's failure conditions (its
//! "Failure conditions" in DEN0137, in the spec's order) give, then a look at the state that must not have changed.
//!
//! Fixture: a Realm in state New with RTTs at level 2 and 3 for
//! [`IPA_BASE`], one DATA granule at `IPA_BASE`, one REC; two spare
//! Delegated granules `a`, `b`; an Undelegated page `u` of ours.
//! "Nothing changed" is a [`Snapshot`]: RTT_READ_ENTRY of the entries the
//! cases aim at, REC_AUX_COUNT (the RD is still an RD), GRANULE_UNDELEGATE
//! of each in-use granule (must still fail: not Delegated), and round trips
//! that must still work (`a`/`b` undelegate then delegate again, `u`
//! delegate then undelegate).
//!
//! Lines: `rmi_bad_input <case>: ok <CMD> -> <status>, state unchanged`
//! or `... FAIL ...`, then `rmi_bad_input: <N> passed, <M> failed`.

use super::host::{IPA_BASE, PAGE, S2SZ, put, realm_params, rec_params};
use super::rmi::{Rmi, Ret, StatusName};
use super::{NsMemory, Pages, Report};
use shared::abi::rmi::*;
use shared::smccc::Conduit;

const INPUT: u64 = 1;
const REALM: u64 = 2;
const REC: u64 = 3;
const fn rtt(level: u64) -> u64 {
    4 | level << 8
}
const NOT_SUPPORTED: u64 = u64::MAX;

/// An address no DRAM bank holds (QEMU virt: RAM is 0x4000_0000 + 2 GiB).
pub const OUT_OF_RANGE: u64 = 0x10_0000_0000;
/// The RMM's own Realm PAS carve-out (TF-A qemu RMM_BASE): never the Host's.
pub const RMM_REGION: u64 = 0x4010_0000;
/// A protected IPA no RTT below level 1 covers.
const IPA_L1_ONLY: u64 = 0x8000_0000;
/// The first unprotected IPA.
const IPA_UNPROT: u64 = 1 << (S2SZ - 1);

/// The granules of the fixture.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fixture {
    pub rd: u64,
    pub rtt: [u64; 3],
    pub data: u64,
    pub rec: u64,
    pub a: u64,
    pub b: u64,
    pub u: u64,
    /// NS pages with parameters for the REALM_CREATE/REC_CREATE cases.
    pub p_s2sz: u64,
    pub p_vmid: u64,
    pub p_rtt_undelegated: u64,
    pub p_rec_good: u64,
    pub p_rec_mpidr: u64,
    /// REALM_CREATE parameters valid but for a reserved num_bps / num_wps
    /// of 0, or a num_bps beyond RMI_FEATURES'.
    pub p_bps_zero: u64,
    pub p_wps_zero: u64,
    pub p_bps_too_many: u64,
    /// REC_CREATE parameters valid (MPIDR 1, the next) but for num_aux,
    /// one more than REC_AUX_COUNT.
    pub p_rec_num_aux: u64,
    pub run: u64,
}

/// One case: a call and the exact x0 it must return.
pub struct Case {
    pub name: &'static str,
    pub fid: u32,
    pub args: [u64; 5],
    pub expect: u64,
}

fn case(name: &'static str, fid: u32, a: &[u64], expect: u64) -> Case {
    let mut args = [0; 5];
    args[..a.len()].copy_from_slice(a);
    Case { name, fid, args, expect }
}

/// The table (in command order of B4.3).
pub fn cases(f: &Fixture) -> [Case; 56] {
    let Fixture { rd, data, rec, a, b, u, .. } = *f;
    let ipa1 = IPA_BASE + PAGE;
    [
        case("version_unsupported", RMI_VERSION, &[version(2, 0)], INPUT),
        case("unknown_function", 0xC400_0170, &[], NOT_SUPPORTED),
        case("delegate_misaligned", RMI_GRANULE_DELEGATE, &[a + 0x10], INPUT),
        case("delegate_out_of_range", RMI_GRANULE_DELEGATE, &[OUT_OF_RANGE], INPUT),
        case("delegate_rmm_region", RMI_GRANULE_DELEGATE, &[RMM_REGION], INPUT),
        case("delegate_delegated", RMI_GRANULE_DELEGATE, &[a], INPUT),
        case("delegate_rd", RMI_GRANULE_DELEGATE, &[rd], INPUT),
        case("undelegate_misaligned", RMI_GRANULE_UNDELEGATE, &[a + 8], INPUT),
        case("undelegate_undelegated", RMI_GRANULE_UNDELEGATE, &[u], INPUT),
        case("undelegate_out_of_range", RMI_GRANULE_UNDELEGATE, &[OUT_OF_RANGE], INPUT),
        case("undelegate_rd", RMI_GRANULE_UNDELEGATE, &[rd], INPUT),
        case("undelegate_data", RMI_GRANULE_UNDELEGATE, &[data], INPUT),
        case("realm_create_rd_undelegated", RMI_REALM_CREATE, &[u, f.p_s2sz], INPUT),
        case("realm_create_rd_misaligned", RMI_REALM_CREATE, &[a + 0x100, f.p_vmid], INPUT),
        case("realm_create_params_delegated", RMI_REALM_CREATE, &[a, b], INPUT),
        case("realm_create_s2sz_unsupported", RMI_REALM_CREATE, &[a, f.p_s2sz], INPUT),
        case("realm_create_rtt_undelegated", RMI_REALM_CREATE, &[a, f.p_rtt_undelegated], INPUT),
        case("realm_create_vmid_in_use", RMI_REALM_CREATE, &[a, f.p_vmid], INPUT),
        case("realm_create_num_bps_zero", RMI_REALM_CREATE, &[a, f.p_bps_zero], INPUT),
        case("realm_create_num_wps_zero", RMI_REALM_CREATE, &[a, f.p_wps_zero], INPUT),
        case("realm_create_num_bps_above_features", RMI_REALM_CREATE, &[a, f.p_bps_too_many], INPUT),
        case("realm_activate_not_rd", RMI_REALM_ACTIVATE, &[a], INPUT),
        case("realm_destroy_live", RMI_REALM_DESTROY, &[rd], REALM),
        case("realm_destroy_not_rd", RMI_REALM_DESTROY, &[rec], INPUT),
        case("rec_create_rec_undelegated", RMI_REC_CREATE, &[rd, u, f.p_rec_good], INPUT),
        case("rec_create_params_delegated", RMI_REC_CREATE, &[rd, a, b], INPUT),
        case("rec_create_mpidr_not_next", RMI_REC_CREATE, &[rd, a, f.p_rec_mpidr], INPUT),
        case("rec_create_rd_is_rec", RMI_REC_CREATE, &[rec, a, f.p_rec_good], INPUT),
        case("rec_create_num_aux_not_aux_count", RMI_REC_CREATE, &[rd, a, f.p_rec_num_aux], INPUT),
        case("rec_destroy_not_rec", RMI_REC_DESTROY, &[rd], INPUT),
        case("rec_aux_count_not_rd", RMI_REC_AUX_COUNT, &[u], INPUT),
        case("rec_enter_not_rec", RMI_REC_ENTER, &[rd, f.run], INPUT),
        case("rec_enter_run_delegated", RMI_REC_ENTER, &[rec, a], INPUT),
        case("rec_enter_realm_new", RMI_REC_ENTER, &[rec, f.run], REALM),
        case("psci_complete_nothing_pending", RMI_PSCI_COMPLETE, &[rec, rec, 0], INPUT),
        case("rtt_create_level_too_deep", RMI_RTT_CREATE, &[rd, a, IPA_BASE, 4], INPUT),
        case("rtt_create_start_level", RMI_RTT_CREATE, &[rd, a, 0, 1], INPUT),
        case("rtt_create_ipa_misaligned", RMI_RTT_CREATE, &[rd, a, ipa1, 3], INPUT),
        case("rtt_create_ipa_out_of_range", RMI_RTT_CREATE, &[rd, a, 1 << S2SZ, 2], INPUT),
        case("rtt_create_rtt_undelegated", RMI_RTT_CREATE, &[rd, u, IPA_L1_ONLY, 2], INPUT),
        case("rtt_create_exists", RMI_RTT_CREATE, &[rd, a, IPA_BASE, 3], rtt(2)),
        case("rtt_create_walk_short", RMI_RTT_CREATE, &[rd, a, IPA_L1_ONLY, 3], rtt(1)),
        case("rtt_destroy_live_l3", RMI_RTT_DESTROY, &[rd, IPA_BASE, 3], rtt(3)),
        case("rtt_destroy_live_l2", RMI_RTT_DESTROY, &[rd, IPA_BASE, 2], rtt(2)),
        case("rtt_destroy_walk_short", RMI_RTT_DESTROY, &[rd, IPA_L1_ONLY, 3], rtt(1)),
        case("rtt_fold_not_homogeneous", RMI_RTT_FOLD, &[rd, IPA_BASE, 3], rtt(3)),
        case("rtt_read_entry_misaligned", RMI_RTT_READ_ENTRY, &[rd, IPA_BASE + 0x10, 3], INPUT),
        case("rtt_read_entry_level_above_start", RMI_RTT_READ_ENTRY, &[rd, IPA_BASE, 0], INPUT),
        case("rtt_map_unprotected_protected_ipa", RMI_RTT_MAP_UNPROTECTED, &[rd, ipa1, 3, 0x4800_0000], INPUT),
        case("rtt_map_unprotected_walk_short", RMI_RTT_MAP_UNPROTECTED, &[rd, IPA_UNPROT, 3, 0x4800_0000], rtt(1)),
        case("rtt_unmap_unprotected_not_mapped", RMI_RTT_UNMAP_UNPROTECTED, &[rd, IPA_UNPROT, 1], rtt(1)),
        case("rtt_init_ripas_empty_range", RMI_RTT_INIT_RIPAS, &[rd, IPA_BASE, IPA_BASE], INPUT),
        case("rtt_init_ripas_assigned", RMI_RTT_INIT_RIPAS, &[rd, IPA_BASE, ipa1], rtt(3)),
        case("rtt_set_ripas_nothing_pending", RMI_RTT_SET_RIPAS, &[rd, rec, IPA_BASE, ipa1], REC),
        case("data_create_assigned", RMI_DATA_CREATE, &[rd, a, IPA_BASE, u, 0], rtt(3)),
        case("data_create_walk_short", RMI_DATA_CREATE, &[rd, a, IPA_L1_ONLY, u, 0], rtt(1)),
    ]
}

/// Further cases (kept apart so the table above stays a fixed-size array).
pub fn more_cases(f: &Fixture) -> [Case; 8] {
    let Fixture { rd, rec, a, b, u, .. } = *f;
    let rtt3 = f.rtt[2];
    let ipa1 = IPA_BASE + PAGE;
    [
        case("data_create_src_delegated", RMI_DATA_CREATE, &[rd, a, ipa1, b, 0], INPUT),
        case("data_create_bad_flags", RMI_DATA_CREATE, &[rd, a, ipa1, u, 2], INPUT),
        case("data_create_unprotected_ipa", RMI_DATA_CREATE, &[rd, a, IPA_UNPROT, u, 0], INPUT),
        case("data_create_data_is_rtt", RMI_DATA_CREATE, &[rd, rtt3, ipa1, u, 0], INPUT),
        case("data_create_unknown_assigned", RMI_DATA_CREATE_UNKNOWN, &[rd, a, IPA_BASE], rtt(3)),
        case("data_destroy_unassigned", RMI_DATA_DESTROY, &[rd, ipa1], rtt(3)),
        case("data_destroy_walk_short", RMI_DATA_DESTROY, &[rd, IPA_L1_ONLY], rtt(1)),
        case("rec_destroy_misaligned", RMI_REC_DESTROY, &[rec + 0x800], INPUT),
    ]
}

/// What must be the same before and after every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    entries: [Ret; 6],
    aux: Ret,
    in_use: [u64; 6],
    round_trips: [u64; 6],
}

pub fn snapshot<C: Conduit>(rmi: &Rmi<C>, f: &Fixture) -> Snapshot {
    let e = |ipa, level| rmi.rtt_read_entry(f.rd, ipa, level);
    let entries = [e(IPA_BASE, 3), e(IPA_BASE + PAGE, 3), e(IPA_BASE, 2), e(IPA_L1_ONLY, 1), e(IPA_UNPROT, 1), e(0, 1)];
    let aux = rmi.rec_aux_count(f.rd);
    let mut in_use = [0; 6];
    for (i, g) in [f.rd, f.rtt[0], f.rtt[1], f.rtt[2], f.data, f.rec].into_iter().enumerate() {
        in_use[i] = rmi.granule_undelegate(g).x0;
    }
    let round_trips = [
        rmi.granule_undelegate(f.a).x0,
        rmi.granule_delegate(f.a).x0,
        rmi.granule_undelegate(f.b).x0,
        rmi.granule_delegate(f.b).x0,
        rmi.granule_delegate(f.u).x0,
        rmi.granule_undelegate(f.u).x0,
    ];
    Snapshot { entries, aux, in_use, round_trips }
}

impl Snapshot {
    /// Whether the fixture is as built: entries readable, in-use granules
    /// refusing undelegation, round trips succeeding.
    pub fn sane(&self) -> bool {
        self.entries.iter().all(|r| r.ok()) && self.aux.ok() && self.in_use.iter().all(|&x| x == INPUT) && self.round_trips.iter().all(|&x| x == 0)
    }
}

/// Builds the fixture; `Err` names the step that failed.
pub fn setup<C: Conduit, M: NsMemory>(rmi: &Rmi<C>, mem: &M, pages: &mut Pages) -> Result<Fixture, (&'static str, Ret)> {
    let none = Ret { x0: u64::MAX, x: [0; 4] };
    let mut take = || pages.take().ok_or(("NS pages", none));
    let mut f = Fixture { rd: take()?, rtt: [take()?, take()?, take()?], data: take()?, rec: take()?, a: take()?, b: take()?, u: take()?, ..Default::default() };
    f.p_s2sz = take()?;
    f.p_vmid = take()?;
    f.p_rtt_undelegated = take()?;
    f.p_rec_good = take()?;
    f.p_rec_mpidr = take()?;
    f.p_bps_zero = take()?;
    f.p_wps_zero = take()?;
    f.p_bps_too_many = take()?;
    f.p_rec_num_aux = take()?;
    f.run = take()?;
    let params = take()?;
    let ok = |step, r: Ret| if r.ok() { Ok(r) } else { Err((step, r)) };
    for g in [f.rd, f.rtt[0], f.rtt[1], f.rtt[2], f.data, f.rec, f.a, f.b] {
        ok("GRANULE_DELEGATE", rmi.granule_delegate(g))?;
    }
    mem.write(f.u, &[0u8; 4096]);
    mem.write(params, &realm_params(f.rtt[0]));
    ok("REALM_CREATE", rmi.realm_create(f.rd, params))?;
    ok("RTT_CREATE 2", rmi.rtt_create(f.rd, f.rtt[1], IPA_BASE, 2))?;
    ok("RTT_CREATE 3", rmi.rtt_create(f.rd, f.rtt[2], IPA_BASE, 3))?;
    ok("DATA_CREATE", rmi.data_create(f.rd, f.data, IPA_BASE, f.u, RMI_NO_MEASURE_CONTENT))?;
    // The fixture's REC takes no auxiliary granules: written for an RMM
    // whose REC_AUX_COUNT is 0 (rmm; docs/rmm.md).
    let naux = rmi.rec_aux_count(f.rd);
    if !naux.ok() || naux.x(1) != 0 {
        return Err(("REC_AUX_COUNT is not 0", naux));
    }
    mem.write(params, &rec_params(&[]));
    ok("REC_CREATE", rmi.rec_create(f.rd, f.rec, params))?;
    // Parameter pages for the failing creates.
    let mut p = realm_params(f.b);
    put(&mut p, 0x008, 64); // s2sz beyond any RMM's
    mem.write(f.p_s2sz, &p);
    mem.write(f.p_vmid, &realm_params(f.b)); // VMID 1: the fixture's
    let mut p = realm_params(f.u); // rtt_base Undelegated
    put(&mut p, 0x800, 7);
    mem.write(f.p_rtt_undelegated, &p);
    // VMID 7 (free) and rtt_base b (Delegated): only the named field is wrong.
    for (page, off, v) in [(f.p_bps_zero, 0x018, 0), (f.p_wps_zero, 0x020, 0), (f.p_bps_too_many, 0x018, 0x3f)] {
        let mut p = realm_params(f.b);
        put(&mut p, 0x800, 7);
        put(&mut p, off, v);
        mem.write(page, &p);
    }
    let mut p = rec_params(&[f.b]); // one aux granule where REC_AUX_COUNT is 0
    put(&mut p, 0x100, 1); // MPIDR 1: the next RecIndex
    mem.write(f.p_rec_num_aux, &p);
    mem.write(f.p_rec_good, &rec_params(&[])); // MPIDR 0: taken, next is 1
    let mut p = rec_params(&[]);
    put(&mut p, 0x100, 5); // MPIDR 5: not the next RecIndex
    mem.write(f.p_rec_mpidr, &p);
    mem.write(f.run, &[0u8; 4096]);
    Ok(f)
}

/// Destroys the fixture and undelegates everything; returns the first failure.
pub fn teardown<C: Conduit>(rmi: &Rmi<C>, f: &Fixture) -> Result<(), (&'static str, Ret)> {
    let ok = |step, r: Ret| if r.ok() { Ok(r) } else { Err((step, r)) };
    ok("DATA_DESTROY", rmi.data_destroy(f.rd, IPA_BASE))?;
    ok("REC_DESTROY", rmi.rec_destroy(f.rec))?;
    ok("RTT_DESTROY 3", rmi.rtt_destroy(f.rd, IPA_BASE, 3))?;
    ok("RTT_DESTROY 2", rmi.rtt_destroy(f.rd, IPA_BASE, 2))?;
    ok("REALM_DESTROY", rmi.realm_destroy(f.rd))?;
    for g in [f.rd, f.rtt[0], f.rtt[1], f.rtt[2], f.data, f.rec, f.a, f.b] {
        ok("GRANULE_UNDELEGATE", rmi.granule_undelegate(g))?;
    }
    Ok(())
}

fn fid_name(fid: u32) -> &'static str {
    match fid {
        RMI_VERSION => "RMI_VERSION",
        RMI_GRANULE_DELEGATE => "GRANULE_DELEGATE",
        RMI_GRANULE_UNDELEGATE => "GRANULE_UNDELEGATE",
        RMI_DATA_CREATE => "DATA_CREATE",
        RMI_DATA_CREATE_UNKNOWN => "DATA_CREATE_UNKNOWN",
        RMI_DATA_DESTROY => "DATA_DESTROY",
        RMI_REALM_ACTIVATE => "REALM_ACTIVATE",
        RMI_REALM_CREATE => "REALM_CREATE",
        RMI_REALM_DESTROY => "REALM_DESTROY",
        RMI_REC_CREATE => "REC_CREATE",
        RMI_REC_DESTROY => "REC_DESTROY",
        RMI_REC_ENTER => "REC_ENTER",
        RMI_RTT_CREATE => "RTT_CREATE",
        RMI_RTT_DESTROY => "RTT_DESTROY",
        RMI_RTT_MAP_UNPROTECTED => "RTT_MAP_UNPROTECTED",
        RMI_RTT_READ_ENTRY => "RTT_READ_ENTRY",
        RMI_RTT_UNMAP_UNPROTECTED => "RTT_UNMAP_UNPROTECTED",
        RMI_PSCI_COMPLETE => "PSCI_COMPLETE",
        RMI_FEATURES => "FEATURES",
        RMI_RTT_FOLD => "RTT_FOLD",
        RMI_REC_AUX_COUNT => "REC_AUX_COUNT",
        RMI_RTT_INIT_RIPAS => "RTT_INIT_RIPAS",
        RMI_RTT_SET_RIPAS => "RTT_SET_RIPAS",
        _ => "unknown id",
    }
}

/// Runs the table; returns (passed, failed).
pub fn run<C: Conduit, M: NsMemory>(c: &C, mem: &M, pages: &mut Pages, out: &mut dyn Report) -> (u32, u32) {
    let rmi = Rmi::new(c);
    let f = match setup(&rmi, mem, pages) {
        Ok(f) => f,
        Err((step, r)) => {
            out.line(format_args!("rmi_bad_input setup: FAIL {} -> {}", step, StatusName(r.x0)));
            out.line(format_args!("rmi_bad_input: 0 passed, 1 failed"));
            return (0, 1);
        }
    };
    let (mut passed, mut failed) = (0u32, 0u32);
    let mut before = snapshot(&rmi, &f);
    if !before.sane() {
        out.line(format_args!("rmi_bad_input fixture: FAIL state not as built: {:?}", before));
        failed += 1;
    }
    for c in cases(&f).iter().chain(more_cases(&f).iter()) {
        let r = rmi.call(c.fid, &c.args);
        let after = snapshot(&rmi, &f);
        let name = fid_name(c.fid);
        match (r.x0 == c.expect, after == before) {
            (true, true) => {
                passed += 1;
                out.line(format_args!("rmi_bad_input {}: ok {} -> {}, state unchanged", c.name, name, StatusName(r.x0)));
            }
            (status_ok, same) => {
                failed += 1;
                out.line(format_args!(
                    "rmi_bad_input {}: FAIL {} -> {} (expected {}){}",
                    c.name,
                    name,
                    StatusName(r.x0),
                    StatusName(c.expect),
                    if same { "" } else { ", state CHANGED" }
                ));
                let _ = status_ok;
                before = after;
            }
        }
    }
    // The same Realm made Active: REC_ENTER with answers no exit asked for
    // (its first entry: there was no exit yet), and a GIC state the Host may
    // not set.  RMI_ERROR_REC each, and the REC never runs.
    let act = rmi.call(RMI_REALM_ACTIVATE, &[f.rd]);
    if act.x0 != 0 {
        failed += 1;
        out.line(format_args!("rmi_bad_input realm_activate: FAIL REALM_ACTIVATE -> {}", StatusName(act.x0)));
    } else {
        before = snapshot(&rmi, &f);
        for (name, flags, gicv3_hcr) in [
            ("rec_enter_emul_mmio_without_mmio_exit", RMI_REC_ENTER_EMUL_MMIO, 0),
            ("rec_enter_inject_sea_without_abort_exit", RMI_REC_ENTER_INJECT_SEA, 0),
            ("rec_enter_both_without_abort_exit", RMI_REC_ENTER_INJECT_SEA | RMI_REC_ENTER_EMUL_MMIO, 0),
            ("rec_enter_gicv3_hcr_reserved_bits", 0, 1u64 << 31),
        ] {
            let mut enter = super::host::rec_enter(flags, &[]);
            put(&mut enter, 0x300, gicv3_hcr);
            mem.write(f.run, &enter);
            let r = rmi.rec_enter(f.rec, f.run);
            let same = snapshot(&rmi, &f) == before;
            if r.x0 == REC && same {
                passed += 1;
                out.line(format_args!("rmi_bad_input {}: ok REC_ENTER -> {}, state unchanged", name, StatusName(r.x0)));
            } else {
                failed += 1;
                out.line(format_args!("rmi_bad_input {}: FAIL REC_ENTER -> {} (expected {}){}", name, StatusName(r.x0), StatusName(REC), if same { "" } else { ", state CHANGED" }));
            }
        }
    }
    match teardown(&rmi, &f) {
        Ok(()) => out.line(format_args!("rmi_bad_input teardown: ok")),
        Err((step, r)) => {
            failed += 1;
            out.line(format_args!("rmi_bad_input teardown: FAIL {} -> {}", step, StatusName(r.x0)));
        }
    }
    out.line(format_args!("rmi_bad_input: {} passed, {} failed", passed, failed));
    (passed, failed)
}
