//! The realm modes' switches in /chosen/bootargs.

/// Which realm mode a boot asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Build, run and tear down a Realm around the image (the CCA host).
    Boot,
    #[cfg(any(test, feature = "test-modes"))]
    RmiTests,
    #[cfg(any(test, feature = "test-modes"))]
    Isolation,
    #[cfg(any(test, feature = "test-modes"))]
    Bench,
    #[cfg(any(test, feature = "test-modes"))]
    RsiTests,
    /// `hostile_realm_storm`: realm-guest fires seeded random RSI calls.
    #[cfg(any(test, feature = "test-modes"))]
    RsiStorm,
}

pub const REALM: &str = "quadrant.realm";
#[cfg(any(test, feature = "test-modes"))]
pub const RMI_TESTS: &str = "quadrant.rmi-tests";
#[cfg(any(test, feature = "test-modes"))]
pub const ISOLATION: &str = "quadrant.realm-isolation";
#[cfg(any(test, feature = "test-modes"))]
pub const BENCH: &str = "quadrant.realm-bench";
#[cfg(any(test, feature = "test-modes"))]
pub const RSI_TESTS: &str = "quadrant.rsi-tests";
/// `quadrant.rsi-storm=<seed>`.
#[cfg(any(test, feature = "test-modes"))]
pub const RSI_STORM: &str = "quadrant.rsi-storm=";
pub const IMAGE: &str = "quadrant.realm-image=";

/// `quadrant.realm-trace=<n>`: log the first n REC exits of a `quadrant.realm-vm` Realm
/// other than aborts (first touches of memory, MMIO) and IRQs (0 without).
pub fn trace(bootargs: &str) -> u64 {
    let ours = bootargs.split_once(" -- ").map_or(bootargs, |(o, _)| o);
    ours.split_ascii_whitespace().find_map(|w| w.strip_prefix("quadrant.realm-trace=")).and_then(number).unwrap_or(0)
}

/// The storm's seed of `quadrant.rsi-storm=<seed>`.
#[cfg(any(test, feature = "test-modes"))]
pub fn storm_seed(bootargs: &str) -> Option<u64> {
    bootargs.split_ascii_whitespace().find_map(|w| w.strip_prefix(RSI_STORM)).and_then(number)
}

/// The realm mode named in `bootargs`, if any (whole words only).
pub fn mode(bootargs: &str) -> Option<Mode> {
    #[cfg(any(test, feature = "test-modes"))]
    if storm_seed(bootargs).is_some() {
        return Some(Mode::RsiStorm);
    }
    bootargs.split_ascii_whitespace().find_map(|w| match w {
        REALM => Some(Mode::Boot),
        #[cfg(any(test, feature = "test-modes"))]
        RMI_TESTS => Some(Mode::RmiTests),
        #[cfg(any(test, feature = "test-modes"))]
        ISOLATION => Some(Mode::Isolation),
        #[cfg(any(test, feature = "test-modes"))]
        BENCH => Some(Mode::Bench),
        #[cfg(any(test, feature = "test-modes"))]
        RSI_TESTS => Some(Mode::RsiTests),
        _ => None,
    })
}

fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `quadrant.realm-image=<addr>,<bytes>`: the image's NS address (page
/// aligned) and length, rounded up to pages.
pub fn image(bootargs: &str) -> Option<(u64, usize)> {
    let v = bootargs.split_ascii_whitespace().find_map(|w| w.strip_prefix(IMAGE))?;
    let (a, l) = v.split_once(',')?;
    let (addr, len) = (number(a)?, number(l)?);
    if addr % 0x1000 != 0 || len == 0 || len > (1 << 24) || addr.checked_add(len).is_none() {
        return None;
    }
    Some((addr, len.div_ceil(0x1000) as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode("console=x quadrant.realm"), Some(Mode::Boot));
        assert_eq!(mode("quadrant.rmi-tests"), Some(Mode::RmiTests));
        assert_eq!(mode("quadrant.realm-isolation"), Some(Mode::Isolation));
        assert_eq!(mode("quadrant.realm-bench"), Some(Mode::Bench));
        assert_eq!(mode("quadrant.rsi-tests"), Some(Mode::RsiTests));
        assert_eq!(mode("quadrant.rsi-storm=0x2a"), Some(Mode::RsiStorm));
        assert_eq!(storm_seed("x quadrant.rsi-storm=42"), Some(42));
        assert_eq!(mode("quadrant.bench"), None);
        assert_eq!(mode("quadrant.realmx quadrant.realm-image=0x48000000,10"), None);
    }

    #[test]
    fn realm_vm_is_no_mode() {
        // `quadrant.realm-vm` marks a VM's section (`vm::config`), not a mode.
        assert_eq!(mode("quadrant.realm-vm"), None);
    }

    #[test]
    fn image_arg() {
        assert_eq!(image("quadrant.realm quadrant.realm-image=0x48000000,0x9000"), Some((0x4800_0000, 9)));
        assert_eq!(image("quadrant.realm-image=0x48000000,4097"), Some((0x4800_0000, 2)));
        assert_eq!(image("quadrant.realm-image=0x48000010,4097"), None);
        assert_eq!(image("quadrant.realm-image=0x48000000,0"), None);
        assert_eq!(image("quadrant.realm-image=0x48000000"), None);
        assert_eq!(image("quadrant.realm-image=0xfffffffffffff000,0x2000"), None);
        assert_eq!(image("quadrant.realm"), None);
    }
}
