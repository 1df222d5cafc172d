//! Hostile call storms (issue J): seeded random SMC calls that a hostile
//! world fires at the others — the Normal world at spmc and rmm, an SP at
//! spmc, a Realm at rmm — to check afterwards that every world still
//! answers.  This module only makes the calls (target-independent, so the
//! mix is host-tested); each payload issues them and judges the outcome.
//!
//! A call mixes, by design:
//! - function ids the world really has (half of the calls), ids from the
//!   range of its interface (FF-A, RMI, RSI) and wholly random ids;
//! - arguments: zero, small numbers, all-ones, random words, endpoint id
//!   pairs, and addresses from a pool the payload gives (other worlds'
//!   memory, scratch pages, MMIO, beyond RAM), sometimes unaligned.
//!
//! What a payload must not send (it would end its own run, not test the
//! others: PSCI SYSTEM_OFF, an SP's own FFA_MSG_WAIT, ...) it names in
//! [`CallMix::forbidden`]; those ids are never drawn.

use crate::abi::ffa::{FuncId, fid};
use crate::abi::{rmi, rsi};
use crate::xorshift::XorShift64;

/// Every FF-A v1.2 function id (DEN0077 v1.2 table of function ids).
pub const FFA_IDS: &[u32] = &[
    fid::FFA_ERROR,
    fid::FFA_SUCCESS_32,
    fid::FFA_SUCCESS_64,
    fid::FFA_INTERRUPT,
    fid::FFA_VERSION,
    fid::FFA_FEATURES,
    fid::FFA_RX_RELEASE,
    fid::FFA_RXTX_MAP_32,
    fid::FFA_RXTX_MAP_64,
    fid::FFA_RXTX_UNMAP,
    fid::FFA_PARTITION_INFO_GET,
    fid::FFA_ID_GET,
    fid::FFA_MSG_WAIT,
    fid::FFA_MSG_SEND2,
    fid::FFA_YIELD,
    fid::FFA_RUN,
    fid::FFA_MSG_SEND_DIRECT_REQ_32,
    fid::FFA_MSG_SEND_DIRECT_REQ_64,
    fid::FFA_MSG_SEND_DIRECT_RESP_32,
    fid::FFA_MSG_SEND_DIRECT_RESP_64,
    fid::FFA_SPM_ID_GET,
    fid::FFA_SECONDARY_EP_REGISTER_64,
    fid::FFA_PARTITION_INFO_GET_REGS,
    fid::FFA_CONSOLE_LOG_32,
    fid::FFA_CONSOLE_LOG_64,
    fid::FFA_MSG_SEND_DIRECT_REQ2,
    fid::FFA_MSG_SEND_DIRECT_RESP2,
    fid::FFA_RX_ACQUIRE,
    fid::FFA_NOTIFICATION_BITMAP_CREATE,
    fid::FFA_NOTIFICATION_BITMAP_DESTROY,
    fid::FFA_NOTIFICATION_BIND,
    fid::FFA_NOTIFICATION_UNBIND,
    fid::FFA_NOTIFICATION_SET,
    fid::FFA_NOTIFICATION_GET,
    fid::FFA_NOTIFICATION_INFO_GET_32,
    fid::FFA_NOTIFICATION_INFO_GET_64,
    fid::FFA_NORMAL_WORLD_RESUME,
    FuncId::MemDonate32 as u32,
    FuncId::MemDonate64 as u32,
    FuncId::MemLend32 as u32,
    FuncId::MemLend64 as u32,
    FuncId::MemShare32 as u32,
    FuncId::MemShare64 as u32,
    FuncId::MemRetrieveReq32 as u32,
    FuncId::MemRetrieveReq64 as u32,
    FuncId::MemRetrieveResp as u32,
    FuncId::MemRelinquish as u32,
    FuncId::MemReclaim as u32,
    FuncId::MemFragRx as u32,
    FuncId::MemFragTx as u32,
];

/// FF-A's function numbers (DEN0077: 0x60..0xff; the 64-bit forms are drawn
/// too, see [`Storm`]).
pub const FFA_RANGE: (u32, u32) = (0x8400_0060, 0x8400_00ff);

/// Every RMI command of RMM 1.0 (DEN0137 B4.3).
pub const RMI_IDS: &[u32] = &[
    rmi::RMI_VERSION,
    rmi::RMI_GRANULE_DELEGATE,
    rmi::RMI_GRANULE_UNDELEGATE,
    rmi::RMI_DATA_CREATE,
    rmi::RMI_DATA_CREATE_UNKNOWN,
    rmi::RMI_DATA_DESTROY,
    rmi::RMI_REALM_ACTIVATE,
    rmi::RMI_REALM_CREATE,
    rmi::RMI_REALM_DESTROY,
    rmi::RMI_REC_CREATE,
    rmi::RMI_REC_DESTROY,
    rmi::RMI_REC_ENTER,
    rmi::RMI_RTT_CREATE,
    rmi::RMI_RTT_DESTROY,
    rmi::RMI_RTT_MAP_UNPROTECTED,
    rmi::RMI_RTT_READ_ENTRY,
    rmi::RMI_RTT_UNMAP_UNPROTECTED,
    rmi::RMI_PSCI_COMPLETE,
    rmi::RMI_FEATURES,
    rmi::RMI_RTT_FOLD,
    rmi::RMI_REC_AUX_COUNT,
    rmi::RMI_RTT_INIT_RIPAS,
    rmi::RMI_RTT_SET_RIPAS,
];

/// RMI's function ids (DEN0137 B4.3: 0xC4000150..0xC400018F).
pub const RMI_RANGE: (u32, u32) = (0xc400_0150, 0xc400_018f);

/// Every RSI command of RMM 1.0 (DEN0137 B5.3).
pub const RSI_IDS: &[u32] = &[
    rsi::RSI_VERSION,
    rsi::RSI_FEATURES,
    rsi::RSI_MEASUREMENT_READ,
    rsi::RSI_MEASUREMENT_EXTEND,
    rsi::RSI_ATTESTATION_TOKEN_INIT,
    rsi::RSI_ATTESTATION_TOKEN_CONTINUE,
    rsi::RSI_REALM_CONFIG,
    rsi::RSI_IPA_STATE_SET,
    rsi::RSI_IPA_STATE_GET,
    rsi::RSI_HOST_CALL,
];

/// RSI's function ids (DEN0137 B5.3: 0xC4000190..0xC40001AF).
pub const RSI_RANGE: (u32, u32) = (0xc400_0190, 0xc400_01af);

/// What a hostile world may send.
pub struct CallMix<'a> {
    /// Function ids the target really implements.
    pub valid_ids: &'a [u32],
    /// The id range of the interface under attack, `[first, last]`; ids from
    /// it are drawn in both calling conventions (bit 30, SMC32/SMC64).
    pub id_range: (u32, u32),
    /// Addresses worth aiming at (page aligned; offsets are added).
    pub addresses: &'a [u64],
    /// Ids never to send.
    pub forbidden: &'a dyn Fn(u32) -> bool,
}

/// One call: x0 = function id, x1..x17 arguments.
pub type Call = [u64; 18];

/// The generator: the same calls for the same seed.
pub struct Storm<'a> {
    rng: XorShift64,
    mix: CallMix<'a>,
}

impl<'a> Storm<'a> {
    pub fn new(seed: u64, mix: CallMix<'a>) -> Self {
        Self { rng: XorShift64::new(seed), mix }
    }

    /// A function id: valid, from the interface's range, or any (never a
    /// forbidden one; after 64 forbidden draws, the first valid id that is
    /// allowed, else 0).
    fn id(&mut self) -> u32 {
        for _ in 0..64 {
            let id = match self.rng.below(4) {
                0 | 1 if !self.mix.valid_ids.is_empty() => self.mix.valid_ids[self.rng.below(self.mix.valid_ids.len() as u64) as usize],
                2 => {
                    let (lo, hi) = self.mix.id_range;
                    let id = lo.wrapping_add(self.rng.below(hi.wrapping_sub(lo) as u64 + 1) as u32);
                    id ^ (self.rng.below(2) as u32) << 30
                }
                _ => self.rng.next_u64() as u32,
            };
            if !(self.mix.forbidden)(id) {
                return id;
            }
        }
        self.mix.valid_ids.iter().copied().find(|id| !(self.mix.forbidden)(*id)).unwrap_or(0)
    }

    /// One argument word.
    pub fn arg(&mut self) -> u64 {
        match self.rng.below(8) {
            0 => 0,
            1 => self.rng.below(64),
            2 => u64::MAX,
            3 => self.rng.next_u64(),
            4 => self.rng.next_u64() & 0xffff_ffff,
            // An endpoint id pair (w1 of direct messages): a secure id or two.
            5 => (0x8000 | self.rng.below(8)) << 16 | self.rng.below(3) << 15 | self.rng.below(8),
            _ => self.address(),
        }
    }

    /// An address from the pool, page aligned 3 times out of 4.
    pub fn address(&mut self) -> u64 {
        let pool = self.mix.addresses;
        let base = if pool.is_empty() { self.rng.next_u64() & !0xfff } else { pool[self.rng.below(pool.len() as u64) as usize] };
        let page = self.rng.below(16) << 12;
        let off = if self.rng.below(4) == 0 { self.rng.below(0x1000) } else { 0 };
        base.wrapping_add(page).wrapping_add(off)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    /// The next call.
    pub fn next_call(&mut self) -> Call {
        let mut c = [0u64; 18];
        c[0] = self.id() as u64;
        // Most interfaces read x1..x7; a few words beyond, for the v1.2 ABIs.
        for a in c.iter_mut().skip(1).take(7) {
            *a = self.arg();
        }
        if self.rng.below(8) == 0 {
            for a in c.iter_mut().skip(8) {
                *a = self.arg();
            }
        }
        c
    }
}

/// PSCI and the SMCCC standard service's power calls (DEN0022: function
/// numbers 0x00..0x1f of the standard secure service, 32- and 64-bit): a
/// storm never powers a core or the machine off.
pub fn is_psci(id: u32) -> bool {
    let owner_std = (id >> 24) & 0x3f == 4;
    owner_std && (id & 0xffff) < 0x20
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: [u32; 3] = [0x8400_0063, 0x8400_006f, 0xc400_0150];

    fn mix<'a>(forbidden: &'a dyn Fn(u32) -> bool) -> CallMix<'a> {
        CallMix { valid_ids: &VALID, id_range: (0x8400_0060, 0x8400_00ff), addresses: &[0xa000_0000, 0x0e30_0000], forbidden }
    }

    #[test]
    fn the_same_seed_the_same_calls() {
        let no = |_: u32| false;
        let a: Vec<Call> = { let mut s = Storm::new(7, mix(&no)); (0..100).map(|_| s.next_call()).collect() };
        let b: Vec<Call> = { let mut s = Storm::new(7, mix(&no)); (0..100).map(|_| s.next_call()).collect() };
        let c: Vec<Call> = { let mut s = Storm::new(8, mix(&no)); (0..100).map(|_| s.next_call()).collect() };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn forbidden_ids_never_and_every_valid_one_often() {
        let forbid = |id: u32| id == 0x8400_006f || is_psci(id);
        let mut s = Storm::new(1, mix(&forbid));
        let mut seen = [0usize; 3];
        let mut in_range = 0;
        for _ in 0..10_000 {
            let c = s.next_call();
            let id = c[0] as u32;
            assert!(!forbid(id), "{id:#x} drawn");
            if let Some(k) = VALID.iter().position(|v| *v == id) {
                seen[k] += 1;
            }
            in_range += (0x8400_0060..=0x8400_00ff).contains(&(id & !(1 << 30))) as usize;
        }
        assert_eq!(seen[1], 0);
        assert!(seen[0] > 1000 && seen[2] > 1000, "{seen:?}");
        assert!(in_range > 3000, "{in_range}");
    }

    #[test]
    fn addresses_come_from_the_pool_mostly_aligned() {
        let no = |_: u32| false;
        let mut s = Storm::new(3, mix(&no));
        let mut aligned = 0;
        for _ in 0..1000 {
            let a = s.address();
            assert!((0xa000_0000..0xa001_1000).contains(&a) || (0x0e30_0000..0x0e31_1000).contains(&a), "{a:#x}");
            aligned += (a & 0xfff == 0) as usize;
        }
        assert!(aligned > 600, "{aligned}");
    }

    #[test]
    fn psci_ids() {
        for id in [0x8400_0000, 0x8400_0008, 0x8400_0009, 0xc400_0003, 0x8400_001f] {
            assert!(is_psci(id), "{id:#x}");
        }
        for id in [0x8400_0060, 0xc400_0150, 0xc400_0190, 0x8000_0000, 0x8400_0050] {
            assert!(!is_psci(id), "{id:#x}");
        }
    }
}
