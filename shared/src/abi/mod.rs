//! Every ABI Quadrant speaks, defined once so both sides of each ABI (and the
//! host tests) use the same function ids, error codes and layouts.

pub mod ffa;
pub mod hafnium;
pub mod psci;
pub mod rmi;
pub mod rmm_el3;
pub mod rsi;

/// SMC Calling Convention function-id fields (DEN0028 §2.5).
pub mod smccc_id {
    /// Bit 31: fast call.
    pub const FAST_CALL: u32 = 1 << 31;
    /// Bit 30: SMC64/HVC64 calling convention.
    pub const SMC64: u32 = 1 << 30;
    /// Bits 29:24: owning entity number.
    pub const fn owner(fid: u32) -> u32 {
        (fid >> 24) & 0x3f
    }
    pub const OWNER_ARCH: u32 = 0;
    pub const OWNER_STANDARD_SECURE: u32 = 4;
    pub const OWNER_STANDARD_HYP: u32 = 5;

    /// The value every SMCCC implementation returns in x0 for an id it does not
    /// implement (DEN0028 §5.2).
    pub const NOT_SUPPORTED: u64 = u64::MAX; // -1

    /// SMCCC_VERSION and SMCCC_ARCH_FEATURES (DEN0028), from the `smccc` crate.
    pub use smccc::arch::{SMCCC_ARCH_FEATURES, SMCCC_VERSION};
}
