//! FF-A encoding and decoding on the server side through the `arm-ffa` crate
//! (the same codec the clients use, `shared::ffa_client`), behind a wrapper
//! that never panics on hostile register values.
//!
//! `arm_ffa::Interface::from_regs` panics on some inputs instead of failing:
//! it asserts that an interface with an 18-register layout (FFA_SUCCESS_64,
//! FFA_MSG_SEND_DIRECT_REQ/RESP_64, _REQ2/_RESP2, FFA_CONSOLE_LOG_64) is
//! decoded at v1.2 or later, while a v1.0/v1.1 caller may use the 64-bit
//! direct messages.  [`decode`] wraps that: it checks the function id itself
//! first, and decodes those interfaces with the v1.2 layout (x8..x17 are no
//! arguments below v1.2; the handlers zero them).
//!
//! Errors of the crate become the spec's FFA_ERROR codes through our own
//! [`error_code`]: NOT_SUPPORTED for an unknown id or one newer than the
//! caller's version, RETRY for an unknown PARTITION_INFO_GET_REGS tag,
//! INVALID_PARAMETERS for malformed arguments.  The crate's own
//! `From<arm_ffa::Error> for FfaError` is not used: for the nested errors
//! (`PartitionInfoError`, `MemoryManagementError`, `NotificationError`) it
//! calls itself (`value.into()`) and recurses until the stack overflows, which
//! a PARTITION_INFO_GET with reserved flag bits reaches.

use super::Regs;
use shared::abi::ffa::interface_args::{SuccessArgs, TargetInfo};
use shared::abi::ffa::{Error, FfaError, FuncId, Interface, Version};

/// The crate's [`Version`] of a version word (bit 31 ignored: a negotiated
/// version never has it).
fn version(v: u32) -> Version {
    Version(((v >> 16) & 0x7fff) as u16, v as u16)
}

/// Interfaces the crate decodes only with its 18-register (v1.2) layout.
fn has_regs18_layout(f: FuncId) -> bool {
    matches!(
        f,
        FuncId::Success64
            | FuncId::ConsoleLog64
            | FuncId::MsgSendDirectReq64
            | FuncId::MsgSendDirectResp64
            | FuncId::MsgSendDirectReq64_2
            | FuncId::MsgSendDirectResp64_2
    )
}

/// Decodes a call made by a caller that negotiated FF-A `caller_version`.
/// Never panics, whatever the registers hold.
///
/// Which interface needs which version stays the SPMC's decision, in the
/// handlers (FFA_MSG_SEND_DIRECT_REQ2 and FFA_PARTITION_INFO_GET_REGS need
/// v1.2; FFA_CONSOLE_LOG is served from v1.1, as Hafnium does, where the crate
/// says v1.2): a call below the crate's minimum version for it is decoded at
/// that minimum.  FFA_PARTITION_INFO_GET_REGS below v1.2 is NOT_SUPPORTED
/// here already, as its handler answers before it looks at the arguments.
pub fn decode(caller_version: u32, regs: &Regs) -> Result<Interface, FfaError> {
    let f = FuncId::try_from(regs[0] as u32).map_err(|_| FfaError::NotSupported)?;
    let caller = version(caller_version);
    if f == FuncId::PartitionInfoGetRegs && caller < f.minimum_ffa_version() {
        return Err(FfaError::NotSupported);
    }
    let v = caller.max(f.minimum_ffa_version());
    let v = if has_regs18_layout(f) { v.max(Version(1, 2)) } else { v };
    Interface::from_regs(v, regs).map_err(|e| error_code(&e))
}

/// The FFA_ERROR code for a decode error of the crate.
pub fn error_code(e: &Error) -> FfaError {
    match e {
        Error::UnrecognisedFunctionId(_) | Error::InvalidVersionForFunctionId(..) | Error::InvalidRegisterCount { .. } => FfaError::NotSupported,
        Error::InvalidInformationTag(_) => FfaError::Retry,
        _ => FfaError::InvalidParameters,
    }
}

/// The registers of a message the SPMC sends: a reply, or FFA_INTERRUPT to
/// an SP.  Encoded at v1.2, the version we implement, so the crate's
/// assertions (an interface newer than the version, an 18-register layout
/// below v1.2) cannot fire for the interfaces of v1.0..v1.2 the SPMC sends;
/// v1.3-only ids (FFA_ERROR_64, FFA_INTERRUPT_64, ...) must not be passed.
pub fn encode(msg: Interface) -> Regs {
    let mut r = [0u64; 18];
    msg.to_regs(Version(1, 2), &mut r);
    r
}

/// FFA_ERROR with `code` in w2 (DEN0077 v1.2, FFA_ERROR).
pub fn error(code: FfaError) -> Regs {
    encode(Interface::error(code, true))
}

/// FFA_SUCCESS_32 with w2.. = `args` (at most six; each truncated to 32 bits).
pub fn success(args: &[u64]) -> Regs {
    let mut words = [0u32; 6];
    for (d, s) in words.iter_mut().zip(args) {
        *d = *s as u32;
    }
    encode(Interface::Success { target_info: TargetInfo::from(0u32), args: SuccessArgs::Args32(words) })
}
