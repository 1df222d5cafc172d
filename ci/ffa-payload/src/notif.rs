//! `spmc_notifications` and `spmc_indirect_messaging` (issue 11 items 2-3):
//! every notification ABI and FFA_MSG_SEND2 from the Normal world, with mp
//! (`notification-support`, indirect messaging) as the Secure-side peer
//! driven by direct requests (sps/mp `CMD_FFA`, `CMD_MAP`, `CMD_READ`,
//! `CMD_SEND`), each error path followed by a valid call, and the Schedule
//! Receiver Interrupt taken at our GIC CPU interface after each SET or
//! SEND2 (polled with ICC_IAR1_EL1, as the timer in `spmc_interrupts`).

use crate::checks::{ECHO, MP, Machine, Shown, check, discover, echo_ok, negotiate};
use shared::abi::ffa::{FfaError, fid};
use shared::ffa_client::{CallError, FfaClient, HYPERVISOR_ID};
use shared::smccc::Conduit;

/// sps/mp commands (x3).
const MP_FFA: u64 = 16;
const MP_MAP: u64 = 17;
const MP_READ: u64 = 18;
const MP_SEND: u64 = 19;
const MP_LAST_RUN: u64 = 20;
/// The SRI's id as spmc reports it (Hafnium's HF_SCHEDULE_RECEIVER_INTID).
const SRI_INTID: u32 = 8;
/// FFA_FEATURES feature ids (DEN0077 v1.2, FFA_FEATURES).
const FEAT_NPI: u64 = 1;
const FEAT_SRI: u64 = 2;
const FEAT_MEI: u64 = 3;
/// FFA_NOTIFICATION_GET flags.
const GET_SP: u64 = 1;
const GET_VM: u64 = 2;
const GET_SPM: u64 = 4;
const SUCCESS_32: u64 = fid::FFA_SUCCESS_32 as u64;
const SUCCESS_64: u64 = fid::FFA_SUCCESS_64 as u64;
const ERROR: u64 = fid::FFA_ERROR as u64;
const HEADER: usize = 40;

fn code(e: FfaError) -> u64 {
    e as i32 as u32 as u64
}

/// A call with w1..w4 from us; all 18 registers of the answer.
fn raw<C: Conduit>(ffa: &FfaClient<C>, f: u32, w: &[u64]) -> [u64; 18] {
    let mut r = [0u64; 18];
    r[0] = f as u64;
    r[1..1 + w.len()].copy_from_slice(w);
    ffa.call_regs(&r)
}

fn is_err(r: &[u64; 18], e: FfaError) -> bool {
    r[0] == ERROR && r[2] == code(e)
}

/// mp makes FF-A call `f` (w1, w2, bitmap as w3/w4): `[x0, w2|w3<<32, w4|w5<<32, w6, w7]`.
fn mp_ffa<C: Conduit>(ffa: &FfaClient<C>, f: u32, w1: u64, w2: u64, bitmap: u64) -> Result<[u64; 5], CallError> {
    ffa.direct_req64(HYPERVISOR_ID, MP, [MP_FFA, f as u64, w1, w2, bitmap])
}

fn mp_ok(r: &Result<[u64; 5], CallError>) -> bool {
    matches!(r, Ok(w) if w[0] == SUCCESS_32)
}

fn mp_err(r: &Result<[u64; 5], CallError>, e: FfaError) -> bool {
    matches!(r, Ok(w) if w[0] == ERROR && w[1] & 0xffff_ffff == code(e))
}

/// One error case from us: `r` must be FFA_ERROR `want`, and echo works after.
fn ns_error<C: Conduit>(ffa: &FfaClient<C>, name: &str, r: [u64; 18], want: FfaError, seed: u64) {
    let after = echo_ok(ffa, seed);
    check(format_args!("{name}"), is_err(&r, want) && after, format_args!("x0 {:#x} w2 {:#x} (want {want:?}), then echo {after}", r[0], r[2]));
}

/// One error case made by mp: its call must fail with `want`, and echo works after.
fn sp_error<C: Conduit>(ffa: &FfaClient<C>, name: &str, r: Result<[u64; 5], CallError>, want: FfaError, seed: u64) {
    let after = echo_ok(ffa, seed);
    check(format_args!("{name}"), mp_err(&r, want) && after, format_args!("{} (want {want:?}), then echo {after}", Shown(&r)));
}

/// The SRI reached us: ICC_IAR1_EL1 gives SGI 8 (bounded wait: it was pended
/// before the call returned).
fn took_sri<M: Machine>(m: &mut M) -> Option<u32> {
    let bound = m.counter_freq();
    m.ns_interrupt_ack(bound)
}

/// `spmc_notifications`.
pub fn run_notifications<C: Conduit, M: Machine>(c: &C, m: &mut M) {
    let ffa = FfaClient::new(c);
    if !negotiate(&ffa) {
        return;
    }
    let _ = discover(&ffa, m);
    m.ns_interrupts_init();
    m.ns_interrupt_enable(SRI_INTID);

    // FFA_FEATURES feature ids: the SRI for us; NPI and MEI are SPs'.
    let r = raw(&ffa, fid::FFA_FEATURES, &[FEAT_SRI]);
    check(format_args!("features_sri"), r[0] == SUCCESS_32 && r[2] == SRI_INTID as u64, format_args!("x0 {:#x} w2 {}", r[0], r[2]));
    let npi = raw(&ffa, fid::FFA_FEATURES, &[FEAT_NPI]);
    let mei = raw(&ffa, fid::FFA_FEATURES, &[FEAT_MEI]);
    let bad = raw(&ffa, fid::FFA_FEATURES, &[0x100 | FEAT_SRI]);
    check(
        format_args!("features_npi_mei_not_for_ns"),
        is_err(&npi, FfaError::NotSupported) && is_err(&mei, FfaError::NotSupported) && is_err(&bad, FfaError::NotSupported),
        format_args!("npi w2 {:#x}, mei w2 {:#x}, 0x102 w2 {:#x}", npi[2], mei[2], bad[2]),
    );
    let npi = mp_ffa(&ffa, fid::FFA_FEATURES, FEAT_NPI, 0, 0);
    let mei = mp_ffa(&ffa, fid::FFA_FEATURES, FEAT_MEI, 0, 0);
    let sri = mp_ffa(&ffa, fid::FFA_FEATURES, FEAT_SRI, 0, 0);
    check(
        format_args!("sp_features_npi_mei"),
        matches!(npi, Ok(w) if w[0] == SUCCESS_32 && w[1] == 5) && matches!(mei, Ok(w) if w[0] == SUCCESS_32 && w[1] == 4) && mp_err(&sri, FfaError::NotSupported),
        format_args!("npi {}, mei {}, sri {}", Shown(&npi), Shown(&mei), Shown(&sri)),
    );

    // BITMAP_CREATE/DESTROY for us (endpoint 0).
    let create = fid::FFA_NOTIFICATION_BITMAP_CREATE;
    let destroy = fid::FFA_NOTIFICATION_BITMAP_DESTROY;
    ns_error(&ffa, "err_bitmap_destroy_none", raw(&ffa, destroy, &[0]), FfaError::Denied, 1);
    ns_error(&ffa, "err_bitmap_create_secure_id", raw(&ffa, create, &[MP as u64, 4]), FfaError::InvalidParameters, 2);
    // A VM of ours (id 3): its own bitmaps, DENIED twice, destroyed again.
    let vm = raw(&ffa, create, &[3, 2]);
    ns_error(&ffa, "err_bitmap_create_vm_twice", raw(&ffa, create, &[3, 2]), FfaError::Denied, 3);
    let gone = raw(&ffa, destroy, &[3]);
    check(format_args!("bitmap_create_destroy_vm"), vm[0] == SUCCESS_32 && gone[0] == SUCCESS_32, format_args!("create x0 {:#x} w2 {:#x}, destroy x0 {:#x} w2 {:#x}", vm[0], vm[2], gone[0], gone[2]));
    ns_error(&ffa, "err_bitmap_create_vcpus", raw(&ffa, create, &[0, 100]), FfaError::InvalidParameters, 4);
    let r = raw(&ffa, create, &[0, 4]);
    check(format_args!("bitmap_create"), r[0] == SUCCESS_32, format_args!("x0 {:#x} w2 {:#x}", r[0], r[2]));
    ns_error(&ffa, "err_bitmap_create_twice", raw(&ffa, create, &[0, 4]), FfaError::Denied, 5);
    sp_error(&ffa, "err_bitmap_create_from_sp", mp_ffa(&ffa, create, 0, 4, 0), FfaError::NotSupported, 6);

    // mp binds bit 0 (global) and bit 1 (per-vCPU) to us as sender.
    let bind = fid::FFA_NOTIFICATION_BIND;
    let unbind = fid::FFA_NOTIFICATION_UNBIND;
    let mp_rx = MP as u64;
    let g = mp_ffa(&ffa, bind, mp_rx, 0, 1);
    let v = mp_ffa(&ffa, bind, mp_rx, 1, 2);
    check(format_args!("sp_bind"), mp_ok(&g) && mp_ok(&v), format_args!("global {}, per-vCPU {}", Shown(&g), Shown(&v)));
    sp_error(&ffa, "err_bind_bound", mp_ffa(&ffa, bind, mp_rx, 0, 1), FfaError::Denied, 7);
    sp_error(&ffa, "err_bind_reserved_flags", mp_ffa(&ffa, bind, mp_rx, 2, 4), FfaError::InvalidParameters, 8);
    sp_error(&ffa, "err_bind_no_such_sender", mp_ffa(&ffa, bind, 0x8123 << 16 | mp_rx, 0, 4), FfaError::InvalidParameters, 9);
    sp_error(&ffa, "err_bind_other_receiver", mp_ffa(&ffa, bind, ECHO as u64, 0, 4), FfaError::InvalidParameters, 10);
    sp_error(&ffa, "err_unbind_not_bound", mp_ffa(&ffa, unbind, mp_rx, 0, 4), FfaError::Denied, 11);

    // SET from us: errors first, then a global one and the SRI.
    let set = fid::FFA_NOTIFICATION_SET;
    ns_error(&ffa, "err_set_not_bound", raw(&ffa, set, &[mp_rx, 0, 1 << 5, 0]), FfaError::Denied, 12);
    ns_error(&ffa, "err_set_wrong_sender", raw(&ffa, set, &[(ECHO as u64) << 16 | mp_rx, 0, 1, 0]), FfaError::InvalidParameters, 13);
    ns_error(&ffa, "err_set_global_as_per_vcpu", raw(&ffa, set, &[mp_rx, 1, 1, 0]), FfaError::InvalidParameters, 14);
    ns_error(&ffa, "err_set_no_such_vcpu", raw(&ffa, set, &[mp_rx, 1 | 4 << 16, 2, 0]), FfaError::InvalidParameters, 15);
    ns_error(&ffa, "err_set_reserved_flags", raw(&ffa, set, &[mp_rx, 4, 1, 0]), FfaError::InvalidParameters, 16);
    ns_error(&ffa, "err_set_no_notification_support", raw(&ffa, set, &[ECHO as u64, 0, 1, 0]), FfaError::InvalidParameters, 17);
    let r = raw(&ffa, set, &[mp_rx, 0, 1, 0]);
    let sri = took_sri(m);
    check(format_args!("set_global_sri"), r[0] == SUCCESS_32 && sri == Some(SRI_INTID), format_args!("x0 {:#x} w2 {:#x}, took {:?}", r[0], r[2], sri));

    // INFO_GET: mp, one global list, once.
    let info = raw(&ffa, fid::FFA_NOTIFICATION_INFO_GET_64, &[]);
    let again = raw(&ffa, fid::FFA_NOTIFICATION_INFO_GET_32, &[]);
    check(
        format_args!("info_get_global"),
        info[0] == SUCCESS_64 && (info[2] >> 7) & 0x1f == 1 && (info[2] >> 12) & 3 == 0 && info[3] & 0xffff == mp_rx && is_err(&again, FfaError::NoData),
        format_args!("x0 {:#x} w2 {:#x} ids {:#x}, again x0 {:#x} w2 {:#x}", info[0], info[2], info[3], again[0], again[2]),
    );
    sp_error(&ffa, "err_info_get_from_sp", mp_ffa(&ffa, fid::FFA_NOTIFICATION_INFO_GET_64, 0, 0, 0), FfaError::NotSupported, 18);

    // mp reads it from the VM bitmap (its context 0, on our core 0).
    let get = fid::FFA_NOTIFICATION_GET;
    sp_error(&ffa, "err_get_other_vcpu", mp_ffa(&ffa, get, 1 << 16 | mp_rx, GET_VM, 0), FfaError::InvalidParameters, 19);
    sp_error(&ffa, "err_get_other_receiver", mp_ffa(&ffa, get, ECHO as u64, GET_VM, 0), FfaError::InvalidParameters, 20);
    let r = mp_ffa(&ffa, get, mp_rx, GET_SP | GET_VM, 0);
    let again = mp_ffa(&ffa, get, mp_rx, GET_VM, 0);
    check(
        format_args!("sp_get_global"),
        matches!(r, Ok(w) if w[0] == SUCCESS_32 && w[1] == 0 && w[2] == 1) && matches!(again, Ok(w) if w[0] == SUCCESS_32 && w[2] == 0),
        format_args!("{}, again {}", Shown(&r), Shown(&again)),
    );

    // Per-vCPU: bit 1 for mp's vCPU 0.
    let r = raw(&ffa, set, &[mp_rx, 1 | 2, 2, 0]);
    let sri = took_sri(m);
    let info = raw(&ffa, fid::FFA_NOTIFICATION_INFO_GET_32, &[]);
    let got = mp_ffa(&ffa, get, mp_rx, GET_VM, 0);
    check(
        format_args!("per_vcpu_set_info_get"),
        r[0] == SUCCESS_32 && sri == Some(SRI_INTID) && info[0] == SUCCESS_32 && (info[2] >> 7) & 0x1f == 1 && (info[2] >> 12) & 3 == 1
            && info[3] & 0xffff_ffff == mp_rx && matches!(got, Ok(w) if w[2] == 2),
        format_args!("set x0 {:#x}, took {:?}, info x0 {:#x} w2 {:#x} ids {:#x}, get {}", r[0], sri, info[0], info[2], info[3], Shown(&got)),
    );

    // The other way: we bind bit 63 to mp as sender, mp sets it.
    let ours = (MP as u64) << 16;
    ns_error(&ffa, "err_ns_bind_vm_sender", raw(&ffa, bind, &[1 << 16, 0, 0, 1 << 31]), FfaError::InvalidParameters, 21);
    let b = raw(&ffa, bind, &[ours, 0, 0, 1 << 31]);
    let s = mp_ffa(&ffa, set, ours, 0, 1 << 63);
    let sri = took_sri(m);
    check(format_args!("sp_set_sri"), b[0] == SUCCESS_32 && mp_ok(&s) && sri == Some(SRI_INTID), format_args!("bind x0 {:#x}, set {}, took {:?}", b[0], Shown(&s), sri));
    ns_error(&ffa, "err_destroy_pending", raw(&ffa, destroy, &[0]), FfaError::Denied, 22);
    ns_error(&ffa, "err_unbind_pending", raw(&ffa, unbind, &[ours, 0, 0, 1 << 31]), FfaError::Denied, 23);
    let info = raw(&ffa, fid::FFA_NOTIFICATION_INFO_GET_32, &[]);
    ns_error(&ffa, "err_get_vcpu_out_of_range", raw(&ffa, get, &[4 << 16, GET_SP]), FfaError::InvalidParameters, 24);
    let r = raw(&ffa, get, &[0, GET_SP | GET_SPM]);
    check(
        format_args!("ns_get"),
        info[0] == SUCCESS_32 && info[3] & 0xffff == 0 && r[0] == SUCCESS_32 && r[2] == 0 && r[3] == 1 << 31 && r[6] == 0,
        format_args!("info x0 {:#x} ids {:#x}; get x0 {:#x} w2 {:#x} w3 {:#x} w6 {:#x}", info[0], info[3], r[0], r[2], r[3], r[6]),
    );

    // The scheduler's answer to the SRI: INFO_GET names mp, FFA_RUN gives
    // its context cycles; it takes its notifications and waits again.
    let b = mp_ffa(&ffa, bind, mp_rx, 0, 4);
    let s = raw(&ffa, set, &[mp_rx, 0, 4, 0]);
    let sri = took_sri(m);
    let info = raw(&ffa, fid::FFA_NOTIFICATION_INFO_GET_32, &[]);
    let run = raw(&ffa, fid::FFA_RUN, &[(MP as u64) << 16]);
    let log = ffa.direct_req64(HYPERVISOR_ID, MP, [MP_LAST_RUN, 0, 0, 0, 0]);
    check(
        format_args!("run_after_sri"),
        mp_ok(&b) && s[0] == SUCCESS_32 && sri == Some(SRI_INTID) && info[0] == SUCCESS_32 && info[3] & 0xffff == mp_rx
            && run[0] == fid::FFA_MSG_WAIT as u64 && matches!(log, Ok(w) if w[0] == 1 && w[1] == 4),
        format_args!("bind {}, set x0 {:#x}, took {:?}, info ids {:#x}, run x0 {:#x} w2 {:#x}, mp's [runs, from VMs, ..] {}", Shown(&b), s[0], sri, info[3], run[0], run[2], Shown(&log)),
    );
    // FFA_RUN found the notification pending: mp's context was given the
    // Notification Pending Interrupt with it (and took it with HF_INTERRUPT_GET).
    check(format_args!("npi_with_run"), matches!(log, Ok(w) if w[4] >= 1), format_args!("mp's NPIs taken: {}", Shown(&log)));
    ns_error(&ffa, "err_run_nothing_pending", raw(&ffa, fid::FFA_RUN, &[(MP as u64) << 16]), FfaError::Denied, 27);

    // Unbind both ways, then SET is DENIED; destroy, then BIND is DENIED.
    let u1 = raw(&ffa, unbind, &[ours, 0, 0, 1 << 31]);
    let u2 = mp_ffa(&ffa, unbind, mp_rx, 0, 7);
    check(format_args!("unbind"), u1[0] == SUCCESS_32 && mp_ok(&u2), format_args!("ns x0 {:#x}, mp {}", u1[0], Shown(&u2)));
    sp_error(&ffa, "err_set_after_unbind", mp_ffa(&ffa, set, ours, 0, 1 << 63), FfaError::Denied, 25);
    let d = raw(&ffa, destroy, &[0]);
    check(format_args!("bitmap_destroy"), d[0] == SUCCESS_32, format_args!("x0 {:#x} w2 {:#x}", d[0], d[2]));
    ns_error(&ffa, "err_bind_after_destroy", raw(&ffa, bind, &[ours, 0, 0, 1]), FfaError::Denied, 26);
    let sp = ffa.direct_req64(HYPERVISOR_ID, MP, [0, 0, 1, 2, 3]);
    check(format_args!("notifications_then_messaging"), echo_ok(&ffa, 0x99) && sp.is_ok(), format_args!("mp {}", Shown(&sp)));
}

/// Writes an indirect message (v1.2 header; payload at 40) into our TX buffer.
fn put_message<M: Machine>(m: &mut M, sender: u16, receiver: u16, payload: &[u8]) {
    let mut h = [0u8; HEADER];
    h[8..12].copy_from_slice(&(HEADER as u32).to_le_bytes());
    h[12..16].copy_from_slice(&((sender as u32) << 16 | receiver as u32).to_le_bytes());
    h[16..20].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    m.write_tx(0, &h);
    m.write_tx(HEADER, payload);
}

/// `spmc_indirect_messaging`.
pub fn run_indirect_messaging<C: Conduit, M: Machine>(c: &C, m: &mut M) {
    let ffa = FfaClient::new(c);
    if !negotiate(&ffa) {
        return;
    }
    let send2 = fid::FFA_MSG_SEND2;
    // Before we have buffers: DENIED.
    ns_error(&ffa, "err_send2_no_tx_buffer", raw(&ffa, send2, &[0, 0]), FfaError::Denied, 1);
    let _ = discover(&ffa, m);
    m.ns_interrupts_init();
    m.ns_interrupt_enable(SRI_INTID);
    let r = raw(&ffa, fid::FFA_NOTIFICATION_BITMAP_CREATE, &[0, 4]);
    check(format_args!("bitmap_create"), r[0] == SUCCESS_32, format_args!("x0 {:#x}", r[0]));

    let hello = *b"hello, mp! 16 B.";
    put_message(m, 0, MP, &hello);
    ns_error(&ffa, "err_send2_receiver_without_rx", raw(&ffa, send2, &[0, 0]), FfaError::Busy, 2);
    let map = ffa.direct_req64(HYPERVISOR_ID, MP, [MP_MAP, 0, 0, 0, 0]);
    check(format_args!("sp_rxtx_map"), matches!(map, Ok(w) if w[0] == SUCCESS_32), format_args!("{}", Shown(&map)));

    // Bad messages: nothing delivered.
    ns_error(&ffa, "err_send2_reserved_flags", raw(&ffa, send2, &[0, 1]), FfaError::InvalidParameters, 3);
    ns_error(&ffa, "err_send2_vm_sender", raw(&ffa, send2, &[1 << 16, 0]), FfaError::InvalidParameters, 4);
    put_message(m, ECHO, MP, &hello);
    ns_error(&ffa, "err_send2_wrong_sender", raw(&ffa, send2, &[0, 0]), FfaError::InvalidParameters, 5);
    put_message(m, 0, 0x8123, &hello);
    ns_error(&ffa, "err_send2_no_such_receiver", raw(&ffa, send2, &[0, 0]), FfaError::InvalidParameters, 6);
    put_message(m, 0, 0, &hello);
    ns_error(&ffa, "err_send2_to_itself", raw(&ffa, send2, &[0, 0]), FfaError::InvalidParameters, 7);
    put_message(m, 0, ECHO, &hello);
    ns_error(&ffa, "err_send2_no_indirect_messaging", raw(&ffa, send2, &[0, 0]), FfaError::Denied, 8);
    put_message(m, 0, MP, &hello);
    m.write_tx(16, &4096u32.to_le_bytes());
    ns_error(&ffa, "err_send2_too_big", raw(&ffa, send2, &[0, 0]), FfaError::InvalidParameters, 9);
    put_message(m, 0, MP, &hello);
    m.write_tx(8, &16u32.to_le_bytes());
    ns_error(&ffa, "err_send2_offset_in_header", raw(&ffa, send2, &[0, 0]), FfaError::InvalidParameters, 10);

    // Delivered, with the SRI; mp's RX is its own until it releases it.
    put_message(m, 0, MP, &hello);
    let r = raw(&ffa, send2, &[0, 0]);
    let sri = took_sri(m);
    check(format_args!("send2_to_sp_sri"), r[0] == SUCCESS_32 && sri == Some(SRI_INTID), format_args!("x0 {:#x} w2 {:#x}, took {:?}", r[0], r[2], sri));
    let info = raw(&ffa, fid::FFA_NOTIFICATION_INFO_GET_32, &[]);
    check(format_args!("send2_info_get"), info[0] == SUCCESS_32 && info[3] & 0xffff == MP as u64, format_args!("x0 {:#x} ids {:#x}", info[0], info[3]));
    ns_error(&ffa, "err_send2_receiver_rx_full", raw(&ffa, send2, &[0, 0]), FfaError::Busy, 11);
    let fwk = mp_ffa(&ffa, fid::FFA_NOTIFICATION_GET, MP as u64, GET_SPM, 0);
    check(format_args!("sp_rx_buffer_full_notification"), matches!(fwk, Ok(w) if w[0] == SUCCESS_32 && w[3] == 1), format_args!("{}", Shown(&fwk)));
    let read = ffa.direct_req64(HYPERVISOR_ID, MP, [MP_READ, 0, 0, 0, 0]);
    let want = [u64::from_le_bytes(hello[..8].try_into().unwrap_or([0; 8])), u64::from_le_bytes(hello[8..].try_into().unwrap_or([0; 8]))];
    check(
        format_args!("sp_reads_message"),
        matches!(read, Ok(w) if w[0] == SUCCESS_32 && w[1] == MP as u64 && w[2] == 16 && w[3..5] == want),
        format_args!("[release, ids, size, p0, p1] {}", Shown(&read)),
    );
    let r = raw(&ffa, send2, &[0, 2]);
    let sri = took_sri(m);
    let read = ffa.direct_req64(HYPERVISOR_ID, MP, [MP_READ, 0, 0, 0, 0]);
    check(format_args!("send2_after_release"), r[0] == SUCCESS_32 && sri == Some(SRI_INTID) && matches!(read, Ok(w) if w[0] == SUCCESS_32), format_args!("x0 {:#x}, took {:?}, read {}", r[0], sri, Shown(&read)));

    // mp -> us: into our RX buffer, RX buffer full for endpoint 0, the SRI.
    let s = ffa.direct_req64(HYPERVISOR_ID, MP, [MP_SEND, 0, 0x1111, 0x2222, 0]);
    let sri = took_sri(m);
    let mut buf = [0u8; HEADER + 16];
    m.read_rx(&mut buf);
    let w = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().unwrap_or([0; 4]));
    let q = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().unwrap_or([0; 8]));
    check(
        format_args!("send2_from_sp"),
        matches!(s, Ok(v) if v[0] == SUCCESS_32) && sri == Some(SRI_INTID) && w(12) == (MP as u32) << 16 && w(16) == 16 && q(HEADER) == 0x1111 && q(HEADER + 8) == 0x2222,
        format_args!("{}, took {:?}, header ids {:#x} size {}, payload {:#x} {:#x}", Shown(&s), sri, w(12), w(16), q(HEADER), q(HEADER + 8)),
    );
    let again = ffa.direct_req64(HYPERVISOR_ID, MP, [MP_SEND, 0, 3, 4, 0]);
    check(format_args!("err_send2_from_sp_ns_rx_full"), matches!(again, Ok(v) if v[0] == ERROR && v[1] == code(FfaError::Busy)), format_args!("{}", Shown(&again)));
    let g = raw(&ffa, fid::FFA_NOTIFICATION_GET, &[0, GET_SPM]);
    check(format_args!("ns_rx_buffer_full_notification"), g[0] == SUCCESS_32 && g[6] == 1, format_args!("x0 {:#x} w6 {:#x}", g[0], g[6]));
    // RX ownership: acquire while we own it is BUSY; release, acquire (the
    // hypervisor's), then mp cannot deliver; release, then it can.
    ns_error(&ffa, "err_rx_acquire_while_full", raw(&ffa, fid::FFA_RX_ACQUIRE, &[0]), FfaError::Busy, 12);
    let rel = ffa.rx_release();
    let acq = raw(&ffa, fid::FFA_RX_ACQUIRE, &[0]);
    let blocked = ffa.direct_req64(HYPERVISOR_ID, MP, [MP_SEND, 0, 5, 6, 0]);
    let rel2 = ffa.rx_release();
    let sent = ffa.direct_req64(HYPERVISOR_ID, MP, [MP_SEND, 0, 7, 8, 0]);
    let sri = took_sri(m);
    let rel3 = ffa.rx_release();
    check(
        format_args!("rx_ownership"),
        rel.is_ok() && acq[0] == SUCCESS_32 && matches!(blocked, Ok(v) if v[0] == ERROR && v[1] == code(FfaError::Busy)) && rel2.is_ok()
            && matches!(sent, Ok(v) if v[0] == SUCCESS_32) && sri == Some(SRI_INTID) && rel3.is_ok(),
        format_args!("release {}, acquire x0 {:#x}, mp while acquired {}, release {}, mp {}, took {:?}, release {}", Shown(&rel), acq[0], Shown(&blocked), Shown(&rel2), Shown(&sent), sri, Shown(&rel3)),
    );
    ns_error(&ffa, "err_rx_release_not_owned", raw(&ffa, fid::FFA_RX_RELEASE, &[0]), FfaError::Denied, 13);
    let g = raw(&ffa, fid::FFA_NOTIFICATION_GET, &[0, GET_SPM]);
    let d = raw(&ffa, fid::FFA_NOTIFICATION_BITMAP_DESTROY, &[0]);
    check(format_args!("indirect_then_messaging"), g[0] == SUCCESS_32 && d[0] == SUCCESS_32 && echo_ok(&ffa, 0x98), format_args!("get x0 {:#x}, destroy x0 {:#x}", g[0], d[0]));
}
