//! The guest's PL031 real-time clock (Arm DDI0224C, PrimeCell Real Time
//! Clock (PL031) Technical Reference Manual), emulated: a 32-bit counter of
//! seconds, a match register and its interrupt, and the PrimeCell ID
//! registers Linux's `rtc-pl031` AMBA driver matches on.
//!
//! Time source: the caller passes `now`, seconds since the epoch from
//! ns-hyp's wall clock (the host's PL031 read at boot plus the architectural
//! counter since, `crate::wallclock` on the target).  The guest's counter is
//! `now + offset`, where a write to RTCLR ("RTC is loaded or updated by
//! writing to the Load Register", TRM §2.1) sets the offset; nothing the
//! guest does changes ns-hyp's own clock.
//!
//! The match interrupt (TRM §2.1: RTCINTR is asserted when the counter and
//! RTCMR are equal, and cleared "by writing any data value to" RTCICR) is
//! evaluated when the guest touches the device and when ns-hyp polls it
//! (`poll`): the raw status latches once the counter has reached the match
//! value since the last look, and stays set until a write to RTCICR.  The
//! line is the masked status, RTCRIS & RTCIMSC (RTCMIS).
//!
//! Every access that is not a 32-bit aligned register access, and every
//! write to a read-only register, is RAZ/WI: the guest cannot make ns-hyp
//! fail through this device.
#![cfg_attr(target_os = "none", allow(dead_code))] // the register map is complete; not every name is used

/// Register offsets (TRM chapter 3, Programmer's Model: the register summary).
pub const DR: u64 = 0x000; // data register, read-only: the counter
pub const MR: u64 = 0x004; // match register
pub const LR: u64 = 0x008; // load register: a write sets the counter
pub const CR: u64 = 0x00c; // control register: bit 0 RTCStart
pub const IMSC: u64 = 0x010; // interrupt mask set/clear: bit 0
pub const RIS: u64 = 0x014; // raw interrupt status, read-only
pub const MIS: u64 = 0x018; // masked interrupt status, read-only
pub const ICR: u64 = 0x01c; // interrupt clear, write-only
/// PeriphID0..3 and PCellID0..3 (TRM chapter 3): part number 0x031,
/// designer 0x41 (Arm), revision 0, configuration 0, and the PrimeCell ID
/// 0xB105F00D.  Linux's AMBA bus matches `0x00041031` on these.
pub const ID_BASE: u64 = 0xfe0;
const ID: [u32; 8] = [0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// The interrupt bit of RTCIMSC/RTCRIS/RTCMIS (TRM chapter 3).
pub const INT: u32 = 1;
/// RTCCR.RTCStart (TRM chapter 3: once set, writes to it have no effect).
pub const CR_START: u32 = 1;

/// The size of the device's register window.
pub const SIZE: u64 = 0x1000;

#[derive(Debug, Clone)]
pub struct Pl031 {
    /// Counter = (source seconds) + offset, modulo 2^32.
    offset: u32,
    /// RTCLR as last written (a read returns it).
    lr: u32,
    mr: u32,
    imsc: u32,
    ris: bool,
    /// The counter value at the last look (`update`), for the match check.
    last: Option<u32>,
}

impl Default for Pl031 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl031 {
    pub const fn new() -> Self {
        Pl031 { offset: 0, lr: 0, mr: 0, imsc: 0, ris: false, last: None }
    }

    /// The counter at `now` (source seconds): RTCDR.
    pub fn counter(&self, now: u64) -> u32 {
        (now as u32).wrapping_add(self.offset)
    }

    /// Brings the match latch up to `now`: if the counter reached RTCMR
    /// since the last look (counting modulo 2^32, as the counter wraps),
    /// RTCRIS is set.
    fn update(&mut self, now: u64) {
        let c = self.counter(now);
        let hit = match self.last {
            None => c == self.mr,
            Some(last) => {
                let passed = c.wrapping_sub(last);
                let to_match = self.mr.wrapping_sub(last);
                passed != 0 && (1..=passed).contains(&to_match)
            }
        };
        if hit {
            self.ris = true;
        }
        self.last = Some(c);
    }

    /// The level of RTCINTR: RTCMIS != 0.
    pub fn line(&self) -> bool {
        self.ris && self.imsc & INT != 0
    }

    /// ns-hyp looking at the clock without a guest access (so a match
    /// raises the line on time); returns the line's level.
    pub fn poll(&mut self, now: u64) -> bool {
        self.update(now);
        self.line()
    }

    /// A guest read of `size` bytes at `off`.
    pub fn read(&mut self, off: u64, size: u8, now: u64) -> u32 {
        self.update(now);
        if size != 4 || off % 4 != 0 {
            return 0;
        }
        match off {
            DR => self.counter(now),
            MR => self.mr,
            LR => self.lr,
            // Started from reset on: the counter carries the host's time
            // before the guest runs (QEMU's pl031 reads 1 here too); once
            // set, writes cannot clear it.
            CR => CR_START,
            IMSC => self.imsc,
            RIS => self.ris as u32,
            MIS => self.line() as u32,
            ID_BASE..=0xffc => ID[((off - ID_BASE) / 4) as usize],
            _ => 0, // RTCICR is write-only; reserved and test registers read as zero
        }
    }

    /// A guest write of `size` bytes at `off`.
    pub fn write(&mut self, off: u64, size: u8, v: u32, now: u64) {
        self.update(now);
        if size != 4 || off % 4 != 0 {
            return;
        }
        match off {
            MR => {
                self.mr = v;
                // The comparator sees equality at once (QEMU's pl031 does the same).
                if self.counter(now) == v {
                    self.ris = true;
                }
            }
            LR => {
                self.lr = v;
                self.offset = v.wrapping_sub(now as u32);
                self.last = Some(v);
                if v == self.mr {
                    self.ris = true;
                }
            }
            IMSC => self.imsc = v & INT,
            // "Writing any data value" clears the interrupt (TRM §2.1).
            ICR => self.ris = false,
            // RTCCR: writing 1 again, or 0 once started, changes nothing.
            // RTCDR, RTCRIS, RTCMIS and the IDs are read-only: ignored.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z.
    const T0: u64 = 1_767_225_600;

    #[test]
    fn ids_match_the_pl031() {
        let mut r = Pl031::new();
        let id: Vec<u32> = (0..8).map(|i| r.read(ID_BASE + 4 * i, 4, T0)).collect();
        assert_eq!(id, [0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        // The AMBA bus's periphid: PeriphID0..3 bytes, low first.
        let periph = id[..4].iter().enumerate().fold(0, |a, (i, b)| a | (b & 0xff) << (8 * i));
        assert_eq!(periph & 0x000f_ffff, 0x0004_1031);
    }

    #[test]
    fn counter_follows_the_source_and_load_sets_it() {
        let mut r = Pl031::new();
        assert_eq!(r.read(DR, 4, T0), T0 as u32);
        assert_eq!(r.read(DR, 4, T0 + 5), (T0 + 5) as u32);
        assert_eq!(r.read(CR, 4, T0) & CR_START, CR_START);
        r.write(LR, 4, 1000, T0 + 10);
        assert_eq!(r.read(LR, 4, T0 + 10), 1000);
        assert_eq!(r.read(DR, 4, T0 + 10), 1000);
        assert_eq!(r.read(DR, 4, T0 + 13), 1003);
        // Writes to the data register are ignored; CR stays started.
        r.write(DR, 4, 7, T0 + 13);
        r.write(CR, 4, 0, T0 + 13);
        assert_eq!(r.read(DR, 4, T0 + 13), 1003);
        assert_eq!(r.read(CR, 4, T0 + 13), CR_START);
        // Loading near the top wraps modulo 2^32.
        r.write(LR, 4, u32::MAX, T0 + 20);
        assert_eq!(r.read(DR, 4, T0 + 22), 1);
    }

    #[test]
    fn match_interrupt_latches_until_cleared() {
        let mut r = Pl031::new();
        r.write(MR, 4, (T0 + 3) as u32, T0);
        assert_eq!(r.read(RIS, 4, T0 + 2), 0);
        r.write(IMSC, 4, INT, T0 + 2);
        assert!(!r.line());
        // Passed between two looks (no access exactly at T0 + 3).
        assert!(r.poll(T0 + 7));
        assert_eq!(r.read(RIS, 4, T0 + 8), INT);
        assert_eq!(r.read(MIS, 4, T0 + 8), INT);
        r.write(IMSC, 4, 0, T0 + 8);
        assert!(!r.line(), "masked");
        assert_eq!(r.read(RIS, 4, T0 + 8), INT, "still raw");
        r.write(ICR, 4, INT, T0 + 8);
        assert_eq!(r.read(RIS, 4, T0 + 9), 0);
        // It does not fire again until the counter comes round.
        r.write(IMSC, 4, INT, T0 + 9);
        assert!(!r.poll(T0 + 100));
        // A match value equal to the counter now fires at once.
        r.write(MR, 4, (T0 + 100) as u32, T0 + 100);
        assert!(r.line());
        r.write(ICR, 4, INT, T0 + 100);
        // Loading the counter with the match value fires too.
        r.write(LR, 4, (T0 + 100) as u32, T0 + 200);
        assert!(r.line());
        r.write(ICR, 4, 0, T0 + 200);
        assert!(!r.line(), "any value written to RTCICR clears (TRM §2.1)");
    }

    #[test]
    fn bad_accesses_are_raz_wi() {
        let mut r = Pl031::new();
        for off in [0u64, 1, 2, 3, 4, 0x20, 0x80, 0x7fc, 0xfdc, 0xfe1, 0xffc, 0xfff, 0x1000, u64::MAX] {
            for size in [0u8, 1, 2, 3, 4, 8, 16, 255] {
                let v = r.read(off, size, T0);
                if size != 4 || off % 4 != 0 {
                    assert_eq!(v, 0, "read {off:#x}/{size}");
                }
                r.write(off, size, !0, T0);
            }
        }
        // Only the 4-byte writes to RW registers above took effect; no panic.
        assert_eq!(r.read(RIS, 4, T0) & !INT, 0);
        // Writes to the read-only registers and IDs changed nothing.
        let mut r = Pl031::new();
        for off in [DR, RIS, MIS, 0xfe0, 0xffc] {
            r.write(off, 4, 0x1234_5678, T0);
        }
        assert_eq!(r.read(DR, 4, T0), T0 as u32);
        assert_eq!(r.read(RIS, 4, T0), 0);
        assert_eq!(r.read(0xfe0, 4, T0), 0x31);
        assert_eq!(r.read(ICR, 4, T0), 0, "write-only reads as zero");
        // The source clock going backwards (it should not) does not panic either.
        r.write(MR, 4, 5, T0);
        let _ = r.poll(0);
        let _ = r.poll(u64::MAX);
    }
}
