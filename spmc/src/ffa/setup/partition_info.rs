//! FFA_PARTITION_INFO_GET (DEN0077 v1.2, FFA_PARTITION_INFO_GET and
//! the partition information descriptor).
//!
//! Descriptor (little-endian): u16 partition id, u16 execution context count,
//! u32 properties, and from v1.1 a 16-byte UUID: 24 bytes (v1.0: 8 bytes).
//! Properties: bit 0 receives direct requests, bit 1 sends them, bit 2
//! indirect messages, bit 3 supports receipt of notifications (v1.1+; the
//! manifest's `notification-support`), bits 5:4 id type (0: PE endpoint),
//! bit 8 AArch64, bit 9/10 receives/sends direct request 2 (v1.2).

use crate::ffa::calls::Call;
use crate::ffa::{Caller, MAX_PARTITIONS, Platform, Regs, Spmc, codec, error, success};
use crate::partition::{PartitionManifest, Uuid};
use shared::abi::ffa::interface_args::{SuccessArgs, TargetInfo};
use shared::abi::ffa::{FfaError, Interface, UuidHelper};

pub const DESC_SIZE_V1_0: usize = 8;
pub const DESC_SIZE_V1_1: usize = 24;
const PROP_AARCH64: u32 = 1 << 8;
/// "Supports receipt of notifications" (DEN0077 v1.2, partition properties, bit 3).
pub const PROP_NOTIFICATIONS: u32 = 1 << 3;

/// The descriptor of `m` (reporting `uuid`, one of its UUIDs) in the layout a
/// caller of FF-A `version` expects; returns the bytes and how many of them are used.
pub fn descriptor(m: &PartitionManifest, uuid: Uuid, version: u32) -> ([u8; DESC_SIZE_V1_1], usize) {
    let v1_0 = version < 0x1_0001;
    let msg_bits = if v1_0 { 0x7 } else { 0x7 | (1 << 9) | (1 << 10) };
    let mut props = m.messaging_method & msg_bits;
    if !v1_0 {
        props |= PROP_AARCH64;
        if m.notification_support {
            props |= PROP_NOTIFICATIONS;
        }
    }
    let mut d = [0u8; DESC_SIZE_V1_1];
    d[0..2].copy_from_slice(&m.id.to_le_bytes());
    d[2..4].copy_from_slice(&m.execution_ctx_count.to_le_bytes());
    d[4..8].copy_from_slice(&props.to_le_bytes());
    if v1_0 {
        (d, DESC_SIZE_V1_0)
    } else {
        d[8..24].copy_from_slice(&uuid.to_bytes());
        (d, DESC_SIZE_V1_1)
    }
}

/// Most descriptors one PARTITION_INFO_GET can report.
const MAX_ENTRIES: usize = MAX_PARTITIONS * crate::partition::manifest::MAX_UUIDS;
/// FFA_PARTITION_INFO_GET_REGS: descriptors per call (x3..x17, 3 registers each).
const REGS_PER_CALL: usize = 5;

impl Spmc {
    /// The (partition index, UUID) pairs a query for `uuid` reports, in
    /// partition order: the Nil UUID matches every partition, and a v1.1+
    /// caller gets one descriptor per UUID of a multi-service partition
    /// (DEN0077 v1.2, FFA_PARTITION_INFO_GET); a v1.0 caller one per partition.
    fn info_entries(&self, uuid: Uuid, version: u32) -> ([(usize, Uuid); MAX_ENTRIES], usize) {
        let mut out = [(0, Uuid::NIL); MAX_ENTRIES];
        let mut n = 0;
        for i in 0..self.count {
            let Some(p) = self.partition(i) else { continue };
            let uuids = if version < 0x1_0001 { &p.manifest.uuids()[..1] } else { p.manifest.uuids() };
            for u in uuids {
                if (uuid.is_nil() || *u == uuid) && n < MAX_ENTRIES {
                    out[n] = (i, *u);
                    n += 1;
                    if !uuid.is_nil() {
                        break;
                    }
                }
            }
        }
        (out, n)
    }

    /// FFA_PARTITION_INFO_GET for `uuid` (Nil: all), only the count if
    /// `count_only` (w5 bit 0; the other flags are reserved, which decoding
    /// checked).
    fn partition_info_get(&self, caller: Caller, uuid: Uuid, count_only: bool, platform: &mut dyn Platform) -> Regs {
        let version = self.version_of(caller);
        // v1.0 has no flags at all.
        if version < 0x1_0001 && count_only {
            return error(FfaError::InvalidParameters);
        }
        let (entries, count) = self.info_entries(uuid, version);
        if count == 0 {
            // No partition with that UUID.
            return error(FfaError::InvalidParameters);
        }
        if count_only {
            return success(&[count as u64, 0]);
        }
        // The descriptors go into the caller's RX buffer, which must be
        // mapped and free; otherwise BUSY, as Hafnium answers
        // (`vm_mailbox_state_busy`: no RX buffer or RX not released).
        // Held until the buffer is written and marked full: another PE's call
        // for the same endpoint waits, then finds it full (BUSY).
        let mut mailbox = self.mailbox(caller).lock();
        let Some(mb) = *mailbox else {
            return error(FfaError::Busy);
        };
        if mb.rx_full {
            return error(FfaError::Busy);
        }
        let size = if version < 0x1_0001 { DESC_SIZE_V1_0 } else { DESC_SIZE_V1_1 };
        if (count * size) as u64 > mb.size {
            return error(FfaError::NoMemory);
        }
        let mut off = 0u64;
        for &(i, u) in &entries[..count] {
            let Some(p) = self.partition(i) else { continue };
            let (d, n) = descriptor(&p.manifest, u, version);
            platform.write(mb.rx + off, &d[..n]);
            off += n as u64;
        }
        if let Some(m) = &mut *mailbox {
            m.rx_full = true;
        }
        // w3: descriptor size (v1.1+; MBZ for v1.0 callers).
        let w3 = if version < 0x1_0001 { 0 } else { size as u64 };
        success(&[count as u64, w3])
    }

    /// FFA_PARTITION_INFO_GET_REGS (DEN0077 v1.2, FFA_PARTITION_INFO_GET_REGS): the descriptors in
    /// registers, no RX buffer.  x1/x2: UUID (words 0|1, 2|3), x3 [15:0]
    /// start index, [31:16] UUID info tag (0: we never hand out tags).
    /// Answer FFA_SUCCESS_64 with x2 = last index [15:0] | current index
    /// [31:16] | tag [47:32] | descriptor size [63:48], then up to five
    /// descriptors of three registers each from x3.
    fn partition_info_get_regs(&self, caller: Caller, uuid: Uuid, start: usize, tag: u16) -> Regs {
        let version = self.version_of(caller);
        if version < 0x1_0002 {
            return error(FfaError::NotSupported);
        }
        if tag != 0 {
            // A tag we never handed out: the caller must start again (RETRY, as FFA_PARTITION_INFO_GET_REGS says).
            return error(FfaError::Retry);
        }
        let (entries, count) = self.info_entries(uuid, version);
        if count == 0 || start >= count {
            return error(FfaError::InvalidParameters);
        }
        let last = count - 1;
        let current = (start + REGS_PER_CALL - 1).min(last);
        // x2.. of the FFA_SUCCESS_64.
        let mut args = [0u64; 16];
        args[0] = last as u64 | (current as u64) << 16 | (DESC_SIZE_V1_1 as u64) << 48;
        for (n, &(i, u)) in entries[start..=current].iter().enumerate() {
            let Some(p) = self.partition(i) else { continue };
            let (d, _) = descriptor(&p.manifest, u, version);
            let word = |k: usize| u64::from_le_bytes(d[k * 8..k * 8 + 8].try_into().expect("24-byte descriptor"));
            args[1 + 3 * n] = word(0);
            args[2 + 3 * n] = word(1);
            args[3 + 3 * n] = word(2);
        }
        codec::encode(Interface::Success { target_info: TargetInfo::default(), args: SuccessArgs::Args64(args) })
    }
}

/// Our [`Uuid`] (the four 32-bit words of w1..w4) of the crate's.
fn uuid_of(u: shared::abi::ffa::Uuid) -> Uuid {
    Uuid(UuidHelper::to_u32_regs(u))
}

pub(crate) fn ffa_partition_info_get(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let Some(Interface::PartitionInfoGet { uuid, flags }) = c.decoded else { return error(FfaError::InvalidParameters) };
    s.partition_info_get(c.caller, uuid_of(uuid), flags.count_only, platform)
}

pub(crate) fn ffa_partition_info_get_regs(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Some(Interface::PartitionInfoGetRegs { uuid, start_index, info_tag }) = c.decoded else {
        return error(FfaError::InvalidParameters);
    };
    s.partition_info_get_regs(c.caller, uuid_of(uuid), start_index as usize, info_tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::manifest::{MSG_DIRECT_REQ_RECV, MSG_DIRECT_REQ_SEND};

    fn props(d: &[u8]) -> u32 {
        u32::from_le_bytes(d[4..8].try_into().unwrap())
    }

    #[test]
    fn notification_support_sets_bit_3() {
        let u = Uuid([1, 2, 3, 4]);
        let mut m = PartitionManifest::for_test("n", 0x8005, u, 1, MSG_DIRECT_REQ_RECV | MSG_DIRECT_REQ_SEND);
        let (d, _) = descriptor(&m, u, 0x1_0002);
        assert_eq!(props(&d), 0x103, "no notification-support: bit 3 clear");
        m.notification_support = true;
        let (d, _) = descriptor(&m, u, 0x1_0002);
        assert_eq!(props(&d), 0x10b);
        let (d, _) = descriptor(&m, u, 0x1_0001);
        assert_eq!(props(&d), 0x10b, "v1.1 has the bit too");
        let (d, n) = descriptor(&m, u, 0x1_0000);
        assert_eq!((props(&d), n), (0x3, DESC_SIZE_V1_0), "v1.0 descriptors: bits 31:3 reserved");
    }

    #[test]
    fn the_full_manifest_reports_notifications() {
        let m = PartitionManifest::parse(include_bytes!("../../../tests/data/sp_full.dtb"), 4).unwrap();
        assert!(m.notification_support);
        let (d, _) = descriptor(&m, m.uuid, 0x1_0002);
        assert_ne!(props(&d) & PROP_NOTIFICATIONS, 0);
    }
}
