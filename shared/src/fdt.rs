//! Flattened device tree access through the `fdt` crate, with the checks that
//! make a DTB handed over by another world safe to read.
//!
//! Note: `fdt` 0.1.5 indexes slices and `expect`s on malformed input (bad string
//! offsets, names that are not UTF-8, blocks outside the blob), which would let a
//! bad manifest panic an image.  [`parse`] therefore walks the whole blob with
//! bounds checks first (devicetree spec v0.4 §5) and only then hands it to the
//! crate.  Use [`parse`]/[`from_addr`], never `Fdt::new` directly.
pub use fdt::{Fdt, FdtError, node::FdtNode};

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
const HEADER_SIZE: usize = 40;

fn be32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// NUL-terminated UTF-8 string at `off` in `b`; returns its length without NUL.
fn cstr_len(b: &[u8], off: usize) -> Option<usize> {
    let rest = b.get(off..)?;
    let n = rest.iter().position(|&c| c == 0)?;
    core::str::from_utf8(&rest[..n]).ok()?;
    Some(n)
}

/// Checks every structural property of a DTB that the `fdt` crate assumes.
pub fn validate(blob: &[u8]) -> Result<(), FdtError> {
    let bad = FdtError::BufferTooSmall;
    if blob.len() < HEADER_SIZE {
        return Err(bad);
    }
    if be32(blob, 0) != Some(FDT_MAGIC) {
        return Err(FdtError::BadMagic);
    }
    let h = |i: usize| be32(blob, i * 4).map(|v| v as usize).ok_or(bad);
    let (total, off_struct, off_strings, off_rsv) = (h(1)?, h(2)?, h(3)?, h(4)?);
    let (version, size_strings, size_struct) = (h(5)?, h(8)?, h(9)?);
    if total > blob.len() || total < HEADER_SIZE || version < 17 {
        return Err(bad);
    }
    let blob = &blob[..total];
    let structs = blob.get(off_struct..off_struct.checked_add(size_struct).ok_or(bad)?).ok_or(bad)?;
    let strings = blob.get(off_strings..off_strings.checked_add(size_strings).ok_or(bad)?).ok_or(bad)?;
    // Memory reservation block: (address, size) pairs ending with (0, 0).
    let mut r = off_rsv;
    loop {
        let pair = blob.get(r..r.checked_add(16).ok_or(bad)?).ok_or(bad)?;
        if pair.iter().all(|&b| b == 0) {
            break;
        }
        r += 16;
    }
    let mut off = 0usize;
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let token = be32(structs, off).ok_or(bad)?;
        off += 4;
        match token {
            FDT_BEGIN_NODE => {
                if depth == 0 && seen_root {
                    return Err(bad); // a second root
                }
                seen_root = true;
                let n = cstr_len(structs, off).ok_or(bad)?;
                off = (off + n + 1 + 3) & !3;
                depth += 1;
                if depth > 64 {
                    return Err(bad);
                }
            }
            FDT_END_NODE => {
                depth = depth.checked_sub(1).ok_or(bad)?;
            }
            FDT_PROP => {
                if depth == 0 {
                    return Err(bad);
                }
                let len = be32(structs, off).ok_or(bad)? as usize;
                let nameoff = be32(structs, off + 4).ok_or(bad)? as usize;
                cstr_len(strings, nameoff).ok_or(bad)?;
                off += 8;
                structs.get(off..off.checked_add(len).ok_or(bad)?).ok_or(bad)?;
                off = (off + len + 3) & !3;
            }
            FDT_NOP => {}
            FDT_END => {
                return if depth == 0 && seen_root { Ok(()) } else { Err(bad) };
            }
            _ => return Err(bad),
        }
    }
}

/// Validates `blob` and opens it with the `fdt` crate.
pub fn parse(blob: &[u8]) -> Result<Fdt<'_>, FdtError> {
    validate(blob)?;
    Fdt::new(blob)
}

/// DTB magic (devicetree spec §5.2).
pub const FDT_MAGIC: u32 = 0xd00d_feed;

/// Reads the `totalsize` of a DTB header, checking the magic.  Returns `None`
/// if `header` is not a DTB.
pub fn total_size(header: &[u8]) -> Option<usize> {
    if header.len() < 8 {
        return None;
    }
    let magic = u32::from_be_bytes(header[0..4].try_into().ok()?);
    if magic != FDT_MAGIC {
        return None;
    }
    Some(u32::from_be_bytes(header[4..8].try_into().ok()?) as usize)
}

/// Maps a DTB that another stage left in memory at `addr`, refusing one that
/// has no magic or claims more than `max_size` bytes.
///
/// # Safety
/// `addr..addr + max_size` must be readable memory that nobody writes while the
/// returned value is alive.
pub unsafe fn from_addr(addr: usize, max_size: usize) -> Result<Fdt<'static>, FdtError> {
    if addr == 0 {
        return Err(FdtError::BadPtr);
    }
    // SAFETY: the caller promises at least 8 readable bytes at addr (max_size >= 8 checked below).
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, 8.min(max_size)) };
    let size = total_size(header).ok_or(FdtError::BadMagic)?;
    if size > max_size || size < 40 {
        return Err(FdtError::BufferTooSmall);
    }
    // SAFETY: size <= max_size, which the caller promises is readable and stable.
    let bytes = unsafe { core::slice::from_raw_parts(addr as *const u8, size) };
    parse(bytes)
}

/// Reads a property made of 32-bit big-endian cells as one integer of 1 or 2 cells.
pub fn prop_u64(node: &FdtNode, name: &str) -> Option<u64> {
    let p = node.property(name)?;
    match p.value.len() {
        4 => Some(u32::from_be_bytes(p.value.try_into().ok()?) as u64),
        8 => Some(u64::from_be_bytes(p.value.try_into().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_dtb() {
        assert_eq!(total_size(&[0; 8]), None);
        assert_eq!(total_size(&[0xd0, 0x0d]), None);
        assert_eq!(total_size(&[0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0x10, 0]), Some(0x1000));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut junk = vec![0xd0, 0x0d, 0xfe, 0xed, 0, 0, 0, 64];
        junk.resize(64, 0xff);
        assert!(parse(&junk).is_err());
    }

    /// A tiny valid DTB built by hand: / { a = <1>; n { }; };
    fn tiny() -> Vec<u8> {
        let mut st = Vec::new();
        let w = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_be_bytes());
        w(&mut st, FDT_BEGIN_NODE); w(&mut st, 0); // "" root name + pad
        w(&mut st, FDT_PROP); w(&mut st, 4); w(&mut st, 0); w(&mut st, 1);
        w(&mut st, FDT_BEGIN_NODE); st.extend_from_slice(b"n\0\0\0");
        w(&mut st, FDT_END_NODE); w(&mut st, FDT_END_NODE); w(&mut st, FDT_END);
        let strings = b"a\0".to_vec();
        let off_rsv = 40; let off_struct = 56; let off_strings = off_struct + st.len();
        let total = off_strings + strings.len();
        let mut b = Vec::new();
        for v in [FDT_MAGIC, total as u32, off_struct as u32, off_strings as u32, off_rsv as u32, 17, 16, 0, strings.len() as u32, st.len() as u32] {
            w(&mut b, v);
        }
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&st);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn tiny_dtb_parses() {
        let b = tiny();
        let f = parse(&b).expect("valid");
        assert!(f.find_node("/n").is_some());
        assert_eq!(prop_u64(&f.find_node("/").unwrap(), "a"), Some(1));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_handled() {
        let b = tiny();
        for len in 0..b.len() {
            let _ = parse(&b[..len]).map(|f| f.all_nodes().count());
        }
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                if let Ok(f) = parse(&c) {
                    for n in f.all_nodes() {
                        for p in n.properties() {
                            let _ = p.as_str();
                        }
                    }
                }
            }
        }
    }
}
