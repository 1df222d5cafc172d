//! `hostile_ns_storm` (issue J): the Normal world turns hostile.  Every
//! core fires [`CALLS_PER_CORE`] seeded random SMCs at spmc (FF-A) and rmm
//! (RMI) through TF-A — valid ids with random arguments, ids from their
//! ranges, random ids, addresses of every world's memory (`TARGETS`) — and
//! core 0 also fills its TX buffer with random and descriptor-shaped bytes
//! before the calls that read it.  Then the checks: the Normal world's calls
//! still get their answers on every core, echo echoes, a memory share round
//! trip with mp works, and rmm answers RMI_VERSION.
//!
//! Not sent: PSCI (we would power ourselves off), and direct requests to
//! mp, isolation and irq (test SPs whose commands spin, fault or arm timers
//! on purpose; such a request goes to echo instead).

use crate::checks::{ECHO, IRQ, ISOLATION, MP, Machine, check};
use shared::abi::ffa::{FuncId, fid};
use shared::abi::rmi;
use shared::ffa_client::{FfaClient, HYPERVISOR_ID};
use shared::smccc::Conduit;
use shared::storm::{self, CallMix, Storm};

/// Calls per core: 4 cores make 12,000.
pub const CALLS_PER_CORE: u64 = 3_000;
/// Normal-world pages nothing else uses: shared, lent, delegated at will.
pub const SCRATCH: u64 = 0xa000_0000;

/// What a hostile Normal world aims at: its scratch pages, the SPMC and the
/// SPs (Secure PAS), the SPMC manifest copy and the GPTs, rmm (Realm PAS),
/// MMIO, flash, beyond RAM, the top of the address space.
pub const TARGETS: &[u64] = &[
    SCRATCH,
    SCRATCH + 0x10_0000,
    0x0e10_0000,
    0x0e30_0000,
    0x0e40_0000,
    0x0e50_0000,
    0x0e60_0000,
    0x0eef_b000,
    0x0eef_c000,
    0x4010_0000,
    0x4080_0000,
    0x0800_0000,
    0x0900_0000,
    0x0000_0000,
    0x1_0000_0000,
    0xffff_ffff_f000,
];

/// Every FF-A and RMI id, and the SMCCC ones.
fn valid_ids() -> ([u32; 80], usize) {
    let mut ids = [0u32; 80];
    let mut n = 0;
    for id in storm::FFA_IDS.iter().chain(storm::RMI_IDS).chain(&[0x8000_0000, 0x8000_0001]) {
        if n < ids.len() {
            ids[n] = *id;
            n += 1;
        }
    }
    (ids, n)
}

fn forbidden(id: u32) -> bool {
    storm::is_psci(id)
}

/// Direct requests to our own test SPs go to echo (see the module doc).
fn aim(c: &mut storm::Call) {
    let f = c[0] as u32;
    if matches!(f, fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2) {
        let dst = (c[1] & 0xffff) as u16;
        if matches!(dst, MP | ISOLATION | IRQ) {
            c[1] = (c[1] & !0xffff) | ECHO as u64;
        }
    }
}

/// What the answers were.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub calls: u64,
    pub ffa_success: u64,
    pub ffa_error: u64,
    /// x0 = 0: RMI_SUCCESS (or SMCCC success).
    pub zero: u64,
    /// x0 = -1: SMCCC NOT_SUPPORTED.
    pub not_supported: u64,
    pub other: u64,
}

/// Calls that read the TX buffer.
fn reads_tx(f: u32) -> bool {
    matches!(
        f,
        fid::FFA_MSG_SEND2
    ) || [
        FuncId::MemDonate32, FuncId::MemDonate64, FuncId::MemLend32, FuncId::MemLend64, FuncId::MemShare32, FuncId::MemShare64,
        FuncId::MemRetrieveReq32, FuncId::MemRetrieveReq64, FuncId::MemFragTx,
    ]
    .iter()
    .any(|x| *x as u32 == f)
}

/// Random bytes, or a transaction descriptor with random fields and
/// constituents from `TARGETS` (deeper into the parser than noise).
fn fill_tx<M: Machine>(s: &mut Storm, m: &mut M, c: &mut storm::Call) {
    let mut buf = [0u8; 512];
    if s.below(2) == 0 {
        for chunk in buf.chunks_mut(8) {
            chunk.copy_from_slice(&s.arg().to_le_bytes());
        }
    } else {
        let receivers = 1 + s.below(3) as usize;
        let emad = if s.below(2) == 0 { 16 } else { 32 };
        let ranges = 1 + s.below(8) as usize;
        let comp = 48 + receivers * emad;
        buf[0..2].copy_from_slice(&(s.below(3) as u16).to_le_bytes());
        buf[2..4].copy_from_slice(&(s.arg() as u16 & 0x7f).to_le_bytes());
        buf[4..8].copy_from_slice(&(s.below(4) as u32).to_le_bytes());
        buf[8..16].copy_from_slice(&s.arg().to_le_bytes());
        buf[24..28].copy_from_slice(&(emad as u32).to_le_bytes());
        buf[28..32].copy_from_slice(&(receivers as u32).to_le_bytes());
        buf[32..36].copy_from_slice(&48u32.to_le_bytes());
        for r in 0..receivers {
            let e = 48 + r * emad;
            buf[e..e + 2].copy_from_slice(&(0x8001 + s.below(5) as u16).to_le_bytes());
            buf[e + 2] = s.below(16) as u8;
            buf[e + 4..e + 8].copy_from_slice(&(comp as u32).to_le_bytes());
        }
        let pages: u32 = (0..ranges).map(|_| 1 + s.below(4) as u32).sum();
        buf[comp..comp + 4].copy_from_slice(&pages.to_le_bytes());
        buf[comp + 4..comp + 8].copy_from_slice(&(ranges as u32).to_le_bytes());
        for k in 0..ranges {
            let at = comp + 16 + k * 16;
            if at + 16 > buf.len() {
                break;
            }
            buf[at..at + 8].copy_from_slice(&s.address().to_le_bytes());
            buf[at + 8..at + 12].copy_from_slice(&(1 + s.below(4) as u32).to_le_bytes());
        }
        let len = (comp + 16 + ranges * 16).min(buf.len()) as u64;
        // Lengths that match the descriptor, most of the time.
        if s.below(4) != 0 {
            c[1] = len;
            c[2] = len;
            c[3] = 0;
            c[4] = 0;
        }
    }
    m.write_tx(0, &buf);
}

/// Fires `n` calls of the storm seeded `seed`; with `m` (core 0) the TX
/// buffer is filled before each call that reads it.
pub fn fire<C: Conduit, M: Machine>(c: &C, seed: u64, n: u64, mut m: Option<&mut M>) -> Counts {
    let (ids, k) = valid_ids();
    let mix = CallMix { valid_ids: &ids[..k], id_range: storm::FFA_RANGE, addresses: TARGETS, forbidden: &forbidden };
    let mut s = Storm::new(seed, mix);
    let mut counts = Counts::default();
    for _ in 0..n {
        let mut call = s.next_call();
        aim(&mut call);
        if let Some(m) = m.as_deref_mut()
            && reads_tx(call[0] as u32)
        {
            fill_tx(&mut s, m, &mut call);
        }
        let mut a = [0u64; 17];
        a.copy_from_slice(&call[1..]);
        let r = c.call(call[0] as u32, a);
        counts.calls += 1;
        match r[0] {
            x if x == fid::FFA_SUCCESS_32 as u64 || x == fid::FFA_SUCCESS_64 as u64 => counts.ffa_success += 1,
            x if x == fid::FFA_ERROR as u64 => counts.ffa_error += 1,
            0 => counts.zero += 1,
            x if x as u32 == u32::MAX => counts.not_supported += 1,
            _ => counts.other += 1,
        }
    }
    counts
}

/// The seed from `quadrant.storm=<n>` (decimal or 0x hex), else 1.
pub fn seed_of(word: &str) -> u64 {
    let v = word.trim();
    v.strip_prefix("0x").map_or_else(|| v.parse().ok(), |h| u64::from_str_radix(h, 16).ok()).unwrap_or(1)
}

/// `hostile_ns_storm`: the storm on all cores, then the checks.
pub fn run_storm<C: Conduit, M: Machine>(c: &C, m: &mut M, seed: u64) {
    let ffa = FfaClient::new(c);
    let v = ffa.version(shared::ffa_client::REQUESTED_VERSION);
    let (rx, tx) = m.rx_tx();
    let mapped = ffa.rxtx_map(rx, tx, 1);
    check(format_args!("storm_setup"), v.is_ok() && mapped.is_ok(), format_args!("version {v:?}, rxtx {mapped:?}"));
    log::info!("storm: seed {seed:#x}, {CALLS_PER_CORE} calls on each of 4 cores");
    let start = m.counter();
    let mut started = [false; 4];
    for (cpu, s) in started.iter_mut().enumerate().skip(1) {
        *s = m.start_on(cpu, crate::checks::Job::Storm(seed.wrapping_add(cpu as u64))).is_ok();
    }
    let mine = fire(c, seed, CALLS_PER_CORE, Some(m));
    let mut total = mine.calls;
    let mut all_back = true;
    for cpu in 1..4 {
        match (started[cpu], m.wait_on(cpu)) {
            (true, Ok(n)) => total += n,
            _ => all_back = false,
        }
    }
    let secs = (m.counter() - start) / m.counter_freq().max(1);
    log::info!(
        "storm: core 0 {} calls: {} FFA_SUCCESS, {} FFA_ERROR, {} zero, {} NOT_SUPPORTED, {} other",
        mine.calls, mine.ffa_success, mine.ffa_error, mine.zero, mine.not_supported, mine.other
    );
    check(
        format_args!("storm_done"),
        all_back && total == 4 * CALLS_PER_CORE,
        format_args!("seed {seed:#x}: {total} calls on 4 cores in ~{secs} s"),
    );

    // Afterwards: our buffers afresh (the storm may have unmapped them),
    // then discovery as at boot (RXTX_MAP, PARTITION_INFO_GET: every SP listed).
    let _ = ffa.rx_release();
    let _ = ffa.rxtx_unmap(0);
    let (_, mp_uuid) = crate::checks::discover(&ffa, m);
    let remap: Result<(), ()> = Ok(());
    let id = ffa.id_get();
    let echo = ffa.direct_req64(HYPERVISOR_ID, ECHO, [1, 2, 3, 4, 5]);
    check(
        format_args!("storm_spmc_answers"),
        remap.is_ok() && id == Ok(0) && echo == Ok([1, 2, 3, 4, 5]),
        format_args!("id {id:?}, echo {echo:x?}"),
    );
    let shared = crate::memory::share_round_trip(c, m, &ffa, m.shared_page(), 1);
    check(format_args!("storm_memory_share_works"), shared, format_args!("share + mp retrieve/relinquish + reclaim"));
    let mut a = [0u64; 17];
    a[0] = rmi::RMI_ABI_VERSION;
    let r = c.call(rmi::RMI_VERSION, a);
    check(format_args!("storm_rmm_answers"), r[0] == 0 && r[1] == rmi::RMI_ABI_VERSION, format_args!("RMI_VERSION x0 {:#x} x1 {:#x}", r[0], r[1]));
    buffers_given_to_the_realm_world(c, m);
    rmm_parameters_outside_the_ns_pas(c);
    // Every core still makes its round trips (as spmc_direct_messaging's).
    let mut cores_ok = true;
    for cpu in 1..4 {
        cores_ok &= m.run_on(cpu, crate::checks::Job::Checks(mp_uuid)).is_ok();
    }
    check(format_args!("storm_every_core_answers"), cores_ok, format_args!("round trips on cores 1..3"));
}

/// A hostile Normal world maps its RX/TX buffers, then delegates them to
/// the Realm world (RMI_GRANULE_DELEGATE): spmc's next access to them must
/// fail gracefully (Hafnium answers ABORTED), not take spmc down.
fn buffers_given_to_the_realm_world<C: Conduit, M: Machine>(c: &C, m: &mut M) {
    let ffa = FfaClient::new(c);
    let (rx, tx) = m.rx_tx();
    let (srx, stx) = (SCRATCH + 0x20_0000, SCRATCH + 0x20_1000);
    let _ = ffa.rxtx_unmap(0);
    let mapped = ffa.rxtx_map(srx, stx, 1);
    let rmi = |f: u32, a0: u64| {
        let mut a = [0u64; 17];
        a[0] = a0;
        c.call(f, a)[0]
    };
    let d_rx = rmi(rmi::RMI_GRANULE_DELEGATE, srx);
    let d_tx = rmi(rmi::RMI_GRANULE_DELEGATE, stx);
    // spmc writes RX (PARTITION_INFO_GET) and reads TX (MEM_SHARE).
    let info = ffa.partition_info_get_all();
    let mut a = [0u64; 17];
    a[0] = 80;
    a[1] = 80;
    let share = c.call(FuncId::MemShare64 as u32, a);
    let u_rx = rmi(rmi::RMI_GRANULE_UNDELEGATE, srx);
    let u_tx = rmi(rmi::RMI_GRANULE_UNDELEGATE, stx);
    let unmapped = ffa.rxtx_unmap(0);
    let back = ffa.rxtx_map(rx, tx, 1);
    let echo = ffa.direct_req64(HYPERVISOR_ID, ECHO, [6, 7, 8, 9, 10]);
    check(
        format_args!("storm_buffers_in_realm_pas"),
        mapped.is_ok() && d_rx == 0 && d_tx == 0 && info.is_err() && share[0] == fid::FFA_ERROR as u64 && u_rx == 0 && u_tx == 0 && unmapped.is_ok() && back.is_ok() && echo == Ok([6, 7, 8, 9, 10]),
        format_args!(
            "map {mapped:?}, delegate {d_rx:#x} {d_tx:#x}, info {info:?}, share x0 {:#x} w2 {:#x}, undelegate {u_rx:#x} {u_tx:#x}, unmap {unmapped:?}, map back {back:?}, echo {echo:x?}",
            share[0], share[2]
        ),
    );
}

/// RMI_REALM_CREATE with a valid (delegated) RD whose parameters address
/// is Secure memory, then a Realm-PAS page: rmm must refuse both with
/// RMI_ERROR_INPUT (DEN0137 B4.3.9: params_ptr must be an NS granule) rather
/// than fault on its read, and still answer afterwards.
fn rmm_parameters_outside_the_ns_pas<C: Conduit>(c: &C) {
    let rmi_call = |f: u32, args: &[u64]| {
        let mut a = [0u64; 17];
        a[..args.len()].copy_from_slice(args);
        c.call(f, a)[0]
    };
    let (rd, params) = (SCRATCH + 0x30_0000, SCRATCH + 0x31_0000);
    let d1 = rmi_call(rmi::RMI_GRANULE_DELEGATE, &[rd]);
    let d2 = rmi_call(rmi::RMI_GRANULE_DELEGATE, &[params]);
    let secure = rmi_call(rmi::RMI_REALM_CREATE, &[rd, 0x0e30_0000]);
    let realm = rmi_call(rmi::RMI_REALM_CREATE, &[rd, params]);
    let u1 = rmi_call(rmi::RMI_GRANULE_UNDELEGATE, &[rd]);
    let u2 = rmi_call(rmi::RMI_GRANULE_UNDELEGATE, &[params]);
    let v = {
        let mut a = [0u64; 17];
        a[0] = rmi::RMI_ABI_VERSION;
        c.call(rmi::RMI_VERSION, a)
    };
    // RMI_ERROR_INPUT = 1 (status in bits 7:0).
    check(
        format_args!("storm_rmm_params_outside_ns"),
        d1 == 0 && d2 == 0 && secure & 0xff == 1 && realm & 0xff == 1 && u1 == 0 && u2 == 0 && v[0] == 0,
        format_args!("delegate {d1:#x} {d2:#x}, create with Secure params {secure:#x}, with Realm params {realm:#x}, undelegate {u1:#x} {u2:#x}, version {:#x}", v[0]),
    );
}

/// sps/isolation's storm command and its size (`hostile_sp_storm`).
const ISOLATION_STORM: u64 = 5;
pub const SP_STORM_CALLS: u64 = 12_000;

/// `hostile_sp_storm`: isolation (S-EL1) fires the storm at spmc inside one
/// direct request of ours; then every world answers as before.
pub fn run_sp_storm<C: Conduit, M: Machine>(c: &C, m: &mut M, seed: u64) {
    let ffa = FfaClient::new(c);
    let v = ffa.version(shared::ffa_client::REQUESTED_VERSION);
    let ping = ffa.direct_req64(HYPERVISOR_ID, ISOLATION, [0, 1, 2, 3, 4]);
    check(format_args!("sp_storm_setup"), v.is_ok() && ping == Ok([0, 1, 2, 3, 4]), format_args!("version {v:?}, isolation {ping:x?}"));
    log::info!("sp storm: seed {seed:#x}, {SP_STORM_CALLS} calls from isolation");
    let start = m.counter();
    let r = ffa.direct_req64(HYPERVISOR_ID, ISOLATION, [ISOLATION_STORM, seed, SP_STORM_CALLS, 0, 0]);
    let secs = (m.counter() - start) / m.counter_freq().max(1);
    check(
        format_args!("sp_storm_done"),
        matches!(r, Ok([0, n, ..]) if n == SP_STORM_CALLS),
        format_args!("seed {seed:#x}: [0, calls, FFA_SUCCESS, FFA_ERROR, other] = {r:x?} in ~{secs} s"),
    );
    // isolation itself, echo, discovery, memory sharing, every core.
    let again = ffa.direct_req64(HYPERVISOR_ID, ISOLATION, [0, 5, 6, 7, 8]);
    let echo = ffa.direct_req64(HYPERVISOR_ID, ECHO, [1, 2, 3, 4, 5]);
    check(format_args!("sp_storm_sps_answer"), again == Ok([0, 5, 6, 7, 8]) && echo == Ok([1, 2, 3, 4, 5]), format_args!("isolation {again:x?}, echo {echo:x?}"));
    let (_, mp_uuid) = crate::checks::discover(&ffa, m);
    let shared = crate::memory::share_round_trip(c, m, &ffa, m.shared_page(), 1);
    check(format_args!("sp_storm_memory_share_works"), shared, format_args!("share + mp retrieve/relinquish + reclaim"));
    let mut cores_ok = true;
    for cpu in 1..4 {
        cores_ok &= m.run_on(cpu, crate::checks::Job::Checks(mp_uuid)).is_ok();
    }
    check(format_args!("sp_storm_every_core_answers"), cores_ok, format_args!("round trips on cores 1..3"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_requests_aimed_at_test_sps_go_to_echo() {
        let mut c = [0u64; 18];
        c[0] = fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64;
        c[1] = MP as u64;
        aim(&mut c);
        assert_eq!(c[1], ECHO as u64);
        c[1] = 0x8005;
        aim(&mut c);
        assert_eq!(c[1], 0x8005);
    }

    #[test]
    fn seeds() {
        assert_eq!(seed_of("0x2a"), 42);
        assert_eq!(seed_of("42"), 42);
        assert_eq!(seed_of("x"), 1);
    }
}
