//! Setup and discovery interfaces (DEN0077 v1.2 chapter "Setup and discovery
//! interfaces"): FFA_VERSION, FFA_FEATURES, FFA_ID_GET, FFA_SPM_ID_GET here;
//! FFA_PARTITION_INFO_GET(_REGS) in [`partition_info`]; the RX/TX buffer
//! calls (FFA_RXTX_MAP/UNMAP, FFA_RX_RELEASE/ACQUIRE) in [`rxtx`].

pub mod partition_info;
pub mod rxtx;

use super::calls::{Abi, Call, lookup};
use super::{Caller, Platform, Regs, Spmc, error, success};
use shared::abi::ffa::{self as ffa, FfaError, Interface};

/// FFA_VERSION (DEN0077 v1.2, FFA_VERSION): bit 31 of the input MBZ; a caller
/// of the same major version gets our version and may use min(its, ours).
/// Returns the answer and the version the caller will use, if compatible.
pub fn version_answer(asked: u32) -> (Regs, Option<u32>) {
    let mut a = [0u64; 18];
    if asked & 0x8000_0000 != 0 || ffa::version_major(asked) != ffa::version_major(ffa::QUADRANT_FFA_VERSION) {
        a[0] = FfaError::NotSupported as i32 as u32 as u64;
        return (a, None);
    }
    a[0] = ffa::QUADRANT_FFA_VERSION as u64;
    (a, Some(asked.min(ffa::QUADRANT_FFA_VERSION)))
}

/// FFA_FEATURES (DEN0077 v1.2, FFA_FEATURES): w1 bit 31 set = a function id,
/// answered from the call table ([`super::CALLS`]: every FF-A row); clear = a
/// feature id (none of which we implement yet: notification and managed-exit
/// interrupt ids get NOT_SUPPORTED).
pub fn features(id: u32) -> Regs {
    if id & 0x8000_0000 != 0 && lookup(id).is_some_and(|c| c.abi == Abi::Ffa) {
        // For RXTX_MAP w2 bits 1:0 = 0: 4 KiB minimum buffer size and alignment.
        success(&[0])
    } else {
        error(FfaError::NotSupported)
    }
}

/// FFA_VERSION from an SP (the Normal world's comes as a framework message,
/// see [`super::framework`]).
pub(super) fn ffa_version(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let (answer, negotiated) = version_answer(c.regs[1] as u32);
    if let (Some(v), Caller::Sp(i)) = (negotiated, c.caller) {
        s.part(i).set_version(v);
    }
    answer
}

pub(super) fn ffa_features(_: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::Features { feat_id, .. }) = c.decoded else { return error(FfaError::InvalidParameters) };
    features(u32::from(feat_id))
}

/// FFA_ID_GET from an SP: its own id.
pub(super) fn ffa_id_get(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    success(&[s.caller_id(c.caller) as u64])
}

/// FFA_SPM_ID_GET from an SP: the SPMC's id.
pub(super) fn ffa_spm_id_get(s: &Spmc, _: &Call, _: &mut dyn Platform) -> Regs {
    success(&[s.id as u64])
}
