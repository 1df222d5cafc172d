//! Host tests of the dispatcher with a fake machine and scripted SPs.

use super::*;
use crate::manifest::Ranges;
use crate::partition::{PartitionManifest, Uuid};
use shared::abi::ffa::{self as ffa, FfaError, framework};
use crate::manifest::Range;
use std::collections::HashMap;

type SpFn = Box<dyn FnMut(usize, Option<&Regs>) -> SpExit + Send>;

struct Fake {
    sps: Vec<SpFn>,
    mem: HashMap<u64, u8>,
    mapped: Vec<(u64, u64)>,
    logs: Vec<String>,
    fail_map: bool,
    runs: Vec<(usize, usize)>,
    resets: Vec<(usize, usize, Option<u64>)>,
    /// The flags of each run, in order.
    flags: Vec<RunFlags>,
    /// What acknowledge_interrupt returns next.
    pending_intid: u32,
    deactivated: Vec<u32>,
    /// What timer_expired reports next.
    expired: Vec<(usize, usize)>,
    /// How many SRIs were sent.
    sris: usize,
    /// Borrowed mappings: (SP index, pa, size, writable, non-secure).
    borrowed: Vec<(usize, u64, u64, bool, bool)>,
    /// A lender's own pages unmapped: (SP index, pa, size).
    unmapped_own: Vec<(usize, u64, u64)>,
    /// Ranges zeroed: (pa, size, non-secure).
    zeroed: Vec<(u64, u64, bool)>,
    /// `zero` fails.
    fail_zero: bool,
    /// The next `take_access_fault` reports a faulted buffer access.
    access_fault: bool,
}

impl Fake {
    fn new() -> Self {
        Self {
            sps: Vec::new(),
            mem: HashMap::new(),
            mapped: Vec::new(),
            logs: Vec::new(),
            fail_map: false,
            runs: Vec::new(),
            resets: Vec::new(),
            flags: Vec::new(),
            pending_intid: interrupts::SPURIOUS_INTID,
            deactivated: Vec::new(),
            expired: Vec::new(),
            sris: 0,
            borrowed: Vec::new(),
            unmapped_own: Vec::new(),
            zeroed: Vec::new(),
            fail_zero: false,
            access_fault: false,
        }
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
    fn run_sp(&mut self, index: usize, ctx: usize, answer: Option<&Regs>, flags: RunFlags) -> SpExit {
        self.runs.push((index, ctx));
        self.flags.push(flags);
        (self.sps[index])(ctx, answer)
    }
    fn acknowledge_interrupt(&mut self) -> u32 {
        core::mem::replace(&mut self.pending_intid, interrupts::SPURIOUS_INTID)
    }
    fn deactivate_interrupt(&mut self, intid: u32) {
        self.deactivated.push(intid);
    }
    fn timer_expired(&mut self, out: &mut [(usize, usize)]) -> usize {
        let n = self.expired.len().min(out.len());
        out[..n].copy_from_slice(&self.expired[..n]);
        self.expired.clear();
        n
    }
    fn reset_ctx(&mut self, index: usize, ctx: usize, entry: Option<u64>) {
        self.resets.push((index, ctx, entry));
    }
    fn sp_log(&mut self, prefix: &str, line: &str) {
        self.logs.push(format!("[{prefix}] {line}"));
    }
    fn read(&mut self, pa: u64, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = *self.mem.get(&(pa + i as u64)).unwrap_or(&0);
        }
    }
    fn zero(&mut self, pa: u64, size: u64, non_secure: bool) -> Result<(), ()> {
        if self.fail_zero {
            return Err(());
        }
        self.mem.retain(|a, _| !(pa..pa + size).contains(a));
        self.zeroed.push((pa, size, non_secure));
        Ok(())
    }
    fn take_access_fault(&mut self) -> bool {
        core::mem::take(&mut self.access_fault)
    }
    fn send_sri(&mut self) {
        self.sris += 1;
    }
    fn map_borrowed(&mut self, index: usize, pa: u64, size: u64, access: memory::BorrowedAccess, non_secure: bool) -> Result<(), ()> {
        if self.fail_map {
            return Err(());
        }
        self.borrowed.push((index, pa, size, access.write, non_secure));
        Ok(())
    }
    fn unmap_borrowed(&mut self, index: usize, pa: u64, size: u64, non_secure: bool) {
        let before = self.borrowed.len();
        self.borrowed.retain(|b| !(b.0 == index && b.1 == pa && b.2 == size && b.4 == non_secure));
        if self.borrowed.len() == before {
            self.unmapped_own.push((index, pa, size));
        }
    }
}

/// A memory transaction store of the test's own (the binary uses a static).
fn vm_bitmaps() -> &'static notifications::VmBitmaps {
    Box::leak(Box::new(notifications::VmBitmaps::new()))
}

fn store() -> &'static spin::Mutex<memory::transaction::MemoryStore> {
    Box::leak(Box::new(spin::Mutex::new(memory::transaction::MemoryStore::new())))
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
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
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
    assert_eq!(s.partition(0).unwrap().ctx_state(0), CtxState::Waiting);
}

#[test]
fn version_framework_message() {
    let (s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, 0x10001]), 0, &mut f);
    assert_eq!(&a[..4], &[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8000_ffff, framework::VERSION_RESP_W2, 0x10002]);
    assert_eq!(s.ns_version(), 0x10001);
    // bit 31 set: NOT_SUPPORTED in w3 of the framework response
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, 0x8001_0002]), 0, &mut f);
    assert_eq!(a[3], 0xffff_ffff);
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, 0x20000]), 0, &mut f);
    assert_eq!(a[3], 0xffff_ffff);
    assert_eq!(s.ns_version(), 0x10001, "a refused request changes nothing");
}

fn ns_version(s: &Spmc, f: &mut Fake, v: u64) -> u64 {
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, v]), 0, f);
    assert_eq!(a[2], framework::VERSION_RESP_W2);
    a[3]
}

#[test]
fn version_is_fixed_once_the_normal_world_made_other_calls() {
    let (s, mut f) = booted();
    // Before any other call the Normal world may ask again, and again.
    assert_eq!(ns_version(&s, &mut f, 0x10001), 0x10002);
    assert_eq!(ns_version(&s, &mut f, 0x10002), 0x10002);
    assert_eq!(ns_version(&s, &mut f, 0x10001), 0x10002);
    assert_eq!(s.ns_version(), 0x10001);
    // FFA_INTERRUPT is the SPMD's, not a call of the Normal world.
    s.handle_ns(&regs(&[fid::FFA_INTERRUPT as u64]), 0, &mut f);
    assert_eq!(ns_version(&s, &mut f, 0x10002), 0x10002);
    assert_eq!(ns_version(&s, &mut f, 0x10001), 0x10002);
    // Another call (REQ2 as a v1.1 caller: NOT_SUPPORTED) fixes v1.1 ...
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ2 as u64, 0x0000_8001]), 0, &mut f);
    assert!(is_error(&a, FfaError::NotSupported));
    // ... so v1.2 is refused now and the version stays v1.1; v1.1 again is fine.
    assert_eq!(ns_version(&s, &mut f, 0x10002), 0xffff_ffff);
    assert_eq!(s.ns_version(), 0x10001);
    assert_eq!(ns_version(&s, &mut f, 0x10001), 0x10002);
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ2 as u64, 0x0000_8001]), 0, &mut f);
    assert!(is_error(&a, FfaError::NotSupported), "still a v1.1 caller");
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET_REGS as u64]), 0, &mut f);
    assert!(is_error(&a, FfaError::NotSupported), "still a v1.1 caller");
}

#[test]
fn version_negotiated_then_fixed_at_1_2() {
    let (s, mut f) = booted();
    assert_eq!(ns_version(&s, &mut f, 0x10002), 0x10002);
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET_REGS as u64]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_SUCCESS_64 as u64, "{a:x?}");
    assert_eq!(ns_version(&s, &mut f, 0x10001), 0xffff_ffff);
    assert_eq!(ns_version(&s, &mut f, 0x10000), 0xffff_ffff);
    assert_eq!(s.ns_version(), 0x10002);
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET_REGS as u64]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_SUCCESS_64 as u64, "a v1.2 call still works: {a:x?}");
}

#[test]
fn unknown_framework_message_is_invalid() {
    let (s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::FLAG | 0x55]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
}

#[test]
fn direct_request_round_trip_32_and_64() {
    let (s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001, 0, 1, 2, 3, 4, 5]), 0, &mut f);
    assert_eq!(&a[..8], &[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8001_0000, 0, 1, 2, 3, 4, 5]);
    let big = 0x1234_5678_9abc_def0;
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, 0x0000_8001, 0, big, 2, 3, 4, big]), 0, &mut f);
    assert_eq!(&a[..8], &[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8001_0000, 0, big, 2, 3, 4, big]);
    assert_eq!(s.partition(0).unwrap().ctx_state(0), CtxState::Waiting);
}

#[test]
fn direct_request_32_truncates_arguments() {
    let (s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001, 0, 0xdead_0000_0000_0001]), 0, &mut f);
    assert_eq!(a[3], 1);
}

/// An SP that records the request it is given, then answers it (64-bit).
fn recording_sp(id: u16, seen: std::sync::Arc<std::sync::Mutex<Vec<Regs>>>) -> SpFn {
    let mut step = 0;
    Box::new(move |_ctx, answer| {
        step += 1;
        match step {
            1 => call(&[fid::FFA_MSG_WAIT as u64]),
            _ => {
                let a = *answer.unwrap();
                seen.lock().unwrap().push(a);
                let (src, _) = ffa::unpack_endpoints(a[1]);
                let resp = if a[0] as u32 == fid::FFA_MSG_SEND_DIRECT_REQ_64 { fid::FFA_MSG_SEND_DIRECT_RESP_64 } else { fid::FFA_MSG_SEND_DIRECT_RESP_32 };
                call(&[resp as u64, ffa::pack_endpoints(id, src)])
            }
        }
    })
}

#[test]
fn direct_request_masking_decision() {
    use direct_messaging::{ReqKind, needs_masking};
    let clean = regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, 0x8001, 0, u64::MAX, 2, 3, 4, u64::MAX]);
    assert!(!needs_masking(ReqKind::Req64, &clean), "x0..x7 are all defined for SMC64");
    assert!(!needs_masking(ReqKind::Framework { wide: true, msg: 4 }, &clean));
    assert!(needs_masking(ReqKind::Req32, &clean), "upper halves of w3/w7");
    assert!(needs_masking(ReqKind::Framework { wide: false, msg: 4 }, &clean));
    let narrow = regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x8001, 0, 0xffff_ffff, 2, 3, 4, 5]);
    assert!(!needs_masking(ReqKind::Req32, &narrow));
    for n in 8..18 {
        let mut r = narrow;
        r[n] = 1;
        assert!(needs_masking(ReqKind::Req32, &r), "x{n}");
        assert!(needs_masking(ReqKind::Req64, &r), "x{n}");
        assert!(!needs_masking(ReqKind::Req2, &r), "REQ2 uses x{n}");
    }
    let mut r = narrow;
    r[0] |= 1 << 32;
    assert!(needs_masking(ReqKind::Req32, &r), "upper half of w0");
    assert!(!needs_masking(ReqKind::Run, &r));
}

#[test]
fn direct_request_receiver_sees_masked_registers() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let i = s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(recording_sp(0x8001, seen.clone()));
    s.init_partition(i, 0, 0, &mut f).unwrap();
    let big = 0x1234_5678_9abc_def0;
    // Nothing to mask: the receiver gets the registers as they were.
    let clean = regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, 0x8001, 0, big, 2, 3, 4, big]);
    assert_eq!(s.handle_ns(&clean, 0, &mut f)[0], fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64);
    // x8..x17 set: zero for the receiver of an SMC64 request.
    let mut dirty = clean;
    dirty[8..].iter_mut().for_each(|x| *x = u64::MAX);
    assert_eq!(s.handle_ns(&dirty, 0, &mut f)[0], fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64);
    // SMC32: upper halves and x8..x17 zero.
    let mut dirty32 = dirty;
    dirty32[0] = fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64;
    dirty32[1] |= 0xdead << 32;
    assert_eq!(s.handle_ns(&dirty32, 0, &mut f)[0], fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0], clean);
    assert_eq!(seen[1], clean);
    let mut want32 = regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x8001, 0, big & 0xffff_ffff, 2, 3, 4, big & 0xffff_ffff]);
    want32[1] = 0x8001;
    assert_eq!(seen[2], want32);
}

#[test]
fn direct_request_to_missing_partition_then_valid_call() {
    let (s, mut f) = booted();
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
    let (s, mut f) = booted();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001, framework::FLAG | 4]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
}

#[test]
fn sp_that_cannot_receive_is_denied() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
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
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
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
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(Box::new(|_, _| call(&[fid::FFA_ERROR as u64, 0, FfaError::Aborted as i32 as u32 as u64])));
    assert!(s.init_partition(0, 0, 0, &mut f).is_err());
    assert!(s.partition(0).unwrap().is_aborted());
}

#[test]
fn sp_bad_response_and_early_wait_are_refused_then_good_response_works() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let mut n = 0;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Regs>>> = Default::default();
    let seen2 = seen.clone();
    f.sps.push(Box::new(move |_, a| {
        n += 1;
        if let Some(a) = a {
            seen2.lock().unwrap().push(*a);
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
    let seen = seen.lock().unwrap();
    assert!(is_error(&seen[1], FfaError::InvalidParameters));
    assert!(is_error(&seen[2], FfaError::Denied));
    assert!(is_error(&seen[3], FfaError::InvalidParameters));
}

#[test]
fn sp_calls_during_init() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Regs>>> = Default::default();
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
            seen2.lock().unwrap().push(*a);
        }
        it.next().unwrap()
    }));
    f.mapped.push((0x0e30_0000, 0x10_0000)); // SP memory is always writable by the SPMC
    s.init_partition(0, 0, 0, &mut f).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0][0], 0x10002);
    assert_eq!(s.partition(0).unwrap().version(), 0x10001);
    assert_eq!(&seen[1][..3], &[fid::FFA_SUCCESS_32 as u64, 0, 0x8001]);
    assert_eq!(&seen[2][..3], &[fid::FFA_SUCCESS_32 as u64, 0, 0x8000]);
    assert_eq!(seen[3][0], fid::FFA_SUCCESS_32 as u64);
    assert!(is_error(&seen[4], FfaError::NotSupported));
    // Feature id 1 from an SP: the Notification Pending Interrupt's id.
    assert_eq!(&seen[5][..3], &[fid::FFA_SUCCESS_32 as u64, 0, notifications::NPI_INTID as u64]);
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
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
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

/// HF_INTERRUPT_RECONFIGURE (OP-TEE's hfic unmask/mask): the status command
/// is accepted, other commands and values answer -1.
#[test]
fn hf_interrupt_reconfigure_status_only() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Regs>>> = Default::default();
    let seen2 = seen.clone();
    let r = interrupts::HF_INTERRUPT_RECONFIGURE as u64;
    let script = vec![call(&[r, 3, 2, 1]), call(&[r, 3, 2, 0]), call(&[r, 3, 0, 1]), call(&[r, 3, 2, 7]), call(&[fid::FFA_MSG_WAIT as u64])];
    let mut it = script.into_iter();
    f.sps.push(Box::new(move |_, a| {
        if let Some(a) = a {
            seen2.lock().unwrap().push(*a);
        }
        it.next().unwrap()
    }));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.iter().map(|a| a[0]).collect::<Vec<_>>(), [0, 0, u64::MAX, u64::MAX]);
}

/// OP-TEE's FF-A console sends "\r\n" line endings: the carriage return is dropped.
#[test]
fn console_log_drops_carriage_returns() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let text = b"I/TC: OP-TEE\r\nD/TC:0\r\n";
    let mut r = regs(&[fid::FFA_CONSOLE_LOG_32 as u64, text.len() as u64]);
    for (n, c) in text.iter().enumerate() {
        r[2 + n / 4] |= (*c as u64) << (8 * (n % 4));
    }
    let script = vec![SpExit::Call(r), call(&[fid::FFA_MSG_WAIT as u64])];
    let mut it = script.into_iter();
    f.sps.push(Box::new(move |_, _| it.next().unwrap()));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    assert_eq!(f.logs, vec!["[echo] I/TC: OP-TEE".to_string(), "[echo] D/TC:0".to_string()]);
}

#[test]
fn direct_response_with_reserved_w2_is_invalid() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let mut n = 0;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Regs>>> = Default::default();
    let seen2 = seen.clone();
    f.sps.push(Box::new(move |_, a| {
        n += 1;
        if let Some(a) = a {
            seen2.lock().unwrap().push(*a);
        }
        match n {
            1 => call(&[fid::FFA_MSG_WAIT as u64]),
            2 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8001_0000, 0x1, 41]), // reserved w2 bit
            3 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8001_0000, framework::FLAG, 41]), // framework bit
            4 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8001_0000, 0, 42]),
            5 => call(&[fid::FFA_MSG_WAIT as u64]),
            6 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8001_0000, 1 << 40, 43]), // reserved x2 bits
            _ => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8001_0000, 0, 44]),
        }
    }));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001]), 0, &mut f);
    assert_eq!((a[0], a[2], a[3]), (fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0, 42), "the responses with w2 set were not delivered");
    let a = s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, 0x0000_8001]), 0, &mut f);
    assert_eq!((a[0], a[2], a[3]), (fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0, 44));
    let seen = seen.lock().unwrap();
    assert!(is_error(&seen[1], FfaError::InvalidParameters), "{:x?}", seen[1]);
    assert!(is_error(&seen[2], FfaError::InvalidParameters), "{:x?}", seen[2]);
    assert!(is_error(&seen[5], FfaError::InvalidParameters), "{:x?}", seen[5]);
}

#[test]
fn partition_info_get_before_rxtx_map_is_busy() {
    let (s, mut f) = booted();
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

/// The SPMD's EL3 logical partitions (TF-A ENABLE_SPMD_LP) are listed after the SPs.
#[test]
fn partition_info_lists_the_spmd_logical_partitions() {
    use super::setup::partition_info::{LogicalPartitions, read_info_regs};
    let (mut s, mut f) = booted();
    let lp_uuid = Uuid([0x5f4a1b6e, 0x4c2d9e83, 0xa1f07b36, 0x92d8c415]);
    let mut lps = LogicalPartitions::default();
    let answer = regs(&[fid::FFA_SUCCESS_64 as u64, 0, 24 << 48, 0xffc0 | 1 << 16 | 0x102 << 32, 0x4c2d9e83_5f4a1b6e, 0x92d8c415_a1f07b36]);
    assert_eq!(read_info_regs(&answer, &mut lps), None);
    s.set_logical_partitions(lps);
    map_ns(&mut s, &mut f);
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f);
    assert_eq!(&a[..4], &[fid::FFA_SUCCESS_32 as u64, 0, 2, 24]);
    let d = f.read(RX + 24, 24);
    assert_eq!(&d[..8], &[0xc0, 0xff, 0x01, 0x00, 0x02, 0x01, 0x00, 0x00]);
    assert_eq!(&d[8..], &lp_uuid.to_bytes());
    s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f);
    // By its UUID, and the count.
    let [w1, w2, w3, w4] = lp_uuid.0.map(|w| w as u64);
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64, w1, w2, w3, w4, 1]), 0, &mut f);
    assert_eq!(&a[..3], &[fid::FFA_SUCCESS_32 as u64, 0, 1]);
    // And in registers.
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET_REGS as u64]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_SUCCESS_64 as u64);
    assert_eq!(a[2] & 0xffff_ffff, 1 | 1 << 16, "two descriptors");
    assert_eq!(a[6], 0xffc0 | 1 << 16 | 0x102 << 32);
    assert_eq!((a[7], a[8]), (0x4c2d9e83_5f4a1b6e, 0x92d8c415_a1f07b36));
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
    let (s, mut f) = booted();
    assert!(is_error(&s.handle_ns(&regs(&[0x8400_0078]), 0, &mut f), FfaError::NotSupported)); // FFA_MEM_OP_PAUSE
    assert_eq!(s.handle_ns(&regs(&[fid::FFA_FEATURES as u64, fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
}

#[test]
fn duplicate_ids_are_refused() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mem = SpMemory { base: 0, size: 0 };
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), mem)).unwrap();
    assert!(s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), mem)).is_err());
    assert!(s.add_partition(Partition::new(manifest(0x8000, ECHO_UUID), mem)).is_err());
}

#[test]
fn boot_order_sorts() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mem = SpMemory { base: 0, size: 0 };
    let mut a = manifest(0x8001, ECHO_UUID);
    a.boot_order = 5;
    let mut b = manifest(0x8002, ECHO_UUID);
    b.boot_order = 1;
    s.add_partition(Partition::new(a, mem)).unwrap();
    s.add_partition(Partition::new(b, mem)).unwrap();
    assert_eq!(&s.boot_sequence()[..3], &[Some(1), Some(0), None]);
}

// ---- SP-to-SP, REQ2, YIELD/RUN, RX_ACQUIRE, PARTITION_INFO_GET_REGS, MP contexts ----

const MP_UUID: Uuid = Uuid([0x2c3d1a5e, 0x4a8f7b61, 0x9a0c27e3, 0x5d6b1f40]);

/// A forwarding SP (like sps/mp): on a request with x3 = 1 it sends a 64-bit
/// direct request [x5, x6, x7] to partition x4 (x3 = 2: the same with REQ2,
/// Nil UUID), then answers its caller with [0 or the error code, reply x3..];
/// x3 = 0 answers [context, x4..x7]; x3 = 3 yields once before answering.
fn forwarder_sp(id: u16) -> SpFn {
    // Per context: the request being served (src, kind of request).
    let mut serving: HashMap<usize, (u16, u32)> = HashMap::new();
    let mut yielded: HashMap<usize, bool> = HashMap::new();
    Box::new(move |ctx, answer| {
        let Some(a) = answer else { return call(&[fid::FFA_MSG_WAIT as u64]) };
        let f = a[0] as u32;
        let respond = |src: u16, kind: u32, words: [u64; 5]| {
            let mut r = regs(&[0, ffa::pack_endpoints(id, src)]);
            if kind == fid::FFA_MSG_SEND_DIRECT_REQ2 {
                r[0] = fid::FFA_MSG_SEND_DIRECT_RESP2 as u64;
                r[4..9].copy_from_slice(&words);
            } else {
                r[0] = if kind == fid::FFA_MSG_SEND_DIRECT_REQ_64 { fid::FFA_MSG_SEND_DIRECT_RESP_64 } else { fid::FFA_MSG_SEND_DIRECT_RESP_32 } as u64;
                r[3..8].copy_from_slice(&words);
            }
            SpExit::Call(r)
        };
        match f {
            fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2 => {
                let (src, _) = ffa::unpack_endpoints(a[1]);
                let p = if f == fid::FFA_MSG_SEND_DIRECT_REQ2 { &a[4..9] } else { &a[3..8] };
                serving.insert(ctx, (src, f));
                match p[0] {
                    1 | 2 => {
                        let mut r = regs(&[0, ffa::pack_endpoints(id, p[1] as u16)]);
                        if p[0] == 1 {
                            r[0] = fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64;
                            r[3..6].copy_from_slice(&p[2..5]);
                        } else {
                            r[0] = fid::FFA_MSG_SEND_DIRECT_REQ2 as u64;
                            r[4..7].copy_from_slice(&p[2..5]);
                        }
                        SpExit::Call(r)
                    }
                    3 if !yielded.get(&ctx).copied().unwrap_or(false) => {
                        yielded.insert(ctx, true);
                        call(&[fid::FFA_YIELD as u64])
                    }
                    _ => respond(src, f, [ctx as u64, p[1], p[2], p[3], p[4]]),
                }
            }
            // The answer to our own request, or FFA_SUCCESS after a yield.
            _ => {
                let (src, kind) = serving[&ctx];
                if f == fid::FFA_SUCCESS_32 {
                    yielded.insert(ctx, false);
                    return respond(src, kind, [ctx as u64, 0x1e1d, 0, 0, 0]);
                }
                let words = if f == fid::FFA_ERROR {
                    [a[2] as u32 as i32 as i64 as u64, 0, 0, 0, 0]
                } else if f == fid::FFA_MSG_SEND_DIRECT_RESP2 {
                    [0, a[4], a[5], a[6], a[7]]
                } else {
                    [0, a[3], a[4], a[5], a[6]]
                };
                respond(src, kind, words)
            }
        }
    })
}

/// echo (0x8001, UP) and a forwarding MP partition (0x8002, 4 contexts), both booted on cpu 0.
fn booted_pair() -> (Spmc, Fake) {
    let (mut s, mut f) = booted();
    let i = s.add_partition(Partition::new(PartitionManifest::for_test("mp", 0x8002, MP_UUID, 4, 0x603), SpMemory { base: 0x0e40_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(forwarder_sp(0x8002));
    s.init_partition(i, 0, 0, &mut f).unwrap();
    for cpu in 1..4 {
        s.init_secondary(cpu, &mut f);
    }
    (s, f)
}

fn req64(src: u16, dst: u16, p: &[u64]) -> Regs {
    let mut r = regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, ffa::pack_endpoints(src, dst)]);
    r[3..3 + p.len()].copy_from_slice(p);
    r
}

fn req2(src: u16, dst: u16, uuid: Uuid, p: &[u64]) -> Regs {
    let b = uuid.to_bytes();
    let mut r = regs(&[
        fid::FFA_MSG_SEND_DIRECT_REQ2 as u64,
        ffa::pack_endpoints(src, dst),
        u64::from_le_bytes(b[..8].try_into().unwrap()),
        u64::from_le_bytes(b[8..].try_into().unwrap()),
    ]);
    r[4..4 + p.len()].copy_from_slice(p);
    r
}

fn echo_ok(s: &mut Spmc, f: &mut Fake) {
    let a = s.handle_ns(&req64(0, 0x8001, &[0x600d]), 0, f);
    assert_eq!((a[0], a[3]), (fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x600d), "valid call after an error");
}

#[test]
fn sp_to_sp_request_nests_and_returns() {
    let (s, mut f) = booted_pair();
    let a = s.handle_ns(&req64(0, 0x8002, &[1, 0x8001, 7, 8, 9]), 0, &mut f);
    assert_eq!(&a[..8], &[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8002_0000, 0, 0, 7, 8, 9, 0]);
    // Both contexts are free again.
    assert_eq!(s.partition(0).unwrap().ctx_state(0), CtxState::Waiting);
    assert_eq!(s.partition(1).unwrap().ctx_state(0), CtxState::Waiting);
    // REQ2 from SP to SP (Nil UUID: the partition's own service).
    let a = s.handle_ns(&req64(0, 0x8002, &[2, 0x8002, 1, 2, 3]), 1, &mut f);
    assert_eq!(a[3], FfaError::Busy as i32 as i64 as u64, "mp's own context 1 is in the chain");
}

#[test]
fn sp_to_sp_cycles_are_busy_and_chain_recovers() {
    let (mut s, mut f) = booted_pair();
    // mp -> mp on the same PE: its context is Running (a cycle).
    let a = s.handle_ns(&req64(0, 0x8002, &[1, 0x8002, 1]), 0, &mut f);
    assert_eq!(a[3], FfaError::Busy as i32 as i64 as u64);
    echo_ok(&mut s, &mut f);
    // A longer chain: NS -> mp -> (mp forwards to) a third forwarder -> back to mp.
    let k = s.add_partition(Partition::new(PartitionManifest::for_test("fwd", 0x8004, Uuid([4, 4, 4, 4]), 1, 0x603), SpMemory { base: 0x0e70_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(forwarder_sp(0x8004));
    s.init_partition(k, 0, 0, &mut f).unwrap();
    let a = s.handle_ns(&req64(0, 0x8002, &[1, 0x8004, 1, 0x8002, 5]), 0, &mut f);
    // mp got fwd's answer: fwd's own request to mp came back BUSY.
    assert_eq!(&a[3..5], &[0, FfaError::Busy as i32 as i64 as u64]);
    for p in s.partitions() {
        let states: Vec<CtxState> = (0..p.context_count()).map(|c| p.ctx_state(c)).collect();
        assert!(states.iter().all(|c| matches!(c, CtxState::Waiting | CtxState::Off)), "{states:?}");
    }
    echo_ok(&mut s, &mut f);
}

#[test]
fn sp_request_rules() {
    let (mut s, mut f) = booted_pair();
    // A request that names a source other than the SP itself.
    let mut bad_src = req64(0x8001, 0x8002, &[0]);
    bad_src[1] = ffa::pack_endpoints(0x8001, 0x8002);
    let a = s.direct_request(Caller::Sp(1), 0, 0, &bad_src, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
    // An SP whose manifest does not allow sending direct requests.
    let mut m = PartitionManifest::for_test("mute", 0x8005, Uuid([5, 5, 5, 5]), 1, 0x1);
    m.boot_order = 9;
    let k = s.add_partition(Partition::new(m, SpMemory { base: 0x0e80_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(forwarder_sp(0x8005));
    s.init_partition(k, 0, 0, &mut f).unwrap();
    let a = s.handle_ns(&req64(0, 0x8005, &[1, 0x8001, 1]), 0, &mut f);
    assert_eq!(a[3], FfaError::Denied as i32 as i64 as u64);
    // REQ2 to a partition that does not receive REQ2: DENIED.
    let a = s.handle_ns(&req2(0, 0x8005, Uuid::NIL, &[0]), 0, &mut f);
    assert!(is_error(&a, FfaError::Denied));
    echo_ok(&mut s, &mut f);
}

#[test]
fn direct_request_from_sp_outside_a_request_is_denied() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Regs>>> = Default::default();
    let seen2 = seen.clone();
    let mut it = vec![SpExit::Call(req64(0x8001, 0x8001, &[0])), call(&[fid::FFA_MSG_WAIT as u64])].into_iter();
    f.sps.push(Box::new(move |_, a| {
        if let Some(a) = a {
            seen2.lock().unwrap().push(*a);
        }
        it.next().unwrap()
    }));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    assert!(is_error(&seen.lock().unwrap()[0], FfaError::Denied));
}

#[test]
fn req2_by_uuid() {
    let (mut s, mut f) = booted_pair();
    let a = s.handle_ns(&req2(0, 0x8002, MP_UUID, &[0, 4, 5]), 2, &mut f);
    assert_eq!(a[0], fid::FFA_MSG_SEND_DIRECT_RESP2 as u64);
    assert_eq!(&a[1..7], &[0x8002_0000, 0, 0, 2, 4, 5], "x2/x3 MBZ, payload from x4; context 2 on cpu 2");
    let a = s.handle_ns(&req2(0, 0x8002, Uuid::NIL, &[0, 6]), 1, &mut f);
    assert_eq!(&a[4..6], &[1, 6]);
    // A UUID the partition does not implement.
    let a = s.handle_ns(&req2(0, 0x8002, ECHO_UUID, &[0]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
    echo_ok(&mut s, &mut f);
    // A Normal-world caller may not claim a secure source id.
    let a = s.handle_ns(&req64(0x8001, 0x8002, &[0]), 0, &mut f);
    assert!(is_error(&a, FfaError::InvalidParameters));
    // A v1.1 caller has no REQ2 (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_REQ2);
    // its version is fixed by then (see `version_is_fixed_...`).
    let (mut s, mut f) = booted_pair();
    s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, 0x10001]), 0, &mut f);
    let a = s.handle_ns(&req2(0, 0x8002, MP_UUID, &[0]), 0, &mut f);
    assert!(is_error(&a, FfaError::NotSupported));
    echo_ok(&mut s, &mut f);
}

#[test]
fn yield_then_run() {
    let (s, mut f) = booted_pair();
    let a = s.handle_ns(&req64(0, 0x8002, &[3]), 1, &mut f);
    assert_eq!(&a[..2], &[fid::FFA_YIELD as u64, 0x8002_0001]);
    assert!(matches!(s.partition(1).unwrap().ctx_state(1), CtxState::Preempted { from: 0, .. }));
    // The preempted context takes no new request; other contexts do.
    assert!(is_error(&s.handle_ns(&req64(0, 0x8002, &[0]), 1, &mut f), FfaError::Busy));
    assert_eq!(s.handle_ns(&req64(0, 0x8002, &[0]), 0, &mut f)[3], 0);
    // RUN: wrong id, wrong PE for an MP context, a context with nothing to run.
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8009_0000]), 1, &mut f), FfaError::InvalidParameters));
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8002_0001]), 0, &mut f), FfaError::InvalidParameters));
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8002_0005]), 1, &mut f), FfaError::InvalidParameters));
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8001_0000]), 0, &mut f), FfaError::Denied));
    let a = s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8002_0001]), 1, &mut f);
    assert_eq!(&a[..5], &[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8002_0000, 0, 1, 0x1e1d]);
    assert_eq!(s.partition(1).unwrap().ctx_state(1), CtxState::Waiting);
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8002_0001]), 1, &mut f), FfaError::Denied));
}

#[test]
fn yield_to_a_secure_caller_is_denied() {
    let (mut s, mut f) = booted_pair();
    // echo-like forwarder 0x8004 asks mp (x3 = 3: yield first): mp's caller is secure.
    let k = s.add_partition(Partition::new(PartitionManifest::for_test("fwd", 0x8004, Uuid([4, 4, 4, 4]), 1, 0x603), SpMemory { base: 0x0e70_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(forwarder_sp(0x8004));
    s.init_partition(k, 0, 0, &mut f).unwrap();
    let a = s.handle_ns(&req64(0, 0x8004, &[1, 0x8002, 3]), 0, &mut f);
    // mp's FFA_YIELD got DENIED, which the forwarder script treats as the
    // answer to resume with: it then answers with its error code.
    assert_eq!(a[0], fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64);
    assert_eq!(a[3], 0);
    assert_eq!(a[4], FfaError::Denied as i32 as i64 as u64);
}

#[test]
fn rx_acquire_ownership() {
    let (mut s, mut f) = booted();
    let acq = |id: u64| regs(&[fid::FFA_RX_ACQUIRE as u64, id]);
    assert!(is_error(&s.handle_ns(&acq(0), 0, &mut f), FfaError::Denied), "no buffers mapped");
    map_ns(&mut s, &mut f);
    assert!(is_error(&s.handle_ns(&acq(5), 0, &mut f), FfaError::InvalidParameters), "unknown VM");
    assert_eq!(s.handle_ns(&acq(0), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
    assert!(is_error(&s.handle_ns(&acq(0), 0, &mut f), FfaError::Busy));
    // The SPMC may not write an RX buffer it does not own.
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f), FfaError::Busy));
    assert_eq!(s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f)[2], 1);
}

#[test]
fn partition_info_get_regs() {
    let (s, mut f) = booted_pair();
    let get = |uuid: Uuid, start: u64| {
        let b = uuid.to_bytes();
        regs(&[
            fid::FFA_PARTITION_INFO_GET_REGS as u64,
            u64::from_le_bytes(b[..8].try_into().unwrap()),
            u64::from_le_bytes(b[8..].try_into().unwrap()),
            start,
        ])
    };
    let a = s.handle_ns(&get(Uuid::NIL, 0), 0, &mut f);
    assert_eq!(a[0], fid::FFA_SUCCESS_64 as u64);
    assert_eq!(a[2], 1 | 1 << 16 | 24 << 48, "last index 1, current 1, 24-byte descriptors");
    assert_eq!(a[3] & 0xffff_ffff, 0x0001_8001);
    assert_eq!(a[6] & 0xffff_ffff, 0x0004_8002);
    assert_eq!(a[7], u64::from_le_bytes(MP_UUID.to_bytes()[..8].try_into().unwrap()));
    assert_eq!(a[9], 0, "no third descriptor");
    // Start at the second; filter by UUID.
    let a = s.handle_ns(&get(Uuid::NIL, 1), 0, &mut f);
    assert_eq!((a[2] & 0xffff_ffff, a[3] & 0xffff), (1 | 1 << 16, 0x8002));
    let a = s.handle_ns(&get(MP_UUID, 0), 0, &mut f);
    assert_eq!((a[2] & 0xffff, a[3] & 0xffff), (0, 0x8002));
    // Bad start index, unknown UUID, a tag we never gave out.
    assert!(is_error(&s.handle_ns(&get(Uuid::NIL, 2), 0, &mut f), FfaError::InvalidParameters));
    assert!(is_error(&s.handle_ns(&get(Uuid([9, 9, 9, 9]), 0), 0, &mut f), FfaError::InvalidParameters));
    assert!(is_error(&s.handle_ns(&get(Uuid::NIL, 7 << 16), 0, &mut f), FfaError::Retry));
    // v1.1 callers do not have it.
    let (s, mut f) = booted_pair();
    s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0xffff_8000, framework::VERSION_REQ_W2, 0x10001]), 0, &mut f);
    assert!(is_error(&s.handle_ns(&get(Uuid::NIL, 0), 0, &mut f), FfaError::NotSupported));
}

/// An MP SP whose primary context registers `ep` and whose every context logs
/// its start and waits; then answers requests with its context index.
fn mp_sp(id: u16, ep: u64) -> SpFn {
    let mut started: HashMap<usize, u32> = HashMap::new();
    Box::new(move |ctx, answer| {
        let n = started.entry(ctx).or_insert(0);
        *n += 1;
        match (answer, *n) {
            (None, _) if ctx == 0 => call(&[fid::FFA_SECONDARY_EP_REGISTER_64 as u64, ep]),
            (None, _) => {
                *n = 10; // secondary: straight to wait
                log32(&format!("ctx {ctx}\n"))
            }
            (Some(a), _) if a[0] as u32 == fid::FFA_MSG_SEND_DIRECT_REQ_64 => {
                let (src, _) = ffa::unpack_endpoints(a[1]);
                call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, ffa::pack_endpoints(id, src), 0, ctx as u64])
            }
            _ => call(&[fid::FFA_MSG_WAIT as u64]),
        }
    })
}

#[test]
fn mp_contexts_start_on_their_cores() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    let mem = SpMemory { base: 0x0e40_0000, size: 0x10_0000 };
    let ep = 0x0e40_4100;
    s.add_partition(Partition::new(PartitionManifest::for_test("mp", 0x8002, MP_UUID, 4, 0x603), mem)).unwrap();
    f.sps.push(mp_sp(0x8002, ep));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    assert_eq!(s.partition(0).unwrap().secondary_ep(), Some(ep));
    // Before its core is up, a context takes no request.
    assert!(is_error(&s.handle_ns(&req64(0, 0x8002, &[0]), 2, &mut f), FfaError::Busy));
    for cpu in 1..4 {
        s.init_secondary(cpu, &mut f);
        assert_eq!(s.partition(0).unwrap().ctx_state(cpu), CtxState::Waiting);
        assert!(f.resets.contains(&(0, cpu, Some(ep))));
        let a = s.handle_ns(&req64(0, 0x8002, &[0]), cpu, &mut f);
        assert_eq!(a[3], cpu as u64, "context {cpu} serves cpu {cpu}");
    }
    assert_eq!(f.logs, vec!["[mp] ctx 1", "[mp] ctx 2", "[mp] ctx 3"]);
    // Warm boot of a core again: its context restarts at the secondary entry.
    s.init_secondary(2, &mut f);
    assert_eq!(f.resets.iter().filter(|r| **r == (0, 2, Some(ep))).count(), 2);
    assert_eq!(s.handle_ns(&req64(0, 0x8002, &[0]), 2, &mut f)[3], 2);
}

#[test]
fn secondary_ep_register_rules() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    let mem = SpMemory { base: 0x0e40_0000, size: 0x10_0000 };
    s.add_partition(Partition::new(PartitionManifest::for_test("mp", 0x8002, MP_UUID, 4, 0x603), mem)).unwrap();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Regs>>> = Default::default();
    let seen2 = seen.clone();
    let mut it = vec![
        call(&[fid::FFA_SECONDARY_EP_REGISTER_64 as u64, 0x0e30_4000]), // outside its memory
        call(&[fid::FFA_SECONDARY_EP_REGISTER_64 as u64, 0x0e40_4002]), // misaligned
        call(&[fid::FFA_SECONDARY_EP_REGISTER_64 as u64, 0x0e40_4000]),
        call(&[fid::FFA_MSG_WAIT as u64]),
        call(&[fid::FFA_SECONDARY_EP_REGISTER_64 as u64, 0x0e40_4000]), // after init
        call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8002_0000]),
    ]
    .into_iter();
    f.sps.push(Box::new(move |_, a| {
        if let Some(a) = a {
            seen2.lock().unwrap().push(*a);
        }
        it.next().unwrap()
    }));
    let seen3: std::sync::Arc<std::sync::Mutex<Vec<Regs>>> = Default::default();
    let seen4 = seen3.clone();
    let mut it2 = vec![call(&[fid::FFA_SECONDARY_EP_REGISTER_64 as u64, 0x0e30_4000]), call(&[fid::FFA_MSG_WAIT as u64])].into_iter();
    f.sps.push(Box::new(move |_, a| {
        if let Some(a) = a {
            seen4.lock().unwrap().push(*a);
        }
        it2.next().unwrap()
    }));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    s.init_partition(1, 0, 0, &mut f).unwrap();
    s.handle_ns(&req64(0, 0x8002, &[0]), 0, &mut f);
    let seen = seen.lock().unwrap();
    assert!(is_error(&seen[0], FfaError::InvalidParameters));
    assert!(is_error(&seen[1], FfaError::InvalidParameters));
    assert_eq!(seen[2][0], fid::FFA_SUCCESS_32 as u64);
    assert!(is_error(&seen[4], FfaError::Denied), "only during initialisation");
    assert!(is_error(&seen3.lock().unwrap()[0], FfaError::Denied), "a UP partition has no secondary contexts");
    assert_eq!(s.partition(0).unwrap().secondary_ep(), Some(0x0e40_4000));
}

#[test]
fn aborted_partition_in_a_chain() {
    let (mut s, mut f) = booted_pair();
    // A third SP that faults on its first request.
    let k = s.add_partition(Partition::new(PartitionManifest::for_test("isolation", 0x8003, Uuid([3, 3, 3, 3]), 1, 0x1), SpMemory { base: 0x0e50_0000, size: 0x10_0000 })).unwrap();
    let mut n = 0;
    f.sps.push(Box::new(move |_, _| {
        n += 1;
        if n == 1 { call(&[fid::FFA_MSG_WAIT as u64]) } else { SpExit::Fault { esr: 0x9200_0007, far: 0x0e30_0000, elr: 0x0e50_4abc, ipa: Some(0x0e30_0000) } }
    }));
    s.init_partition(k, 0, 0, &mut f).unwrap();
    assert!(is_error(&s.handle_ns(&req64(0, 0x8003, &[1, 0x0e30_0000]), 0, &mut f), FfaError::Aborted));
    assert!(s.partition(k).unwrap().is_aborted());
    // An SP caller also learns ABORTED; everyone else keeps working.
    let a = s.handle_ns(&req64(0, 0x8002, &[1, 0x8003, 0]), 0, &mut f);
    assert_eq!(a[3], FfaError::Aborted as i32 as i64 as u64);
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8003_0000]), 0, &mut f), FfaError::Aborted));
    echo_ok(&mut s, &mut f);
    assert_eq!(s.handle_ns(&req64(0, 0x8002, &[0]), 3, &mut f)[0], fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64);
}

// ---- Interrupts (DEN0077 v1.2, interrupt management) ----

use crate::partition::manifest::NsInterruptsAction;

/// An SP (id 0x8005, UP) with `action` whose request handler is `script`.
fn irq_sp_spmc(action: NsInterruptsAction, script: SpFn) -> (Spmc, Fake) {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    let mut m = PartitionManifest::for_test("irq", 0x8005, Uuid([5, 5, 5, 5]), 1, 0x603).with_device_interrupt_for_test(0x0910_0000, 60);
    m.ns_interrupts_action = action;
    let i = s.add_partition(Partition::new(m, SpMemory { base: 0x0e70_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(script);
    s.init_partition(i, 0, 0, &mut f).unwrap();
    (s, f)
}

/// Waits, then on a request: one NS interrupt arrives mid-request (`NsInterrupt`);
/// when resumed with no answer it asks HF_INTERRUPT_GET and answers with that id in x4.
fn interrupted_sp() -> SpFn {
    let mut step = 0;
    Box::new(move |_ctx, answer| {
        step += 1;
        match step {
            1 => call(&[fid::FFA_MSG_WAIT as u64]),
            2 => {
                assert_eq!(answer.unwrap()[0], fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64);
                SpExit::NsInterrupt
            }
            3 => {
                assert!(answer.is_none(), "an interrupted SP resumes with its registers untouched");
                call(&[interrupts::HF_INTERRUPT_GET as u64])
            }
            4 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8005_0000, 0, 0x600d, answer.unwrap()[0]]),
            _ => call(&[fid::FFA_MSG_WAIT as u64]),
        }
    })
}

#[test]
fn ns_interrupt_signalled_returns_ffa_interrupt_and_run_resumes() {
    let (s, mut f) = irq_sp_spmc(NsInterruptsAction::Signaled, interrupted_sp());
    let a = s.handle_ns(&req64(0, 0x8005, &[1]), 0, &mut f);
    assert!(f.flags.last().unwrap().trap_ns, "NS interrupts trap while it serves NS");
    assert_eq!(&a[..2], &[fid::FFA_INTERRUPT as u64, 0x8005_0000]);
    assert!(matches!(s.partition(0).unwrap().ctx_state(0), CtxState::Interrupted { from: 0, .. }));
    // Busy until resumed; RUN resumes it where it was.
    assert!(is_error(&s.handle_ns(&req64(0, 0x8005, &[1]), 0, &mut f), FfaError::Busy));
    let a = s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8005_0000]), 0, &mut f);
    assert_eq!(&a[..5], &[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8005_0000, 0, 0x600d, interrupts::HF_INVALID_INTID]);
    assert_eq!(s.partition(0).unwrap().ctx_state(0), CtxState::Waiting);
}

#[test]
fn ns_interrupt_managed_exit_injects_virtual_interrupt() {
    let (s, mut f) = irq_sp_spmc(NsInterruptsAction::ManagedExit, interrupted_sp());
    let a = s.handle_ns(&req64(0, 0x8005, &[1]), 0, &mut f);
    // The SP answered its caller itself, with the managed-exit id it got.
    assert_eq!(&a[..5], &[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8005_0000, 0, 0x600d, interrupts::MANAGED_EXIT_INTID as u64]);
    let fl = &f.flags[f.flags.len() - 2..];
    assert!(fl[0].virq && !fl[0].trap_ns, "after the managed exit: vIRQ pending, NS interrupts held: {fl:?}");
    assert!(!s.context(0, 0).managed_exit, "cleared by the response");
    assert_eq!(s.partition(0).unwrap().ctx_state(0), CtxState::Waiting);
}

#[test]
fn ns_interrupt_queued_does_not_trap() {
    let (s, mut f) = irq_sp_spmc(NsInterruptsAction::Queued, echo_sp(0x8005));
    let a = s.handle_ns(&req64(0, 0x8005, &[1, 2]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64);
    assert!(f.flags.iter().all(|fl| !fl.trap_ns));
}

/// Waits; each FFA_INTERRUPT: HF_INTERRUPT_GET, HF_INTERRUPT_DEACTIVATE, then
/// FFA_MSG_WAIT; records the ids it got in `got`.
fn waiting_handler_sp(got: std::sync::Arc<std::sync::Mutex<Vec<u64>>>) -> SpFn {
    let mut step = 0;
    let mut asked = false;
    Box::new(move |_ctx, answer| {
        step += 1;
        match step {
            1 => call(&[fid::FFA_MSG_WAIT as u64]),
            _ => {
                let a = answer.unwrap();
                if a[0] == fid::FFA_INTERRUPT as u64 {
                    assert_eq!(a[1], 0x8005_0000);
                    asked = true;
                    return call(&[interrupts::HF_INTERRUPT_GET as u64]);
                }
                if a[0] == fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64 {
                    return call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8005_0000, 0, got.lock().unwrap().len() as u64]);
                }
                if core::mem::take(&mut asked) {
                    // The answer of HF_INTERRUPT_GET: deactivate it.
                    got.lock().unwrap().push(a[0]);
                    return call(&[interrupts::HF_INTERRUPT_DEACTIVATE as u64, a[0], a[0]]);
                }
                call(&[fid::FFA_MSG_WAIT as u64])
            }
        }
    })
}

#[test]
fn secure_interrupt_from_spmd_runs_the_waiting_sp() {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (s, mut f) = irq_sp_spmc(NsInterruptsAction::Queued, waiting_handler_sp(got.clone()));
    // A device interrupt declared in the manifest (INTID 60).
    f.pending_intid = 60;
    let a = s.handle_ns(&regs(&[fid::FFA_INTERRUPT as u64]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_NORMAL_WORLD_RESUME as u64);
    assert_eq!(*got.lock().unwrap(), vec![60]);
    assert_eq!(f.deactivated, vec![60], "deactivated when the SP said so");
    assert!(f.flags.iter().all(|fl| !fl.trap_ns));
    assert_eq!(s.partition(0).unwrap().ctx_state(0), CtxState::Waiting);
    // The emulated timer: the SPMC's timer PPI, delivered as the virtual timer id.
    f.pending_intid = interrupts::SEL2_PHYS_TIMER_INTID;
    f.expired = vec![(0, 0)];
    let a = s.handle_ns(&regs(&[fid::FFA_INTERRUPT as u64]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_NORMAL_WORLD_RESUME as u64);
    assert_eq!(*got.lock().unwrap(), vec![60, interrupts::VIRTUAL_TIMER_INTID as u64]);
    assert_eq!(f.deactivated, vec![60, interrupts::SEL2_PHYS_TIMER_INTID]);
    // Nothing pending (spurious) and an interrupt nobody owns: NS just resumes.
    let a = s.handle_ns(&regs(&[fid::FFA_INTERRUPT as u64]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_NORMAL_WORLD_RESUME as u64);
    f.pending_intid = 61;
    let a = s.handle_ns(&regs(&[fid::FFA_INTERRUPT as u64]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_NORMAL_WORLD_RESUME as u64);
    assert_eq!(f.deactivated.last(), Some(&61));
    // The SP still answers requests (and counted two interrupts).
    assert_eq!(s.handle_ns(&req64(0, 0x8005, &[0]), 0, &mut f)[3], 2);
}

#[test]
fn secure_interrupt_while_its_sp_runs_is_injected() {
    let mut step = 0;
    let script: SpFn = Box::new(move |_ctx, answer| {
        step += 1;
        match step {
            1 => call(&[fid::FFA_MSG_WAIT as u64]),
            2 => SpExit::SecureInterrupt(60),
            3 => {
                assert!(answer.is_none());
                call(&[interrupts::HF_INTERRUPT_GET as u64])
            }
            4 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8005_0000, 0, answer.unwrap()[0]]),
            _ => call(&[fid::FFA_MSG_WAIT as u64]),
        }
    });
    let (s, mut f) = irq_sp_spmc(NsInterruptsAction::Queued, script);
    let a = s.handle_ns(&req64(0, 0x8005, &[0]), 0, &mut f);
    assert_eq!(a[3], 60);
    // The run right after the interrupt had the vIRQ pending.
    assert!(f.flags[f.flags.len() - 2].virq);
    assert!(f.deactivated.is_empty(), "the SP has not deactivated it");
}

#[test]
fn hf_interrupt_deactivate_of_a_foreign_interrupt_fails() {
    let mut step = 0;
    let script: SpFn = Box::new(move |_ctx, answer| {
        step += 1;
        match step {
            1 => call(&[fid::FFA_MSG_WAIT as u64]),
            2 => call(&[interrupts::HF_INTERRUPT_DEACTIVATE as u64, 77, 77]),
            3 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8005_0000, 0, answer.unwrap()[0]]),
            _ => call(&[fid::FFA_MSG_WAIT as u64]),
        }
    });
    let (s, mut f) = irq_sp_spmc(NsInterruptsAction::Queued, script);
    assert_eq!(s.handle_ns(&req64(0, 0x8005, &[0]), 0, &mut f)[3], u64::MAX);
    assert!(f.deactivated.is_empty());
}

// The call table.

#[test]
fn call_table_ids_and_names_are_unique() {
    for (n, a) in CALLS.iter().enumerate() {
        for b in &CALLS[n + 1..] {
            assert_ne!(a.id, b.id, "{} and {} share an id", a.name, b.name);
            assert_ne!(a.name, b.name);
        }
    }
}

/// `handle_ns` and `handle_sp_call` take the round trip's calls straight to
/// a handler: it must be the one their table rows name, with the rows raw
/// (no decode) and allowing those callers, so the shortcut answers exactly
/// what `dispatch` would.
#[test]
fn fast_paths_are_the_rows_handlers() {
    use calls::{Handler, lookup};
    for f in [fid::FFA_MSG_SEND_DIRECT_REQ_32, fid::FFA_MSG_SEND_DIRECT_REQ_64, fid::FFA_MSG_SEND_DIRECT_REQ2] {
        let row = lookup(f).unwrap();
        assert!(row.from.ns && row.from.sp && !row.decoded, "{}", row.name);
        let Handler::Reply(h) = row.handler else { panic!("{}", row.name) };
        assert_eq!(h as usize, direct_messaging::ffa_msg_send_direct_req as *const () as usize, "{}", row.name);
    }
    for f in [fid::FFA_MSG_SEND_DIRECT_RESP_32, fid::FFA_MSG_SEND_DIRECT_RESP_64, fid::FFA_MSG_SEND_DIRECT_RESP2] {
        let row = lookup(f).unwrap();
        assert!(row.from.sp && !row.decoded, "{}", row.name);
        let Handler::Step(h) = row.handler else { panic!("{}", row.name) };
        assert_eq!(h as usize, direct_messaging::ffa_msg_send_direct_resp as *const () as usize, "{}", row.name);
    }
}

#[test]
fn call_table_drives_features() {
    let (s, mut f) = booted();
    for c in CALLS {
        let a = s.handle_ns(&regs(&[fid::FFA_FEATURES as u64, c.id as u64]), 0, &mut f);
        match c.abi {
            calls::Abi::Ffa => assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64, "{} must be reported", c.name),
            calls::Abi::Hafnium => assert!(is_error(&a, FfaError::NotSupported), "{} is not FF-A", c.name),
        }
    }
    // Ids the table does not know, FF-A or not.
    for id in [0x8400_0078u32, 0x8400_0079, 0xC400_0060, 0x8400_00FF, 0x1234] {
        assert!(calls::lookup(id).is_none());
        let a = s.handle_ns(&regs(&[fid::FFA_FEATURES as u64, id as u64]), 0, &mut f);
        assert!(is_error(&a, FfaError::NotSupported), "{:#x}", id);
    }
}

#[test]
fn call_table_worlds_are_enforced() {
    let (mut s, mut f) = booted();
    // Unknown ids from the Normal world, then a valid call still works.
    for id in [0x8400_0078u64, 0xC400_00FF, 0, u64::MAX, 0x8400_0060 | 0x4000_0000] {
        let a = s.handle_ns(&regs(&[id]), 0, &mut f);
        assert!(is_error(&a, FfaError::NotSupported), "{:#x}", id);
    }
    // Rows the Normal world may not call answer NOT_SUPPORTED without running anything.
    let runs = f.runs.len();
    for c in CALLS.iter().filter(|c| !c.from.ns) {
        let a = s.handle_ns(&regs(&[c.id as u64]), 0, &mut f);
        assert!(is_error(&a, FfaError::NotSupported), "{} from NS", c.name);
    }
    assert_eq!(f.runs.len(), runs);
    echo_ok(&mut s, &mut f);
}

#[test]
fn log_names_come_from_the_table() {
    assert_eq!(fid_name(fid::FFA_MSG_SEND_DIRECT_REQ_32), "DIRECT_REQ");
    assert_eq!(fid_name(fid::FFA_MSG_SEND_DIRECT_REQ_64), "DIRECT_REQ");
    assert_eq!(fid_name(fid::FFA_MSG_SEND_DIRECT_REQ2), "DIRECT_REQ2");
    assert_eq!(fid_name(fid::FFA_RXTX_MAP_64), "RXTX_MAP");
    assert_eq!(fid_name(fid::FFA_PARTITION_INFO_GET_REGS), "PARTITION_INFO_GET_REGS");
    assert_eq!(fid_name(fid::FFA_FEATURES), "FEATURES");
    assert_eq!(fid_name(0x8400_0078), "call");
}

// Decoding through arm-ffa: hostile registers never panic.

/// xorshift64*: a fixed-seed source of hostile register values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A random value, often a small or boundary one.
    fn value(&mut self) -> u64 {
        match self.next() % 6 {
            0 => 0,
            1 => u64::MAX,
            2 => self.next() & 0xffff_ffff,
            3 => self.next() & 0xff,
            4 => 1 << (self.next() % 64),
            _ => self.next(),
        }
    }

    /// A function id: any FF-A one (32 or 64-bit), a table row's, or garbage.
    fn fid(&mut self) -> u64 {
        match self.next() % 4 {
            0 => 0x8400_0060 + self.next() % 0xa0,
            1 => 0xC400_0060 + self.next() % 0xa0,
            2 => CALLS[(self.next() % CALLS.len() as u64) as usize].id as u64,
            _ => self.value(),
        }
    }

    fn regs(&mut self) -> Regs {
        let mut r: Regs = core::array::from_fn(|_| self.value());
        r[0] = self.fid();
        r
    }
}

const SOME_VERSIONS: [u32; 6] = [0x1_0000, 0x1_0001, 0x1_0002, 0x1_0003, 0x2_0000, 0xffff_ffff];

#[test]
fn decode_never_panics_on_random_registers() {
    let mut rng = Rng(0x5eed_0ffa);
    for _ in 0..50_000 {
        let r = rng.regs();
        let v = if rng.next().is_multiple_of(4) { rng.next() as u32 } else { SOME_VERSIONS[(rng.next() % 6) as usize] };
        if let Err(e) = codec::decode(v, &r) {
            assert!(matches!(e, FfaError::NotSupported | FfaError::InvalidParameters | FfaError::Retry), "{:#x?}: {:?}", r, e);
        }
    }
}

#[test]
fn decode_targeted_cases() {
    let mut r = [0u64; 18];
    // The crate asserts on the 18-register layouts below v1.2.
    for f in [fid::FFA_MSG_SEND_DIRECT_REQ_64, fid::FFA_MSG_SEND_DIRECT_RESP_64, fid::FFA_SUCCESS_64, fid::FFA_CONSOLE_LOG_64] {
        r[0] = f as u64;
        r[1] = 0x0000_8001;
        for v in [0x1_0000, 0x1_0001] {
            assert!(codec::decode(v, &r).is_ok(), "{:#x} at {:#x}", f, v);
        }
    }
    // Unknown ids: NOT_SUPPORTED.
    for f in [0u64, 0x8400_005F, 0x8400_00FF, 0xC400_0069, 0xff04, u64::MAX] {
        r[0] = f;
        assert_eq!(codec::decode(0x1_0002, &r), Err(FfaError::NotSupported), "{:#x}", f);
    }
    // Reserved PARTITION_INFO_GET flags: INVALID_PARAMETERS (the crate's own
    // error conversion recurses forever on this one).
    let r = regs(&[fid::FFA_PARTITION_INFO_GET as u64, 0, 0, 0, 0, 1 << 5]);
    assert_eq!(codec::decode(0x1_0002, &r), Err(FfaError::InvalidParameters));
    // An unknown framework message: INVALID_PARAMETERS.
    let r = regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 0x0000_8001, framework::FLAG | 0x55]);
    assert_eq!(codec::decode(0x1_0002, &r), Err(FfaError::InvalidParameters));
    // A tag with start index 0: RETRY.
    let r = regs(&[fid::FFA_PARTITION_INFO_GET_REGS as u64, 0, 0, 1 << 16]);
    assert_eq!(codec::decode(0x1_0002, &r), Err(FfaError::Retry));
    // ... but below v1.2 the call itself is NOT_SUPPORTED first, as before.
    assert_eq!(codec::decode(0x1_0001, &r), Err(FfaError::NotSupported));
    // FFA_CONSOLE_LOG is served to v1.1 callers (the crate says v1.2).
    let r = regs(&[fid::FFA_CONSOLE_LOG_32 as u64, 3, 0x0a_6968]);
    assert!(codec::decode(0x1_0001, &r).is_ok());
}

#[test]
fn common_replies_encode_as_the_spec_says() {
    for code in [FfaError::NotSupported, FfaError::InvalidParameters, FfaError::NoMemory, FfaError::Busy, FfaError::Interrupted, FfaError::Denied, FfaError::Retry, FfaError::Aborted, FfaError::NoData] {
        let mut want = [0u64; 18];
        want[0] = fid::FFA_ERROR as u64;
        want[2] = code as i32 as u32 as u64;
        assert_eq!(error(code), want);
    }
    let mut want = [0u64; 18];
    want[0] = fid::FFA_SUCCESS_32 as u64;
    want[2] = 0x8001;
    want[3] = 0xffff_ffff;
    assert_eq!(success(&[0x8001, u64::MAX]), want);
}

/// An SP that answers any direct request correctly (and repeats its answer
/// if the SPMC refused something), whatever the request held.
fn sturdy_sp(id: u16) -> SpFn {
    let mut last: Option<Regs> = None;
    Box::new(move |_ctx, answer| {
        let Some(a) = answer else { return call(&[fid::FFA_MSG_WAIT as u64]) };
        let f = a[0] as u32;
        if matches!(f, fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2) {
            last = Some(*a);
        }
        let Some(req) = last else { return call(&[fid::FFA_MSG_WAIT as u64]) };
        let (src, _) = ffa::unpack_endpoints(req[1]);
        let resp = match req[0] as u32 {
            fid::FFA_MSG_SEND_DIRECT_REQ_32 => fid::FFA_MSG_SEND_DIRECT_RESP_32,
            fid::FFA_MSG_SEND_DIRECT_REQ_64 => fid::FFA_MSG_SEND_DIRECT_RESP_64,
            _ => fid::FFA_MSG_SEND_DIRECT_RESP2,
        };
        call(&[resp as u64, ffa::pack_endpoints(id, src), 0, 0, req[4]])
    })
}

#[test]
fn hostile_normal_world_registers_never_panic() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    let i = s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(sturdy_sp(0x8001));
    s.init_partition(i, 0, 0, &mut f).unwrap();
    let mut rng = Rng(0xbad_5eed);
    for n in 0..20_000 {
        let mut r = rng.regs();
        if n % 3 == 0 {
            // Aim at the partition or at the SPMD's framework endpoint now and then.
            r[1] = if rng.next().is_multiple_of(2) { 0x0000_8001 } else { 0xffff_8000 };
        }
        let a = s.handle_ns(&r, 0, &mut f);
        if a[0] == fid::FFA_ERROR as u64 {
            assert!((1..=9).contains(&(a[2] as u32 as i32).unsigned_abs()), "{:#x?} -> {:#x?}", r, a);
        }
    }
    // Still serving.
    let a = s.handle_ns(&req64(0, 0x8001, &[0x600d]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64);
}

#[test]
fn hostile_sp_registers_never_panic() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    let i = s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let mut rng = Rng(0x0005_5eed_0001);
    let mut left = 20_000;
    f.sps.push(Box::new(move |_, _| {
        left -= 1;
        if left == 0 {
            return call(&[fid::FFA_MSG_WAIT as u64]);
        }
        let mut r = rng.regs();
        // Not FFA_ERROR (it ends the SP, tested elsewhere) nor FFA_MSG_WAIT (it ends init).
        if r[0] as u32 == fid::FFA_ERROR || r[0] as u32 == fid::FFA_MSG_WAIT {
            r[0] = fid::FFA_FEATURES as u64;
        }
        SpExit::Call(r)
    }));
    f.mapped.push((0x0e30_0000, 0x10_0000));
    s.init_partition(i, 0, 0, &mut f).unwrap();
    assert_eq!(s.partition(i).unwrap().ctx_state(0), CtxState::Waiting);
}

/// A fake machine for one PE of a multi-PE test: SP `index` runs `sp`, the
/// others must not run on this PE.
fn pe_platform(index: usize, sp: SpFn) -> Fake {
    let mut f = Fake::new();
    for i in 0..index {
        f.sps.push(Box::new(move |_, _| panic!("SP {i} must not run on this PE")));
    }
    f.sps.push(sp);
    f
}

/// An SP context that answers one direct request with `[x3 + 1]`.
fn answer_once(id: u16) -> SpFn {
    Box::new(move |_, a| {
        let a = a.expect("a request");
        let (src, _) = ffa::unpack_endpoints(a[1]);
        call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, ffa::pack_endpoints(id, src), 0, a[3] + 1])
    })
}

/// Issue R: locks per execution context, none held while an SP runs.  PE 1
/// sends mp (context 1) a request that does not finish until PE 0's request
/// to echo has completed; with one SPMC-wide lock PE 0 would wait behind PE 1
/// and this test would time out instead (the order of completions is the
/// verdict, not a time).
#[test]
fn requests_on_two_pes_to_different_sps_run_in_parallel() {
    use std::sync::mpsc;
    use std::time::Duration;
    let (s, _) = booted_pair();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let order = std::sync::Mutex::new(Vec::new());
    // mp on PE 1: says it runs, then waits for PE 0's completion (or gives up).
    let slow: SpFn = Box::new(move |ctx, a| {
        let a = a.expect("a request");
        assert_eq!(ctx, 1, "mp's context for PE 1");
        started_tx.send(()).unwrap();
        let waited = go_rx.recv_timeout(Duration::from_secs(20)).is_ok();
        let (src, _) = ffa::unpack_endpoints(a[1]);
        call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, ffa::pack_endpoints(0x8002, src), 0, waited as u64])
    });
    std::thread::scope(|t| {
        let (s, order) = (&s, &order);
        t.spawn(move || {
            let mut pe1 = pe_platform(1, slow);
            let a = s.handle_ns(&req64(0, 0x8002, &[7]), 1, &mut pe1);
            order.lock().unwrap().push(("mp on PE 1", a));
        });
        started_rx.recv_timeout(Duration::from_secs(20)).expect("mp started on PE 1");
        // mp's context 1 is running on PE 1 now (inside run_sp).
        let mut pe0 = pe_platform(0, answer_once(0x8001));
        let a = s.handle_ns(&req64(0, 0x8001, &[41]), 0, &mut pe0);
        order.lock().unwrap().push(("echo on PE 0", a));
        go_tx.send(()).unwrap();
    });
    let order = order.into_inner().unwrap();
    let names: Vec<&str> = order.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["echo on PE 0", "mp on PE 1"]);
    assert_eq!(order[0].1[3], 42, "echo answered");
    assert_eq!(order[1].1[3], 1, "mp was released by PE 0's completion, not by its timeout");
    // While it ran, a request for the same context from elsewhere was BUSY,
    // and now both wait again.
    assert_eq!(s.partition(0).unwrap().ctx_state(0), CtxState::Waiting);
    assert_eq!(s.partition(1).unwrap().ctx_state(1), CtxState::Waiting);
}

/// A request for a context that another PE is running gets BUSY at once
/// (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_REQ: BUSY), as Hafnium answers: echo
/// is a UP partition, so PE 1 finds its one context taken by PE 0.
#[test]
fn request_for_a_context_running_on_another_pe_is_busy() {
    use std::sync::mpsc;
    use std::time::Duration;
    let (s, _) = booted_pair();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let held: SpFn = Box::new(move |_, a| {
        let a = a.expect("a request");
        started_tx.send(()).unwrap();
        go_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        let (src, _) = ffa::unpack_endpoints(a[1]);
        call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, ffa::pack_endpoints(0x8001, src), 0, a[3]])
    });
    std::thread::scope(|t| {
        let s = &s;
        let h = t.spawn(move || s.handle_ns(&req64(0, 0x8001, &[5]), 0, &mut pe_platform(0, held)));
        started_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        let mut pe1 = pe_platform(0, Box::new(|_, _| panic!("echo is running on PE 0")));
        let a = s.handle_ns(&req64(0, 0x8001, &[6]), 1, &mut pe1);
        assert!(is_error(&a, FfaError::Busy), "{a:x?}");
        go_tx.send(()).unwrap();
        assert_eq!(h.join().unwrap()[3], 5);
    });
    assert_eq!(s.partition(0).unwrap().ctx_state(0), CtxState::Waiting);
}

#[test]
fn two_contexts_lock_in_one_order_and_never_the_same_twice() {
    let (s, _) = booted_pair();
    let (a, b) = s.lock_two((1, 2), (0, 0)).unwrap();
    assert_eq!((a.index, a.ctx, b.index, b.ctx), (1, 2, 0, 0), "returned in the order asked");
    drop((a, b));
    assert!(s.lock_two((1, 1), (1, 1)).is_none());
}

// ---- Notifications and indirect messaging (DEN0077 v1.2 chapters
// "Notifications" and "Indirect messaging").

/// A proxy SP: each 64-bit direct request's x3..x7 is an FF-A call it makes
/// (x0..x4); it answers with that call's x0, x2..x5 as x3..x7.
fn proxy_sp(id: u16) -> SpFn {
    let mut step = 0;
    let mut caller: Option<u16> = None;
    Box::new(move |_ctx, answer| {
        step += 1;
        if step == 1 {
            return call(&[fid::FFA_MSG_WAIT as u64]);
        }
        let a = answer.unwrap();
        match caller.take() {
            None => {
                caller = Some(ffa::unpack_endpoints(a[1]).0);
                call(&[a[3], a[4], a[5], a[6], a[7]])
            }
            Some(src) => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, ffa::pack_endpoints(id, src), 0, a[0], a[2], a[3], a[4], a[5]]),
        }
    })
}

const SP_TX: u64 = 0x0e3f_0000;
const SP_RX: u64 = 0x0e3f_1000;

/// The proxy SP 0x8001 with notification support and indirect messaging.
fn booted_proxy() -> (Spmc, Fake) {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    let mut m = PartitionManifest::for_test("proxy", 0x8001, ECHO_UUID, 1, 0x607);
    m.notification_support = true;
    let i = s.add_partition(Partition::new(m, SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    // A second SP without notifications or indirect messaging.
    let j = s.add_partition(Partition::new(manifest(0x8002, Uuid([2, 2, 2, 2])), SpMemory { base: 0x0e40_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(proxy_sp(0x8001));
    f.sps.push(echo_sp(0x8002));
    f.mapped.push((0x0e30_0000, 0x10_0000));
    s.init_partition(i, 0, 0, &mut f).unwrap();
    s.init_partition(j, 0, 0, &mut f).unwrap();
    (s, f)
}

/// The proxy SP makes call `c`; its answer's x0, x2..x5.
fn sp_call(s: &Spmc, f: &mut Fake, c: &[u64]) -> [u64; 5] {
    let mut p = [0u64; 5];
    p[..c.len()].copy_from_slice(c);
    let a = s.handle_ns(&req64(0, 0x8001, &p), 0, f);
    assert_eq!(a[0], fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, "{a:#x?}");
    [a[3], a[4], a[5], a[6], a[7]]
}

fn sp_error(a: &[u64; 5], code: FfaError) -> bool {
    a[0] == fid::FFA_ERROR as u64 && a[1] == code as i32 as u32 as u64
}

const SP_BITMAP: u64 = 1;
const VM_BITMAP: u64 = 2;
const SPM_BITMAP: u64 = 4;

#[test]
fn features_report_interrupt_ids() {
    let (s, mut f) = booted_proxy();
    let feat = |s: &Spmc, f: &mut Fake, id: u64| s.handle_ns(&regs(&[fid::FFA_FEATURES as u64, id]), 0, f);
    // SRI to the Normal world; NPI and MEI are SPs' only.
    assert_eq!(&feat(&s, &mut f, 2)[..3], &[fid::FFA_SUCCESS_32 as u64, 0, 8]);
    assert!(is_error(&feat(&s, &mut f, 1), FfaError::NotSupported));
    assert!(is_error(&feat(&s, &mut f, 3), FfaError::NotSupported));
    // Reserved bits 30:8 of a feature id: not the SRI.
    assert!(is_error(&feat(&s, &mut f, 0x102), FfaError::NotSupported));
    assert!(is_error(&feat(&s, &mut f, 0), FfaError::NotSupported));
    let a = sp_call(&s, &mut f, &[fid::FFA_FEATURES as u64, 3]);
    assert_eq!(&a[..2], &[fid::FFA_SUCCESS_32 as u64, interrupts::MANAGED_EXIT_INTID as u64]);
    let a = sp_call(&s, &mut f, &[fid::FFA_FEATURES as u64, 1]);
    assert_eq!(&a[..2], &[fid::FFA_SUCCESS_32 as u64, notifications::NPI_INTID as u64]);
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_FEATURES as u64, 2]), FfaError::NotSupported));
    // The new rows are reported as function ids.
    for id in [fid::FFA_NOTIFICATION_BITMAP_CREATE, fid::FFA_NOTIFICATION_INFO_GET_64, fid::FFA_MSG_SEND2] {
        assert_eq!(feat(&s, &mut f, id as u64)[0], fid::FFA_SUCCESS_32 as u64);
    }
}

#[test]
fn notifications_between_ns_and_an_sp() {
    let (s, mut f) = booted_proxy();
    let ns = |s: &Spmc, f: &mut Fake, r: &[u64]| s.handle_ns(&regs(r), 0, f);
    let bitmaps = |s: &Spmc| (s.notification_bitmaps(0).unwrap(), s.notification_bitmaps(0x8001).unwrap());

    // BITMAP_CREATE for endpoint 0 (as Linux's arm_ffa), and its errors.
    let before = bitmaps(&s);
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_BIND as u64, 0x8001 << 16, 0, 1]), FfaError::Denied), "no bitmap yet");
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_BITMAP_CREATE as u64, 0x8001, 4]), FfaError::InvalidParameters));
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_BITMAP_CREATE as u64, 0, 100]), FfaError::InvalidParameters));
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_BITMAP_CREATE as u64, 0x1_0000, 4]), FfaError::InvalidParameters));
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_BITMAP_DESTROY as u64, 0]), FfaError::Denied));
    assert_eq!(bitmaps(&s), before);
    assert_eq!(ns(&s, &mut f, &[fid::FFA_NOTIFICATION_BITMAP_CREATE as u64, 0, 4])[0], fid::FFA_SUCCESS_32 as u64);
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_BITMAP_CREATE as u64, 0, 4]), FfaError::Denied));
    // From an SP: not its call.
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_NOTIFICATION_BITMAP_CREATE as u64, 0, 1]), FfaError::NotSupported));
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_NOTIFICATION_INFO_GET_64 as u64]), FfaError::NotSupported));

    // The SP binds bit 0 (global) and bit 33 (per-vCPU) to endpoint 0.
    let bind = fid::FFA_NOTIFICATION_BIND as u64;
    assert_eq!(sp_call(&s, &mut f, &[bind, 0x8001, 0, 1, 0])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(sp_call(&s, &mut f, &[bind, 0x8001, 1, 0, 2])[0], fid::FFA_SUCCESS_32 as u64);
    let before = bitmaps(&s);
    assert!(sp_error(&sp_call(&s, &mut f, &[bind, 0x8001, 0, 1, 0]), FfaError::Denied), "bound already");
    assert!(sp_error(&sp_call(&s, &mut f, &[bind, 0x8001, 2, 4, 0]), FfaError::InvalidParameters), "reserved flag");
    assert!(sp_error(&sp_call(&s, &mut f, &[bind, 0x8001, 0, 0, 0]), FfaError::InvalidParameters), "empty bitmap");
    assert!(sp_error(&sp_call(&s, &mut f, &[bind, 0x8123 << 16 | 0x8001, 0, 4, 0]), FfaError::InvalidParameters), "no such sender");
    assert!(sp_error(&sp_call(&s, &mut f, &[bind, 0x8001 << 16 | 0x8001, 0, 4, 0]), FfaError::InvalidParameters), "itself");
    assert!(sp_error(&sp_call(&s, &mut f, &[bind, 0x8002, 0, 4, 0]), FfaError::InvalidParameters), "another receiver");
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_NOTIFICATION_UNBIND as u64, 0x8002 << 16 | 0x8001, 0, 1, 0]), FfaError::Denied), "bound to another");
    assert_eq!(bitmaps(&s), before);

    // NS sets them; the SRI goes out when the call returns to NS.
    let set = fid::FFA_NOTIFICATION_SET as u64;
    let sris = f.sris;
    assert!(is_error(&ns(&s, &mut f, &[set, 0x8001, 0, 4, 0]), FfaError::Denied), "not bound");
    assert!(is_error(&ns(&s, &mut f, &[set, 0x8001 << 16 | 0x8001, 0, 1, 0]), FfaError::InvalidParameters), "not the sender");
    assert!(is_error(&ns(&s, &mut f, &[set, 0x8001, 1, 1, 0]), FfaError::InvalidParameters), "global bit set per vCPU");
    assert!(is_error(&ns(&s, &mut f, &[set, 0x8001, 0, 0, 2]), FfaError::InvalidParameters), "per-vCPU bit set global");
    assert!(is_error(&ns(&s, &mut f, &[set, 0x8001, 1 | 1 << 16, 0, 2]), FfaError::InvalidParameters), "no vCPU 1");
    assert!(is_error(&ns(&s, &mut f, &[set, 0x8001, 4, 1, 0]), FfaError::InvalidParameters), "reserved flag");
    assert!(is_error(&ns(&s, &mut f, &[set, 0x8002, 0, 1, 0]), FfaError::InvalidParameters), "no notification support");
    assert!(is_error(&ns(&s, &mut f, &[set, 0x8123, 0, 1, 0]), FfaError::InvalidParameters), "no such receiver");
    assert_eq!(bitmaps(&s), before);
    assert_eq!(f.sris, sris, "no SRI for a refused SET");
    assert!(f.flags.iter().all(|fl| !fl.virq), "nothing pending yet: no NPI");
    assert_eq!(ns(&s, &mut f, &[set, 0x8001, 0, 1, 0])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(ns(&s, &mut f, &[set, 0x8001, 1 | 2, 0, 2])[0], fid::FFA_SUCCESS_32 as u64, "per-vCPU 0, delayed SRI");
    assert_eq!(f.sris, sris + 2);

    // INFO_GET: 0x8001 with a global list and a per-vCPU list, once.
    let a = ns(&s, &mut f, &[fid::FFA_NOTIFICATION_INFO_GET_64 as u64]);
    assert_eq!(a[0], fid::FFA_SUCCESS_64 as u64);
    assert_eq!((a[2] >> 7) & 0x1f, 2, "two lists");
    assert_eq!((a[2] >> 12) & 0xf, 0b0100, "no vCPU id, then one");
    assert_eq!(a[3] & 0xffff_ffff_ffff, 0x0000_8001_8001, "ids 0x8001, 0x8001, vCPU 0");
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_INFO_GET_32 as u64]), FfaError::NoData));

    // The SP reads them (VM bitmap); GET errors first.
    let get = fid::FFA_NOTIFICATION_GET as u64;
    let runs = f.flags.len();
    assert!(sp_error(&sp_call(&s, &mut f, &[get, 0x8002, VM_BITMAP]), FfaError::InvalidParameters), "not its own");
    assert!(f.flags[runs].virq, "pending: the NPI at its next run");
    assert!(sp_error(&sp_call(&s, &mut f, &[get, 1 << 16 | 0x8001, VM_BITMAP]), FfaError::InvalidParameters), "no vCPU 1");
    assert_eq!(sp_call(&s, &mut f, &[get, 0x8001, SP_BITMAP]), [fid::FFA_SUCCESS_32 as u64, 0, 0, 0, 0], "none from SPs");
    assert_eq!(sp_call(&s, &mut f, &[get, 0x8001, VM_BITMAP]), [fid::FFA_SUCCESS_32 as u64, 0, 0, 1, 2]);
    assert_eq!(sp_call(&s, &mut f, &[get, 0x8001, VM_BITMAP]), [fid::FFA_SUCCESS_32 as u64, 0, 0, 0, 0], "taken");

    // The other way: NS binds bit 63 to the SP, the SP sets it.
    assert!(is_error(&ns(&s, &mut f, &[bind, 0x0001 << 16, 0, 0, 1 << 31]), FfaError::InvalidParameters), "a VM sender");
    assert_eq!(ns(&s, &mut f, &[bind, 0x8001 << 16, 0, 0, 1 << 31])[0], fid::FFA_SUCCESS_32 as u64);
    let sris = f.sris;
    assert_eq!(sp_call(&s, &mut f, &[set, 0x8001 << 16, 0, 0, 1 << 31])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(f.sris, sris + 1, "owed while the SP ran, sent on the way back to NS");
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_BITMAP_DESTROY as u64, 0]), FfaError::Denied), "pending");
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_UNBIND as u64, 0x8001 << 16, 0, 0, 1 << 31]), FfaError::Denied), "pending");
    let a = ns(&s, &mut f, &[fid::FFA_NOTIFICATION_INFO_GET_32 as u64]);
    assert_eq!((a[0], (a[2] >> 7) & 0x1f, a[3] & 0xffff), (fid::FFA_SUCCESS_32 as u64, 1, 0));
    assert!(is_error(&ns(&s, &mut f, &[get, 1, SP_BITMAP]), FfaError::InvalidParameters), "receiver 1");
    assert!(is_error(&ns(&s, &mut f, &[get, 4 << 16, SP_BITMAP]), FfaError::InvalidParameters), "vCPU 4 of 4");
    let a = ns(&s, &mut f, &[get, 0, SP_BITMAP | SPM_BITMAP]);
    assert_eq!(&a[..7], &[fid::FFA_SUCCESS_32 as u64, 0, 0, 1 << 31, 0, 0, 0]);
    assert_eq!(ns(&s, &mut f, &[fid::FFA_NOTIFICATION_UNBIND as u64, 0x8001 << 16, 0, 0, 1 << 31])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(ns(&s, &mut f, &[fid::FFA_NOTIFICATION_BITMAP_DESTROY as u64, 0])[0], fid::FFA_SUCCESS_32 as u64);
    assert!(!s.notification_bitmaps(0).unwrap().is_created());
}

/// Notifications of the hypervisor's VMs: bitmaps for VM ids up to
/// MAX_NS_VMS (NO_MEMORY past it, DENIED twice), an SP binding and setting
/// for VMs, the hypervisor binding, setting and getting for them (the VM's
/// id in w1), INFO_GET listing VMs and their vCPUs, DESTROY refused while
/// pending; every refusal changes nothing.
#[test]
fn notifications_per_vm() {
    let (s, mut f) = booted_proxy();
    let ns = |s: &Spmc, f: &mut Fake, r: &[u64]| s.handle_ns(&regs(r), 0, f);
    #[track_caller]
    fn ok(a: Regs) {
        assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64, "{a:x?}");
    }
    let create = fid::FFA_NOTIFICATION_BITMAP_CREATE as u64;
    let destroy = fid::FFA_NOTIFICATION_BITMAP_DESTROY as u64;
    let (bind, set, get) = (fid::FFA_NOTIFICATION_BIND as u64, fid::FFA_NOTIFICATION_SET as u64, fid::FFA_NOTIFICATION_GET as u64);

    // A VM without bitmaps is no receiver yet.
    assert!(sp_error(&sp_call(&s, &mut f, &[set, 0x8001 << 16 | 7, 0, 1, 0]), FfaError::InvalidParameters));
    assert!(is_error(&ns(&s, &mut f, &[get, 7, VM_BITMAP]), FfaError::InvalidParameters));
    assert!(is_error(&ns(&s, &mut f, &[destroy, 7]), FfaError::Denied));
    // Endpoint 0 and MAX_NS_VMS VMs (ids 1..=16); a 17th VM: NO_MEMORY.
    ok(ns(&s, &mut f, &[create, 0, 4]));
    for id in 1..=MAX_NS_VMS as u64 {
        ok(ns(&s, &mut f, &[create, id, 2]));
    }
    assert!(is_error(&ns(&s, &mut f, &[create, 0x7fff, 1]), FfaError::NoMemory));
    assert!(is_error(&ns(&s, &mut f, &[create, 7, 2]), FfaError::Denied), "twice");
    assert!(is_error(&ns(&s, &mut f, &[create, 0x8005, 2]), FfaError::InvalidParameters), "a secure id");
    assert!(s.notification_bitmaps(0x7fff).is_none());
    // Destroy one: its slot serves another id; more vCPUs than PEs refused first.
    ok(ns(&s, &mut f, &[destroy, 16]));
    assert!(is_error(&ns(&s, &mut f, &[create, 0x7fff, 100]), FfaError::InvalidParameters));
    ok(ns(&s, &mut f, &[create, 0x7fff, 1]));
    assert!(s.notification_bitmaps(16).is_none() && s.notification_bitmaps(0x7fff).is_some_and(|b| b.is_created()));

    // The SP binds bit 0 (global) to VM 7 and bit 5 per-vCPU to VM 8, and sets them.
    assert_eq!(sp_call(&s, &mut f, &[bind, 7 << 16 | 0x8001, 0, 1, 0])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(sp_call(&s, &mut f, &[bind, 8 << 16 | 0x8001, 1, 1 << 5, 0])[0], fid::FFA_SUCCESS_32 as u64);
    // Bound to VM 7 and VM 8 in the SP's bitmaps; VM 9 sets neither.
    assert!(is_error(&ns(&s, &mut f, &[set, 9 << 16 | 0x8001, 0, 1, 0]), FfaError::Denied));
    ok(ns(&s, &mut f, &[set, 7 << 16 | 0x8001, 0, 1, 0]));
    let sris = f.sris;
    ok(ns(&s, &mut f, &[set, 8 << 16 | 0x8001, 1, 1 << 5, 0]));
    assert_eq!(f.sris, sris + 1);
    // The SP reads them: both from VMs.
    assert_eq!(sp_call(&s, &mut f, &[get, 0x8001, VM_BITMAP]), [fid::FFA_SUCCESS_32 as u64, 0, 0, 1 | 1 << 5, 0]);

    // The hypervisor binds bit 40 of VM 7 and bit 3 (per-vCPU) of VM 8 to the SP.
    ok(ns(&s, &mut f, &[bind, 0x8001 << 16 | 7, 0, 0, 1 << 8]));
    ok(ns(&s, &mut f, &[bind, 0x8001 << 16 | 8, 1, 1 << 3, 0]));
    assert!(is_error(&ns(&s, &mut f, &[bind, 0x8001 << 16 | 0x7ffe, 0, 1, 0]), FfaError::InvalidParameters), "no bitmaps");
    assert!(is_error(&ns(&s, &mut f, &[bind, 9 << 16 | 7, 0, 1, 0]), FfaError::InvalidParameters), "VM to VM is the hypervisor's");
    assert!(is_error(&ns(&s, &mut f, &[bind, 0x8001 << 16 | 0x8002, 0, 1, 0]), FfaError::InvalidParameters), "an SP's bitmaps");
    let before = (s.notification_bitmaps(7), s.notification_bitmaps(8));
    // The SP sets them: VM 7 global, VM 8 on its vCPU 1; vCPU 2 of 2 is no vCPU.
    assert!(sp_error(&sp_call(&s, &mut f, &[set, 0x8001 << 16 | 8, 1 | 2 << 16, 1 << 3, 0]), FfaError::InvalidParameters));
    assert_eq!((s.notification_bitmaps(7), s.notification_bitmaps(8)), before);
    assert_eq!(sp_call(&s, &mut f, &[set, 0x8001 << 16 | 7, 0, 0, 1 << 8])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(sp_call(&s, &mut f, &[set, 0x8001 << 16 | 8, 1 | 1 << 16, 1 << 3, 0])[0], fid::FFA_SUCCESS_32 as u64);

    // INFO_GET: VM 7 global, VM 8 with vCPU 1; then nothing new.
    let a = ns(&s, &mut f, &[fid::FFA_NOTIFICATION_INFO_GET_64 as u64]);
    assert_eq!(a[0], fid::FFA_SUCCESS_64 as u64, "{a:x?}");
    assert_eq!((a[2] >> 7) & 0x1f, 2, "two lists");
    assert_eq!((a[2] >> 12) & 0xf, 0b0100, "VM 7 alone, then VM 8 and one vCPU");
    assert_eq!(a[3] & 0xffff_ffff_ffff, 0x0001_0008_0007);
    assert!(is_error(&ns(&s, &mut f, &[fid::FFA_NOTIFICATION_INFO_GET_32 as u64]), FfaError::NoData));

    // Destroy while pending: DENIED.  The hypervisor gets for each VM.
    assert!(is_error(&ns(&s, &mut f, &[destroy, 7]), FfaError::Denied));
    assert!(is_error(&ns(&s, &mut f, &[get, 2 << 16 | 8, SP_BITMAP]), FfaError::InvalidParameters), "vCPU 2 of 2");
    assert!(is_error(&ns(&s, &mut f, &[get, 0x8001, SP_BITMAP]), FfaError::InvalidParameters), "an SP");
    assert_eq!(ns(&s, &mut f, &[get, 7, SP_BITMAP])[..4], [fid::FFA_SUCCESS_32 as u64, 0, 0, 1 << 8], "bit 40");
    assert_eq!(ns(&s, &mut f, &[get, 8, SP_BITMAP])[..4], [fid::FFA_SUCCESS_32 as u64, 0, 0, 0], "vCPU 0 has none");
    assert_eq!(ns(&s, &mut f, &[get, 1 << 16 | 8, SP_BITMAP])[..4], [fid::FFA_SUCCESS_32 as u64, 0, 1 << 3, 0]);
    assert!(!s.notification_bitmaps(0).unwrap().any_pending(), "endpoint 0 untouched");
    ok(ns(&s, &mut f, &[destroy, 7]));
    assert!(is_error(&ns(&s, &mut f, &[destroy, 7]), FfaError::Denied), "twice");
    // Gone: VM 7 is no receiver until it is created again, without bindings.
    assert!(sp_error(&sp_call(&s, &mut f, &[set, 0x8001 << 16 | 7, 0, 0, 1 << 8]), FfaError::InvalidParameters));
    ok(ns(&s, &mut f, &[create, 7, 1]));
    assert!(sp_error(&sp_call(&s, &mut f, &[set, 0x8001 << 16 | 7, 0, 0, 1 << 8]), FfaError::Denied));
}

/// FFA_MSG_SEND2 from the hypervisor for its VM 3 (w1[31:16] = 3, the
/// message in the hypervisor's TX buffer with header sender 3) to an SP;
/// the ids must agree, a secure id is no VM, an SP names no VM sender and
/// cannot send to a VM (spmc has no VM RX buffers): INVALID_PARAMETERS,
/// nothing delivered.
#[test]
fn msg_send2_from_a_vm() {
    let (mut s, mut f) = booted_proxy();
    map_ns(&mut s, &mut f);
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_RXTX_MAP_64 as u64, SP_TX, SP_RX, 1])[0], fid::FFA_SUCCESS_32 as u64);
    let send2 = |s: &Spmc, f: &mut Fake, w1: u64| s.handle_ns(&regs(&[fid::FFA_MSG_SEND2 as u64, w1, 0]), 0, f);
    put_message(&mut f, TX, 3, 0x8001, b"from vm 3");
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::InvalidParameters), "header says 3, w1 says 0");
    assert!(is_error(&send2(&s, &mut f, 4 << 16), FfaError::InvalidParameters), "another VM");
    assert!(is_error(&send2(&s, &mut f, 3 << 16 | 1), FfaError::InvalidParameters), "w1[15:0] MBZ");
    put_message(&mut f, TX, 0x8002, 0x8001, b"from vm 3");
    assert!(is_error(&send2(&s, &mut f, 0x8002 << 16), FfaError::InvalidParameters), "a secure id");
    put_message(&mut f, TX, 3, 5, b"from vm 3");
    assert!(is_error(&send2(&s, &mut f, 3 << 16), FfaError::InvalidParameters), "VM to VM is the hypervisor's");
    assert_eq!(f.read(SP_RX, 4), vec![0; 4], "nothing written");
    put_message(&mut f, TX, 3, 0x8001, b"from vm 3");
    assert_eq!(send2(&s, &mut f, 3 << 16)[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(f.read(SP_RX + 12, 4), vec![0x01, 0x80, 3, 0], "sender 3 in the SP's RX");
    assert_eq!(f.read(SP_RX + 40, 9), b"from vm 3".to_vec());
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_RX_RELEASE as u64])[0], fid::FFA_SUCCESS_32 as u64);
    // From the SP: no sender VM id; no VM receiver.
    put_message(&mut f, SP_TX, 0x8001, 0, b"pong");
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64, 3 << 16]), FfaError::InvalidParameters));
    put_message(&mut f, SP_TX, 0x8001, 3, b"pong");
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64]), FfaError::InvalidParameters));
}

/// An SP subscribed to VM created messages only (`vm-availability-messages
/// = <1>`), counting VMs: its first framework response is a plain one
/// (refused: INVALID_PARAMETERS to it), then the VM created response.
fn vm_availability_sp(id: u16) -> SpFn {
    let mut step = 0;
    let mut vms = 0u64;
    let mut from = 0u16;
    Box::new(move |_ctx, answer| {
        step += 1;
        if step == 1 {
            return call(&[fid::FFA_MSG_WAIT as u64]);
        }
        let a = answer.unwrap();
        if a[0] == fid::FFA_ERROR as u64 {
            // Our plain response was refused: the framework response.
            return call(&[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, ffa::pack_endpoints(id, from), framework::FLAG | 5, 0, vms]);
        }
        from = ffa::unpack_endpoints(a[1]).0;
        assert_eq!(a[2], framework::FLAG | framework::VM_CREATED_REQ, "only what it subscribed to reaches it");
        vms += 1;
        if step == 2 {
            return call(&[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, ffa::pack_endpoints(id, from), 0, 0, vms]);
        }
        call(&[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, ffa::pack_endpoints(id, from), framework::FLAG | 5, 0, vms])
    })
}

/// VM availability messages (DEN0077 v1.2 framework messages) from the
/// hypervisor: delivered to a subscribed SP as a direct request, its
/// framework response returned; a type it did not subscribe to, another
/// framework type, reserved w2 bits, a plain echo SP, or an SP's own
/// framework request: INVALID_PARAMETERS, the SP never runs.
#[test]
fn vm_availability_messages() {
    use crate::ffa::setup::partition_info::{PROP_VM_CREATED, PROP_VM_DESTROYED, descriptor};
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    let mut m = manifest(0x8001, ECHO_UUID);
    m.vm_availability_messages = crate::partition::manifest::VM_CREATED;
    let (d, _) = descriptor(&m, ECHO_UUID, 0x1_0002);
    let props = u32::from_le_bytes(d[4..8].try_into().unwrap());
    assert_eq!(props & (PROP_VM_CREATED | PROP_VM_DESTROYED), PROP_VM_CREATED);
    let i = s.add_partition(Partition::new(m, SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let j = s.add_partition(Partition::new(manifest(0x8002, Uuid([2, 2, 2, 2])), SpMemory { base: 0x0e40_0000, size: 0x10_0000 })).unwrap();
    f.sps.push(vm_availability_sp(0x8001));
    f.sps.push(echo_sp(0x8002));
    s.init_partition(i, 0, 0, &mut f).unwrap();
    s.init_partition(j, 0, 0, &mut f).unwrap();
    let req = |s: &Spmc, f: &mut Fake, dst: u16, w2: u64, vm: u64| {
        s.handle_ns(&regs(&[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, ffa::pack_endpoints(0, dst), w2, 0, 0, vm]), 0, f)
    };
    let runs = f.runs.len();
    let created = framework::FLAG | framework::VM_CREATED_REQ;
    assert!(is_error(&req(&s, &mut f, 0x8001, framework::FLAG | framework::VM_DESTROYED_REQ, 3), FfaError::InvalidParameters), "not subscribed");
    assert!(is_error(&req(&s, &mut f, 0x8001, framework::FLAG | framework::VERSION_REQ, 3), FfaError::InvalidParameters), "another type");
    assert!(is_error(&req(&s, &mut f, 0x8001, created | 1 << 8, 3), FfaError::InvalidParameters), "w2 reserved bits");
    assert!(is_error(&req(&s, &mut f, 0x8002, created, 3), FfaError::InvalidParameters), "an SP without the subscription");
    assert_eq!(f.runs.len(), runs, "no SP ran");
    // Delivered; the SP's plain response is refused to it, its framework response comes back.
    let a = req(&s, &mut f, 0x8001, created, 3);
    assert_eq!(a[0], fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, "{a:x?}");
    assert_eq!((a[1], a[2], a[3], a[4]), (ffa::pack_endpoints(0x8001, 0), framework::FLAG | 5, 0, 1));
    let a = req(&s, &mut f, 0x8001, created, 4);
    assert_eq!((a[2], a[4]), (framework::FLAG | 5, 2), "two VMs counted");
    // An SP sends no VM availability message, even to a subscribed SP.
    assert_eq!(direct_messaging::vm_availability_message(Caller::Sp(1), 3, created), None);
    assert_eq!(direct_messaging::vm_availability_message(Caller::Ns, 3, created), Some(framework::VM_CREATED_REQ));
}

/// Writes an indirect message (v1.2 header, `payload` at offset 40) at `pa`.
fn put_message(f: &mut Fake, pa: u64, sender: u16, receiver: u16, payload: &[u8]) {
    let mut b = vec![0u8; 40];
    b[8..12].copy_from_slice(&40u32.to_le_bytes());
    b[12..16].copy_from_slice(&((sender as u32) << 16 | receiver as u32).to_le_bytes());
    b[16..20].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    for (i, v) in b.iter().enumerate() {
        f.mem.insert(pa + i as u64, *v);
    }
}

#[test]
fn msg_send2_between_ns_and_an_sp() {
    let (mut s, mut f) = booted_proxy();
    let send2 = |s: &Spmc, f: &mut Fake, w2: u64| s.handle_ns(&regs(&[fid::FFA_MSG_SEND2 as u64, 0, w2]), 0, f);
    // No TX buffer yet: DENIED.
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::Denied));
    map_ns(&mut s, &mut f);
    assert_eq!(s.handle_ns(&regs(&[fid::FFA_NOTIFICATION_BITMAP_CREATE as u64, 0, 4]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
    put_message(&mut f, TX, 0, 0x8001, b"hello");
    // The SP has no RX buffer yet: BUSY.
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::Busy));
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_RXTX_MAP_64 as u64, SP_TX, SP_RX, 1])[0], fid::FFA_SUCCESS_32 as u64);

    // Bad inputs, each INVALID_PARAMETERS (or DENIED), nothing delivered.
    let before = s.notification_bitmaps(0x8001).unwrap();
    assert!(is_error(&send2(&s, &mut f, 1), FfaError::InvalidParameters), "reserved flag");
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_MSG_SEND2 as u64, 1 << 16, 0]), 0, &mut f), FfaError::InvalidParameters), "VM 1 is not the header's sender");
    put_message(&mut f, TX, 0x8002, 0x8001, b"hello");
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::InvalidParameters), "not the caller");
    put_message(&mut f, TX, 0, 0x8123, b"hello");
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::InvalidParameters), "no such receiver");
    put_message(&mut f, TX, 0, 0, b"hello");
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::InvalidParameters), "to itself");
    put_message(&mut f, TX, 0, 0x8002, b"hello");
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::Denied), "no indirect messaging");
    put_message(&mut f, TX, 0, 0x8001, &[7u8; 4096 - 40 + 1]);
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::InvalidParameters), "past the TX buffer");
    put_message(&mut f, TX, 0, 0x8001, b"hello");
    f.mem.insert(TX + 8, 16); // offset inside the header
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::InvalidParameters), "offset");
    assert_eq!(s.notification_bitmaps(0x8001).unwrap(), before);
    assert_eq!(f.read(SP_RX, 4), vec![0; 4], "nothing written");

    // Delivered: header and payload in the SP's RX, RX buffer full pending, SRI.
    put_message(&mut f, TX, 0, 0x8001, b"hello");
    let sris = f.sris;
    assert_eq!(send2(&s, &mut f, 2)[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(f.read(SP_RX + 40, 5), b"hello".to_vec());
    assert_eq!(f.read(SP_RX + 12, 4), vec![0x01, 0x80, 0, 0]);
    assert_eq!(f.sris, sris + 1);
    // The SP owns its RX buffer until it releases it: BUSY meanwhile.
    assert!(is_error(&send2(&s, &mut f, 0), FfaError::Busy));
    let a = sp_call(&s, &mut f, &[fid::FFA_NOTIFICATION_GET as u64, 0x8001, SPM_BITMAP]);
    assert_eq!(a, [fid::FFA_SUCCESS_32 as u64, 0, 0, 0, 0]);
    // (w6, the framework bitmap, is past the proxy's five registers: check the state.)
    assert!(!s.notification_bitmaps(0x8001).unwrap().any_pending());
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_RX_RELEASE as u64])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(send2(&s, &mut f, 0)[0], fid::FFA_SUCCESS_32 as u64);

    // SP -> NS: into the Normal world's RX buffer, RX buffer full for endpoint 0.
    put_message(&mut f, SP_TX, 0x8001, 0, b"pong");
    let sris = f.sris;
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(f.read(RX + 40, 4), b"pong".to_vec());
    assert_eq!(f.sris, sris + 1);
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64]), FfaError::Busy), "NS RX full");
    let a = s.handle_ns(&regs(&[fid::FFA_NOTIFICATION_GET as u64, 0, SPM_BITMAP]), 0, &mut f);
    assert_eq!(a[6], notifications::FWK_RX_BUFFER_FULL as u64);
    assert_eq!(s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f), FfaError::Denied), "released already");
}

#[test]
fn run_gives_a_waiting_sp_cycles_for_its_notifications() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    let mut m = PartitionManifest::for_test("notified", 0x8001, ECHO_UUID, 1, 0x607);
    m.notification_support = true;
    s.add_partition(Partition::new(m, SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Regs>>> = Default::default();
    let seen2 = seen.clone();
    let mut step = 0;
    // Waits; bound bit 0 to NS at init; when run, GET, then a stray direct
    // response (refused), then FFA_MSG_WAIT.
    f.sps.push(Box::new(move |_, a| {
        if let Some(a) = a {
            seen2.lock().unwrap().push(*a);
        }
        step += 1;
        match step {
            1 => call(&[fid::FFA_NOTIFICATION_BIND as u64, 0x8001, 0, 1]),
            2 => call(&[fid::FFA_MSG_WAIT as u64]),
            3 => call(&[fid::FFA_NOTIFICATION_GET as u64, 0x8001, 2]),
            4 => call(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8001 << 16]),
            _ => call(&[fid::FFA_MSG_WAIT as u64]),
        }
    }));
    s.init_partition(0, 0, 0, &mut f).unwrap();
    // Nothing pending: DENIED, as before.
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8001 << 16]), 0, &mut f), FfaError::Denied));
    assert_eq!(s.handle_ns(&regs(&[fid::FFA_NOTIFICATION_SET as u64, 0x8001, 0, 1]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
    // The scheduler runs it: FFA_RUN reaches the SP, FFA_MSG_WAIT comes back.
    let a = s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8001 << 16]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_MSG_WAIT as u64);
    let seen = seen.lock().unwrap();
    assert_eq!(&seen[1][..2], &[fid::FFA_RUN as u64, 0x8001 << 16]);
    assert_eq!(&seen[2][..6], &[fid::FFA_SUCCESS_32 as u64, 0, 0, 0, 1, 0], "GET: from VMs, bit 0");
    assert!(is_error(&seen[3], FfaError::InvalidParameters), "no request to respond to");
    assert_eq!(s.context(0, 0).state, CtxState::Waiting);
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RUN as u64, 0x8001 << 16]), 0, &mut f), FfaError::Denied), "nothing left");
}

#[test]
fn notification_and_send2_calls_never_panic_on_random_registers() {
    let (mut s, mut f) = booted_proxy();
    map_ns(&mut s, &mut f);
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_RXTX_MAP_64 as u64, SP_TX, SP_RX, 1])[0], fid::FFA_SUCCESS_32 as u64);
    let rows = [
        fid::FFA_NOTIFICATION_BITMAP_CREATE,
        fid::FFA_NOTIFICATION_BITMAP_DESTROY,
        fid::FFA_NOTIFICATION_BIND,
        fid::FFA_NOTIFICATION_UNBIND,
        fid::FFA_NOTIFICATION_SET,
        fid::FFA_NOTIFICATION_GET,
        fid::FFA_NOTIFICATION_INFO_GET_32,
        fid::FFA_NOTIFICATION_INFO_GET_64,
        fid::FFA_MSG_SEND2,
        fid::FFA_FEATURES,
        fid::FFA_RX_RELEASE,
        fid::FFA_RUN,
    ];
    let mut rng = Rng(0x0bad_5eed);
    for n in 0..20_000 {
        let mut r: Regs = core::array::from_fn(|_| rng.value());
        r[0] = rows[(rng.next() % rows.len() as u64) as usize] as u64;
        // Some plausible endpoint pairs, so that calls get past the first checks.
        if rng.next().is_multiple_of(2) {
            let ids = [0u64, 0x8001, 0x8002, 0x8123];
            r[1] = ids[(rng.next() % 4) as usize] << 16 | ids[(rng.next() % 4) as usize];
        }
        if n % 7 == 0 {
            // Random bytes in the TX buffers: random indirect message headers.
            for k in 0..48 {
                f.mem.insert(TX + k, rng.next() as u8);
                f.mem.insert(SP_TX + k, rng.next() as u8);
            }
        }
        let a = if rng.next().is_multiple_of(3) {
            let w = sp_call(&s, &mut f, &[r[0], r[1], r[2], r[3], r[4]]);
            [w[0], 0, w[1], w[2], w[3], w[4], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        } else {
            s.handle_ns(&r, 0, &mut f)
        };
        let ok = [fid::FFA_SUCCESS_32 as u64, fid::FFA_SUCCESS_64 as u64, fid::FFA_ERROR as u64, fid::FFA_MSG_WAIT as u64];
        assert!(ok.contains(&a[0]), "{r:#x?} -> {a:#x?}");
    }
    // Everything still works after.
    echo_check_proxy(&s, &mut f);
}

fn echo_check_proxy(s: &Spmc, f: &mut Fake) {
    let a = sp_call(s, f, &[fid::FFA_ID_GET as u64]);
    assert_eq!(&a[..2], &[fid::FFA_SUCCESS_32 as u64, 0x8001]);
}

mod memory_sharing {
    //! FFA_MEM_* through the dispatcher: NS lends and shares to SPs, SPs
    //! retrieve and relinquish, the owner reclaims; errors change nothing.
    use super::*;
    use shared::ffa_memory::testing::build;
    use crate::ffa::memory::ids::*;

    const SP_MEM: u64 = 0x0e30_0000;
    const SP_TX: u64 = SP_MEM + 0x8_0000;
    const SP_RX: u64 = SP_MEM + 0x8_1000;
    const RW: u8 = 0b0110;

    /// An SP's call through the dispatcher; its answer.
    fn sp(s: &Spmc, f: &mut Fake, r: &Regs) -> Regs {
        match s.handle_sp_call(0, 0, 0, r, f) {
            crate::ffa::cpu_cycles::SpStep::Resume(a) => a,
            _ => panic!("not a reply"),
        }
    }

    /// Echo booted, NS and echo with RX/TX pairs.
    fn setup() -> (Spmc, Fake) {
        let (mut s, mut f) = booted();
        map_ns(&mut s, &mut f);
        f.mapped.push((SP_MEM, 0x10_0000));
        let a = sp(&s, &mut f, &regs(&[fid::FFA_RXTX_MAP_64 as u64, SP_TX, SP_RX, 1]));
        assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64);
        (s, f)
    }

    fn put(f: &mut Fake, pa: u64, b: &[u8]) {
        for (i, x) in b.iter().enumerate() {
            f.mem.insert(pa + i as u64, *x);
        }
    }

    fn send(s: &Spmc, f: &mut Fake, fidw: u32, desc: &[u8]) -> Regs {
        put(f, TX, desc);
        s.handle_ns(&regs(&[fidw as u64, desc.len() as u64, desc.len() as u64]), 0, f)
    }

    fn handle(a: &Regs) -> u64 {
        assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64, "{a:x?}");
        a[2] | a[3] << 32
    }

    /// echo's retrieve request for `h` from `sender`.
    fn retrieve(s: &Spmc, f: &mut Fake, h: u64, sender: u16, perm: u8) -> Regs {
        retrieve_with(s, f, h, sender, perm, 0)
    }

    /// The same with retrieve flags.
    fn retrieve_with(s: &Spmc, f: &mut Fake, h: u64, sender: u16, perm: u8, flags: u32) -> Regs {
        let mut d = build(sender, 0, flags, &[(0x8001, perm)], 16, &[]);
        d.truncate(48 + 16);
        d[8..16].copy_from_slice(&h.to_le_bytes());
        d[48 + 4..48 + 8].fill(0); // no composite: the handle names the region
        put(f, SP_TX, &d);
        sp(s, f, &regs(&[FFA_MEM_RETRIEVE_REQ_64 as u64, d.len() as u64, d.len() as u64]))
    }

    fn relinquish(s: &Spmc, f: &mut Fake, h: u64) -> Regs {
        relinquish_with(s, f, h, 0)
    }

    fn relinquish_with(s: &Spmc, f: &mut Fake, h: u64, flags: u32) -> Regs {
        let mut d = [0u8; 18];
        d[0..8].copy_from_slice(&h.to_le_bytes());
        d[8..12].copy_from_slice(&flags.to_le_bytes());
        d[12] = 1;
        d[16..18].copy_from_slice(&0x8001u16.to_le_bytes());
        put(f, SP_TX, &d);
        sp(s, f, &regs(&[FFA_MEM_RELINQUISH as u64]))
    }

    fn release_rx(s: &Spmc, f: &mut Fake) {
        let a = sp(s, f, &regs(&[fid::FFA_RX_RELEASE as u64, 0]));
        assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64);
    }

    #[test]
    fn share_retrieve_relinquish_reclaim_from_ns() {
        let (s, mut f) = setup();
        let d = build(0, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 2)]);
        let h = handle(&send(&s, &mut f, FFA_MEM_SHARE_64, &d));
        let a = retrieve(&s, &mut f, h, 0, RW);
        assert_eq!(a[0], FFA_MEM_RETRIEVE_RESP as u64, "{a:x?}");
        assert_eq!(a[1], a[2], "one fragment");
        assert_eq!(f.borrowed, vec![(0, 0x6000_0000, 0x2000, true, true)], "mapped RW in the NS IPA space");
        // The response in echo's RX: NS attribute set, our handle.
        let rx = f.read(SP_RX, a[1] as usize);
        let resp = crate::ffa::memory::descriptor::parse(&rx, 0x1_0002, true).unwrap();
        assert_eq!(resp.handle, h);
        assert!(resp.attributes.0 & 0x40 != 0);
        // Reclaim while borrowed: DENIED, nothing changes.
        let a = s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 0]), 0, &mut f);
        assert!(is_error(&a, FfaError::Denied));
        assert_eq!(f.borrowed.len(), 1);
        release_rx(&s, &mut f);
        assert_eq!(relinquish(&s, &mut f, h)[0], fid::FFA_SUCCESS_32 as u64);
        assert!(f.borrowed.is_empty(), "unmapped");
        assert!(is_error(&relinquish(&s, &mut f, h), FfaError::Denied), "twice");
        let a = s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 0]), 0, &mut f);
        assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64);
        assert!(is_error(&retrieve(&s, &mut f, h, 0, RW), FfaError::InvalidParameters), "handle gone");
    }

    #[test]
    fn send_errors_change_nothing() {
        let (s, mut f) = setup();
        let cases: Vec<(&str, Vec<u8>, FfaError)> = vec![
            ("secure memory from NS", build(0, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x0e30_0000, 1)]), FfaError::Denied),
            ("unknown receiver", build(0, 0x2f, 0, &[(0x8123, RW)], 16, &[(0x6000_0000, 1)]), FfaError::InvalidParameters),
            ("sender is not NS", build(0x8001, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]), FfaError::InvalidParameters),
            ("device memory", build(0, 0x10, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]), FfaError::Denied),
            ("executable", build(0, 0x2f, 0, &[(0x8001, 0b1010)], 16, &[(0x6000_0000, 1)]), FfaError::Denied),
            ("no data access", build(0, 0x2f, 0, &[(0x8001, 0)], 16, &[(0x6000_0000, 1)]), FfaError::InvalidParameters),
            ("reserved flags", build(0, 0x2f, 1 << 7, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]), FfaError::InvalidParameters),
            ("NS bit from the sender", build(0, 0x6f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]), FfaError::InvalidParameters),
            ("zero flag on a share", build(0, 0x2f, 1, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]), FfaError::InvalidParameters),
        ];
        for (what, d, want) in cases {
            let a = send(&s, &mut f, FFA_MEM_SHARE_64, &d);
            assert!(is_error(&a, want), "{what}: {a:x?}");
            assert_eq!(s.memory.lock().transactions().count(), 0, "{what}: no state");
        }
        // Donation of Normal-world memory is refused.
        let d = build(0, 0x2f, 0, &[(0x8001, 0)], 16, &[(0x6000_0000, 1)]);
        assert!(is_error(&send(&s, &mut f, FFA_MEM_DONATE_64, &d), FfaError::Denied));
        // A buffer other than TX: not offered.
        let a = s.handle_ns(&regs(&[FFA_MEM_SHARE_64 as u64, 80, 80, 0x6000_0000, 1]), 0, &mut f);
        assert!(is_error(&a, FfaError::NotSupported));
        // Lengths: fragment longer than the total, longer than TX.
        let a = s.handle_ns(&regs(&[FFA_MEM_SHARE_64 as u64, 80, 96]), 0, &mut f);
        assert!(is_error(&a, FfaError::InvalidParameters));
        let a = s.handle_ns(&regs(&[FFA_MEM_SHARE_64 as u64, 0x2000, 0x2000]), 0, &mut f);
        assert!(is_error(&a, FfaError::InvalidParameters));
        assert_eq!(s.memory.lock().transactions().count(), 0);
        // The same pages twice.
        let d = build(0, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]);
        handle(&send(&s, &mut f, FFA_MEM_SHARE_64, &d));
        assert!(is_error(&send(&s, &mut f, FFA_MEM_LEND_64, &d), FfaError::Denied));
        assert_eq!(s.memory.lock().transactions().count(), 1);
    }

    #[test]
    fn retrieve_errors() {
        let (s, mut f) = setup();
        let d = build(0, 0x2f, 0, &[(0x8001, 0b0101)], 16, &[(0x6000_0000, 1)]);
        let h = handle(&send(&s, &mut f, FFA_MEM_LEND_64, &d));
        assert!(is_error(&retrieve(&s, &mut f, h, 0, RW), FfaError::Denied), "RW of a read-only lend");
        assert!(is_error(&retrieve(&s, &mut f, h ^ 1, 0, 0b0101), FfaError::InvalidParameters), "unknown handle");
        assert!(is_error(&retrieve(&s, &mut f, h, 0x8002, 0b0101), FfaError::InvalidParameters), "wrong sender");
        assert!(f.borrowed.is_empty());
        let a = retrieve(&s, &mut f, h, 0, 0b0101);
        assert_eq!(a[0], FFA_MEM_RETRIEVE_RESP as u64);
        assert_eq!(f.borrowed, vec![(0, 0x6000_0000, 0x1000, false, true)]);
        // RX not released: BUSY for the next response.
        let d2 = build(0, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6100_0000, 1)]);
        let h2 = handle(&send(&s, &mut f, FFA_MEM_SHARE_64, &d2));
        assert!(is_error(&retrieve(&s, &mut f, h2, 0, RW), FfaError::Busy));
        // A mapping failure undoes the retrieve.
        release_rx(&s, &mut f);
        f.fail_map = true;
        assert!(is_error(&retrieve(&s, &mut f, h2, 0, RW), FfaError::NoMemory));
        f.fail_map = false;
        assert_eq!(retrieve(&s, &mut f, h2, 0, RW)[0], FFA_MEM_RETRIEVE_RESP as u64);
        // Flags: reserved bits, hint bits without their valid bit.
        release_rx(&s, &mut f);
        assert!(is_error(&retrieve_with(&s, &mut f, h2, 0, RW, 1 << 11), FfaError::InvalidParameters));
        assert!(is_error(&retrieve_with(&s, &mut f, h2, 0, RW, 3 << 5), FfaError::InvalidParameters));
        // The alignment hint: 0x6100_0000 is 16 MiB aligned, not 32 MiB.
        let d3 = build(0, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6300_0000, 1)]);
        let h3 = handle(&send(&s, &mut f, FFA_MEM_SHARE_64, &d3));
        assert!(is_error(&retrieve_with(&s, &mut f, h3, 0, RW, 1 << 9 | 13 << 5), FfaError::Denied), "2^13 pages");
        assert_eq!(retrieve_with(&s, &mut f, h3, 0, RW, 1 << 9 | 12 << 5)[0], FFA_MEM_RETRIEVE_RESP as u64, "2^12 pages: 16 MiB");
    }

    /// The zero-memory flags (DEN0077 v1.2 §11.4): on a lend or donation,
    /// on a retrieve, on relinquish and on reclaim; each refusal changes
    /// nothing, and a zeroing that fails undoes its call.
    #[test]
    fn zero_memory_flags() {
        let (s, mut f) = setup();
        put(&mut f, 0x6000_0000, &[0xaa; 16]);
        // A lend with the flag: zeroed when the send completes.
        let d = build(0, 0x2f, 1, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]);
        let h = handle(&send(&s, &mut f, FFA_MEM_LEND_64, &d));
        assert_eq!(f.zeroed, vec![(0x6000_0000, 0x1000, true)]);
        assert_eq!(f.read(0x6000_0000, 16), vec![0; 16]);
        // Retrieve flags: zero-before on a lend that asked for it is fine.
        assert_eq!(retrieve_with(&s, &mut f, h, 0, RW, 1)[0], FFA_MEM_RETRIEVE_RESP as u64);
        release_rx(&s, &mut f);
        assert_eq!(f.zeroed.len(), 1, "zeroed once, at send");
        // Relinquish with the flag: zeroed, then unmapped.
        put(&mut f, 0x6000_0000, &[0xbb; 16]);
        assert_eq!(relinquish_with(&s, &mut f, h, 1)[0], fid::FFA_SUCCESS_32 as u64);
        assert_eq!(f.read(0x6000_0000, 16), vec![0; 16]);
        assert!(f.borrowed.is_empty());
        // Reclaim with the flag.
        put(&mut f, 0x6000_0000, &[0xcc; 16]);
        let a = s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 1]), 0, &mut f);
        assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64);
        assert_eq!(f.read(0x6000_0000, 16), vec![0; 16]);
        f.zeroed.clear();

        // Refusals.
        let plain = build(0, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]);
        let h = handle(&send(&s, &mut f, FFA_MEM_LEND_64, &plain));
        assert!(is_error(&retrieve_with(&s, &mut f, h, 0, RW, 1), FfaError::Denied), "zero-before: the sender did not ask");
        assert!(is_error(&retrieve_with(&s, &mut f, h, 0, 0b0101, 1 << 2), FfaError::Denied), "read-only cannot ask");
        assert!(f.borrowed.is_empty());
        assert_eq!(retrieve_with(&s, &mut f, h, 0, RW, 1 << 2)[0], FFA_MEM_RETRIEVE_RESP as u64, "zero after relinquish");
        release_rx(&s, &mut f);
        // Zeroing fails: the relinquish is undone (still mapped, still held).
        f.fail_zero = true;
        assert!(is_error(&relinquish(&s, &mut f, h), FfaError::NoMemory));
        assert_eq!(f.borrowed.len(), 1);
        f.fail_zero = false;
        put(&mut f, 0x6000_0000, &[0xdd; 16]);
        assert_eq!(relinquish(&s, &mut f, h)[0], fid::FFA_SUCCESS_32 as u64, "the retrieve's flag zeroes");
        assert_eq!(f.zeroed, vec![(0x6000_0000, 0x1000, true)]);
        assert_eq!(f.read(0x6000_0000, 16), vec![0; 16]);
        assert_eq!(s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 0]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);

        // Shared memory: every zero flag is INVALID_PARAMETERS.
        let h = handle(&send(&s, &mut f, FFA_MEM_SHARE_64, &plain));
        for flags in [1, 1 << 2] {
            assert!(is_error(&retrieve_with(&s, &mut f, h, 0, RW, flags), FfaError::InvalidParameters), "retrieve {flags}");
        }
        assert_eq!(retrieve(&s, &mut f, h, 0, RW)[0], FFA_MEM_RETRIEVE_RESP as u64);
        release_rx(&s, &mut f);
        assert!(is_error(&relinquish_with(&s, &mut f, h, 1), FfaError::InvalidParameters));
        assert_eq!(f.borrowed.len(), 1, "still held");
        assert_eq!(relinquish(&s, &mut f, h)[0], fid::FFA_SUCCESS_32 as u64);
        let a = s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 1]), 0, &mut f);
        assert!(is_error(&a, FfaError::InvalidParameters));
        assert_eq!(s.memory.lock().transactions().count(), 1, "not reclaimed");
        assert_eq!(s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 0]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);

        // A lend whose zeroing fails is not made.
        f.fail_zero = true;
        let z = build(0, 0x2f, 1, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]);
        assert!(is_error(&send(&s, &mut f, FFA_MEM_LEND_64, &z), FfaError::NoMemory));
        assert_eq!(s.memory.lock().transactions().count(), 0);
        // A reclaim whose zeroing fails leaves the transaction.
        f.fail_zero = false;
        let h = handle(&send(&s, &mut f, FFA_MEM_LEND_64, &plain));
        f.fail_zero = true;
        let a = s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 1]), 0, &mut f);
        assert!(is_error(&a, FfaError::NoMemory));
        assert!(s.memory.lock().get(h).is_some());
    }

    /// A borrower retrieves what it holds again; each relinquish gives one
    /// retrieval back, the last one unmaps it.
    #[test]
    fn retrieve_twice() {
        let (s, mut f) = setup();
        let d = build(0, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]);
        let h = handle(&send(&s, &mut f, FFA_MEM_LEND_64, &d));
        assert_eq!(retrieve(&s, &mut f, h, 0, RW)[0], FFA_MEM_RETRIEVE_RESP as u64);
        release_rx(&s, &mut f);
        assert_eq!(retrieve(&s, &mut f, h, 0, 0b0101)[0], FFA_MEM_RETRIEVE_RESP as u64, "read-only: within");
        // The response describes the mapping it has: read-write.
        let rx = f.read(SP_RX, 0x100);
        let resp = crate::ffa::memory::descriptor::parse(&rx, 0x1_0002, true).unwrap();
        assert_eq!(resp.receivers[0].unwrap().permissions.to_byte() & 0b11, 0b10);
        release_rx(&s, &mut f);
        assert_eq!(f.borrowed.len(), 1, "mapped once");
        assert_eq!(relinquish(&s, &mut f, h)[0], fid::FFA_SUCCESS_32 as u64);
        assert_eq!(f.borrowed.len(), 1, "one retrieval still held");
        let a = s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 0]), 0, &mut f);
        assert!(is_error(&a, FfaError::Denied));
        assert_eq!(relinquish(&s, &mut f, h)[0], fid::FFA_SUCCESS_32 as u64);
        assert!(f.borrowed.is_empty());
        assert!(is_error(&relinquish(&s, &mut f, h), FfaError::Denied));
    }

    /// The hypervisor retrieve request (DEN0077 v1.2 §17.4.3): the Normal
    /// world reads back the whole descriptor of its own transaction.
    #[test]
    fn hypervisor_retrieve_request() {
        let (s, mut f) = setup();
        let d = build(0, 0x2f, 0, &[(0x8001, RW)], 32, &[(0x6000_0000, 2), (0x6200_0000, 1)]);
        let h = handle(&send(&s, &mut f, FFA_MEM_LEND_64, &d));
        let ask = |s: &Spmc, f: &mut Fake, h: u64, count: u32| {
            let mut q = vec![0u8; 48];
            q[8..16].copy_from_slice(&h.to_le_bytes());
            q[24..28].copy_from_slice(&32u32.to_le_bytes());
            q[28..32].copy_from_slice(&count.to_le_bytes());
            q[32..36].copy_from_slice(&48u32.to_le_bytes());
            put(f, TX, &q);
            s.handle_ns(&regs(&[FFA_MEM_RETRIEVE_REQ_64 as u64, 48, 48]), 0, f)
        };
        let a = ask(&s, &mut f, h, 0);
        assert_eq!(a[0], FFA_MEM_RETRIEVE_RESP as u64, "{a:x?}");
        let rx = f.read(RX, a[2] as usize);
        let resp = crate::ffa::memory::descriptor::parse(&rx, 0x1_0002, true).unwrap();
        assert_eq!((resp.handle, resp.sender, resp.receiver_count), (h, 0, 1));
        assert_eq!(resp.receivers[0].unwrap().receiver, 0x8001);
        assert_eq!((resp.total_page_count, resp.address_range_count), (3, 2));
        assert_eq!(resp.flags >> 3 & 3, 2, "a lend");
        assert!(f.borrowed.is_empty(), "nothing mapped");
        assert!(is_error(&ask(&s, &mut f, h, 0), FfaError::Busy), "RX not released");
        assert_eq!(s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
        assert!(is_error(&ask(&s, &mut f, h ^ 1, 0), FfaError::InvalidParameters), "unknown handle");
        assert!(is_error(&ask(&s, &mut f, h, 1), FfaError::InvalidParameters), "a receiver in it");
        // The transaction is still there to reclaim.
        assert_eq!(s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 0]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
    }

    /// pKVM's FF-A proxy reclaiming for the host (Linux 7.3
    /// arch/arm64/kvm/hyp/nvhe/ffa.c, `do_ffa_mem_reclaim`), call for call:
    /// a hypervisor retrieve request of 48 bytes that holds only the sender
    /// (0) and the handle (descriptor size and offset fields 0, no receiver:
    /// DEN0077 v1.2 §17.4.3), the response read as pKVM reads it (receiver
    /// 0's composite offset through the header's receiver array offset),
    /// FFA_RX_RELEASE, FFA_MEM_FRAG_RX with w4 = 0 (its own id) for the rest,
    /// each fragment released, then FFA_MEM_RECLAIM.  Bad FRAG_RX input gets
    /// FF-A errors and changes nothing.
    #[test]
    fn pkvm_reclaim_sequence() {
        let (s, mut f) = setup();
        // 300 pages, one constituent each: 48 + 32 + 16 + 4800 bytes.
        let list: Vec<(u64, u32)> = (0..300u64).map(|n| (0x6000_0000 + n * 0x2000, 1)).collect();
        let d = build(0, 0x2f, 0, &[(0x8001, RW)], 32, &list);
        put(&mut f, TX, &d[..4096]);
        let a = s.handle_ns(&regs(&[FFA_MEM_SHARE_64 as u64, d.len() as u64, 4096]), 0, &mut f);
        // pKVM checks w3 = the fragment length it sent before it goes on.
        assert_eq!((a[0], a[3]), (FFA_MEM_FRAG_RX as u64, 4096), "{a:x?}");
        let h = a[1] | a[2] << 32;
        put(&mut f, TX, &d[4096..]);
        let a = s.handle_ns(&regs(&[FFA_MEM_FRAG_TX as u64, h & 0xffff_ffff, h >> 32, (d.len() - 4096) as u64, 0]), 0, &mut f);
        assert_eq!(handle(&a), h);

        let mut q = [0u8; 48];
        q[8..16].copy_from_slice(&h.to_le_bytes());
        put(&mut f, TX, &q);
        let a = s.handle_ns(&regs(&[FFA_MEM_RETRIEVE_REQ_64 as u64, 48, 48]), 0, &mut f);
        assert_eq!(a[0], FFA_MEM_RETRIEVE_RESP as u64, "{a:x?}");
        let (len, first) = (a[1] as usize, a[2] as usize);
        assert_eq!(len, d.len());
        assert!(first <= 4096 && first < len, "fragmented: {first} of {len}");
        let mut got = f.read(RX, first);
        let ep_off = u32::from_le_bytes(got[32..36].try_into().unwrap()) as usize;
        assert!(ep_off >= 48 && ep_off + 32 <= first, "receiver array at {ep_off}");
        let composite = u32::from_le_bytes(got[ep_off + 4..ep_off + 8].try_into().unwrap()) as usize;
        assert!(composite != 0 && composite + 16 <= len);
        // Before the release, the next fragment is refused.
        let frag_rx = |s: &Spmc, f: &mut Fake, off: u64| s.handle_ns(&regs(&[FFA_MEM_FRAG_RX as u64, h & 0xffff_ffff, h >> 32, off, 0]), 0, f);
        assert!(is_error(&frag_rx(&s, &mut f, first as u64), FfaError::Denied));
        assert_eq!(s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
        // Offsets that are not the start of a fragment the SPMC can give.
        assert!(is_error(&frag_rx(&s, &mut f, first as u64 + 8), FfaError::InvalidParameters), "inside a constituent");
        assert!(is_error(&frag_rx(&s, &mut f, len as u64), FfaError::InvalidParameters), "past the end");
        assert!(is_error(&frag_rx(&s, &mut f, u64::MAX), FfaError::InvalidParameters), "w3 is 32 bits");
        let other = s.handle_ns(&regs(&[FFA_MEM_FRAG_RX as u64, (h ^ 1) & 0xffff_ffff, h >> 32, first as u64, 0]), 0, &mut f);
        assert!(is_error(&other, FfaError::InvalidParameters), "unknown handle");
        while got.len() < len {
            let a = frag_rx(&s, &mut f, got.len() as u64);
            assert_eq!(a[0], FFA_MEM_FRAG_TX as u64, "{a:x?}");
            assert_eq!((a[1] | a[2] << 32, a[4] >> 16 & 0xffff), (h, 0), "the handle, and no SP's id");
            got.extend(f.read(RX, a[3] as usize));
            assert_eq!(s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f)[0], fid::FFA_SUCCESS_32 as u64);
        }
        // What pKVM unshares from the host's Stage-2 after the reclaim.
        let count = u32::from_le_bytes(got[composite + 4..composite + 8].try_into().unwrap()) as usize;
        assert_eq!(count, list.len());
        assert!(composite + 16 + count * 16 <= len);
        let back: Vec<(u64, u32)> = (0..count)
            .map(|i| {
                let c = &got[composite + 16 + i * 16..];
                (u64::from_le_bytes(c[..8].try_into().unwrap()), u32::from_le_bytes(c[8..12].try_into().unwrap()))
            })
            .collect();
        assert_eq!(back, list);
        assert!(f.borrowed.is_empty(), "nothing mapped for the hypervisor");
        let a = s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 0]), 0, &mut f);
        assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64, "{a:x?}");
        // The handle is gone: pKVM's next retrieve for it gets an error, which
        // it hands to the host.
        put(&mut f, TX, &q);
        assert!(is_error(&s.handle_ns(&regs(&[FFA_MEM_RETRIEVE_REQ_64 as u64, 48, 48]), 0, &mut f), FfaError::InvalidParameters));
    }

    /// A descriptor of 1,200 constituents in five fragments (FFA_MEM_FRAG_TX),
    /// then retrieved in fragments (FFA_MEM_FRAG_RX) through a 4 KiB RX buffer.
    #[test]
    fn fragmented_send_and_retrieve() {
        let (s, mut f) = setup();
        let list: Vec<(u64, u32)> = (0..1200u64).map(|n| (0x6000_0000 + n * 0x2000, 1)).collect();
        let d = build(0, 0x2f, 0, &[(0x8001, RW)], 16, &list);
        let header = 48 + 16 + 16;
        // Fragments (each fits the 4 KiB TX buffer): the header and 200
        // constituents, then four of 250.
        let cut: Vec<usize> = (0..5).map(|k| header + (200 + 250 * k) * 16).collect();
        assert_eq!(*cut.last().unwrap(), d.len());
        put(&mut f, TX, &d[..cut[0]]);
        let a = s.handle_ns(&regs(&[FFA_MEM_SHARE_64 as u64, d.len() as u64, cut[0] as u64]), 0, &mut f);
        assert_eq!(a[0], FFA_MEM_FRAG_RX as u64, "{a:x?}");
        assert_eq!(a[3], cut[0] as u64);
        let h = a[1] | a[2] << 32;
        for w in cut.windows(2) {
            let frag = &d[w[0]..w[1]];
            put(&mut f, TX, frag);
            let a = s.handle_ns(&regs(&[FFA_MEM_FRAG_TX as u64, h & 0xffff_ffff, h >> 32, frag.len() as u64]), 0, &mut f);
            if w[1] == d.len() {
                assert_eq!(handle(&a), h);
            } else {
                assert_eq!((a[0], a[3]), (FFA_MEM_FRAG_RX as u64, w[1] as u64), "{a:x?}");
            }
        }
        let a = retrieve(&s, &mut f, h, 0, RW);
        assert_eq!(a[0], FFA_MEM_RETRIEVE_RESP as u64);
        let total = a[1] as usize;
        let mut got = f.read(SP_RX, a[2] as usize);
        while got.len() < total {
            release_rx(&s, &mut f);
            let a = sp(&s, &mut f, &regs(&[FFA_MEM_FRAG_RX as u64, h & 0xffff_ffff, h >> 32, got.len() as u64]));
            assert_eq!(a[0], FFA_MEM_FRAG_TX as u64, "{a:x?}");
            got.extend(f.read(SP_RX, a[3] as usize));
        }
        let resp = crate::ffa::memory::descriptor::parse(&got, 0x1_0002, true).unwrap();
        let off = resp.constituent_offset(0).unwrap();
        let back: Vec<_> = crate::ffa::memory::descriptor::constituents(&got[off..]).unwrap().map(|c| (c.address, c.page_count)).collect();
        assert_eq!(back, list);
        assert_eq!(f.borrowed.len(), 1200);
    }

    fn reclaim_ns(s: &Spmc, f: &mut Fake, h: u64) -> Regs {
        s.handle_ns(&regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 0]), 0, f)
    }

    /// The hypervisor forwards the transactions of two VMs (descriptor
    /// sender = the VM's id): each gets its own handle, a borrower names
    /// the right VM as sender, a page in one VM's transaction cannot be in
    /// another's, and the hypervisor reclaims each for its VM.
    #[test]
    fn two_vm_senders() {
        let (s, mut f) = setup();
        let h1 = handle(&send(&s, &mut f, FFA_MEM_SHARE_64, &build(1, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)])));
        let h2 = handle(&send(&s, &mut f, FFA_MEM_LEND_64, &build(2, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6100_0000, 2)])));
        assert_ne!(h1, h2);
        let senders: Vec<u16> = s.memory.lock().transactions().map(|t| t.sender).collect();
        assert_eq!(senders, vec![1, 2]);
        // VM 2 cannot put VM 1's shared page in a transaction of its own.
        let d = build(2, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]);
        assert!(is_error(&send(&s, &mut f, FFA_MEM_LEND_64, &d), FfaError::Denied));
        // The borrower names the sender: VM 1's handle with VM 2 as sender is wrong.
        assert!(is_error(&retrieve(&s, &mut f, h1, 2, RW), FfaError::InvalidParameters));
        let a = retrieve(&s, &mut f, h1, 1, RW);
        assert_eq!(a[0], FFA_MEM_RETRIEVE_RESP as u64, "{a:x?}");
        let resp = crate::ffa::memory::descriptor::parse(&f.read(SP_RX, a[2] as usize), 0x1_0002, true).unwrap();
        assert_eq!((resp.sender, resp.handle), (1, h1), "the VM is the sender in the response");
        release_rx(&s, &mut f);
        // VM 2's lent pages are reclaimed for it by the hypervisor.
        assert_eq!(reclaim_ns(&s, &mut f, h2)[0], fid::FFA_SUCCESS_32 as u64);
        assert!(is_error(&reclaim_ns(&s, &mut f, h2), FfaError::InvalidParameters), "gone");
        // VM 1's is still borrowed.
        assert!(is_error(&reclaim_ns(&s, &mut f, h1), FfaError::Denied));
        assert_eq!(relinquish(&s, &mut f, h1)[0], fid::FFA_SUCCESS_32 as u64);
        assert_eq!(reclaim_ns(&s, &mut f, h1)[0], fid::FFA_SUCCESS_32 as u64);
        assert_eq!(s.memory.lock().transactions().count(), 0);
    }

    /// Bad sender ids and reclaims across worlds: each an FF-A error, no state.
    #[test]
    fn vm_sender_errors() {
        let (s, mut f) = setup();
        // A secure id, the SPMD's id, an SP's own id as sender from NS.
        for sender in [0x8001u16, 0xffff, 0x8000] {
            let d = build(sender, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)]);
            assert!(is_error(&send(&s, &mut f, FFA_MEM_SHARE_64, &d), FfaError::InvalidParameters), "{sender:#x}");
        }
        // A VM naming itself as receiver: receivers are SPs.
        let d = build(3, 0x2f, 0, &[(3, RW)], 16, &[(0x6000_0000, 1)]);
        assert!(is_error(&send(&s, &mut f, FFA_MEM_SHARE_64, &d), FfaError::InvalidParameters));
        // Donation from a VM: refused like the hypervisor's own.
        let d = build(3, 0x2f, 0, &[(0x8001, 0)], 16, &[(0x6000_0000, 1)]);
        assert!(is_error(&send(&s, &mut f, FFA_MEM_DONATE_64, &d), FfaError::Denied));
        assert_eq!(s.memory.lock().transactions().count(), 0);
        // An SP cannot reclaim a VM's transaction.
        let h = handle(&send(&s, &mut f, FFA_MEM_LEND_64, &build(5, 0x2f, 0, &[(0x8001, RW)], 16, &[(0x6000_0000, 1)])));
        let a = sp(&s, &mut f, &regs(&[FFA_MEM_RECLAIM as u64, h & 0xffff_ffff, h >> 32, 0]));
        assert!(is_error(&a, FfaError::InvalidParameters));
        assert_eq!(s.memory.lock().transactions().count(), 1);
    }

    /// A fragmented send from VM 3: FFA_MEM_FRAG_RX names VM 3 in
    /// w4[31:16]; FFA_MEM_FRAG_TX must name it too (another VM, the
    /// hypervisor or a secure id: INVALID_PARAMETERS, nothing changes).
    #[test]
    fn vm_fragments_keyed_by_sender() {
        let (s, mut f) = setup();
        let list: Vec<(u64, u32)> = (0..4u64).map(|n| (0x6000_0000 + n * 0x2000, 1)).collect();
        let d = build(3, 0x2f, 0, &[(0x8001, RW)], 16, &list);
        let first = 48 + 16 + 16 + 2 * 16;
        put(&mut f, TX, &d[..first]);
        let a = s.handle_ns(&regs(&[FFA_MEM_SHARE_64 as u64, d.len() as u64, first as u64]), 0, &mut f);
        assert_eq!((a[0], a[3], a[4]), (FFA_MEM_FRAG_RX as u64, first as u64, 3 << 16), "{a:x?}");
        let h = a[1] | a[2] << 32;
        put(&mut f, TX, &d[first..]);
        let frag_tx = |s: &Spmc, f: &mut Fake, sender: u64| s.handle_ns(&regs(&[FFA_MEM_FRAG_TX as u64, h & 0xffff_ffff, h >> 32, 32, sender << 16]), 0, f);
        for wrong in [0u64, 2, 0x8001] {
            assert!(is_error(&frag_tx(&s, &mut f, wrong), FfaError::InvalidParameters), "{wrong:#x}");
            assert_eq!(s.memory.lock().get(h).map(|t| t.received()), Some(2), "{wrong:#x}: unchanged");
        }
        assert_eq!(handle(&frag_tx(&s, &mut f, 3)), h);
        assert!(s.memory.lock().get(h).is_some_and(|t| t.complete() && t.sender == 3));
        // The hypervisor's retrieve request sees VM 3's transaction too.
        let mut q = vec![0u8; 48];
        q[8..16].copy_from_slice(&h.to_le_bytes());
        put(&mut f, TX, &q);
        let a = s.handle_ns(&regs(&[FFA_MEM_RETRIEVE_REQ_64 as u64, 48, 48]), 0, &mut f);
        assert_eq!(a[0], FFA_MEM_RETRIEVE_RESP as u64, "{a:x?}");
        let resp = crate::ffa::memory::descriptor::parse(&f.read(RX, a[2] as usize), 0x1_0002, true).unwrap();
        assert_eq!((resp.sender, resp.address_range_count), (3, 4));
    }
}

mod fuzz;
mod vm_mailboxes;

/// An SP's version, like the Normal world's, is fixed by its first other
/// FF-A call: a different one is NOT_SUPPORTED afterwards, the same is fine.
#[test]
fn sp_version_is_fixed_once_it_made_other_calls() {
    let mut s = Spmc::new(0x8000, ns_mem(), store(), vm_bitmaps());
    let mut f = Fake::new();
    s.add_partition(Partition::new(manifest(0x8001, ECHO_UUID), SpMemory { base: 0x0e30_0000, size: 0x10_0000 })).unwrap();
    let sp = |s: &Spmc, f: &mut Fake, r: &[u64]| match s.handle_sp_call(0, 0, 0, &regs(r), f) {
        crate::ffa::cpu_cycles::SpStep::Resume(a) => a,
        _ => panic!("not a reply"),
    };
    // Before another call: asked twice, the last one counts.
    assert_eq!(sp(&s, &mut f, &[fid::FFA_VERSION as u64, 0x10002])[0], 0x10002);
    assert_eq!(sp(&s, &mut f, &[fid::FFA_VERSION as u64, 0x10001])[0], 0x10002);
    assert_eq!(s.partition(0).unwrap().version(), 0x10001);
    assert_eq!(sp(&s, &mut f, &[fid::FFA_ID_GET as u64])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(sp(&s, &mut f, &[fid::FFA_VERSION as u64, 0x10002])[0], 0xffff_ffff, "refused");
    assert_eq!(s.partition(0).unwrap().version(), 0x10001, "unchanged");
    assert_eq!(sp(&s, &mut f, &[fid::FFA_VERSION as u64, 0x10001])[0], 0x10002, "the same one again");
}

/// A buffer that left the NS PAS under the call (the platform survived the
/// fault): the call is ABORTED, and the next one is answered as usual.
#[test]
fn a_faulted_buffer_access_aborts_the_call() {
    let (mut s, mut f) = booted();
    map_ns(&mut s, &mut f);
    f.access_fault = true;
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f);
    assert!(is_error(&a, FfaError::Aborted), "{a:x?}");
    // The endpoint gives its RX buffer back (the aborted call filled it) and asks again.
    let _ = s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64]), 0, &mut f);
    let a = s.handle_ns(&regs(&[fid::FFA_PARTITION_INFO_GET as u64]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64, "{a:x?}");
}
