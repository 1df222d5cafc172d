//! FFA_PARTITION_INFO_GET (DEN0077 v1.2, FFA_PARTITION_INFO_GET and
//! the partition information descriptor).
//!
//! Descriptor (little-endian): u16 partition id, u16 execution context count,
//! u32 properties, and from v1.1 a 16-byte UUID: 24 bytes (v1.0: 8 bytes).
//! Properties: bit 0 receives direct requests, bit 1 sends them, bit 2
//! indirect messages, bit 3 supports receipt of notifications (v1.1+; the
//! manifest's `notification-support`), bits 5:4 id type (0: PE endpoint),
//! bit 6/7 receives VM created/destroyed messages (v1.2; the manifest's
//! `vm-availability-messages`), bit 8 AArch64, bit 9/10 receives/sends
//! direct request 2 (v1.2).

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
/// "Partition must be informed about each VM that is created / destroyed
/// by the hypervisor" (DEN0077 v1.2, partition properties, bits 6 and 7).
pub const PROP_VM_CREATED: u32 = 1 << 6;
pub const PROP_VM_DESTROYED: u32 = 1 << 7;

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
        if m.vm_availability_messages & crate::partition::manifest::VM_CREATED != 0 {
            props |= PROP_VM_CREATED;
        }
        if m.vm_availability_messages & crate::partition::manifest::VM_DESTROYED != 0 {
            props |= PROP_VM_DESTROYED;
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

/// Most EL3 logical partitions of the SPMD we keep (TF-A's EL3_SPMD_MAX_NUM_LP).
pub const MAX_LOGICAL: usize = 5;

/// One EL3 logical partition of the SPMD (TF-A `ENABLE_SPMD_LP=1`), as its
/// partition information descriptor said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogicalPartition {
    pub id: u16,
    pub contexts: u16,
    pub properties: u32,
    pub uuid: Uuid,
}

/// The SPMD's logical partitions, fixed once booted.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogicalPartitions {
    items: [LogicalPartition; MAX_LOGICAL],
    len: usize,
}

impl LogicalPartitions {
    pub fn as_slice(&self) -> &[LogicalPartition] {
        &self.items[..self.len]
    }
}

/// Reads the descriptors of an FFA_PARTITION_INFO_GET_REGS answer (the
/// SPMD's, about its logical partitions: TF-A
/// `spmd_el3_populate_logical_partition_info`) into `out` from `out[start..]`
/// on.  Returns the index of the next descriptor to ask for, if the answer
/// says there are more.  Anything malformed (not FFA_SUCCESS_64, not 24-byte
/// descriptors, indices that do not add up, a non-secure id) ends the list:
/// hostile registers never panic.
pub fn read_info_regs(r: &Regs, out: &mut LogicalPartitions) -> Option<u16> {
    if r[0] != shared::abi::ffa::fid::FFA_SUCCESS_64 as u64 {
        return None;
    }
    let last = (r[2] & 0xffff) as usize;
    let current = ((r[2] >> 16) & 0xffff) as usize;
    let size = (r[2] >> 48) as usize;
    let start = out.len;
    if size != DESC_SIZE_V1_1 || current < start || current > last || current - start >= REGS_PER_CALL {
        return None;
    }
    for n in 0..=(current - start) {
        let info = r[3 + 3 * n];
        let (lo, hi) = (r[4 + 3 * n], r[5 + 3 * n]);
        let lp = LogicalPartition {
            id: info as u16,
            contexts: (info >> 16) as u16,
            properties: (info >> 32) as u32,
            uuid: Uuid([lo as u32, (lo >> 32) as u32, hi as u32, (hi >> 32) as u32]),
        };
        if !shared::abi::ffa::is_secure_endpoint(lp.id) || lp.contexts == 0 || lp.uuid.is_nil() {
            return None;
        }
        let slot = out.items.get_mut(out.len)?;
        *slot = lp;
        out.len += 1;
    }
    (current < last).then_some(current as u16 + 1)
}

/// The descriptor of logical partition `lp` for a caller of FF-A `version`.
fn logical_descriptor(lp: &LogicalPartition, version: u32) -> ([u8; DESC_SIZE_V1_1], usize) {
    let mut d = [0u8; DESC_SIZE_V1_1];
    d[0..2].copy_from_slice(&lp.id.to_le_bytes());
    d[2..4].copy_from_slice(&lp.contexts.to_le_bytes());
    if version < 0x1_0001 {
        // v1.0: bits 31:3 reserved.
        d[4..8].copy_from_slice(&(lp.properties & 0x7).to_le_bytes());
        (d, DESC_SIZE_V1_0)
    } else {
        d[4..8].copy_from_slice(&lp.properties.to_le_bytes());
        d[8..24].copy_from_slice(&lp.uuid.to_bytes());
        (d, DESC_SIZE_V1_1)
    }
}

/// What one reported descriptor describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// Partition index, the UUID to report.
    Sp(usize, Uuid),
    /// Index into the SPMD's logical partitions.
    Logical(usize),
}

/// Most descriptors one PARTITION_INFO_GET can report.
const MAX_ENTRIES: usize = MAX_PARTITIONS * crate::partition::manifest::MAX_UUIDS + MAX_LOGICAL;
/// FFA_PARTITION_INFO_GET_REGS: descriptors per call (x3..x17, 3 registers each).
const REGS_PER_CALL: usize = 5;

impl Spmc {
    /// The (partition index, UUID) pairs a query for `uuid` reports, in
    /// partition order: the Nil UUID matches every partition, and a v1.1+
    /// caller gets one descriptor per UUID of a multi-service partition
    /// (DEN0077 v1.2, FFA_PARTITION_INFO_GET); a v1.0 caller one per partition.
    fn info_entries(&self, uuid: Uuid, version: u32) -> ([Entry; MAX_ENTRIES], usize) {
        let mut out = [Entry::Logical(0); MAX_ENTRIES];
        let mut n = 0;
        for i in 0..self.count {
            let Some(p) = self.partition(i) else { continue };
            let uuids = if version < 0x1_0001 { &p.manifest.uuids()[..1] } else { p.manifest.uuids() };
            for u in uuids {
                if (uuid.is_nil() || *u == uuid) && n < MAX_ENTRIES {
                    out[n] = Entry::Sp(i, *u);
                    n += 1;
                    if !uuid.is_nil() {
                        break;
                    }
                }
            }
        }
        // Then the SPMD's EL3 logical partitions (Hafnium's SPMC adds them
        // too, from the SPMD's FFA_PARTITION_INFO_GET_REGS answer).
        for (j, lp) in self.logical.as_slice().iter().enumerate() {
            if (uuid.is_nil() || lp.uuid == uuid) && n < MAX_ENTRIES {
                out[n] = Entry::Logical(j);
                n += 1;
            }
        }
        (out, n)
    }

    /// The descriptor of `e` for a caller of FF-A `version`.
    fn entry_descriptor(&self, e: Entry, version: u32) -> Option<([u8; DESC_SIZE_V1_1], usize)> {
        match e {
            Entry::Sp(i, u) => self.partition(i).map(|p| descriptor(&p.manifest, u, version)),
            Entry::Logical(j) => self.logical.as_slice().get(j).map(|lp| logical_descriptor(lp, version)),
        }
    }

    /// The SPMD's EL3 logical partitions, asked at boot (see [`read_info_regs`]).
    pub fn set_logical_partitions(&mut self, lps: LogicalPartitions) {
        self.logical = lps;
    }

    pub fn logical_partitions(&self) -> &[LogicalPartition] {
        self.logical.as_slice()
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
        for &e in &entries[..count] {
            let Some((d, n)) = self.entry_descriptor(e, version) else { continue };
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
        for (n, &e) in entries[start..=current].iter().enumerate() {
            let Some((d, _)) = self.entry_descriptor(e, version) else { continue };
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

    fn regs(list: &[u64]) -> Regs {
        let mut r = [0; 18];
        r[..list.len()].copy_from_slice(list);
        r
    }

    const LP_UUID: Uuid = Uuid([0x5f4a1b6e, 0x4c2d9e83, 0xa1f07b36, 0x92d8c415]);

    fn lsp_answer() -> Regs {
        // One LSP, as TF-A's SPMD answers: last 0, current 0, 24-byte descriptors.
        regs(&[
            shared::abi::ffa::fid::FFA_SUCCESS_64 as u64,
            0,
            24 << 48,
            0xffc0 | 1 << 16 | 0x102 << 32,
            0x4c2d9e83_5f4a1b6e,
            0x92d8c415_a1f07b36,
        ])
    }

    #[test]
    fn spmd_logical_partitions_are_read_from_its_answer() {
        let mut lps = LogicalPartitions::default();
        assert_eq!(read_info_regs(&lsp_answer(), &mut lps), None);
        assert_eq!(lps.as_slice(), &[LogicalPartition { id: 0xffc0, contexts: 1, properties: 0x102, uuid: LP_UUID }]);
        // None (TF-A without ENABLE_SPMD_LP answers NOT_SUPPORTED).
        let mut none = LogicalPartitions::default();
        let err = regs(&[shared::abi::ffa::fid::FFA_ERROR as u64, 0, (-1i32) as u32 as u64]);
        assert_eq!(read_info_regs(&err, &mut none), None);
        assert!(none.as_slice().is_empty());
        // More to come: ask from index 1.
        let mut more = LogicalPartitions::default();
        let mut a = lsp_answer();
        a[2] = 3 | 24 << 48;
        assert_eq!(read_info_regs(&a, &mut more), Some(1));
        // Hostile answers: wrong size, indices, ids.
        for bad in [
            { let mut a = lsp_answer(); a[2] = 8 << 48; a },
            { let mut a = lsp_answer(); a[2] = 1 << 16 | 24 << 48; a },
            { let mut a = lsp_answer(); a[2] = 0xffff | 0xffff << 16 | 24 << 48; a },
            { let mut a = lsp_answer(); a[3] = 0x0001 | 1 << 16; a },
            { let mut a = lsp_answer(); a[4] = 0; a[5] = 0; a },
        ] {
            let mut l = LogicalPartitions::default();
            assert_eq!(read_info_regs(&bad, &mut l), None);
            assert!(l.as_slice().is_empty(), "{bad:x?}");
        }
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..10_000 {
            let mut r = [0u64; 18];
            for v in r.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = x;
            }
            r[0] = shared::abi::ffa::fid::FFA_SUCCESS_64 as u64;
            let mut l = LogicalPartitions::default();
            let _ = read_info_regs(&r, &mut l);
        }
    }

    #[test]
    fn the_full_manifest_reports_notifications() {
        let m = PartitionManifest::parse(include_bytes!("../../../tests/data/sp_full.dtb"), 4).unwrap();
        assert!(m.notification_support);
        let (d, _) = descriptor(&m, m.uuid, 0x1_0002);
        assert_ne!(props(&d) & PROP_NOTIFICATIONS, 0);
    }
}
