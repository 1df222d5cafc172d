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
/// feature id (the interrupt ids: [`features_for`]).
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
/// Once it made another call its version is fixed: asking for another one
/// is NOT_SUPPORTED, the same one is answered as before.
pub(super) fn ffa_version(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let (answer, negotiated) = version_answer(c.regs[1] as u32);
    if let (Some(v), Caller::Sp(i)) = (negotiated, c.caller) {
        let p = s.part(i);
        if p.version_fixed() && v != p.version() {
            shared::request_log!("FFA_VERSION from SP {:#06x}: version fixed at {:#x} after other calls", p.manifest.id, p.version());
            return version_answer(0x8000_0000).0;
        }
        p.set_version(v);
    }
    answer
}

/// FFA_FEATURES feature ids (DEN0077 v1.2, FFA_FEATURES: w1 bits 7:0, bits
/// 30:8 MBZ) and the interrupt each names, for `caller`, as Hafnium answers:
/// the Notification Pending Interrupt (1) and the Managed Exit Interrupt (3)
/// are virtual interrupts of SPs; the Schedule Receiver Interrupt (2) is the
/// Normal world's.  Function ids go to [`features`].
pub fn features_for(caller: Caller, id: u32) -> Regs {
    use super::interrupts::MANAGED_EXIT_INTID;
    use super::notifications::{NPI_INTID, SRI_INTID};
    if id & 0x8000_0000 != 0 {
        return features(id);
    }
    let intid = match (id, caller) {
        (1, Caller::Sp(_)) => NPI_INTID,
        (2, Caller::Ns) => SRI_INTID,
        (3, Caller::Sp(_)) => MANAGED_EXIT_INTID,
        _ => return error(FfaError::NotSupported),
    };
    success(&[intid as u64])
}

pub(super) fn ffa_features(_: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::Features { .. }) = c.decoded else { return error(FfaError::InvalidParameters) };
    // The raw w1: the crate reads a feature id from its low 8 bits only.
    features_for(c.caller, c.regs[1] as u32)
}

/// FFA_ID_GET from an SP: its own id.
pub(super) fn ffa_id_get(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    success(&[s.caller_id(c.caller) as u64])
}

/// FFA_SPM_ID_GET from an SP: the SPMC's id.
pub(super) fn ffa_spm_id_get(s: &Spmc, _: &Call, _: &mut dyn Platform) -> Regs {
    success(&[s.id as u64])
}
