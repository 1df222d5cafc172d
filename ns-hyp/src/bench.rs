//! Bench mode (`quadrant.bench` in /chosen/bootargs): round-trip cost of one
//! call into each firmware layer, timed with the virtual counter.  Rows:
//! - `smc_floor`: SMCCC_VERSION, answered by EL3 itself (the floor cost of an `smc`);
//! - `ffa_version`: FFA_VERSION, forwarded by the SPMD to spmc;
//! - `ffa_direct_req_echo`: a direct request to the echo SP and its response;
//! - `rmi_version`: RMI_VERSION, relayed by the RMMD to rmm.
//!
//! Output: `bench cntfrq <hz>`, then per row `bench <name> <iterations>
//! <total_counter_ticks>` (or `bench <name> skipped: <why>`), then `bench done`.

use crate::ffa::{FfaClient, HYPERVISOR_ID, REQUESTED_VERSION};
use crate::firmware::{Firmware, SMCCC_VERSION};
use crate::probe::{ECHO_PAYLOAD, ECHO_SP_ID_DEFAULT, RMI_REQUESTED_VERSION};
use crate::report::Sink;
use crate::rmi;
use shared::smccc::Conduit;

pub const ITERATIONS: u32 = 10_000;

/// Runs the bench; `counter` reads the clock (CNTVCT on the target).
pub fn run<C: Conduit, S: Sink>(c: &C, sink: &mut S, firmware: Firmware, counter: &dyn Fn() -> u64, cntfrq: u64) {
    sink.line(format_args!("bench cntfrq {}", cntfrq));
    let ffa = FfaClient::new(c);

    // smc_floor
    if firmware == Firmware::None {
        sink.line(format_args!("bench smc_floor skipped: no EL3 firmware"));
    } else {
        row(c, sink, "smc_floor", counter, || {
            let r = c.call(SMCCC_VERSION, [0; 17]);
            r[0] as u32 & (1 << 31) == 0
        });
    }

    // ffa_version
    let ffa_ok = match ffa.version(REQUESTED_VERSION) {
        Ok(v) if v.0 == 1 => true,
        Ok(v) => {
            sink.line(format_args!("bench ffa_version skipped: FF-A {} (need major 1)", v));
            false
        }
        Err(e) => {
            sink.line(format_args!("bench ffa_version skipped: no SPMC ({})", e));
            false
        }
    };
    if ffa_ok {
        row(c, sink, "ffa_version", counter, || matches!(ffa.version(REQUESTED_VERSION), Ok(v) if v.0 == 1));
    }

    // ffa_direct_req_echo
    let echo = ECHO_SP_ID_DEFAULT;
    if !ffa_ok {
        sink.line(format_args!("bench ffa_direct_req_echo skipped: no SPMC"));
    } else {
        match ffa.direct_req64(HYPERVISOR_ID, echo, ECHO_PAYLOAD) {
            Ok(w) if w == ECHO_PAYLOAD => {
                row(c, sink, "ffa_direct_req_echo", counter, || {
                    matches!(ffa.direct_req64(HYPERVISOR_ID, echo, ECHO_PAYLOAD), Ok(w) if w == ECHO_PAYLOAD)
                });
            }
            Ok(_) => sink.line(format_args!("bench ffa_direct_req_echo skipped: {:#06x} does not echo", echo)),
            Err(e) => sink.line(format_args!("bench ffa_direct_req_echo skipped: {:#06x} answered {}", echo, e)),
        }
    }

    // rmi_version
    match rmi::version(c, RMI_REQUESTED_VERSION) {
        Ok(v) if v.status == 0 => {
            row(c, sink, "rmi_version", counter, || matches!(rmi::version(c, RMI_REQUESTED_VERSION), Ok(v) if v.status == 0));
        }
        Ok(v) => sink.line(format_args!("bench rmi_version skipped: {}", rmi::status_name(v.status))),
        Err(e) => sink.line(format_args!("bench rmi_version skipped: no RMM ({})", e)),
    }

    sink.line(format_args!("bench done"));
}

/// The split images of spmc and rmm print their share of the calls since
/// the last marker and start again (`shared::split`); any other SPMC or RMM
/// answers NOT_SUPPORTED / 0, so these are harmless everywhere.
fn markers<C: Conduit>(c: &C) {
    let _ = c.call(shared::abi::ffa::fid::FFA_FEATURES, [shared::split::FFA_MARKER, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let _ = c.call(shared::abi::rmi::RMI_FEATURES, [shared::split::RMI_MARKER, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

/// Times ITERATIONS calls of `call` and prints the row; a separate line
/// reports calls whose answer was wrong (the timing is still printed).
fn row<C: Conduit, S: Sink>(c: &C, sink: &mut S, name: &str, counter: &dyn Fn() -> u64, mut call: impl FnMut() -> bool) {
    let mut bad = 0u32;
    markers(c);
    let start = counter();
    for _ in 0..ITERATIONS {
        if !call() {
            bad += 1;
        }
    }
    let ticks = counter().wrapping_sub(start);
    markers(c);
    sink.line(format_args!("bench {} {} {}", name, ITERATIONS, ticks));
    if bad != 0 {
        sink.line(format_args!("bench {} errors {}", name, bad));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::fake::{FakeFirmware, Knobs};
    use crate::report::Lines;
    use std::cell::Cell;

    fn bench(knobs: Knobs) -> Vec<String> {
        let (fw, _) = FakeFirmware::new(knobs);
        let firmware = Firmware::detect(&fw);
        let t = Cell::new(0u64);
        let counter = || {
            t.set(t.get() + 7);
            t.get()
        };
        let mut lines = Lines::default();
        run(&fw, &mut lines, firmware, &counter, 62_500_000);
        lines.0
    }

    #[test]
    fn full_stack_prints_every_row() {
        let l = bench(Knobs::default());
        assert_eq!(
            l,
            [
                "bench cntfrq 62500000",
                "bench smc_floor 10000 7",
                "bench ffa_version 10000 7",
                "bench ffa_direct_req_echo 10000 7",
                "bench rmi_version 10000 7",
                "bench done"
            ]
        );
    }

    #[test]
    fn absent_services_are_skipped_with_a_reason() {
        let l = bench(Knobs { no_el3: true, ..Default::default() });
        assert_eq!(l.len(), 6);
        assert_eq!(l[1], "bench smc_floor skipped: no EL3 firmware");
        assert_eq!(l[2], "bench ffa_version skipped: no SPMC (SMCCC NOT_SUPPORTED)");
        assert_eq!(l[3], "bench ffa_direct_req_echo skipped: no SPMC");
        assert_eq!(l[4], "bench rmi_version skipped: no RMM (SMCCC NOT_SUPPORTED)");
        assert_eq!(l[5], "bench done");
        let l = bench(Knobs { echo_corrupts: true, no_rmm: true, ..Default::default() });
        assert_eq!(l[3], "bench ffa_direct_req_echo skipped: 0x8001 does not echo");
        assert_eq!(l[4], "bench rmi_version skipped: no RMM (SMCCC NOT_SUPPORTED)");
    }
}
