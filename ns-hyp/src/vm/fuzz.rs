//! Issue J: the guest-facing decoders and devices of the VM model under
//! seeded random input on the host: MMIO accesses to every device window
//! and around them (vGIC distributor and redistributors, PL011, the virtio
//! slot), data-abort syndromes and instructions, PSCI calls, trapped system
//! register syndromes.  After each: no panic; an access outside every
//! window, or of a size the bus does not have, is an abort; a PSCI answer
//! never starts a vCPU that does not exist or is on; a decoded access has a
//! size of 1..8 bytes and a register below 32.  The same inputs drawn
//! from a libFuzzer input ([`fuzz_one`]) make ci/fuzz's coverage-guided
//! `nshyp_exits` target.

use super::decode;
use super::layout::*;
use super::psci::{self, Action, Power};
use super::sysreg::{self, SysRegIss};
use super::virtio_blk::fakes::{BASE, DirectMem, Mem, RamDisk};
use super::virtio_blk::{GuestMemory, SECTOR, VirtioBlk};
use super::{Mmio, Vm};

use shared::xorshift::{Bytes, Source, XorShift64};

fn ipa(r: &mut impl Source, nvcpus: usize) -> u64 {
    let base = [GICD_IPA, GICR_IPA, GICR_IPA + GICR_STRIDE * nvcpus as u64, UART_IPA, RTC_IPA, VIRTIO_IPA, 0, 0x4000_0000][r.below(8) as usize];
    match r.below(4) {
        0 => base.wrapping_sub(r.below(16)),
        1 => r.next_u64(),
        2 => base + r.below(0x2_0000),
        // Mostly register offsets the devices have, 8-byte aligned.
        _ => base + (r.below(0x1000) & !7),
    }
}

fn in_windows(a: u64, size: u64, nvcpus: usize) -> bool {
    let w = |b: u64, l: u64| a >= b && a.checked_add(size).is_some_and(|e| e <= b + l);
    w(GICD_IPA, GICD_SIZE) || w(GICR_IPA, GICR_STRIDE * nvcpus as u64) || w(UART_IPA, UART_SIZE) || w(RTC_IPA, RTC_SIZE) || w(VIRTIO_IPA, VIRTIO_SIZE)
}

/// One input drawn from `r` (an MMIO access, a syndrome or instruction to
/// decode, a PSCI call, a trapped system register), checked; whether an
/// MMIO access was served.
fn step(vm: &mut Vm, nvcpus: usize, r: &mut impl Source) -> bool {
    let mut served = false;
    match r.below(5) {
        0 | 1 => {
            let a = ipa(r, nvcpus);
            let size = [1u8, 2, 4, 8, 3, 16][r.below(6) as usize];
            let write = r.below(2) == 0;
            match vm.mmio(a, size, write, r.next_u64()) {
                Mmio::Ok { .. } => {
                    assert!(in_windows(a, size as u64, nvcpus) && a % size as u64 == 0, "{a:#x}/{size} served outside the bus");
                    served = true;
                }
                Mmio::Abort => {}
            }
        }
        2 => {
            if let Some(acc) = decode::from_syndrome(r.next_u64()) {
                assert!((1..=8).contains(&acc.size) && acc.rt < 32 && acc.rt2.is_none_or(|r| r < 32), "{acc:?}");
            }
            if let Ok(acc) = decode::from_instruction(r.next_u64() as u32) {
                assert!((1..=8).contains(&acc.size) && acc.rt < 32 && acc.rt2.is_none_or(|r| r < 32), "{acc:?}");
            }
        }
        3 => {
            let fid = if r.below(2) == 0 { 0x8400_0000 | r.below(0x20) | r.below(2) << 30 } else { r.next_u64() };
            let power: Vec<Power> = (0..nvcpus).map(|_| if r.below(2) == 0 { Power::On } else { Power::Off }).collect();
            let x = [r.below(8) | if r.below(4) == 0 { r.next_u64() } else { 0 }, r.next_u64(), r.next_u64()];
            if let Action::Start { target, .. } = psci::handle(fid, x, &power) {
                assert!(target < nvcpus && power[target] == Power::Off, "PSCI started vCPU {target} of {nvcpus} ({:?})", power.get(target));
            }
        }
        _ => {
            let iss = SysRegIss::decode(r.next_u64());
            assert!(iss.rt < 32);
            let _ = sysreg::find(&iss);
        }
    }
    served
}

/// `calls` random inputs from `seed`; returns how many MMIO accesses were
/// served (not aborted).
pub fn campaign(seed: u64, calls: u64) -> u64 {
    let mut r = XorShift64::new(seed | 1);
    let nvcpus = 1 + r.below(4) as usize;
    let mut vm = Vm::new(nvcpus);
    (0..calls).map(|_| u64::from(step(&mut vm, nvcpus, &mut r))).sum()
}

/// Most inputs one fuzz input makes.
pub const FUZZ_MAX_STEPS: usize = 256;

/// One libFuzzer input: a VM of 1 to 4 vCPUs (the first byte), then steps
/// drawn from the bytes until they run out.  Panics (a libFuzzer crash) on
/// a broken invariant or a panic in the model.
pub fn fuzz_one(data: &[u8]) {
    let mut r = Bytes(data);
    let nvcpus = 1 + r.below(4) as usize;
    let mut vm = Vm::new(nvcpus);
    for _ in 0..FUZZ_MAX_STEPS {
        if r.is_empty() {
            break;
        }
        step(&mut vm, nvcpus, &mut r);
    }
}

/// Guest memory the virtio harness gives the device: rings and buffers.
const VIRTIO_MEM: u64 = 0x4000;
/// The virtio-mmio registers a driver writes (virtio 1.2 §4.2.2).
const VIRTIO_REGS: [u64; 15] = [0x014, 0x020, 0x024, 0x030, 0x038, 0x044, 0x050, 0x064, 0x070, 0x080, 0x084, 0x090, 0x094, 0x0a0, 0x0a4];

/// A guest address: mostly inside the harness's memory, 16-byte aligned.
fn guest_addr(r: &mut impl Source) -> u64 {
    match r.below(8) {
        0 => r.next_u64(),
        1 => BASE + r.below(VIRTIO_MEM + 0x100),
        _ => BASE + (r.below(VIRTIO_MEM) & !0xf),
    }
}

/// One virtio-blk session drawn from `r`: a driver's bring-up (mostly the
/// right sequence, with rings where `r` puts them), then up to `steps`
/// register writes, descriptors, available-ring entries, raw memory words
/// and queue processing, over copying or direct guest memory.  After each:
/// no panic, the device asks the disk only for sectors it has, and every
/// guest access stays in guest memory (the fakes refuse the rest).
/// Returns how many times processing left a used-buffer interrupt pending.
pub fn virtio_session(r: &mut impl Source, steps: usize) -> u32 {
    let mut dev = VirtioBlk::new();
    let mut disk = RamDisk { data: vec![0x5a; 16 * SECTOR], flushes: 0 };
    let direct = r.below(2) == 0;
    let mut copy = Mem(vec![0; VIRTIO_MEM as usize]);
    let mut zero_copy = DirectMem(Mem(vec![0; VIRTIO_MEM as usize]));
    let mem: &mut dyn GuestMemory = if direct { &mut zero_copy } else { &mut copy };
    let (desc, avail, used) = (guest_addr(r), guest_addr(r), guest_addr(r));
    if r.below(4) != 0 {
        for (off, val) in [(0x070, 3), (0x024, 1), (0x020, 1), (0x070, 11), (0x030, 0)] {
            dev.write(off, val);
        }
        dev.write(0x038, [8, 16, 128, 3, 0, 256][r.below(6) as usize]);
        for (off, a) in [(0x080, desc), (0x090, avail), (0x0a0, used)] {
            dev.write(off, a as u32);
            dev.write(off + 4, (a >> 32) as u32);
        }
        dev.write(0x044, 1);
        dev.write(0x070, 15);
    }
    let mut avail_idx = 0u16;
    let mut completed = 0;
    for _ in 0..steps {
        match r.below(8) {
            0 => {
                let off = if r.below(8) == 0 { r.below(0x200) } else { VIRTIO_REGS[r.below(VIRTIO_REGS.len() as u64) as usize] };
                dev.write(off, r.next_u64() as u32);
            }
            1 => {
                let _ = dev.read(r.below(0x200), [1, 2, 4, 8][r.below(4) as usize], disk.data.len() as u64 / SECTOR as u64);
            }
            2 | 3 => {
                // A descriptor: address, length, flags (NEXT, WRITE, INDIRECT), next.
                let mut d = [0u8; 16];
                d[0..8].copy_from_slice(&guest_addr(r).to_le_bytes());
                d[8..12].copy_from_slice(&([16, 512, 1, 0x1000, 0][r.below(5) as usize] as u32 | if r.below(8) == 0 { r.next_u64() as u32 } else { 0 }).to_le_bytes());
                d[12..14].copy_from_slice(&(r.below(8) as u16).to_le_bytes());
                d[14..16].copy_from_slice(&(r.below(8) as u16).to_le_bytes());
                mem.write(desc.wrapping_add(16 * r.below(8)), &d);
            }
            4 => {
                // A request header (type, sector) where a descriptor may point.
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&([0u32, 1, 4, 8, 0xdead][r.below(5) as usize]).to_le_bytes());
                h[8..16].copy_from_slice(&(if r.below(4) == 0 { r.next_u64() } else { r.below(20) }).to_le_bytes());
                mem.write(guest_addr(r), &h);
            }
            5 => {
                // Make a head available.
                mem.write(avail.wrapping_add(4 + 2 * (avail_idx % 8) as u64), &(r.below(8) as u16).to_le_bytes());
                avail_idx = avail_idx.wrapping_add(if r.below(16) == 0 { r.below(0x1_0000) as u16 } else { 1 });
                mem.write(avail.wrapping_add(2), &avail_idx.to_le_bytes());
            }
            6 => {
                mem.write(guest_addr(r), &r.next_u64().to_le_bytes());
            }
            _ => completed += u32::from(dev.process(mem, &mut disk)),
        }
    }
    completed
}

/// One libFuzzer input as a virtio-blk session (ci/fuzz's `nshyp_virtio`).
pub fn virtio_fuzz_one(data: &[u8]) {
    virtio_session(&mut Bytes(data), 128);
}

/// libFuzzer's first `nshyp_virtio` crash, minimized by hand to its
/// meaning: a driver ring address near the top of the address space made
/// `avail + 2` overflow (a panic with overflow checks, a wrapped guest
/// access without).  Now a broken queue.
#[test]
fn regression_virtio_ring_address_overflow() {
    virtio_fuzz_one(&[0xc5, 0x41, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}

/// The sessions reach the request path: some processing completes requests.
#[test]
fn virtio_fuzz_short() {
    let completed: u32 = (1..=200).map(|seed| virtio_session(&mut XorShift64::new(seed), 200)).sum();
    assert!(completed > 20, "{completed} completions");
}

#[test]
fn vm_fuzz_short() {
    let served: u64 = (1..=8).map(|s| campaign(s, 5_000)).sum();
    assert!(served > 1_000, "the campaign reaches the devices ({served} accesses served)");
}

/// `cargo xtask fuzz ns-hyp --time S`.
#[test]
#[ignore]
fn vm_fuzz_long() {
    let secs: u64 = std::env::var("QUADRANT_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let start = std::time::Instant::now();
    let (mut seed, mut execs, mut served) = (std::env::var("QUADRANT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1u64), 0u64, 0u64);
    while start.elapsed().as_secs() < secs {
        served += campaign(seed, 10_000);
        execs += 10_000;
        seed += 1;
    }
    println!("fuzz ns-hyp: {execs} executions, {} seeds, {served} MMIO accesses served, 0 crashes", seed - 1);
}
