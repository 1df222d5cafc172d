//! xtask's own Realm Initial Measurement (DEN0137 RMM 1.0, A7.1 "Realm
//! measurements"), written from the rules (see docs/rmm.md "Measurement")
//! and NOT from rmm's code, so `realm_boot` checks rmm against an
//! independent implementation: the RIM realm-guest reads with
//! RSI_MEASUREMENT_READ must equal what this computes from the same image
//! and the Realm parameters ns-hyp uses (ns-hyp/src/realm/host.rs).  The
//! same rules give the Linux Realm's RIM ([`linux_rim`]), which `realm_linux`
//! expects in the token Linux reads through configfs-tsm.
//!
//! The rules:
//! - REALM_CREATE: RIM = H(P), P a 4096-byte RmiRealmParams copy holding only
//!   flags (u64 at 0x0), s2sz, sve_vl, num_bps, num_wps, pmu_num_ctrs (u32 at
//!   0x8, 0x10, 0x18, 0x20, 0x28) and hash_algo (u8 at 0x30).
//! - Every measurement step: RIM = H(D), D a 256-byte descriptor: desc_type
//!   (u8 at 0x0), len = 0x100 (u64 at 0x8), the current RIM (digest bytes at
//!   0x10, zero padded to 64), then per type:
//!   DATA (0): ipa u64 at 0x50, flags u64 at 0x58, content at 0x60 =
//!   H(granule) if flags bit 0 (measure content) else zero;
//!   REC (1): content at 0x50 = H(R), R a 4096-byte RmiRecParams copy
//!   holding only flags (0x0), pc (0x200), gprs x0..x7 (0x300);
//!   RIPAS (2): base u64 at 0x50, top u64 at 0x58, one per RTT entry made RAM.
//! - REMs start as zero (REALM_CREATE); RSI_MEASUREMENT_EXTEND(i, size,
//!   value): REM[i] = H(REM[i] || value[..size]), the old REM as its digest
//!   bytes (the rule as TF-RMM's `measurement_extend` applies it: one hash
//!   over the current measurement then the new bytes).
//! Little-endian; SHA-256 digests are 32 bytes.

use sha2::{Digest, Sha256};

/// What ns-hyp's realm modes use (ns-hyp/src/realm/host.rs).
pub struct RealmParams {
    pub flags: u64,
    pub s2sz: u32,
    /// RmiRealmParams num_bps / num_wps (0 is reserved).
    pub num_bps: u32,
    pub num_wps: u32,
    pub ipa_base: u64,
    pub rec_flags: u64,
    pub pc: u64,
    pub gprs: [u64; 8],
}

pub const NS_HYP_REALM: RealmParams =
    RealmParams { flags: 0, s2sz: 39, num_bps: 1, num_wps: 1, ipa_base: 0x4000_0000, rec_flags: 1, pc: 0x4000_0000, gprs: [0; 8] };

fn h(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn descriptor(kind: u8, rim: &[u8; 32]) -> [u8; 0x100] {
    let mut d = [0u8; 0x100];
    d[0] = kind;
    d[8..16].copy_from_slice(&0x100u64.to_le_bytes());
    d[0x10..0x30].copy_from_slice(rim);
    d
}

/// A RIM being computed step by step, one method per measured RMI command
/// (the rules in the module comment).
pub struct Rim([u8; 32]);

impl Rim {
    /// RMI_REALM_CREATE: H(the measured fields of RmiRealmParams).
    pub fn realm_create(p: &RealmParams) -> Rim {
        let mut params = [0u8; 0x1000];
        params[0..8].copy_from_slice(&p.flags.to_le_bytes());
        params[8..12].copy_from_slice(&p.s2sz.to_le_bytes());
        params[0x18..0x1c].copy_from_slice(&p.num_bps.to_le_bytes());
        params[0x20..0x24].copy_from_slice(&p.num_wps.to_le_bytes());
        params[0x30] = 0; // SHA-256
        Rim(h(&params))
    }

    /// RMI_RTT_INIT_RIPAS: one RIPAS descriptor for the entry [base, top).
    pub fn ripas(&mut self, base: u64, top: u64) {
        let mut d = descriptor(2, &self.0);
        d[0x50..0x58].copy_from_slice(&base.to_le_bytes());
        d[0x58..0x60].copy_from_slice(&top.to_le_bytes());
        self.0 = h(&d);
    }

    /// RMI_DATA_CREATE with RMI_MEASURE_CONTENT of the granule at `ipa`
    /// holding `bytes` (at most 4 KiB; the rest of the granule zero).
    pub fn data(&mut self, ipa: u64, bytes: &[u8]) {
        assert!(bytes.len() <= 0x1000);
        let mut page = [0u8; 0x1000];
        page[..bytes.len()].copy_from_slice(bytes);
        let mut d = descriptor(0, &self.0);
        d[0x50..0x58].copy_from_slice(&ipa.to_le_bytes());
        d[0x58..0x60].copy_from_slice(&1u64.to_le_bytes());
        d[0x60..0x80].copy_from_slice(&h(&page));
        self.0 = h(&d);
    }

    /// RMI_DATA_CREATE of every granule of `bytes` placed at `ipa`.
    pub fn data_pages(&mut self, ipa: u64, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(0x1000).enumerate() {
            self.data(ipa + i as u64 * 0x1000, chunk);
        }
    }

    /// RMI_REC_CREATE: H(the measured fields of RmiRecParams).
    pub fn rec(&mut self, flags: u64, pc: u64, gprs: &[u64; 8]) {
        let mut rec = [0u8; 0x1000];
        rec[0..8].copy_from_slice(&flags.to_le_bytes());
        rec[0x200..0x208].copy_from_slice(&pc.to_le_bytes());
        for (i, g) in gprs.iter().enumerate() {
            rec[0x300 + 8 * i..0x308 + 8 * i].copy_from_slice(&g.to_le_bytes());
        }
        let mut d = descriptor(1, &self.0);
        d[0x50..0x70].copy_from_slice(&h(&rec));
        self.0 = h(&d);
    }

    pub fn value(&self) -> [u8; 32] {
        self.0
    }
}

/// The RIM of a Realm built as ns-hyp builds it around `image` (padded to
/// whole pages with zeros): REALM_CREATE, RTT_INIT_RIPAS of the image's
/// pages (one 4 KiB level-3 entry each), DATA_CREATE of each page with its
/// content measured, REC_CREATE.  SHA-256 (hash_algo 0).
pub fn rim(p: &RealmParams, image: &[u8]) -> [u8; 32] {
    let mut m = Rim::realm_create(p);
    let pages = image.len().div_ceil(0x1000);
    for i in 0..pages as u64 {
        let base = p.ipa_base + i * 0x1000;
        m.ripas(base, base + 0x1000);
    }
    m.data_pages(p.ipa_base, image);
    m.rec(p.rec_flags, p.pc, &p.gprs);
    m.value()
}

/// What ns-hyp's `quadrant.realm-vm` Realm is made of (ns-hyp/src/realm/linux.rs,
/// `LinuxRealm::create`), as xtask knows it independently: the files it
/// preloaded, the parameters it wrote in ns-hyp's bootargs, and the DTB
/// ns-hyp printed (checked by the caller).
pub struct LinuxRealm<'a> {
    /// The Realm's RAM: [ram_ipa, ram_ipa + ram_size), RIPAS RAM from
    /// RTT_INIT_RIPAS under one level-2 RTT (2 MiB entries).
    pub ram_ipa: u64,
    pub ram_size: u64,
    /// (IPA, bytes) in DATA_CREATE order: the DTB, the kernel Image, the initramfs.
    pub payloads: &'a [(u64, &'a [u8])],
    /// Number of RECs: REC 0 runnable at `entry` with x0 = `dtb_ipa`, the
    /// others not runnable, same pc, x0..x7 = 0 (started by PSCI CPU_ON).
    pub recs: usize,
    pub entry: u64,
    pub dtb_ipa: u64,
}

/// The Linux Realm's RIM (the steps of `LinuxRealm::create` in ns-hyp, the
/// rules of the module comment): REALM_CREATE with ns-hyp's RmiRealmParams;
/// RTT_INIT_RIPAS over the whole RAM, where the deepest RTT is the level-2 one
/// (RTT_CREATE at the RAM's 1 GiB block before it), so one RIPAS descriptor
/// per 2 MiB entry; DATA_CREATE of each payload page (content measured, the
/// last page's tail zero: QEMU's loader leaves the rest of RAM zero, the DTB
/// sits in zeroed memory); a REC descriptor per REC, in MPIDR order.  The
/// pages the Realm touches later (DATA_CREATE_UNKNOWN) are not measured.
pub fn linux_rim(r: &LinuxRealm) -> [u8; 32] {
    const BLOCK: u64 = 2 << 20;
    assert!(r.ram_size.is_multiple_of(BLOCK) && r.ram_ipa.is_multiple_of(BLOCK));
    let mut m = Rim::realm_create(&RealmParams { ipa_base: r.ram_ipa, ..NS_HYP_REALM });
    let mut base = r.ram_ipa;
    while base < r.ram_ipa + r.ram_size {
        m.ripas(base, base + BLOCK);
        base += BLOCK;
    }
    for (ipa, bytes) in r.payloads {
        m.data_pages(*ipa, bytes);
    }
    for i in 0..r.recs {
        let (flags, x0) = if i == 0 { (1, r.dtb_ipa) } else { (0, 0) };
        m.rec(flags, r.entry, &[x0, 0, 0, 0, 0, 0, 0, 0]);
    }
    m.value()
}

/// A SHA-256 REM after RSI_MEASUREMENT_EXTEND with `data`.
pub fn rem_extend(old: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut m = old.to_vec();
    m.extend_from_slice(data);
    h(&m)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        assert_eq!(hex(&h(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn rem_extend_is_one_hash_of_old_then_data() {
        // sha256(32 zero bytes || "abc"), computed independently (Python hashlib).
        assert_eq!(hex(&rem_extend(&[0; 32], b"abc")), "365aa7d8f7f9402c4b9434502b4cc89ddb09fe50d7cd95b493b834c62d5a5370");
        assert_ne!(rem_extend(&[0; 32], b"abc"), rem_extend(&rem_extend(&[0; 32], b"abc"), b"abc"));
    }

    #[test]
    fn rim_depends_on_every_input() {
        let img = vec![1u8; 0x1800];
        let base = rim(&NS_HYP_REALM, &img);
        // Padding to a page does not change it (the last page is zero-filled).
        let mut padded = img.clone();
        padded.resize(0x2000, 0);
        assert_eq!(rim(&NS_HYP_REALM, &padded), base);
        let mut other = img.clone();
        other[0x1700] ^= 1;
        assert_ne!(rim(&NS_HYP_REALM, &other), base);
        let p = RealmParams { pc: 0x4000_1000, ..NS_HYP_REALM };
        assert_ne!(rim(&p, &img), base);
        let p = RealmParams { s2sz: 40, ..NS_HYP_REALM };
        assert_ne!(rim(&p, &img), base);
    }

    #[test]
    fn linux_rim_depends_on_every_input() {
        let dtb = vec![0xd0u8; 0x900];
        let kernel = vec![0x4bu8; 0x2100];
        let initrd = vec![0x1du8; 0x1000];
        let payloads = [(0x4000_0000, &dtb[..]), (0x4020_0000, &kernel[..]), (0x4800_0000, &initrd[..])];
        let r = LinuxRealm { ram_ipa: 0x4000_0000, ram_size: 256 << 20, payloads: &payloads, recs: 2, entry: 0x4020_0000, dtb_ipa: 0x4000_0000 };
        let base = linux_rim(&r);
        // Written out step by step: the same value.
        let mut m = Rim::realm_create(&NS_HYP_REALM);
        for i in 0..128u64 {
            m.ripas(0x4000_0000 + i * (2 << 20), 0x4000_0000 + (i + 1) * (2 << 20));
        }
        m.data(0x4000_0000, &dtb);
        for (i, c) in kernel.chunks(0x1000).enumerate() {
            m.data(0x4020_0000 + i as u64 * 0x1000, c);
        }
        m.data(0x4800_0000, &initrd);
        m.rec(1, 0x4020_0000, &[0x4000_0000, 0, 0, 0, 0, 0, 0, 0]);
        m.rec(0, 0x4020_0000, &[0; 8]);
        assert_eq!(m.value(), base);
        assert_ne!(linux_rim(&LinuxRealm { recs: 1, ..r }), base);
        assert_ne!(linux_rim(&LinuxRealm { ram_size: 128 << 20, ..r }), base);
        assert_ne!(linux_rim(&LinuxRealm { entry: 0x4040_0000, ..r }), base);
        let mut k2 = kernel.clone();
        k2[0x2000] ^= 1;
        let p2 = [payloads[0], (0x4020_0000, &k2[..]), payloads[2]];
        assert_ne!(linux_rim(&LinuxRealm { payloads: &p2, ..r }), base);
        let p3 = [payloads[1], payloads[0], payloads[2]];
        assert_ne!(linux_rim(&LinuxRealm { payloads: &p3, ..r }), base, "DATA_CREATE order is measured");
    }
}
