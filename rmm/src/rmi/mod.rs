//! The Realm Management Interface (DEN0137 RMM 1.0, chapter B4): one request
//! from the Host, relayed by the RMMD, in; one answer out.  Plain logic, so the
//! whole dispatch runs under `cargo test`.
//!
//! Register conventions (TF-A `services/std_svc/rmmd/rmmd_main.c`, and
//! rmm-el3-comms-spec "RMM-EL3 Runtime Interface"): a request returns from our
//! previous SMC with x0 = function id and x1..x7 = the Host's x1..x7; we answer
//! with `RMM_RMI_REQ_COMPLETE` and x1..x5, which the Host sees as its x0..x4.

pub mod features;
pub mod version;

use shared::abi::rmi::{self, RmiStatus, return_code};
use shared::abi::smccc_id::NOT_SUPPORTED;

/// SMCCC v1.3 SVE live-state hint: bit 16 of the function id (DEN0028 §2.5),
/// which the RMMD sets when the Host has no live SVE state.  Not part of the id.
pub const SVE_HINT: u32 = 1 << 16;

/// One RMI request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmiCall {
    /// Function id, SVE hint removed.
    pub fid: u32,
    /// Whether the Host said it has no live SVE state.
    pub sve_hint: bool,
    /// x1..x7.
    pub args: [u64; 7],
}

impl RmiCall {
    /// Decodes the registers our SMC returned with (x0 first).  Only W0 holds
    /// the function id (SMCCC: the upper half of x0 is ignored).
    pub fn from_regs(regs: &[u64]) -> Self {
        let w0 = regs.first().copied().unwrap_or(0) as u32;
        let mut args = [0u64; 7];
        for (dst, src) in args.iter_mut().zip(regs.iter().skip(1)) {
            *dst = *src;
        }
        Self { fid: w0 & !SVE_HINT, sve_hint: w0 & SVE_HINT != 0, args }
    }

    /// Argument register `xn` (1..=7).
    pub fn x(&self, n: usize) -> u64 {
        self.args[n - 1]
    }
}

/// The Host's x0..x4 after the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmiReturn {
    pub regs: [u64; 5],
}

impl RmiReturn {
    /// Registers we do not return values in keep the Host's values where
    /// SMCCC asks for it: x4 is preserved unless it is a result (SMCCC v1.2,
    /// and the RMMD's contract that the RMM preserves the Host's x4).
    fn for_call(call: &RmiCall) -> Self {
        Self { regs: [0, 0, 0, 0, call.x(4)] }
    }
}

/// What the RMM knows that RMI answers depend on.
#[derive(Clone, Copy, Debug, Default)]
pub struct RmiContext {
    pub hw: features::HwFeatures,
}

/// The name of an RMI function id, for log lines.
pub fn name(fid: u32) -> Option<&'static str> {
    Some(match fid {
        rmi::RMI_VERSION => "RMI_VERSION",
        rmi::RMI_GRANULE_DELEGATE => "RMI_GRANULE_DELEGATE",
        rmi::RMI_GRANULE_UNDELEGATE => "RMI_GRANULE_UNDELEGATE",
        rmi::RMI_DATA_CREATE => "RMI_DATA_CREATE",
        rmi::RMI_DATA_CREATE_UNKNOWN => "RMI_DATA_CREATE_UNKNOWN",
        rmi::RMI_DATA_DESTROY => "RMI_DATA_DESTROY",
        rmi::RMI_REALM_ACTIVATE => "RMI_REALM_ACTIVATE",
        rmi::RMI_REALM_CREATE => "RMI_REALM_CREATE",
        rmi::RMI_REALM_DESTROY => "RMI_REALM_DESTROY",
        rmi::RMI_REC_CREATE => "RMI_REC_CREATE",
        rmi::RMI_REC_DESTROY => "RMI_REC_DESTROY",
        rmi::RMI_REC_ENTER => "RMI_REC_ENTER",
        rmi::RMI_RTT_CREATE => "RMI_RTT_CREATE",
        rmi::RMI_RTT_DESTROY => "RMI_RTT_DESTROY",
        rmi::RMI_RTT_MAP_UNPROTECTED => "RMI_RTT_MAP_UNPROTECTED",
        rmi::RMI_RTT_READ_ENTRY => "RMI_RTT_READ_ENTRY",
        rmi::RMI_RTT_UNMAP_UNPROTECTED => "RMI_RTT_UNMAP_UNPROTECTED",
        rmi::RMI_PSCI_COMPLETE => "RMI_PSCI_COMPLETE",
        rmi::RMI_FEATURES => "RMI_FEATURES",
        rmi::RMI_RTT_FOLD => "RMI_RTT_FOLD",
        rmi::RMI_REC_AUX_COUNT => "RMI_REC_AUX_COUNT",
        rmi::RMI_RTT_INIT_RIPAS => "RMI_RTT_INIT_RIPAS",
        rmi::RMI_RTT_SET_RIPAS => "RMI_RTT_SET_RIPAS",
        _ => return None,
    })
}

/// Handles one request and logs one line about it.  Never fails: an id we do
/// not implement gets SMCCC NOT_SUPPORTED (DEN0028 §5.2) in x0.
pub fn handle(call: &RmiCall, ctx: &RmiContext) -> RmiReturn {
    let mut ret = RmiReturn::for_call(call);
    match call.fid {
        rmi::RMI_VERSION => {
            let req = call.x(1);
            let n = version::negotiate(req);
            ret.regs[0] = return_code(n.status, 0);
            ret.regs[1] = n.lower;
            ret.regs[2] = n.higher;
            let (lower, higher) = (version::Display(n.lower), version::Display(n.higher));
            match n.status {
                RmiStatus::Success => shared::request_log!("RMI_VERSION req {} -> lower {lower} higher {higher}", version::Display(req)),
                _ => shared::request_log!("RMI_VERSION req {} -> ERROR_INPUT lower {lower} higher {higher}", version::Display(req)),
            }
        }
        rmi::RMI_FEATURES => {
            let index = call.x(1);
            let (status, value) = features::read(index, &ctx.hw);
            ret.regs[0] = return_code(status, 0);
            ret.regs[1] = value;
            shared::request_log!("RMI_FEATURES index {index} -> {value:#x}");
        }
        fid => {
            ret.regs[0] = NOT_SUPPORTED;
            match name(fid) {
                Some(n) => shared::request_log!("{n} ({fid:#x}) not supported"),
                None => shared::request_log!("RMI function {fid:#x} not supported"),
            }
        }
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::abi::rmi::version as ver;

    fn ctx() -> RmiContext {
        RmiContext { hw: features::HwFeatures { pa_range: 5, brps: 5, wrps: 3 } }
    }

    fn call(regs: &[u64]) -> RmiReturn {
        handle(&RmiCall::from_regs(regs), &ctx())
    }

    #[test]
    fn version_negotiation() {
        // What ns-hyp and TF-A's BL33 stub send: RMI_VERSION(1.0).
        let r = call(&[rmi::RMI_VERSION as u64, 0x10000, 0, 0, 0x4444]);
        assert_eq!(r.regs, [0, ver(1, 0), ver(1, 0), 0, 0x4444]);
        let r = call(&[rmi::RMI_VERSION as u64, ver(2, 0)]);
        assert_eq!(r.regs[..3], [return_code(RmiStatus::ErrorInput, 0), ver(1, 0), ver(1, 0)]);
    }

    #[test]
    fn features() {
        let r = call(&[rmi::RMI_FEATURES as u64, 0]);
        assert_eq!(r.regs[0], 0);
        assert_eq!(r.regs[1], features::register0(&ctx().hw));
        assert_eq!(r.regs[1] & 0xff, 48);
        let r = call(&[rmi::RMI_FEATURES as u64, 7]);
        assert_eq!(r.regs[..2], [0, 0]);
    }

    #[test]
    fn unknown_and_unimplemented_ids_are_not_supported() {
        for fid in [rmi::RMI_GRANULE_DELEGATE, rmi::RMI_REC_ENTER, 0xC400_0170, 0xC400_018E, 0x8400_0000, 0, u32::MAX] {
            let r = call(&[fid as u64, 1, 2, 3, 0x4444, 5, 6, 7]);
            assert_eq!(r.regs, [NOT_SUPPORTED, 0, 0, 0, 0x4444], "{fid:#x}");
        }
    }

    #[test]
    fn sve_hint_and_upper_x0_bits_are_not_part_of_the_id() {
        let c = RmiCall::from_regs(&[0xdead_0000_0000_0000 | (rmi::RMI_VERSION | SVE_HINT) as u64, ver(1, 0)]);
        assert_eq!(c.fid, rmi::RMI_VERSION);
        assert!(c.sve_hint);
        assert_eq!(handle(&c, &ctx()).regs[0], 0);
    }

    #[test]
    fn short_register_lists_decode_as_zero() {
        assert_eq!(RmiCall::from_regs(&[]), RmiCall { fid: 0, sve_hint: false, args: [0; 7] });
        assert_eq!(call(&[rmi::RMI_VERSION as u64]).regs[0], return_code(RmiStatus::ErrorInput, 0));
    }

    #[test]
    fn every_named_id_is_in_the_rmi_range() {
        for fid in 0xC400_0150..=0xC400_018F {
            if name(fid).is_some() {
                assert!(rmi::is_rmi(fid));
            }
        }
        assert_eq!(name(rmi::RMI_VERSION), Some("RMI_VERSION"));
        assert_eq!(name(0xC400_0170), None);
    }
}
