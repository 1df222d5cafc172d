//! Realm Management Interface (DEN0137 RMM 1.0, chapter B4): function ids,
//! status codes and the version encoding.

pub const RMI_VERSION: u32 = 0xC400_0150;
pub const RMI_GRANULE_DELEGATE: u32 = 0xC400_0151;
pub const RMI_GRANULE_UNDELEGATE: u32 = 0xC400_0152;
pub const RMI_DATA_CREATE: u32 = 0xC400_0153;
pub const RMI_DATA_CREATE_UNKNOWN: u32 = 0xC400_0154;
pub const RMI_DATA_DESTROY: u32 = 0xC400_0155;
pub const RMI_REALM_ACTIVATE: u32 = 0xC400_0157;
pub const RMI_REALM_CREATE: u32 = 0xC400_0158;
pub const RMI_REALM_DESTROY: u32 = 0xC400_0159;
pub const RMI_REC_CREATE: u32 = 0xC400_015A;
pub const RMI_REC_DESTROY: u32 = 0xC400_015B;
pub const RMI_REC_ENTER: u32 = 0xC400_015C;
pub const RMI_RTT_CREATE: u32 = 0xC400_015D;
pub const RMI_RTT_DESTROY: u32 = 0xC400_015E;
pub const RMI_RTT_MAP_UNPROTECTED: u32 = 0xC400_015F;
pub const RMI_RTT_READ_ENTRY: u32 = 0xC400_0161;
pub const RMI_RTT_UNMAP_UNPROTECTED: u32 = 0xC400_0162;
pub const RMI_PSCI_COMPLETE: u32 = 0xC400_0164;
pub const RMI_FEATURES: u32 = 0xC400_0165;
pub const RMI_RTT_FOLD: u32 = 0xC400_0166;
pub const RMI_REC_AUX_COUNT: u32 = 0xC400_0167;
pub const RMI_RTT_INIT_RIPAS: u32 = 0xC400_0168;
pub const RMI_RTT_SET_RIPAS: u32 = 0xC400_0169;

/// The range the RMMD forwards to the RMM (TF-A `RMI_FNUM_MIN/MAX_VALUE`).
pub const fn is_rmi(fid: u32) -> bool {
    fid >= 0xC400_0150 && fid <= 0xC400_018F
}

/// RmiStatusCode (DEN0137 B4.4.x): low byte status, next byte index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RmiStatus {
    Success = 0,
    ErrorInput = 1,
    ErrorRealm = 2,
    ErrorRec = 3,
    ErrorRtt = 4,
}

/// Packs a status and its index into the x0 value of an RMI return.
pub const fn return_code(status: RmiStatus, index: u8) -> u64 {
    (status as u64) | ((index as u64) << 8)
}

/// RmiInterfaceVersion: major in 30:16, minor in 15:0.
pub const fn version(major: u16, minor: u16) -> u64 {
    ((major as u64) << 16) | minor as u64
}
pub const RMI_ABI_VERSION: u64 = version(1, 0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_packing() {
        assert_eq!(return_code(RmiStatus::ErrorRtt, 2), 0x204);
        assert_eq!(return_code(RmiStatus::Success, 0), 0);
        assert_eq!(RMI_ABI_VERSION, 0x10000);
    }

    #[test]
    fn rmi_range() {
        assert!(is_rmi(RMI_VERSION));
        assert!(is_rmi(RMI_RTT_SET_RIPAS));
        assert!(!is_rmi(crate::abi::rmm_el3::RMM_BOOT_COMPLETE));
    }
}
