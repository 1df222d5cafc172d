//! Signed SP packages (issue H): an ed25519 signature block inside the SP
//! package's header page, checked against the keys the SPMC manifest trusts.
//!
//! The block is a Quadrant extension of SPKG v2 (docs/spmc.md, "Signed SP
//! packages").  sptool writes the 24-byte header and leaves the rest of the
//! page before `pm_offset` (at least 0x1000, page aligned) zero; nothing in
//! TF-A, Hafnium or this SPMC reads it.  The block lives there, at
//! [`BLOCK_OFFSET`], so a signed package is still a valid SPKG v2 package
//! for every reader that does not know about signatures.
//!
//! | offset | size | field                                             |
//! |--------|------|---------------------------------------------------|
//! | 0      | 4    | magic 0x47495351 ("QSIG", little endian)          |
//! | 4      | 4    | version 1                                         |
//! | 8      | 4    | algorithm 1 = ed25519 (RFC 8032, pure)            |
//! | 12     | 4    | block size 128                                    |
//! | 16     | 32   | signer's public key                               |
//! | 48     | 64   | signature                                         |
//! | 112    | 16   | reserved, zero                                    |
//!
//! **What is signed**: the package as BL2 loads it, from its first byte to
//! the last byte of the image (`img_offset + img_size`), with the 128 bytes
//! of the block counted as zeros.  That covers the SPKG header, the
//! partition manifest, the image and the padding between them.
//!
//! Malformed input is an error, never a panic: every offset is checked
//! against the package and the region it was loaded into.

use super::package::SpPackage;
use ed25519_compact::{PublicKey, Signature};

/// Where the block starts in the package (inside the header page).
pub const BLOCK_OFFSET: usize = 0x800;
pub const BLOCK_SIZE: usize = 128;
pub const MAGIC: u32 = 0x4749_5351;
pub const VERSION: u32 = 1;
pub const ALG_ED25519: u32 = 1;
pub const KEY_SIZE: usize = 32;
pub const SIGNATURE_SIZE: usize = 64;
/// Most trusted keys kept per list.
pub const MAX_KEYS: usize = 4;

/// An ed25519 public key as the SPMC manifest lists it.
pub type Key = [u8; KEY_SIZE];

/// Up to [`MAX_KEYS`] trusted keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyList {
    keys: [Key; MAX_KEYS],
    len: usize,
}

impl KeyList {
    /// The keys of a DTB byte-string property: `N * 32` bytes, `N >= 1`.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(KEY_SIZE) || bytes.len() / KEY_SIZE > MAX_KEYS {
            return None;
        }
        let mut l = KeyList::default();
        for (slot, k) in l.keys.iter_mut().zip(bytes.chunks_exact(KEY_SIZE)) {
            slot.copy_from_slice(k);
        }
        l.len = bytes.len() / KEY_SIZE;
        Some(l)
    }

    pub fn as_slice(&self) -> &[Key] {
        &self.keys[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Why a package's signature was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// No signature block (no magic at [`BLOCK_OFFSET`]).
    Unsigned,
    /// A block is there but is not one this SPMC reads.
    Malformed(&'static str),
    /// The manifest trusts no key for this partition.
    NoTrustedKey,
    /// Signed by a key the manifest does not list for this partition.
    UntrustedKey,
    /// The signature does not match the package: tampered, or wrongly signed.
    BadSignature,
}

impl SignatureError {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Unsigned => "signature: package not signed (no signature block)",
            Self::Malformed(_) => "signature: malformed signature block",
            Self::NoTrustedKey => "signature: the SPMC manifest trusts no key for this partition",
            Self::UntrustedKey => "signature: signed with a key the SPMC manifest does not trust",
            Self::BadSignature => "signature: does not verify (package tampered or wrongly signed)",
        }
    }
}

impl core::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "{}: {why}", self.as_str()),
            _ => f.write_str(self.as_str()),
        }
    }
}

fn word(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// The signature block of a package, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub key: Key,
    pub signature: [u8; SIGNATURE_SIZE],
}

impl Block {
    /// Reads the block of the package `pkg` whose bytes start `region`.
    pub fn parse(region: &[u8], pkg: &SpPackage) -> Result<Self, SignatureError> {
        if (pkg.pm_offset as usize) < BLOCK_OFFSET + BLOCK_SIZE {
            return Err(SignatureError::Malformed("manifest offset leaves no room for the block"));
        }
        let b = region.get(BLOCK_OFFSET..BLOCK_OFFSET + BLOCK_SIZE).ok_or(SignatureError::Malformed("package too short"))?;
        if word(b, 0) != MAGIC {
            return Err(SignatureError::Unsigned);
        }
        if word(b, 4) != VERSION {
            return Err(SignatureError::Malformed("unknown version"));
        }
        if word(b, 8) != ALG_ED25519 {
            return Err(SignatureError::Malformed("unknown algorithm"));
        }
        if word(b, 12) as usize != BLOCK_SIZE {
            return Err(SignatureError::Malformed("wrong block size"));
        }
        if b[112..].iter().any(|&x| x != 0) {
            return Err(SignatureError::Malformed("reserved bytes not zero"));
        }
        let mut key = [0; KEY_SIZE];
        key.copy_from_slice(&b[16..48]);
        let mut signature = [0; SIGNATURE_SIZE];
        signature.copy_from_slice(&b[48..112]);
        Ok(Block { key, signature })
    }
}

/// The signed message in three pieces: the package before the block, the
/// block's length in zeros, the package after it up to the image's end.
/// `None` if the package does not hold both.
pub fn message<'a>(region: &'a [u8], pkg: &SpPackage) -> Option<(&'a [u8], usize, &'a [u8])> {
    let end = (pkg.img_offset as usize).checked_add(pkg.img_size as usize)?;
    if end < BLOCK_OFFSET + BLOCK_SIZE {
        return None;
    }
    let whole = region.get(..end)?;
    Some((&whole[..BLOCK_OFFSET], BLOCK_SIZE, &whole[BLOCK_OFFSET + BLOCK_SIZE..]))
}

/// Checks the package in `region` (parsed as `pkg`) against `trusted`; on
/// success returns the key that signed it.
pub fn verify(region: &[u8], pkg: &SpPackage, trusted: &[Key]) -> Result<Key, SignatureError> {
    if trusted.is_empty() {
        return Err(SignatureError::NoTrustedKey);
    }
    let block = Block::parse(region, pkg)?;
    if !trusted.contains(&block.key) {
        return Err(SignatureError::UntrustedKey);
    }
    let (before, zeros, after) = message(region, pkg).ok_or(SignatureError::Malformed("package too short"))?;
    // A listed key that is not a valid curve point cannot verify anything.
    let pk = PublicKey::from_slice(&block.key).map_err(|_| SignatureError::BadSignature)?;
    let sig = Signature::from_slice(&block.signature).map_err(|_| SignatureError::BadSignature)?;
    let mut state = pk.verify_incremental(&sig).map_err(|_| SignatureError::BadSignature)?;
    state.absorb(before);
    state.absorb([0u8; BLOCK_SIZE].get(..zeros).unwrap_or(&[]));
    state.absorb(after);
    state.verify().map_err(|_| SignatureError::BadSignature)?;
    Ok(block.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::package::SPKG_MAGIC;
    use ed25519_compact::{KeyPair, Seed};

    const LEN: usize = 0x10_0000;

    fn keypair(n: u8) -> KeyPair {
        KeyPair::from_seed(Seed::new([n; 32]))
    }

    /// An sptool-style package: header, a fake manifest at 0x1000, an image at 0x4000.
    fn package() -> Vec<u8> {
        let mut v = vec![0u8; LEN];
        for (i, w) in [SPKG_MAGIC, 2, 0x1000, 0x205, 0x4000, 0x1234].iter().enumerate() {
            v[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        for (i, b) in v[0x1000..0x1205].iter_mut().enumerate() {
            *b = i as u8;
        }
        for (i, b) in v[0x4000..0x5234].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        v
    }

    /// The test's own signer, written from the format table above.
    fn sign(v: &mut [u8], kp: &KeyPair) {
        let end = 0x4000 + 0x1234;
        let mut msg = v[..end].to_vec();
        msg[BLOCK_OFFSET..BLOCK_OFFSET + BLOCK_SIZE].fill(0);
        let sig = kp.sk.sign(&msg, None);
        let b = &mut v[BLOCK_OFFSET..BLOCK_OFFSET + BLOCK_SIZE];
        b.fill(0);
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&ALG_ED25519.to_le_bytes());
        b[12..16].copy_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
        b[16..48].copy_from_slice(kp.pk.as_ref());
        b[48..112].copy_from_slice(sig.as_ref());
    }

    fn signed(n: u8) -> Vec<u8> {
        let mut v = package();
        sign(&mut v, &keypair(n));
        v
    }

    fn check(v: &[u8], trusted: &[Key]) -> Result<Key, SignatureError> {
        let pkg = SpPackage::parse(v).unwrap();
        verify(v, &pkg, trusted)
    }

    fn key(n: u8) -> Key {
        *keypair(n).pk
    }

    #[test]
    fn a_signed_package_verifies_with_its_key() {
        assert_eq!(check(&signed(1), &[key(1)]), Ok(key(1)));
        assert_eq!(check(&signed(1), &[key(2), key(3), key(1)]), Ok(key(1)), "any key of the list");
    }

    #[test]
    fn unsigned_is_refused() {
        assert_eq!(check(&package(), &[key(1)]), Err(SignatureError::Unsigned));
    }

    #[test]
    fn no_trusted_key_is_refused() {
        assert_eq!(check(&signed(1), &[]), Err(SignatureError::NoTrustedKey));
        assert_eq!(check(&package(), &[]), Err(SignatureError::NoTrustedKey));
    }

    #[test]
    fn unknown_key_is_refused() {
        assert_eq!(check(&signed(2), &[key(1)]), Err(SignatureError::UntrustedKey));
    }

    #[test]
    fn every_signed_byte_is_covered() {
        let good = signed(1);
        // header, padding before and after the block, manifest, gap, image, last image byte
        for at in [0usize, 5, 23, 24, 0x7ff, 0x880, 0xfff, 0x1000, 0x1204, 0x2000, 0x4000, 0x4000 + 0x1233] {
            let mut t = good.clone();
            t[at] ^= 0x01;
            let r = match SpPackage::parse(&t) {
                Ok(p) => verify(&t, &p, &[key(1)]),
                Err(_) => continue, // a header byte the package parser already refuses
            };
            assert_eq!(r, Err(SignatureError::BadSignature), "byte {at:#x}");
        }
        // After the image: not part of the package, not signed.
        let mut t = good.clone();
        t[0x4000 + 0x1234] ^= 1;
        assert_eq!(check(&t, &[key(1)]), Ok(key(1)));
    }

    #[test]
    fn signature_or_key_swapped_is_refused() {
        // The block's key replaced by another trusted key: the signature no longer matches.
        let mut t = signed(1);
        t[BLOCK_OFFSET + 16..BLOCK_OFFSET + 48].copy_from_slice(&key(2));
        assert_eq!(check(&t, &[key(1), key(2)]), Err(SignatureError::BadSignature));
        // One signature bit flipped.
        let mut t = signed(1);
        t[BLOCK_OFFSET + 48 + 10] ^= 0x80;
        assert_eq!(check(&t, &[key(1)]), Err(SignatureError::BadSignature));
        // Non-canonical S (top bits set): refused, not a panic.
        let mut t = signed(1);
        t[BLOCK_OFFSET + 111] = 0xff;
        assert_eq!(check(&t, &[key(1)]), Err(SignatureError::BadSignature));
        // All-zero and all-ones signatures.
        for fill in [0x00, 0xff] {
            let mut t = signed(1);
            t[BLOCK_OFFSET + 48..BLOCK_OFFSET + 112].fill(fill);
            assert_eq!(check(&t, &[key(1)]), Err(SignatureError::BadSignature), "fill {fill:#x}");
        }
    }

    #[test]
    fn a_trusted_key_that_is_no_curve_point_verifies_nothing() {
        let bogus = [0xffu8; 32];
        let mut t = signed(1);
        t[BLOCK_OFFSET + 16..BLOCK_OFFSET + 48].copy_from_slice(&bogus);
        assert_eq!(check(&t, &[bogus]), Err(SignatureError::BadSignature));
        let zero = [0u8; 32];
        t[BLOCK_OFFSET + 16..BLOCK_OFFSET + 48].copy_from_slice(&zero);
        assert_eq!(check(&t, &[zero]), Err(SignatureError::BadSignature));
    }

    #[test]
    fn malformed_blocks_are_refused() {
        let cases: [(usize, u32, &str); 3] = [(4, 2, "unknown version"), (8, 2, "unknown algorithm"), (12, 64, "wrong block size")];
        for (at, value, why) in cases {
            let mut t = signed(1);
            t[BLOCK_OFFSET + at..BLOCK_OFFSET + at + 4].copy_from_slice(&value.to_le_bytes());
            assert_eq!(check(&t, &[key(1)]), Err(SignatureError::Malformed(why)));
        }
        let mut t = signed(1);
        t[BLOCK_OFFSET + 127] = 1;
        assert_eq!(check(&t, &[key(1)]), Err(SignatureError::Malformed("reserved bytes not zero")));
        // Magic off by one bit: no block at all.
        let mut t = signed(1);
        t[BLOCK_OFFSET] ^= 1;
        assert_eq!(check(&t, &[key(1)]), Err(SignatureError::Unsigned));
    }

    #[test]
    fn short_or_oddly_laid_out_packages_are_refused() {
        let good = signed(1);
        // A package whose manifest starts inside the block's place.
        let mut p = SpPackage::parse(&good).unwrap();
        p.pm_offset = 0x800;
        assert_eq!(verify(&good, &p, &[key(1)]), Err(SignatureError::Malformed("manifest offset leaves no room for the block")));
        // A region cut before the block, and before the image's end.
        let p = SpPackage::parse(&good).unwrap();
        assert_eq!(verify(&good[..0x810], &p, &[key(1)]), Err(SignatureError::Malformed("package too short")));
        assert_eq!(verify(&good[..0x5000], &p, &[key(1)]), Err(SignatureError::Malformed("package too short")));
        // Sizes that overflow.
        let mut p = SpPackage::parse(&good).unwrap();
        p.img_offset = u32::MAX;
        p.img_size = u32::MAX;
        assert_eq!(verify(&good, &p, &[key(1)]), Err(SignatureError::Malformed("package too short")));
    }

    #[test]
    fn every_truncation_and_block_bit_flip_is_handled() {
        let good = signed(1);
        let p = SpPackage::parse(&good).unwrap();
        for len in (0..0x5300).step_by(0x41) {
            let _ = verify(&good[..len], &p, &[key(1)]);
        }
        for i in BLOCK_OFFSET..BLOCK_OFFSET + BLOCK_SIZE {
            for bit in [0, 3, 7] {
                let mut t = good.clone();
                t[i] ^= 1 << bit;
                assert!(verify(&t, &p, &[key(1)]).is_err(), "byte {i:#x} bit {bit}");
            }
        }
    }

    #[test]
    fn key_lists_from_manifest_bytes() {
        let two: Vec<u8> = [key(1), key(2)].concat();
        let l = KeyList::from_bytes(&two).unwrap();
        assert_eq!(l.as_slice(), &[key(1), key(2)]);
        assert_eq!(KeyList::from_bytes(&[]), None);
        assert_eq!(KeyList::from_bytes(&two[..33]), None);
        assert_eq!(KeyList::from_bytes(&[0u8; 32 * (MAX_KEYS + 1)]), None);
        assert_eq!(KeyList::from_bytes(&[0u8; 32 * MAX_KEYS]).map(|l| l.as_slice().len()), Some(MAX_KEYS));
    }
}
