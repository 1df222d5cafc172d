//! ns-hyp's wall clock: seconds since the epoch, the time source of the
//! guest's PL031 (`vm::pl031`).  At boot ns-hyp reads the platform's own
//! PL031 once (RTCDR, Arm DDI0224C) and notes the architectural
//! counter (CNTPCT_EL0, DDI0487 D11.1.2); the time is then that reading plus
//! the counter's ticks since, divided by CNTFRQ_EL0.  Without a PL031 (its
//! PrimeCell IDs do not match) the clock starts at 0, 1970-01-01.

use core::sync::atomic::AtomicU64;
#[cfg(target_os = "none")]
use core::sync::atomic::Ordering;

/// Seconds since the epoch at `start` ticks of a counter running at `freq`
/// Hz, read when the counter was at `count`.
pub fn seconds(epoch: u64, start: u64, count: u64, freq: u64) -> u64 {
    match freq {
        0 => epoch,
        f => epoch.saturating_add(count.wrapping_sub(start) / f),
    }
}

/// PL031 PeriphID0..3 and PCellID0..3 (DDI0224C chapter 3), low bytes.
pub const PL031_ID: [u32; 8] = [0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Whether the ID registers at 0xfe0..0xffc say PL031: part number 0x031,
/// designer 0x41 and the PrimeCell ID; the revision (PeriphID2 bits [7:4])
/// may be any (QEMU's pl031 reads revision 1, 0x14).
pub fn is_pl031(ids: &[u32; 8]) -> bool {
    ids.iter().enumerate().zip(PL031_ID).all(|((i, &r), want)| {
        let mask = if i == 2 { 0x0f } else { 0xff };
        r & mask == want & mask
    })
}

static EPOCH: AtomicU64 = AtomicU64::new(0);
static START: AtomicU64 = AtomicU64::new(0);

/// Reads the platform's PL031 at `pa` (identity-mapped Device memory at EL2,
/// `hyp::map_devices`) and starts the clock; returns the seconds read, or
/// None if no PL031 answered (the clock then starts at 0).
#[cfg(target_os = "none")]
pub fn init(pa: usize) -> Option<u64> {
    let reg = |off: usize| {
        // SAFETY: `pa` is the platform's PL031 page, mapped as Device memory
        // at EL2 before this runs; 32-bit aligned reads of its registers
        // have no side effects (DDI0224C chapter 3).
        unsafe { core::ptr::read_volatile((pa + off) as *const u32) }
    };
    let ids: [u32; 8] = core::array::from_fn(|i| reg(0xfe0 + 4 * i));
    START.store(shared::arch::timer::cntpct(), Ordering::Relaxed);
    if !is_pl031(&ids) {
        return None;
    }
    let t = reg(0x000) as u64; // RTCDR
    EPOCH.store(t, Ordering::Relaxed);
    Some(t)
}

/// Seconds since the epoch now.
#[cfg(target_os = "none")]
pub fn now() -> u64 {
    let t = shared::arch::timer::cntpct();
    seconds(EPOCH.load(Ordering::Relaxed), START.load(Ordering::Relaxed), t, shared::arch::timer::cntfrq())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_from_the_counter() {
        assert_eq!(seconds(1_767_225_600, 1000, 1000, 62_500_000), 1_767_225_600);
        assert_eq!(seconds(1_767_225_600, 1000, 1000 + 62_500_000 * 3 + 5, 62_500_000), 1_767_225_603);
        assert_eq!(seconds(100, 0, 12345, 0), 100, "no frequency: no panic");
        assert_eq!(seconds(u64::MAX, 0, u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn pl031_ids() {
        assert!(is_pl031(&PL031_ID));
        assert!(is_pl031(&[0x131, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1]), "only the low byte counts");
        assert!(!is_pl031(&[0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1]), "a PL011");
        assert!(is_pl031(&[0x31, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]), "QEMU's: revision 1");
        assert!(!is_pl031(&[0; 8]));
    }
}
