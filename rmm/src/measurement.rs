//! Realm measurements (DEN0137 RMM 1.0, A7.1 "Realm measurements"): the Realm
//! Initial Measurement (RIM, slot 0) and four Realm Extensible Measurements
//! (REMs, slots 1..=4), with the hash algorithm the Realm parameters chose.
//!
//! The rules implemented (exactly what an external tool must reproduce):
//! - `H` is SHA-256 or SHA-512 over the bytes given.  A measurement is kept
//!   in 64 bytes; a SHA-256 one uses the first 32 and zeroes the rest.
//! - RMI_REALM_CREATE: RIM = H(P), P = a 4096-byte RmiRealmParams, all zero
//!   except `flags` (u64 at 0x0), `s2sz` (0x8), `sve_vl` (0x10), `num_bps`
//!   (0x18), `num_wps` (0x20), `pmu_num_ctrs` (0x28) and `hash_algo` (0x30) as
//!   the Host gave them (s2sz..pmu_num_ctrs stored as u32 LE, hash_algo as u8).
//! - RMI_DATA_CREATE: RIM = H(D), D = 256-byte RmmMeasurementDescriptorData:
//!   0x00 desc_type u8 = 0, 0x08 len u64 = 0x100, 0x10 rim (64 bytes, the
//!   current RIM, digest-size bytes then zero), 0x50 ipa u64, 0x58 flags u64
//!   (as given), 0x60 content (64 bytes: H(the 4 KiB granule) when flags bit 0
//!   (RMI_MEASURE_CONTENT) is set, else all zero).  DATA_CREATE_UNKNOWN does
//!   not change the RIM.
//! - RMI_REC_CREATE: RIM = H(D), D = 256-byte RmmMeasurementDescriptorRec:
//!   0x00 desc_type = 1, 0x08 len = 0x100, 0x10 rim, 0x50 content = H(R), R
//!   a 4096-byte RmiRecParams all zero except `flags` (0x0), `pc` (0x200) and
//!   `gprs[0..8]` (0x300..0x340) as given.
//! - RMI_RTT_INIT_RIPAS: for each RTT entry whose RIPAS it sets to RAM (in
//!   ascending IPA order, one per entry at the level the RTT walk ends at), RIM
//!   = H(D), D = 256-byte RmmMeasurementDescriptorRipas: 0x00 desc_type = 2,
//!   0x08 len = 0x100, 0x10 rim, 0x50 base u64, 0x58 top u64 (the entry's
//!   [base, top)).
//! - RSI_MEASUREMENT_EXTEND(i, size, value): REM[i] = H(REM[i][..digest] ||
//!   value[..size]).
//! All integers little-endian.

use shared::abi::rmi::{RmiRealmParams, RmiRecParams};
use sha2::{Digest, Sha256, Sha512};

pub const MAX_MEASUREMENT: usize = 64;
pub type Measurement = [u8; MAX_MEASUREMENT];

/// RmiHashAlgorithm values we implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    Sha256,
    Sha512,
}

impl HashAlgo {
    pub fn from_rmi(v: u64) -> Option<Self> {
        match v {
            0 => Some(Self::Sha256),
            1 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn to_rmi(self) -> u8 {
        match self {
            Self::Sha256 => 0,
            Self::Sha512 => 1,
        }
    }

    /// Digest size in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// H(parts...) in a 64-byte measurement.
    pub fn hash(self, parts: &[&[u8]]) -> Measurement {
        let mut out = [0u8; MAX_MEASUREMENT];
        match self {
            Self::Sha256 => {
                let mut h = Sha256::new();
                for p in parts {
                    h.update(p);
                }
                out[..32].copy_from_slice(&h.finalize());
            }
            Self::Sha512 => {
                let mut h = Sha512::new();
                for p in parts {
                    h.update(p);
                }
                out.copy_from_slice(&h.finalize());
            }
        }
        out
    }
}

const DESC_SIZE: usize = 0x100;
const DESC_DATA: u8 = 0;
const DESC_REC: u8 = 1;
const DESC_RIPAS: u8 = 2;

fn descriptor(kind: u8, algo: HashAlgo, rim: &Measurement) -> [u8; DESC_SIZE] {
    let mut d = [0u8; DESC_SIZE];
    d[0] = kind;
    d[8..16].copy_from_slice(&(DESC_SIZE as u64).to_le_bytes());
    let n = algo.size();
    d[0x10..0x10 + n].copy_from_slice(&rim[..n]);
    d
}

/// The initial RIM from the Host's Realm parameters.
pub fn rim_init(algo: HashAlgo, p: &RmiRealmParams) -> Measurement {
    let mut buf = [0u8; 0x1000];
    buf[0..8].copy_from_slice(&p.flags.to_le_bytes());
    for (off, v) in [(0x8, p.s2sz), (0x10, p.sve_vl), (0x18, p.num_bps), (0x20, p.num_wps), (0x28, p.pmu_num_ctrs)] {
        buf[off..off + 4].copy_from_slice(&(v as u32).to_le_bytes());
    }
    buf[0x30] = p.hash_algo as u8;
    algo.hash(&[&buf])
}

/// RIM extension by RMI_DATA_CREATE of `content` at `ipa` with `flags`.
pub fn extend_data(algo: HashAlgo, rim: &mut Measurement, ipa: u64, flags: u64, content: &[u8; 0x1000]) {
    let mut d = descriptor(DESC_DATA, algo, rim);
    d[0x50..0x58].copy_from_slice(&ipa.to_le_bytes());
    d[0x58..0x60].copy_from_slice(&flags.to_le_bytes());
    if flags & shared::abi::rmi::RMI_MEASURE_CONTENT != 0 {
        let h = algo.hash(&[content]);
        d[0x60..0x60 + algo.size()].copy_from_slice(&h[..algo.size()]);
    }
    *rim = algo.hash(&[&d]);
}

/// RIM extension by RMI_REC_CREATE.
pub fn extend_rec(algo: HashAlgo, rim: &mut Measurement, p: &RmiRecParams) {
    let mut r = [0u8; 0x1000];
    r[0..8].copy_from_slice(&p.flags.to_le_bytes());
    r[0x200..0x208].copy_from_slice(&p.pc.to_le_bytes());
    for (i, g) in p.gprs.iter().enumerate() {
        r[0x300 + 8 * i..0x308 + 8 * i].copy_from_slice(&g.to_le_bytes());
    }
    let mut d = descriptor(DESC_REC, algo, rim);
    let h = algo.hash(&[&r]);
    d[0x50..0x50 + algo.size()].copy_from_slice(&h[..algo.size()]);
    *rim = algo.hash(&[&d]);
}

/// RIM extension by RMI_RTT_INIT_RIPAS for one RTT entry `[base, top)`.
pub fn extend_ripas(algo: HashAlgo, rim: &mut Measurement, base: u64, top: u64) {
    let mut d = descriptor(DESC_RIPAS, algo, rim);
    d[0x50..0x58].copy_from_slice(&base.to_le_bytes());
    d[0x58..0x60].copy_from_slice(&top.to_le_bytes());
    *rim = algo.hash(&[&d]);
}

/// REM extension by RSI_MEASUREMENT_EXTEND.
pub fn extend_rem(algo: HashAlgo, rem: &mut Measurement, value: &[u8]) {
    let old = *rem;
    *rem = algo.hash(&[&old[..algo.size()], value]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(m: &[u8]) -> String {
        m.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha_known_answers() {
        // FIPS 180-2 "abc".
        assert_eq!(hex(&HashAlgo::Sha256.hash(&[b"abc"])[..32]), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(HashAlgo::Sha256.hash(&[b"abc"])[32..], [0u8; 32]);
        assert!(hex(&HashAlgo::Sha512.hash(&[b"a", b"bc"])).starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn rim_init_uses_only_measured_fields() {
        let mut p = RmiRealmParams::zeroed();
        p.s2sz = 40;
        p.hash_algo = 0;
        let a = rim_init(HashAlgo::Sha256, &p);
        // Fields outside the measured set do not change the RIM.
        p.vmid = 7;
        p.rtt_base = 0x1234_5000;
        p.rpv[3] = 9;
        assert_eq!(rim_init(HashAlgo::Sha256, &p), a);
        // Measured ones do.
        p.num_bps = 1;
        assert_ne!(rim_init(HashAlgo::Sha256, &p), a);
        // The input is exactly the zero page with s2sz = 40 at 0x8.
        let mut page = [0u8; 4096];
        page[8] = 40;
        assert_eq!(a, HashAlgo::Sha256.hash(&[&page]));
    }

    #[test]
    fn data_descriptor_layout() {
        let algo = HashAlgo::Sha256;
        let mut rim = algo.hash(&[b"start"]);
        let start = rim;
        let content = [0x5au8; 4096];
        extend_data(algo, &mut rim, 0x8000_0000, 1, &content);
        let mut d = [0u8; 256];
        d[8] = 0;
        d[8..16].copy_from_slice(&0x100u64.to_le_bytes());
        d[0x10..0x30].copy_from_slice(&start[..32]);
        d[0x50..0x58].copy_from_slice(&0x8000_0000u64.to_le_bytes());
        d[0x58] = 1;
        d[0x60..0x80].copy_from_slice(&algo.hash(&[&content])[..32]);
        assert_eq!(rim, algo.hash(&[&d]));
        // Unmeasured content: zero content field.
        let mut rim2 = start;
        extend_data(algo, &mut rim2, 0x8000_0000, 0, &content);
        d[0x58] = 0;
        d[0x60..0x80].fill(0);
        assert_eq!(rim2, algo.hash(&[&d]));
    }

    #[test]
    fn rec_and_ripas_and_rem() {
        for algo in [HashAlgo::Sha256, HashAlgo::Sha512] {
            let mut p = RmiRecParams::zeroed();
            p.pc = 0x8000_0000;
            p.flags = 1;
            let mut rim = [0u8; 64];
            extend_rec(algo, &mut rim, &p);
            let before = rim;
            p.mpidr = 3; // not measured
            let mut rim_b = [0u8; 64];
            extend_rec(algo, &mut rim_b, &p);
            assert_eq!(rim_b, before);
            extend_ripas(algo, &mut rim, 0, 0x1000);
            assert_ne!(rim, before);
            let mut rem = [0u8; 64];
            extend_rem(algo, &mut rem, b"x");
            let mut expect = vec![0u8; algo.size()];
            expect.push(b'x');
            assert_eq!(rem, algo.hash(&[&expect]));
        }
    }
}
