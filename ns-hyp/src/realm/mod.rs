//! ns-hyp as a CCA Host (issue E): it creates Realms through the RMI of the
//! RMM at R-EL2 (DEN0137 RMM 1.0), runs realm-guest in one, and checks the
//! RMM's answers to bad input and the isolation the GPT gives.
//!
//! Modes, chosen by a word in /chosen/bootargs (see [`mode`]):
//! - `quadrant.realm`: build, run and tear down a Realm around realm-guest;
//! - `quadrant.rmi-tests`: the table of RMI failure conditions ([`bad_input`]);
//! - `quadrant.realm-isolation`: touch a delegated granule from the Normal
//!   world (a granule protection fault we report and survive), then run the
//!   Realm with its isolation probes on;
//! - `quadrant.realm-bench`: RMI_VERSION and REC enter → host-call exit round
//!   trips, and attestation tokens timed by the Realm;
//! - `quadrant.rsi-tests`: `quadrant.realm` with realm-guest's RSI bad-input
//!   cases on (it asks with host call 5).
//!
//! realm-guest's image is put in NS memory by the loader (QEMU `-device
//! loader`), named by `quadrant.realm-image=<addr>,<bytes>` (docs/rmm.md).
//! Everything here but `target` is plain logic over [`shared::smccc::Conduit`]
//! and [`NsMemory`], tested on the host against a fake RMM.

#[cfg(any(test, feature = "test-modes"))]
pub mod bad_input;
#[cfg(any(test, feature = "test-modes"))]
pub mod bench;
pub mod host;
pub mod linux;
#[cfg(any(test, feature = "test-modes"))]
pub mod isolation;
pub mod mode;
pub mod rmi;
#[cfg(target_os = "none")]
pub mod target;

#[cfg(test)]
mod fake;

use core::fmt;

/// Normal-world memory the Host shares with the RMM (parameter pages,
/// RmiRecRun, the image).  Identity-mapped on the target.
pub trait NsMemory {
    fn write(&self, pa: u64, data: &[u8]);
    fn read(&self, pa: u64, data: &mut [u8]);
}

/// Where lines go: `line` as `[ns-hyp] ...`, `raw` as is (the Realm's lines,
/// which carry their own `[realm] ` prefix).
pub trait Report {
    fn line(&mut self, args: fmt::Arguments);
    fn raw(&mut self, args: fmt::Arguments);
}

/// Whole 4 KiB NS pages handed out in order (never returned: each mode runs once).
pub struct Pages {
    next: u64,
    end: u64,
}

impl Pages {
    pub fn new(base: u64, count: usize) -> Self {
        Self { next: base, end: base + count as u64 * 0x1000 }
    }
    /// The pages handed out so far: `[base, end)`.
    pub fn used(&self, base: u64) -> core::ops::Range<u64> {
        base..self.next
    }
    pub fn take(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let p = self.next;
        self.next += 0x1000;
        Some(p)
    }
}

/// Collected lines (host tests).
#[cfg(test)]
#[derive(Default)]
pub struct Lines(pub Vec<String>);

#[cfg(test)]
impl Report for Lines {
    fn line(&mut self, args: fmt::Arguments) {
        self.0.push(format!("[ns-hyp] {args}"));
    }
    fn raw(&mut self, args: fmt::Arguments) {
        self.0.push(args.to_string());
    }
}

/// `quadrant.realm`: the whole life of one Realm, one summary line at the end:
/// `realm_boot: ok ...` or `realm_boot: FAIL ...`.
pub fn realm_boot<C: shared::smccc::Conduit, M: NsMemory>(
    c: &C,
    mem: &M,
    pages: &mut Pages,
    image: host::Image,
    opts: host::RunOptions,
    counter: &dyn Fn() -> u64,
    out: &mut dyn Report,
) -> bool {
    let rmi = rmi::Rmi::new(c);
    let mut realm = match host::Realm::create(&rmi, mem, pages, image, out) {
        Ok(r) => r,
        Err(e) => {
            out.line(format_args!("realm_boot: FAIL {}", e));
            return false;
        }
    };
    let run = host::run(&rmi, mem, &realm, opts, counter, out);
    let down = realm.destroy(&rmi);
    match (run, down) {
        (Ok(s), Ok(())) => {
            out.line(format_args!(
                "realm_boot: ok {} exits, {} mmio, {} host call(s), {} RIPAS change(s), {} abort(s); torn down",
                s.exits, s.mmio, s.host_calls, s.ripas_changes, s.aborts
            ));
            true
        }
        (Err(e), _) | (Ok(_), Err(e)) => {
            out.line(format_args!("realm_boot: FAIL {}", e));
            false
        }
    }
}
