//! SP package header, as TF-A's `tools/sptool/sptool.py` writes it (the format
//! Hafnium reads): six little-endian u32 words at the package base.
//!
//! | word | field      |                                         |
//! |------|------------|-----------------------------------------|
//! | 0    | magic      | 0x474b5053 ("SPKG")                     |
//! | 1    | version    | 1 or 2                                  |
//! | 2    | pm_offset  | partition manifest DTB, page aligned    |
//! | 3    | pm_size    |                                         |
//! | 4    | img_offset | partition image, page aligned           |
//! | 5    | img_size   |                                         |

pub const SPKG_MAGIC: u32 = 0x474b_5053;
pub const HEADER_SIZE: usize = 24;
const PAGE: u32 = 0x1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpPackage {
    pub version: u32,
    pub pm_offset: u32,
    pub pm_size: u32,
    pub img_offset: u32,
    pub img_size: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageError {
    BadMagic(u32),
    BadVersion(u32),
    /// Offsets not page aligned, overlapping, or outside the package region.
    BadLayout,
}

impl core::fmt::Display for PackageError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "bad SP package magic {m:#x}"),
            Self::BadVersion(v) => write!(f, "unsupported SP package version {v}"),
            Self::BadLayout => write!(f, "bad SP package layout"),
        }
    }
}

impl SpPackage {
    /// Checks the header at the start of `region` (the whole package region,
    /// `region.len()` bytes long) and that both blobs lie inside it.
    pub fn parse(region: &[u8]) -> Result<Self, PackageError> {
        let word = |i: usize| -> Result<u32, PackageError> {
            let b = region.get(i * 4..i * 4 + 4).ok_or(PackageError::BadLayout)?;
            Ok(u32::from_le_bytes(b.try_into().map_err(|_| PackageError::BadLayout)?))
        };
        let magic = word(0)?;
        if magic != SPKG_MAGIC {
            return Err(PackageError::BadMagic(magic));
        }
        let version = word(1)?;
        if !(1..=2).contains(&version) {
            return Err(PackageError::BadVersion(version));
        }
        let p = SpPackage { version, pm_offset: word(2)?, pm_size: word(3)?, img_offset: word(4)?, img_size: word(5)? };
        let len = region.len() as u64;
        let pm_end = p.pm_offset as u64 + p.pm_size as u64;
        let img_end = p.img_offset as u64 + p.img_size as u64;
        if p.pm_offset % PAGE != 0
            || p.img_offset % PAGE != 0
            || (p.pm_offset as usize) < HEADER_SIZE
            || p.pm_size == 0
            || pm_end > p.img_offset as u64
            || img_end > len
            || p.img_size == 0
        {
            return Err(PackageError::BadLayout);
        }
        Ok(p)
    }

    /// The partition manifest bytes inside `region`.
    pub fn manifest<'a>(&self, region: &'a [u8]) -> &'a [u8] {
        &region[self.pm_offset as usize..(self.pm_offset + self.pm_size) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(words: [u32; 6], len: usize) -> Vec<u8> {
        let mut v: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        v.resize(len, 0);
        v
    }

    #[test]
    fn sptool_default_layout() {
        let r = header([SPKG_MAGIC, 2, 0x1000, 0x205, 0x4000, 0x68], 0x10_0000);
        let p = SpPackage::parse(&r).unwrap();
        assert_eq!((p.pm_offset, p.img_offset), (0x1000, 0x4000));
        assert_eq!(p.manifest(&r).len(), 0x205);
    }

    #[test]
    fn bad_headers_are_errors() {
        let len = 0x10_0000;
        assert_eq!(SpPackage::parse(&header([0, 2, 0x1000, 1, 0x4000, 1], len)), Err(PackageError::BadMagic(0)));
        assert_eq!(SpPackage::parse(&header([SPKG_MAGIC, 3, 0x1000, 1, 0x4000, 1], len)), Err(PackageError::BadVersion(3)));
        // unaligned, overlapping, past the end, empty
        for w in [
            [SPKG_MAGIC, 2, 0x1001, 1, 0x4000, 1],
            [SPKG_MAGIC, 2, 0x1000, 0x4000, 0x4000, 1],
            [SPKG_MAGIC, 2, 0x1000, 1, 0x4000, 0x10_0000],
            [SPKG_MAGIC, 2, 0x1000, 0, 0x4000, 1],
            [SPKG_MAGIC, 2, 0, 1, 0x4000, 1],
            [SPKG_MAGIC, 1, 0x1000, u32::MAX, 0x4000, u32::MAX],
        ] {
            assert_eq!(SpPackage::parse(&header(w, len)), Err(PackageError::BadLayout), "{w:x?}");
        }
        assert_eq!(SpPackage::parse(&[0x53, 0x50]), Err(PackageError::BadLayout));
    }
}
