//! Which firmware is above us, decided once at boot from SMCCC_VERSION
//! (DEN0028 §7.2: SMCCC_VERSION 0x80000000, present since SMCCC v1.1).
//!
//! Under TF-A, EL3 answers it with a version.  With `--no-tfa` (QEMU `-kernel`,
//! no EL3 image) QEMU's own PSCI emulation only knows PSCI ids, so the `smc`
//! is UNDEFINED and our EL2 trap handler ([`crate::trap`]) makes it return
//! SMCCC NOT_SUPPORTED.

use shared::abi::smccc_id::NOT_SUPPORTED;
use shared::smccc::Conduit;

pub const SMCCC_VERSION: u32 = 0x8000_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// EL3 firmware answered SMCCC_VERSION with this version word.
    TfA { smccc_version: u32 },
    /// No EL3 firmware: only QEMU's PSCI emulation.
    None,
}

impl Firmware {
    pub fn detect<C: Conduit>(c: &C) -> Self {
        let r = c.call(SMCCC_VERSION, [0; 17]);
        // A version has bit 31 clear (DEN0028: major 30:16, minor 15:0);
        // NOT_SUPPORTED is -1 in w0/x0.
        if r[0] == NOT_SUPPORTED || r[0] as u32 & (1 << 31) != 0 {
            Firmware::None
        } else {
            Firmware::TfA { smccc_version: r[0] as u32 }
        }
    }

    /// The exact line tests grep.
    pub fn describe(&self) -> &'static str {
        match self {
            Firmware::TfA { .. } => "TF-A",
            Firmware::None => "none (QEMU PSCI only)",
        }
    }
}

/// Major/minor of an SMCCC version word.
#[cfg(any(test, feature = "test-modes"))]
pub fn smccc_major_minor(v: u32) -> (u32, u32) {
    ((v >> 16) & 0x7fff, v & 0xffff)
}
