//! The run mode, from the words of /chosen/bootargs.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `spmc_direct_messaging`: every check.
    Checks,
    /// `spmc_isolation`: the isolation SP reads this physical address.
    Isolation(u64),
    /// Timed round trips.
    Bench,
    /// `spmc_interrupts`: NS interrupts per ns-interrupts-action, the SP's timer.
    Interrupts,
    /// `spmc_concurrency`: requests on two cores to two SPs at once.
    Concurrency,
    /// `spmc_cpu_on_twice`: each secondary core powered off and on again.
    CpuOnTwice,
    /// `spmc_version_locked`: FFA_VERSION after other calls cannot change it.
    VersionLocked,
    /// `spmc_hafnium_manifests`: echo and isolation with Hafnium-form manifests.
    HafniumManifests,
    /// `spmc_spmd_lsp`: the SPMD's EL3 logical partition is listed.
    SpmdLsp,
    /// `spmc_sp_sizing`: isolation given 2 MiB by the SPMC manifest's `mem_size`.
    SpSizing,
    /// `spmc_memory_sharing`: FFA_MEM_* with mp.
    Memory,
    /// `spmc_notifications`: every notification ABI, the SRI.
    Notifications,
    /// `spmc_indirect_messaging`: FFA_MSG_SEND2 both ways, RX ownership.
    IndirectMessaging,
    /// `hostile_ns_storm`: seeded random calls on every core, then checks.
    Storm(u64),
    /// `hostile_sp_storm`: the isolation SP fires the storm, then checks.
    SpStorm(u64),
}

/// Another SP's memory: the echo SP's package (tfa-integration/sp/echo.dts).
pub const DEFAULT_ISOLATION_TARGET: u64 = 0x0e30_0000;

pub fn from_bootargs(args: &str) -> Mode {
    for w in args.split_ascii_whitespace() {
        if w == "quadrant.bench" {
            return Mode::Bench;
        }
        if w == "quadrant.interrupts" {
            return Mode::Interrupts;
        }
        if w == "quadrant.concurrency" {
            return Mode::Concurrency;
        }
        if w == "quadrant.cpu_on_twice" {
            return Mode::CpuOnTwice;
        }
        if w == "quadrant.version_locked" {
            return Mode::VersionLocked;
        }
        if w == "quadrant.hafnium_manifests" {
            return Mode::HafniumManifests;
        }
        if w == "quadrant.spmd_lsp" {
            return Mode::SpmdLsp;
        }
        if w == "quadrant.sp_sizing" {
            return Mode::SpSizing;
        }
        if w == "quadrant.memory" {
            return Mode::Memory;
        }
        if w == "quadrant.notifications" {
            return Mode::Notifications;
        }
        if w == "quadrant.indirect" {
            return Mode::IndirectMessaging;
        }
        if let Some(seed) = w.strip_prefix("quadrant.sp_storm=") {
            return Mode::SpStorm(crate::storm::seed_of(seed));
        }
        if w == "quadrant.storm" {
            return Mode::Storm(1);
        }
        if let Some(seed) = w.strip_prefix("quadrant.storm=") {
            return Mode::Storm(crate::storm::seed_of(seed));
        }
        if w == "quadrant.isolation" {
            return Mode::Isolation(DEFAULT_ISOLATION_TARGET);
        }
        if let Some(a) = w.strip_prefix("quadrant.isolation=") {
            let hex = a.trim_start_matches("0x");
            return Mode::Isolation(u64::from_str_radix(hex, 16).unwrap_or(DEFAULT_ISOLATION_TARGET));
        }
    }
    Mode::Checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(from_bootargs(""), Mode::Checks);
        assert_eq!(from_bootargs("console=x quadrant.bench"), Mode::Bench);
        assert_eq!(from_bootargs("quadrant.interrupts"), Mode::Interrupts);
        assert_eq!(from_bootargs("quadrant.concurrency"), Mode::Concurrency);
        assert_eq!(from_bootargs("quadrant.cpu_on_twice"), Mode::CpuOnTwice);
        assert_eq!(from_bootargs("quadrant.version_locked"), Mode::VersionLocked);
        assert_eq!(from_bootargs("quadrant.hafnium_manifests"), Mode::HafniumManifests);
        assert_eq!(from_bootargs("quadrant.spmd_lsp"), Mode::SpmdLsp);
        assert_eq!(from_bootargs("quadrant.sp_sizing"), Mode::SpSizing);
        assert_eq!(from_bootargs("quadrant.notifications"), Mode::Notifications);
        assert_eq!(from_bootargs("quadrant.indirect"), Mode::IndirectMessaging);
        assert_eq!(from_bootargs("quadrant.isolation"), Mode::Isolation(DEFAULT_ISOLATION_TARGET));
        assert_eq!(from_bootargs("quadrant.isolation=0x0e100000"), Mode::Isolation(0x0e10_0000));
        assert_eq!(from_bootargs("quadrant.isolation=zz"), Mode::Isolation(DEFAULT_ISOLATION_TARGET));
        assert_eq!(from_bootargs("quadrant.benchmark"), Mode::Checks);
    }
}
