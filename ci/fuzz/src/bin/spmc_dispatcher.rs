//! The SPMC dispatcher as the Normal world and SPs reach it: the input is a
//! sequence of calls from the Normal world (an id from the FF-A table or a
//! raw one, then arguments), TX-buffer bytes, and the calls SPs make while
//! they run.  After each call: no context left Running, and no page in two
//! live memory transactions.
#![no_main]
use quadrant_fuzz::{FakePlatform, Input};
use spmc::ffa::Platform as _;
use shared::storm::FFA_IDS;
use spmc::ffa::{CtxState, Partition, SpExit, SpMemory, Spmc};
use spmc::manifest::{Range, Ranges};
use spmc::partition::manifest::PartitionManifest;
use spmc::partition::manifest::Uuid;

const TX: u64 = 0x6100_1000;

/// One store for every input (the SPMC needs it 'static), emptied each time.
static STORE: std::sync::OnceLock<&'static spin::Mutex<spmc::ffa::memory::transaction::MemoryStore>> = std::sync::OnceLock::new();

/// The same for the VMs' notification bitmaps.
static VMS: std::sync::OnceLock<&'static spmc::ffa::notifications::VmBitmaps> = std::sync::OnceLock::new();

fn spmc() -> Spmc {
    let store = *STORE.get_or_init(|| Box::leak(Box::new(spin::Mutex::new(spmc::ffa::memory::transaction::MemoryStore::new()))));
    *store.lock() = spmc::ffa::memory::transaction::MemoryStore::new();
    let mut ns = Ranges::default();
    let _ = ns.push(Range { base: 0x4000_0000, size: 0x10_0000 });
    let _ = ns.push(Range { base: 0x4190_0000, size: 0x7e70_0000 });
    let vms = *VMS.get_or_init(|| Box::leak(Box::new(spmc::ffa::notifications::VmBitmaps::new())));
    vms.clear();
    let mut s = Spmc::new(0x8000, ns, store, vms);
    let mut mp = PartitionManifest::for_test("mp", 0x8002, Uuid([2, 2, 2, 2]), 4, 0x60f);
    mp.notification_support = true;
    let _ = s.add_partition(Partition::new(PartitionManifest::for_test("echo", 0x8001, Uuid([1, 1, 1, 1]), 1, 0x603), SpMemory { base: 0x0e30_0000, size: 0x10_0000 }));
    let _ = s.add_partition(Partition::new(mp, SpMemory { base: 0x0e40_0000, size: 0x10_0000 }));
    s
}

fn call(i: &mut Input) -> [u64; 18] {
    let mut r = [0u64; 18];
    let sel = i.byte();
    r[0] = if sel < 224 { FFA_IDS[sel as usize % FFA_IDS.len()] as u64 } else { i.word() & 0xffff_ffff };
    let n = 1 + (i.byte() % 8) as usize;
    for a in r.iter_mut().skip(1).take(n) {
        *a = match i.byte() % 6 {
            0 => 0,
            1 => i.byte() as u64,
            2 => 0x8000_0000 | (i.byte() as u64 & 3) << 16 | 0x8000 | (i.byte() as u64 & 3),
            3 => [TX, TX - 0x1000, 0x0e30_0000, 0x4010_0000, 0x6000_0000][i.byte() as usize % 5],
            _ => i.word(),
        };
    }
    r
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let s = spmc();
    let mut f = FakePlatform::default();
    for i in 0..s.partitions().count() {
        let _ = s.init_partition(i, 0, 0, &mut f);
    }
    let mut input = Input::new(data);
    let mut steps = 0;
    while !input.done() && steps < 32 {
        steps += 1;
        let r = call(&mut input);
        // TX bytes for the calls that read it, and the SPs' calls for this round.
        let n = input.byte() as usize * 4;
        let tx = input.bytes(n);
        f.write(TX, tx);
        f.script.clear();
        for _ in 0..(input.byte() % 4) {
            f.script.push(SpExit::Call(call(&mut input)));
        }
        f.runs = 0;
        let cpu = (input.byte() % 4) as usize;
        let _ = s.handle_ns(&r, cpu, &mut f);
        for p in s.partitions() {
            for c in 0..p.context_count() {
                assert!(!matches!(p.ctx_state(c), CtxState::Running { .. } | CtxState::HandlingInterrupt), "a context left Running");
            }
        }
        let store = s.memory_store().lock();
        let live: Vec<_> = store.transactions().filter(|t| !t.is_donated()).collect();
        for (a, ta) in live.iter().enumerate() {
            for tb in &live[a + 1..] {
                for ca in store.constituents(ta) {
                    assert!(!store.constituents(tb).iter().any(|cb| cb.overlaps(ca)), "a page in two live transactions");
                }
            }
        }
    }
});
