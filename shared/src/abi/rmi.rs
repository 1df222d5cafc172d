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

/// RmiFeatureRegister0, what RMI_FEATURES(0) returns (DEN0137 RMM 1.0,
/// RmiFeatureRegister0 type): S2SZ 7:0, LPA2 8, SVE_EN 9, SVE_VL 13:10,
/// NUM_BPS 19:14, NUM_WPS 25:20, PMU_EN 26, PMU_NUM_CTRS 31:27, HASH_SHA_256
/// 32, HASH_SHA_512 33.  One definition for rmm (which encodes it) and
/// ns-hyp (which decodes it).
pub mod feature0 {
    pub const S2SZ_SHIFT: u32 = 0;
    pub const S2SZ_MASK: u64 = 0xff;
    pub const LPA2: u64 = 1 << 8;
    pub const SVE_EN: u64 = 1 << 9;
    pub const NUM_BPS_SHIFT: u32 = 14;
    pub const NUM_WPS_SHIFT: u32 = 20;
    /// NUM_BPS and NUM_WPS are 6 bits wide.
    pub const NUM_BPS_WPS_MASK: u64 = 0x3f;
    pub const PMU_EN: u64 = 1 << 26;
    pub const HASH_SHA_256: u64 = 1 << 32;
    pub const HASH_SHA_512: u64 = 1 << 33;
}

/// The range the RMMD forwards to the RMM (TF-A `RMI_FNUM_MIN/MAX_VALUE`).
pub const fn is_rmi(fid: u32) -> bool {
    fid >= 0xC400_0150 && fid <= 0xC400_018F
}

/// RmiStatusCode (DEN0137 RMM 1.0): low byte status, next byte index.
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

/// Why an RMI command failed: the non-SUCCESS RmiStatusCode values
/// (DEN0137 RMM 1.0, RmiStatusCode), in the spec's words, with the index the
/// spec gives each (status in bits 7:0 of x0, index in bits 15:8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmiError {
    /// RMI_ERROR_INPUT: an input value caused the command to fail.  Index 0.
    Input,
    /// RMI_ERROR_REALM: an attribute of a Realm does not match the expected
    /// value.  Index 0 (the only one RMM 1.0 uses).
    Realm,
    /// RMI_ERROR_REC: an attribute of a REC does not match the expected
    /// value.  Index 0.
    Rec,
    /// RMI_ERROR_RTT: an RTT walk ended at, or the entry at fault is in, the
    /// RTT of this level.  The index is the level's low 8 bits (level -1,
    /// possible with LPA2, reads 0xff).
    Rtt(u8),
}

impl RmiError {
    /// RMI_ERROR_RTT at RTT `level`.
    pub const fn rtt(level: i64) -> Self {
        RmiError::Rtt(level as u8)
    }

    /// The status field.
    pub const fn status(self) -> RmiStatus {
        match self {
            RmiError::Input => RmiStatus::ErrorInput,
            RmiError::Realm => RmiStatus::ErrorRealm,
            RmiError::Rec => RmiStatus::ErrorRec,
            RmiError::Rtt(_) => RmiStatus::ErrorRtt,
        }
    }

    /// The index field.
    pub const fn index(self) -> u8 {
        match self {
            RmiError::Rtt(level) => level,
            _ => 0,
        }
    }

    /// The x0 value of the RMI return that reports this error.
    pub const fn return_code(self) -> u64 {
        return_code(self.status(), self.index())
    }
}

/// The spec's name of an RMI function id, for log lines.
pub fn fn_name(fid: u32) -> Option<&'static str> {
    Some(match fid {
        RMI_VERSION => "RMI_VERSION",
        RMI_GRANULE_DELEGATE => "RMI_GRANULE_DELEGATE",
        RMI_GRANULE_UNDELEGATE => "RMI_GRANULE_UNDELEGATE",
        RMI_DATA_CREATE => "RMI_DATA_CREATE",
        RMI_DATA_CREATE_UNKNOWN => "RMI_DATA_CREATE_UNKNOWN",
        RMI_DATA_DESTROY => "RMI_DATA_DESTROY",
        RMI_REALM_ACTIVATE => "RMI_REALM_ACTIVATE",
        RMI_REALM_CREATE => "RMI_REALM_CREATE",
        RMI_REALM_DESTROY => "RMI_REALM_DESTROY",
        RMI_REC_CREATE => "RMI_REC_CREATE",
        RMI_REC_DESTROY => "RMI_REC_DESTROY",
        RMI_REC_ENTER => "RMI_REC_ENTER",
        RMI_RTT_CREATE => "RMI_RTT_CREATE",
        RMI_RTT_DESTROY => "RMI_RTT_DESTROY",
        RMI_RTT_MAP_UNPROTECTED => "RMI_RTT_MAP_UNPROTECTED",
        RMI_RTT_READ_ENTRY => "RMI_RTT_READ_ENTRY",
        RMI_RTT_UNMAP_UNPROTECTED => "RMI_RTT_UNMAP_UNPROTECTED",
        RMI_PSCI_COMPLETE => "RMI_PSCI_COMPLETE",
        RMI_FEATURES => "RMI_FEATURES",
        RMI_RTT_FOLD => "RMI_RTT_FOLD",
        RMI_REC_AUX_COUNT => "RMI_REC_AUX_COUNT",
        RMI_RTT_INIT_RIPAS => "RMI_RTT_INIT_RIPAS",
        RMI_RTT_SET_RIPAS => "RMI_RTT_SET_RIPAS",
        _ => return None,
    })
}

/// The spec's name of the status field (bits 7:0) of an RmiStatusCode in x0.
pub fn status_name(x0: u64) -> &'static str {
    match x0 & 0xff {
        0 => "RMI_SUCCESS",
        1 => "RMI_ERROR_INPUT",
        2 => "RMI_ERROR_REALM",
        3 => "RMI_ERROR_REC",
        4 => "RMI_ERROR_RTT",
        _ => "unknown status",
    }
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
    fn error_packing() {
        assert_eq!(RmiError::Input.return_code(), 1);
        assert_eq!(RmiError::Realm.return_code(), 2);
        assert_eq!(RmiError::Rec.return_code(), 3);
        assert_eq!(RmiError::rtt(2).return_code(), 0x204);
        assert_eq!(RmiError::rtt(3), RmiError::Rtt(3));
        assert_eq!(RmiError::rtt(-1).return_code(), 0xff04);
        for e in [RmiError::Input, RmiError::Realm, RmiError::Rec, RmiError::rtt(1)] {
            assert_eq!(e.return_code() & 0xff, e.status() as u64);
            assert_eq!(e.return_code() >> 8, e.index() as u64);
            assert_ne!(status_name(e.return_code()), "unknown status");
        }
    }

    #[test]
    fn rmi_range() {
        assert!(is_rmi(RMI_VERSION));
        assert!(is_rmi(RMI_RTT_SET_RIPAS));
        assert!(!is_rmi(crate::abi::rmm_el3::RMM_BOOT_COMPLETE));
    }
}

// ---------------------------------------------------------------------------
// Realm creation and execution ABI (DEN0137 RMM 1.0, B4.4 "RMI types").
// Layouts are the spec's: every structure is one 4 KiB granule (or half of
// one) with fields at fixed offsets; unnamed space is reserved.  zerocopy
// structs so both the RMM and a Host can read and write them as bytes.
// ---------------------------------------------------------------------------

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// RmiHashAlgorithm.
pub const RMI_HASH_SHA_256: u8 = 0;
pub const RMI_HASH_SHA_512: u8 = 1;

/// RmiRipas.
pub const RMI_EMPTY: u64 = 0;
pub const RMI_RAM: u64 = 1;
pub const RMI_DESTROYED: u64 = 2;

/// RmiRttEntryState (what RMI_RTT_READ_ENTRY reports in x2).
pub const RMI_UNASSIGNED: u64 = 0;
pub const RMI_ASSIGNED: u64 = 1;
pub const RMI_TABLE: u64 = 2;

/// RmiDataFlags bit 0 (RmiDataMeasureContent).
pub const RMI_NO_MEASURE_CONTENT: u64 = 0;
pub const RMI_MEASURE_CONTENT: u64 = 1;

/// RmiRealmFlags bits.
pub const RMI_REALM_FLAGS_LPA2: u64 = 1 << 0;
pub const RMI_REALM_FLAGS_SVE: u64 = 1 << 1;
pub const RMI_REALM_FLAGS_PMU: u64 = 1 << 2;

/// RmiRecCreateFlags bit 0: the REC starts runnable.
pub const RMI_REC_FLAG_RUNNABLE: u64 = 1 << 0;

/// RmiRecEnterFlags.
pub const RMI_REC_ENTER_EMUL_MMIO: u64 = 1 << 0;
pub const RMI_REC_ENTER_INJECT_SEA: u64 = 1 << 1;
pub const RMI_REC_ENTER_TRAP_WFI: u64 = 1 << 2;
pub const RMI_REC_ENTER_TRAP_WFE: u64 = 1 << 3;
pub const RMI_REC_ENTER_RIPAS_RESPONSE: u64 = 1 << 4;

/// RmiResponse (RmiRecEnter.flags.ripas_response).
pub const RMI_ACCEPT: u64 = 0;
pub const RMI_REJECT: u64 = 1;

/// RmiRecExitReason.
pub const RMI_EXIT_SYNC: u64 = 0;
pub const RMI_EXIT_IRQ: u64 = 1;
pub const RMI_EXIT_FIQ: u64 = 2;
pub const RMI_EXIT_PSCI: u64 = 3;
pub const RMI_EXIT_RIPAS_CHANGE: u64 = 4;
pub const RMI_EXIT_HOST_CALL: u64 = 5;
pub const RMI_EXIT_SERROR: u64 = 6;

/// Most auxiliary granules a REC may need, and GICv3 list registers exchanged.
pub const MAX_REC_AUX_GRANULES: usize = 16;
pub const REC_GIC_NUM_LRS: usize = 16;
/// GPRs a Host sets at REC creation (x0..x7) and exchanges at entry/exit (x0..x30).
pub const REC_CREATE_NR_GPRS: usize = 8;
pub const REC_EXIT_NR_GPRS: usize = 31;

/// RmiRealmParams (DEN0137 RMM 1.0), the RMI_REALM_CREATE input, 4 KiB.
#[repr(C)]
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RmiRealmParams {
    /// 0x000 RmiRealmFlags.
    pub flags: u64,
    /// 0x008 UInt8 s2sz (IPA width), in an 8-byte slot.
    pub s2sz: u64,
    /// 0x010 UInt8 sve_vl.
    pub sve_vl: u64,
    /// 0x018 UInt8 num_bps.
    pub num_bps: u64,
    /// 0x020 UInt8 num_wps.
    pub num_wps: u64,
    /// 0x028 UInt8 pmu_num_ctrs.
    pub pmu_num_ctrs: u64,
    /// 0x030 RmiHashAlgorithm (UInt8).
    pub hash_algo: u64,
    pub _res0: [u8; 0x400 - 0x38],
    /// 0x400 Realm Personalization Value.
    pub rpv: [u8; 64],
    pub _res1: [u8; 0x800 - 0x440],
    /// 0x800 UInt16 vmid.
    pub vmid: u64,
    /// 0x808 Address of the starting-level RTT(s).
    pub rtt_base: u64,
    /// 0x810 Int64 rtt_level_start.
    pub rtt_level_start: i64,
    /// 0x818 UInt32 rtt_num_start.
    pub rtt_num_start: u64,
    pub _res2: [u8; 0x1000 - 0x820],
}

/// RmiRecParams (DEN0137 RMM 1.0), the RMI_REC_CREATE input, 4 KiB.
#[repr(C)]
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RmiRecParams {
    /// 0x000 RmiRecCreateFlags.
    pub flags: u64,
    pub _res0: [u8; 0x100 - 0x8],
    /// 0x100 MPIDR of the REC.
    pub mpidr: u64,
    pub _res1: [u8; 0x200 - 0x108],
    /// 0x200 Program counter.
    pub pc: u64,
    pub _res2: [u8; 0x300 - 0x208],
    /// 0x300 x0..x7.
    pub gprs: [u64; REC_CREATE_NR_GPRS],
    pub _res3: [u8; 0x800 - 0x340],
    /// 0x800 Number of auxiliary granules.
    pub num_aux: u64,
    /// 0x808 Their addresses.
    pub aux: [u64; MAX_REC_AUX_GRANULES],
    pub _res4: [u8; 0x1000 - 0x888],
}

/// RmiRecEnter (DEN0137 RMM 1.0), the first half of RmiRecRun.
#[repr(C)]
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RmiRecEnter {
    /// 0x000 RmiRecEnterFlags.
    pub flags: u64,
    pub _res0: [u8; 0x200 - 0x8],
    /// 0x200 x0..x30.
    pub gprs: [u64; REC_EXIT_NR_GPRS],
    pub _res1: [u8; 0x300 - 0x2f8],
    /// 0x300 ICH_HCR_EL2 value the Host wants.
    pub gicv3_hcr: u64,
    /// 0x308 ICH_LR<n>_EL2 values.
    pub gicv3_lrs: [u64; REC_GIC_NUM_LRS],
    pub _res2: [u8; 0x800 - 0x388],
}

/// RmiRecExit (DEN0137 RMM 1.0), the second half of RmiRecRun.
#[repr(C)]
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RmiRecExit {
    /// 0x000 RmiRecExitReason.
    pub exit_reason: u64,
    pub _res0: [u8; 0x100 - 0x8],
    /// 0x100 ESR_EL2 (sanitised), FAR_EL2, HPFAR_EL2.
    pub esr: u64,
    pub far: u64,
    pub hpfar: u64,
    pub _res1: [u8; 0x200 - 0x118],
    /// 0x200 x0..x30 (only those the exit reason defines).
    pub gprs: [u64; REC_EXIT_NR_GPRS],
    pub _res2: [u8; 0x300 - 0x2f8],
    /// 0x300 GICv3 state.
    pub gicv3_hcr: u64,
    pub gicv3_lrs: [u64; REC_GIC_NUM_LRS],
    pub gicv3_misr: u64,
    pub gicv3_vmcr: u64,
    pub _res3: [u8; 0x400 - 0x398],
    /// 0x400 EL1 physical and virtual timer state.
    pub cntp_ctl: u64,
    pub cntp_cval: u64,
    pub cntv_ctl: u64,
    pub cntv_cval: u64,
    pub _res4: [u8; 0x500 - 0x420],
    /// 0x500 Pending RIPAS change: [base, top) to `ripas_value`.
    pub ripas_base: u64,
    pub ripas_top: u64,
    pub ripas_value: u64,
    pub _res5: [u8; 0x600 - 0x518],
    /// 0x600 Host call immediate (UInt16).
    pub imm: u64,
    pub _res6: [u8; 0x700 - 0x608],
    /// 0x700 RmiPmuOverflowStatus.
    pub pmu_ovf_status: u64,
    pub _res7: [u8; 0x800 - 0x708],
}

/// RmiRecRun: the NS granule passed to RMI_REC_ENTER.
#[repr(C)]
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct RmiRecRun {
    pub enter: RmiRecEnter,
    pub exit: RmiRecExit,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RmiRealmParams>() == 0x1000);
    assert!(offset_of!(RmiRealmParams, hash_algo) == 0x30);
    assert!(offset_of!(RmiRealmParams, rpv) == 0x400);
    assert!(offset_of!(RmiRealmParams, vmid) == 0x800);
    assert!(offset_of!(RmiRealmParams, rtt_num_start) == 0x818);
    assert!(size_of::<RmiRecParams>() == 0x1000);
    assert!(offset_of!(RmiRecParams, mpidr) == 0x100);
    assert!(offset_of!(RmiRecParams, pc) == 0x200);
    assert!(offset_of!(RmiRecParams, gprs) == 0x300);
    assert!(offset_of!(RmiRecParams, num_aux) == 0x800);
    assert!(offset_of!(RmiRecParams, aux) == 0x808);
    assert!(size_of::<RmiRecEnter>() == 0x800);
    assert!(offset_of!(RmiRecEnter, gprs) == 0x200);
    assert!(offset_of!(RmiRecEnter, gicv3_lrs) == 0x308);
    assert!(size_of::<RmiRecExit>() == 0x800);
    assert!(offset_of!(RmiRecExit, esr) == 0x100);
    assert!(offset_of!(RmiRecExit, gprs) == 0x200);
    assert!(offset_of!(RmiRecExit, gicv3_misr) == 0x388);
    assert!(offset_of!(RmiRecExit, cntp_ctl) == 0x400);
    assert!(offset_of!(RmiRecExit, cntv_cval) == 0x418);
    assert!(offset_of!(RmiRecExit, ripas_base) == 0x500);
    assert!(offset_of!(RmiRecExit, imm) == 0x600);
    assert!(offset_of!(RmiRecExit, pmu_ovf_status) == 0x700);
    assert!(size_of::<RmiRecRun>() == 0x1000);
};

impl RmiRealmParams {
    /// All zero (what a Host starts from).
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }
}
impl RmiRecParams {
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }
}
impl RmiRecRun {
    pub fn zeroed() -> Self {
        Self::new_zeroed()
    }
}
