//! The RMI calls the Normal world makes to discover the RMM (DEN0137 RMM 1.0,
//! B4.3 "RMI commands": RMI_VERSION, RMI_FEATURES).  The RMMD at EL3 relays
//! them to the RMM at R-EL2 and the results come back in x0..x2.

use core::fmt;
use shared::abi::rmi;
use shared::smccc::Conduit;

/// What came back instead of a successful answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmiError {
    /// SMCCC NOT_SUPPORTED (-1): no RMMD/RMM behind the conduit.
    SmcccNotSupported,
    /// An RmiStatusCode other than SUCCESS (DEN0137 B4.4: status in bits 7:0,
    /// index in bits 15:8), with the raw x0.
    Status(u64),
}

pub use shared::abi::rmi::status_name;

impl fmt::Display for RmiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RmiError::SmcccNotSupported => f.write_str("SMCCC NOT_SUPPORTED"),
            RmiError::Status(x0) => write!(f, "{} (x0={:#x})", status_name(*x0), x0),
        }
    }
}

/// An RmiInterfaceVersion (DEN0137 B4.4: major in bits 30:16, minor in 15:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmiVersion {
    pub major: u16,
    pub minor: u16,
}

impl RmiVersion {
    pub fn from_reg(v: u64) -> Self {
        Self { major: ((v >> 16) & 0x7fff) as u16, minor: v as u16 }
    }
}

impl fmt::Display for RmiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Answer to RMI_VERSION: the status and the lower/higher revisions the RMM
/// implements (both are returned even when the status is ERROR_INPUT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionReply {
    pub status: u64,
    pub lower: RmiVersion,
    pub higher: RmiVersion,
}

fn check_not_supported(x0: u64) -> Result<(), RmiError> {
    if x0 == shared::abi::smccc_id::NOT_SUPPORTED || x0 as u32 == u32::MAX {
        Err(RmiError::SmcccNotSupported)
    } else {
        Ok(())
    }
}

/// RMI_VERSION with the requested interface version in x1 (DEN0137, RMI_VERSION).
pub fn version<C: Conduit>(c: &C, requested: u64) -> Result<VersionReply, RmiError> {
    let r = c.call(rmi::RMI_VERSION, shared::smccc::args(&[requested]));
    check_not_supported(r[0])?;
    Ok(VersionReply { status: r[0], lower: RmiVersion::from_reg(r[1]), higher: RmiVersion::from_reg(r[2]) })
}

/// RMI_FEATURES(index): the feature register in x1 (DEN0137, RMI_FEATURES).
pub fn features<C: Conduit>(c: &C, index: u64) -> Result<u64, RmiError> {
    let r = c.call(rmi::RMI_FEATURES, shared::smccc::args(&[index]));
    check_not_supported(r[0])?;
    if r[0] != rmi::return_code(rmi::RmiStatus::Success, 0) {
        return Err(RmiError::Status(r[0]));
    }
    Ok(r[1])
}

/// RmiFeatureRegister0.S2SZ (bits 7:0): the largest IPA width the RMM supports.
pub fn feature0_s2sz(reg: u64) -> u64 {
    reg & 0xff
}
