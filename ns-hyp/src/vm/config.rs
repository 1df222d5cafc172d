//! What guest to run, from ns-hyp's own /chosen/bootargs.
//!
//! Convention (xtask preloads the payloads with QEMU `-device loader` at
//! physical addresses inside the guest's RAM and writes these words):
//!
//! ```text
//! quadrant.guest=<pa>,<size>  quadrant.initrd=<pa>,<size>  quadrant.vcpus=<n>
//! quadrant.mem=<MiB>  quadrant.exit-stats  -- <guest kernel command line>
//! ```
//!
//! Without `quadrant.guest` ns-hyp runs no guest (probe or bench mode only).
//!
//! Several VMs: one such section per VM, separated by ` --- ` (a guest
//! command line never needs that word).  VM `k`'s RAM follows VM `k - 1`'s in
//! PA, from `RAM_PA`; every VM sees its RAM at `RAM_IPA`.  Without
//! `quadrant.mem`, the VMs share the guest area (1 GiB) equally.
//!
//! A payload may also lie in the guest area above every VM's RAM (the
//! payload store): ns-hyp then copies it into the VM's RAM where QEMU's
//! `-kernel`/`-initrd` would put it, at every start of the VM, so that a VM
//! that resets boots again from a fresh copy.
//!
//! `quadrant.after=<k>`: the VM does not start at boot; it starts in VM
//! k's RAM once VM k has powered off and its RAM was scrubbed (its payloads
//! must be in the store, its RAM the same size as VM k's).
//!
//! ```text
//! quadrant.guest=0x80200000,<size> quadrant.mem=512 -- console=ttyAMA0 --- quadrant.guest=0xa0200000,<size> quadrant.mem=512
//! ```
//!
//! `quadrant.realm-vm`: the VM is a Realm (`crate::realm::linux`, where
//! rmm is present), at most one.  Its `quadrant.mem` (at most
//! [`REALM_MAX_RAM`]) is the Realm's RAM, but it takes [`GuestConfig::footprint`]
//! of the guest area: its payloads are preloaded in the first `mem` bytes as
//! in a normal VM's RAM (they are measured in from there, and that NS memory
//! is then the Realm's shared memory), and the rest is the pool of granules
//! delegated to the RMM (the Realm's protected RAM, its RTTs, RD and RECs).

use super::layout::{self, DEFAULT_RAM_SIZE, RAM_IPA, RAM_PA};
use crate::line::Line;

pub const MAX_VCPUS: usize = 8;
/// VMs one ns-hyp runs at once.
pub const MAX_VMS: usize = 4;
/// The PA area every VM's RAM is carved from (`RAM_PA`, mapped at EL2).
pub const GUEST_AREA: u64 = 1 << 30;
pub const DEFAULT_VCPUS: usize = 4;
/// The most RAM a Realm VM gets (its shared window and pool double it).
pub const REALM_MAX_RAM: u64 = 256 << 20;
/// A Realm's pool beyond its RAM: RTTs (one per 2 MiB, protected and
/// shared), its RD, RECs and their auxiliary granules.
pub const REALM_POOL_EXTRA: u64 = 8 << 20;
pub const DEFAULT_CMDLINE: &str = "console=ttyAMA0 earlycon=pl011,0x9000000 rdinit=/init";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Blob {
    /// IPA in the guest (the payload is preloaded in the guest's RAM).
    pub ipa: u64,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct GuestConfig {
    /// PA of the VM's RAM (seen at `RAM_IPA`).
    pub ram_pa: u64,
    /// The kernel and initrd are kept in the payload store at these PAs and
    /// copied into RAM at every start (`kernel`/`initrd` say only their
    /// sizes until `vm::placement::stored_load` places them).
    pub kernel_store: Option<u64>,
    pub initrd_store: Option<u64>,
    /// `quadrant.after=<k>`: starts in VM k's RAM when VM k is gone.
    pub after: Option<usize>,
    pub kernel: Blob,
    pub initrd: Option<Blob>,
    pub vcpus: usize,
    pub ram_size: u64,
    pub cmdline: Line<256>,
    /// Print exit statistics once a second (`crate::vm::stats`).
    pub exit_stats: bool,
    /// `quadrant.virtio=pci`: the disk is a virtio-pci function behind an
    /// emulated PCIe host bridge, with MSI-X through an emulated ITS
    /// (`vm::virtio_pci`, `vm::its`), instead of the virtio-mmio slot.
    pub virtio_pci: bool,
    /// `quadrant.realm-vm`: a Realm (module comment).
    pub realm: bool,
}

impl GuestConfig {
    /// What the VM takes of the guest area: its RAM, or for a Realm its
    /// shared window (`ram_size`, where the payloads are preloaded) and then
    /// its delegation pool (`ram_size` + [`REALM_POOL_EXTRA`]).
    pub fn footprint(&self) -> u64 {
        if self.realm { 2 * self.ram_size + REALM_POOL_EXTRA } else { self.ram_size }
    }

    /// A Realm's delegation pool: its first PA and how many 4 KiB granules.
    pub fn realm_pool(&self) -> (u64, usize) {
        (self.ram_pa + self.ram_size, ((self.footprint() - self.ram_size) >> 12) as usize)
    }

    /// Every payload it has is kept in the payload store, so it can be
    /// started again after its RAM was scrubbed (a reset, `quadrant.after`).
    pub fn boots_from_store(&self) -> bool {
        self.kernel_store.is_some() && (self.initrd.is_none() || self.initrd_store.is_some())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `quadrant.guest` absent: no guest to run.
    NoGuest,
    /// A word we know with a value we cannot use; the word is given.
    Bad(&'static str),
    /// More than `MAX_VMS` sections, or the VMs' RAM does not fit the guest area.
    TooMany,
}

/// Every VM of the bootargs, in order (VM 0 first).
#[derive(Debug)]
pub struct VmConfigs {
    pub vms: [Option<GuestConfig>; MAX_VMS],
    pub count: usize,
}

impl VmConfigs {
    pub fn iter(&self) -> impl Iterator<Item = &GuestConfig> {
        self.vms[..self.count].iter().flatten()
    }
}

/// The whole bootargs: one VM per ` --- ` section (`parse` for each).
pub fn parse_all(bootargs: &str) -> Result<VmConfigs, ConfigError> {
    let n = bootargs.split(" --- ").count();
    if n > MAX_VMS {
        return Err(ConfigError::TooMany);
    }
    // An equal share, in whole 2 MiB blocks, where a section names no size.
    let share = (GUEST_AREA / n as u64) & !((2 << 20) - 1);
    let mut out = VmConfigs { vms: [const { None }; MAX_VMS], count: 0 };
    let mut next_pa = RAM_PA;
    for section in bootargs.split(" --- ") {
        let after = section.split(" -- ").next().unwrap_or("").split_ascii_whitespace().find_map(|w| w.strip_prefix("quadrant.after="));
        if let Some(a) = after {
            // Another VM's RAM, once that VM is gone: the same place and size.
            let k = num(a).map(|k| k as usize).filter(|&k| k < out.count).ok_or(ConfigError::Bad("quadrant.after"))?;
            let Some(host) = out.vms[k].as_ref().filter(|h| h.after.is_none()) else { return Err(ConfigError::Bad("quadrant.after")) };
            let mut c = parse_section(section, host.ram_pa, host.ram_size)?;
            if c.ram_size != host.ram_size || !c.boots_from_store() || c.realm || host.realm {
                return Err(ConfigError::Bad("quadrant.after"));
            }
            c.after = Some(k);
            out.vms[out.count] = Some(c);
            out.count += 1;
            continue;
        }
        let c = parse_section(section, next_pa, if n == 1 { DEFAULT_RAM_SIZE } else { share })?;
        if c.realm && out.iter().any(|o| o.realm) {
            return Err(ConfigError::Bad("quadrant.realm-vm"));
        }
        next_pa = c.ram_pa + c.footprint();
        if next_pa > RAM_PA + GUEST_AREA {
            return Err(ConfigError::TooMany);
        }
        out.vms[out.count] = Some(c);
        out.count += 1;
    }
    // Payloads outside their VM's RAM must be in the store: above every
    // VM's RAM, inside the guest area.
    let store = next_pa..RAM_PA + GUEST_AREA;
    let in_store = |pa: u64, size: u64| pa >= store.start && pa.checked_add(size).is_some_and(|e| e <= store.end);
    for c in out.vms.iter().flatten() {
        if c.kernel_store.is_some_and(|pa| !in_store(pa, c.kernel.size)) {
            return Err(ConfigError::Bad("quadrant.guest"));
        }
        if let (Some(pa), Some(i)) = (c.initrd_store, c.initrd) {
            if !in_store(pa, i.size) {
                return Err(ConfigError::Bad("quadrant.initrd"));
            }
        }
    }
    Ok(out)
}

fn num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `<pa>,<size>` of a payload: inside the VM's RAM (at PA `ram_pa`), its
/// IPA; elsewhere, a size and the PA for `parse_all` to check against the
/// payload store (IPA 0 until placed).
fn blob(v: &str, ram_pa: u64, ram_size: u64) -> Option<(Blob, Option<u64>)> {
    let (a, s) = v.split_once(',')?;
    let (pa, size) = (num(a)?, num(s)?);
    if size == 0 {
        return None;
    }
    let ipa = pa.checked_sub(ram_pa).and_then(|o| o.checked_add(RAM_IPA));
    match ipa.filter(|&ipa| layout::ram_pa_in(ipa, size, ram_pa, ram_size).is_some()) {
        Some(ipa) => Some((Blob { ipa, size }, None)),
        None => Some((Blob { ipa: 0, size }, Some(pa))),
    }
}

/// One VM (the only one, or VM 0 of several: `parse_all`).
#[cfg(test)]
pub fn parse(bootargs: &str) -> Result<GuestConfig, ConfigError> {
    let all = parse_all(bootargs)?;
    let [first, ..] = all.vms;
    first.ok_or(ConfigError::NoGuest)
}

fn parse_section(bootargs: &str, ram_pa: u64, default_ram: u64) -> Result<GuestConfig, ConfigError> {
    let (ours, guest) = match bootargs.split_once(" -- ") {
        Some((o, g)) => (o, Some(g.trim())),
        None => match bootargs.strip_suffix(" --") {
            Some(o) => (o, Some("")),
            None => (bootargs, None),
        },
    };
    let realm = ours.split_ascii_whitespace().any(|w| w == "quadrant.realm-vm");
    // A Realm without a size gets what fits its share (its footprint is
    // about twice its RAM), at most REALM_MAX_RAM.
    let mut ram_size = if realm { ((default_ram - REALM_POOL_EXTRA) / 2).min(REALM_MAX_RAM) & !((2 << 20) - 1) } else { default_ram };
    for w in ours.split_ascii_whitespace() {
        if let Some(v) = w.strip_prefix("quadrant.mem=") {
            // MiB, at least 64 MiB, at most 1 GiB (the top half of QEMU virt's
            // 2 GiB); a Realm's in whole 2 MiB blocks, at most REALM_MAX_RAM.
            let max = if realm { REALM_MAX_RAM >> 20 } else { 1024 };
            ram_size = num(v).filter(|m| (64..=max).contains(m) && (!realm || m % 2 == 0)).ok_or(ConfigError::Bad("quadrant.mem"))? << 20;
        }
    }
    let (mut kernel, mut initrd, mut vcpus) = (None, None, DEFAULT_VCPUS);
    for w in ours.split_ascii_whitespace() {
        if let Some(v) = w.strip_prefix("quadrant.guest=") {
            kernel = Some(blob(v, ram_pa, ram_size).ok_or(ConfigError::Bad("quadrant.guest"))?);
        } else if let Some(v) = w.strip_prefix("quadrant.initrd=") {
            initrd = Some(blob(v, ram_pa, ram_size).ok_or(ConfigError::Bad("quadrant.initrd"))?);
        } else if let Some(v) = w.strip_prefix("quadrant.vcpus=") {
            vcpus = num(v).filter(|n| (1..=MAX_VCPUS as u64).contains(n)).ok_or(ConfigError::Bad("quadrant.vcpus"))? as usize;
        }
    }
    let ((kernel, kernel_store), initrd) = (kernel.ok_or(ConfigError::NoGuest)?, initrd);
    let (initrd, initrd_store) = match initrd {
        Some((b, s)) => (Some(b), s),
        None => (None, None),
    };
    // Where the payload may sit depends on its kind (an Image's text_offset,
    // booting.rst): `vm::placement` checks it against the payload's header.
    // Without ` -- ` the guest gets ns-hyp's default command line; with it,
    // what follows, even nothing: an empty command line stays empty (as
    // QEMU's `-append ""`).
    let mut cmdline = Line::<256>::default();
    let _ = core::fmt::Write::write_str(&mut cmdline, guest.unwrap_or(DEFAULT_CMDLINE));
    let exit_stats = ours.split_ascii_whitespace().any(|w| w == "quadrant.exit-stats");
    let mut virtio_pci = false;
    for w in ours.split_ascii_whitespace() {
        if let Some(v) = w.strip_prefix("quadrant.virtio=") {
            virtio_pci = match v {
                "pci" => true,
                "mmio" => false,
                _ => return Err(ConfigError::Bad("quadrant.virtio")),
            };
        }
    }
    if realm && (kernel_store.is_some() || initrd_store.is_some()) {
        // A Realm's payloads are measured in from where they were preloaded,
        // inside its footprint's first part (`crate::realm::linux`): none from the store.
        return Err(ConfigError::Bad(if kernel_store.is_some() { "quadrant.guest" } else { "quadrant.initrd" }));
    }
    if realm && virtio_pci {
        // A Realm's devices are the virtio-mmio slot only (no ITS behind the RMM here).
        return Err(ConfigError::Bad("quadrant.virtio"));
    }
    Ok(GuestConfig { ram_pa, kernel_store, initrd_store, after: None, kernel, initrd, vcpus, ram_size, cmdline, exit_stats, virtio_pci, realm })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_line() {
        let c = parse("quadrant.guest=0x80200000,0x3000000 quadrant.initrd=0x88000000,4096 quadrant.vcpus=2 -- console=ttyAMA0 rdinit=/init").unwrap();
        assert_eq!(c.kernel, Blob { ipa: 0x4020_0000, size: 0x300_0000 });
        assert_eq!(c.initrd, Some(Blob { ipa: 0x4800_0000, size: 4096 }));
        assert_eq!(c.vcpus, 2);
        assert_eq!(c.ram_size, 1 << 30);
        assert_eq!(c.cmdline.as_str(), "console=ttyAMA0 rdinit=/init");
        assert!(!c.exit_stats);
        assert!(!c.virtio_pci);
        assert!(!c.realm);
        assert!(parse("quadrant.guest=0x80200000,16 quadrant.realm-vm quadrant.mem=64 -- console=ttyAMA0").unwrap().realm);
        assert!(!parse("quadrant.guest=0x80200000,16 -- quadrant.realm-vm").unwrap().realm, "the guest's own command line");
        assert!(!parse("quadrant.guest=0x80200000,16 quadrant.realm-vmx").unwrap().realm);
        assert!(parse("quadrant.guest=0x80200000,16 quadrant.virtio=pci").unwrap().virtio_pci);
        assert!(!parse("quadrant.guest=0x80200000,16 quadrant.virtio=mmio").unwrap().virtio_pci);
        assert_eq!(parse("quadrant.guest=0x80200000,16 quadrant.virtio=usb").unwrap_err(), ConfigError::Bad("quadrant.virtio"));
        assert!(parse("quadrant.guest=0x80200000,16 quadrant.exit-stats -- quadrant.exit-stats=no").unwrap().exit_stats);
    }

    #[test]
    fn empty_guest_command_line_stays_empty() {
        assert_eq!(parse("quadrant.guest=0x80200000,16 -- ").unwrap().cmdline.as_str(), "");
        assert_eq!(parse("quadrant.guest=0x80200000,16 --").unwrap().cmdline.as_str(), "");
        assert_eq!(parse("quadrant.guest=0x80200000,16 --   ").unwrap().cmdline.as_str(), "");
        // No ` -- ` at all: ns-hyp's default.
        assert_eq!(parse("quadrant.guest=0x80200000,16").unwrap().cmdline.as_str(), DEFAULT_CMDLINE);
    }

    #[test]
    fn defaults_and_errors() {
        let c = parse("quadrant.guest=0x80200000,16").unwrap();
        assert_eq!(c.vcpus, DEFAULT_VCPUS);
        assert_eq!(c.cmdline.as_str(), DEFAULT_CMDLINE);
        assert!(c.initrd.is_none());
        assert_eq!(parse("quadrant.bench").unwrap_err(), ConfigError::NoGuest);
        assert_eq!(parse("").unwrap_err(), ConfigError::NoGuest);
        // Outside guest RAM, misaligned, zero size, garbage.
        assert_eq!(parse("quadrant.guest=0x60000000,16").unwrap_err(), ConfigError::Bad("quadrant.guest"));
        assert_eq!(parse("quadrant.guest=0xbfff0000,0x20000").unwrap_err(), ConfigError::Bad("quadrant.guest"));
        // Alignment is the placement's to check (it reads the header): a flat
        // binary where QEMU puts one, RAM + 0x80000, is fine here.
        assert_eq!(parse("quadrant.guest=0x80080000,16").unwrap().kernel, Blob { ipa: 0x4008_0000, size: 16 });
        assert_eq!(parse("quadrant.guest=0x80200000,0").unwrap_err(), ConfigError::Bad("quadrant.guest"));
        assert_eq!(parse("quadrant.guest=zz").unwrap_err(), ConfigError::Bad("quadrant.guest"));
        assert_eq!(parse("quadrant.guest=0x80200000,16 quadrant.vcpus=9").unwrap_err(), ConfigError::Bad("quadrant.vcpus"));
        assert_eq!(parse("quadrant.guest=0x80200000,16 quadrant.vcpus=0").unwrap_err(), ConfigError::Bad("quadrant.vcpus"));
        // Smaller RAM moves the limit: above it is the payload store.
        assert_eq!(parse("quadrant.mem=64 quadrant.guest=0x88000000,16").unwrap().kernel_store, Some(0x8800_0000));
        assert_eq!(parse("quadrant.mem=64 quadrant.guest=0xc0000000,16").unwrap_err(), ConfigError::Bad("quadrant.guest"));
        assert_eq!(parse("quadrant.mem=64 quadrant.guest=0x83ff0000,0x20000").unwrap_err(), ConfigError::Bad("quadrant.guest"), "across RAM's end");
        assert_eq!(parse("quadrant.mem=64 quadrant.guest=0x80200000,16").unwrap().ram_size, 64 << 20);
        assert_eq!(parse("quadrant.mem=2048 quadrant.guest=0x80200000,16").unwrap_err(), ConfigError::Bad("quadrant.mem"));
    }

    #[test]
    fn several_vms_follow_each_other_in_pa() {
        let all = parse_all("quadrant.guest=0x80200000,16 quadrant.vcpus=4 -- console=ttyAMA0 --- quadrant.guest=0xa0200000,32 quadrant.initrd=0xa8000000,4096 quadrant.vcpus=2 -- rdinit=/init").unwrap();
        assert_eq!(all.count, 2);
        let v: Vec<_> = all.iter().collect();
        assert_eq!((v[0].ram_pa, v[0].ram_size, v[0].vcpus), (RAM_PA, 512 << 20, 4));
        assert_eq!((v[1].ram_pa, v[1].ram_size, v[1].vcpus), (RAM_PA + (512 << 20), 512 << 20, 2));
        // Every VM sees its own RAM at RAM_IPA: the payloads' IPAs are relative to it.
        assert_eq!(v[1].kernel, Blob { ipa: 0x4020_0000, size: 32 });
        assert_eq!(v[1].initrd, Some(Blob { ipa: 0x4800_0000, size: 4096 }));
        assert_eq!(v[0].cmdline.as_str(), "console=ttyAMA0");
        assert_eq!(v[1].cmdline.as_str(), "rdinit=/init");
        // Sizes given: VM 1 starts where VM 0 ends.
        let all = parse_all("quadrant.mem=256 quadrant.guest=0x80200000,16 --- quadrant.mem=768 quadrant.guest=0x90200000,16").unwrap();
        let v: Vec<_> = all.iter().collect();
        assert_eq!((v[1].ram_pa, v[1].ram_size), (RAM_PA + (256 << 20), 768 << 20));
    }

    #[test]
    fn a_vm_may_not_name_another_vms_memory() {
        // VM 1's payload inside VM 0's RAM, or past its own.
        assert_eq!(parse_all("quadrant.guest=0x80200000,16 --- quadrant.guest=0x80400000,16").unwrap_err(), ConfigError::Bad("quadrant.guest"));
        assert_eq!(parse_all("quadrant.guest=0x80200000,16 --- quadrant.guest=0xc0000000,16").unwrap_err(), ConfigError::Bad("quadrant.guest"));
        // More RAM than the guest area, more VMs than slots, a section without a guest.
        assert_eq!(parse_all("quadrant.mem=1024 quadrant.guest=0x80200000,16 --- quadrant.mem=64 quadrant.guest=0xc0200000,16").unwrap_err(), ConfigError::TooMany);
        let five = ["quadrant.guest=0x80200000,16"; 5].join(" --- ");
        assert_eq!(parse_all(&five).unwrap_err(), ConfigError::TooMany);
        assert_eq!(parse_all("quadrant.guest=0x80200000,16 --- quadrant.vcpus=2").unwrap_err(), ConfigError::NoGuest);
        // A payload address near 2^64 does not wrap into RAM.
        assert_eq!(parse_all("quadrant.guest=0xffffffffffffff00,16").unwrap_err(), ConfigError::Bad("quadrant.guest"));
    }

    #[test]
    fn a_realm_takes_its_ram_twice_and_a_pool() {
        // Two Linux VMs of 192 MiB, then a Realm of 256 MiB: its footprint is
        // 2 * 256 + 8 MiB, its payloads in its first 256 MiB.
        let all = parse_all(
            "quadrant.mem=192 quadrant.guest=0x80200000,16 --- quadrant.mem=192 quadrant.guest=0x8c200000,16 --- \
             quadrant.realm-vm quadrant.mem=256 quadrant.guest=0x98200000,16 quadrant.initrd=0xa0000000,4096 quadrant.vcpus=2",
        )
        .unwrap();
        let v: Vec<_> = all.iter().collect();
        assert!(!v[0].realm && !v[1].realm && v[2].realm);
        assert_eq!((v[2].ram_pa, v[2].ram_size, v[2].footprint()), (0x9800_0000, 256 << 20, 520 << 20));
        assert_eq!(v[2].kernel, Blob { ipa: 0x4020_0000, size: 16 });
        assert_eq!(v[2].initrd, Some(Blob { ipa: 0x4800_0000, size: 4096 }));
        assert_eq!(v[2].realm_pool(), (0xa800_0000, (264 << 20) >> 12));
        assert_eq!(v[0].footprint(), 192 << 20);
        // A VM after the Realm starts past its pool.
        let all = parse_all("quadrant.realm-vm quadrant.mem=128 quadrant.guest=0x80200000,16 --- quadrant.mem=64 quadrant.guest=0x90a00000,16").unwrap();
        assert_eq!(all.iter().nth(1).unwrap().ram_pa, RAM_PA + (264 << 20));
        // Alone and without a size: what fits, at most 256 MiB.
        let c = parse("quadrant.realm-vm quadrant.guest=0x80200000,16").unwrap();
        assert_eq!((c.ram_size, c.footprint()), (256 << 20, 520 << 20));
        // Too big, odd, two Realms, a Realm that waits for another's RAM, PCI.
        assert_eq!(parse("quadrant.realm-vm quadrant.mem=512 quadrant.guest=0x80200000,16").unwrap_err(), ConfigError::Bad("quadrant.mem"));
        assert_eq!(parse("quadrant.realm-vm quadrant.mem=65 quadrant.guest=0x80200000,16").unwrap_err(), ConfigError::Bad("quadrant.mem"));
        assert_eq!(
            parse_all("quadrant.realm-vm quadrant.mem=64 quadrant.guest=0x80200000,16 --- quadrant.realm-vm quadrant.mem=64 quadrant.guest=0x88a00000,16").unwrap_err(),
            ConfigError::Bad("quadrant.realm-vm")
        );
        assert_eq!(parse("quadrant.realm-vm quadrant.virtio=pci quadrant.guest=0x80200000,16").unwrap_err(), ConfigError::Bad("quadrant.virtio"));
        // Its payloads must be in its RAM part, not in the payload store.
        assert_eq!(parse("quadrant.realm-vm quadrant.mem=64 quadrant.guest=0x90000000,16").unwrap_err(), ConfigError::Bad("quadrant.guest"));
        assert_eq!(parse("quadrant.realm-vm quadrant.mem=64 quadrant.guest=0x80200000,16 quadrant.initrd=0x90000000,16").unwrap_err(), ConfigError::Bad("quadrant.initrd"));
        // The footprint must fit the guest area: 512 + 256 MiB of RAM would, 512 + 520 does not.
        assert_eq!(parse_all("quadrant.mem=512 quadrant.guest=0x80200000,16 --- quadrant.realm-vm quadrant.mem=256 quadrant.guest=0xa0200000,16").unwrap_err(), ConfigError::TooMany);
    }

    #[test]
    fn payloads_in_the_store_are_copied_in() {
        // VM 0 256 MiB, VM 1 256 MiB: the store is the area's top 512 MiB.
        let all = parse_all("quadrant.mem=256 quadrant.guest=0x80200000,16 --- quadrant.mem=256 quadrant.guest=0xa0000000,0x3000000 quadrant.initrd=0xa4000000,4096").unwrap();
        let v: Vec<_> = all.iter().collect();
        assert_eq!((v[0].kernel_store, v[0].initrd_store), (None, None));
        assert_eq!(v[1].kernel_store, Some(0xa000_0000));
        assert_eq!(v[1].kernel.size, 0x300_0000);
        assert_eq!(v[1].initrd_store, Some(0xa400_0000));
        assert_eq!(v[1].initrd.map(|i| i.size), Some(4096));
        // VM 1 can start again after a scrub; VM 0 (preloaded in its RAM) cannot.
        assert!(!v[0].boots_from_store() && v[1].boots_from_store());
        // A kernel in the store but an initrd in RAM: not either.
        let mixed = parse_all("quadrant.mem=256 quadrant.guest=0x80200000,16 --- quadrant.mem=256 quadrant.guest=0xa0000000,16 quadrant.initrd=0x90000000,16").unwrap();
        let m = mixed.iter().nth(1).unwrap();
        assert!(m.kernel_store.is_some() && m.initrd_store.is_none() && !m.boots_from_store());
        // Not in another VM's RAM, not past the area, not wrapping.
        assert_eq!(parse_all("quadrant.mem=256 quadrant.guest=0x80200000,16 --- quadrant.mem=256 quadrant.guest=0x80400000,16").unwrap_err(), ConfigError::Bad("quadrant.guest"));
        assert_eq!(parse_all("quadrant.mem=256 quadrant.guest=0x80200000,16 --- quadrant.mem=256 quadrant.guest=0xa0200000,16 quadrant.initrd=0xbfffff00,4096").unwrap_err(), ConfigError::Bad("quadrant.initrd"));
        assert_eq!(parse_all("quadrant.mem=256 quadrant.guest=0xfffffffffffffff0,0x20").unwrap_err(), ConfigError::Bad("quadrant.guest"));
    }

    #[test]
    fn a_vm_after_another_takes_its_ram() {
        let base = "quadrant.mem=512 quadrant.guest=0x80200000,16 --- quadrant.mem=256 quadrant.guest=0xb0000000,32 quadrant.initrd=0xb4000000,64";
        let all = parse_all(&format!("{base} --- quadrant.after=1 quadrant.guest=0xb0000000,32 quadrant.initrd=0xb4000000,64 quadrant.vcpus=1")).unwrap();
        let v: Vec<_> = all.iter().collect();
        assert_eq!(all.count, 3);
        assert_eq!((v[2].after, v[2].ram_pa, v[2].ram_size, v[2].vcpus), (Some(1), v[1].ram_pa, v[1].ram_size, 1));
        assert_eq!(v[2].kernel_store, Some(0xb000_0000));
        // Not a later VM, not itself waiting, not preloaded in RAM, not another size.
        for bad in [
            "quadrant.after=3 quadrant.guest=0xb0000000,32",
            "quadrant.after=x quadrant.guest=0xb0000000,32",
            "quadrant.after=1 quadrant.guest=0xa0200000,32",
            "quadrant.after=1 quadrant.mem=128 quadrant.guest=0xb0000000,32",
            "quadrant.after=1 quadrant.guest=0xb0000000,32 quadrant.initrd=0xa8000000,64",
        ] {
            assert_eq!(parse_all(&format!("{base} --- {bad}")).unwrap_err(), ConfigError::Bad("quadrant.after"), "{bad}");
        }
        let chain = format!("{base} --- quadrant.after=1 quadrant.guest=0xb0000000,32 --- quadrant.after=2 quadrant.guest=0xb0000000,32");
        assert_eq!(parse_all(&chain).unwrap_err(), ConfigError::Bad("quadrant.after"));
    }
}
