//! Typed RMI calls for a Host (DEN0137 RMM 1.0, B4.3 "RMI commands"): one
//! function per command, arguments in the spec's order, over any
//! [`Conduit`] (the `smc` on the target, a fake RMM in host tests).
//!
//! Every command answers x0 = RmiStatusCode (B4.4: status in bits 7:0, index
//! in bits 15:8) and its outputs in x1..x4; [`Ret`] keeps them raw so the
//! bad-input tests can compare exact codes.

use shared::abi::rmi::*;
use shared::smccc::Conduit;

/// x0..x4 of an RMI answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ret {
    pub x0: u64,
    pub x: [u64; 4],
}

#[allow(dead_code)]
impl Ret {
    pub fn ok(&self) -> bool {
        self.x0 == 0
    }
    /// The RmiStatusCode fields (status, index).
    pub fn status(&self) -> (u8, u8) {
        (self.x0 as u8, (self.x0 >> 8) as u8)
    }
    /// x1..x4 by register number.
    pub fn x(&self, n: usize) -> u64 {
        self.x[n - 1]
    }
}

/// An RMI status with its index, e.g. `ERROR_RTT(2)`, for log lines.
pub struct StatusName(pub u64);

impl core::fmt::Display for StatusName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self.0 {
            u64::MAX => return f.write_str("NOT_SUPPORTED"),
            x => match x & 0xff {
                0 => "SUCCESS",
                1 => "ERROR_INPUT",
                2 => "ERROR_REALM",
                3 => "ERROR_REC",
                4 => "ERROR_RTT",
                _ => "UNKNOWN",
            },
        };
        match (self.0 >> 8) & 0xff {
            0 => f.write_str(name),
            i => write!(f, "{name}({i})"),
        }
    }
}

/// The RMI a Host sees, over `C` (every command, whether a mode uses it yet or not).
#[allow(dead_code)]
pub struct Rmi<'c, C: Conduit> {
    pub conduit: &'c C,
}

#[allow(dead_code)]
impl<'c, C: Conduit> Rmi<'c, C> {
    pub fn new(conduit: &'c C) -> Self {
        Self { conduit }
    }

    pub fn call(&self, fid: u32, args: &[u64]) -> Ret {
        let r = self.conduit.call(fid, shared::smccc::args(args));
        Ret { x0: r[0], x: [r[1], r[2], r[3], r[4]] }
    }

    pub fn version(&self, requested: u64) -> Ret {
        self.call(RMI_VERSION, &[requested])
    }
    pub fn features(&self, index: u64) -> Ret {
        self.call(RMI_FEATURES, &[index])
    }
    pub fn granule_delegate(&self, addr: u64) -> Ret {
        self.call(RMI_GRANULE_DELEGATE, &[addr])
    }
    pub fn granule_undelegate(&self, addr: u64) -> Ret {
        self.call(RMI_GRANULE_UNDELEGATE, &[addr])
    }
    pub fn realm_create(&self, rd: u64, params: u64) -> Ret {
        self.call(RMI_REALM_CREATE, &[rd, params])
    }
    pub fn realm_activate(&self, rd: u64) -> Ret {
        self.call(RMI_REALM_ACTIVATE, &[rd])
    }
    pub fn realm_destroy(&self, rd: u64) -> Ret {
        self.call(RMI_REALM_DESTROY, &[rd])
    }
    pub fn rec_create(&self, rd: u64, rec: u64, params: u64) -> Ret {
        self.call(RMI_REC_CREATE, &[rd, rec, params])
    }
    pub fn rec_destroy(&self, rec: u64) -> Ret {
        self.call(RMI_REC_DESTROY, &[rec])
    }
    pub fn rec_aux_count(&self, rd: u64) -> Ret {
        self.call(RMI_REC_AUX_COUNT, &[rd])
    }
    pub fn rec_enter(&self, rec: u64, run: u64) -> Ret {
        self.call(RMI_REC_ENTER, &[rec, run])
    }
    pub fn psci_complete(&self, calling: u64, target: u64, status: u64) -> Ret {
        self.call(RMI_PSCI_COMPLETE, &[calling, target, status])
    }
    pub fn rtt_create(&self, rd: u64, rtt: u64, ipa: u64, level: i64) -> Ret {
        self.call(RMI_RTT_CREATE, &[rd, rtt, ipa, level as u64])
    }
    pub fn rtt_destroy(&self, rd: u64, ipa: u64, level: i64) -> Ret {
        self.call(RMI_RTT_DESTROY, &[rd, ipa, level as u64])
    }
    pub fn rtt_fold(&self, rd: u64, ipa: u64, level: i64) -> Ret {
        self.call(RMI_RTT_FOLD, &[rd, ipa, level as u64])
    }
    /// x1 = walk level, x2 = RmiRttEntryState, x3 = descriptor/address, x4 = RIPAS.
    pub fn rtt_read_entry(&self, rd: u64, ipa: u64, level: i64) -> Ret {
        self.call(RMI_RTT_READ_ENTRY, &[rd, ipa, level as u64])
    }
    pub fn rtt_map_unprotected(&self, rd: u64, ipa: u64, level: i64, desc: u64) -> Ret {
        self.call(RMI_RTT_MAP_UNPROTECTED, &[rd, ipa, level as u64, desc])
    }
    pub fn rtt_unmap_unprotected(&self, rd: u64, ipa: u64, level: i64) -> Ret {
        self.call(RMI_RTT_UNMAP_UNPROTECTED, &[rd, ipa, level as u64])
    }
    pub fn rtt_init_ripas(&self, rd: u64, base: u64, top: u64) -> Ret {
        self.call(RMI_RTT_INIT_RIPAS, &[rd, base, top])
    }
    pub fn rtt_set_ripas(&self, rd: u64, rec: u64, base: u64, top: u64) -> Ret {
        self.call(RMI_RTT_SET_RIPAS, &[rd, rec, base, top])
    }
    pub fn data_create(&self, rd: u64, data: u64, ipa: u64, src: u64, flags: u64) -> Ret {
        self.call(RMI_DATA_CREATE, &[rd, data, ipa, src, flags])
    }
    pub fn data_create_unknown(&self, rd: u64, data: u64, ipa: u64) -> Ret {
        self.call(RMI_DATA_CREATE_UNKNOWN, &[rd, data, ipa])
    }
    pub fn data_destroy(&self, rd: u64, ipa: u64) -> Ret {
        self.call(RMI_DATA_DESTROY, &[rd, ipa])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names() {
        assert_eq!(StatusName(0).to_string(), "SUCCESS");
        assert_eq!(StatusName(0x204).to_string(), "ERROR_RTT(2)");
        assert_eq!(StatusName(1).to_string(), "ERROR_INPUT");
        assert_eq!(StatusName(u64::MAX).to_string(), "NOT_SUPPORTED");
        let r = Ret { x0: 0x304, x: [0; 4] };
        assert_eq!(r.status(), (4, 3));
    }
}
