//! A fake RMM behind a fake `smc`, answering the commands the Host driver
//! uses as rmm does (granule states, RTT_INIT_RIPAS/RTT_SET_RIPAS progress
//! in steps, REC exits from a script written into RmiRecRun), and the
//! driver's tests.

use super::host::{self, Image, RunOptions, put};
use super::{Lines, NsMemory, Pages};
use shared::abi::rmi::*;
use shared::smccc::{Conduit, SmcResult};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum G {
    Delegated,
    Rd,
    Rtt,
    Data,
    Rec,
    RecAux,
}

#[derive(Default)]
pub struct FakeRmm {
    /// NS memory, by page.
    pub mem: RefCell<HashMap<u64, Box<[u8; 4096]>>>,
    pub granules: RefCell<HashMap<u64, G>>,
    pub calls: RefCell<Vec<(u32, [u64; 5])>>,
    pub exits: RefCell<VecDeque<[u8; 0x800]>>,
    /// RmiRecEnter as the Host wrote it, per REC_ENTER.
    pub enters: RefCell<Vec<[u8; 0x800]>>,
    pub data: RefCell<HashMap<u64, u64>>,
    pub rtts: RefCell<HashMap<i64, u64>>,
    pub rtt_base: RefCell<u64>,
    /// Answer ERROR_INPUT to this command.
    pub fail_on: Option<u32>,
    /// What REC_AUX_COUNT answers (TF-RMM: 16; rmm: 0).
    pub aux_count: u64,
    /// Each REC's auxiliary granules.
    pub rec_aux: RefCell<HashMap<u64, Vec<u64>>>,
}

/// RMI_FEATURES register 0 of the fake: 48-bit IPA, 6 breakpoints and 4
/// watchpoints (NUM_BPS 5, NUM_WPS 3), as QEMU's `max` CPU.
const FEATURES0: u64 = 48 | 5 << feature0::NUM_BPS_SHIFT | 3 << feature0::NUM_WPS_SHIFT;

impl NsMemory for FakeRmm {
    fn write(&self, pa: u64, data: &[u8]) {
        let mut m = self.mem.borrow_mut();
        let mut done = 0;
        while done < data.len() {
            let a = pa + done as u64;
            let off = (a & 0xfff) as usize;
            let n = (0x1000 - off).min(data.len() - done);
            let page = m.entry(a & !0xfff).or_insert_with(|| Box::new([0; 4096]));
            page[off..off + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
    }
    fn read(&self, pa: u64, data: &mut [u8]) {
        let m = self.mem.borrow();
        let mut done = 0;
        while done < data.len() {
            let a = pa + done as u64;
            let off = (a & 0xfff) as usize;
            let n = (0x1000 - off).min(data.len() - done);
            match m.get(&(a & !0xfff)) {
                Some(page) => data[done..done + n].copy_from_slice(&page[off..off + n]),
                None => data[done..done + n].fill(0),
            }
            done += n;
        }
    }
}

fn r(x: &[u64]) -> SmcResult {
    let mut o = [0; 18];
    o[..x.len()].copy_from_slice(x);
    o
}

impl FakeRmm {
    fn take(&self, pa: u64, from: G, to: G) -> SmcResult {
        let mut g = self.granules.borrow_mut();
        match g.get(&pa) {
            Some(s) if *s == from => {
                g.insert(pa, to);
                r(&[0])
            }
            _ => r(&[1]),
        }
    }
    fn read_u64(&self, pa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.read(pa, &mut b);
        u64::from_le_bytes(b)
    }
    pub fn exit(&self, build: impl FnOnce(&mut [u8; 0x800])) {
        let mut e = [0u8; 0x800];
        build(&mut e);
        self.exits.borrow_mut().push_back(e);
    }
}

impl Conduit for FakeRmm {
    fn call(&self, fid: u32, a: [u64; 17]) -> SmcResult {
        self.calls.borrow_mut().push((fid, [a[0], a[1], a[2], a[3], a[4]]));
        if self.fail_on == Some(fid) {
            return r(&[1]);
        }
        match fid {
            RMI_VERSION => r(&[0, RMI_ABI_VERSION, RMI_ABI_VERSION]),
            RMI_FEATURES => r(&[0, FEATURES0]),
            RMI_GRANULE_DELEGATE => {
                let mut g = self.granules.borrow_mut();
                if a[0] % 0x1000 != 0 || g.contains_key(&a[0]) {
                    return r(&[1]);
                }
                g.insert(a[0], G::Delegated);
                r(&[0])
            }
            RMI_GRANULE_UNDELEGATE => {
                let mut g = self.granules.borrow_mut();
                if g.get(&a[0]) != Some(&G::Delegated) {
                    return r(&[1]);
                }
                g.remove(&a[0]);
                r(&[0])
            }
            RMI_REALM_CREATE => {
                // num_bps / num_wps: 0 is reserved, at most RMI_FEATURES'.
                let (bps, wps) = (self.read_u64(a[1] + 0x18), self.read_u64(a[1] + 0x20));
                if !(1..=(FEATURES0 >> 14) & 0x3f).contains(&bps) || !(1..=(FEATURES0 >> 20) & 0x3f).contains(&wps) {
                    return r(&[1]);
                }
                let base = self.read_u64(a[1] + 0x808);
                if self.granules.borrow().get(&base) != Some(&G::Delegated) {
                    return r(&[1]);
                }
                let x = self.take(a[0], G::Delegated, G::Rd);
                if x[0] == 0 {
                    self.granules.borrow_mut().insert(base, G::Rtt);
                    *self.rtt_base.borrow_mut() = base;
                }
                x
            }
            RMI_RTT_CREATE => {
                let x = self.take(a[1], G::Delegated, G::Rtt);
                if x[0] == 0 {
                    self.rtts.borrow_mut().insert(a[3] as i64, a[1]);
                }
                x
            }
            // Both RIPAS commands make progress 2 pages at a time.
            RMI_RTT_INIT_RIPAS => r(&[0, (a[1] + 0x2000).min(a[2])]),
            RMI_RTT_SET_RIPAS => r(&[0, (a[2] + 0x2000).min(a[3])]),
            RMI_DATA_CREATE => {
                let x = self.take(a[1], G::Delegated, G::Data);
                if x[0] == 0 {
                    self.data.borrow_mut().insert(a[2], a[1]);
                }
                x
            }
            RMI_REC_CREATE => {
                if self.read_u64(a[2]) != RMI_REC_FLAG_RUNNABLE || self.read_u64(a[2] + 0x200) != host::IPA_BASE {
                    return r(&[1]);
                }
                // num_aux must be REC_AUX_COUNT, each aux granule Delegated.
                let aux: Vec<u64> = (0..self.read_u64(a[2] + 0x800).min(16)).map(|i| self.read_u64(a[2] + 0x808 + 8 * i)).collect();
                let g = self.granules.borrow();
                if aux.len() as u64 != self.aux_count || aux.iter().any(|p| g.get(p) != Some(&G::Delegated)) {
                    return r(&[1]);
                }
                drop(g);
                let x = self.take(a[1], G::Delegated, G::Rec);
                if x[0] == 0 {
                    for &p in &aux {
                        self.granules.borrow_mut().insert(p, G::RecAux);
                    }
                    self.rec_aux.borrow_mut().insert(a[1], aux);
                }
                x
            }
            RMI_REC_AUX_COUNT => r(&[0, self.aux_count]),
            RMI_REALM_ACTIVATE => r(&[0]),
            RMI_REC_ENTER => {
                let mut e = [0u8; 0x800];
                self.read(a[1], &mut e);
                self.enters.borrow_mut().push(e);
                let exit = self.exits.borrow_mut().pop_front().unwrap_or_else(|| {
                    let mut x = [0u8; 0x800];
                    put(&mut x, 0, RMI_EXIT_IRQ);
                    x
                });
                self.write(a[1] + 0x800, &exit);
                r(&[0])
            }
            RMI_PSCI_COMPLETE => r(&[0]),
            RMI_DATA_DESTROY => match self.data.borrow_mut().remove(&a[1]) {
                Some(pa) => {
                    self.granules.borrow_mut().insert(pa, G::Delegated);
                    r(&[0, pa, a[1] + 0x1000])
                }
                None => r(&[4 | 3 << 8]),
            },
            RMI_REC_DESTROY => {
                let x = self.take(a[0], G::Rec, G::Delegated);
                if x[0] == 0 {
                    for p in self.rec_aux.borrow_mut().remove(&a[0]).unwrap_or_default() {
                        self.granules.borrow_mut().insert(p, G::Delegated);
                    }
                }
                x
            }
            RMI_RTT_DESTROY => match self.rtts.borrow_mut().remove(&(a[2] as i64)) {
                Some(pa) => {
                    self.granules.borrow_mut().insert(pa, G::Delegated);
                    r(&[0, pa, 0])
                }
                None => r(&[4 | 1 << 8]),
            },
            RMI_REALM_DESTROY => {
                if self.granules.borrow().get(&a[0]) != Some(&G::Rd) {
                    return r(&[1]);
                }
                if !self.rtts.borrow().is_empty() || !self.data.borrow().is_empty() {
                    return r(&[2]);
                }
                let base = *self.rtt_base.borrow();
                self.granules.borrow_mut().insert(base, G::Delegated);
                self.take(a[0], G::Rd, G::Delegated)
            }
            _ => r(&[u64::MAX]),
        }
    }
}

fn mmio_write(f: &FakeRmm, byte: u8) {
    f.exit(|e| {
        put(e, 0, RMI_EXIT_SYNC);
        put(e, 0x100, 0x24 << 26 | 1 << 25 | 1 << 24 | 1 << 6); // DABT, ISV, WnR
        put(e, 0x108, host::UART_IPA & 0xfff);
        put(e, 0x110, (host::UART_IPA >> 12) << 4);
        put(e, 0x200, byte as u64);
    });
}

const IMAGE: Image = Image { pa: 0x4800_0000, pages: 3 };
const PAGES_BASE: u64 = 0x6010_0000;

fn boot(f: &FakeRmm, opts: RunOptions) -> (bool, Vec<String>) {
    let mut pages = Pages::new(PAGES_BASE, 40);
    let mut out = Lines::default();
    let ok = super::realm_boot(f, f, &mut pages, IMAGE, opts, &|| 0, &mut out);
    (ok, out.0)
}

#[test]
fn realm_boot_happy_path() {
    let f = FakeRmm::default();
    for b in b"hi\r\n" {
        mmio_write(&f, *b);
    }
    f.exit(|e| {
        put(e, 0, RMI_EXIT_RIPAS_CHANGE);
        put(e, 0x500, 0x4000_1000);
        put(e, 0x508, 0x4000_6000);
        put(e, 0x510, RMI_RAM);
    });
    f.exit(|e| {
        put(e, 0, RMI_EXIT_HOST_CALL);
        put(e, 0x600, 1);
        put(e, 0x200, 0x1234);
    });
    f.exit(|e| {
        put(e, 0, RMI_EXIT_PSCI);
        put(e, 0x200, shared::abi::psci::PSCI_SYSTEM_OFF as u64);
    });
    let (ok, lines) = boot(&f, RunOptions::default());
    assert!(ok, "{lines:#?}");
    assert!(lines.contains(&"[realm] hi".to_string()), "{lines:#?}");
    assert!(lines.last().unwrap().starts_with("[ns-hyp] realm_boot: ok 7 exits, 4 mmio, 1 host call(s), 1 RIPAS change(s)"), "{lines:#?}");
    // Everything went back to the Host.
    assert!(f.granules.borrow().is_empty(), "{:?}", f.granules.borrow());
    // The command order of the module comment.
    let calls = f.calls.borrow();
    let fids: Vec<u32> = calls.iter().map(|c| c.0).collect();
    assert_eq!(&fids[..5], &[RMI_VERSION, RMI_FEATURES, RMI_GRANULE_DELEGATE, RMI_GRANULE_DELEGATE, RMI_REALM_CREATE]);
    // INIT_RIPAS was repeated from where it stopped until the top.
    let init: Vec<_> = calls.iter().filter(|c| c.0 == RMI_RTT_INIT_RIPAS).map(|c| (c.1[1], c.1[2])).collect();
    assert_eq!(init, [(0x4000_0000, 0x4000_3000), (0x4000_2000, 0x4000_3000)]);
    // Measured DATA_CREATE of each page from the image, in order.
    let data: Vec<_> = calls.iter().filter(|c| c.0 == RMI_DATA_CREATE).map(|c| (c.1[2], c.1[3], c.1[4])).collect();
    assert_eq!(data, [(0x4000_0000, 0x4800_0000, 1), (0x4000_1000, 0x4800_1000, 1), (0x4000_2000, 0x4800_2000, 1)]);
    // SET_RIPAS continued until the requested top.
    let set: Vec<_> = calls.iter().filter(|c| c.0 == RMI_RTT_SET_RIPAS).map(|c| c.1[2]).collect();
    assert_eq!(set, [0x4000_1000, 0x4000_3000, 0x4000_5000]);
    // Re-entries: EMUL_MMIO after each MMIO write; the host call's x0 + 1.
    let enters = f.enters.borrow();
    let word = |e: &[u8; 0x800], off: usize| u64::from_le_bytes(e[off..off + 8].try_into().unwrap());
    assert_eq!(word(&enters[1], 0), RMI_REC_ENTER_EMUL_MMIO);
    assert_eq!(word(&enters[5], 0), 0);
    assert_eq!(word(&enters[6], 0x200), 0x1235);
    // Teardown after the last REC_ENTER, RTTs from the leaf up.
    let destroys: Vec<_> = calls.iter().filter(|c| c.0 == RMI_RTT_DESTROY).map(|c| c.1[2]).collect();
    assert_eq!(destroys, [3, 2]);
}

/// An RMM that wants auxiliary granules (TF-RMM asks for 16): the Host asks
/// REC_AUX_COUNT before REC_CREATE, delegates and passes that many, and
/// gets them all back at teardown (issue M item 5).
#[test]
fn rec_aux_granules_are_asked_first_delegated_passed_and_returned() {
    let f = FakeRmm { aux_count: 16, ..Default::default() };
    f.exit(|e| {
        put(e, 0, RMI_EXIT_PSCI);
        put(e, 0x200, shared::abi::psci::PSCI_SYSTEM_OFF as u64);
    });
    let (ok, lines) = boot(&f, RunOptions::default());
    assert!(ok, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("with 16 aux granule(s)")), "{lines:#?}");
    let fids: Vec<u32> = f.calls.borrow().iter().map(|c| c.0).collect();
    let pos = |fid| fids.iter().position(|&x| x == fid).unwrap();
    assert!(pos(RMI_REC_AUX_COUNT) < pos(RMI_REC_CREATE));
    assert!(f.granules.borrow().is_empty(), "{:?}", f.granules.borrow());
    // And the REALM_CREATE parameters had valid breakpoint/watchpoint counts.
    assert_eq!((host::NUM_BPS, host::NUM_WPS), (1, 1));
}

/// The fake refuses what RMI 1.0 reserves, as TF-RMM does: an RMM whose
/// REC_AUX_COUNT the Host ignored would fail REC_CREATE.
#[test]
fn rec_create_without_the_aux_granules_is_refused() {
    let f = FakeRmm { aux_count: 16, ..Default::default() };
    let mem_params = 0x7000_0000;
    f.granules.borrow_mut().insert(0x7000_1000, G::Delegated);
    f.write(mem_params, &host::rec_params(&[]));
    assert_eq!(f.call(RMI_REC_CREATE, [0, 0x7000_1000, mem_params, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])[0], 1);
}

#[test]
fn a_failed_command_is_reported_and_everything_torn_down() {
    for fid in [RMI_REALM_CREATE, RMI_RTT_CREATE, RMI_DATA_CREATE, RMI_REC_CREATE, RMI_REALM_ACTIVATE] {
        let f = FakeRmm { fail_on: Some(fid), ..Default::default() };
        let (ok, lines) = boot(&f, RunOptions::default());
        assert!(!ok);
        assert!(lines.last().unwrap().contains("realm_boot: FAIL"), "{lines:#?}");
        assert!(lines.last().unwrap().contains("ERROR_INPUT"), "{lines:#?}");
        assert!(f.granules.borrow().is_empty(), "{fid:#x}: {:?}", f.granules.borrow());
    }
}

#[test]
fn a_realm_that_never_powers_off_is_given_up_on() {
    let f = FakeRmm::default(); // every REC_ENTER ends with an IRQ exit
    let (ok, lines) = boot(&f, RunOptions::default());
    assert!(!ok);
    assert!(lines.last().unwrap().contains("did not power off"), "{lines:#?}");
    assert_eq!(f.enters.borrow().len(), host::MAX_EXITS as usize);
    assert!(f.granules.borrow().is_empty());
}

#[test]
fn unknown_exit_reason_stops_the_run() {
    let f = FakeRmm::default();
    f.exit(|e| put(e, 0, 99));
    let (ok, lines) = boot(&f, RunOptions::default());
    assert!(!ok);
    assert!(lines.last().unwrap().contains("REC exit reason"), "{lines:#?}");
    assert!(f.granules.borrow().is_empty());
}

#[test]
fn bench_rounds_are_timed_from_the_answer_to_the_last_round() {
    let f = FakeRmm::default();
    let hc = |imm| {
        move |e: &mut [u8; 0x800]| {
            put(e, 0, RMI_EXIT_HOST_CALL);
            put(e, 0x600, imm);
        }
    };
    f.exit(hc(host::HOST_CALL_BENCH));
    for _ in 0..3 {
        f.exit(hc(host::HOST_CALL_BENCH_ROUND));
    }
    f.exit(|e| {
        put(e, 0, RMI_EXIT_PSCI);
        put(e, 0x200, shared::abi::psci::PSCI_SYSTEM_OFF as u64);
    });
    let rmi = super::rmi::Rmi::new(&f);
    let mut pages = Pages::new(PAGES_BASE, 40);
    let mut out = Lines::default();
    let realm = host::Realm::create(&rmi, &f, &mut pages, IMAGE, &mut out).unwrap();
    let t = std::cell::Cell::new(0u64);
    let counter = || {
        t.set(t.get() + 10);
        t.get()
    };
    let s = host::run(&rmi, &f, &realm, RunOptions { bench_rounds: 3, ..RunOptions::default() }, &counter, &mut out).unwrap();
    // Two counter reads: at the answer (10) and at the third round's exit (20).
    assert_eq!((s.bench_rounds, s.bench_ticks), (3, 10));
    // The answer to HOST_CALL_BENCH carried the round count.
    let enters = f.enters.borrow();
    assert_eq!(u64::from_le_bytes(enters[1][0x200..0x208].try_into().unwrap()), 3);
}

#[test]
fn rsi_tests_and_token_bench_host_calls_are_answered_from_the_options() {
    let f = FakeRmm::default();
    let hc = |imm: u64, x0: u64, x1: u64| {
        move |e: &mut [u8; 0x800]| {
            put(e, 0, RMI_EXIT_HOST_CALL);
            put(e, 0x600, imm);
            put(e, 0x200, x0);
            put(e, 0x208, x1);
        }
    };
    f.exit(hc(host::HOST_CALL_RSI_TESTS, 0, 0));
    f.exit(hc(host::HOST_CALL_TOKEN_BENCH, 0, 0));
    f.exit(hc(host::HOST_CALL_TOKEN_RESULT, 4, 12345));
    f.exit(|e| {
        put(e, 0, RMI_EXIT_PSCI);
        put(e, 0x200, shared::abi::psci::PSCI_SYSTEM_OFF as u64);
    });
    let rmi = super::rmi::Rmi::new(&f);
    let mut pages = Pages::new(PAGES_BASE, 40);
    let mut out = Lines::default();
    let realm = host::Realm::create(&rmi, &f, &mut pages, IMAGE, &mut out).unwrap();
    let opts = RunOptions { rsi_tests: true, token_rounds: 4, ..RunOptions::default() };
    let s = host::run(&rmi, &f, &realm, opts, &|| 0, &mut out).unwrap();
    assert_eq!((s.token_rounds, s.token_ticks), (4, 12345));
    let enters = f.enters.borrow();
    let x0 = |i: usize| u64::from_le_bytes(enters[i][0x200..0x208].try_into().unwrap());
    // Answers: "yes" to the RSI cases, 4 tokens, 0 to the report.
    assert_eq!((x0(1), x0(2), x0(3)), (1, 4, 0));
}

#[test]
fn rmi_bad_input_table_against_a_fake_that_always_refuses() {
    // A fake RMM that accepts the fixture but changes state on one "bad"
    // call must be caught by the snapshot; here: every case's answer is
    // NOT_SUPPORTED (unknown to the fake) or the fake's simplified code, so
    // the runner must report failures, never panic, and tear down.
    let f = FakeRmm::default();
    let mut pages = Pages::new(PAGES_BASE, 40);
    let mut out = Lines::default();
    let (passed, failed) = super::bad_input::run(&f, &f, &mut pages, &mut out);
    assert!(failed > 0 && passed > 0);
    assert!(out.0.last().unwrap().starts_with("[ns-hyp] rmi_bad_input: "), "{:#?}", out.0);
    assert!(out.0.iter().any(|l| l.contains("rmi_bad_input unknown_function: ok")), "{:#?}", out.0);
}
