//! Notifications and indirect messaging from the SP side (DEN0077 v1.2
//! chapters "Notifications" and "Indirect messaging"): a generic call with
//! w1..w4, the indirect message header, and the SP's one RX/TX pair (the
//! pair `crate::memory` maps).

use crate::ffa::{Regs, call};
pub use shared::abi::ffa::fid;

/// FFA_NOTIFICATION_GET flags (w2): from SPs, from VMs, SPM framework.
pub const GET_SP: u64 = 1;
pub const GET_VM: u64 = 2;
pub const GET_SPM: u64 = 4;
/// SPM framework notification: RX buffer full.
pub const FWK_RX_BUFFER_FULL: u64 = 1;
/// The v1.2 indirect message header's size (offset of our payloads).
pub const HEADER: usize = shared::ffa_indirect::HEADER_V1_2;

/// An FF-A call `fid` with w1..w4 (the notification calls: target
/// information, flags, bitmap low and high).
pub fn call4(fid: u32, w: [u64; 4]) -> Regs {
    let mut r = [0u64; 18];
    r[0] = fid as u64;
    r[1..5].copy_from_slice(&w);
    call(&r)
}

/// The v1.2 indirect message header for `size` bytes from `sender` to
/// `receiver`, payload right after it.
pub use shared::ffa_indirect::header_v1_2 as header;

/// (sender, receiver, payload offset, payload size) of a header at the start
/// of `buf`; None if it does not fit `buf`.
pub fn parse_header(buf: &[u8]) -> Option<(u16, u16, usize, usize)> {
    let w = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?)) };
    let (offset, ids, size) = (w(8)? as usize, w(12)?, w(16)? as usize);
    (offset.checked_add(size)? <= buf.len()).then_some(((ids >> 16) as u16, ids as u16, offset, size))
}

/// The SP's RX/TX buffer pair: the one `crate::memory` maps (one pair per
/// partition; identity mapped, so VA = IPA = PA).
pub struct Buffers;

pub static BUFFERS: Buffers = Buffers;

impl Buffers {
    /// FFA_RXTX_MAP_64 of the pair, once (FFA_SUCCESS, or FFA_ERROR and its code).
    pub fn map(&self) -> Regs {
        let mut r = [0u64; 18];
        match crate::memory::ensure_mapped() {
            Ok(()) => r[0] = fid::FFA_SUCCESS_32 as u64,
            Err(e) => {
                r[0] = fid::FFA_ERROR as u64;
                r[2] = e as u32 as u64;
            }
        }
        r
    }

    /// Copies the start of RX into `out` (the SPMC wrote it: volatile).
    pub fn read_rx(&self, out: &mut [u8]) {
        let p = crate::memory::pair().1 as *const u8;
        for (i, b) in out.iter_mut().enumerate().take(4096) {
            // SAFETY: inside our RX page, which we own after the SPMC's hand-over.
            *b = unsafe { core::ptr::read_volatile(p.add(i)) };
        }
    }

    /// Writes `bytes` at `at` in TX (the SPMC reads it: volatile).
    pub fn write_tx(&self, at: usize, bytes: &[u8]) {
        let p = crate::memory::pair().0 as *mut u8;
        for (i, b) in bytes.iter().enumerate() {
            if at + i < 4096 {
                // SAFETY: inside our TX page, read by the SPMC only during our calls.
                unsafe { core::ptr::write_volatile(p.add(at + i), *b) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = header(0x8002, 0, 16);
        let mut buf = [0u8; 64];
        buf[..HEADER].copy_from_slice(&h);
        assert_eq!(parse_header(&buf), Some((0x8002, 0, 40, 16)));
        assert_eq!(parse_header(&buf[..50]), None, "payload past the buffer");
        assert_eq!(parse_header(&buf[..10]), None);
    }
}
