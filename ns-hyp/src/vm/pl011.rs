//! The guest's PL011 UART (Arm DDI0183G), emulated: transmit goes straight to
//! the real UART, receive comes from the real UART's RX interrupt through a
//! small FIFO, and the interrupt line is (RIS & IMSC) != 0 (PL011 TRM, UARTRIS and UARTMIS).
#![cfg_attr(target_os = "none", allow(dead_code))] // the register map is complete; not every name is used

pub const DR: u64 = 0x000;
pub const RSR: u64 = 0x004;
pub const FR: u64 = 0x018;
pub const IBRD: u64 = 0x024;
pub const FBRD: u64 = 0x028;
pub const LCR_H: u64 = 0x02c;
pub const CR: u64 = 0x030;
pub const IFLS: u64 = 0x034;
pub const IMSC: u64 = 0x038;
pub const RIS: u64 = 0x03c;
pub const MIS: u64 = 0x040;
pub const ICR: u64 = 0x044;
pub const DMACR: u64 = 0x048;

const FR_RXFE: u32 = 1 << 4;
const FR_TXFE: u32 = 1 << 7;
/// Interrupt bits (RIS/MIS/IMSC/ICR): RX, TX, RX timeout.
pub const INT_RX: u32 = 1 << 4;
pub const INT_TX: u32 = 1 << 5;
pub const INT_RT: u32 = 1 << 6;

/// PeriphID0..3 and PCellID0..3 at 0xfe0..0xffc (§4.3): a PL011 r1p5.
const ID: [u32; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Receive buffer: larger than the PL011's 32 entries so a pasted line fits;
/// when it is full ns-hyp leaves bytes in the real UART (backpressure).
const FIFO: usize = 256;

pub struct Pl011 {
    rx: [u8; FIFO],
    head: usize,
    len: usize,
    imsc: u32,
    /// TX interrupt raw status: set while the (empty) TX FIFO is below its
    /// trigger level, cleared by ICR; set again by the next write.
    tx_ris: bool,
    regs: [u32; 5], // IBRD FBRD LCR_H CR IFLS
    dmacr: u32,
}

/// What an access did beyond its value.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effect {
    /// A byte to send on the real UART.
    pub tx: Option<u8>,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    pub const fn new() -> Self {
        Pl011 { rx: [0; FIFO], head: 0, len: 0, imsc: 0, tx_ris: true, regs: [0, 0, 0, 0x300, 0x12], dmacr: 0 }
    }

    fn ris(&self) -> u32 {
        let rx = if self.len > 0 { INT_RX | INT_RT } else { 0 };
        rx | if self.tx_ris { INT_TX } else { 0 }
    }

    /// The level of the UART's interrupt line.
    pub fn line(&self) -> bool {
        self.ris() & self.imsc != 0
    }

    /// Whether another received byte fits.
    pub fn has_room(&self) -> bool {
        self.len < FIFO
    }

    /// A byte arrived on the real UART.  Returns false if the FIFO was full (dropped).
    pub fn receive(&mut self, b: u8) -> bool {
        if self.len == FIFO {
            return false;
        }
        self.rx[(self.head + self.len) % FIFO] = b;
        self.len += 1;
        true
    }

    pub fn read(&mut self, off: u64) -> u32 {
        match off {
            DR => {
                if self.len == 0 {
                    return 0;
                }
                let b = self.rx[self.head];
                self.head = (self.head + 1) % FIFO;
                self.len -= 1;
                b as u32
            }
            RSR => 0,
            FR => FR_TXFE | if self.len == 0 { FR_RXFE } else { 0 },
            IBRD..=IFLS => self.regs[((off - IBRD) / 4) as usize],
            IMSC => self.imsc,
            RIS => self.ris(),
            MIS => self.ris() & self.imsc,
            DMACR => self.dmacr,
            0xfe0..=0xffc if off % 4 == 0 => ID[((off - 0xfe0) / 4) as usize],
            _ => 0,
        }
    }

    pub fn write(&mut self, off: u64, v: u32) -> Effect {
        match off {
            DR => {
                self.tx_ris = true;
                return Effect { tx: Some(v as u8) };
            }
            IBRD..=IFLS => self.regs[((off - IBRD) / 4) as usize] = v & 0xffff,
            IMSC => self.imsc = v & 0x7ff,
            ICR => {
                if v & INT_TX != 0 {
                    self.tx_ris = false;
                }
            }
            DMACR => self.dmacr = v & 7,
            _ => {}
        }
        Effect::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmit_and_ids() {
        let mut u = Pl011::new();
        assert_eq!(u.write(DR, 0x141), Effect { tx: Some(0x41) });
        assert_eq!(u.read(FR) & FR_TXFE, FR_TXFE);
        assert_eq!(u.read(FR) & (1 << 5), 0); // never TXFF
        let id: Vec<u32> = (0..8).map(|i| u.read(0xfe0 + 4 * i)).collect();
        assert_eq!(id, ID);
        assert_eq!(u.read(0xfe1), 0);
    }

    #[test]
    fn receive_by_interrupt() {
        let mut u = Pl011::new();
        u.write(ICR, 0x7ff);
        assert!(!u.line());
        u.write(IMSC, INT_RX | INT_RT);
        assert!(!u.line());
        assert!(u.receive(b'a') && u.receive(b'b'));
        assert!(u.line());
        assert_eq!(u.read(MIS), INT_RX | INT_RT);
        assert_eq!(u.read(FR) & FR_RXFE, 0);
        assert_eq!(u.read(DR), b'a' as u32);
        assert_eq!(u.read(DR), b'b' as u32);
        assert!(!u.line());
        assert_eq!(u.read(DR), 0);
        for i in 0..FIFO {
            assert!(u.receive(i as u8));
        }
        assert!(!u.receive(0));
    }

    #[test]
    fn tx_interrupt() {
        let mut u = Pl011::new();
        u.write(IMSC, INT_TX);
        assert!(u.line(), "empty TX FIFO below its level");
        u.write(ICR, INT_TX);
        assert!(!u.line());
        u.write(DR, b'x' as u32);
        assert!(u.line());
        u.write(IMSC, 0);
        assert!(!u.line());
    }
}
