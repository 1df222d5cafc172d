//! Notifications and indirect messaging from the SP side (DEN0077 v1.2
//! chapters "Notifications" and "Indirect messaging"): a generic call with
//! w1..w4, the SP's own RX/TX buffer pair (two pages in its image), and the
//! indirect message header.

use crate::ffa::{Regs, call};
pub use shared::abi::ffa::fid;

/// FFA_NOTIFICATION_GET flags (w2): from SPs, from VMs, SPM framework.
pub const GET_SP: u64 = 1;
pub const GET_VM: u64 = 2;
pub const GET_SPM: u64 = 4;
/// SPM framework notification: RX buffer full.
pub const FWK_RX_BUFFER_FULL: u64 = 1;
/// The v1.2 indirect message header's size (offset of our payloads).
pub const HEADER: usize = 40;

/// An FF-A call `fid` with w1..w4 (the notification calls: target
/// information, flags, bitmap low and high).
pub fn call4(fid: u32, w: [u64; 4]) -> Regs {
    let mut r = [0u64; 18];
    r[0] = fid as u64;
    r[1..5].copy_from_slice(&w);
    call(&r)
}

/// The v1.2 indirect message header for `size` bytes from `sender` to
/// `receiver`, payload right after it; flags, reserved words and UUID zero.
pub fn header(sender: u16, receiver: u16, size: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[8..12].copy_from_slice(&(HEADER as u32).to_le_bytes());
    h[12..16].copy_from_slice(&((sender as u32) << 16 | receiver as u32).to_le_bytes());
    h[16..20].copy_from_slice(&size.to_le_bytes());
    h
}

/// (sender, receiver, payload offset, payload size) of a header at the start
/// of `buf`; None if it does not fit `buf`.
pub fn parse_header(buf: &[u8]) -> Option<(u16, u16, usize, usize)> {
    let w = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?)) };
    let (offset, ids, size) = (w(8)? as usize, w(12)?, w(16)? as usize);
    (offset.checked_add(size)? <= buf.len()).then_some(((ids >> 16) as u16, ids as u16, offset, size))
}

/// The SP's RX/TX buffer pair: one page each, page aligned, in its image
/// (identity mapped at Stage-1 and Stage-2, so VA = IPA = PA).
#[repr(C, align(4096))]
pub struct Buffers {
    rx: core::cell::UnsafeCell<[u8; 4096]>,
    tx: core::cell::UnsafeCell<[u8; 4096]>,
}

// SAFETY: the buffers are only accessed through volatile copies below; an
// SP that uses them from several contexts serialises its requests itself
// (the SPMC runs one request at a time per context, and our tests use one).
unsafe impl Sync for Buffers {}

pub static BUFFERS: Buffers = Buffers { rx: core::cell::UnsafeCell::new([0; 4096]), tx: core::cell::UnsafeCell::new([0; 4096]) };

impl Buffers {
    pub fn rx_addr(&self) -> u64 {
        self.rx.get() as u64
    }
    pub fn tx_addr(&self) -> u64 {
        self.tx.get() as u64
    }

    /// FFA_RXTX_MAP_64 of the pair (one page each).
    pub fn map(&self) -> Regs {
        call4(fid::FFA_RXTX_MAP_64, [self.tx_addr(), self.rx_addr(), 1, 0])
    }

    /// Copies the start of RX into `out` (the SPMC wrote it: volatile).
    pub fn read_rx(&self, out: &mut [u8]) {
        let p = self.rx.get() as *const u8;
        for (i, b) in out.iter_mut().enumerate().take(4096) {
            // SAFETY: inside our RX page.
            *b = unsafe { core::ptr::read_volatile(p.add(i)) };
        }
    }

    /// Writes `bytes` at the start of TX (the SPMC reads it: volatile).
    pub fn write_tx(&self, at: usize, bytes: &[u8]) {
        let p = self.tx.get() as *mut u8;
        for (i, b) in bytes.iter().enumerate() {
            if at + i < 4096 {
                // SAFETY: inside our TX page.
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
