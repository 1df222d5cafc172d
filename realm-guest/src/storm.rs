//! `hostile_realm_storm` (issue J): realm-guest turns hostile and fires
//! seeded random SMCs at the RMM — every RSI command with random
//! arguments, ids from RSI's range, random ids (PSCI never: it would end
//! the realm) — then checks that the RMM still answers and that its RIM is
//! unchanged.
//!
//! The realm must survive its own calls, so [`confine`] keeps the commands
//! that write realm memory or change its RIPAS off the realm's own image:
//! an address inside the realm's RAM becomes one of the pages kept for the
//! storm (`safe`), and an RSI_IPA_STATE_SET range touching the RAM is
//! moved onto them.  Addresses outside the RAM (unprotected, beyond the IPA
//! space, unaligned) are sent as drawn: those the RMM must refuse.

use shared::abi::rsi;
use shared::storm::Call;

/// Where the realm lives and what the storm may write.
pub struct Layout<'a> {
    /// The realm's protected RAM, `[start, end)`: its image, stack, pages.
    pub ram: (u64, u64),
    /// Pages the storm may hand to the RMM to write or make EMPTY.
    pub safe: &'a [u64],
}

/// Keeps `c` off the realm's own memory (module docs); `pick` chooses
/// among the safe pages.
pub fn confine(c: &mut Call, l: &Layout, mut pick: impl FnMut(u64) -> u64) {
    let in_ram = |a: u64| a >= l.ram.0 && a < l.ram.1;
    let safe_page = |pick: &mut dyn FnMut(u64) -> u64| l.safe[pick(l.safe.len() as u64) as usize % l.safe.len()];
    match c[0] as u32 {
        rsi::RSI_REALM_CONFIG | rsi::RSI_ATTESTATION_TOKEN_CONTINUE | rsi::RSI_HOST_CALL if in_ram(c[1]) => {
            c[1] = safe_page(&mut pick) | (c[1] & 0xfff);
        }
        rsi::RSI_IPA_STATE_SET => {
            let (base, top) = (c[1], c[2]);
            // [base, top) meets the RAM (top <= base: an empty or inverted range, refused).
            if top > base && base < l.ram.1 && top > l.ram.0 {
                let page = safe_page(&mut pick);
                c[1] = page;
                c[2] = page + 0x1000 * pick(2);
            }
        }
        _ => {}
    }
}

/// What the storm never sends: PSCI (CPU_OFF or SYSTEM_OFF would end the realm).
pub fn forbidden(id: u32) -> bool {
    shared::storm::is_psci(id)
}

/// The storm's addresses: the safe pages, the unprotected alias of one,
/// the top of the IPA space, IPA 0.
pub fn targets(safe: &[u64], ipa_width: u64, out: &mut [u64; 8]) -> usize {
    let mut n = 0;
    for a in safe.iter().copied().chain([safe.first().copied().unwrap_or(0) | 1 << (ipa_width - 1), (1 << ipa_width) - 0x1_0000, 0]) {
        if n < out.len() {
            out[n] = a;
            n += 1;
        }
    }
    n
}

/// Whether an answer is one the RMM may give (an RSI status in x0, or
/// SMCCC NOT_SUPPORTED for an id it does not know).
pub fn plausible(x0: u64) -> bool {
    x0 <= 4 || x0 as u32 == u32::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: (u64, u64) = (0x4000_0000, 0x5000_0000);
    const SAFE: [u64; 2] = [0x4010_0000, 0x4010_1000];

    fn call(id: u32, a1: u64, a2: u64) -> Call {
        let mut c = [0u64; 18];
        c[0] = id as u64;
        c[1] = a1;
        c[2] = a2;
        c
    }

    #[test]
    fn writes_into_the_image_go_to_safe_pages() {
        let l = Layout { ram: RAM, safe: &SAFE };
        let mut c = call(rsi::RSI_REALM_CONFIG, 0x4000_0008, 0);
        confine(&mut c, &l, |_| 1);
        assert_eq!(c[1], 0x4010_1008, "page swapped, offset kept (still unaligned: refused)");
        let mut c = call(rsi::RSI_HOST_CALL, 0x8000_0000_4000_0000, 0);
        confine(&mut c, &l, |_| 0);
        assert_eq!(c[1], 0x8000_0000_4000_0000, "outside the RAM: as drawn");
        let mut c = call(rsi::RSI_MEASUREMENT_READ, 0x4000_0000, 0);
        confine(&mut c, &l, |_| 0);
        assert_eq!(c[1], 0x4000_0000, "reads nothing");
    }

    #[test]
    fn ripas_changes_never_touch_the_image() {
        let l = Layout { ram: RAM, safe: &SAFE };
        for (base, top) in [(0, u64::MAX), (0x4000_0000, 0x4000_1000), (0x3fff_f000, 0x4000_1000), (0x4fff_f000, 0x6000_0000)] {
            let mut c = call(rsi::RSI_IPA_STATE_SET, base, top);
            confine(&mut c, &l, |n| n - 1);
            assert!(SAFE.contains(&c[1]) && c[2] <= c[1] + 0x1000, "{base:#x}..{top:#x} -> {:#x}..{:#x}", c[1], c[2]);
        }
        let mut c = call(rsi::RSI_IPA_STATE_SET, 0x5000_0000, 0x6000_0000);
        confine(&mut c, &l, |_| 0);
        assert_eq!((c[1], c[2]), (0x5000_0000, 0x6000_0000), "beyond the RAM: as drawn");
        let mut c = call(rsi::RSI_IPA_STATE_SET, 0x4000_2000, 0x4000_1000);
        confine(&mut c, &l, |_| 0);
        assert_eq!((c[1], c[2]), (0x4000_2000, 0x4000_1000), "inverted: refused as drawn");
    }

    #[test]
    fn targets_and_answers() {
        let mut t = [0u64; 8];
        let n = targets(&SAFE, 39, &mut t);
        assert_eq!(&t[..n], &[0x4010_0000, 0x4010_1000, 0x40_4010_0000, 0x7f_ffff_0000, 0]);
        assert!(plausible(0) && plausible(3) && plausible(0xffff_ffff) && !plausible(0x84000060));
        assert!(forbidden(0x8400_0008) && !forbidden(rsi::RSI_VERSION));
    }
}
