//! Host tests of the dispatcher with a fake machine and scripted SPs.

use super::*;
use crate::partition::Uuid;
use crate::manifest::Range;
use crate::name::Name;
use std::collections::HashMap;

type SpFn = Box<dyn FnMut(usize, Option<&Regs>) -> SpExit>;

struct Fake {
    sps: Vec<SpFn>,
    mem: HashMap<u64, u8>,
    mapped: Vec<(u64, u64)>,
    logs: Vec<String>,
    fail_map: bool,
    runs: Vec<(usize, usize)>,
    resets: Vec<(usize, usize, Option<u64>)>,
}

impl Fake {
    fn new() -> Self {
        Self { sps: Vec::new(), mem: HashMap::new(), mapped: Vec::new(), logs: Vec::new(), fail_map: false, runs: Vec::new(), resets: Vec::new() }
    }
    fn read(&self, pa: u64, n: usize) -> Vec<u8> {
        (0..n as u64).map(|i| *self.mem.get(&(pa + i)).unwrap_or(&0)).collect()
    }
}

impl Platform for Fake {
    fn map_ns(&mut self, pa: u64, size: u64) -> Result<(), ()> {
        if self.fail_map {
            return Err(());
        }
        self.mapped.push((pa, size));
        Ok(())
    }
    fn unmap_ns(&mut self, pa: u64, size: u64) {
        self.mapped.retain(|m| *m != (pa, size));
    }
    fn write(&mut self, pa: u64, bytes: &[u8]) {
        assert!(self.mapped.iter().any(|(b, s)| pa >= *b && pa + bytes.len() as u64 <= b + s), "write to unmapped {pa:#x}");
        for (i, b) in bytes.iter().enumerate() {
            self.mem.insert(pa + i as u64, *b);
        }
    }
    fn run_sp(&mut self, index: usize, ctx: usize, answer: Option<&Regs>) -> SpExit {
        self.runs.push((index, ctx));
        (self.sps[index])(ctx, answer)
    }
    fn reset_ctx(&mut self, index: usize, ctx: usize, entry: Option<u64>) {
        self.resets.push((index, ctx, entry));
    }
    fn sp_log(&mut self, prefix: &str, line: &str) {
        self.logs.push(format!("[{prefix}] {line}"));
    }
}

fn regs(list: &[u64]) -> Regs {
    let mut r = [0; 18];
    r[..list.len()].copy_from_slice(list);
    r
}

fn call(list: &[u64]) -> SpExit {
    SpExit::Call(regs(list))
}

fn log32(text: &str) -> SpExit {
    let mut r = regs(&[fid::FFA_CONSOLE_LOG_32 as u64, text.len() as u64]);
    for (n, c) in text.bytes().enumerate() {
        r[2 + n / 4] |= (c as u64) << (8 * (n % 4));
    }
    SpExit::Call(r)
}

/// An echo SP: logs "ready", waits, then answers each request with x3..x7.
fn echo_sp(id: u16) -> SpFn {
    let mut step = 0;
    Box::new(move |_ctx, answer| {
        step += 1;
        match step {
            1 => log32("ready\n"),
            2 => call(&[fid::FFA_MSG_WAIT as u64]),
            _ => {
                let a = answer.unwrap();
                let (src, _) = ffa::unpack_endpoints(a[1]);
                let resp = if a[0] as u32 == fid::FFA_MSG_SEND_DIRECT_REQ_64 {
                    fid::FFA_MSG_SEND_DIRECT_RESP_64
                } else {
                    fid::FFA_MSG_SEND_DIRECT_RESP_32
                };
                call(&[resp as u64, ffa::pack_endpoints(id, src), 0, a[3], a[4], a[5], a[6], a[7]])
            }
        }
    })
}

const ECHO_UUID: Uuid = Uuid([0x5519ffd4, 0x224786d0, 0xbdd82389, 0xb338eb89]);

fn manifest(id: u16, uuid: Uuid) -> PartitionManifest {
    PartitionManifest::for_test("echo", id, uuid, 1, 0x603)
}

fn ns_mem() -> Ranges {
    let mut r = Ranges::default();
    r.push(Range { base: 0x4000_0000, size: 0x10_0000 }).unwrap();
    r.push(Range { base: 0x4190_0000, size: 0x7e70_0000 }).unwrap();
    r
}

/// An SPMC with the echo SP initialised.
fn booted() -> (Spmc, Fake) {
    let mut s = Spmc::new(0x8000, ns_mem());
    let mut f = Fake::new();
    let i = s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(echo_sp(0x8001));
    s.init_partition(i, 0, 0, &mut f).unwrap();
    (s, f)
}

fn is_error(r: &Regs, code: FfaError) -> bool {
    r[0] == fid::FFA_ERROR as u64 && r[2] == code as i32 as u32 as u64
}

const RX: u64 = 0x6100_0000;
const TX: u64 = 0x6100_1000;

fn map_ns(s: &mut Spmc, f: &mut Fake) {
    let a = s.handle_ns(&regs(&[fid::FFA_RXTX_MAP_64 as u64, TX, RX, 1]), 0, f);
    assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64);
}

#[test]
fn init_logs_ready_and_waits() {
    let (s, f) = booted();
    assert_eq!(f.logs, vec!["[echo] ready".to_string()]);
    assert_eq!(s.partition(0).unwrap().contexts[0], CtxState::Waiting);
}

#[test]
fn version_framework_message() {
    let (mut s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, 0x10001]), 0, &mut f);
    assert_eq!(&a[..4], &[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8000_ffff, framework::VERSION_RESP_W2, 0x10002]);
    assert_eq!(s.ns_version, 0x10001);
    // bit 31 set: NOT_SUPPORTED in w3 of the framework response
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, 0x8001_0002]), 0, &mut f);
    assert_eq!(a[3], 0xffff_ffff);
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, 0x20000]), 0, &mut f);
    assert_eq!(a[3], 0xffff_ffff);
    assert_eq!(s.ns_version, 0x10001, "a refused request changes nothing");
}

#[test]
fn unknown_framework_message_is_invalid() {
    let (mut s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::FLAG | 0x55]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
}

#[test]
fn direct_request_round_trip_32_and_64() {
    let (mut s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001, 0, 1, 2, 3, 4, 5]), 0, &mut f);
    assert_eq!(&a[..8], &[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8001_0000, 0, 1, 2, 3, 4, 5]);
    let big = 0x1234_5678_9abc_def0;
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, 0x0000_8001, 0, big, 2, 3, 4, big]), 0, &mut f);
    assert_eq!(&a[..8], &[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8001_0000, 0, big, 2, 3, 4, big]);
    assert_eq!(s.partition(0).unwrap().contexts[0], CtxState::Waiting);
}

#[test]
fn direct_request_32_truncates_arguments() {
    let (mut s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001, 0, 0xdead_0000_0000_0001]), 0, &mut f);
    assert_eq!(a[3], 1);
}

#[test]
fn direct_request_to_missing_partition_then_valid_call() {
    let (mut s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8009, 0, 7]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
    // to the SPMC itself (not a framework message)
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8000, 0, 7]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001, 0, 7]), 0, &mut f);
    assert_eq!(a[3], 7);
}

#[test]
fn framework_bit_to_sp_is_refused() {
    let (mut s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001, framework::FLAG | 4]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
}

#[test]
fn sp_that_cannot_receive_is_denied() {
    let mut s = Spmc::new(0x8000, ns_mem());
    let mut f = Fake::new();
    let mut m = manifest(0x8002, ECHO_UUID);
    m.messaging_method = 0x2;
    s.add_partition(Partition::new(m, SpMemory { base: 0x0e40_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(Box::new(|_, _| call(&[fid::FFA_MSG_WAIT as u64])));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8002]), 0, &mut f);
    assert!(is_error(&a, FfaError::Denied));
}

#[test]
fn faulting_sp_is_aborted() {
    let mut s = Spmc::new(0x8000, ns_mem());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let mut n = 0;
    f.sps.push(Box::new(move |_, _| {
        n += 1;
        if n == 1 { call(&[fid::FFA_MSG_WAIT as u64]) } else { SpExit::Fault { esr: 0x9600_0000, far: 0, elr: 0, ipa: None } }
    }));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001]), 0, &mut f);
    assert!(is_error(&a, FfaError::Aborted));
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001]), 0, &mut f);
    assert!(is_error(&a, FfaError::Aborted));
}

#[test]
fn sp_init_failure_is_reported() {
    let mut s = Spmc::new(0x8000, ns_mem());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(Box::new(|_, _| call(&[fid::FFA_ERROR as u64, 0, FfaError::Aborted as i32 as u32 as u64])));
    assert!(s.init_partition(0, 0, 0, &mut f).is_err());
    assert!(s.partition(0).unwrap().aborted);
}

#[test]
fn sp_bad_response_and_early_wait_are_refused_then_good_response_works() {
    let mut s = Spmc::new(0x8000, ns_mem());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let mut n = 0;
    let seen: std::rc::Rc<std::cell::RefCell<Vec<Regs>>> = Default::default();
    let seen2 = seen.clone();
    f.sps.push(Box::new(move |_, a| {
        n += 1;
        if let Some(a) = a {
            seen2.borrow_mut().push(*a);
        }
        match n {
            1 => call(&[fid::FFA_MSG_WAIT as u64]),
            2 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8001_0005]), // wrong destination
            3 => call(&[fid::FFA_MSG_WAIT as u64]),                              // must answer first
            4 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8001_0000]), // wrong width
            _ => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8001_0000, 0, 42]),
        }
    }));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001]), 0, &mut f);
    assert_eq!(a[3], 42);
    let seen = seen.borrow();
    assert!(is_error(&seen[1], FfaError::InvalidParameters));
    assert!(is_error(&seen[2], FfaError::Denied));
    assert!(is_error(&seen[3], FfaError::InvalidParameters));
}

#[test]
fn sp_calls_during_init() {
    let mut s = Spmc::new(0x8000, ns_mem());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let seen: std::rc::Rc<std::cell::RefCell<Vec<Regs>>> = Default::default();
    let seen2 = seen.clone();
    let script = vec![
        call(&[fid::FFA_VERSION as u64, 0x10001]),
        call(&[fid::FFA_ID_GET as u64]),
        call(&[fid::FFA_SPM_ID_GET as u64]),
        call(&[fid::FFA_FEATURES as u64, fid::FFA_RXTX_MAP_64 as u64]),
        call(&[fid::FFA_FEATURES as u64, 0x8400_00FF]),
        call(&[fid::FFA_FEATURES as u64, 0x1]),
        call(&[0x8400_00AA]),
        call(&[fid::FFA_CONSOLE_LOG_32 as u64, 0]),
        call(&[fid::FFA_CONSOLE_LOG_32 as u64, 25]),
        call(&[fid::FFA_RXTX_MAP_64 as u64, 0x0e3f_0000, 0x0e3f_1000, 1]),
        call(&[fid::FFA_RXTX_MAP_64 as u64, 0x0e2f_0000, 0x0e3f_1000, 1]),
        call(&[fid::FFA_PARTITION_INFO_GET as u64, 0, 0, 0, 0, 0]),
        call(&[fid::FFA_MSG_WAIT as u64]),
    ];
    let mut it = script.into_iter();
    f.sps.push(Box::new(move |_, a| {
        if let Some(a) = a {
            seen2.borrow_mut().push(*a);
        }
        it.next().unwrap()
    }));
    f.mapped.push((0x0e30_0000, 0x10_0000)); // SP memory is always writable by the SPMC
    s.init_partition(0, 0, 0, &mut f).unwrap();
    let seen = seen.borrow();
    assert_eq!(seen[0][0], 0x10002);
    assert_eq!(s.partition(0).unwrap().version, 0x10001);
    assert_eq!(&seen[1][..3], &[fid::FFA_SUCCESS_32 as u64, 0, 0x8001]);
    assert_eq!(&seen[2][..3], &[fid::FFA_SUCCESS_32 as u64, 0, 0x8000]);
    assert_eq!(seen[3][0], fid::FFA_SUCCESS_32 as u64);
    assert!(is_error(&seen[4], FfaError::NotSupported));
    assert!(is_error(&seen[5], FfaError::NotSupported));
    assert!(is_error(&seen[6], FfaError::NotSupported));
    assert!(is_error(&seen[7], FfaError::InvalidParameters));
    assert!(is_error(&seen[8], FfaError::InvalidParameters));
    assert_eq!(seen[9][0], fid::FFA_SUCCESS_32 as u64);
    assert!(is_error(&seen[10], FfaError::Denied), "second map is DENIED");
    assert_eq!(&seen[11][..4], &[fid::FFA_SUCCESS_32 as u64, 0, 1, 24]);
    assert_eq!(&f.read(0x0e3f_1000, 2), &[0x01, 0x80]);
}

#[test]
fn console_log_64_and_partial_lines() {
    let mut s = Spmc::new(0x8000, ns_mem());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let text = b"hello, this is a longer line\n";
    let mut r = regs(&[fid::FFA_CONSOLE_LOG_64 as u64, 5]);
    r[2] = u64::from_le_bytes(*b"par\0\0\0\0\0") | (b't' as u64) << 24 | (b'1' as u64) << 32;
    let mut r2 = regs(&[fid::FFA_CONSOLE_LOG_64 as u64, text.len() as u64]);
    for (n, c) in text.iter().enumerate() {
        r2[2 + n / 8] |= (*c as u64) << (8 * (n % 8));
    }
    let script = vec![SpExit::Call(r), SpExit::Call(r2), call(&[fid::FFA_MSG_WAIT as u64])];
    let mut it = script.into_iter();
    f.sps.push(Box::new(move |_, _| it.next().unwrap()));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    assert_eq!(f.logs, vec!["[echo] part1hello, this is a longer line".to_string()]);
}

#[test]
fn partition_info_get_before_rxtx_map_is_busy() {
    let (mut s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f);
    assert!(is_error(&a, FfaError::Busy));
    // count only needs no buffer
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64, 0, 0, 0, 0, 1]), 0, &mut f);
    assert_eq!(&a[..4], &[fid::FFA_SUCCESS_32 as u64, 0, 1, 0]);
}

#[test]
fn partition_info_get_full_flow() {
    let (mut s, mut f) = booted();
    map_ns(&mut s, &mut f);
    let [w1, w2, w3, w4] = ECHO_UUID.0.map(|w| w as u64);
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64, w1, w2, w3, w4, 0]), 0, &mut f);
    assert_eq!(&a[..4], &[fid::FFA_SUCCESS_32 as u64, 0, 1, 24]);
    let d = f.read(RX, 24);
    assert_eq!(&d[..8], &[0x01, 0x80, 0x01, 0x00, 0x03, 0x07, 0x00, 0x00]);
    assert_eq!(&d[8..12], &[0xd4, 0xff, 0x19, 0x55]);
    // RX now belongs to the caller: BUSY until released
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f);
    assert!(is_error(&a, FfaError::Busy));
    let a = s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64);
    let a = s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f);
    assert!(is_error(&a, FfaError::Denied), "nothing to release");
    // unknown UUID, reserved flags
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64, 1, 2, 3, 4, 0]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64, 0, 0, 0, 0, 2]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f);
    assert_eq!(a[2], 1);
}

#[test]
fn partition_info_get_v1_0_caller() {
    let (mut s, mut f) = booted();
    s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, 0x10000]), 0, &mut f);
    map_ns(&mut s, &mut f);
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f);
    assert_eq!(&a[..4], &[fid::FFA_SUCCESS_32 as u64, 0, 1, 0]);
    assert_eq!(&f.read(RX, 8), &[0x01, 0x80, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00]);
}

#[test]
fn rxtx_map_errors() {
    let (mut s, mut f) = booted();
    let m = |tx: u64, rx: u64, pages: u64| regs(&[fid::FFA_RXTX_MAP_64 as u64, tx, rx, pages]);
    for bad in [
        m(TX, RX, 0),                        // no pages
        m(TX, RX, 64),                       // page count beyond 6 bits
        m(TX + 8, RX, 1),                    // unaligned
        m(TX, TX, 1),                        // overlap
        m(RX, RX + 0x1000, 2),               // overlap
        m(0x0e30_0000, RX, 1),               // secure memory
        m(0x4010_0000, RX, 1),               // realm memory
        m(u64::MAX & !0xfff, RX, 1),         // wraps
    ] {
        let a = s.handle_ns(&bad, 0, &mut f);
        assert!(is_error(&a, FfaError::InvalidParameters), "{bad:x?}");
    }
    f.fail_map = true;
    assert!(is_error(&s.handle_ns(&m(TX, RX, 1), 0, &mut f), FfaError::NoMemory));
    f.fail_map = false;
    map_ns(&mut s, &mut f);
    assert!(is_error(&s.handle_ns(&m(TX, RX, 1), 0, &mut f), FfaError::Denied));
    // 32-bit form ignores upper halves
    assert_eq!(f.mapped.len(), 2);
    // unmap: wrong id, then right, then nothing left
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RXTX_UNMAP as u64, 5 << 16]), 0, &mut f), FfaError::InvalidParameters));
    assert_eq!(s.handle_ns(&regs(&[fid::FFA_RXTX_UNMAP as u64]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
    assert!(f.mapped.is_empty());
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RXTX_UNMAP as u64]), 0, &mut f), FfaError::InvalidParameters));
    map_ns(&mut s, &mut f);
}

#[test]
fn unknown_ns_call_is_not_supported_and_next_call_works() {
    let (mut s, mut f) = booted();
    assert!(is_error(&s.handle_ns(&regs(&[0x8400_0071]), 0, &mut f), FfaError::NotSupported)); // FFA_MEM_DONATE
    assert!(is_error(&s.handle_ns(&regs(&[0x8400_0086]), 0, &mut f), FfaError::NotSupported)); // FFA_MSG_SEND2
    assert_eq!(s.handle_ns(&regs(&[fid::FFA_FEATURES as u64, fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
}

#[test]
fn duplicate_ids_are_refused() {
    let mut s = Spmc::new(0x8000, ns_mem());
    let mem = SpMemory { base: 0, size: 0 };
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), mem)).unwrap();
    assert!(s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), mem)).is_err());
    assert!(s.add_partition(Partition::new(manifest(0x8000, ECHO_UUID), mem)).is_err());
}

#[test]
fn boot_order_sorts() {
    let mut s = Spmc::new(0x8000, ns_mem());
    let mem = SpMemory { base: 0, size: 0 };
    let mut a = manifest(0x8001, ECHO_UUID);
    a.boot_order = 5;
    let mut b = manifest(0x8002, ECHO_UUID);
    b.boot_order = 1;
    s.add_partition(Partition::new(a, mem)).unwrap();
    s.add_partition(Partition::new(b, mem)).unwrap();
    assert_eq!(&s.boot_sequence()[..3], &[Some(1), Some(0), None]);
}
