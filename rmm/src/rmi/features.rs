//! RMI_FEATURES (DEN0137 RMM 1.0, RMI_FEATURES; register layout in
//! its RmiFeatureRegister0 type): what this RMM supports, for the Host to pick
//! Realm parameters from.  Index 0 is RmiFeatureRegister0; every other index
//! reads as zero.

use shared::abi::rmi::RmiStatus;

// RmiFeatureRegister0's fields (`shared::abi::rmi::feature0`).  LPA2,
// SVE_EN and PMU_EN are features we do not offer yet: named for the tests.
#[cfg(test)]
pub use shared::abi::rmi::feature0::{LPA2, PMU_EN, SVE_EN};
pub use shared::abi::rmi::feature0::{HASH_SHA_256, HASH_SHA_512, NUM_BPS_SHIFT, NUM_WPS_SHIFT, S2SZ_SHIFT};

/// Largest Realm IPA width without LPA2 (4 KiB granule, DDI0487 VTCR_EL2.T0SZ).
const MAX_S2SZ_WITHOUT_LPA2: u64 = 48;

/// The hardware facts RmiFeatureRegister0 depends on, read once at boot from
/// the ID registers (so the encoding below runs on the host too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwFeatures {
    /// ID_AA64MMFR0_EL1.PARange (bits 3:0).
    pub pa_range: u8,
    /// ID_AA64DFR0_EL1.BRPs (bits 15:12): breakpoints minus one.
    pub brps: u8,
    /// ID_AA64DFR0_EL1.WRPs (bits 23:20): watchpoints minus one.
    pub wrps: u8,
}

impl HwFeatures {
    pub fn from_id_regs(id_aa64mmfr0: u64, id_aa64dfr0: u64) -> Self {
        Self {
            pa_range: (id_aa64mmfr0 & 0xf) as u8,
            brps: ((id_aa64dfr0 >> 12) & 0xf) as u8,
            wrps: ((id_aa64dfr0 >> 20) & 0xf) as u8,
        }
    }

    /// PA width in bits for PARange (DDI0487 D19.2 ID_AA64MMFR0_EL1).
    pub fn pa_bits(&self) -> u64 {
        match self.pa_range {
            0 => 32,
            1 => 36,
            2 => 40,
            3 => 42,
            4 => 44,
            5 => 48,
            _ => 52,
        }
    }
}

/// RmiFeatureRegister0 for this RMM on this hardware:
/// - S2SZ: the PA width, capped at 48 bits because we do not implement LPA2;
/// - LPA2, SVE_EN, PMU_EN: 0 (we neither save nor give Realms SVE or PMU state);
/// - NUM_BPS / NUM_WPS: the hardware's counts, minus one, as the ID register has them;
/// - HASH_SHA_256 / HASH_SHA_512: 1 (measurements use the `sha2` crate's both).
pub fn register0(hw: &HwFeatures) -> u64 {
    let s2sz = hw.pa_bits().min(MAX_S2SZ_WITHOUT_LPA2);
    (s2sz << S2SZ_SHIFT)
        | (hw.brps as u64) << NUM_BPS_SHIFT
        | (hw.wrps as u64) << NUM_WPS_SHIFT
        | HASH_SHA_256
        | HASH_SHA_512
}

/// RMI_FEATURES(index): SUCCESS (it cannot fail) and the register's value.
pub fn read(index: u64, hw: &HwFeatures) -> (RmiStatus, u64) {
    match index {
        0 => (RmiStatus::Success, register0(hw)),
        _ => (RmiStatus::Success, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // QEMU -cpu max: PARange 6 (52 bits), 6 breakpoints and 4 watchpoints.
    const QEMU_MAX: HwFeatures = HwFeatures { pa_range: 6, brps: 5, wrps: 3 };

    #[test]
    fn register0_fields() {
        let r = register0(&QEMU_MAX);
        assert_eq!(r & 0xff, 48);
        assert_eq!(r & (LPA2 | SVE_EN | PMU_EN), 0);
        assert_eq!((r >> NUM_BPS_SHIFT) & 0x3f, 5);
        assert_eq!((r >> NUM_WPS_SHIFT) & 0x3f, 3);
        assert_eq!(r & (HASH_SHA_256 | HASH_SHA_512), HASH_SHA_256 | HASH_SHA_512);
        assert_eq!(r >> 34, 0);
        let small = HwFeatures { pa_range: 2, ..QEMU_MAX };
        assert_eq!(register0(&small) & 0xff, 40);
    }

    #[test]
    fn from_id_regs() {
        let hw = HwFeatures::from_id_regs(0x1_0000_0006, 0x0030_5000 | 0xf0f);
        assert_eq!(hw, HwFeatures { pa_range: 6, brps: 5, wrps: 3 });
    }

    #[test]
    fn other_indexes_read_zero() {
        assert_eq!(read(0, &QEMU_MAX), (RmiStatus::Success, register0(&QEMU_MAX)));
        for i in [1, 2, u64::MAX] {
            assert_eq!(read(i, &QEMU_MAX), (RmiStatus::Success, 0));
        }
    }
}
