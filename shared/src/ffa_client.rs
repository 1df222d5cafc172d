//! FF-A client calls of a Normal-world physical endpoint (the hypervisor or
//! the OS without one, id 0), DEN0077 v1.2 (setup/discovery and direct
//! messaging interfaces), for every Normal-world image (ns-hyp, the FF-A test
//! payload).  Requests are encoded and replies decoded with the `arm-ffa`
//! crate (`Interface::to_regs/from_regs`), or by raw registers for the v1.2
//! calls the crate decodes differently; every reply that is not the one the
//! call expects becomes a [`CallError`], so a misbehaving SPMC/SPMD shows up
//! as a failed check, never as a panic.
//!
//! (Moved from ns-hyp/src/ffa.rs, which it extends: direct requests 32-bit
//! and REQ2, FEATURES, RUN, PARTITION_INFO_GET with a UUID/flags and _REGS,
//! RXTX_UNMAP.)

use crate::abi::ffa::interface_args::{DirectMsgArgs, RxTxAddr, SuccessArgs, VersionFlags, VersionQueryType};
use crate::abi::ffa::partition_info::PartitionInfoGetFlags;
use crate::abi::ffa::{FfaError, Interface, UuidHelper, Version, VersionOut, fid};
use crate::smccc::{Conduit, SmcResult};
use core::fmt;

/// The version this client asks for (DEN0077 v1.2).
pub const REQUESTED_VERSION: Version = Version(1, 2);

/// Our endpoint id: the hypervisor at the physical FF-A instance is id 0
/// (DEN0077 v1.2, FFA_ID_GET).
pub const HYPERVISOR_ID: u16 = 0;

/// Why a call did not give the answer the caller wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// FFA_ERROR with this status code (DEN0077 v1.2, FFA_ERROR status codes).
    Ffa(FfaError),
    /// SMCCC NOT_SUPPORTED (-1) in x0 (DEN0028, return codes): nothing above us implements
    /// the id (no EL3 firmware, no SPMD, or the SPMD refused it itself).
    SmcccNotSupported,
    /// A well-formed FF-A reply of the wrong kind, or one we could not decode:
    /// x0..x3 are kept for the log.
    Unexpected([u64; 4]),
}

/// Spec name of an FF-A status code (DEN0077 v1.2, FF-A status codes).
pub fn error_name(e: FfaError) -> &'static str {
    match e {
        FfaError::NotSupported => "NOT_SUPPORTED",
        FfaError::InvalidParameters => "INVALID_PARAMETERS",
        FfaError::NoMemory => "NO_MEMORY",
        FfaError::Busy => "BUSY",
        FfaError::Interrupted => "INTERRUPTED",
        FfaError::Denied => "DENIED",
        FfaError::Retry => "RETRY",
        FfaError::Aborted => "ABORTED",
        FfaError::NoData => "NO_DATA",
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Ffa(e) => write!(f, "FFA_ERROR {} ({})", error_name(*e), i32::from(*e)),
            CallError::SmcccNotSupported => f.write_str("SMCCC NOT_SUPPORTED"),
            CallError::Unexpected(r) => {
                write!(f, "unexpected reply x0={:#x} x1={:#x} x2={:#x} x3={:#x}", r[0], r[1], r[2], r[3])
            }
        }
    }
}

/// SMCCC NOT_SUPPORTED, as an SMC32 callee returns it in w0 (an SMC64 one in x0).
pub fn is_smccc_not_supported(x0: u64) -> bool {
    x0 as u32 == u32::MAX
}

fn first4(r: &SmcResult) -> [u64; 4] {
    [r[0], r[1], r[2], r[3]]
}

/// Decodes a reply: FFA_ERROR becomes `Err`, anything else the crate can parse is `Ok`.
pub fn decode(version: Version, r: &SmcResult) -> Result<Interface, CallError> {
    if is_smccc_not_supported(r[0]) {
        return Err(CallError::SmcccNotSupported);
    }
    match Interface::from_regs(version, r) {
        Ok(Interface::Error { error_code, .. }) => Err(CallError::Ffa(error_code)),
        Ok(i) => Ok(i),
        Err(_) => Err(CallError::Unexpected(first4(r))),
    }
}

/// First 32-bit result word (w2) of an FFA_SUCCESS (either width).
fn success_w2(i: &Interface, r: &SmcResult) -> Result<u32, CallError> {
    match i {
        Interface::Success { args: SuccessArgs::Args32(a), .. } => Ok(a[0]),
        Interface::Success { args: SuccessArgs::Args64(a), .. } => Ok(a[0] as u32),
        _ => Err(CallError::Unexpected(first4(r))),
    }
}

/// The FF-A calls of the Normal-world physical endpoint, over any conduit.
pub struct FfaClient<'a, C: Conduit> {
    conduit: &'a C,
    /// The version used to encode requests and decode replies.  Always 1.2:
    /// our calls use v1.2 register layouts, and `arm-ffa` 0.5 asserts (panics)
    /// when asked to decode an SMC64 FFA_SUCCESS/direct response with < 1.2,
    /// so a peer that negotiated 1.1 must not change it.
    version: Version,
}

impl<'a, C: Conduit> FfaClient<'a, C> {
    pub fn new(conduit: &'a C) -> Self {
        Self { conduit, version: REQUESTED_VERSION }
    }

    /// Sends `req` and returns x0..x17 of the reply.
    pub fn send(&self, req: &Interface) -> SmcResult {
        let mut regs = [0u64; 18];
        req.to_regs(self.version, &mut regs);
        let mut a = [0u64; 17];
        a.copy_from_slice(&regs[1..]);
        self.conduit.call(regs[0] as u32, a)
    }

    /// A call by raw function id (for ids the crate cannot encode, e.g. unallocated ones).
    pub fn raw(&self, fid: u32, list: &[u64]) -> Result<Interface, CallError> {
        let r = self.conduit.call(fid, crate::smccc::args(list));
        decode(self.version, &r)
    }

    fn expect_success(&self, req: &Interface) -> Result<(Interface, SmcResult), CallError> {
        let r = self.send(req);
        let i = decode(self.version, &r)?;
        match i {
            Interface::Success { .. } => Ok((i, r)),
            _ => Err(CallError::Unexpected(first4(&r))),
        }
    }

    /// FFA_VERSION (DEN0077 v1.2): returns the callee's version.  The reply is a
    /// bare version in w0 (bit 31 clear) or NOT_SUPPORTED (-1).
    pub fn version(&self, requested: Version) -> Result<Version, CallError> {
        let req = Interface::Version {
            input_version: requested,
            flags: VersionFlags { query_type: VersionQueryType::Negotiate },
        };
        let r = self.send(&req);
        match VersionOut::try_from(r[0] as u32) {
            Ok(VersionOut::Version(v)) if r[0] >> 32 == 0 => Ok(v),
            Ok(VersionOut::NotSupported) => Err(CallError::SmcccNotSupported),
            _ => Err(CallError::Unexpected(first4(&r))),
        }
    }

    /// FFA_ID_GET (DEN0077 v1.2): our own endpoint id.
    pub fn id_get(&self) -> Result<u16, CallError> {
        let (i, r) = self.expect_success(&Interface::IdGet)?;
        success_w2(&i, &r).map(|w| w as u16)
    }

    /// FFA_SPM_ID_GET (DEN0077 v1.2): the SPMC's id.
    pub fn spm_id_get(&self) -> Result<u16, CallError> {
        let (i, r) = self.expect_success(&Interface::SpmIdGet)?;
        success_w2(&i, &r).map(|w| w as u16)
    }

    /// FFA_RXTX_MAP_64 (DEN0077 v1.2): x1 = TX, x2 = RX, w3 = page count.
    pub fn rxtx_map(&self, rx: u64, tx: u64, pages: u32) -> Result<(), CallError> {
        self.expect_success(&Interface::RxTxMap { addr: RxTxAddr::Addr64 { rx, tx }, page_cnt: pages })
            .map(|_| ())
    }

    /// FFA_PARTITION_INFO_GET (DEN0077 v1.2) with the nil UUID (all
    /// partitions): returns (count, descriptor size) and leaves the descriptors
    /// in our RX buffer, which we then own until FFA_RX_RELEASE.
    pub fn partition_info_get_all(&self) -> Result<(u32, u32), CallError> {
        let req = Interface::PartitionInfoGet {
            uuid: UuidHelper::from_bytes([0; 16]),
            flags: PartitionInfoGetFlags { count_only: false },
        };
        let (i, r) = self.expect_success(&req)?;
        match i {
            Interface::Success { args: SuccessArgs::Args32(a), .. } => Ok((a[0], a[1])),
            _ => Err(CallError::Unexpected(first4(&r))),
        }
    }

    /// FFA_RX_RELEASE (DEN0077 v1.2): hands our RX buffer back to the producer.
    pub fn rx_release(&self) -> Result<(), CallError> {
        self.expect_success(&Interface::RxRelease { vm_id: HYPERVISOR_ID }).map(|_| ())
    }

    /// FFA_MSG_SEND_DIRECT_REQ_64 (DEN0077 v1.2) with five payload words in
    /// x3..x7; expects FFA_MSG_SEND_DIRECT_RESP_64 from `dst` back to `src`
    /// (same spec) and returns its x3..x7.
    pub fn direct_req64(&self, src: u16, dst: u16, payload: [u64; 5]) -> Result<[u64; 5], CallError> {
        let mut words = [0u64; 15];
        words[..5].copy_from_slice(&payload);
        let req = Interface::MsgSendDirectReq { src_id: src, dst_id: dst, args: DirectMsgArgs::Args64(words) };
        let r = self.send(&req);
        match decode(self.version, &r)? {
            Interface::MsgSendDirectResp { src_id, dst_id, args: DirectMsgArgs::Args64(a) }
                if src_id == dst && dst_id == src =>
            {
                let mut out = [0u64; 5];
                out.copy_from_slice(&a[..5]);
                Ok(out)
            }
            _ => Err(CallError::Unexpected(first4(&r))),
        }
    }

    /// Sends raw registers x0..x17 (x0 = function id) and returns the reply.
    pub fn call_regs(&self, regs: &SmcResult) -> SmcResult {
        let mut a = [0u64; 17];
        a.copy_from_slice(&regs[1..]);
        self.conduit.call(regs[0] as u32, a)
    }

    /// The reply if its x0 is `want`; an FFA_ERROR or SMCCC error as such.
    fn expect_fid(&self, r: SmcResult, want: u32) -> Result<SmcResult, CallError> {
        if r[0] as u32 == want && (r[0] >> 32 == 0 || want & (1 << 30) != 0) {
            return Ok(r);
        }
        decode(self.version, &r)?;
        Err(CallError::Unexpected(first4(&r)))
    }

    /// FFA_MSG_SEND_DIRECT_REQ_32 (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_REQ_32): w3..w7 out, the
    /// response's w3..w7 back (it must come from `dst` to `src`).
    pub fn direct_req32(&self, src: u16, dst: u16, payload: [u32; 5]) -> Result<[u32; 5], CallError> {
        let mut r = [0u64; 18];
        r[0] = fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64;
        r[1] = crate::abi::ffa::pack_endpoints(src, dst);
        for (d, s) in r[3..8].iter_mut().zip(payload) {
            *d = s as u64;
        }
        let a = self.expect_fid(self.call_regs(&r), fid::FFA_MSG_SEND_DIRECT_RESP_32)?;
        if a[1] as u32 != crate::abi::ffa::pack_endpoints(dst, src) as u32 {
            return Err(CallError::Unexpected(first4(&a)));
        }
        Ok(core::array::from_fn(|i| a[3 + i] as u32))
    }

    /// FFA_MSG_SEND_DIRECT_REQ2 (DEN0077 v1.2) to the service `uuid`
    /// (16 bytes as in the partition info descriptor; x2 = bytes 0..8, x3 =
    /// bytes 8..16, little-endian) of `dst`: payload in x4..x8, the response's
    /// x4..x8 back.
    pub fn direct_req2(&self, src: u16, dst: u16, uuid: [u8; 16], payload: [u64; 5]) -> Result<[u64; 5], CallError> {
        let mut r = [0u64; 18];
        r[0] = fid::FFA_MSG_SEND_DIRECT_REQ2 as u64;
        r[1] = crate::abi::ffa::pack_endpoints(src, dst);
        r[2] = u64::from_le_bytes(uuid[..8].try_into().unwrap_or([0; 8]));
        r[3] = u64::from_le_bytes(uuid[8..].try_into().unwrap_or([0; 8]));
        r[4..9].copy_from_slice(&payload);
        let a = self.expect_fid(self.call_regs(&r), fid::FFA_MSG_SEND_DIRECT_RESP2)?;
        if a[1] as u32 != crate::abi::ffa::pack_endpoints(dst, src) as u32 {
            return Err(CallError::Unexpected(first4(&a)));
        }
        Ok(core::array::from_fn(|i| a[4 + i]))
    }

    /// FFA_FEATURES (DEN0077 v1.2, FFA_FEATURES) for a function or feature id: w2 of the success.
    pub fn features(&self, id: u32) -> Result<u32, CallError> {
        let mut r = [0u64; 18];
        r[0] = fid::FFA_FEATURES as u64;
        r[1] = id as u64;
        self.expect_fid(self.call_regs(&r), fid::FFA_SUCCESS_32).map(|a| a[2] as u32)
    }

    /// FFA_RUN (DEN0077 v1.2, FFA_RUN): resumes vCPU `vcpu` of partition `id`.
    /// Returns the raw reply (a direct response, FFA_YIELD, ...) unless it is an error.
    pub fn run(&self, id: u16, vcpu: u16) -> Result<SmcResult, CallError> {
        let mut r = [0u64; 18];
        r[0] = fid::FFA_RUN as u64;
        r[1] = ((id as u64) << 16) | vcpu as u64;
        let a = self.call_regs(&r);
        decode(self.version, &a).map(|_| a).or_else(|e| match e {
            CallError::Unexpected(_) => Ok(a),
            e => Err(e),
        })
    }

    /// FFA_PARTITION_INFO_GET (DEN0077 v1.2, FFA_PARTITION_INFO_GET) with a UUID filter and
    /// raw flags (w5): (count, descriptor size).
    pub fn partition_info_get(&self, uuid: [u8; 16], flags: u32) -> Result<(u32, u32), CallError> {
        let mut r = [0u64; 18];
        r[0] = fid::FFA_PARTITION_INFO_GET as u64;
        for (k, w) in uuid.chunks_exact(4).enumerate() {
            r[1 + k] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as u64;
        }
        r[5] = flags as u64;
        self.expect_fid(self.call_regs(&r), fid::FFA_SUCCESS_32).map(|a| (a[2] as u32, a[3] as u32))
    }

    /// FFA_PARTITION_INFO_GET_REGS (DEN0077 v1.2, FFA_PARTITION_INFO_GET_REGS) from descriptor
    /// `start` with UUID info tag `tag`: the FFA_SUCCESS_64 registers.
    pub fn partition_info_get_regs(&self, uuid: [u8; 16], start: u16, tag: u16) -> Result<SmcResult, CallError> {
        let mut r = [0u64; 18];
        r[0] = fid::FFA_PARTITION_INFO_GET_REGS as u64;
        r[1] = u64::from_le_bytes(uuid[..8].try_into().unwrap_or([0; 8]));
        r[2] = u64::from_le_bytes(uuid[8..].try_into().unwrap_or([0; 8]));
        r[3] = start as u64 | (tag as u64) << 16;
        self.expect_fid(self.call_regs(&r), fid::FFA_SUCCESS_64)
    }

    /// FFA_RXTX_UNMAP (DEN0077 v1.2, FFA_RXTX_UNMAP) of endpoint `id`'s buffers (w1[31:16]).
    pub fn rxtx_unmap(&self, id: u16) -> Result<(), CallError> {
        let mut r = [0u64; 18];
        r[0] = fid::FFA_RXTX_UNMAP as u64;
        r[1] = (id as u64) << 16;
        self.expect_fid(self.call_regs(&r), fid::FFA_SUCCESS_32).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever another world puts in x0..x17, decoding reports it and never panics.
    #[test]
    fn decode_never_panics() {
        let patterns: [u64; 5] = [0, 1, u64::MAX, 0x8000_0000_ffff_fffe, 0xdead_beef_0000_0002];
        for base in [0x8400_0000u32, 0xC400_0000] {
            for func in 0x60..=0xff {
                for &p in &patterns {
                    let mut r = [p; 18];
                    r[0] = (base | func) as u64;
                    let _ = decode(REQUESTED_VERSION, &r);
                }
            }
        }
        assert_eq!(decode(REQUESTED_VERSION, &[u64::MAX; 18]), Err(CallError::SmcccNotSupported));
        let mut r = [0u64; 18];
        r[0] = 0x8400_0060;
        r[2] = (-4i32) as u32 as u64;
        assert_eq!(decode(REQUESTED_VERSION, &r), Err(CallError::Ffa(FfaError::Busy)));
        r[2] = 77; // not a status code
        assert!(matches!(decode(REQUESTED_VERSION, &r), Err(CallError::Unexpected(_))));
    }

    #[test]
    fn errors_print_spec_names() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(CallError::Ffa(FfaError::InvalidParameters).to_string(), "FFA_ERROR INVALID_PARAMETERS (-2)");
        assert_eq!(CallError::SmcccNotSupported.to_string(), "SMCCC NOT_SUPPORTED");
    }
}

#[cfg(test)]
mod raw_tests {
    extern crate std;
    use super::*;
    use core::cell::RefCell;
    use std::vec::Vec;

    /// Answers every call with a scripted reply and records the request.
    struct Script {
        replies: RefCell<Vec<SmcResult>>,
        seen: RefCell<Vec<SmcResult>>,
    }

    impl Conduit for Script {
        fn call(&self, f: u32, args: [u64; 17]) -> SmcResult {
            let mut r = [0u64; 18];
            r[0] = f as u64;
            r[1..].copy_from_slice(&args);
            self.seen.borrow_mut().push(r);
            self.replies.borrow_mut().remove(0)
        }
    }

    fn reply(list: &[u64]) -> SmcResult {
        let mut r = [0u64; 18];
        r[..list.len()].copy_from_slice(list);
        r
    }

    fn script(replies: &[SmcResult]) -> Script {
        Script { replies: RefCell::new(replies.to_vec()), seen: RefCell::new(Vec::new()) }
    }

    #[test]
    fn req2_encodes_uuid_and_checks_the_response() {
        let mut uuid = [0u8; 16];
        uuid.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        let ok = reply(&[fid::FFA_MSG_SEND_DIRECT_RESP2 as u64, 0x8002_0000, 0, 0, 1, 2, 3, 4, 5]);
        let wrong_src = reply(&[fid::FFA_MSG_SEND_DIRECT_RESP2 as u64, 0x8001_0000]);
        let err = reply(&[fid::FFA_ERROR as u64, 0, (-6i32) as u32 as u64]);
        let s = script(&[ok, wrong_src, err]);
        let c = FfaClient::new(&s);
        assert_eq!(c.direct_req2(0, 0x8002, uuid, [9; 5]), Ok([1, 2, 3, 4, 5]));
        let seen = s.seen.borrow()[0];
        assert_eq!(&seen[..4], &[fid::FFA_MSG_SEND_DIRECT_REQ2 as u64, 0x0000_8002, 0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);
        assert!(matches!(c.direct_req2(0, 0x8002, uuid, [0; 5]), Err(CallError::Unexpected(_))));
        assert_eq!(c.direct_req2(0, 0x8002, uuid, [0; 5]), Err(CallError::Ffa(FfaError::Denied)));
    }

    #[test]
    fn req32_truncates_and_checks() {
        let s = script(&[reply(&[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8001_0000, 0, 7, 8, 9, 10, 11]), reply(&[fid::FFA_SUCCESS_32 as u64])]);
        let c = FfaClient::new(&s);
        assert_eq!(c.direct_req32(0, 0x8001, [7, 8, 9, 10, 11]), Ok([7, 8, 9, 10, 11]));
        assert!(matches!(c.direct_req32(0, 0x8001, [0; 5]), Err(CallError::Unexpected(_))));
    }

    #[test]
    fn features_info_and_run() {
        let s = script(&[
            reply(&[fid::FFA_SUCCESS_32 as u64, 0, 0]),
            reply(&[fid::FFA_ERROR as u64, 0, (-1i32) as u32 as u64]),
            reply(&[fid::FFA_SUCCESS_32 as u64, 0, 3, 24]),
            reply(&[fid::FFA_ERROR as u64, 0, (-4i32) as u32 as u64]),
            reply(&[fid::FFA_SUCCESS_64 as u64, 0, 2 | 2 << 16 | 24 << 48]),
            reply(&[fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64, 0x8002_0000]),
            reply(&[fid::FFA_ERROR as u64, 0, (-6i32) as u32 as u64]),
            reply(&[u64::MAX]),
        ]);
        let c = FfaClient::new(&s);
        assert_eq!(c.features(fid::FFA_RXTX_MAP_64), Ok(0));
        assert_eq!(c.features(0x8400_0086), Err(CallError::Ffa(FfaError::NotSupported)));
        assert_eq!(c.partition_info_get([0; 16], 0), Ok((3, 24)));
        assert_eq!(c.partition_info_get([0; 16], 0), Err(CallError::Ffa(FfaError::Busy)));
        assert_eq!(c.partition_info_get_regs([0; 16], 0, 0).map(|r| r[2] >> 48), Ok(24));
        assert_eq!(c.run(0x8002, 1).map(|r| r[0]), Ok(fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64));
        assert_eq!(c.run(0x8002, 1), Err(CallError::Ffa(FfaError::Denied)));
        assert_eq!(c.rxtx_unmap(0), Err(CallError::SmcccNotSupported));
        assert_eq!(s.seen.borrow()[5][1], 0x8002_0001);
    }
}
