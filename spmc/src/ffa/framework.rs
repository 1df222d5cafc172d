//! Framework messages from the SPMD (DEN0077 v1.2, "Framework
//! messages"; TF-A `spmd_build_spmc_message`): direct requests from the SPMD's
//! endpoint to the SPMC itself, carrying FFA_VERSION for the Normal world and
//! PSCI power messages.

use super::setup::version_answer;
use super::{Regs, Spmc, error};
use core::sync::atomic::Ordering;
use shared::abi::ffa::{self as ffa, FfaError, fid, framework};

impl Spmc {
    pub(super) fn framework_message(&self, r: &Regs) -> Regs {
        let mut a = [0u64; 18];
        a[0] = fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64;
        a[1] = ffa::pack_endpoints(self.id, ffa::SPMD_ENDPOINT_ID);
        match r[2] {
            framework::VERSION_REQ_W2 => {
                let asked = r[3] as u32;
                let (mut v, mut negotiated) = version_answer(asked);
                // Once the Normal world has made another FF-A call, its
                // version is fixed: asking for another one is NOT_SUPPORTED
                // (DEN0077 v1.2, FFA_VERSION; Hafnium's `api_ffa_version`
                // refuses it the same way).  Asking again for the same one is fine.
                if let Some(n) = negotiated
                    && self.ns_version_fixed.load(Ordering::Relaxed)
                    && n != self.ns_version()
                {
                    (v, _) = version_answer(0x8000_0000);
                    negotiated = None;
                    shared::request_log!("FFA_VERSION from NS: version fixed at {:#x} after other calls", self.ns_version());
                }
                if let Some(n) = negotiated {
                    self.ns_version.store(n, Ordering::Relaxed);
                }
                a[2] = framework::VERSION_RESP_W2;
                a[3] = v[0] & 0xffff_ffff;
                let (am, an) = (ffa::version_major(asked), ffa::version_minor(asked));
                if negotiated.is_some() {
                    let (rm, rn) = (ffa::version_major(v[0] as u32), ffa::version_minor(v[0] as u32));
                    shared::request_log!("FFA_VERSION from NS: {}.{} -> {}.{}", am, an, rm, rn);
                } else {
                    shared::request_log!("FFA_VERSION from NS: {:#x} -> NOT_SUPPORTED", asked);
                }
            }
            w2 if w2 == framework::FLAG | framework::PSCI_REQ => {
                // PSCI power messages (CPU_OFF on this core): nothing to tear down
                // yet; answer PSCI SUCCESS (DEN0077 v1.2, power management framework messages: PSCI_RESP = 0x2).
                shared::request_log!("PSCI framework message {:#x} from SPMD", r[3]);
                a[2] = framework::FLAG | 0x2;
                a[3] = 0;
            }
            other => {
                log::warn!("unknown framework message {:#x} from SPMD", other);
                return error(FfaError::InvalidParameters);
            }
        }
        a
    }
}
