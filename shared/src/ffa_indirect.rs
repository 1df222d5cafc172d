//! The indirect message header (DEN0077 v1.2, "Indirect message header"),
//! read from a sender's TX buffer for FFA_MSG_SEND2.  Pure code, here in
//! `shared` so that both partition managers check a message alike: spmc for
//! messages to SPs, ns-hyp for its VMs' messages before it forwards or
//! delivers them.

use crate::abi::ffa::FfaError;

/// 4 KiB: the FF-A translation granule, the smallest RX/TX buffer.
const PAGE: usize = 0x1000;

/// Largest message (header and payload) a partition manager copies: one 4 KiB page, the
/// smallest RX/TX buffer (Hafnium's HF_MAILBOX_SIZE too).
pub const MAX_MESSAGE: usize = PAGE;
/// Size of the v1.2 indirect message header (with the UUID), and of the
/// v1.1 one (without).
pub const HEADER_V1_2: usize = 40;
pub const HEADER_V1_1: usize = 24;

/// The fields of an indirect message header (DEN0077 v1.2, "indirect
/// message header"): flags (MBZ), reserved, payload offset, sender
/// [31:16] | receiver [15:0], payload size, reserved, and from v1.2 the UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub flags: u32,
    pub offset: u32,
    pub sender: u16,
    pub receiver: u16,
    pub size: u32,
    /// The UUID words (v1.2 headers; nil for v1.1).
    pub uuid: [u32; 4],
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Header {
    /// Reads and checks a header at the start of `buf` (the sender's TX
    /// buffer, `tx_size` bytes) for a caller of FF-A `version`: payload
    /// after the header and inside the buffer and [`MAX_MESSAGE`], flags
    /// and reserved words zero.  INVALID_PARAMETERS otherwise.
    pub fn parse(buf: &[u8], tx_size: usize, version: u32) -> Result<Self, FfaError> {
        let header = if version >= 0x1_0002 { HEADER_V1_2 } else { HEADER_V1_1 };
        if buf.len() < HEADER_V1_2 {
            return Err(FfaError::InvalidParameters);
        }
        let h = Header {
            flags: word(buf, 0),
            offset: word(buf, 8),
            sender: (word(buf, 12) >> 16) as u16,
            receiver: word(buf, 12) as u16,
            size: word(buf, 16),
            uuid: if header == HEADER_V1_2 { [word(buf, 24), word(buf, 28), word(buf, 32), word(buf, 36)] } else { [0; 4] },
        };
        if h.flags != 0 || word(buf, 4) != 0 || word(buf, 20) != 0 {
            return Err(FfaError::InvalidParameters);
        }
        let end = (h.offset as usize).checked_add(h.size as usize).ok_or(FfaError::InvalidParameters)?;
        if (h.offset as usize) < header || end > tx_size.min(MAX_MESSAGE) {
            return Err(FfaError::InvalidParameters);
        }
        Ok(h)
    }

    /// Bytes of the message (header and payload) from the buffer start.
    pub fn end(&self) -> usize {
        self.offset as usize + self.size as usize
    }
}

/// A v1.2 indirect message header from `sender` to `receiver` for `size`
/// payload bytes right after it; flags, reserved words and UUID zero.  What a
/// sender writes at the start of its TX buffer before FFA_MSG_SEND2.
pub fn header_v1_2(sender: u16, receiver: u16, size: u32) -> [u8; HEADER_V1_2] {
    let mut h = [0u8; HEADER_V1_2];
    h[8..12].copy_from_slice(&(HEADER_V1_2 as u32).to_le_bytes());
    h[12..16].copy_from_slice(&((sender as u32) << 16 | receiver as u32).to_le_bytes());
    h[16..20].copy_from_slice(&size.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(offset: u32, ids: u32, size: u32) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[8..12].copy_from_slice(&offset.to_le_bytes());
        b[12..16].copy_from_slice(&ids.to_le_bytes());
        b[16..20].copy_from_slice(&size.to_le_bytes());
        b
    }

    #[test]
    fn header_parse() {
        let b = header(40, 0x0000_8001, 16);
        let h = Header::parse(&b, 4096, 0x1_0002).unwrap();
        assert_eq!((h.sender, h.receiver, h.end()), (0, 0x8001, 56));
        // Offset inside the v1.2 header; fine for a v1.1 caller.
        let b = header(24, 0x0000_8001, 16);
        assert_eq!(Header::parse(&b, 4096, 0x1_0002), Err(FfaError::InvalidParameters));
        assert!(Header::parse(&b, 4096, 0x1_0001).is_ok());
        // Past the buffer, overflowing, past one page.
        assert_eq!(Header::parse(&header(40, 1, 4096), 4096, 0x1_0002), Err(FfaError::InvalidParameters));
        assert_eq!(Header::parse(&header(u32::MAX, 1, u32::MAX), 8192, 0x1_0002), Err(FfaError::InvalidParameters));
        assert_eq!(Header::parse(&header(40, 1, 4096), 8192, 0x1_0002), Err(FfaError::InvalidParameters));
        // Flags and reserved words MBZ.
        let mut b = header(40, 1, 1);
        b[0] = 1;
        assert_eq!(Header::parse(&b, 4096, 0x1_0002), Err(FfaError::InvalidParameters));
        let mut b = header(40, 1, 1);
        b[20] = 1;
        assert_eq!(Header::parse(&b, 4096, 0x1_0002), Err(FfaError::InvalidParameters));
        assert_eq!(Header::parse(&b[..16], 4096, 0x1_0002), Err(FfaError::InvalidParameters));
    }

    #[test]
    fn a_written_header_parses() {
        let mut m = [0u8; 56];
        m[..HEADER_V1_2].copy_from_slice(&header_v1_2(1, 0x8002, 16));
        let h = Header::parse(&m, 4096, 0x1_0002).unwrap();
        assert_eq!((h.sender, h.receiver, h.offset, h.size, h.end()), (1, 0x8002, 40, 16, 56));
    }
}
