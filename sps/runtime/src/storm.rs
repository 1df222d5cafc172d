//! `hostile_sp_storm` (issue J): an SP turned hostile fires seeded random
//! calls at the SPMC ([`fire`]), with its TX buffer filled with noise before
//! the calls that read it.  The SP's own run must go on, so the calls that
//! end it are never drawn: FFA_MSG_WAIT, the direct responses, FFA_YIELD,
//! FFA_ERROR (which aborts the caller), and PSCI; console output is left out
//! too (it would flood the log).  Direct requests aimed at mp or irq (test
//! SPs whose commands spin or arm timers on purpose) go to echo.  Addresses
//! come from `targets` (the caller leaves its own memory out).

use crate::ffa::call;
use shared::abi::ffa::fid;
use shared::storm::{self, CallMix, Storm};

/// What the answers were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub ffa_success: u64,
    pub ffa_error: u64,
    pub other: u64,
}

/// Ids an SP's storm never sends (module docs).
pub fn forbidden(id: u32) -> bool {
    storm::is_psci(id)
        || matches!(
            id,
            fid::FFA_MSG_WAIT
                | fid::FFA_MSG_SEND_DIRECT_RESP_32
                | fid::FFA_MSG_SEND_DIRECT_RESP_64
                | fid::FFA_MSG_SEND_DIRECT_RESP2
                | fid::FFA_YIELD
                | fid::FFA_ERROR
                | fid::FFA_CONSOLE_LOG_32
                | fid::FFA_CONSOLE_LOG_64
        )
        // The 64-bit forms of those the range may draw (bit 30 set).
        || matches!(id ^ (1 << 30), fid::FFA_MSG_WAIT | fid::FFA_YIELD | fid::FFA_ERROR | fid::FFA_CONSOLE_LOG_32 | fid::FFA_MSG_SEND_DIRECT_RESP_32)
}

/// Endpoints whose test commands must not be driven at random.
const KEEP_OUT: [u16; 2] = [0x8002, 0x8004];
const ECHO: u16 = 0x8001;

fn aim(c: &mut storm::Call) {
    let f = c[0] as u32;
    if matches!(f, fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2) && KEEP_OUT.contains(&((c[1] & 0xffff) as u16)) {
        c[1] = (c[1] & !0xffff) | ECHO as u64;
    }
}

/// Fires `n` calls seeded `seed` at addresses around `targets`.
pub fn fire(seed: u64, n: u64, targets: &[u64]) -> Counts {
    let ids = storm::FFA_IDS;
    let mix = CallMix { valid_ids: ids, id_range: storm::FFA_RANGE, addresses: targets, forbidden: &forbidden };
    let mut s = Storm::new(seed, mix);
    let mut counts = Counts::default();
    for _ in 0..n {
        let mut c = s.next_call();
        aim(&mut c);
        if s.below(4) == 0 {
            crate::memory::fill_tx(|| s.arg());
        }
        let r = call(&c);
        counts.calls += 1;
        match r[0] as u32 {
            fid::FFA_SUCCESS_32 | fid::FFA_SUCCESS_64 => counts.ffa_success += 1,
            fid::FFA_ERROR => counts.ffa_error += 1,
            _ => counts.other += 1,
        }
    }
    // The storm may have unmapped our RX/TX or left RX full: start afresh.
    crate::memory::reset_buffers();
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_ends_our_own_run_is_never_sent() {
        for id in [fid::FFA_MSG_WAIT, fid::FFA_MSG_SEND_DIRECT_RESP_64, fid::FFA_MSG_SEND_DIRECT_RESP2, fid::FFA_ERROR, fid::FFA_YIELD, 0x8400_0008] {
            assert!(forbidden(id), "{id:#x}");
        }
        for id in [fid::FFA_MSG_SEND_DIRECT_REQ_64, fid::FFA_RXTX_MAP_64, fid::FFA_NOTIFICATION_SET] {
            assert!(!forbidden(id), "{id:#x}");
        }
        let mut c = [0u64; 18];
        c[0] = fid::FFA_MSG_SEND_DIRECT_REQ2 as u64;
        c[1] = 0x8003_8002;
        aim(&mut c);
        assert_eq!(c[1], 0x8003_8001);
    }
}
