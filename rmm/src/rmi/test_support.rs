//! A whole fake machine for RMI host tests: one NS DRAM bank backed by heap
//! memory, a fake EL3, and a scripted Realm CPU.

use super::*;
use crate::el3::test_support::FakeEl3;
use crate::granule::{GranuleState, GranuleTable};
use crate::mem::test_support::FakeMemory;
use crate::realm::VmidSet;
use crate::rec::Rec;
use crate::rmi::rec::{ExitKind, RawExit, RealmCpu, RunConfig};
use std::sync::Mutex;
use zerocopy::{Immutable, IntoBytes};

pub const HW: features::HwFeatures = features::HwFeatures { pa_range: 5, brps: 5, wrps: 3 };
pub const BASE: u64 = 0x8000_0000;
pub const PAGES: u64 = 256;

/// One scripted step of the fake CPU: edit the REC as the Realm would, then
/// report this exit.
pub type Step = Box<dyn FnMut(&mut Rec) -> RawExit + Send>;

#[derive(Default)]
pub struct FakeCpu {
    pub script: Mutex<Vec<Step>>,
    pub runs: Mutex<Vec<RunConfig>>,
    pub invalidations: Mutex<usize>,
}

impl RealmCpu for FakeCpu {
    fn run(&self, rec: &mut Rec, cfg: &RunConfig) -> RawExit {
        self.runs.lock().unwrap().push(*cfg);
        let mut s = self.script.lock().unwrap();
        assert!(!s.is_empty(), "fake CPU ran out of script");
        let mut step = s.remove(0);
        step(rec)
    }
    fn invalidate_ipa(&self, _vttbr: u64, _ipa: u64) {
        *self.invalidations.lock().unwrap() += 1;
    }
    fn invalidate_vmid(&self, _vmid: u64) {
        *self.invalidations.lock().unwrap() += 1;
    }
}

pub fn sync(esr: u64) -> RawExit {
    RawExit { kind: ExitKind::Sync, esr, far: 0, hpfar: 0, gic_misr: 0 }
}

/// ESR of a trapped SMC64.
pub const ESR_SMC: u64 = 0x17 << 26 | 1 << 25;

pub struct World {
    pub mem: &'static FakeMemory,
    pub granules: &'static GranuleTable<'static>,
    pub el3: &'static FakeEl3,
    pub vmids: &'static VmidSet,
    pub cpu: &'static FakeCpu,
    pub attest: &'static crate::attest::Attest,
}

impl World {
    pub fn new() -> Self {
        let storage = crate::granule::test_support::storage(PAGES as usize);
        Self {
            mem: FakeMemory::new(BASE, PAGES * 0x1000),
            granules: Box::leak(Box::new(GranuleTable::new(&[(BASE, PAGES * 0x1000)], storage))),
            el3: Box::leak(Box::default()),
            vmids: Box::leak(Box::new(VmidSet::new())),
            cpu: Box::leak(Box::default()),
            attest: Box::leak(Box::new(crate::attest::Attest::new())),
        }
    }

    /// Back to the state `new` gives, reusing the allocations: all memory
    /// zero, every granule Undelegated, every VMID free, no script, no
    /// recorded EL3 calls (ci/fuzz's target runs millions of inputs; a new
    /// World per input would leak a megabyte each).
    pub fn reset(&self) {
        self.mem.reset();
        self.granules.reset();
        self.vmids.release_all();
        self.el3.calls.lock().unwrap().clear();
        self.el3.refuse.lock().unwrap().clear();
        self.cpu.script.lock().unwrap().clear();
        self.cpu.runs.lock().unwrap().clear();
    }

    pub fn ctx(&self) -> RmiContext<'static> {
        RmiContext { hw: HW, granules: self.granules, mem: self.mem, el3: self.el3, vmids: self.vmids, cpu: self.cpu, attest: self.attest }
    }

    /// Granule `n` of the bank.
    pub fn g(n: u64) -> u64 {
        BASE + n * 0x1000
    }

    /// Makes an RMI call; returns x0..x4.
    pub fn call(&self, fid: u32, args: &[u64]) -> [u64; 5] {
        let mut regs = vec![fid as u64];
        regs.extend_from_slice(args);
        regs.resize(8, 0);
        handle(&RmiCall::from_regs(&regs), &self.ctx()).regs
    }

    pub fn ok(&self, fid: u32, args: &[u64]) -> [u64; 5] {
        let r = self.call(fid, args);
        assert_eq!(r[0], 0, "{} {:x?} failed: {:#x}", name(fid).unwrap_or("?"), args, r[0]);
        r
    }

    pub fn state(&self, addr: u64) -> GranuleState {
        self.granules.state(addr).unwrap()
    }

    /// Writes `val` into the Host's memory at `pa`.
    pub fn host_write<T: IntoBytes + Immutable + ?Sized>(&self, pa: u64, val: &T) {
        let b = val.as_bytes();
        let page = self.mem.page(pa & !0xfff);
        let off = (pa & 0xfff) as usize;
        page[off..off + b.len()].copy_from_slice(b);
    }

    pub fn delegate(&self, n: u64) -> u64 {
        let a = Self::g(n);
        self.ok(rmi::RMI_GRANULE_DELEGATE, &[a]);
        a
    }

    /// Standard Realm: RD at granule 1, params at 2, start RTT at 4 (IPA 39
    /// bits, level 1, one table), VMID `vmid`.  Returns the RD.
    pub fn realm(&self, vmid: u64) -> u64 {
        let p = self.params(vmid, Self::g(4));
        self.delegate(1);
        self.delegate(4);
        self.host_write(Self::g(2), &p);
        self.ok(rmi::RMI_REALM_CREATE, &[Self::g(1), Self::g(2)]);
        Self::g(1)
    }

    pub fn params(&self, vmid: u64, rtt: u64) -> shared::abi::rmi::RmiRealmParams {
        let mut p = shared::abi::rmi::RmiRealmParams::zeroed();
        p.s2sz = 39;
        p.num_bps = 1;
        p.num_wps = 1;
        p.hash_algo = 0;
        p.vmid = vmid;
        p.rtt_base = rtt;
        p.rtt_level_start = 1;
        p.rtt_num_start = 1;
        p
    }

    /// The Realm's RTT tree and every granule state, to prove a failed
    /// command changed nothing.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for n in 0..PAGES {
            v.push(self.state(Self::g(n)) as u8);
            if self.state(Self::g(n)) != GranuleState::Undelegated {
                v.extend_from_slice(self.mem.page(Self::g(n)));
            }
        }
        v
    }
}
