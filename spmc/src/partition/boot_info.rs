//! The FF-A boot information blob (DEN0077A v1.1 §5.4 "Boot information
//! protocol"; v1.2 §5.4): what an SP whose manifest asks for it (`boot-info`
//! node + `gp-register-num`) finds at the address in that register when its
//! first context starts.
//!
//! Layout (all little endian):
//!
//! | offset | size | header field (§5.4.2, Table 5.9)              |
//! |--------|------|-----------------------------------------------|
//! | 0      | 4    | signature 0x0FFA                              |
//! | 4      | 4    | version (FF-A version of the blob: 1.1, 1.2)  |
//! | 8      | 4    | size of the blob (header + descriptors)       |
//! | 12     | 4    | size of one descriptor (32)                   |
//! | 16     | 4    | number of descriptors                         |
//! | 20     | 4    | offset of the descriptor array (32)           |
//! | 24     | 8    | reserved, zero                                |
//!
//! | offset | size | descriptor field (§5.4.1, Table 5.8)          |
//! |--------|------|-----------------------------------------------|
//! | 0      | 16   | name (here a NUL-padded string)               |
//! | 16     | 1    | type: bit 7 = 0 standard, bits 6:0 = 0 FDT    |
//! | 17     | 1    | reserved                                      |
//! | 18     | 2    | flags: 1:0 name format (0 string), 3:2 content format (0 address) |
//! | 20     | 4    | size of the information                       |
//! | 24     | 8    | contents: its address                          |
//!
//! Like Hafnium, the SPMC writes the blob at the start of the SP package
//! (over the SPKG header, already parsed and, in signed builds, already
//! verified): it is in the SP's own memory, below its image, where an SP
//! such as OP-TEE (which checks the manifest lies between its load address
//! and its image) expects the partition manifest it points to.

/// Blob signature (§5.4.2).
pub const SIGNATURE: u32 = 0x0ffa;
pub const HEADER_SIZE: usize = 32;
pub const DESC_SIZE: usize = 32;
/// Descriptor type: standard (bit 7 clear), FF-A manifest FDT (0).
pub const TYPE_STD_FDT: u8 = 0;
/// Flags: name as a string (bits 1:0 = 0), contents an address (bits 3:2 = 0).
pub const FLAGS_STRING_NAME_ADDRESS: u16 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// The buffer for the blob is too small.
    NoRoom,
    /// The SP's FF-A version has no boot information protocol (v1.0 had
    /// another one, which we do not offer).
    Version,
}

impl BootInfoError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoRoom => "no room for the boot information blob before the partition manifest",
            Self::Version => "boot information asked by an FF-A v1.0 partition (v1.1 protocol only)",
        }
    }
}

/// Writes the blob into `out` for an SP of FF-A version `ffa_version`
/// (`major << 16 | minor`), listing the partition manifest at `manifest`
/// (address, size) if it is given; returns the blob's size.
pub fn write_blob(out: &mut [u8], ffa_version: u32, manifest: Option<(u64, u32)>) -> Result<usize, BootInfoError> {
    if ffa_version >> 16 != 1 || ffa_version & 0xffff < 1 {
        return Err(BootInfoError::Version);
    }
    // The blob's version: the SP's own, at most 1.2 (what we implement).
    let version = ffa_version.min(0x0001_0002);
    let count = manifest.is_some() as usize;
    let size = HEADER_SIZE + count * DESC_SIZE;
    let blob = out.get_mut(..size).ok_or(BootInfoError::NoRoom)?;
    blob.fill(0);
    let put32 = |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put32(blob, 0, SIGNATURE);
    put32(blob, 4, version);
    put32(blob, 8, size as u32);
    put32(blob, 12, DESC_SIZE as u32);
    put32(blob, 16, count as u32);
    put32(blob, 20, HEADER_SIZE as u32);
    if let Some((addr, len)) = manifest {
        let d = &mut blob[HEADER_SIZE..HEADER_SIZE + DESC_SIZE];
        let name = b"FF-A manifest";
        d[..name.len()].copy_from_slice(name);
        d[16] = TYPE_STD_FDT;
        d[18..20].copy_from_slice(&FLAGS_STRING_NAME_ADDRESS.to_le_bytes());
        put32(d, 20, len);
        d[24..32].copy_from_slice(&addr.to_le_bytes());
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn blob_with_the_manifest() {
        let mut buf = [0xaau8; 128];
        let n = write_blob(&mut buf, 0x0001_0002, Some((0x0e80_1000, 0x3a0))).unwrap();
        assert_eq!(n, 64);
        assert_eq!(u32_at(&buf, 0), 0xffa);
        assert_eq!(u32_at(&buf, 4), 0x0001_0002);
        assert_eq!(u32_at(&buf, 8), 64);
        assert_eq!(u32_at(&buf, 12), 32);
        assert_eq!(u32_at(&buf, 16), 1);
        assert_eq!(u32_at(&buf, 20), 32);
        assert_eq!(&buf[24..32], &[0; 8], "reserved");
        assert_eq!(&buf[32..45], b"FF-A manifest");
        assert_eq!(&buf[45..48], &[0; 3], "name NUL padded");
        assert_eq!((buf[48], buf[49], u16::from_le_bytes([buf[50], buf[51]])), (0, 0, 0), "FDT, string name, address");
        assert_eq!(u32_at(&buf, 52), 0x3a0);
        assert_eq!(u64::from_le_bytes(buf[56..64].try_into().unwrap()), 0x0e80_1000);
        assert_eq!(buf[64], 0xaa, "nothing written past the blob");
    }

    #[test]
    fn versions() {
        let mut buf = [0u8; 64];
        write_blob(&mut buf, 0x0001_0001, None).unwrap();
        assert_eq!((u32_at(&buf, 4), u32_at(&buf, 8), u32_at(&buf, 16)), (0x0001_0001, 32, 0));
        // A newer minor than ours: the blob is ours (1.2).
        write_blob(&mut buf, 0x0001_0003, None).unwrap();
        assert_eq!(u32_at(&buf, 4), 0x0001_0002);
        assert_eq!(write_blob(&mut buf, 0x0001_0000, None), Err(BootInfoError::Version));
        assert_eq!(write_blob(&mut buf, 0x0002_0000, None), Err(BootInfoError::Version));
    }

    #[test]
    fn too_small() {
        let mut buf = [0u8; 63];
        assert_eq!(write_blob(&mut buf, 0x0001_0002, Some((1, 1))), Err(BootInfoError::NoRoom));
        assert_eq!(write_blob(&mut buf[..31], 0x0001_0002, None), Err(BootInfoError::NoRoom));
    }
}
