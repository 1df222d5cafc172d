//! Issue P: where a Linux guest's boot goes under ns-hyp (the bench row
//! `guest_boot_to_prompt_icount`).  A `bench-split` build of ns-hyp
//! (`images/ns-hyp-split.bin`, never the product image) times every exit
//! (`vm::stats`, as `quadrant.exit-stats` does, but without its
//! once-a-second line) from the guest's first entry on, and prints its
//! totals once, when the guest's console has finished a line containing
//! [`MARKER`] (ci/boot-counter's `quadrant-boot: cntvct ...` line, which the
//! bench's initramfs prints where the shell would start).  This module is
//! the plain part: the marker's matcher and the lines printed.

// Only a bench-split build (and the host tests) use it.
#![cfg_attr(all(target_os = "none", not(feature = "bench-split")), allow(dead_code))]

use super::stats::{Phase, Snapshot, KINDS, NAMES};

/// What the guest writes when it reaches its prompt (ci/boot-counter).
pub const MARKER: &[u8] = b"quadrant-boot: cntvct ";

/// Finds `pattern` in a byte stream and reports the end of the line it was
/// in: the totals then go out after the guest's whole line, not inside it.
pub struct LineMarker {
    pattern: &'static [u8],
    /// Bytes of `pattern` matched so far.
    at: usize,
    /// The current line holds the pattern.
    seen: bool,
    /// The line with the pattern has ended once already.
    done: bool,
}

impl LineMarker {
    /// `pattern` must not begin with a byte it repeats later (true of
    /// [`MARKER`]): after a mismatch only its first byte is tried again.
    pub const fn new(pattern: &'static [u8]) -> Self {
        LineMarker { pattern, at: 0, seen: false, done: false }
    }

    /// The guest wrote `b`.  True exactly once: at the newline ending the
    /// first line that held the pattern.
    pub fn byte(&mut self, b: u8) -> bool {
        if self.done {
            return false;
        }
        if b == b'\n' {
            self.at = 0;
            if core::mem::take(&mut self.seen) {
                self.done = true;
                return true;
            }
            return false;
        }
        if self.seen {
            return false;
        }
        if self.pattern.get(self.at) == Some(&b) {
            self.at += 1;
        } else {
            self.at = usize::from(self.pattern.first() == Some(&b));
        }
        if self.at == self.pattern.len() {
            self.seen = true;
        }
        false
    }
}

/// The totals, each line given to `out` (without its newline), as xtask reads them (ci/xtask bench.rs,
/// `parse_boot_split`), counter ticks (instructions under -icount):
///
/// ```text
/// split ns-hyp boot now <counter> first-entry <counter> guest <t> hyp <t> idle <t> exits <n>
/// split ns-hyp exit <kind> <count> <hyp ticks>      (one per kind with exits)
/// ```
///
/// `first-entry`: the counter at the guest's first entry (ns-hyp's own
/// start before it); guest, hyp and idle: since then.  Hyp ticks are
/// charged to the kind of the exit they followed (`vm::stats`).
pub fn lines(now: u64, first_entry: u64, s: &Snapshot, out: &mut dyn FnMut(core::fmt::Arguments)) {
    let t = |p: Phase| s.ticks[p as usize];
    out(format_args!("split ns-hyp boot now {now} first-entry {first_entry} guest {} hyp {} idle {} exits {}", t(Phase::Guest), t(Phase::Hyp), t(Phase::Idle), s.total_exits()));
    for k in 0..KINDS {
        if s.exits[k] != 0 || s.hyp_ticks[k] != 0 {
            out(format_args!("split ns-hyp exit {} {} {}", NAMES[k], s.exits[k], s.hyp_ticks[k]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::stats::{ExitKind, ExitStats};

    fn feed(m: &mut LineMarker, s: &str) -> Vec<usize> {
        s.bytes().enumerate().filter_map(|(i, b)| m.byte(b).then_some(i)).collect()
    }

    #[test]
    fn fires_once_at_the_end_of_the_marker_line() {
        let mut m = LineMarker::new(MARKER);
        let text = "quadrant-init: up\nqquadrant-boot: cntvct 123 cntfrq 1000000000\nquadrant-boot: cntvct 9\n";
        let at = feed(&mut m, text);
        assert_eq!(at, [text.find("1000000000\n").unwrap() + 10]);
    }

    #[test]
    fn a_marker_cut_by_a_newline_does_not_count() {
        let mut m = LineMarker::new(MARKER);
        assert!(feed(&mut m, "quadrant-boot:\n cntvct 5\nquadrant-boot: cnt").is_empty());
        assert_eq!(feed(&mut m, "vct 7\r\n").len(), 1);
    }

    #[test]
    fn lines_for_xtask() {
        let s = ExitStats::new();
        s.exit(0, ExitKind::MmioUart);
        s.time(0, Phase::Hyp, 300);
        s.time(0, Phase::Guest, 1000);
        s.exit(0, ExitKind::Wfi);
        s.time(0, Phase::Idle, 50);
        let mut out = String::new();
        lines(5000, 3000, &s.snapshot(), &mut |a| out.push_str(&format!("{a}\n")));
        assert_eq!(out, "split ns-hyp boot now 5000 first-entry 3000 guest 1000 hyp 300 idle 50 exits 2\nsplit ns-hyp exit wfi 1 0\nsplit ns-hyp exit uart 1 300\n");
    }
}
