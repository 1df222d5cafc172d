//! Indirect messaging (DEN0077 v1.2 chapter "Indirect messaging"):
//! FFA_MSG_SEND2.  The sender writes an indirect message header and the
//! payload into its TX buffer; spmc checks the header, copies header and
//! payload into the receiver's RX buffer, gives that buffer to the receiver
//! (RX/TX buffer ownership: the receiver owns it until FFA_RX_RELEASE) and
//! sets the receiver's SPM framework notification "RX buffer full"
//! ([`super::notifications`]), which owes the Normal world the SRI.
//!
//! Locks: the sender's mailbox while its TX buffer is read into a local
//! copy, then the receiver's while its RX buffer is written, then the
//! receiver's notification bitmaps: each a leaf lock, one at a time.

use super::calls::Call;
use super::setup::rxtx::PAGE;
use super::{Caller, NS_ENDPOINT_ID, Platform, Regs, Spmc, error, success};
use crate::partition::Uuid;
use crate::partition::manifest::MSG_INDIRECT;
use shared::abi::ffa::{self as ffa, FfaError, Interface};

/// Largest message (header and payload) spmc copies: one 4 KiB page, the
/// smallest RX/TX buffer (Hafnium's HF_MAILBOX_SIZE too).
pub const MAX_MESSAGE: usize = PAGE as usize;
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
    pub uuid: Uuid,
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
            uuid: if header == HEADER_V1_2 { Uuid([word(buf, 24), word(buf, 28), word(buf, 32), word(buf, 36)]) } else { Uuid::NIL },
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

impl Spmc {
    /// FFA_MSG_SEND2 from `caller` on PE `cpu`; `sender` is the caller's
    /// own id, or from the Normal world the VM the hypervisor sends for.
    fn msg_send2(&self, caller: Caller, sender: u16, cpu: usize, platform: &mut dyn Platform) -> Regs {
        if let Caller::Sp(i) = caller
            && self.part(i).manifest.messaging_method & MSG_INDIRECT == 0
        {
            return error(FfaError::Denied);
        }
        // The sender's TX buffer, copied under its lock (it cannot be
        // unmapped meanwhile).
        let mut buf = [0u8; MAX_MESSAGE];
        let header = {
            let mb = self.mailbox(caller).lock();
            let Some(mb) = *mb else { return error(FfaError::Denied) };
            let n = (mb.size as usize).min(MAX_MESSAGE);
            platform.read(mb.tx, &mut buf[..n]);
            match Header::parse(&buf[..n], mb.size as usize, self.version_of(caller)) {
                Ok(h) => h,
                Err(e) => return error(e),
            }
        };
        if header.sender != sender || header.receiver == sender {
            return error(FfaError::InvalidParameters);
        }
        // The receiver: an SP, or (from an SP) the Normal world's endpoint 0.
        let receiver = if header.receiver == NS_ENDPOINT_ID && caller != Caller::Ns {
            Caller::Ns
        } else if ffa::is_secure_endpoint(header.receiver) {
            let Some(r) = self.find(header.receiver) else { return error(FfaError::InvalidParameters) };
            let p = self.part(r);
            if !header.uuid.is_nil() && !p.manifest.uuids().contains(&header.uuid) {
                return error(FfaError::InvalidParameters);
            }
            if p.manifest.messaging_method & MSG_INDIRECT == 0 {
                return error(FfaError::Denied);
            }
            if p.is_aborted() {
                return error(FfaError::Aborted);
            }
            Caller::Sp(r)
        } else {
            return error(FfaError::InvalidParameters);
        };
        {
            let mut mb = self.mailbox(receiver).lock();
            match &mut *mb {
                // No RX buffer, or the receiver still owns it: try again later.
                None => return error(FfaError::Busy),
                Some(m) if m.rx_full => return error(FfaError::Busy),
                Some(m) if (m.size as usize) < header.end() => return error(FfaError::NoMemory),
                Some(m) => {
                    platform.write(m.rx, &buf[..header.end()]);
                    m.rx_full = true;
                }
            }
        }
        self.set_framework_notification(header.receiver, super::notifications::FWK_RX_BUFFER_FULL, cpu);
        success(&[])
    }
}

/// FFA_MSG_SEND2 (w1 bits 31:16 sender VM id, bits 15:0 MBZ; w2 flags:
/// bit 1 delay SRI, the rest MBZ).  From the Normal world the sender VM id
/// is the hypervisor's own (0) or that of the VM whose message it forwards
/// from its own TX buffer (DEN0077 v1.2, FFA_MSG_SEND2: the hypervisor
/// names the sender VM); the header's sender must be that id.  From an SP
/// it MBZ.  Receivers are SPs (from anyone) and the Normal world's endpoint
/// 0 (from an SP); spmc maps no VM's RX buffer, so a message from an SP to
/// a VM of the hypervisor is refused (INVALID_PARAMETERS) as before.
pub(super) fn ffa_msg_send2(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let Some(Interface::MsgSend2 { sender_vm_id, .. }) = c.decoded else { return error(FfaError::InvalidParameters) };
    if c.regs[1] as u32 & 0xffff != 0 {
        return error(FfaError::InvalidParameters);
    }
    let sender = match c.caller {
        Caller::Ns if ffa::is_ns_endpoint(sender_vm_id) => sender_vm_id,
        Caller::Sp(_) if sender_vm_id == 0 => s.caller_id(c.caller),
        _ => return error(FfaError::InvalidParameters),
    };
    s.msg_send2(c.caller, sender, c.cpu, platform)
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
}
