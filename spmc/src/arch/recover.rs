//! Accesses to memory another world hands us that may fault: a Normal-world
//! RX/TX buffer or lent page can leave the Non-secure PAS under our feet
//! (the Normal world delegates it to the Realm world with
//! RMI_GRANULE_DELEGATE), and our next access is then a Granule Protection
//! Fault at S-EL2 (DDI0487 D9, GPC faults are reported to the accessing EL
//! while SCR_EL3.GPF = 0, as TF-A leaves it).  Hafnium copies such buffers
//! with a trapped memcpy and answers ABORTED; so do we.
//!
//! A guarded access arms its PE; a synchronous data abort taken at S-EL2
//! while armed is not fatal: the faulting load or store is skipped (ELR +
//! 4), the PE notes the fault, and the guarded loop stops at its next check.
//! The loops are our own volatile ones (below), whose skipped loads leave a
//! register unchanged and skipped stores write nothing.

use core::sync::atomic::{AtomicBool, Ordering};
use shared::arch::ExceptionFrame;
use shared::percpu::MAX_CPUS;

static ARMED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static FAULTED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// A guarded access of this PE faulted since the dispatcher last asked.
static LOST: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// ESR_EL2.EC of a data abort taken without a change of exception level.
const EC_DATA_ABORT_SAME_EL: u64 = 0x25;

fn cpu() -> usize {
    super::platform::this_cpu().min(MAX_CPUS - 1)
}

/// Runs `f` with this PE armed; Err if an access inside it faulted.
pub fn guarded(f: impl FnOnce()) -> Result<(), ()> {
    let c = cpu();
    FAULTED[c].store(false, Ordering::SeqCst);
    ARMED[c].store(true, Ordering::SeqCst);
    f();
    ARMED[c].store(false, Ordering::SeqCst);
    if FAULTED[c].swap(false, Ordering::SeqCst) {
        LOST[c].store(true, Ordering::SeqCst);
        Err(())
    } else {
        Ok(())
    }
}

/// Inside [`guarded`]: an access faulted, stop.
pub fn faulted() -> bool {
    FAULTED[cpu()].load(Ordering::Relaxed)
}

/// Whether a guarded access of this PE faulted since the last call (the
/// dispatcher then answers ABORTED).
pub fn take_lost() -> bool {
    LOST[cpu()].swap(false, Ordering::SeqCst)
}

/// From the EL2 exception vector: a data abort of an armed PE is survived.
pub fn on_exception(frame: &mut ExceptionFrame, esr: u64) -> bool {
    let c = cpu();
    if esr >> 26 != EC_DATA_ABORT_SAME_EL || !ARMED[c].load(Ordering::SeqCst) {
        return false;
    }
    FAULTED[c].store(true, Ordering::SeqCst);
    frame.elr += 4;
    true
}

/// Reads `out.len()` bytes at `va` (guarded by the caller), stopping at a
/// fault (checked at the start and at each 64-byte boundary).  Aligned
/// 64-bit words where it can: a byte at a time, reading a memory
/// transaction descriptor out of a TX buffer was most of spmc's share of a
/// MEM_SHARE round trip (issue P, docs/performance.md).
pub fn read_bytes(va: usize, out: &mut [u8]) {
    let (n, dst) = (out.len(), out.as_mut_ptr());
    let mut i = 0;
    while i < n {
        if (i == 0 || (va + i).is_multiple_of(64)) && faulted() {
            return;
        }
        // SAFETY: the caller maps `[va, va + len)`; a fault is survived (see
        // above); `dst + i` is inside `out` (unaligned store on our side).
        unsafe {
            if (va + i).is_multiple_of(8) && n - i >= 8 {
                let w = core::ptr::read_volatile((va + i) as *const u64);
                core::ptr::write_unaligned(dst.add(i) as *mut u64, w);
                i += 8;
            } else {
                *dst.add(i) = core::ptr::read_volatile((va + i) as *const u8);
                i += 1;
            }
        }
    }
}

/// Writes `bytes` at `va` (guarded by the caller), stopping at a fault;
/// aligned words where it can (see `read_bytes`).
pub fn write_bytes(va: usize, bytes: &[u8]) {
    let (n, src) = (bytes.len(), bytes.as_ptr());
    let mut i = 0;
    while i < n {
        if (i == 0 || (va + i).is_multiple_of(64)) && faulted() {
            return;
        }
        // SAFETY: as in `read_bytes`; `src + i` is inside `bytes`.
        unsafe {
            if (va + i).is_multiple_of(8) && n - i >= 8 {
                let w = core::ptr::read_unaligned(src.add(i) as *const u64);
                core::ptr::write_volatile((va + i) as *mut u64, w);
                i += 8;
            } else {
                core::ptr::write_volatile((va + i) as *mut u8, *src.add(i));
                i += 1;
            }
        }
    }
}

/// Zeroes `n` bytes at `va` (8-byte aligned, a multiple of 64), stopping at a fault.
pub fn zero(va: usize, n: usize) {
    let mut at = va;
    while at < va + n {
        if faulted() {
            return;
        }
        for k in 0..8 {
            // SAFETY: as in `read_bytes`.
            unsafe { core::ptr::write_volatile((at + 8 * k) as *mut u64, 0) };
        }
        at += 64;
    }
}
