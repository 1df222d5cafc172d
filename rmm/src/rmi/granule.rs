//! RMI_GRANULE_DELEGATE / RMI_GRANULE_UNDELEGATE (DEN0137 RMM 1.0, the commands' own sections):
//! move a granule between the Host (Undelegated, Non-secure PAS) and the RMM
//! (Delegated, Realm PAS) through EL3's GTSI service.

use super::{Out, RmiContext};
use crate::granule::GranuleState::{Delegated, Undelegated};
use crate::mem::{self, Page};
use shared::abi::rmi::RmiError;

/// Failure conditions, in order: gran_align, gran_bound, gran_state
/// (all ERROR_INPUT); a GPT change EL3 refuses is ERROR_INPUT too.
pub fn delegate(ctx: &RmiContext, addr: u64) -> Result<Out, RmiError> {
    let g = ctx.granules.lock(addr, Undelegated)?;
    if ctx.el3.delegate(addr) != 0 {
        return Err(RmiError::Input);
    }
    g.set_state(Delegated);
    Ok(Out::ok(&[]))
}

/// Failure conditions: gran_align, gran_bound, gran_state.  The contents are
/// scrubbed before the Host gets the granule back.
pub fn undelegate(ctx: &RmiContext, addr: u64) -> Result<Out, RmiError> {
    let g = ctx.granules.lock(addr, Delegated)?;
    // SAFETY: we hold the lock of this Delegated (Realm PAS) granule.
    unsafe { mem::realm::<Page>(ctx.mem, addr) }.fill(0);
    if ctx.el3.undelegate(addr) != 0 {
        return Err(RmiError::Input);
    }
    g.set_state(Undelegated);
    Ok(Out::ok(&[]))
}
