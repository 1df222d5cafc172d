//! RMI_VERSION (DEN0137 RMM 1.0, RMI_VERSION and its "RMI version
//! negotiation"): the Host asks for a revision; we say whether we implement it
//! and which range of revisions we do implement.

use shared::abi::rmi::{self, RmiStatus};

/// The RMI revisions this RMM implements, ascending.
pub const IMPLEMENTED: &[u64] = &[rmi::RMI_ABI_VERSION];

/// RMI_VERSION's outputs: status (x0), lower (x1) and higher (x2) implemented revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiation {
    pub status: RmiStatus,
    pub lower: u64,
    pub higher: u64,
}

/// If `req` is implemented: SUCCESS, lower = `req`, higher = our highest.
/// Otherwise ERROR_INPUT, higher = our highest and lower = the highest one
/// below `req` (or our lowest if none is below), so the Host can pick a
/// revision to fall back to.  A request with bits 63:31 set is no revision at
/// all (RmiInterfaceVersion bits 63:31 are MBZ) and is simply not implemented.
pub fn negotiate(req: u64) -> Negotiation {
    let higher = *IMPLEMENTED.last().expect("at least one revision");
    if IMPLEMENTED.contains(&req) {
        return Negotiation { status: RmiStatus::Success, lower: req, higher };
    }
    let lower = IMPLEMENTED.iter().rev().find(|&&v| v < req).copied().unwrap_or(IMPLEMENTED[0]);
    Negotiation { status: RmiStatus::ErrorInput, lower, higher }
}

/// Formats an RmiInterfaceVersion as `major.minor` (or hex if bits 63:31 are set).
pub struct Display(pub u64);

impl core::fmt::Display for Display {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        if self.0 >> 31 != 0 {
            write!(f, "{:#x}", self.0)
        } else {
            write!(f, "{}.{}", self.0 >> 16, self.0 & 0xffff)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::abi::rmi::version;

    #[test]
    fn exact_match_succeeds() {
        assert_eq!(
            negotiate(version(1, 0)),
            Negotiation { status: RmiStatus::Success, lower: version(1, 0), higher: version(1, 0) }
        );
    }

    #[test]
    fn other_revisions_are_refused_with_our_range() {
        for req in [version(1, 1), version(2, 0), version(0, 9), 0, u64::MAX, 0x8001_0000, version(1, 0) | 1 << 32] {
            let n = negotiate(req);
            assert_eq!(n.status, RmiStatus::ErrorInput, "{req:#x}");
            assert_eq!((n.lower, n.higher), (version(1, 0), version(1, 0)), "{req:#x}");
        }
    }

    #[test]
    fn display() {
        assert_eq!(format!("{}", Display(0x1_0000)), "1.0");
        assert_eq!(format!("{}", Display(0x2_0003)), "2.3");
        assert_eq!(format!("{}", Display(u64::MAX)), "0xffffffffffffffff");
    }
}
