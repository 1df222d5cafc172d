//! The Realm Descriptor (DEN0137 RMM 1.0, A2.1 "Realm", its "Realm
//! attributes"), kept in the RD granule itself, and the checks on the Host's
//! Realm parameters (DEN0137 RMM 1.0, RMI_REALM_CREATE, `params_supp`).

use crate::measurement::{HashAlgo, MAX_MEASUREMENT};
use crate::rmi::features::HwFeatures;
use crate::rtt::{self, RttConfig};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use shared::abi::rmi::{RMI_REALM_FLAGS_LPA2, RMI_REALM_FLAGS_PMU, RMI_REALM_FLAGS_SVE, RmiRealmParams};
use shared::abi::rsi::MEASUREMENT_SLOTS;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// RealmState (DEN0137 RMM 1.0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealmState {
    New = 0,
    Active = 1,
    SystemOff = 2,
}

/// The RD granule's contents.
#[repr(C)]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct Rd {
    pub state: u64,
    pub hash_algo: u64,
    pub ipa_bits: u64,
    pub level_start: i64,
    pub num_start: u64,
    pub rtt_base: u64,
    pub vmid: u64,
    pub flags: u64,
    pub num_bps: u64,
    pub num_wps: u64,
    /// RecIndex the next REC_CREATE must use (DEN0137 REC index, `mpidr_index`).
    pub rec_index: u64,
    pub measurements: [[u8; MAX_MEASUREMENT]; MEASUREMENT_SLOTS],
    pub rpv: [u8; 64],
}

impl Rd {
    pub fn state(&self) -> RealmState {
        match self.state {
            0 => RealmState::New,
            1 => RealmState::Active,
            _ => RealmState::SystemOff,
        }
    }

    pub fn set_state(&mut self, s: RealmState) {
        self.state = s as u64;
    }

    pub fn algo(&self) -> HashAlgo {
        HashAlgo::from_rmi(self.hash_algo).unwrap_or(HashAlgo::Sha256)
    }

    pub fn rtt(&self) -> RttConfig {
        RttConfig { ipa_bits: self.ipa_bits, level_start: self.level_start, num_start: self.num_start, base: self.rtt_base }
    }
}

/// RealmParamsSupported: features we offer, hash algorithm we know, an IPA
/// width we can translate, and an RTT shape the architecture allows.
pub fn params_supported(p: &RmiRealmParams, hw: &HwFeatures) -> bool {
    let flags_ok = p.flags & !(RMI_REALM_FLAGS_LPA2 | RMI_REALM_FLAGS_SVE | RMI_REALM_FLAGS_PMU) == 0
        // LPA2, SVE and PMU are features RMI_FEATURES says we do not have.
        && p.flags & (RMI_REALM_FLAGS_LPA2 | RMI_REALM_FLAGS_SVE | RMI_REALM_FLAGS_PMU) == 0;
    let s2sz = p.s2sz as u8 as u64;
    let max_ipa = crate::rmi::features::register0(hw) & 0xff;
    flags_ok
        && (rtt::MIN_IPA_BITS..=max_ipa).contains(&s2sz)
        // num_bps / num_wps: 0 is reserved; at most RMI_FEATURES' NUM_BPS /
        // NUM_WPS (DEN0137 RMM 1.0, RmiRealmParams and RealmParamsSupported).
        && (1..=hw.brps).contains(&(p.num_bps as u8))
        && (1..=hw.wrps).contains(&(p.num_wps as u8))
        && HashAlgo::from_rmi(p.hash_algo as u8 as u64).is_some()
}

/// RttConfigIsValid (`rtt_num_level`): the starting level suits s2sz and
/// `rtt_num_start` is exactly the number of tables it needs.
pub fn rtt_config(p: &RmiRealmParams) -> Option<RttConfig> {
    let ipa_bits = p.s2sz as u8 as u64;
    let n = rtt::start_tables(ipa_bits, p.rtt_level_start)?;
    (p.rtt_num_start as u32 as u64 == n).then_some(RttConfig {
        ipa_bits,
        level_start: p.rtt_level_start,
        num_start: n,
        base: p.rtt_base,
    })
}

/// VMIDs in use (DEN0137 VmidIsFree): one bit per 16-bit VMID.
pub struct VmidSet {
    bits: [AtomicU64; 1024],
}

impl VmidSet {
    pub const fn new() -> Self {
        Self { bits: [const { AtomicU64::new(0) }; 1024] }
    }

    /// Takes `vmid` if it is valid (16 bits) and free.
    pub fn reserve(&self, vmid: u64) -> bool {
        if vmid > 0xffff {
            return false;
        }
        let bit = 1u64 << (vmid % 64);
        self.bits[(vmid / 64) as usize].fetch_or(bit, Relaxed) & bit == 0
    }

    /// Every VMID free again (a fuzz input's fresh machine).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn release_all(&self) {
        for b in &self.bits {
            b.store(0, Relaxed);
        }
    }

    pub fn release(&self, vmid: u64) {
        if vmid <= 0xffff {
            self.bits[(vmid / 64) as usize].fetch_and(!(1u64 << (vmid % 64)), Relaxed);
        }
    }
}

impl Default for VmidSet {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmids() {
        let v = VmidSet::new();
        assert!(v.reserve(5));
        assert!(!v.reserve(5));
        assert!(v.reserve(0));
        assert!(!v.reserve(0x1_0000));
        v.release(5);
        assert!(v.reserve(5));
    }

    #[test]
    fn rd_fits_a_granule() {
        assert!(core::mem::size_of::<Rd>() <= 4096);
    }
}
