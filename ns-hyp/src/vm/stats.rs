//! Exit statistics (what `kvm_stat` shows for KVM): how often each kind of
//! guest exit happened and how the counter ticks split between the guest,
//! ns-hyp and idle.  Kept always (a relaxed atomic add per exit); printed once
//! a second when the boot argument `quadrant.exit-stats` asks for it, and
//! once at the guest's SYSTEM_OFF/SYSTEM_RESET.

use core::sync::atomic::{AtomicU64, Ordering};

/// Why the guest left (or ns-hyp ran); one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum ExitKind {
    Wfi,
    Wfe,
    Hvc,
    Smc,
    SysReg,
    MmioGicd,
    MmioGicr,
    MmioUart,
    MmioVirtio,
    MmioOther,
    /// Physical interrupts taken while the guest ran (or at an exit).
    IrqVtimer,
    IrqMaintenance,
    IrqUart,
    IrqKick,
    IrqHypTimer,
    Other,
}

pub const KINDS: usize = ExitKind::Other as usize + 1;

pub const NAMES: [&str; KINDS] = [
    "wfi", "wfe", "hvc", "smc", "sysreg", "gicd", "gicr", "uart", "virtio", "mmio-other", "irq-vtimer", "irq-maint", "irq-uart", "irq-kick", "irq-hyptimer", "other",
];

/// Where a CPU's counter ticks went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Phase {
    Guest,
    Hyp,
    Idle,
}

/// Physical CPUs whose last exit kind is remembered (to charge ns-hyp's time to it).
const CPUS: usize = 8;

pub struct ExitStats {
    exits: [AtomicU64; KINDS],
    ticks: [AtomicU64; 3],
    /// ns-hyp's ticks charged to the exit kind that caused them.
    hyp_ticks: [AtomicU64; KINDS],
    /// Per physical CPU: the kind of its last exit.
    last: [AtomicU64; CPUS],
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub exits: [u64; KINDS],
    pub ticks: [u64; 3],
    pub hyp_ticks: [u64; KINDS],
}

impl ExitStats {
    pub const fn new() -> Self {
        ExitStats {
            exits: [const { AtomicU64::new(0) }; KINDS],
            ticks: [const { AtomicU64::new(0) }; 3],
            hyp_ticks: [const { AtomicU64::new(0) }; KINDS],
            last: [const { AtomicU64::new(ExitKind::Other as u64) }; CPUS],
        }
    }

    /// Physical CPU `cpu` handles an exit of kind `k`.
    pub fn exit(&self, cpu: usize, k: ExitKind) {
        self.exits[k as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(l) = self.last.get(cpu) {
            l.store(k as u64, Ordering::Relaxed);
        }
    }

    /// Ticks spent in phase `p` on `cpu`; ns-hyp's are charged to that CPU's last exit kind.
    pub fn time(&self, cpu: usize, p: Phase, ticks: u64) {
        self.ticks[p as usize].fetch_add(ticks, Ordering::Relaxed);
        if p == Phase::Hyp {
            let k = self.last.get(cpu).map_or(ExitKind::Other as usize, |l| l.load(Ordering::Relaxed) as usize);
            self.hyp_ticks[k.min(KINDS - 1)].fetch_add(ticks, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            exits: core::array::from_fn(|i| self.exits[i].load(Ordering::Relaxed)),
            ticks: core::array::from_fn(|i| self.ticks[i].load(Ordering::Relaxed)),
            hyp_ticks: core::array::from_fn(|i| self.hyp_ticks[i].load(Ordering::Relaxed)),
        }
    }
}

impl Default for ExitStats {
    fn default() -> Self {
        Self::new()
    }
}

impl Snapshot {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            exits: core::array::from_fn(|i| self.exits[i].wrapping_sub(earlier.exits[i])),
            ticks: core::array::from_fn(|i| self.ticks[i].wrapping_sub(earlier.ticks[i])),
            hyp_ticks: core::array::from_fn(|i| self.hyp_ticks[i].wrapping_sub(earlier.hyp_ticks[i])),
        }
    }

    pub fn total_exits(&self) -> u64 {
        self.exits.iter().sum()
    }
}

/// One line: `exits N (guest G% hyp H% idle I%): kind n, ...` (non-zero kinds
/// only), each `kind n/t` when time was measured: t = ns-hyp's mean ticks per exit.
impl core::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let all: u64 = self.ticks.iter().sum::<u64>().max(1);
        let pct = |p: Phase| self.ticks[p as usize] * 100 / all;
        write!(f, "exits {} (guest {}% hyp {}% idle {}%)", self.total_exits(), pct(Phase::Guest), pct(Phase::Hyp), pct(Phase::Idle))?;
        let mut first = true;
        for (i, &n) in self.exits.iter().enumerate() {
            if n != 0 {
                write!(f, "{} {} {}", if first { ":" } else { "," }, NAMES[i], n)?;
                if self.hyp_ticks[i] != 0 {
                    write!(f, "/{}", self.hyp_ticks[i] / n)?;
                }
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_formats_the_difference() {
        let s = ExitStats::new();
        let before = s.snapshot();
        s.exit(0, ExitKind::Wfi);
        s.exit(1, ExitKind::MmioUart);
        s.exit(1, ExitKind::MmioUart);
        s.time(0, Phase::Guest, 75);
        s.time(1, Phase::Hyp, 20);
        s.time(0, Phase::Hyp, 5);
        s.time(9, Phase::Idle, 0); // a CPU beyond those tracked: counted, no panic
        let d = s.snapshot().since(&before);
        assert_eq!(d.total_exits(), 3);
        assert_eq!(format!("{d}"), "exits 3 (guest 75% hyp 25% idle 0%): wfi 1/5, uart 2/10");
        assert_eq!(format!("{}", Snapshot::default()), "exits 0 (guest 0% hyp 0% idle 0%)");
    }

    #[test]
    fn names_cover_every_kind() {
        assert_eq!(NAMES[ExitKind::Other as usize], "other");
        assert_eq!(NAMES[ExitKind::IrqHypTimer as usize], "irq-hyptimer");
        assert_eq!(NAMES.len(), KINDS);
    }
}
