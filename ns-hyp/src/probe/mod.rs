//! The probe client: one call (or short sequence) per firmware service, each
//! reported as `probe <name>: ok <detail>` or `probe <name>: FAIL <detail>`,
//! then `probes: <N> ok, <M> failed`.
//!
//! Everything goes through a [`Conduit`] and a [`Mailbox`], so the whole list
//! runs on the host against a fake firmware (see `fake.rs`), including every
//! error path.  Bad-input probes send what another world must reject and then
//! check that a valid call still works (the firmware survived).

// An `Outcome`'s both arms carry a line of text by value (there is no
// allocator); a few hundred bytes on a 32 KiB stack is fine.
#![allow(clippy::result_large_err)]

use crate::ffa::{self, CallError, FfaClient, HYPERVISOR_ID};
use crate::firmware::{self, Firmware};
use crate::line::Line;
use crate::report::Sink;
use crate::rmi;
use core::fmt::Write;
use shared::abi::ffa::partition_info::{PartitionInfo, PartitionInfoIterator};
use shared::abi::ffa::{FfaError, UuidHelper, Version};
use shared::smccc::Conduit;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

/// What a probe prints after `ok ` / `FAIL `.
pub type Detail = Line<400>;
type Outcome = Result<Detail, Detail>;

macro_rules! detail {
    ($($arg:tt)*) => { Line::from_fmt(format_args!($($arg)*)) };
}

/// The echo SP's id when partition discovery did not name one
/// (tfa-integration/sp/echo.dts `id`).
pub const ECHO_SP_ID_DEFAULT: u16 = 0x8001;
/// An id no partition has, for `bad_direct_req_missing_partition`.
pub const MISSING_PARTITION_ID: u16 = 0x8123;
/// An unallocated id in the FF-A range (owner 4, function 0xFF), for `bad_unknown_ffa_id`.
pub const UNKNOWN_FFA_FID: u32 = 0x8400_00FF;
/// RMI interface version we ask for: 1.0 (DEN0137 B4.4 RmiInterfaceVersion).
pub const RMI_REQUESTED_VERSION: u64 = shared::abi::rmi::RMI_ABI_VERSION;
/// Payload of the echo round trip (x3..x7).
pub const ECHO_PAYLOAD: [u64; 5] = [
    0x5155_4144_0000_0001,
    0x5155_4144_0000_0002,
    0x5155_4144_0000_0003,
    0x5155_4144_0000_0004,
    0x5155_4144_0000_0005,
];

/// Our RX/TX buffer pair (FFA_RXTX_MAP): where they are, and read access to RX.
pub trait Mailbox {
    /// Physical (= our identity-mapped virtual) addresses of RX and TX.
    fn rx_tx_pa(&self) -> (u64, u64);
    /// Size of each buffer in 4 KiB pages.
    fn pages(&self) -> u32;
    /// Runs `f` over the RX buffer's current contents.
    fn with_rx<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;
}

pub struct Prober<'a, C: Conduit, M: Mailbox, S: Sink> {
    conduit: &'a C,
    ffa: FfaClient<'a, C>,
    mailbox: &'a M,
    sink: &'a mut S,
    firmware: Firmware,
    /// The version the first FFA_VERSION returned (follow-ups must match it).
    ffa_version: Option<Version>,
    /// The echo SP, once partition discovery found one.
    echo_id: Option<u16>,
    ok: u32,
    failed: u32,
}

impl<'a, C: Conduit, M: Mailbox, S: Sink> Prober<'a, C, M, S> {
    pub fn new(conduit: &'a C, mailbox: &'a M, sink: &'a mut S, firmware: Firmware) -> Self {
        Self {
            conduit,
            ffa: FfaClient::new(conduit),
            mailbox,
            sink,
            firmware,
            ffa_version: None,
            echo_id: None,
            ok: 0,
            failed: 0,
        }
    }

    /// Runs every probe in order; returns (ok, failed).
    #[inline(never)]
    pub fn run_all(&mut self) -> (u32, u32) {
        self.run("smccc_version", Self::smccc_version);
        self.run("ffa_version", Self::ffa_version);
        self.run("ffa_id_get", Self::ffa_id_get);
        self.run("ffa_spm_id_get", Self::ffa_spm_id_get);
        self.run("bad_unknown_ffa_id", Self::bad_unknown_ffa_id);
        // Must come before ffa_rxtx_map: it checks the no-RX-buffer error.
        self.run("bad_partition_info_before_rxtx", Self::bad_partition_info_before_rxtx);
        self.run("ffa_rxtx_map", Self::ffa_rxtx_map);
        self.run("ffa_partition_info_get", Self::ffa_partition_info_get);
        self.run("ffa_direct_req_echo", Self::ffa_direct_req_echo);
        self.run("bad_direct_req_missing_partition", Self::bad_direct_req_missing_partition);
        self.run("rmi_version", Self::rmi_version);
        self.run("rmi_features", Self::rmi_features);
        self.sink.line(format_args!("probes: {} ok, {} failed", self.ok, self.failed));
        (self.ok, self.failed)
    }

    fn run(&mut self, name: &str, probe: fn(&mut Self) -> Outcome) {
        match probe(self) {
            Ok(d) => {
                self.ok += 1;
                self.sink.line(format_args!("probe {}: ok {}", name, d));
            }
            Err(d) => {
                self.failed += 1;
                self.sink.line(format_args!("probe {}: FAIL {}", name, d));
            }
        }
    }

    /// In `--no-tfa` mode every FF-A/RMI call ends in our trap handler and
    /// returns SMCCC NOT_SUPPORTED: that is the expected, clean answer there.
    fn no_firmware(&self, absent_is_not_supported: bool) -> bool {
        self.firmware == Firmware::None && absent_is_not_supported
    }

    fn ffa_failure(&self, e: CallError) -> Outcome {
        if self.no_firmware(e == CallError::SmcccNotSupported) {
            Ok(detail!("no SPMC (NOT_SUPPORTED)"))
        } else {
            Err(detail!("{}", e))
        }
    }

    /// A valid call after a bad one: FFA_VERSION again must give the same answer.
    fn follow_up(&self, mut d: Detail) -> Outcome {
        match (self.ffa.version(ffa::REQUESTED_VERSION), self.ffa_version) {
            (Ok(v), Some(first)) if v == first => {
                let _ = write!(d, "; then FFA_VERSION ok {}", v);
                Ok(d)
            }
            (Ok(v), first) => {
                let _ = write!(d, "; then FFA_VERSION gave {} (first call: {:?})", v, first);
                Err(d)
            }
            (Err(CallError::SmcccNotSupported), None) if self.firmware == Firmware::None => Ok(d),
            (Err(e), _) => {
                let _ = write!(d, "; then FFA_VERSION failed: {}", e);
                Err(d)
            }
        }
    }

    fn smccc_version(&mut self) -> Outcome {
        match self.firmware {
            Firmware::TfA { smccc_version } => {
                let (maj, min) = firmware::smccc_major_minor(smccc_version);
                if maj >= 1 && (maj > 1 || min >= 1) {
                    Ok(detail!("{}.{}", maj, min))
                } else {
                    Err(detail!("{}.{} (SMCCC_VERSION needs >= 1.1)", maj, min))
                }
            }
            Firmware::None => Ok(detail!("no EL3 (NOT_SUPPORTED)")),
        }
    }

    fn ffa_version(&mut self) -> Outcome {
        match self.ffa.version(ffa::REQUESTED_VERSION) {
            Ok(v) if v.0 == 1 => {
                self.ffa_version = Some(v);
                Ok(detail!("{}", v))
            }
            Ok(v) => Err(detail!("{} (major must be 1)", v)),
            Err(e) => self.ffa_failure(e),
        }
    }

    fn ffa_id_get(&mut self) -> Outcome {
        match self.ffa.id_get() {
            Ok(HYPERVISOR_ID) => Ok(detail!("{:#06x}", HYPERVISOR_ID)),
            Ok(id) => Err(detail!("{:#06x} (expected {:#06x}, the NS physical endpoint)", id, HYPERVISOR_ID)),
            Err(e) => self.ffa_failure(e),
        }
    }

    fn ffa_spm_id_get(&mut self) -> Outcome {
        match self.ffa.spm_id_get() {
            Ok(id) if shared::abi::ffa::is_secure_endpoint(id) => Ok(detail!("{:#06x}", id)),
            Ok(id) => Err(detail!("{:#06x} (an SPMC id has bit 15 set)", id)),
            Err(e) => self.ffa_failure(e),
        }
    }

    fn bad_unknown_ffa_id(&mut self) -> Outcome {
        // DEN0077 v1.2: an unimplemented FF-A function returns FFA_ERROR
        // NOT_SUPPORTED; if the SPMD refuses it before any SPMC sees it (TF-A
        // routes only the allocated FF-A range to the SPMD), the SMCCC
        // NOT_SUPPORTED (-1) in x0 is also a correct rejection.
        let first = match self.ffa.raw(UNKNOWN_FFA_FID, &[]) {
            Err(CallError::Ffa(FfaError::NotSupported)) => "FFA_ERROR NOT_SUPPORTED (-1)",
            Err(CallError::SmcccNotSupported) if self.firmware == Firmware::None => {
                return Ok(detail!("no SPMC (NOT_SUPPORTED)"));
            }
            Err(CallError::SmcccNotSupported) => "SMCCC NOT_SUPPORTED (rejected before the SPMC)",
            Err(e) => return Err(detail!("{:#x} -> {} (expected NOT_SUPPORTED)", UNKNOWN_FFA_FID, e)),
            Ok(_) => return Err(detail!("{:#x} -> success (expected NOT_SUPPORTED)", UNKNOWN_FFA_FID)),
        };
        // The same id asked through FFA_FEATURES, which the SPMD forwards, so the
        // SPMC itself must say it does not implement it (DEN0077 v1.2 §13.3).
        match self.ffa.raw(shared::abi::ffa::fid::FFA_FEATURES, &[UNKNOWN_FFA_FID as u64]) {
            Err(CallError::Ffa(FfaError::NotSupported)) => {}
            Err(e) => return Err(detail!("FFA_FEATURES({:#x}) -> {} (expected FFA_ERROR NOT_SUPPORTED)", UNKNOWN_FFA_FID, e)),
            Ok(_) => return Err(detail!("FFA_FEATURES({:#x}) -> success (expected NOT_SUPPORTED)", UNKNOWN_FFA_FID)),
        }
        let d = detail!(
            "{:#x} -> {}; FFA_FEATURES({:#x}) -> FFA_ERROR NOT_SUPPORTED (-1)",
            UNKNOWN_FFA_FID,
            first,
            UNKNOWN_FFA_FID
        );
        self.follow_up(d)
    }

    fn bad_partition_info_before_rxtx(&mut self) -> Outcome {
        // With no RX buffer mapped the SPMC cannot deliver descriptors; Hafnium
        // and Quadrant's spmc answer FFA_ERROR BUSY (FFA_PARTITION_INFO_GET,
        // DEN0077 v1.2: BUSY = the caller's RX buffer is not available).
        let d = match self.ffa.partition_info_get_all() {
            Err(CallError::Ffa(FfaError::Busy)) => detail!("FFA_ERROR BUSY (-4)"),
            Err(e) if self.no_firmware(e == CallError::SmcccNotSupported) => {
                return Ok(detail!("no SPMC (NOT_SUPPORTED)"));
            }
            Err(e) => return Err(detail!("{} (expected FFA_ERROR BUSY)", e)),
            Ok((count, _)) => {
                // Hand the buffer back so later probes start clean.
                let _ = self.ffa.rx_release();
                return Err(detail!("succeeded with {} partition(s) before RXTX_MAP (expected BUSY)", count));
            }
        };
        self.follow_up(d)
    }

    fn ffa_rxtx_map(&mut self) -> Outcome {
        let (rx, tx) = self.mailbox.rx_tx_pa();
        let pages = self.mailbox.pages();
        match self.ffa.rxtx_map(rx, tx, pages) {
            Ok(()) => Ok(detail!("rx {:#x} tx {:#x} {} page(s)", rx, tx, pages)),
            Err(e) => self.ffa_failure(e),
        }
    }

    fn ffa_partition_info_get(&mut self) -> Outcome {
        let (count, size) = match self.ffa.partition_info_get_all() {
            Ok(cs) => cs,
            Err(e) => return self.ffa_failure(e),
        };
        // The descriptors are ours until FFA_RX_RELEASE: read them, then release
        // whatever the parse gave.
        let parsed = self.parse_partitions(count, size);
        let release = self.ffa.rx_release();
        let mut d = parsed?;
        match release {
            Ok(()) => Ok(d),
            Err(e) => {
                let _ = write!(d, "; FFA_RX_RELEASE failed: {}", e);
                Err(d)
            }
        }
    }

    /// Checks and prints the v1.1 partition information descriptors (24 bytes
    /// each: id, execution context count, properties, UUID) in the RX buffer.
    fn parse_partitions(&mut self, count: u32, size: u32) -> Outcome {
        // Descriptor layout of the version both sides understand (DEN0077 v1.2
        // FFA_VERSION: the caller uses the lower of the two).
        let version = self.ffa_version.unwrap_or(ffa::REQUESTED_VERSION);
        if version < Version(1, 1) {
            return Err(detail!("FF-A {} descriptors are not parsed (need >= 1.1)", version));
        }
        let version = if version > Version(1, 2) { Version(1, 2) } else { version };
        if count == 0 {
            return Err(detail!("0 partitions (expected >= 1)"));
        }
        if size as usize != PartitionInfo::DESC_SIZE {
            return Err(detail!("descriptor size {} (expected {})", size, PartitionInfo::DESC_SIZE));
        }
        let mut echo = None;
        let res = self.mailbox.with_rx(|rx| {
            let mut d = detail!("{} partition(s):", count);
            let iter = PartitionInfoIterator::new(version, rx, count as usize)
                .map_err(|_| detail!("{} partition(s) of {} bytes do not fit the RX buffer", count, size))?;
            for info in iter {
                let info = info.map_err(|_| detail!("malformed partition descriptor"))?;
                // The UUID string as DEN0077 bytes read, and the same value as the
                // four 32-bit cells a partition manifest's `uuid` property holds
                // (Hafnium's binding: the cells are the w1..w4 register form).
                let c = UuidHelper::to_u32_regs(info.uuid);
                let _ = write!(
                    d,
                    " {:#06x} {} (cells {:#010x} {:#010x} {:#010x} {:#010x})",
                    info.partition_id, info.uuid, c[0], c[1], c[2], c[3]
                );
                if echo.is_none() && info.props.support_direct_req_rec && shared::abi::ffa::is_secure_endpoint(info.partition_id) {
                    echo = Some(info.partition_id);
                }
            }
            Ok(d)
        });
        if res.is_ok() {
            self.echo_id = echo;
        }
        res
    }

    fn echo_target(&self) -> u16 {
        self.echo_id.unwrap_or(ECHO_SP_ID_DEFAULT)
    }

    fn ffa_direct_req_echo(&mut self) -> Outcome {
        let dst = self.echo_target();
        match self.ffa.direct_req64(HYPERVISOR_ID, dst, ECHO_PAYLOAD) {
            Ok(words) if words == ECHO_PAYLOAD => Ok(detail!("{:#06x} echoed 5 words", dst)),
            Ok(words) => Err(detail!("{:#06x} answered {:#x?} (expected the request's x3..x7)", dst, words)),
            Err(e) => self.ffa_failure(e),
        }
    }

    fn bad_direct_req_missing_partition(&mut self) -> Outcome {
        // DEN0077 v1.2 FFA_MSG_SEND_DIRECT_REQ: an invalid receiver id gives
        // FFA_ERROR INVALID_PARAMETERS.
        let d = match self.ffa.direct_req64(HYPERVISOR_ID, MISSING_PARTITION_ID, ECHO_PAYLOAD) {
            Err(CallError::Ffa(FfaError::InvalidParameters)) => {
                detail!("to {:#06x} -> FFA_ERROR INVALID_PARAMETERS (-2)", MISSING_PARTITION_ID)
            }
            Err(e) if self.no_firmware(e == CallError::SmcccNotSupported) => {
                return Ok(detail!("no SPMC (NOT_SUPPORTED)"));
            }
            Err(e) => return Err(detail!("to {:#06x} -> {} (expected INVALID_PARAMETERS)", MISSING_PARTITION_ID, e)),
            Ok(_) => return Err(detail!("to {:#06x} -> a direct response (expected INVALID_PARAMETERS)", MISSING_PARTITION_ID)),
        };
        self.follow_up(d)
    }

    fn rmi_failure(&self, e: rmi::RmiError) -> Outcome {
        if self.no_firmware(e == rmi::RmiError::SmcccNotSupported) {
            Ok(detail!("no RMM (NOT_SUPPORTED)"))
        } else {
            Err(detail!("{}", e))
        }
    }

    fn rmi_version(&mut self) -> Outcome {
        match rmi::version(self.conduit, RMI_REQUESTED_VERSION) {
            Ok(v) if v.status == 0 && v.lower.major == 1 => {
                Ok(detail!("{} (lower {}, higher {})", v.lower, v.lower, v.higher))
            }
            Ok(v) => Err(detail!(
                "{} lower {} higher {} (expected RMI_SUCCESS with 1.0)",
                rmi::status_name(v.status),
                v.lower,
                v.higher
            )),
            Err(e) => self.rmi_failure(e),
        }
    }

    fn rmi_features(&mut self) -> Outcome {
        match rmi::features(self.conduit, 0) {
            Ok(reg) => Ok(detail!("reg0 {:#x} (S2SZ {})", reg, rmi::feature0_s2sz(reg))),
            Err(e) => self.rmi_failure(e),
        }
    }
}
