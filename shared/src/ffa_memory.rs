//! Memory transaction descriptors (DEN0077 v1.2, "Memory transaction
//! descriptor", "Endpoint memory access descriptor", "Composite memory
//! region descriptor", "Constituent memory region descriptor"), read from a
//! sender's TX buffer and written into a borrower's RX buffer.  Pure code,
//! here in `shared` so that both sides use one parser: spmc for what
//! reaches it, ns-hyp for its guests' descriptors before it forwards them
//! with their IPAs translated.
//!
//! Our own parser, not `arm-ffa`'s `MemTransactionDesc`: the crate (0.5) reads
//! only the v1.1 header, requires 16-byte endpoint memory access descriptors
//! (v1.2 callers such as Linux 7.3 send 32-byte ones with an implementation
//! defined field), takes the composite offset from the first receiver only,
//! and its packer `unwrap`s on short buffers.  Here every length, offset and
//! count is checked before use; nothing panics on any input.
//!
//! Layouts (little-endian):
//! - v1.0 header, 32 bytes: sender id u16, attributes u8, reserved u8, flags
//!   u32, handle u64, tag u64, reserved u32, receiver count u32; the
//!   16-byte endpoint memory access descriptors follow at offset 32.
//! - v1.1+ header, 48 bytes: sender id u16, attributes u16, flags u32, handle
//!   u64, tag u64, EMAD size u32, EMAD count u32, EMAD array offset u32,
//!   12 reserved bytes (MBZ).
//! - Endpoint memory access descriptor (EMAD): receiver id u16, permissions
//!   u8 (data access [1:0], instruction access [3:2]), flags u8, composite
//!   offset u32, reserved u64; v1.2 EMADs are 32 bytes with 16 bytes of
//!   implementation defined data after them.
//! - Composite memory region descriptor, 16 bytes: total page count u32,
//!   address range count u32, reserved u64; then the constituents, 16 bytes
//!   each: address u64, page count u32, reserved u32.

/// Size of a memory transaction descriptor header by layout.
pub const HEADER_V1_0: usize = 32;
pub const HEADER_V1_1: usize = 48;
/// Endpoint memory access descriptor sizes: v1.0/v1.1, and v1.2 with its
/// implementation defined field.
pub const EMAD_V1_0: usize = 16;
pub const EMAD_V1_2: usize = 32;
pub const COMPOSITE_SIZE: usize = 16;
pub const CONSTITUENT_SIZE: usize = 16;
/// Most receivers of one transaction.
pub const MAX_RECEIVERS: usize = 4;
/// The translation granule: constituents are whole 4 KiB pages.
pub const PAGE: u64 = 0x1000;

/// Why a descriptor was refused; each maps to an FF-A error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescError {
    /// Malformed: sizes, offsets, counts, reserved fields (INVALID_PARAMETERS).
    Invalid,
    /// More receivers than we track (NO_MEMORY, as Hafnium answers).
    TooManyReceivers,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o.checked_add(8)?)?.try_into().ok()?))
}

/// Data access permission of a receiver (EMAD permissions [1:0]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataAccess {
    NotSpecified,
    ReadOnly,
    ReadWrite,
}

/// Instruction access permission of a receiver (EMAD permissions [3:2]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstructionAccess {
    NotSpecified,
    NotExecutable,
    Executable,
}

/// A receiver's access as its endpoint memory access descriptor gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemAccessPermissions {
    pub data: DataAccess,
    pub instruction: InstructionAccess,
}

impl MemAccessPermissions {
    /// Decodes the permissions byte; the reserved encodings (3) are invalid.
    pub fn from_byte(b: u8) -> Option<Self> {
        let data = match b & 0b11 {
            0 => DataAccess::NotSpecified,
            1 => DataAccess::ReadOnly,
            2 => DataAccess::ReadWrite,
            _ => return None,
        };
        let instruction = match (b >> 2) & 0b11 {
            0 => InstructionAccess::NotSpecified,
            1 => InstructionAccess::NotExecutable,
            2 => InstructionAccess::Executable,
            _ => return None,
        };
        if b >> 4 != 0 {
            return None;
        }
        Some(Self { data, instruction })
    }

    /// Whether these (effective) permissions give no more than `other`:
    /// read-only within either, execute only within execute.
    pub fn within(self, other: Self) -> bool {
        let data = self.data == other.data || (self.data == DataAccess::ReadOnly && other.data == DataAccess::ReadWrite);
        let instruction = self.instruction == other.instruction
            || (self.instruction == InstructionAccess::NotExecutable && other.instruction == InstructionAccess::Executable);
        data && instruction
    }

    pub fn to_byte(self) -> u8 {
        let d = match self.data {
            DataAccess::NotSpecified => 0,
            DataAccess::ReadOnly => 1,
            DataAccess::ReadWrite => 2,
        };
        let i = match self.instruction {
            InstructionAccess::NotSpecified => 0,
            InstructionAccess::NotExecutable => 1,
            InstructionAccess::Executable => 2,
        };
        d | i << 2
    }
}

/// One receiver of a transaction (endpoint memory access descriptor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointMemAccess {
    pub receiver: u16,
    pub permissions: MemAccessPermissions,
    /// Memory access permissions descriptor flags (bit 0: non-retrieval
    /// borrower, v1.1+).
    pub flags: u8,
    /// The v1.2 implementation defined field (zero for smaller EMADs).
    pub impdef: [u64; 2],
}

/// Memory region attributes (v1.1+ u16; v1.0 u8): type [5:4] (0 not
/// specified, 1 Device, 2 Normal), cacheability [3:2], shareability [1:0];
/// bit 6 is the NS bit, set by the SPMC in a retrieve response only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRegionAttributes(pub u16);

impl MemRegionAttributes {
    pub const NS: u16 = 1 << 6;
    pub const TYPE_DEVICE: u16 = 1 << 4;
    pub const TYPE_NORMAL: u16 = 2 << 4;

    pub fn memory_type(self) -> u16 {
        self.0 & (3 << 4)
    }
}

/// A parsed transaction descriptor: the header, its receivers, and where the
/// constituents are (as offsets into the buffer it came from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransactionDescriptor {
    /// v1.0 layout (32-byte header) rather than v1.1+.
    pub v1_0: bool,
    pub emad_size: usize,
    pub sender: u16,
    pub attributes: MemRegionAttributes,
    pub flags: u32,
    pub handle: u64,
    pub tag: u64,
    pub receivers: [Option<EndpointMemAccess>; MAX_RECEIVERS],
    pub receiver_count: usize,
    /// Offset of the composite memory region descriptor (0: none, as in a
    /// retrieve request that names the region by its handle).
    pub composite_offset: usize,
    pub total_page_count: u32,
    pub address_range_count: u32,
}

impl TransactionDescriptor {
    pub fn receivers(&self) -> impl Iterator<Item = &EndpointMemAccess> {
        self.receivers[..self.receiver_count].iter().flatten()
    }

    /// Offset of constituent `n`.
    pub fn constituent_offset(&self, n: usize) -> Option<usize> {
        self.composite_offset.checked_add(COMPOSITE_SIZE)?.checked_add(n.checked_mul(CONSTITUENT_SIZE)?)
    }
}

/// The layout a caller of FF-A `version` uses.
pub fn uses_v1_0_layout(version: u32) -> bool {
    version < 0x1_0001
}

/// Parses the descriptor in `buf` (the first fragment: header, every EMAD
/// and, when `need_composite`, the composite header must be in it, as
/// Hafnium requires too) sent by a caller of FF-A `version`.
pub fn parse(buf: &[u8], version: u32, need_composite: bool) -> Result<TransactionDescriptor, DescError> {
    use DescError::Invalid;
    let v1_0 = uses_v1_0_layout(version);
    let sender = u16_at(buf, 0).ok_or(Invalid)?;
    let flags = u32_at(buf, 4).ok_or(Invalid)?;
    let handle = u64_at(buf, 8).ok_or(Invalid)?;
    let tag = u64_at(buf, 16).ok_or(Invalid)?;
    let (attributes, emad_size, count, emad_offset) = if v1_0 {
        if buf.len() < HEADER_V1_0 || buf[3] != 0 || u32_at(buf, 24) != Some(0) {
            return Err(Invalid);
        }
        (buf[2] as u16, EMAD_V1_0, u32_at(buf, 28).ok_or(Invalid)? as usize, HEADER_V1_0)
    } else {
        if buf.len() < HEADER_V1_1 || buf[36..48].iter().any(|&b| b != 0) {
            return Err(Invalid);
        }
        let size = u32_at(buf, 24).ok_or(Invalid)? as usize;
        // v1.1 EMADs are 16 bytes, v1.2 ones 32 (the impdef field); a v1.2
        // caller may still send 16-byte ones.
        if size != EMAD_V1_0 && !(size == EMAD_V1_2 && version >= 0x1_0002) {
            return Err(Invalid);
        }
        let offset = u32_at(buf, 32).ok_or(Invalid)? as usize;
        // The EMAD array starts after the header, 16-byte aligned.
        if offset < HEADER_V1_1 || !offset.is_multiple_of(16) {
            return Err(Invalid);
        }
        (u16_at(buf, 2).ok_or(Invalid)?, size, u32_at(buf, 28).ok_or(Invalid)? as usize, offset)
    };
    if count == 0 {
        return Err(Invalid);
    }
    if count > MAX_RECEIVERS {
        return Err(DescError::TooManyReceivers);
    }
    let emads_end = count.checked_mul(emad_size).and_then(|n| n.checked_add(emad_offset)).ok_or(Invalid)?;
    if emads_end > buf.len() {
        return Err(Invalid);
    }
    let mut receivers = [None; MAX_RECEIVERS];
    let mut composite_offset = None;
    for (n, slot) in receivers.iter_mut().enumerate().take(count) {
        let o = emad_offset + n * emad_size;
        let receiver = u16_at(buf, o).ok_or(Invalid)?;
        let permissions = MemAccessPermissions::from_byte(buf[o + 2]).ok_or(Invalid)?;
        let eflags = buf[o + 3];
        let comp = u32_at(buf, o + 4).ok_or(Invalid)? as usize;
        if u64_at(buf, o + 8) != Some(0) {
            return Err(Invalid);
        }
        let impdef = if emad_size == EMAD_V1_2 {
            [u64_at(buf, o + 16).ok_or(Invalid)?, u64_at(buf, o + 24).ok_or(Invalid)?]
        } else {
            [0; 2]
        };
        // Every receiver describes the same region (one composite).
        match composite_offset {
            None => composite_offset = Some(comp),
            Some(c) if c == comp => {}
            Some(_) => return Err(Invalid),
        }
        *slot = Some(EndpointMemAccess { receiver, permissions, flags: eflags, impdef });
    }
    // A receiver named twice.
    for n in 1..count {
        let id = receivers[n].map(|r| r.receiver);
        if receivers[..n].iter().flatten().any(|r| Some(r.receiver) == id) {
            return Err(Invalid);
        }
    }
    let composite_offset = composite_offset.unwrap_or(0);
    let (total_page_count, address_range_count) = if composite_offset == 0 {
        if need_composite {
            return Err(Invalid);
        }
        (0, 0)
    } else {
        // After the EMADs, 8-byte aligned, wholly inside this fragment.
        if composite_offset < emads_end || composite_offset % 8 != 0 {
            return Err(Invalid);
        }
        let total = u32_at(buf, composite_offset).ok_or(Invalid)?;
        let ranges = u32_at(buf, composite_offset + 4).ok_or(Invalid)?;
        if u64_at(buf, composite_offset + 8) != Some(0) {
            return Err(Invalid);
        }
        if total == 0 || ranges == 0 {
            return Err(Invalid);
        }
        (total, ranges)
    };
    Ok(TransactionDescriptor {
        v1_0,
        emad_size,
        sender,
        attributes: MemRegionAttributes(attributes),
        flags,
        handle,
        tag,
        receivers,
        receiver_count: count,
        composite_offset,
        total_page_count,
        address_range_count,
    })
}

/// One constituent memory region: `page_count` 4 KiB pages from `address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Constituent {
    pub address: u64,
    pub page_count: u32,
}

impl Constituent {
    pub fn size(&self) -> u64 {
        self.page_count as u64 * PAGE
    }

    pub fn end(&self) -> Option<u64> {
        self.address.checked_add(self.size())
    }

    /// Whether the two ranges share a page.
    pub fn overlaps(&self, o: &Constituent) -> bool {
        match (self.end(), o.end()) {
            (Some(a), Some(b)) => self.address < b && o.address < a,
            _ => true,
        }
    }
}

/// Reads the whole constituents in `buf[from..]`: a multiple of 16 bytes,
/// each page aligned, non-empty and not wrapping.
pub fn constituents(buf: &[u8]) -> Result<impl Iterator<Item = Constituent> + '_, DescError> {
    if !buf.len().is_multiple_of(CONSTITUENT_SIZE) {
        return Err(DescError::Invalid);
    }
    for c in buf.chunks_exact(CONSTITUENT_SIZE) {
        let address = u64_at(c, 0).ok_or(DescError::Invalid)?;
        let pages = u32_at(c, 8).ok_or(DescError::Invalid)?;
        if address % PAGE != 0 || pages == 0 || u32_at(c, 12) != Some(0) {
            return Err(DescError::Invalid);
        }
        (Constituent { address, page_count: pages }).end().ok_or(DescError::Invalid)?;
    }
    Ok(buf.chunks_exact(CONSTITUENT_SIZE).map(|c| Constituent {
        address: u64::from_le_bytes(c[0..8].try_into().unwrap_or([0; 8])),
        page_count: u32::from_le_bytes(c[8..12].try_into().unwrap_or([0; 4])),
    }))
}

/// Writes into `out` the header, the one EMAD of `receiver` and the
/// composite header of a retrieve response in the layout of a caller of
/// FF-A `version`; returns how many bytes, or None if `out` is too small.
/// The constituents follow at the returned length.
#[allow(clippy::too_many_arguments)]
pub fn write_response_header(
    out: &mut [u8],
    version: u32,
    sender: u16,
    attributes: MemRegionAttributes,
    flags: u32,
    handle: u64,
    tag: u64,
    receivers: &[EndpointMemAccess],
    total_page_count: u32,
    address_range_count: u32,
) -> Option<usize> {
    let v1_0 = uses_v1_0_layout(version);
    let (header, emad_size) = if v1_0 {
        (HEADER_V1_0, EMAD_V1_0)
    } else if version >= 0x1_0002 {
        (HEADER_V1_1, EMAD_V1_2)
    } else {
        (HEADER_V1_1, EMAD_V1_0)
    };
    let count = receivers.len();
    if count == 0 || count > MAX_RECEIVERS {
        return None;
    }
    let composite = header + count * emad_size;
    let len = composite + COMPOSITE_SIZE;
    let out = out.get_mut(..len)?;
    out.fill(0);
    out[0..2].copy_from_slice(&sender.to_le_bytes());
    if v1_0 {
        out[2] = attributes.0 as u8;
    } else {
        out[2..4].copy_from_slice(&attributes.0.to_le_bytes());
    }
    out[4..8].copy_from_slice(&flags.to_le_bytes());
    out[8..16].copy_from_slice(&handle.to_le_bytes());
    out[16..24].copy_from_slice(&tag.to_le_bytes());
    if !v1_0 {
        out[24..28].copy_from_slice(&(emad_size as u32).to_le_bytes());
        out[32..36].copy_from_slice(&(header as u32).to_le_bytes());
    }
    out[28..32].copy_from_slice(&(count as u32).to_le_bytes());
    for (n, receiver) in receivers.iter().enumerate() {
        let e = header + n * emad_size;
        out[e..e + 2].copy_from_slice(&receiver.receiver.to_le_bytes());
        out[e + 2] = receiver.permissions.to_byte();
        out[e + 3] = receiver.flags;
        out[e + 4..e + 8].copy_from_slice(&(composite as u32).to_le_bytes());
        if emad_size == EMAD_V1_2 {
            out[e + 16..e + 24].copy_from_slice(&receiver.impdef[0].to_le_bytes());
            out[e + 24..e + 32].copy_from_slice(&receiver.impdef[1].to_le_bytes());
        }
    }
    out[composite..composite + 4].copy_from_slice(&total_page_count.to_le_bytes());
    out[composite + 4..composite + 8].copy_from_slice(&address_range_count.to_le_bytes());
    Some(len)
}

/// A hypervisor retrieve request (DEN0077 v1.2 §17.4.3): a transaction
/// descriptor header with no receivers, naming only the handle.  Returns
/// the handle.  Sender, attributes, flags and tag are ignored, as the
/// hypervisor may not know them yet; the layout's own fields must be sane.
pub fn parse_hypervisor_retrieve(buf: &[u8], version: u32) -> Result<u64, DescError> {
    use DescError::Invalid;
    let handle = u64_at(buf, 8).ok_or(Invalid)?;
    let count = if uses_v1_0_layout(version) {
        if buf.len() < HEADER_V1_0 {
            return Err(Invalid);
        }
        u32_at(buf, 28).ok_or(Invalid)?
    } else {
        if buf.len() < HEADER_V1_1 || buf[36..48].iter().any(|&b| b != 0) {
            return Err(Invalid);
        }
        u32_at(buf, 28).ok_or(Invalid)?
    };
    if count != 0 {
        return Err(Invalid);
    }
    Ok(handle)
}

/// Writes one constituent at `out[..16]`.
pub fn write_constituent(out: &mut [u8], c: &Constituent) -> Option<()> {
    let out = out.get_mut(..CONSTITUENT_SIZE)?;
    out[0..8].copy_from_slice(&c.address.to_le_bytes());
    out[8..12].copy_from_slice(&c.page_count.to_le_bytes());
    out[12..16].fill(0);
    Some(())
}

/// The FFA_MEM_RELINQUISH descriptor: handle u64, flags u32, endpoint count
/// u32, then the endpoint ids (u16 each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelinquishDescriptor {
    pub handle: u64,
    pub flags: u32,
    pub endpoint: u16,
}

/// Parses a relinquish descriptor naming exactly one endpoint (the caller:
/// an SP relinquishes for itself).
pub fn parse_relinquish(buf: &[u8]) -> Result<RelinquishDescriptor, DescError> {
    let handle = u64_at(buf, 0).ok_or(DescError::Invalid)?;
    let flags = u32_at(buf, 8).ok_or(DescError::Invalid)?;
    let count = u32_at(buf, 12).ok_or(DescError::Invalid)?;
    if count != 1 {
        return Err(DescError::Invalid);
    }
    let endpoint = u16_at(buf, 16).ok_or(DescError::Invalid)?;
    Ok(RelinquishDescriptor { handle, flags, endpoint })
}

#[cfg(test)]
mod tests;

/// Descriptor builders for tests of the crates above (`test-util`
/// feature; never in a product image).
#[cfg(any(test, feature = "test-util"))]
pub mod testing {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    pub const V1_0: u32 = 0x1_0000;
    pub const V1_1: u32 = 0x1_0001;
    pub const V1_2: u32 = 0x1_0002;

    /// A v1.1+ descriptor: `receivers` (id, permissions), EMADs of `emad` bytes,
    /// the given constituents.
    pub fn build(sender: u16, attributes: u16, flags: u32, receivers: &[(u16, u8)], emad: usize, constituents: &[(u64, u32)]) -> Vec<u8> {
        let emad_off = HEADER_V1_1;
        let comp = emad_off + receivers.len() * emad;
        let mut b = vec![0u8; comp + COMPOSITE_SIZE + constituents.len() * CONSTITUENT_SIZE];
        b[0..2].copy_from_slice(&sender.to_le_bytes());
        b[2..4].copy_from_slice(&attributes.to_le_bytes());
        b[4..8].copy_from_slice(&flags.to_le_bytes());
        b[24..28].copy_from_slice(&(emad as u32).to_le_bytes());
        b[28..32].copy_from_slice(&(receivers.len() as u32).to_le_bytes());
        b[32..36].copy_from_slice(&(emad_off as u32).to_le_bytes());
        for (n, (id, perm)) in receivers.iter().enumerate() {
            let o = emad_off + n * emad;
            b[o..o + 2].copy_from_slice(&id.to_le_bytes());
            b[o + 2] = *perm;
            b[o + 4..o + 8].copy_from_slice(&(comp as u32).to_le_bytes());
        }
        let pages: u32 = constituents.iter().map(|c| c.1).sum();
        b[comp..comp + 4].copy_from_slice(&pages.to_le_bytes());
        b[comp + 4..comp + 8].copy_from_slice(&(constituents.len() as u32).to_le_bytes());
        for (n, (a, p)) in constituents.iter().enumerate() {
            let o = comp + COMPOSITE_SIZE + n * CONSTITUENT_SIZE;
            b[o..o + 8].copy_from_slice(&a.to_le_bytes());
            b[o + 8..o + 12].copy_from_slice(&p.to_le_bytes());
        }
        b
    }
}
