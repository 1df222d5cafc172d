//! FF-A (DEN0077) definitions.  Calls and descriptors come from the `arm-ffa`
//! crate; this module adds the few constants that the crate does not name and
//! that both the SPMC and its clients need.
pub use arm_ffa::*;

/// The FF-A version Quadrant implements: v1.2 (DEN0077 v1.2, FFA_VERSION encoding:
/// bit 31 zero, major in 30:16, minor in 15:0).
pub const QUADRANT_FFA_VERSION: u32 = 0x0001_0002;

pub const fn version_major(v: u32) -> u16 {
    ((v >> 16) & 0x7fff) as u16
}
pub const fn version_minor(v: u32) -> u16 {
    (v & 0xffff) as u16
}

/// Function ids, for code paths (logging, dispatch tables) that want the raw
/// value: the `arm-ffa` crate's [`FuncId`](arm_ffa::FuncId), defined there once.
pub mod fid {
    use arm_ffa::FuncId;

    pub const FFA_ERROR: u32 = FuncId::Error32 as u32;
    pub const FFA_SUCCESS_32: u32 = FuncId::Success32 as u32;
    pub const FFA_SUCCESS_64: u32 = FuncId::Success64 as u32;
    pub const FFA_INTERRUPT: u32 = FuncId::Interrupt32 as u32;
    pub const FFA_VERSION: u32 = FuncId::Version as u32;
    pub const FFA_FEATURES: u32 = FuncId::Features as u32;
    pub const FFA_RX_RELEASE: u32 = FuncId::RxRelease as u32;
    pub const FFA_RXTX_MAP_32: u32 = FuncId::RxTxMap32 as u32;
    pub const FFA_RXTX_MAP_64: u32 = FuncId::RxTxMap64 as u32;
    pub const FFA_RXTX_UNMAP: u32 = FuncId::RxTxUnmap as u32;
    pub const FFA_PARTITION_INFO_GET: u32 = FuncId::PartitionInfoGet as u32;
    pub const FFA_ID_GET: u32 = FuncId::IdGet as u32;
    pub const FFA_MSG_WAIT: u32 = FuncId::MsgWait32 as u32;
    pub const FFA_MSG_SEND2: u32 = FuncId::MsgSend2 as u32;
    pub const FFA_YIELD: u32 = FuncId::Yield32 as u32;
    pub const FFA_RUN: u32 = FuncId::Run32 as u32;
    pub const FFA_MSG_SEND_DIRECT_REQ_32: u32 = FuncId::MsgSendDirectReq32 as u32;
    pub const FFA_MSG_SEND_DIRECT_REQ_64: u32 = FuncId::MsgSendDirectReq64 as u32;
    pub const FFA_MSG_SEND_DIRECT_RESP_32: u32 = FuncId::MsgSendDirectResp32 as u32;
    pub const FFA_MSG_SEND_DIRECT_RESP_64: u32 = FuncId::MsgSendDirectResp64 as u32;
    pub const FFA_SPM_ID_GET: u32 = FuncId::SpmIdGet as u32;
    pub const FFA_SECONDARY_EP_REGISTER_64: u32 = FuncId::SecondaryEpRegister64 as u32;
    pub const FFA_PARTITION_INFO_GET_REGS: u32 = FuncId::PartitionInfoGetRegs as u32;
    pub const FFA_CONSOLE_LOG_32: u32 = FuncId::ConsoleLog32 as u32;
    pub const FFA_CONSOLE_LOG_64: u32 = FuncId::ConsoleLog64 as u32;
    pub const FFA_MSG_SEND_DIRECT_REQ2: u32 = FuncId::MsgSendDirectReq64_2 as u32;
    pub const FFA_MSG_SEND_DIRECT_RESP2: u32 = FuncId::MsgSendDirectResp64_2 as u32;
    pub const FFA_RX_ACQUIRE: u32 = FuncId::RxAcquire as u32;
    pub const FFA_NOTIFICATION_BITMAP_CREATE: u32 = FuncId::NotificationBitmapCreate as u32;
    pub const FFA_NOTIFICATION_BITMAP_DESTROY: u32 = FuncId::NotificationBitmapDestroy as u32;
    pub const FFA_NOTIFICATION_BIND: u32 = FuncId::NotificationBind as u32;
    pub const FFA_NOTIFICATION_UNBIND: u32 = FuncId::NotificationUnbind as u32;
    pub const FFA_NOTIFICATION_SET: u32 = FuncId::NotificationSet as u32;
    pub const FFA_NOTIFICATION_GET: u32 = FuncId::NotificationGet as u32;
    pub const FFA_NOTIFICATION_INFO_GET_32: u32 = FuncId::NotificationInfoGet32 as u32;
    pub const FFA_NOTIFICATION_INFO_GET_64: u32 = FuncId::NotificationInfoGet64 as u32;
    /// The SPMC is done with a secure interrupt the SPMD gave it with
    /// FFA_INTERRUPT (DEN0077 v1.2, FFA_NORMAL_WORLD_RESUME; TF-A ffa_svc.h).
    pub const FFA_NORMAL_WORLD_RESUME: u32 = FuncId::NormalWorldResume32 as u32;

    /// The FF-A range: owner 4 (standard secure), function numbers 0x60..=0xFF.
    pub const fn is_ffa(fid: u32) -> bool {
        (fid & 0xBFFF_FF00) == 0x8400_0000 && (fid & 0xff) >= 0x60
    }
}

/// Framework messages carried in direct requests/responses (DEN0077 v1.2, framework messages):
/// bit 31 of w2 marks a framework message, bits 7:0 its type.
pub mod framework {
    pub const FLAG: u64 = 1 << 31;
    pub const TYPE_MASK: u64 = 0xff;
    pub const PSCI_REQ: u64 = 0x0;
    pub const VM_CREATED_REQ: u64 = 0x4;
    pub const VM_DESTROYED_REQ: u64 = 0x6;
    pub const VERSION_REQ: u64 = 0x8;
    pub const VERSION_RESP: u64 = 0x9;

    /// w2 of an FFA_VERSION framework request as the SPMD sends it.
    pub const VERSION_REQ_W2: u64 = FLAG | VERSION_REQ;
    pub const VERSION_RESP_W2: u64 = FLAG | VERSION_RESP;
}

/// Id the SPMD uses as the sender of framework messages (TF-A `SPMD_DIRECT_MSG_ENDPOINT_ID`).
pub const SPMD_ENDPOINT_ID: u16 = 0xFFFF;

/// Bit 15 of an endpoint id marks a secure endpoint (DEN0077 partition identification).
pub const fn is_secure_endpoint(id: u16) -> bool {
    id & 0x8000 != 0
}

/// Whether `id` names a Normal-world endpoint: the hypervisor (0, or the
/// OS without one) or one of its VMs; bit 15 clear (DEN0077 v1.2,
/// partition identification and discovery, "endpoint ID": secure endpoint
/// ids have bit 15 set, Normal-world ones have it clear).
pub const fn is_ns_endpoint(id: u16) -> bool {
    !is_secure_endpoint(id)
}

/// Packs/unpacks the w1 "source/destination" field of a direct message.
pub const fn pack_endpoints(src: u16, dst: u16) -> u64 {
    ((src as u64) << 16) | dst as u64
}
pub const fn unpack_endpoints(w1: u64) -> (u16, u16) {
    (((w1 >> 16) & 0xffff) as u16, (w1 & 0xffff) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_round_trip() {
        assert_eq!(unpack_endpoints(pack_endpoints(0x8001, 0x0000)), (0x8001, 0));
        assert!(is_secure_endpoint(0x8000));
        assert!(!is_secure_endpoint(0x0001));
        assert!(is_ns_endpoint(0) && is_ns_endpoint(1) && is_ns_endpoint(0x7fff));
        assert!(!is_ns_endpoint(0x8000) && !is_ns_endpoint(0xffff));
    }

    /// The ids as DEN0077 v1.2 numbers them (the values these constants had
    /// before they came from `arm_ffa::FuncId`).
    #[test]
    fn function_ids() {
        assert_eq!(fid::FFA_ERROR, 0x84000060);
        assert_eq!(fid::FFA_SUCCESS_32, 0x84000061);
        assert_eq!(fid::FFA_SUCCESS_64, 0xc4000061);
        assert_eq!(fid::FFA_INTERRUPT, 0x84000062);
        assert_eq!(fid::FFA_VERSION, 0x84000063);
        assert_eq!(fid::FFA_FEATURES, 0x84000064);
        assert_eq!(fid::FFA_RX_RELEASE, 0x84000065);
        assert_eq!(fid::FFA_RXTX_MAP_32, 0x84000066);
        assert_eq!(fid::FFA_RXTX_MAP_64, 0xc4000066);
        assert_eq!(fid::FFA_RXTX_UNMAP, 0x84000067);
        assert_eq!(fid::FFA_PARTITION_INFO_GET, 0x84000068);
        assert_eq!(fid::FFA_ID_GET, 0x84000069);
        assert_eq!(fid::FFA_MSG_WAIT, 0x8400006b);
        assert_eq!(fid::FFA_MSG_SEND2, 0x84000086);
        assert_eq!(fid::FFA_YIELD, 0x8400006c);
        assert_eq!(fid::FFA_RUN, 0x8400006d);
        assert_eq!(fid::FFA_MSG_SEND_DIRECT_REQ_32, 0x8400006f);
        assert_eq!(fid::FFA_MSG_SEND_DIRECT_REQ_64, 0xc400006f);
        assert_eq!(fid::FFA_MSG_SEND_DIRECT_RESP_32, 0x84000070);
        assert_eq!(fid::FFA_MSG_SEND_DIRECT_RESP_64, 0xc4000070);
        assert_eq!(fid::FFA_SPM_ID_GET, 0x84000085);
        assert_eq!(fid::FFA_SECONDARY_EP_REGISTER_64, 0xc4000087);
        assert_eq!(fid::FFA_PARTITION_INFO_GET_REGS, 0xc400008b);
        assert_eq!(fid::FFA_CONSOLE_LOG_32, 0x8400008a);
        assert_eq!(fid::FFA_CONSOLE_LOG_64, 0xc400008a);
        assert_eq!(fid::FFA_MSG_SEND_DIRECT_REQ2, 0xc400008d);
        assert_eq!(fid::FFA_MSG_SEND_DIRECT_RESP2, 0xc400008e);
        assert_eq!(fid::FFA_RX_ACQUIRE, 0x84000084);
        assert_eq!(fid::FFA_NORMAL_WORLD_RESUME, 0x8400007c);
    }

    #[test]
    fn ffa_range() {
        assert!(fid::is_ffa(fid::FFA_VERSION));
        assert!(fid::is_ffa(fid::FFA_MSG_SEND_DIRECT_REQ_64));
        assert!(!fid::is_ffa(0x8400_0000)); // PSCI_VERSION
        assert!(!fid::is_ffa(0xC400_0150)); // RMI_VERSION
    }

    #[test]
    fn version_encoding() {
        assert_eq!(version_major(QUADRANT_FFA_VERSION), 1);
        assert_eq!(version_minor(QUADRANT_FFA_VERSION), 2);
    }
}
