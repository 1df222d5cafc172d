//! Guest memory and a disk for the device model off the hardware: the host
//! tests (`tests.rs`) and the fuzz harness (`vm::fuzz`, issue J).

use super::*;

/// Where the fake guest memory starts (IPA).
pub const BASE: u64 = 0x4000_0000;

/// Guest memory that only copies (the disk goes through the bounce buffer).
pub struct Mem(pub Vec<u8>);

impl GuestMemory for Mem {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> bool {
        let Some(o) = ipa.checked_sub(BASE) else { return false };
        match (o as usize).checked_add(buf.len()).and_then(|e| self.0.get(o as usize..e)) {
            Some(s) => {
                buf.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
    fn write(&mut self, ipa: u64, buf: &[u8]) -> bool {
        let Some(o) = ipa.checked_sub(BASE) else { return false };
        match (o as usize).checked_add(buf.len()).and_then(|e| self.0.get_mut(o as usize..e)) {
            Some(s) => {
                s.copy_from_slice(buf);
                true
            }
            None => false,
        }
    }
}

/// Guest memory the disk can transfer into directly.
pub struct DirectMem(pub Mem);

impl GuestMemory for DirectMem {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> bool {
        self.0.read(ipa, buf)
    }
    fn write(&mut self, ipa: u64, buf: &[u8]) -> bool {
        self.0.write(ipa, buf)
    }
    fn slice_mut(&mut self, ipa: u64, len: usize) -> Option<&mut [u8]> {
        let o = ipa.checked_sub(BASE)? as usize;
        self.0 .0.get_mut(o..o.checked_add(len)?)
    }
}

/// A disk in memory; counts flushes.  The device must never ask for a
/// sector range beyond the capacity it reports (asserted: a fuzz finding).
pub struct RamDisk {
    pub data: Vec<u8>,
    pub flushes: u32,
}
impl RamDisk {
    fn range(&self, sector: u64, len: usize) -> usize {
        let o = (sector as usize).checked_mul(SECTOR).filter(|o| o.checked_add(len).is_some_and(|e| e <= self.data.len()));
        o.unwrap_or_else(|| panic!("the device asked for {len} bytes at sector {sector}, beyond the disk"))
    }
}

impl Disk for RamDisk {
    fn sectors(&self) -> u64 {
        (self.data.len() / SECTOR) as u64
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> bool {
        let o = self.range(sector, buf.len());
        buf.copy_from_slice(&self.data[o..o + buf.len()]);
        true
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> bool {
        let o = self.range(sector, buf.len());
        self.data[o..o + buf.len()].copy_from_slice(buf);
        true
    }
    fn flush(&mut self) -> bool {
        self.flushes += 1;
        true
    }
}

