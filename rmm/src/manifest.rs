//! The RMM-EL3 Boot Manifest (TF-A `docs/components/rmm-el3-comms-spec.rst`,
//! "Boot Manifest" and "RMM-EL3 Boot Manifest structure"; layout in TF-A's
//! `include/services/rmm_core_manifest.h`), v0.3:
//!
//! ```text
//!  0  version u32 (major 30:16, minor 15:0)   4  padding u32
//!  8  plat_data pointer
//! 16  plat_dram:    num_banks, banks pointer, checksum          (v0.2)
//! 40  plat_console: num_consoles, consoles pointer, checksum    (v0.3)
//! ```
//!
//! EL3 writes it at the start of the 4 KiB shared buffer.  Nothing in it is
//! trusted: every pointer must land inside that buffer (the spec requires EL3
//! to keep the whole manifest there), every array must fit, each list's
//! checksum must hold, and the values must make sense.  The parser works on a
//! copy of the buffer and returns plain data, so the rest of the RMM never
//! touches the shared buffer for boot information again.

use core::fmt;
use core::mem::size_of;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

/// The manifest major version we understand.  Minor revisions only add fields
/// at the end, so any minor >= [`MIN_MINOR`] is read as far as we know it.
pub const SUPPORTED_MAJOR: u32 = 0;
/// v0.2 introduced the NS DRAM layout, which the RMM needs to know which
/// granules exist; v0.3 added the console list.
pub const MIN_MINOR: u32 = 2;
const CONSOLES_MINOR: u32 = 3;

/// Size of the fixed part of a v0.3 manifest; the arrays follow it.
pub const HEADER_SIZE: usize = size_of::<RawManifest>();
const PAGE_SIZE: u64 = 0x1000;

// The structures EL3 writes, as the rmm-el3-comms-spec "RMM-EL3 Boot Manifest
// structure" lays them out (TF-A `rmm_core_manifest.h`).  Fields are
// little-endian (EL3 runs little-endian) and byte-aligned, so a buffer at any
// address can be read in place and the layout is the same on the host.

/// `struct rmm_manifest` v0.3, the fixed part.
#[repr(C)]
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
struct RawManifest {
    /// Major in bits 30:16, minor in 15:0; bit 31 is RES0.
    version: U32,
    padding: U32,
    /// Platform data (opaque to the RMM).
    plat_data: U64,
    /// `struct ns_dram_info` (v0.2).
    plat_dram: RawList,
    /// `struct console_list` (v0.3).
    plat_console: RawList,
}

/// `struct ns_dram_info` / `struct console_list`: a count, a pointer to that
/// many entries, and a checksum chosen so that the count, the pointer, the
/// entries' summed fields and the checksum add up to zero.
#[repr(C)]
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
struct RawList {
    num: U64,
    ptr: U64,
    checksum: U64,
}

/// `struct ns_dram_bank`.
#[repr(C)]
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
struct RawBank {
    base: U64,
    size: U64,
}

/// `struct console_info`.
#[repr(C)]
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
struct RawConsole {
    base: U64,
    map_pages: U64,
    name: [u8; CONSOLE_NAME_LEN],
    clk_in_hz: U64,
    baud_rate: U64,
    /// RES0 in v0.3.
    flags: U64,
}

const _: () = {
    use core::mem::offset_of;
    assert!(size_of::<RawManifest>() == 64);
    assert!(offset_of!(RawManifest, plat_data) == 8);
    assert!(offset_of!(RawManifest, plat_dram) == 16);
    assert!(offset_of!(RawManifest, plat_console) == 40);
    assert!(size_of::<RawBank>() == 16);
    assert!(size_of::<RawConsole>() == 48);
    assert!(offset_of!(RawConsole, name) == 16);
    assert!(offset_of!(RawConsole, clk_in_hz) == 24);
    assert!(offset_of!(RawConsole, flags) == 40);
};

/// Most NS DRAM banks we keep (QEMU has one).
pub const MAX_DRAM_BANKS: usize = 16;
/// Most consoles we keep (QEMU has one).
pub const MAX_CONSOLES: usize = 4;
/// Most MMIO pages one console may ask us to map.
pub const MAX_CONSOLE_PAGES: u64 = 16;
/// `console_info.name` length (RMM_CONSOLE_MAX_NAME_LEN).
pub const CONSOLE_NAME_LEN: usize = 8;

/// One NS DRAM bank (`struct ns_dram_bank`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DramBank {
    pub base: u64,
    pub size: u64,
}

impl DramBank {
    /// One past the last byte (cannot overflow: checked by the parser).
    pub fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// One console (`struct console_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsoleInfo {
    pub base: u64,
    pub map_pages: u64,
    pub name: [u8; CONSOLE_NAME_LEN],
    pub clk_in_hz: u64,
    pub baud_rate: u64,
}

impl ConsoleInfo {
    /// The name up to its NUL, or `"?"` if it is not text.
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(CONSOLE_NAME_LEN);
        core::str::from_utf8(&self.name[..len]).unwrap_or("?")
    }

    /// Size of the MMIO window to map.
    pub fn map_size(&self) -> u64 {
        self.map_pages * PAGE_SIZE
    }
}

/// The validated content of a boot manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootManifest {
    pub version: u32,
    banks: [DramBank; MAX_DRAM_BANKS],
    num_banks: usize,
    consoles: [ConsoleInfo; MAX_CONSOLES],
    num_consoles: usize,
}

impl BootManifest {
    pub fn major(&self) -> u32 {
        (self.version >> 16) & 0x7fff
    }

    pub fn minor(&self) -> u32 {
        self.version & 0xffff
    }

    pub fn dram_banks(&self) -> &[DramBank] {
        &self.banks[..self.num_banks]
    }

    pub fn consoles(&self) -> &[ConsoleInfo] {
        &self.consoles[..self.num_consoles]
    }
}

/// Which list of the manifest a problem is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    PlatData,
    Dram,
    Consoles,
}

impl fmt::Display for List {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            List::PlatData => "plat_data",
            List::Dram => "NS DRAM banks",
            List::Consoles => "consoles",
        })
    }
}

/// Why a manifest was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// The version is not one we can read.
    Version(u32),
    /// The buffer is too small to hold even the fixed part.
    Truncated,
    /// A pointer that does not lead to a whole, aligned array after the
    /// fixed part inside the shared buffer.
    Pointer(List, u64),
    /// More entries than we keep.
    TooMany(List, u64),
    /// The list's two's-complement checksum does not sum to zero.
    Checksum(List),
    /// A DRAM bank that is empty, not page aligned or wraps around.
    Bank(usize),
    /// DRAM banks not in ascending order or overlapping.
    BankOrder(usize),
    /// A console with an unaligned base or a bad page count.
    Console(usize),
}

impl ManifestError {
    /// The `RMM_BOOT_COMPLETE` error for this problem (rmm-el3-comms-spec,
    /// "Boot error handling and return values").
    pub fn boot_error(&self) -> i64 {
        use shared::abi::rmm_el3::*;
        match self {
            ManifestError::Version(_) => E_RMM_BOOT_MANIFEST_VERSION_NOT_SUPPORTED,
            _ => E_RMM_BOOT_MANIFEST_DATA_ERROR,
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ManifestError::Version(v) => {
                write!(f, "boot manifest version {}.{} not supported", (v >> 16) & 0x7fff, v & 0xffff)
            }
            ManifestError::Truncated => write!(f, "boot manifest truncated"),
            ManifestError::Pointer(l, p) => write!(f, "boot manifest {l} pointer {p:#x} outside the shared buffer"),
            ManifestError::TooMany(l, n) => write!(f, "boot manifest lists {n} {l}, too many"),
            ManifestError::Checksum(l) => write!(f, "boot manifest {l} checksum mismatch"),
            ManifestError::Bank(i) => write!(f, "boot manifest NS DRAM bank {i} invalid"),
            ManifestError::BankOrder(i) => write!(f, "boot manifest NS DRAM bank {i} overlaps or is out of order"),
            ManifestError::Console(i) => write!(f, "boot manifest console {i} invalid"),
        }
    }
}

/// Turns an EL3 pointer to `count` elements of `T` into those elements of
/// `buf` (which EL3 placed at physical address `buf_pa`), or refuses it: the
/// array must be 8-byte aligned, after the fixed part and wholly inside the
/// buffer.
fn array<T: FromBytes + KnownLayout + Immutable + Unaligned>(list: List, ptr: u64, count: u64, buf: &[u8], buf_pa: u64) -> Result<&[T], ManifestError> {
    let bad = ManifestError::Pointer(list, ptr);
    let off = ptr.checked_sub(buf_pa).ok_or(bad)?;
    if !ptr.is_multiple_of(8) || off < HEADER_SIZE as u64 {
        return Err(bad);
    }
    let len = count.checked_mul(size_of::<T>() as u64).ok_or(bad)?;
    let end = off.checked_add(len).ok_or(bad)?;
    if end > buf.len() as u64 {
        return Err(bad);
    }
    let bytes = buf.get(off as usize..end as usize).ok_or(bad)?;
    <[T]>::ref_from_bytes_with_elems(bytes, count as usize).map_err(|_| bad)
}

/// Parses and validates the manifest in `buf`, a copy of the shared buffer
/// that EL3 placed at physical address `buf_pa`.
pub fn parse(buf: &[u8], buf_pa: u64) -> Result<BootManifest, ManifestError> {
    let (raw, _) = RawManifest::ref_from_prefix(buf).map_err(|_| ManifestError::Truncated)?;
    let version = raw.version.get();
    let (major, minor) = ((version >> 16) & 0x7fff, version & 0xffff);
    if version & (1 << 31) != 0 || major != SUPPORTED_MAJOR || minor < MIN_MINOR {
        return Err(ManifestError::Version(version));
    }
    let mut m = BootManifest {
        version,
        banks: [DramBank::default(); MAX_DRAM_BANKS],
        num_banks: 0,
        consoles: [ConsoleInfo::default(); MAX_CONSOLES],
        num_consoles: 0,
    };

    // Platform data: opaque to us, but the spec says it lives in the buffer too.
    let plat_data = raw.plat_data.get();
    if plat_data != 0 {
        array::<U64>(List::PlatData, plat_data, 1, buf, buf_pa)?;
    }

    // NS DRAM layout: checksum over num_banks, the pointer and every bank's
    // base and size must be zero (two's complement).
    let (num, ptr) = (raw.plat_dram.num.get(), raw.plat_dram.ptr.get());
    let mut sum = num.wrapping_add(ptr).wrapping_add(raw.plat_dram.checksum.get());
    if num > MAX_DRAM_BANKS as u64 {
        return Err(ManifestError::TooMany(List::Dram, num));
    }
    if num > 0 {
        let banks = array::<RawBank>(List::Dram, ptr, num, buf, buf_pa)?;
        for (dst, b) in m.banks.iter_mut().zip(banks) {
            let bank = DramBank { base: b.base.get(), size: b.size.get() };
            sum = sum.wrapping_add(bank.base).wrapping_add(bank.size);
            *dst = bank;
        }
    }
    if sum != 0 {
        return Err(ManifestError::Checksum(List::Dram));
    }
    m.num_banks = num as usize;
    for (i, bank) in m.dram_banks().iter().enumerate() {
        if bank.size == 0 || !bank.base.is_multiple_of(PAGE_SIZE) || !bank.size.is_multiple_of(PAGE_SIZE) || bank.base.checked_add(bank.size).is_none() {
            return Err(ManifestError::Bank(i));
        }
        if i > 0 && bank.base < m.banks[i - 1].end() {
            return Err(ManifestError::BankOrder(i));
        }
    }

    if minor >= CONSOLES_MINOR {
        // Console list: checksum over num_consoles, the pointer and every
        // 64-bit word of each console_info, the name and the RES0 flags
        // included (the RMM-EL3 interface; TF-A's FVP platform and TF-RMM
        // sum so; TF-A 2.12.1's qemu platform left the name out, fixed by
        // Quadrant's TF-A patch 0005).
        let (num, ptr) = (raw.plat_console.num.get(), raw.plat_console.ptr.get());
        let mut sum = num.wrapping_add(ptr).wrapping_add(raw.plat_console.checksum.get());
        if num > MAX_CONSOLES as u64 {
            return Err(ManifestError::TooMany(List::Consoles, num));
        }
        if num > 0 {
            let consoles = array::<RawConsole>(List::Consoles, ptr, num, buf, buf_pa)?;
            for (dst, c) in m.consoles.iter_mut().zip(consoles) {
                let raw_flags = c.flags.get();
                let c = ConsoleInfo {
                    base: c.base.get(),
                    map_pages: c.map_pages.get(),
                    name: c.name,
                    clk_in_hz: c.clk_in_hz.get(),
                    baud_rate: c.baud_rate.get(),
                };
                sum = sum
                    .wrapping_add(c.base)
                    .wrapping_add(c.map_pages)
                    .wrapping_add(u64::from_le_bytes(c.name))
                    .wrapping_add(c.clk_in_hz)
                    .wrapping_add(c.baud_rate)
                    .wrapping_add(raw_flags);
                *dst = c;
            }
        }
        if sum != 0 {
            return Err(ManifestError::Checksum(List::Consoles));
        }
        m.num_consoles = num as usize;
        for (i, c) in m.consoles().iter().enumerate() {
            if !c.base.is_multiple_of(PAGE_SIZE)
                || c.map_pages == 0
                || c.map_pages > MAX_CONSOLE_PAGES
                || c.base.checked_add(c.map_size()).is_none()
            {
                return Err(ManifestError::Console(i));
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::abi::rmm_el3::*;

    const PA: u64 = 0x418f_f000;

    fn put(buf: &mut [u8], off: usize, v: u64) {
        buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn get(buf: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(buf[off..off + 8].try_into().unwrap())
    }

    /// Recomputes both checksums the way EL3 does, after a test edited fields.
    fn fix_checksums(buf: &mut [u8]) {
        let (n, p) = (get(buf, 16), get(buf, 24));
        let mut s = n.wrapping_add(p);
        for i in 0..n.min(MAX_DRAM_BANKS as u64) as usize {
            let off = p.wrapping_sub(PA).wrapping_add(i as u64 * 16) as usize;
            if off.checked_add(16).is_some_and(|e| e <= buf.len()) {
                s = s.wrapping_add(get(buf, off)).wrapping_add(get(buf, off + 8));
            }
        }
        put(buf, 32, s.wrapping_neg());
        let (n, p) = (get(buf, 40), get(buf, 48));
        let mut s = n.wrapping_add(p);
        for i in 0..n.min(MAX_CONSOLES as u64) as usize {
            let off = p.wrapping_sub(PA).wrapping_add(i as u64 * 48) as usize;
            if off.checked_add(48).is_some_and(|e| e <= buf.len()) {
                // Every word, as the spec and TF-A's FVP platform sum.
                for f in (0..48).step_by(8) {
                    s = s.wrapping_add(get(buf, off + f));
                }
            }
        }
        put(buf, 56, s.wrapping_neg());
    }

    /// The manifest TF-A's qemu platform writes (plat_rmmd_load_manifest),
    /// laid out as the RMM-EL3 spec and TF-A's FVP platform build it.
    fn qemu_manifest() -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        put(&mut b, 0, 0x3); // v0.3, padding 0
        put(&mut b, 16, 1);
        put(&mut b, 24, PA + 64);
        put(&mut b, 40, 1);
        put(&mut b, 48, PA + 80);
        put(&mut b, 64, 0x4000_0000);
        put(&mut b, 72, 0xc000_0000);
        put(&mut b, 80, 0x0900_0000);
        put(&mut b, 88, 1);
        b[96..101].copy_from_slice(b"pl011");
        put(&mut b, 104, 1);
        put(&mut b, 112, 115200);
        fix_checksums(&mut b);
        b
    }

    #[test]
    fn parses_the_qemu_manifest() {
        let m = parse(&qemu_manifest(), PA).unwrap();
        assert_eq!((m.major(), m.minor()), (0, 3));
        assert_eq!(m.dram_banks(), &[DramBank { base: 0x4000_0000, size: 0xc000_0000 }]);
        assert_eq!(m.consoles().len(), 1);
        let c = &m.consoles()[0];
        assert_eq!((c.base, c.map_pages, c.name(), c.baud_rate), (0x0900_0000, 1, "pl011", 115200));
    }

    /// TF-A 2.12.1's qemu platform without Quadrant's patch 0005 left the
    /// console name out of the checksum: refused, as TF-RMM refuses it.
    #[test]
    fn console_checksum_covers_every_word() {
        let mut b = qemu_manifest();
        let old_style = get(&b, 56).wrapping_add(get(&b, 96));
        put(&mut b, 56, old_style);
        assert_eq!(parse(&b, PA).unwrap_err(), ManifestError::Checksum(List::Consoles));
        // A flags word (RES0, but summed) changed without the checksum.
        let mut b = qemu_manifest();
        put(&mut b, 120, 1);
        assert_eq!(parse(&b, PA).unwrap_err(), ManifestError::Checksum(List::Consoles));
    }

    #[test]
    fn version_must_be_0_2_or_later_minor_of_major_0() {
        for v in [0x1_0003u64, 0x1, 0x8000_0003, 0x0] {
            let mut b = qemu_manifest();
            put(&mut b, 0, v);
            let e = parse(&b, PA).unwrap_err();
            assert_eq!(e, ManifestError::Version(v as u32));
            assert_eq!(e.boot_error(), E_RMM_BOOT_MANIFEST_VERSION_NOT_SUPPORTED);
        }
        // A later minor is read as far as we know it.
        let mut b = qemu_manifest();
        put(&mut b, 0, 0x7);
        assert!(parse(&b, PA).is_ok());
    }

    #[test]
    fn v0_2_has_no_console_list() {
        let mut b = qemu_manifest();
        put(&mut b, 0, 0x2);
        put(&mut b, 48, 0xdead_beef); // garbage where v0.3 has the console list
        let m = parse(&b, PA).unwrap();
        assert!(m.consoles().is_empty());
        assert_eq!(m.dram_banks().len(), 1);
    }

    #[test]
    fn truncated_buffer() {
        assert_eq!(parse(&[0u8; 63], PA), Err(ManifestError::Truncated));
    }

    #[test]
    fn checksums_are_checked() {
        let mut b = qemu_manifest();
        put(&mut b, 72, 0xc000_1000); // bank size changed without fixing the sum
        assert_eq!(parse(&b, PA), Err(ManifestError::Checksum(List::Dram)));
        let mut b = qemu_manifest();
        put(&mut b, 112, 9600);
        let e = parse(&b, PA).unwrap_err();
        assert_eq!(e, ManifestError::Checksum(List::Consoles));
        assert_eq!(e.boot_error(), E_RMM_BOOT_MANIFEST_DATA_ERROR);
        // The console name is part of the sum (the spec, FVP, TF-RMM).
        let mut b = qemu_manifest();
        b[96] = b'P';
        assert_eq!(parse(&b, PA), Err(ManifestError::Checksum(List::Consoles)));
    }

    #[test]
    fn bank_pointer_must_stay_in_the_buffer() {
        for ptr in [
            0,                // NULL with a bank count
            PA - 16,          // before the buffer
            PA + 8,           // inside the fixed part
            PA + 4096,        // just past the end
            PA + 4096 - 8,    // straddles the end
            PA + 65,          // misaligned
            u64::MAX - 7,     // wraps
            0x4010_0000,      // our own image
        ] {
            let mut b = qemu_manifest();
            put(&mut b, 24, ptr);
            fix_checksums(&mut b);
            assert_eq!(parse(&b, PA), Err(ManifestError::Pointer(List::Dram, ptr)), "ptr {ptr:#x}");
        }
    }

    #[test]
    fn console_pointer_must_stay_in_the_buffer() {
        for ptr in [PA + 4096 - 40, PA + 0x10_0000, 0x0900_0000] {
            let mut b = qemu_manifest();
            put(&mut b, 48, ptr);
            fix_checksums(&mut b);
            assert_eq!(parse(&b, PA), Err(ManifestError::Pointer(List::Consoles, ptr)), "ptr {ptr:#x}");
        }
    }

    #[test]
    fn plat_data_pointer_must_stay_in_the_buffer() {
        let mut b = qemu_manifest();
        put(&mut b, 8, 0x4000_0000);
        assert_eq!(parse(&b, PA), Err(ManifestError::Pointer(List::PlatData, 0x4000_0000)));
        put(&mut b, 8, PA + 0x800);
        assert!(parse(&b, PA).is_ok());
    }

    #[test]
    fn counts_are_bounded() {
        let mut b = qemu_manifest();
        put(&mut b, 16, u64::MAX / 8); // count * 16 would overflow
        fix_checksums(&mut b);
        assert_eq!(parse(&b, PA), Err(ManifestError::TooMany(List::Dram, u64::MAX / 8)));
        let mut b = qemu_manifest();
        put(&mut b, 40, 5);
        fix_checksums(&mut b);
        assert_eq!(parse(&b, PA), Err(ManifestError::TooMany(List::Consoles, 5)));
    }

    #[test]
    fn banks_are_validated() {
        let cases: [(u64, u64, ManifestError); 4] = [
            (0x4000_0800, 0x1000, ManifestError::Bank(0)),      // unaligned base
            (0x4000_0000, 0, ManifestError::Bank(0)),           // empty
            (0x4000_0000, 0x1800, ManifestError::Bank(0)),      // size not whole pages
            (0xffff_ffff_ffff_f000, 0x2000, ManifestError::Bank(0)), // wraps
        ];
        for (base, size, err) in cases {
            let mut b = qemu_manifest();
            put(&mut b, 64, base);
            put(&mut b, 72, size);
            fix_checksums(&mut b);
            assert_eq!(parse(&b, PA), Err(err), "{base:#x}+{size:#x}");
        }
    }

    #[test]
    fn banks_must_ascend_without_overlap() {
        // Two banks; the consoles move up to make room.
        let mut b = qemu_manifest();
        put(&mut b, 16, 2);
        put(&mut b, 48, PA + 96);
        b.copy_within(80..128, 96);
        put(&mut b, 80, 0x8_8000_0000);
        put(&mut b, 88, 0x1000_0000);
        fix_checksums(&mut b);
        assert_eq!(parse(&b, PA).unwrap().dram_banks().len(), 2);
        put(&mut b, 80, 0x4000_0000 + 0xbfff_f000); // starts inside bank 0
        fix_checksums(&mut b);
        assert_eq!(parse(&b, PA), Err(ManifestError::BankOrder(1)));
        put(&mut b, 80, 0x1000_0000); // below bank 0
        fix_checksums(&mut b);
        assert_eq!(parse(&b, PA), Err(ManifestError::BankOrder(1)));
    }

    #[test]
    fn consoles_are_validated() {
        for (base, pages) in [(0x0900_0100u64, 1u64), (0x0900_0000, 0), (0x0900_0000, MAX_CONSOLE_PAGES + 1), (!0xfffu64, 2)] {
            let mut b = qemu_manifest();
            put(&mut b, 80, base);
            put(&mut b, 88, pages);
            fix_checksums(&mut b);
            assert_eq!(parse(&b, PA), Err(ManifestError::Console(0)), "{base:#x} x{pages}");
        }
    }

    #[test]
    fn buffer_alignment_does_not_matter() {
        // The fields are read in place as byte-aligned little-endian values.
        let b = qemu_manifest();
        let mut shifted = vec![0u8; b.len() + 1];
        shifted[1..].copy_from_slice(&b);
        assert_eq!(parse(&shifted[1..], PA), parse(&b, PA));
        assert!(parse(&shifted[1..], PA).is_ok());
    }

    #[test]
    fn arrays_must_fit_in_a_short_buffer() {
        let b = qemu_manifest();
        // The console array is at 80..128: a buffer ending inside it is refused...
        assert_eq!(parse(&b[..127], PA), Err(ManifestError::Pointer(List::Consoles, PA + 80)));
        // ...as is one ending inside the bank array, before the consoles.
        assert_eq!(parse(&b[..79], PA), Err(ManifestError::Pointer(List::Dram, PA + 64)));
        // An array that ends exactly at the end of the buffer is fine.
        assert!(parse(&b[..128], PA).is_ok());
        let mut b = qemu_manifest();
        put(&mut b, 24, PA + 4096 - 16);
        put(&mut b, 4096 - 16, 0x4000_0000);
        put(&mut b, 4096 - 8, 0x1000);
        fix_checksums(&mut b);
        assert_eq!(parse(&b, PA).unwrap().dram_banks(), &[DramBank { base: 0x4000_0000, size: 0x1000 }]);
    }

    #[test]
    fn malformed_manifests_are_refused_not_panicked_on() {
        // A fixed-seed xorshift: header words and array entries set to values
        // near the edges of the buffer and of u64, checksums sometimes fixed,
        // the buffer sometimes cut short.  Every outcome must be a Result.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let interesting = [0, 1, 2, 3, 4, 5, 16, 17, PA, PA + 8, PA + 64, PA + 72, PA + 4080, PA + 4088, PA + 4096, u64::MAX, u64::MAX - 7, 1 << 63];
        for _ in 0..20_000 {
            let mut b = qemu_manifest();
            for _ in 0..1 + next() % 4 {
                let word = (next() % 16) as usize * 8;
                let r = next();
                let v = if r % 3 == 0 { r } else { interesting[(r >> 8) as usize % interesting.len()] };
                put(&mut b, word, v);
            }
            if next() % 2 == 0 {
                fix_checksums(&mut b);
            }
            let len = if next() % 4 == 0 { (next() % 4097) as usize } else { b.len() };
            if let Ok(m) = parse(&b[..len], PA) {
                assert!(m.dram_banks().len() <= MAX_DRAM_BANKS && m.consoles().len() <= MAX_CONSOLES);
            }
        }
    }

    #[test]
    fn empty_lists_are_allowed() {
        let mut b = vec![0u8; 4096];
        put(&mut b, 0, 0x3);
        let m = parse(&b, PA).unwrap();
        assert!(m.dram_banks().is_empty() && m.consoles().is_empty());
        // ...but their checksums still count.
        put(&mut b, 32, 1);
        assert_eq!(parse(&b, PA), Err(ManifestError::Checksum(List::Dram)));
    }
}
