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
