//! Realm Services Interface (DEN0137 RMM 1.0, chapter B5): function ids and
//! status codes.

pub const RSI_VERSION: u32 = 0xC400_0190;
pub const RSI_FEATURES: u32 = 0xC400_0191;
pub const RSI_MEASUREMENT_READ: u32 = 0xC400_0192;
pub const RSI_MEASUREMENT_EXTEND: u32 = 0xC400_0193;
pub const RSI_ATTESTATION_TOKEN_INIT: u32 = 0xC400_0194;
pub const RSI_ATTESTATION_TOKEN_CONTINUE: u32 = 0xC400_0195;
pub const RSI_REALM_CONFIG: u32 = 0xC400_0196;
pub const RSI_IPA_STATE_SET: u32 = 0xC400_0197;
pub const RSI_IPA_STATE_GET: u32 = 0xC400_0198;
pub const RSI_HOST_CALL: u32 = 0xC400_0199;

/// RsiCommandReturnCode (DEN0137 B5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum RsiStatus {
    Success = 0,
    ErrorInput = 1,
    ErrorState = 2,
    Incomplete = 3,
    ErrorUnknown = 4,
}

// ---------------------------------------------------------------------------
// RSI types (DEN0137 RMM 1.0, B5.4).
// ---------------------------------------------------------------------------

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// RsiInterfaceVersion implemented: 1.0 (major 30:16, minor 15:0).
pub const RSI_ABI_VERSION: u64 = 1 << 16;

/// RsiHashAlgorithm.
pub const RSI_HASH_SHA_256: u8 = 0;
pub const RSI_HASH_SHA_512: u8 = 1;

/// RsiRipas.
pub const RSI_EMPTY: u64 = 0;
pub const RSI_RAM: u64 = 1;
pub const RSI_DESTROYED: u64 = 2;

/// RSI_IPA_STATE_SET flags bit 0 (RsiRipasChangeDestroyed).
pub const RSI_CHANGE_DESTROYED: u64 = 1;

/// RsiResponse.
pub const RSI_ACCEPT: u64 = 0;
pub const RSI_REJECT: u64 = 1;

/// Measurement slots: 0 is the RIM, 1..=4 are the REMs.
pub const MEASUREMENT_SLOTS: usize = 5;

/// RsiRealmConfig: written by RSI_REALM_CONFIG into a Realm granule (4 KiB).
#[repr(C)]
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RsiRealmConfig {
    /// 0x000 IPA width in bits.
    pub ipa_width: u64,
    /// 0x008 RsiHashAlgorithm (UInt8).
    pub hash_algo: u64,
    pub _res0: [u8; 0x200 - 0x10],
    /// 0x200 Realm Personalization Value.
    pub rpv: [u8; 64],
    pub _res1: [u8; 0x1000 - 0x240],
}

/// RsiHostCall: the Realm's buffer for RSI_HOST_CALL (0x100 bytes).
#[repr(C)]
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RsiHostCall {
    /// 0x00 UInt16 immediate, in an 8-byte slot.
    pub imm: u64,
    /// 0x08 x0..x30 exchanged with the Host.
    pub gprs: [u64; 31],
}

const _: () = {
    assert!(core::mem::size_of::<RsiRealmConfig>() == 0x1000);
    assert!(core::mem::offset_of!(RsiRealmConfig, rpv) == 0x200);
    assert!(core::mem::size_of::<RsiHostCall>() == 0x100);
};
