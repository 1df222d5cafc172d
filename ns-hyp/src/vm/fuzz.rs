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
use super::{Mmio, Vm};

use shared::xorshift::{Bytes, Source, XorShift64};

fn ipa(r: &mut impl Source, nvcpus: usize) -> u64 {
    let base = [GICD_IPA, GICR_IPA, GICR_IPA + GICR_STRIDE * nvcpus as u64, UART_IPA, VIRTIO_IPA, 0, 0x4000_0000][r.below(7) as usize];
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
    w(GICD_IPA, GICD_SIZE) || w(GICR_IPA, GICR_STRIDE * nvcpus as u64) || w(UART_IPA, UART_SIZE) || w(VIRTIO_IPA, VIRTIO_SIZE)
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
