//! The RMM-EL3 interface of TF-A 2.12 (`docs/components/rmm-el3-comms-spec.rst`,
//! `include/services/rmmd_svc.h`): the calls the RMM makes to EL3 and the boot
//! hand-off.  The boot manifest layout is parsed in the rmm crate.

/// SMC64, standard secure owner, function number `n` (RMMD EL3 range 0x1B0..=0x1CF).
const fn el3_fid(n: u32) -> u32 {
    0xC400_01B0 + n
}

pub const RMM_GTSI_DELEGATE: u32 = el3_fid(0);
pub const RMM_GTSI_UNDELEGATE: u32 = el3_fid(1);
pub const RMM_ATTEST_GET_REALM_KEY: u32 = el3_fid(2);
pub const RMM_ATTEST_GET_PLAT_TOKEN: u32 = el3_fid(3);
pub const RMM_EL3_FEATURES: u32 = el3_fid(4);
pub const RMM_BOOT_COMPLETE: u32 = el3_fid(0x1F);
/// The RMM's answer to an RMI request; the next request returns from this SMC.
pub const RMM_RMI_REQ_COMPLETE: u32 = 0xC400_018F;

/// Interface version the RMMD passes in x1 at boot: major in 30:16, minor in 15:0.
pub const RMM_EL3_IFC_VERSION: u64 = 4; // 0.4
pub const fn ifc_major(v: u64) -> u64 {
    (v >> 16) & 0x7fff
}
pub const fn ifc_minor(v: u64) -> u64 {
    v & 0xffff
}

/// Boot results for RMM_BOOT_COMPLETE's x1.
pub const E_RMM_BOOT_SUCCESS: i64 = 0;
pub const E_RMM_BOOT_UNKNOWN: i64 = -1;
pub const E_RMM_BOOT_VERSION_MISMATCH: i64 = -2;
pub const E_RMM_BOOT_CPUS_OUT_OF_RANGE: i64 = -3;
pub const E_RMM_BOOT_CPU_ID_OUT_OF_RANGE: i64 = -4;
pub const E_RMM_BOOT_INVALID_SHARED_BUFFER: i64 = -5;
pub const E_RMM_BOOT_MANIFEST_VERSION_NOT_SUPPORTED: i64 = -6;
pub const E_RMM_BOOT_MANIFEST_DATA_ERROR: i64 = -7;

/// EL3 service results.
pub const E_RMM_OK: i64 = 0;
pub const E_RMM_UNK: i64 = -1;
pub const E_RMM_BAD_ADDR: i64 = -2;
pub const E_RMM_BAD_PAS: i64 = -3;
pub const E_RMM_NOMEM: i64 = -4;
pub const E_RMM_INVAL: i64 = -5;
pub const E_RMM_AGAIN: i64 = -6;

/// RMM_ATTEST_GET_REALM_KEY's `ecc_curve` (x3): the only curve of the interface.
pub const ATTEST_KEY_CURVE_ECC_SECP384R1: u64 = 0;
