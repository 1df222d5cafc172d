//! The Realm Management Interface (DEN0137 RMM 1.0, chapter B4): one request
//! from the Host, relayed by the RMMD, in; one answer out.  Plain logic, so the
//! whole dispatch runs under `cargo test`.
//!
//! Register conventions (TF-A `services/std_svc/rmmd/rmmd_main.c`, and
//! rmm-el3-comms-spec "RMM-EL3 Runtime Interface"): a request returns from our
//! previous SMC with x0 = function id and x1..x7 = the Host's x1..x7; we answer
//! with `RMM_RMI_REQ_COMPLETE` and x1..x5, which the Host sees as its x0..x4.

pub mod data;
pub mod features;
pub mod granule;
pub mod realm;
pub mod rec;
pub mod rtt;
pub mod version;

use crate::granule::{GranuleError, PairError};
use shared::abi::rmi::{self, RmiError, RmiStatus, return_code};
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

/// What the RMM knows that RMI answers depend on, and the services the
/// commands use: granule tracking, memory access, EL3, and (for REC_ENTER)
/// the CPU that runs Realms.  Traits, so every command runs on the host.
pub struct RmiContext<'a> {
    pub hw: features::HwFeatures,
    pub granules: &'a crate::granule::GranuleTable<'a>,
    pub mem: &'a dyn crate::mem::Memory,
    pub el3: &'a dyn crate::el3::El3,
    pub vmids: &'a crate::realm::VmidSet,
    pub cpu: &'a dyn rec::RealmCpu,
    pub attest: &'a crate::attest::Attest,
}

/// A command's successful outcome: the result registers it defines (x1..x4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Out {
    pub vals: [u64; 4],
    pub n: usize,
}

impl Out {
    pub fn ok(vals: &[u64]) -> Self {
        let mut v = [0; 4];
        v[..vals.len()].copy_from_slice(vals);
        Self { vals: v, n: vals.len() }
    }
}

/// A failure after which the command still defines result registers: with
/// RMI_ERROR_RTT, RMI_RTT_DESTROY and RMI_DATA_DESTROY return `top` in x2 and
/// RMI_RTT_UNMAP_UNPROTECTED returns it in x1 (DEN0137 RMM 1.0, each command's
/// output values; TF-RMM does the same).  Every other failure returns only x0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorOut {
    pub error: RmiError,
    pub out: Out,
}

impl ErrorOut {
    pub fn new(error: RmiError, vals: &[u64]) -> Self {
        Self { error, out: Out::ok(vals) }
    }
}

impl From<RmiError> for ErrorOut {
    fn from(error: RmiError) -> Self {
        Self::new(error, &[])
    }
}

/// `?` on a granule lock failure: ERROR_INPUT (the `*_align`, `*_bound` and
/// `*_state` failure conditions of the granule's command).
impl From<GranuleError> for RmiError {
    fn from(_: GranuleError) -> Self {
        RmiError::Input
    }
}
impl From<PairError> for RmiError {
    fn from(_: PairError) -> Self {
        RmiError::Input
    }
}
impl From<GranuleError> for ErrorOut {
    fn from(e: GranuleError) -> Self {
        RmiError::from(e).into()
    }
}

/// The one place a command's outcome becomes an RmiStatusCode (DEN0137
/// DEN0137 RmiStatusCode: status in bits 7:0, index in 15:8 of x0) and result registers.
fn pack<E: Into<ErrorOut>>(r: Result<Out, E>) -> (u64, Out) {
    match r {
        Ok(o) => (return_code(RmiStatus::Success, 0), o),
        Err(e) => {
            let e = e.into();
            (e.error.return_code(), e.out)
        }
    }
}

pub use shared::abi::rmi::fn_name as name;

/// Handles one request and logs one line about it.  Never fails: an id we do
/// not implement gets SMCCC NOT_SUPPORTED (DEN0028 §5.2) in x0.
pub fn handle(call: &RmiCall, ctx: &RmiContext) -> RmiReturn {
    let mut ret = RmiReturn::for_call(call);
    let x = |n| call.x(n);
    let out = match call.fid {
        rmi::RMI_GRANULE_DELEGATE => Some(pack(granule::delegate(ctx, x(1)))),
        rmi::RMI_GRANULE_UNDELEGATE => Some(pack(granule::undelegate(ctx, x(1)))),
        rmi::RMI_REALM_CREATE => Some(pack(realm::create(ctx, x(1), x(2)))),
        rmi::RMI_REALM_ACTIVATE => Some(pack(realm::activate(ctx, x(1)))),
        rmi::RMI_REALM_DESTROY => Some(pack(realm::destroy(ctx, x(1)))),
        rmi::RMI_REC_CREATE => Some(pack(rec::create(ctx, x(1), x(2), x(3)))),
        rmi::RMI_REC_DESTROY => Some(pack(rec::destroy(ctx, x(1)))),
        rmi::RMI_REC_AUX_COUNT => Some(pack(rec::aux_count(ctx, x(1)))),
        rmi::RMI_REC_ENTER => Some(pack(rec::enter(ctx, x(1), x(2)))),
        rmi::RMI_PSCI_COMPLETE => Some(pack(rec::psci_complete(ctx, x(1), x(2), x(3)))),
        rmi::RMI_RTT_CREATE => Some(pack(rtt::create(ctx, x(1), x(2), x(3), x(4) as i64))),
        rmi::RMI_RTT_DESTROY => Some(pack(rtt::destroy(ctx, x(1), x(2), x(3) as i64))),
        rmi::RMI_RTT_FOLD => Some(pack(rtt::fold(ctx, x(1), x(2), x(3) as i64))),
        rmi::RMI_RTT_READ_ENTRY => Some(pack(rtt::read_entry(ctx, x(1), x(2), x(3) as i64))),
        rmi::RMI_RTT_MAP_UNPROTECTED => Some(pack(rtt::map_unprotected(ctx, x(1), x(2), x(3) as i64, x(4)))),
        rmi::RMI_RTT_UNMAP_UNPROTECTED => Some(pack(rtt::unmap_unprotected(ctx, x(1), x(2), x(3) as i64))),
        rmi::RMI_RTT_INIT_RIPAS => Some(pack(rtt::init_ripas(ctx, x(1), x(2), x(3)))),
        rmi::RMI_RTT_SET_RIPAS => Some(pack(rtt::set_ripas(ctx, x(1), x(2), x(3), x(4)))),
        rmi::RMI_DATA_CREATE => Some(pack(data::create(ctx, x(1), x(2), x(3), x(4), x(5)))),
        rmi::RMI_DATA_CREATE_UNKNOWN => Some(pack(data::create_unknown(ctx, x(1), x(2), x(3)))),
        rmi::RMI_DATA_DESTROY => Some(pack(data::destroy(ctx, x(1), x(2)))),
        _ => None,
    };
    if let Some((x0, o)) = out {
        ret.regs[0] = x0;
        ret.regs[1..1 + o.n].copy_from_slice(&o.vals[..o.n]);
        let name = name(call.fid).unwrap_or("?");
        if x0 == 0 {
            // Successes are routine (a Realm build makes thousands): debug only,
            // except REC_ENTER which is the hot path and logs nothing.
            if call.fid != rmi::RMI_REC_ENTER {
                log::debug!("{name}({:#x}, {:#x}, {:#x}) -> ok", x(1), x(2), x(3));
            }
        } else {
            log::info!("{name}({:#x}, {:#x}, {:#x}, {:#x}) -> {} index {}", x(1), x(2), x(3), x(4), status_name(x0), (x0 >> 8) & 0xff);
        }
        return ret;
    }
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

pub use shared::abi::rmi::status_name;

#[cfg(any(test, feature = "fuzzing"))]
pub mod test_support;
#[cfg(test)]
mod tests_commands;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use shared::abi::rmi::version as ver;

    fn call(regs: &[u64]) -> RmiReturn {
        let w = test_support::World::new();
        handle(&RmiCall::from_regs(regs), &w.ctx())
    }

    fn ctx_hw() -> features::HwFeatures {
        test_support::HW
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
        assert_eq!(r.regs[1], features::register0(&ctx_hw()));
        assert_eq!(r.regs[1] & 0xff, 48);
        let r = call(&[rmi::RMI_FEATURES as u64, 7]);
        assert_eq!(r.regs[..2], [0, 0]);
    }

    #[test]
    fn unknown_and_unimplemented_ids_are_not_supported() {
        for fid in [0xC400_0156, 0xC400_0160, 0xC400_0163, 0xC400_0170, 0xC400_018E, 0x8400_0000, 0, u32::MAX] {
            let r = call(&[fid as u64, 1, 2, 3, 0x4444, 5, 6, 7]);
            assert_eq!(r.regs, [NOT_SUPPORTED, 0, 0, 0, 0x4444], "{fid:#x}");
        }
    }

    #[test]
    fn sve_hint_and_upper_x0_bits_are_not_part_of_the_id() {
        let c = RmiCall::from_regs(&[0xdead_0000_0000_0000 | (rmi::RMI_VERSION | SVE_HINT) as u64, ver(1, 0)]);
        assert_eq!(c.fid, rmi::RMI_VERSION);
        assert!(c.sve_hint);
        let w = test_support::World::new();
        assert_eq!(handle(&c, &w.ctx()).regs[0], 0);
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
