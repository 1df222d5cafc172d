//! Flattened device tree reading (devicetree spec v0.4 §5), bounds-checked,
//! for DTBs handed over by another world (SPMC and partition manifests, the DTB
//! TF-A gives BL33).
//!
//! Note: this is our own reader rather than the `fdt` crate.  `fdt` 0.1.5
//! indexes slices and `expect`s on malformed input (bad string offsets, names
//! that are not UTF-8, blocks outside the blob), and mis-walks valid trees
//! with FDT_NOP tokens among a node's properties — which TF-A's BL2 leaves in
//! the DTB it edits for BL33 — finding no nodes or asserting.  [`parse`]
//! validates the whole blob first; every later read is checked again and yields
//! `None` rather than panicking.

/// Why a blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// No blob at the given address.
    BadPtr,
    /// The header's magic is not 0xd00dfeed.
    BadMagic,
    /// A size, offset, token or string is out of bounds or malformed.
    BufferTooSmall,
}

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

/// Validates `blob` and opens it for reading.
pub fn parse(blob: &[u8]) -> Result<Fdt<'_>, FdtError> {
    validate(blob)?;
    let h = |i: usize| be32(blob, i * 4).map(|v| v as usize).ok_or(FdtError::BufferTooSmall);
    let (off_struct, off_strings, size_strings, size_struct) = (h(2)?, h(3)?, h(8)?, h(9)?);
    let structs = blob.get(off_struct..off_struct + size_struct).ok_or(FdtError::BufferTooSmall)?;
    let strings = blob.get(off_strings..off_strings + size_strings).ok_or(FdtError::BufferTooSmall)?;
    Ok(Fdt { structs, strings, total: h(1)? })
}

/// A validated device tree.
#[derive(Clone, Copy, Debug)]
pub struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
    total: usize,
}

/// One node; `'a` is the blob's lifetime.
#[derive(Clone, Copy, Debug)]
pub struct FdtNode<'b, 'a> {
    fdt: &'b Fdt<'a>,
    /// The node's name with its unit address (`memory@40000000`); "" for the root.
    pub name: &'a str,
    /// Offset of the first token after the node's name.
    body: usize,
}

/// Cell counts for `reg`-style properties of a node's children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellSizes {
    pub address_cells: usize,
    pub size_cells: usize,
}

/// One property of a node.
#[derive(Clone, Copy, Debug)]
pub struct NodeProperty<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

impl<'a> NodeProperty<'a> {
    /// The value as one NUL-terminated UTF-8 string.
    pub fn as_str(&self) -> Option<&'a str> {
        let (last, body) = self.value.split_last()?;
        if *last != 0 {
            return None;
        }
        let end = body.iter().position(|&c| c == 0).unwrap_or(body.len());
        core::str::from_utf8(&body[..end]).ok()
    }

    /// The value as 32-bit big-endian cells.
    pub fn cells(&self) -> impl Iterator<Item = u32> + 'a {
        self.value.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

enum Token<'a> {
    Begin(&'a str),
    End,
    Prop(NodeProperty<'a>),
    Nop,
    Finish,
}

impl<'a> Fdt<'a> {
    /// The blob's `totalsize`.
    pub fn total_size(&self) -> usize {
        self.total
    }

    /// The token at `off` and the offset of the next one.
    fn token(&self, off: usize) -> Option<(Token<'a>, usize)> {
        let st = self.structs;
        let t = be32(st, off)?;
        let off = off + 4;
        Some(match t {
            FDT_BEGIN_NODE => {
                let n = cstr_len(st, off)?;
                let name = core::str::from_utf8(st.get(off..off + n)?).ok()?;
                (Token::Begin(name), (off + n + 1 + 3) & !3)
            }
            FDT_END_NODE => (Token::End, off),
            FDT_PROP => {
                let len = be32(st, off)? as usize;
                let nameoff = be32(st, off + 4)? as usize;
                let n = cstr_len(self.strings, nameoff)?;
                let name = core::str::from_utf8(self.strings.get(nameoff..nameoff + n)?).ok()?;
                let value = st.get(off + 8..(off + 8).checked_add(len)?)?;
                (Token::Prop(NodeProperty { name, value }), (off + 8 + len + 3) & !3)
            }
            FDT_NOP => (Token::Nop, off),
            FDT_END => (Token::Finish, off),
            _ => return None,
        })
    }

    /// The root node.
    pub fn root(&self) -> Option<FdtNode<'_, 'a>> {
        let mut off = 0;
        loop {
            match self.token(off)? {
                (Token::Nop, next) => off = next,
                (Token::Begin(name), body) => return Some(FdtNode { fdt: self, name, body }),
                _ => return None,
            }
        }
    }

    /// The node at an absolute path such as `/hypervisor/vm1`; a path component
    /// without `@` also matches a node name with a unit address.
    pub fn find_node(&self, path: &str) -> Option<FdtNode<'_, 'a>> {
        let mut node = self.root()?;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            node = node.children().find(|c| node_name_matches(c.name, comp))?;
        }
        Some(node)
    }

    /// Every node in the tree, in structure-block order.
    pub fn all_nodes(&self) -> impl Iterator<Item = FdtNode<'_, 'a>> + '_ {
        let mut off = 0;
        core::iter::from_fn(move || {
            loop {
                let (tok, next) = self.token(off)?;
                off = next;
                match tok {
                    Token::Begin(name) => return Some(FdtNode { fdt: self, name, body: next }),
                    Token::Finish => return None,
                    _ => {}
                }
            }
        })
    }
}

fn node_name_matches(name: &str, comp: &str) -> bool {
    name == comp || (!comp.contains('@') && name.split('@').next() == Some(comp))
}

impl<'b, 'a> FdtNode<'b, 'a> {
    /// The node's properties (NOP tokens among them are skipped).
    pub fn properties(&self) -> impl Iterator<Item = NodeProperty<'a>> + 'b {
        let fdt = self.fdt;
        let mut off = Some(self.body);
        core::iter::from_fn(move || {
            loop {
                let (tok, next) = fdt.token(off?)?;
                off = Some(next);
                match tok {
                    Token::Prop(p) => return Some(p),
                    Token::Nop => {}
                    _ => {
                        off = None;
                        return None;
                    }
                }
            }
        })
    }

    /// The property called `name`.
    pub fn property(&self, name: &str) -> Option<NodeProperty<'a>> {
        self.properties().find(|p| p.name == name)
    }

    /// `#address-cells`/`#size-cells` this node gives its children (devicetree
    /// spec §2.3.5: 2 and 1 when absent).  Values outside u32 cells come back as
    /// they are; callers bound them.
    pub fn cell_sizes(&self) -> CellSizes {
        let get = |n: &str, default: usize| {
            self.property(n).and_then(|p| p.cells().next()).map(|v| v as usize).unwrap_or(default)
        };
        CellSizes { address_cells: get("#address-cells", 2), size_cells: get("#size-cells", 1) }
    }

    /// The node's direct children.
    pub fn children(&self) -> impl Iterator<Item = FdtNode<'b, 'a>> + 'b {
        let fdt = self.fdt;
        let mut off = Some(self.body);
        core::iter::from_fn(move || {
            let mut depth = 0usize;
            loop {
                let (tok, next) = fdt.token(off?)?;
                off = Some(next);
                match tok {
                    Token::Begin(name) => {
                        if depth == 0 {
                            // Skip the child's subtree so the next call resumes after it.
                            let child = FdtNode { fdt, name, body: next };
                            let mut d = 1usize;
                            let mut o = next;
                            while d > 0 {
                                let (t, n) = fdt.token(o)?;
                                o = n;
                                match t {
                                    Token::Begin(_) => d += 1,
                                    Token::End => d -= 1,
                                    Token::Finish => return None,
                                    _ => {}
                                }
                            }
                            off = Some(o);
                            return Some(child);
                        }
                        depth += 1;
                    }
                    Token::End => {
                        if depth == 0 {
                            off = None;
                            return None;
                        }
                        depth -= 1;
                    }
                    Token::Finish => {
                        off = None;
                        return None;
                    }
                    _ => {}
                }
            }
        })
    }
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
    // SAFETY: the caller promises addr..addr + max_size readable; we read min(8, max_size) of it.
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
pub fn prop_u64(node: &FdtNode<'_, '_>, name: &str) -> Option<u64> {
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
        assert_eq!(parse(&[]).unwrap_err(), FdtError::BufferTooSmall);
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
        assert_eq!(f.all_nodes().count(), 2);
        assert_eq!(f.root().unwrap().children().count(), 1);
    }

    /// A tree with NOPs between properties and around child nodes, as TF-A's BL2
    /// leaves them: / { nop; a; nop; c@1 { nop; b; }; nop; d { }; };
    #[test]
    fn nops_anywhere_are_skipped() {
        let mut st = Vec::new();
        let w = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_be_bytes());
        w(&mut st, FDT_BEGIN_NODE); w(&mut st, 0);
        w(&mut st, FDT_NOP);
        w(&mut st, FDT_PROP); w(&mut st, 4); w(&mut st, 0); w(&mut st, 7);
        w(&mut st, FDT_NOP);
        w(&mut st, FDT_BEGIN_NODE); st.extend_from_slice(b"c@1\0");
        w(&mut st, FDT_NOP);
        w(&mut st, FDT_PROP); w(&mut st, 6); w(&mut st, 2); st.extend_from_slice(b"hello\0\0\0");
        w(&mut st, FDT_END_NODE);
        w(&mut st, FDT_NOP);
        w(&mut st, FDT_BEGIN_NODE); st.extend_from_slice(b"d\0\0\0");
        w(&mut st, FDT_END_NODE);
        w(&mut st, FDT_END_NODE); w(&mut st, FDT_END);
        let strings = b"a\0b\0".to_vec();
        let off_struct = 56; let off_strings = off_struct + st.len();
        let total = off_strings + strings.len();
        let mut b = Vec::new();
        for v in [FDT_MAGIC, total as u32, off_struct as u32, off_strings as u32, 40, 17, 16, 0, strings.len() as u32, st.len() as u32] {
            w(&mut b, v);
        }
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&st);
        b.extend_from_slice(&strings);
        let f = parse(&b).unwrap();
        let root = f.root().unwrap();
        assert_eq!(prop_u64(&root, "a"), Some(7));
        let kids: Vec<&str> = root.children().map(|c| c.name).collect();
        assert_eq!(kids, ["c@1", "d"]);
        assert_eq!(f.find_node("/c").unwrap().property("b").unwrap().as_str(), Some("hello"));
        assert!(f.find_node("/c@2").is_none());
        assert_eq!(f.all_nodes().count(), 3);
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
                        let _ = n.children().count();
                    }
                    let _ = f.find_node("/n");
                }
            }
        }
    }
}
