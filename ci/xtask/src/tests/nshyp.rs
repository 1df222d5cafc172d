//! Issue B1 (ns-hyp): a Debian Linux guest under ns-hyp, driven through its console.

use super::{Expect, IntegrationTest, XResult, expect};
use crate::build::Outputs;
use crate::guest::{self, InitramfsSpec};
use crate::qemu::Boot;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where xtask preloads the guest payloads: inside the guest's RAM as ns-hyp
/// maps it (PA 0x80000000 = guest IPA 0x40000000, see ns-hyp/src/vm/layout.rs),
/// where QEMU virt's `-kernel` would put them (ns-hyp/src/vm/placement.rs):
/// a Linux Image `text_offset` above a 2 MiB boundary (2 MiB in for
/// text_offset 0), a flat binary 0x80000 in; the initramfs 128 MiB in.
/// ns-hyp writes the DTB above both.
pub const GUEST_RAM_PA: u64 = 0x8000_0000;
pub const GUEST_KERNEL_PA: u64 = 0x8020_0000;
pub const GUEST_INITRD_PA: u64 = 0x8800_0000;
/// QEMU's load offset for a flat aarch64 binary (hw/arm/boot.c KERNEL64_LOAD_ADDR).
pub const FLAT_LOAD_OFFSET: u64 = 0x8_0000;

/// QEMU virt's rule for where `-kernel` loads `image` (offset from RAM) and
/// how much of RAM it spans: an arm64 Image header (booting.rst: magic
/// "ARM\x64" at 0x38, text_offset at 8, image_size at 16) with a non-zero
/// image_size → text_offset (+ 2 MiB below 4 KiB, QEMU's boot stub), spanning
/// image_size; otherwise a flat binary at 0x80000 spanning the file.
pub fn qemu_kernel_offset(image: &[u8]) -> (u64, u64) {
    let le = |at: usize| u64::from_le_bytes(image[at..at + 8].try_into().unwrap());
    if image.len() >= 64 && &image[0x38..0x3c] == b"ARM\x64" && le(16) != 0 {
        let t = le(8);
        (if t < 4096 { t + (2 << 20) } else { t }, le(16).max(image.len() as u64))
    } else {
        (FLAT_LOAD_OFFSET, image.len() as u64)
    }
}

/// ns-hyp's bootargs naming the preloaded guest payloads (ns-hyp/src/vm/config.rs);
/// `hyp_args`: more words for ns-hyp (e.g. `quadrant.mem=512`); `cmdline`: the
/// guest kernel's command line (after ` -- `; ns-hyp's default without it).
pub fn guest_bootargs(kernel_pa: u64, kernel_size: u64, initrd_size: Option<u64>, vcpus: usize, hyp_args: &str, cmdline: Option<&str>) -> String {
    vm_bootargs(kernel_pa, kernel_size, initrd_size.map(|n| (GUEST_INITRD_PA, n)), vcpus, hyp_args, cmdline)
}

/// One VM's section of ns-hyp's bootargs: [`guest_bootargs`] with the
/// initramfs at `initrd = (pa, size)`.
pub fn vm_bootargs(kernel_pa: u64, kernel_size: u64, initrd: Option<(u64, u64)>, vcpus: usize, hyp_args: &str, cmdline: Option<&str>) -> String {
    let mut args = format!("quadrant.guest={kernel_pa:#x},{kernel_size}");
    if let Some((pa, n)) = initrd {
        args.push_str(&format!(" quadrant.initrd={pa:#x},{n}"));
    }
    args.push_str(&format!(" quadrant.vcpus={vcpus}"));
    if !hyp_args.is_empty() {
        args.push(' ');
        args.push_str(hyp_args);
    }
    if let Some(c) = cmdline {
        args.push_str(" -- ");
        args.push_str(c);
    }
    args
}

/// What separates the VMs' sections in ns-hyp's bootargs.
pub const VM_SEPARATOR: &str = " --- ";
/// The PA area all VMs' RAM is carved from, VM after VM from [`GUEST_RAM_PA`].
pub const GUEST_AREA_MIB: u32 = 1024;
/// The most VMs ns-hyp runs at once (ns-hyp/src/vm/config.rs `MAX_VMS`).
pub const MAX_VMS: usize = 4;
/// The smallest RAM ns-hyp gives a VM (`quadrant.mem`).
const VM_MEM_MIN_MIB: u32 = 64;
/// Where the initramfs goes, from the start of its VM's RAM.
const INITRD_OFFSET: u64 = GUEST_INITRD_PA - GUEST_RAM_PA;
/// ns-hyp's bootargs buffer (`Line<1024>` in ns-hyp/src/boot.rs): longer is cut.
const BOOTARGS_MAX: usize = 1023;

/// Each of `n` VMs' RAM when they share the area equally, in whole 2 MiB
/// blocks (ns-hyp's own default share: VM RAM stays block-aligned in PA).
pub fn vm_share_mib(n: usize) -> u32 {
    (GUEST_AREA_MIB / n.max(1) as u32) & !1
}

/// The most RAM ns-hyp gives a Realm VM (`quadrant.mem` with `quadrant.realm-vm`).
pub const REALM_VM_MEM_MAX_MIB: u32 = 256;

/// What a VM takes of the guest area, MiB: its RAM, or for a Realm VM
/// (`realm`) `2 * mem + 8`: its first `mem` MiB hold the payloads (then the
/// Realm's shared memory), the rest is the pool of granules ns-hyp
/// delegates to the RMM.
pub fn vm_footprint_mib(mem_mib: u32, realm: bool) -> u32 {
    if realm { 2 * mem_mib + 8 } else { mem_mib }
}

/// Where each VM's RAM starts in PA (one footprint after another from
/// [`GUEST_RAM_PA`]); `realm`: which VM, if any, is the Realm (ns-hyp takes
/// at most one).  Refuses what ns-hyp would (more than [`MAX_VMS`], a VM
/// below 64 MiB, a Realm above [`REALM_VM_MEM_MAX_MIB`], more than 1 GiB of
/// footprints in all) and RAM not in whole 2 MiB, which would leave the next
/// VM's RAM off a block boundary in PA.
pub fn vm_ram_pas(mem_mib: &[u32], realm: Option<usize>) -> XResult<Vec<u64>> {
    if mem_mib.is_empty() || mem_mib.len() > MAX_VMS {
        return Err(format!("{} VMs: ns-hyp runs 1 to {MAX_VMS}", mem_mib.len()));
    }
    if let Some(m) = mem_mib.iter().find(|&&m| m < VM_MEM_MIN_MIB || m % 2 != 0) {
        return Err(format!("{m} MiB for a VM: ns-hyp wants {VM_MEM_MIN_MIB} MiB at least, in whole 2 MiB"));
    }
    if let Some(r) = realm {
        match mem_mib.get(r) {
            None => return Err(format!("the Realm is VM {r} of {}", mem_mib.len())),
            Some(&m) if m > REALM_VM_MEM_MAX_MIB => return Err(format!("{m} MiB for the Realm VM: ns-hyp gives a Realm {REALM_VM_MEM_MAX_MIB} MiB at most")),
            Some(_) => {}
        }
    }
    let footprint = |k: usize| vm_footprint_mib(mem_mib[k], realm == Some(k));
    let total: u32 = (0..mem_mib.len()).map(footprint).sum();
    if total > GUEST_AREA_MIB {
        return Err(format!("the VMs take {total} MiB of the guest area, more than ns-hyp's {GUEST_AREA_MIB} MiB"));
    }
    Ok((0..mem_mib.len()).scan(GUEST_RAM_PA, |pa, k| Some(std::mem::replace(pa, *pa + ((footprint(k) as u64) << 20)))).collect())
}

/// The longest guest command line ns-hyp keeps (`GuestConfig::cmdline`, a `Line<256>`).
const GUEST_CMDLINE_MAX: usize = 255;

pub(crate) fn size(p: &std::path::Path) -> XResult<u64> {
    std::fs::metadata(p).map(|m| m.len()).map_err(|e| format!("{}: {e}", p.display()))
}

/// What ns-hyp runs as its guest: an arm64 Image, an optional initramfs and
/// an optional kernel command line.
pub struct GuestPayload {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
}

/// One VM of a multi-VM boot: what it runs, on how many vCPUs, with how
/// much RAM, and whether it is ns-hyp's Realm VM (`quadrant.realm-vm`: its
/// vCPUs are RECs, it takes [`vm_footprint_mib`] of the guest area).
pub struct VmSpec {
    pub payload: GuestPayload,
    pub vcpus: usize,
    pub mem_mib: u32,
    pub realm: bool,
}

/// One VM as ns-hyp and QEMU see it: its section of the bootargs and the
/// files QEMU preloads for it, each at its PA.
pub(crate) struct VmLoad {
    pub(crate) bootargs: String,
    pub(crate) loads: Vec<(PathBuf, u64)>,
}

/// What placing a payload depends on: the kernel file's size, QEMU's
/// (offset, span) for it ([`qemu_kernel_offset`]), the initramfs's size.
#[derive(Clone, Copy)]
struct PayloadSizes {
    kernel: u64,
    offset: u64,
    span: u64,
    initrd: Option<u64>,
}

/// A VM's section of the bootargs and its (kernel PA, initramfs PA), its
/// RAM at PA `ram_pa` (`ram_mib` of it, when known): the kernel where QEMU's
/// `-kernel` would put it, the initramfs [`INITRD_OFFSET`] in; `hyp_args`
/// end the VM's words.  `name` names the kernel in errors.
fn place_vm(s: PayloadSizes, ram_pa: u64, ram_mib: Option<u32>, vcpus: usize, hyp_args: &str, cmdline: Option<&str>, name: &str) -> XResult<(String, u64, u64)> {
    let (kernel_pa, initrd_pa) = (ram_pa + s.offset, ram_pa + INITRD_OFFSET);
    if s.initrd.is_some() && kernel_pa + s.span > initrd_pa {
        return Err(format!("{name}: {} bytes does not fit below the initramfs ({} MiB at most)", s.span, (initrd_pa - kernel_pa) >> 20));
    }
    // With several VMs a payload past its VM's RAM would land in the next VM's.
    if let Some(m) = ram_mib {
        let end = s.initrd.map_or(kernel_pa + s.span, |n| initrd_pa + n);
        if end > ram_pa + ((m as u64) << 20) {
            return Err(format!("{name}: the payloads do not fit in the VM's {m} MiB of RAM"));
        }
    }
    if cmdline.is_some_and(|c| c.len() > GUEST_CMDLINE_MAX) {
        return Err(format!("the guest command line is longer than ns-hyp's {GUEST_CMDLINE_MAX} bytes"));
    }
    Ok((vm_bootargs(kernel_pa, s.kernel, s.initrd.map(|n| (initrd_pa, n)), vcpus, hyp_args, cmdline), kernel_pa, initrd_pa))
}

/// [`place_vm`] for `g`'s files.
pub(crate) fn vm_load(g: &GuestPayload, ram_pa: u64, ram_mib: Option<u32>, vcpus: usize, hyp_args: &str) -> XResult<VmLoad> {
    let kernel = size(&g.kernel)?;
    let bytes = std::fs::read(&g.kernel).map_err(|e| format!("{}: {e}", g.kernel.display()))?;
    let (offset, span) = qemu_kernel_offset(&bytes);
    let initrd = g.initrd.as_deref().map(size).transpose()?;
    let sizes = PayloadSizes { kernel, offset, span, initrd };
    let (bootargs, kernel_pa, initrd_pa) = place_vm(sizes, ram_pa, ram_mib, vcpus, hyp_args, g.cmdline.as_deref(), &g.kernel.display().to_string())?;
    let mut loads = vec![(g.kernel.clone(), kernel_pa)];
    if let Some(i) = &g.initrd {
        loads.push((i.clone(), initrd_pa));
    }
    Ok(VmLoad { bootargs, loads })
}

/// The VMs' sections as one bootargs string, if ns-hyp keeps it whole.
fn join_vms<S: AsRef<str>>(sections: &[S]) -> XResult<String> {
    let bootargs = sections.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(VM_SEPARATOR);
    if bootargs.len() > BOOTARGS_MAX {
        return Err(format!("ns-hyp's bootargs would be {} bytes, more than its {BOOTARGS_MAX}", bootargs.len()));
    }
    Ok(bootargs)
}

/// ns-hyp with `vms` preloaded: with `bios`, ns-hyp is TF-A's BL33 and gets
/// its bootargs from an fdtput-edited copy of QEMU's DTB
/// (`target/quadrant/<dtb_name>.dtb`, dumped for `smp` CPUs: ns-hyp counts
/// the CPUs it schedules on in its /cpus); without, ns-hyp is `-kernel`.
pub(crate) fn hyp_boot(o: &Outputs, bios: Option<&Path>, dtb_name: &str, vms: &[VmLoad], smp: Option<u32>) -> XResult<Boot> {
    let bootargs = join_vms(&vms.iter().map(|v| v.bootargs.as_str()).collect::<Vec<_>>())?;
    let loader = |file: &Path, addr: u64| format!("loader,file={},addr={addr:#x},force-raw=on", file.display());
    let mut args: Vec<String> = Vec::new();
    if let Some(n) = smp {
        args.extend(["-smp".into(), n.to_string()]);
    }
    match bios {
        Some(bios) => {
            let dtb = crate::util::out_dir().join(format!("{dtb_name}.dtb"));
            crate::qemu::dtb_with_bootargs_smp(bios, &bootargs, smp, &dtb)?;
            args.extend(["-bios".into(), bios.display().to_string(), "-dtb".into(), dtb.display().to_string()]);
        }
        None => args.extend(["-kernel".into(), o.images.join("ns-hyp.bin").display().to_string(), "-append".into(), bootargs]),
    }
    for (file, pa) in vms.iter().flat_map(|v| &v.loads) {
        args.extend(["-device".into(), loader(file, *pa)]);
    }
    Ok(Boot::Custom { tfa: bios.is_some(), args })
}

/// ns-hyp running `g` on `vcpus` vCPUs, the payloads preloaded by QEMU into
/// the guest's RAM.  With `bios`, ns-hyp is TF-A's BL33 and gets its bootargs
/// from an fdtput-edited copy of QEMU's DTB (`target/quadrant/<dtb_name>.dtb`);
/// without, ns-hyp is `-kernel` (no TF-A).  `smp`: physical CPUs (default
/// [`crate::qemu::SMP`]).
pub fn hyp_guest_boot(o: &Outputs, bios: Option<&Path>, dtb_name: &str, g: &GuestPayload, vcpus: usize, smp: Option<u32>, hyp_args: &str) -> XResult<Boot> {
    // RAM size unknown here (`hyp_args` may carry quadrant.mem): ns-hyp checks it.
    let vm = vm_load(g, GUEST_RAM_PA, None, vcpus, hyp_args)?;
    hyp_boot(o, bios, dtb_name, &[vm], smp)
}

/// The words of VM `vm`'s section: `quadrant.realm-vm` for the Realm, its
/// RAM (`quadrant.mem`), then `hyp_args`.
fn vm_words(vm: &VmSpec, hyp_args: &str) -> String {
    let mem = format!("{}quadrant.mem={}", if vm.realm { "quadrant.realm-vm " } else { "" }, vm.mem_mib);
    if hyp_args.is_empty() { mem } else { format!("{mem} {hyp_args}") }
}

/// ns-hyp running several VMs, one ` --- ` section of bootargs each, VM k's
/// payloads preloaded into VM k's RAM (PAs from [`vm_ram_pas`]); `hyp_args`
/// go into every VM's section.  `bios`, `dtb_name`, `smp`: as [`hyp_guest_boot`].
/// A Realm VM (one at most) needs `bios` (TF-A with rmm) and a CPU of its
/// own: ns-hyp runs its RECs on the last CPU.
pub fn hyp_vms_boot(o: &Outputs, bios: Option<&Path>, dtb_name: &str, vms: &[VmSpec], smp: Option<u32>, hyp_args: &str) -> XResult<Boot> {
    let realms: Vec<usize> = vms.iter().enumerate().filter(|(_, v)| v.realm).map(|(k, _)| k).collect();
    if realms.len() > 1 {
        return Err(format!("VMs {realms:?} are Realms: ns-hyp runs one Realm VM at most"));
    }
    let pas = vm_ram_pas(&vms.iter().map(|v| v.mem_mib).collect::<Vec<_>>(), realms.first().copied())?;
    let loads = vms.iter().zip(pas).map(|(v, pa)| vm_load(&v.payload, pa, Some(v.mem_mib), v.vcpus, &vm_words(v, hyp_args))).collect::<XResult<Vec<_>>>()?;
    hyp_boot(o, bios, dtb_name, &loads, smp)
}

/// [`hyp_vms_boot`] without TF-A (ns-hyp as `-kernel`), on `smp` CPUs.
pub fn multi_vm_boot(o: &Outputs, vms: &[VmSpec], smp: u32, hyp_args: &str) -> XResult<Boot> {
    hyp_vms_boot(o, None, "", vms, Some(smp), hyp_args)
}

/// ns-hyp as `-kernel` (no TF-A) with Debian's kernel and a BusyBox shell
/// initramfs (`name`, loading `modules`) preloaded; `smp` physical CPUs.
pub fn no_tfa_guest_boot(o: &Outputs, name: &str, modules: &[&str], vcpus: usize, smp: u32, hyp_args: &str) -> XResult<Boot> {
    let kernel = guest::kernel_image(&o.paths)?;
    let initrd = guest::initramfs(&o.paths, &InitramfsSpec { name, modules, script: None, files: &[] })?;
    hyp_guest_boot(o, None, "", &GuestPayload { kernel, initrd: Some(initrd), cmdline: None }, vcpus, Some(smp), hyp_args)
}

/// ns-hyp as `-kernel` (no TF-A) running ci/hvc-bench-guest (no initramfs:
/// it needs none) on 1 vCPU, 1 CPU: the guest null-HVC bench of `cargo xtask bench`.
pub fn hvc_bench_guest_boot(o: &Outputs) -> XResult<Boot> {
    let kernel = o.images.join("hvc-bench-guest.bin");
    Ok(Boot::Custom {
        tfa: false,
        args: vec![
            "-smp".into(),
            "1".into(),
            "-kernel".into(),
            // The null HVC it times exists only in the test flavour.
            o.images.join(format!("{}.bin", crate::build::NS_HYP_TEST)).display().to_string(),
            "-append".into(),
            guest_bootargs(GUEST_KERNEL_PA, size(&kernel)?, None, 1, "", None),
            "-device".into(),
            format!("loader,file={},addr={GUEST_KERNEL_PA:#x},force-raw=on", kernel.display()),
        ],
    })
}

/// Issue B3's bench: ns-hyp's test flavour under TF-A (spmc, our SPs) on 1
/// CPU, with `quadrant.bench` and ci/hvc-bench-guest as its one VM: ns-hyp
/// times its own direct requests to the echo SP, then the guest times the
/// same request under its own FF-A id through ns-hyp's proxy.
pub fn guest_ffa_bench_boot(o: &Outputs) -> XResult<Boot> {
    let g = GuestPayload { kernel: o.images.join("hvc-bench-guest.bin"), initrd: None, cmdline: None };
    hyp_guest_boot(o, Some(&o.test_bios), "bench-guest-ffa", &g, 1, Some(1), "quadrant.bench")
}

/// What the shell tests type, each after the previous answer appeared.
fn shell_input() -> Vec<(String, String)> {
    [
        ("quadrant-init: shell", ""),
        // Each command after the shell's prompt, so none is typed before the shell reads.
        ("/ # ", "echo NPROC=$(nproc); grep MemTotal /proc/meminfo | sed \"s/^/MEMTOTAL=/\"\n"),
        // A busy loop pinned to each CPU for the measurement: an idle CPU of a
        // tickless kernel may take no timer interrupt for over a second (seen
        // once: CPU 3 stayed at the same count), which says nothing about ns-hyp.
        ("/ # ", "for m in 1 2 4 8; do busybox taskset $m busybox timeout 3 sh -c 'while :; do :; done' & done; for i in 1 2; do grep arch_timer /proc/interrupts | sed \"s/^/TIMER$i:/\"; sleep 1; done; wait\n"),
        ("/ # ", "mount -t ext2 -o ro /dev/vda /mnt && sha256sum /mnt/known.bin | sed \"s/^/SHA256=/\"\n"),
        ("/ # ", "poweroff -f\n"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

/// The file xtask puts on the guest's disk: 256 KiB from a fixed xorshift
/// sequence, so its sha256 is known on the host.
pub fn known_file() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..256 * 1024 / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

pub fn known_sha256() -> String {
    use sha2::{Digest, Sha256};
    crate::measure::hex(&Sha256::digest(known_file()))
}

/// Modules the guest needs for its disk, in load order (ext4 mounts ext2).
pub const DISK_MODULES: &[&str] = &["virtio_mmio", "virtio_blk", "crc16", "mbcache", "jbd2", "ext4"];

/// The guest's disk: a QEMU virtio-blk device (on QEMU's virtio-mmio slots,
/// driven by ns-hyp) backed by `image`.
pub fn disk_args(image: &std::path::Path) -> Vec<String> {
    named_disk_args(image, "hd0")
}

/// [`disk_args`] with the drive named `id` (several disks need several names).
pub fn named_disk_args(image: &std::path::Path, id: &str) -> Vec<String> {
    vec![
        "-drive".into(),
        format!("file={},if=none,format=raw,id={id}", image.display()),
        "-device".into(),
        format!("virtio-blk-device,drive={id}"),
    ]
}

/// One disk per VM, VM k's the k-th `virtio-blk-device` in ascending
/// virtio-mmio slot order (how ns-hyp hands them out): QEMU gives the first
/// `-device` the highest slot, so the last VM's comes first.
pub fn vm_disks_args(images: &[PathBuf]) -> Vec<String> {
    images.iter().enumerate().rev().flat_map(|(k, image)| named_disk_args(image, &format!("vm{k}disk"))).collect()
}

/// ns-hyp --no-tfa with the shell initramfs (disk modules loaded) and a disk
/// holding the known file; `hyp_args` go to ns-hyp's bootargs.
fn shell_boot(o: &Outputs, name: &str, smp: u32, hyp_args: &str) -> XResult<Boot> {
    let disk = guest::ext2_image(name, 8, &[("known.bin", &known_file())])?;
    let Boot::Custom { tfa, mut args } = no_tfa_guest_boot(o, "nshyp-shell-disk", DISK_MODULES, 4, smp, hyp_args)? else { unreachable!() };
    args.extend(disk_args(&disk));
    Ok(Boot::Scripted { boot: Box::new(Boot::Custom { tfa, args }), input: shell_input() })
}

/// linux_virtio_pci_msi (issue B4 item 7): the disk on ns-hyp's emulated
/// PCIe host bridge as a virtio-blk-pci function, its MSI-X messages
/// through ns-hyp's emulated ITS (`quadrant.virtio=pci`); 4 vCPUs on 2 CPUs.
fn virtio_pci_boot(o: &Outputs) -> XResult<Boot> {
    let disk = guest::ext2_image("nshyp-virtio-pci", 8, &[("known.bin", &known_file())])?;
    let Boot::Custom { tfa, mut args } = no_tfa_guest_boot(o, "nshyp-shell-disk", DISK_MODULES, 4, 2, "quadrant.virtio=pci")? else { unreachable!() };
    args.extend(disk_args(&disk));
    let input = [
        ("quadrant-init: shell", ""),
        ("/ # ", "mount -t ext2 -o ro /dev/vda /mnt && sha256sum /mnt/known.bin | sed \"s/^/SHA256=/\"; grep ITS-PCI-MSIX /proc/interrupts | sed \"s/^/MSIX:/\"\n"),
        ("/ # ", "poweroff -f\n"),
    ];
    Ok(Boot::Scripted { boot: Box::new(Boot::Custom { tfa, args }), input: input.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect() })
}

fn virtio_pci_expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp drives QEMU's virtio-blk device", &["[ns-hyp] virtio-blk backend: "]),
        expect("Linux found ns-hyp's ITS", &["ITS@0x0000000008080000: allocated"]),
        expect("Linux's generic ECAM driver found the host bridge", &["pci-host-generic 3f000000.pcie: ECAM at [mem 0x3f000000-0x3f0fffff] for [bus 00]"]),
        expect("the virtio-blk function on bus 0", &["pci 0000:00:01.0: [1af4:1042]"]),
        expect("Linux assigned its 64-bit BAR 0 in the window", &["pci 0000:00:01.0: BAR 0 [mem 0x10000000-0x10003fff 64bit]: assigned"]),
        expect("virtio-pci bound it", &["virtio-pci 0000:00:01.0: enabling device"]),
        expect("the file on the disk has the host's sha256", &[&format!("SHA256={}  /mnt/known.bin", known_sha256())]),
        expect("its request queue's vector is an ITS MSI-X", &["ITS-PCI-MSIX-0000:00:01.0", "virtio0-req.0"]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// The request queue's MSI-X interrupt was taken (its counts add up to more
/// than zero): the disk's completions came as LPIs, not by polling.
fn virtio_pci_extra(output: &str) -> Vec<String> {
    let Some(l) = output.lines().find(|l| l.starts_with("MSIX:") && l.contains("virtio0-req")) else {
        return vec!["no MSI-X row for virtio0-req in /proc/interrupts".into()];
    };
    let counts: u64 = l["MSIX:".len()..].split_whitespace().skip(1).map_while(|w| w.parse::<u64>().ok()).sum();
    if counts == 0 { vec![format!("virtio0-req's MSI-X was never taken: {l}")] } else { vec![] }
}

fn linux_shell_boot(o: &Outputs) -> XResult<Boot> {
    shell_boot(o, "nshyp-shell", 4, "")
}

/// RAM for the 1-CPU run: not the default, so `quadrant.mem` (what
/// `cargo xtask run --mem` sets) is exercised.
const SHELL_1PCPU_MEM_MIB: u32 = 512;

fn linux_shell_1pcpu_boot(o: &Outputs) -> XResult<Boot> {
    shell_boot(o, "nshyp-shell-1pcpu", 1, &format!("quadrant.mem={SHELL_1PCPU_MEM_MIB}"))
}

fn shell_1pcpu_expects() -> Vec<Expect> {
    let mut e = shell_expects();
    e.push(expect("ns-hyp gave the guest the RAM quadrant.mem asked for", &[&format!("[ns-hyp] guest: 4 vCPU(s) on 1 CPU(s), {SHELL_1PCPU_MEM_MIB} MiB RAM")]));
    e
}

/// The guest's own count of its memory (the shell prints MemTotal): below the
/// RAM ns-hyp gave it and above what the kernel keeps for itself.
fn shell_1pcpu_extra(output: &str) -> Vec<String> {
    let mut f = timer_counts_rise(output);
    let kib = output.lines().find_map(|l| l.strip_prefix("MEMTOTAL=MemTotal:")).and_then(|l| l.split_whitespace().next()).and_then(|n| n.parse::<u64>().ok());
    match kib {
        Some(k) if k <= SHELL_1PCPU_MEM_MIB as u64 * 1024 && k >= SHELL_1PCPU_MEM_MIB as u64 * 1024 / 2 => {}
        other => f.push(format!("MemTotal in the guest is {other:?} KiB for {SHELL_1PCPU_MEM_MIB} MiB of RAM")),
    }
    f
}

fn shell_expects() -> Vec<Expect> {
    vec![
        // The product image: no probes, straight to the guest.
        expect("ns-hyp came up", &["[ns-hyp] firmware: "]),
        expect("ns-hyp started the guest", &["[ns-hyp] guest: 4 vCPU(s)"]),
        expect("Linux booted on ns-hyp", &["Booting Linux on physical CPU"]),
        // ns-hyp shows pointer authentication and switches each vCPU's keys
        // (with 4 vCPUs on one CPU, a key left from another vCPU would fail
        // the kernel's own return-address checks).
        expect("the guest uses pointer authentication", &["CPU features: detected: Address authentication"]),
        expect("the guest's init ran", &["quadrant-init: up, 4 cpu(s)"]),
        expect("nproc typed on the console prints 4", &["NPROC=4"]),
        expect("ns-hyp drives QEMU's virtio-blk device", &["[ns-hyp] virtio-blk backend: "]),
        expect("the file on the virtio disk has the host's sha256", &[&format!("SHA256={}  /mnt/known.bin", known_sha256())]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// Two reads of the arch timer's row of /proc/interrupts, a second apart:
/// every CPU's count rose.
fn timer_counts_rise(output: &str) -> Vec<String> {
    let row = |tag: &str| -> Option<Vec<u64>> {
        let l = output.lines().find(|l| l.starts_with(tag))?;
        // "TIMERn:  11:   803   2290  1464  1298  GICv3  27 Level  arch_timer"
        Some(l[tag.len()..].split_whitespace().skip(1).map_while(|w| w.parse().ok()).collect())
    };
    match (row("TIMER1:"), row("TIMER2:")) {
        (Some(a), Some(b)) if a.len() == 4 && b.len() == 4 => {
            let stuck: Vec<usize> = (0..4).filter(|&i| b[i] <= a[i]).collect();
            if stuck.is_empty() { vec![] } else { vec![format!("arch timer count did not rise on CPU(s) {stuck:?}: {a:?} then {b:?}")] }
        }
        (a, b) => vec![format!("no two 4-CPU arch_timer rows in the output: {a:?} {b:?}")],
    }
}

/// What must never appear in a guest run (besides QEMU's own failures).
pub(crate) const FORBID_GUEST: &[&str] = &["PANIC", "panicked", "Unhandled Exception", "ERROR:", "Kernel panic", "BUG:", "UNDEFINED"];

pub fn tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest {
            name: "linux_shell",
            boot: linux_shell_boot,
            timeout: Duration::from_secs(300),
            expects: shell_expects,
            extra: Some(timer_counts_rise),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "linux_virtio_pci_msi",
            boot: virtio_pci_boot,
            timeout: Duration::from_secs(150),
            expects: virtio_pci_expects,
            extra: Some(virtio_pci_extra),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "linux_shell_1pcpu",
            boot: linux_shell_1pcpu_boot,
            // ~11 s alone since the vGIC wake-up fix (16-40 s before, 82-400 s before the scheduler fix).
            timeout: Duration::from_secs(150),
            expects: shell_1pcpu_expects,
            extra: Some(shell_1pcpu_extra),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "guest_fault_containment",
            boot: fault_boot,
            timeout: Duration::from_secs(200),
            expects: fault_expects,
            extra: Some(fault_extra),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "vm_lifecycle",
            boot: lifecycle_boot,
            // Two boots, then VM 1 three more times and VM 2 once while VM 0 spins.
            timeout: Duration::from_secs(420),
            expects: lifecycle_expects,
            extra: Some(lifecycle_extra),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "vm_isolation",
            boot: isolation_boot,
            // Two Linux boots on 2 CPUs (4 vCPUs), then a few commands in each.
            timeout: Duration::from_secs(300),
            expects: isolation_expects,
            extra: Some(isolation_extra),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "two_vms_net",
            boot: net_boot,
            // Two Linux boots on 2 CPUs (4 vCPUs each), pings, 16 MiB between the VMs.
            timeout: Duration::from_secs(300),
            expects: net_expects,
            extra: Some(net_extra),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "linux_shell_tfa",
            boot: tfa_shell_boot,
            timeout: Duration::from_secs(300),
            expects: shell_expects,
            extra: Some(timer_counts_rise),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "guest_cpu_features",
            boot: cpu_features_boot,
            timeout: Duration::from_secs(120),
            expects: cpu_features_expects,
            extra: Some(cpu_features_extra),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "linux_guest_features",
            boot: guest_features_boot,
            // ~16 s alone (both runs).
            timeout: Duration::from_secs(300),
            expects: guest_features_expects,
            extra: Some(guest_features_extra),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "android_bits",
            boot: android_boot,
            timeout: Duration::from_secs(200),
            expects: android_expects,
            extra: Some(android_extra),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "linux_disk_persistence",
            boot: persist_boot,
            timeout: Duration::from_secs(300),
            expects: persist_expects,
            extra: Some(persist_extra),
            forbid: FORBID_GUEST,
        },
    ]
}

/// guest_cpu_features (issue B4): ci/guest-cpu-features, a flat binary
/// without an Image header, first on bare QEMU (`-kernel`, the same -cpu max
/// machine, 2 CPUs), then under ns-hyp (2 vCPUs on 1 CPU, preloaded where
/// QEMU puts a flat binary).  Every check that passes bare must pass under ns-hyp.
fn cpu_features_boot(o: &Outputs) -> XResult<Boot> {
    let (bare, hyp) = cpu_features_runs(o)?;
    Ok(Boot::Sequence(vec![bare, hyp]))
}

/// The two runs of guest_cpu_features, bare QEMU and under ns-hyp, both with
/// `-machine mte=on` (QEMU merges it into the machine's options): tag storage,
/// so the CPU has FEAT_MTE2 and the payload's MTE checks run.
pub fn cpu_features_runs(o: &Outputs) -> XResult<(Boot, Boot)> {
    let payload = o.images.join("guest-cpu-features.bin");
    let mte = |boot| Boot::Extra { boot: Box::new(boot), args: vec!["-machine".into(), "mte=on".into()] };
    let bare = Boot::Custom { tfa: false, args: vec!["-smp".into(), "2".into(), "-kernel".into(), payload.display().to_string()] };
    let hyp = hyp_guest_boot(o, None, "", &GuestPayload { kernel: payload, initrd: None, cmdline: None }, 2, Some(1), "")?;
    Ok((mte(bare), mte(hyp)))
}

fn cpu_features_expects() -> Vec<Expect> {
    vec![
        expect("the payload ran to its end on bare QEMU and under ns-hyp", &["guest_cpu_features done: "]),
        expect("ns-hyp ran it as a flat binary, 2 vCPUs on 1 CPU", &["[ns-hyp] guest: 2 vCPU(s) on 1 CPU(s)", "flat"]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// `(check, passed)` for each `guest_cpu_features <check>: pass|fail` line.
fn feature_checks(out: &str) -> Vec<(String, bool)> {
    check_lines(out, "guest_cpu_features ")
}

/// `(check, passed)` for each `<prefix><check>: pass|fail` line (not `info`
/// or `done`, no space in the check's name).
fn check_lines(out: &str, prefix: &str) -> Vec<(String, bool)> {
    out.lines()
        .filter_map(|l| {
            let rest = &l[l.find(prefix)? + prefix.len()..];
            let (name, verdict) = rest.rsplit_once(": ")?;
            if name == "info" || name == "done" || name.contains(' ') {
                return None;
            }
            match verdict.trim() {
                "pass" => Some((name.to_owned(), true)),
                "fail" => Some((name.to_owned(), false)),
                _ => None,
            }
        })
        .collect()
}

/// Splits the two runs, prints both counts, and fails every check that
/// passed on bare QEMU but not under ns-hyp (or is missing there).
fn cpu_features_extra(output: &str) -> Vec<String> {
    let Some((bare, hyp)) = output.split_once("xtask: QEMU run 2 of 2") else {
        return vec!["the ns-hyp run did not start (the bare QEMU run failed?)".into()];
    };
    let (b, h) = (feature_checks(bare), feature_checks(hyp));
    let pass = |v: &[(String, bool)]| v.iter().filter(|c| c.1).count();
    println!("    guest_cpu_features: bare QEMU {} of {} checks pass, ns-hyp {} of {}", pass(&b), b.len(), pass(&h), h.len());
    let mut f = Vec::new();
    if b.is_empty() {
        f.push("no check lines from the bare QEMU run".into());
    }
    for (name, ok) in &b {
        if *ok && !h.iter().any(|(n, hok)| n == name && *hok) {
            f.push(format!("{name}: passes on bare QEMU, not under ns-hyp"));
        }
    }
    for (name, ok) in &h {
        if !ok {
            println!("    guest_cpu_features: {name} fails under ns-hyp{}", if b.iter().any(|(n, o)| n == name && *o) { "" } else { " (and on bare QEMU)" });
        }
    }
    f
}

/// linux_guest_features (issue B4): Debian's Linux with an initramfs that
/// prints the PMU driver's boot line (dmesg) and /proc/cpuinfo's Features,
/// then runs ci/linux-guest-features (SVE, MTE and PMU checks from user
/// space), first on bare QEMU (2 CPUs), then under ns-hyp (2 vCPUs on 1
/// CPU, so ns-hyp switches the vCPUs' SVE/MTE/PMU state on one CPU).  Both
/// with `-machine mte=on` (QEMU merges it into the first -machine): the CPU
/// has MTE with tag storage.
const GUEST_FEATURES_SCRIPT: &str = "dmesg | grep 'hw perfevents' | sed 's/^/guest_features dmesg: /'\n\
     grep -m1 '^Features' /proc/cpuinfo | sed 's/^/guest_features cpuinfo: /'\n\
     chmod +x /linux-guest-features\n\
     /linux-guest-features\n";

fn guest_features_boot(o: &Outputs) -> XResult<Boot> {
    let prog = crate::build::build_guest_features()?;
    let data = std::fs::read(&prog).map_err(|e| format!("{}: {e}", prog.display()))?;
    let spec = InitramfsSpec { name: "guest-features", modules: &[], script: Some(GUEST_FEATURES_SCRIPT), files: &[("/linux-guest-features", &data)] };
    let initrd = guest::initramfs(&o.paths, &spec)?;
    let kernel = guest::kernel_image(&o.paths)?;
    let mte = ["-machine".to_string(), "mte=on".to_string()];
    let mut bare: Vec<String> = vec!["-smp".into(), "2".into(), "-kernel".into(), kernel.display().to_string(), "-initrd".into(), initrd.display().to_string()];
    bare.extend(["-append".into(), "console=ttyAMA0 rdinit=/init".into()]);
    bare.extend(mte.clone());
    let Boot::Custom { tfa, mut args } = hyp_guest_boot(o, None, "", &GuestPayload { kernel, initrd: Some(initrd), cmdline: None }, 2, Some(1), "")? else { unreachable!() };
    args.extend(mte);
    Ok(Boot::Sequence(vec![Boot::Custom { tfa: false, args: bare }, Boot::Custom { tfa, args }]))
}

fn guest_features_expects() -> Vec<Expect> {
    vec![
        expect("Linux enabled the PMUv3 driver", &["guest_features dmesg: ", "hw perfevents: enabled with armv8_pmuv3", "counters available"]),
        expect("/proc/cpuinfo lists sve", &["guest_features cpuinfo: Features", " sve"]),
        expect("/proc/cpuinfo lists mte", &["guest_features cpuinfo: Features", " mte"]),
        expect("the program ran to its end", &["guest_features done: "]),
        expect("ns-hyp ran Linux on 2 vCPUs on 1 CPU", &["[ns-hyp] guest: 2 vCPU(s) on 1 CPU(s)"]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// What one run must show: the PMU line, `sve` and `mte` as words of
/// cpuinfo's Features, the program's closing line, and no failed check.
fn guest_features_run(run: &str, label: &str) -> Vec<String> {
    let mut f = Vec::new();
    if !run.lines().any(|l| l.contains("guest_features dmesg: ") && l.contains("hw perfevents: enabled with armv8_pmuv3") && l.contains("counters available")) {
        f.push(format!("{label}: no `hw perfevents: enabled with armv8_pmuv3... counters available` in dmesg"));
    }
    let features: Vec<&str> = run.lines().find_map(|l| l.split("guest_features cpuinfo: Features").nth(1)).map(|r| r.trim_start_matches(|c: char| c == ':' || c.is_whitespace()).split_whitespace().collect()).unwrap_or_default();
    for want in ["sve", "mte"] {
        if !features.contains(&want) {
            f.push(format!("{label}: /proc/cpuinfo's Features lack `{want}`"));
        }
    }
    let checks = check_lines(run, "guest_features ");
    if checks.is_empty() || !run.contains("guest_features done: ") {
        f.push(format!("{label}: the program did not run to its end"));
    }
    for (name, ok) in &checks {
        if !ok {
            f.push(format!("{label}: guest_features {name}: fail"));
        }
    }
    f
}

/// Both runs must pass every check; prints each run's count.
fn guest_features_extra(output: &str) -> Vec<String> {
    let Some((bare, hyp)) = output.split_once("xtask: QEMU run 2 of 2") else {
        return vec!["the ns-hyp run did not start (the bare QEMU run failed?)".into()];
    };
    for (label, run) in [("bare QEMU", bare), ("ns-hyp", hyp)] {
        let c = check_lines(run, "guest_features ");
        println!("    linux_guest_features: {label}: {} of {} checks pass", c.iter().filter(|c| c.1).count(), c.len());
    }
    let mut f = guest_features_run(bare, "bare QEMU");
    f.extend(guest_features_run(hyp, "ns-hyp"));
    f.extend(vcpu_switch_seen(hyp));
    f
}

/// The longest stall under ns-hyp of each `sve_regs_preempt_2cpu` process
/// (one per vCPU, both spinning with their SVE registers loaded).  With 2
/// vCPUs on 1 CPU and ns-hyp's 4 ms slice, each must have stalled at least
/// [`VCPU_SWITCH_MIN_US`] while the other vCPU ran: the check held the
/// registers across ns-hyp's vCPU switches, not only Linux's.
const VCPU_SWITCH_MIN_US: u64 = 1000;

fn vcpu_switch_seen(hyp: &str) -> Vec<String> {
    let stalls: Vec<u64> = hyp
        .lines()
        .filter(|l| l.contains("guest_features info: sve_regs_preempt_2cpu process "))
        .filter_map(|l| l.split("longest stall ").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    if stalls.len() != 2 {
        return vec![format!("ns-hyp: {} sve_regs_preempt_2cpu stall lines, not 2", stalls.len())];
    }
    stalls
        .iter()
        .filter(|&&us| us < VCPU_SWITCH_MIN_US)
        .map(|us| format!("ns-hyp: an sve_regs_preempt_2cpu process stalled at most {us} us: its vCPU was never switched out"))
        .collect()
}

/// An IPA where the guest has nothing (not in its DTB, not RAM).
const UNMAPPED_IPA: &str = "0x0c000000";

/// guest_fault_containment: a user program reads an unmapped IPA through
/// /dev/mem; it must die of SIGBUS/SIGSEGV, the kernel must go on, and every
/// vCPU must keep being served (the timer rows still rise on every CPU).
fn fault_input() -> Vec<(String, String)> {
    let mut i: Vec<_> = shell_input().into_iter().filter(|(_, send)| !send.starts_with("mount")).collect();
    let poweroff = i.pop().unwrap();
    i.insert(2, ("/ # ".into(), format!("devmem {UNMAPPED_IPA} 32; echo DEVMEM_STATUS=$?\n")));
    i.push(("/ # ".into(), "echo STILL=$(nproc)\n".into()));
    i.push(poweroff);
    i
}

fn fault_boot(o: &Outputs) -> XResult<Boot> {
    let Boot::Custom { tfa, args } = no_tfa_guest_boot(o, "nshyp-shell", &[], 4, 4, "")? else { unreachable!() };
    Ok(Boot::Scripted { boot: Box::new(Boot::Custom { tfa, args }), input: fault_input() })
}

fn fault_expects() -> Vec<Expect> {
    vec![
        expect("the guest's init ran", &["quadrant-init: up, 4 cpu(s)"]),
        expect("ns-hyp injected an abort for the unmapped IPA", &["[ns-hyp] vCPU ", ": data abort at IPA 0xc000000", "external abort to the guest"]),
        // busybox sh reports the signal: 128 + SIGBUS (7) = 135, or + SIGSEGV (11) = 139.
        expect("devmem died of a signal", &["DEVMEM_STATUS=13"]),
        expect("the kernel and every vCPU went on", &["STILL=4"]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

fn fault_extra(output: &str) -> Vec<String> {
    let mut f = timer_counts_rise(output);
    if !output.contains("DEVMEM_STATUS=135") && !output.contains("DEVMEM_STATUS=139") {
        f.push("devmem did not die of SIGBUS (135) or SIGSEGV (139)".into());
    }
    f
}

/// vm_isolation: two Linux VMs of 512 MiB, 2 vCPUs each, on 2 CPUs; VM 0's
/// RAM at PA 0x80000000, VM 1's at PA 0xa0000000, both at IPA 0x40000000.
const ISOLATION_VM_MIB: u32 = 512;

/// What VM 0 touches through /dev/mem, each outside its RAM (IPA
/// 0x40000000..0x60000000): (shell variable, IPA, value to write, what it is).
const ISOLATION_PROBES: &[(&str, u64, Option<u32>, &str)] = &[
    ("DEVMEM_B", 0xa000_0000, None, "where VM 1's RAM sits in PA"),
    ("DEVMEM_BW", 0xa010_0000, Some(0x5a5a_5a5a), "a write into VM 1's RAM's PA"),
    ("DEVMEM_OWNPA", GUEST_RAM_PA, None, "VM 0's own RAM's PA, not an IPA of its own"),
    ("DEVMEM_HOLE", 0x0c00_0000, None, "a hole of the IPA map"),
];

/// sha256 of nothing: what a failed `dd` would leave to hash.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Every line ns-hyp prefixes `[vmN] `; input switches with Ctrl-] N.  Each
/// marker the script waits for is typed with `""` inside (`B_WRI""TTEN`), so
/// only the command's output matches it, not the shell's echo of the line.
fn isolation_input() -> Vec<(String, String)> {
    let probes: Vec<String> = ISOLATION_PROBES
        .iter()
        .map(|(var, ipa, value, _)| format!("devmem {ipa:#x} 32{}; echo {var}=$?", value.map(|v| format!(" {v:#x}")).unwrap_or_default()))
        .collect();
    let vm0 = format!("{}; echo A_ALIVE=$(nproc); echo A_DO\"\"NE\n", probes.join("; "));
    [
        // VM 0 at its shell, then Enter in VM 1: a VM 1 prompt after this
        // point whether VM 1 reached its shell before VM 0 or after.
        ("[vm0] / # ", "\x1d1"),
        ("console: input to vm1", "\n"),
        ("[vm1] / # ", "dd if=/dev/urandom of=/tmp/b bs=1M count=8 && sha256sum /tmp/b | sed 's/^/B_BEFORE=/'; echo B_WRI\"\"TTEN\n"),
        ("B_WRITTEN", "\x1d0"),
        // VM 0's shell has been idle at its prompt since the first step.
        ("console: input to vm0", &vm0),
        ("A_DONE", "\x1d1"),
        ("console: input to vm1", "sha256sum /tmp/b | sed 's/^/B_AFTER=/'; echo B_CHE\"\"CKED\n"),
        ("B_CHECKED", "poweroff -f\n"),
        ("[ns-hyp] vm1: SYSTEM_OFF", "\x1d0"),
        ("console: input to vm0", "poweroff -f\n"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

/// vm_lifecycle (issue B2): VM 1 reboots 3 times, then powers off, and VM
/// 2 (`quadrant.after=1`) boots in VM 1's freed RAM and powers off, while
/// VM 0 keeps two busy loops and a ticker going; the ticker's uptime stamps
/// show VM 0 never stood still for more than [`LIFECYCLE_MAX_GAP_S`].  VMs
/// 1 and 2 boot from payloads in ns-hyp's payload store (above both VMs'
/// RAM), so each start boots a fresh copy in scrubbed RAM.
const LIFECYCLE_VM0_MIB: u32 = 512;
const LIFECYCLE_VM1_MIB: u32 = 256;
/// The payload store: the guest area's top 256 MiB, above both VMs.
const LIFECYCLE_STORE_PA: u64 = GUEST_RAM_PA + (((LIFECYCLE_VM0_MIB + LIFECYCLE_VM1_MIB) as u64) << 20);
const LIFECYCLE_STORE_INITRD: u64 = LIFECYCLE_STORE_PA + (64 << 20);
const LIFECYCLE_REBOOTS: usize = 3;
/// The ticker sleeps 100 ms between stamps.
const LIFECYCLE_MAX_GAP_S: f64 = 1.0;

fn lifecycle_input() -> Vec<(String, String)> {
    let mut i: Vec<(String, String)> = vec![
        // Two busy loops (one per vCPU, as Linux places them) and the ticker.
        ("[vm0] / # ".into(), "(while :; do :; done) & (while :; do :; done) & (while :; do echo TICK $(cut -d' ' -f1 /proc/uptime); usleep 100000; done) &\n".into()),
        ("[vm0] TICK".into(), "\x1d1".into()),
        ("console: input to vm1".into(), "\n".into()),
    ];
    for _ in 0..LIFECYCLE_REBOOTS {
        i.push(("[vm1] / # ".into(), "reboot -f\n".into()));
        i.push(("vm1: restarted".into(), String::new()));
    }
    i.push(("[vm1] / # ".into(), "poweroff -f\n".into()));
    // VM 2 waited for VM 1's RAM (`quadrant.after=1`): it boots in it now.
    i.push(("vm2: starts in vm1's freed RAM".into(), "\x1d2".into()));
    i.push(("console: input to vm2".into(), "\n".into()));
    i.push(("[vm2] / # ".into(), "grep MemTotal /proc/meminfo | sed 's/^/VM2_MEM=/'; poweroff -f\n".into()));
    i.push(("vm2: SYSTEM_OFF".into(), "\x1d0".into()));
    i.push(("console: input to vm0".into(), "poweroff -f\n".into()));
    i
}

fn lifecycle_boot(o: &Outputs) -> XResult<Boot> {
    let kernel = guest::kernel_image(&o.paths)?;
    let initrd = guest::initramfs(&o.paths, &InitramfsSpec { name: "nshyp-shell", modules: &[], script: None, files: &[] })?;
    let vm0 = vm_load(&GuestPayload { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: None }, GUEST_RAM_PA, Some(LIFECYCLE_VM0_MIB), 2, &format!("quadrant.mem={LIFECYCLE_VM0_MIB}"))?;
    let (ksize, isize) = (size(&kernel)?, size(&initrd)?);
    if LIFECYCLE_STORE_PA + ksize > LIFECYCLE_STORE_INITRD {
        return Err(format!("{}: {ksize} bytes does not fit the payload store's 64 MiB for a kernel", kernel.display()));
    }
    // VM 1's payloads in the store: ns-hyp copies them into its RAM at every start.
    let stored = format!("quadrant.guest={LIFECYCLE_STORE_PA:#x},{ksize} quadrant.initrd={LIFECYCLE_STORE_INITRD:#x},{isize} quadrant.vcpus=2 quadrant.mem={LIFECYCLE_VM1_MIB}");
    let vm1 = VmLoad { bootargs: stored.clone(), loads: vec![(kernel, LIFECYCLE_STORE_PA), (initrd, LIFECYCLE_STORE_INITRD)] };
    // VM 2: the same stored payloads, started in VM 1's RAM once VM 1 is gone.
    let vm2 = VmLoad { bootargs: format!("quadrant.after=1 {stored}"), loads: vec![] };
    let boot = hyp_boot(o, None, "", &[vm0, vm1, vm2], Some(2))?;
    Ok(Boot::Scripted { boot: Box::new(boot), input: lifecycle_input() })
}

fn lifecycle_expects() -> Vec<Expect> {
    vec![
        expect("VM 0's init ran", &["[vm0] quadrant-init: up, 2 cpu(s)"]),
        expect("VM 1's init ran", &["[vm1] quadrant-init: up, 2 cpu(s)"]),
        expect("ns-hyp copied VM 1's kernel from the store", &["[ns-hyp] vm1: ", "copied from the store"]),
        expect("VM 1 reset through PSCI", &["[ns-hyp] vm1: SYSTEM_RESET"]),
        expect("ns-hyp restarted VM 1", &["[ns-hyp] vm1: restarted"]),
        expect("VM 1 powered off", &["[ns-hyp] vm1: SYSTEM_OFF"]),
        expect("VM 1's RAM was scrubbed", &["[ns-hyp] vm1: 256 MiB at PA 0xa0000000 scrubbed and returned"]),
        expect("VM 2 started in VM 1's freed RAM", &["[ns-hyp] vm2: starts in vm1's freed RAM"]),
        expect("VM 2's init ran", &["[vm2] quadrant-init: up, 2 cpu(s)"]),
        expect("VM 2 saw its RAM", &["[vm2] VM2_MEM=MemTotal:"]),
        expect("VM 2 powered off, its RAM (VM 1's) scrubbed", &["[ns-hyp] vm2: 256 MiB at PA 0xa0000000 scrubbed and returned"]),
        expect("the last VM powered the machine off", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// The uptime stamps of VM 0's ticker, in order.
fn ticks(output: &str) -> Vec<f64> {
    // A stamp may follow the echo of what was typed on VM 0's console ("[vm0] powTICK 87.57").
    output.lines().filter(|l| l.starts_with("[vm0] ")).filter_map(|l| l.split("TICK ").nth(1)).filter_map(|v| v.trim().parse().ok()).collect()
}

fn lifecycle_extra(output: &str) -> Vec<String> {
    let mut f = Vec::new();
    let count = |what: &str| output.lines().filter(|l| l.contains(what)).count();
    for (what, want) in [("[ns-hyp] vm1: SYSTEM_RESET", LIFECYCLE_REBOOTS), ("[ns-hyp] vm1: restarted", LIFECYCLE_REBOOTS), ("[vm1] quadrant-init: up", LIFECYCLE_REBOOTS + 1), ("scrubbed and returned", LIFECYCLE_REBOOTS + 3)] {
        if count(what) != want {
            f.push(format!("{} lines with {what:?}, not {want}", count(what)));
        }
    }
    let t = ticks(output);
    // The ticker ran from before VM 1's first reset to after its power-off.
    let (first_reset, off) = (output.find("vm1: SYSTEM_RESET"), output.find("vm1: SYSTEM_OFF"));
    let before = first_reset.map(|at| ticks(&output[..at]).len());
    let until_off = off.map(|at| ticks(&output[..at]).len());
    if before.is_none_or(|n| n == 0) || until_off.is_none_or(|n| n >= t.len()) {
        f.push(format!("VM 0's ticker did not run across VM 1's resets ({} stamps)", t.len()));
    }
    let gap = t.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
    println!("    vm_lifecycle: {} stamps from VM 0, the longest gap {gap:.2} s", t.len());
    if gap > LIFECYCLE_MAX_GAP_S {
        f.push(format!("VM 0's progress stalled for {gap:.2} s (more than {LIFECYCLE_MAX_GAP_S} s)"));
    }
    if t.windows(2).any(|w| w[1] < w[0]) {
        f.push("VM 0's uptime went backwards".into());
    }
    f
}

fn isolation_boot(o: &Outputs) -> XResult<Boot> {
    let kernel = guest::kernel_image(&o.paths)?;
    let initrd = guest::initramfs(&o.paths, &InitramfsSpec { name: "nshyp-shell", modules: &[], script: None, files: &[] })?;
    let vm = || VmSpec { payload: GuestPayload { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: None }, vcpus: 2, mem_mib: ISOLATION_VM_MIB, realm: false };
    let boot = multi_vm_boot(o, &[vm(), vm()], 2, "")?;
    Ok(Boot::Scripted { boot: Box::new(boot), input: isolation_input() })
}

fn isolation_expects() -> Vec<Expect> {
    let mut e = vec![
        expect("VM 0's init ran on 2 vCPUs", &["[vm0] quadrant-init: up, 2 cpu(s)"]),
        expect("VM 1's init ran on 2 vCPUs", &["[vm1] quadrant-init: up, 2 cpu(s)"]),
        expect("ns-hyp switched the console's input to VM 1", &["console: input to vm1"]),
        expect("ns-hyp switched the console's input back to VM 0", &["console: input to vm0"]),
    ];
    for (var, ipa, _, what) in ISOLATION_PROBES {
        e.push(Expect { what, all_of: vec!["[ns-hyp] vm0 vCPU ".into(), format!("data abort at IPA {ipa:#x} ("), "external abort to the guest".into()] });
        // The status itself (135 or 139) is isolation_extra's to check, and VM 1's hashes.
        e.push(Expect { what: "devmem died of a signal in VM 0", all_of: vec![format!("[vm0] {var}=13")] });
    }
    e.extend([
        expect("VM 0's kernel and both its vCPUs went on", &["[vm0] A_ALIVE=2"]),
        expect("VM 1's SYSTEM_OFF stopped VM 1 alone", &["[ns-hyp] vm1: SYSTEM_OFF"]),
        expect("ns-hyp scrubbed the VM's RAM", &["[ns-hyp] ", "scrubbed"]),
        expect("the last VM's SYSTEM_OFF powered the machine off", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]);
    e
}

/// The word after each `tag=` in the output, whatever comes before it on
/// its line (a `[vmN] ` prefix, the shell's echo of the command).
fn tag_values<'a>(output: &'a str, tag: &str) -> Vec<&'a str> {
    let key = format!("{tag}=");
    let mut v = Vec::new();
    for l in output.lines() {
        for (at, _) in l.match_indices(key.as_str()) {
            v.extend(l[at + key.len()..].split_whitespace().next());
        }
    }
    v
}

/// The sha256s (64 hex digits) printed after `tag=`.
fn tag_hashes<'a>(output: &'a str, tag: &str) -> Vec<&'a str> {
    tag_values(output, tag).into_iter().filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).collect()
}

/// Each devmem of VM 0 died of SIGBUS (135) or SIGSEGV (139); VM 1's file
/// hashes the same before and after (and is not empty); no abort was VM 1's.
fn isolation_extra(output: &str) -> Vec<String> {
    let mut f = Vec::new();
    for (var, ipa, _, _) in ISOLATION_PROBES {
        let status: Vec<&str> = tag_values(output, var).into_iter().filter(|v| v.parse::<u32>().is_ok()).collect();
        if !matches!(status.as_slice(), ["135" | "139"]) {
            f.push(format!("devmem {ipa:#x} in VM 0 ended with status {status:?}, not once 135 (SIGBUS) or 139 (SIGSEGV)"));
        }
    }
    match (tag_hashes(output, "B_BEFORE").as_slice(), tag_hashes(output, "B_AFTER").as_slice()) {
        ([b], [a]) if b == a && *b != EMPTY_SHA256 => {}
        ([b], _) if *b == EMPTY_SHA256 => f.push("VM 1's file is empty: dd wrote nothing".into()),
        (b, a) => f.push(format!("VM 1's file hashed {b:?} before VM 0's accesses and {a:?} after")),
    }
    f.extend(output.lines().filter(|l| l.starts_with("[ns-hyp] vm1 ") && l.contains("data abort")).map(|l| format!("VM 1 took an abort: {l}")));
    f
}

/// two_vms_net (issue B2 item 3): two Linux VMs of [`NET_VM_MIB`], 4 vCPUs
/// each, on 2 CPUs, each with ns-hyp's virtio-net device (virtio-mmio at IPA
/// 0x0a000200, INTID 49, MAC 52:54:00:51:00:0k) on ns-hyp's switch, and
/// QEMU's user network (slirp) as the switch's uplink.  VM k is 10.0.2.(15+k);
/// slirp's gateway 10.0.2.2.  The VMs ping each other, VM 0 sends VM 1 a
/// 16 MiB random file (the sha256s must match), and the host reads VM 0's
/// one-shot server through a `hostfwd` port of slirp.
const NET_VM_MIB: u32 = 512;
const NET_VCPUS: usize = 4;
/// Modules the guest needs for ns-hyp's virtio-net device, in dependency
/// order (Debian's kernel: virtio_net needs net_failover, which needs failover).
pub const NET_MODULES: &[&str] = &["virtio_mmio", "failover", "net_failover", "virtio_net"];
/// The port of VM 0's server the host reaches through the uplink, and what it says.
const UPLINK_GUEST_PORT: u16 = 7777;
const UPLINK_TEXT: &str = "quadrant-uplink-ok";
/// The file's size (`head -c` in [`NET_SCRIPT`]'s `send`).
const NET_FILE_BYTES: u64 = 16 << 20;

/// `/net.sh STEP VM` in the net VMs' initramfs: two_vms_net's steps and the
/// vm_to_vm_tcp bench's in VM `VM` (0 or 1).  Every line a check reads starts
/// `NET_`, which only the script prints (what is typed names none).
/// BusyBox's nc closes its sending half at EOF on its stdin and quits at EOF
/// from the network: so a receiver's stdin is an idle pipe (`sleep 600 |`),
/// else its EOF would reach the sender, which would quit before it is done.
const NET_SCRIPT: &str = r#"step=$1
vm=$2
me=10.0.2.$((15 + vm))
peer=10.0.2.$((16 - vm))
now() { cut -d' ' -f1 /proc/uptime; }
case $step in
up)
    ip link set lo up
    ip link set eth0 up
    ip addr add $me/24 dev eth0
    ip route add default via 10.0.2.2
    echo "NET_MAC$vm=$(cat /sys/class/net/eth0/address)"
    grep virtio /proc/interrupts | sed "s/^/NET_IRQ$vm=/"
    ;;
ping)
    ping -c 5 -w 30 $peer | sed "s/^/NET_PING$vm: /"
    ;;
irqs)
    grep virtio /proc/interrupts | sed "s/^/NET_INTS$vm=/"
    ;;
gateway)
    ping -c 1 -w 10 10.0.2.2 | sed "s/^/NET_GW$vm: /"
    ;;
recv)
    # One file on port 5000, then its sha256.
    sleep 600 | (nc -l -p 5000 > /tmp/r; sha256sum /tmp/r | sed "s/^/NET_RECV=/"; touch /tmp/r.done) &
    ;;
received)
    # Until recv's file is in and hashed (60 s at most).
    for i in $(seq 60); do [ -e /tmp/r.done ] && break; sleep 1; done
    ;;
send)
    head -c 16777216 /dev/urandom > /tmp/f
    sha256sum /tmp/f | sed "s/^/NET_SENT=/"
    t0=$(now)
    nc $peer 5000 < /tmp/f
    echo "NET_SEND_STATUS=$? in $(awk "BEGIN { print $(now) - $t0 }") s"
    ;;
serve)
    # The uplink's one-shot server, three shots should the host try again.
    (for i in 1 2 3; do echo quadrant-uplink-ok | nc -l -p 7777 > /dev/null; done) &
    sleep 1
    ;;
sink)
    # The bench's receiver: three transfers on port 5001, thrown away.
    sleep 600 | (for i in 1 2 3; do nc -l -p 5001 > /dev/null; done) &
    ;;
bench)
    # 32 MiB from /dev/zero to the peer (at its sink), then to this VM over
    # loopback, three times each, alternating.
    sleep 600 | (for i in 1 2 3; do nc -l -p 5002 > /dev/null; done) &
    sleep 1
    for i in 1 2 3; do
        for to in $peer:5001 127.0.0.1:5002; do
            t0=$(now)
            dd if=/dev/zero bs=1M count=32 2>/dev/null | nc ${to%:*} ${to#*:}
            st=$?
            echo "NET_BENCH $to $(awk "BEGIN { print $(now) - $t0 }") s status $st"
        done
    done
    ;;
esac
"#;

/// The net VMs' initramfs: BusyBox, [`NET_MODULES`], `/net.sh`.
pub fn net_initramfs(o: &Outputs) -> XResult<PathBuf> {
    guest::initramfs(&o.paths, &InitramfsSpec { name: "nshyp-net", modules: NET_MODULES, script: None, files: &[("/net.sh", NET_SCRIPT.as_bytes())] })
}

/// QEMU's user network (slirp) as ns-hyp's uplink, a virtio-net device on
/// QEMU's virtio-mmio slots, `host_port` on the host's 127.0.0.1 forwarded
/// to VM 0's (10.0.2.15) `guest_port`.
pub fn uplink_args(host_port: u16, guest_port: u16) -> Vec<String> {
    vec!["-netdev".into(), format!("user,id=up,hostfwd=tcp:127.0.0.1:{host_port}-10.0.2.15:{guest_port}"), "-device".into(), "virtio-net-device,netdev=up".into()]
}

/// A TCP port of 127.0.0.1 free right now (the system picks it).
pub fn free_local_port() -> XResult<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a free port on 127.0.0.1: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Two VMs with the net initramfs, [`NET_VCPUS`] each, on 2 CPUs (no TF-A),
/// with the uplink when `uplink` = Some((host port, VM 0's port)).
pub fn net_vms_boot(o: &Outputs, uplink: Option<(u16, u16)>) -> XResult<Boot> {
    let kernel = guest::kernel_image(&o.paths)?;
    let initrd = net_initramfs(o)?;
    let vm = || VmSpec { payload: GuestPayload { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: None }, vcpus: NET_VCPUS, mem_mib: NET_VM_MIB, realm: false };
    let Boot::Custom { tfa, mut args } = multi_vm_boot(o, &[vm(), vm()], 2, "")? else { unreachable!() };
    if let Some((host, guest)) = uplink {
        args.extend(uplink_args(host, guest));
    }
    Ok(Boot::Custom { tfa, args })
}

/// Each `(wait_for, send)` pair as owned strings.
pub(crate) fn steps(s: &[(&str, &str)]) -> Vec<(String, String)> {
    s.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// VM 0 at its shell, then Enter in VM 1 (a VM 1 prompt after this point
/// whether it reached its shell before VM 0 or after), `vm1` typed there
/// (after bringing its network up), then `vm0` in VM 0 (the same): each
/// followed by a `VMk_READY` / `VMk_DONE` marker typed with `""` inside, so
/// only its output matches.
fn net_start(vm1: &str, vm0: &str) -> Vec<(String, String)> {
    vec![
        ("[vm0] / # ".into(), "\x1d1".into()),
        ("console: input to vm1".into(), "\n".into()),
        ("[vm1] / # ".into(), format!("sh /net.sh up 1; {vm1}; echo VM1_RE\"\"ADY\n")),
        ("VM1_READY".into(), "\x1d0".into()),
        ("console: input to vm0".into(), format!("sh /net.sh up 0; {vm0}; echo VM0_DO\"\"NE\n")),
    ]
}

/// The end of both: VM 1 powers off, then VM 0 (the machine with it).
fn net_end() -> Vec<(String, String)> {
    steps(&[("[ns-hyp] vm1: SYSTEM_OFF", "\x1d0"), ("console: input to vm0", "poweroff -f\n")])
}

/// VM 1 listens for the file; VM 0 pings slirp's gateway (info only) and
/// VM 1, sends the file and starts its server; the host reads that server
/// through `uplink`; VM 1 waits for the whole file and pings VM 0.
fn net_input(uplink: std::net::SocketAddr) -> Vec<(String, String)> {
    let mut i = net_start("sh /net.sh recv 1", "sh /net.sh gateway 0; sh /net.sh ping 0; sh /net.sh send 0; sh /net.sh irqs 0; sh /net.sh serve 0");
    i.push(("VM0_DONE".into(), crate::qemu::host_tcp_read(uplink)));
    i.extend(steps(&[
        ("xtask: host read from", "\x1d1"),
        ("console: input to vm1", "sh /net.sh received 1; sh /net.sh ping 1; sh /net.sh irqs 1; echo VM1_DO\"\"NE\n"),
        ("VM1_DONE", "poweroff -f\n"),
    ]));
    i.extend(net_end());
    i
}

fn net_boot(o: &Outputs) -> XResult<Boot> {
    let port = free_local_port()?;
    let boot = net_vms_boot(o, Some((port, UPLINK_GUEST_PORT)))?;
    Ok(Boot::Scripted { boot: Box::new(boot), input: net_input(std::net::SocketAddr::from(([127, 0, 0, 1], port))) })
}

fn net_expects() -> Vec<Expect> {
    let mut e = Vec::new();
    for k in 0..2 {
        let vm = format!("[vm{k}] ");
        let line = |rest: &[&str]| std::iter::once(vm.clone()).chain(rest.iter().map(|s| s.to_string())).collect::<Vec<_>>();
        e.extend([
            Expect { what: ["VM 0's init ran on 4 vCPUs", "VM 1's init ran on 4 vCPUs"][k], all_of: line(&[&format!("quadrant-init: up, {NET_VCPUS} cpu(s)")]) },
            Expect { what: ["VM 0 loaded virtio_net", "VM 1 loaded virtio_net"][k], all_of: line(&["quadrant-init: loaded virtio_net"]) },
            Expect { what: ["VM 0's eth0 has MAC 52:54:00:51:00:00", "VM 1's eth0 has MAC 52:54:00:51:00:01"][k], all_of: line(&[&format!("NET_MAC{k}=52:54:00:51:00:0{k}")]) },
            Expect { what: ["VM 0's virtio-net interrupt is INTID 49 (SPI 17)", "VM 1's virtio-net interrupt is INTID 49 (SPI 17)"][k], all_of: line(&[&format!("NET_IRQ{k}="), "GICv3", " 49 ", "virtio"]) },
            Expect { what: ["VM 0 pinged VM 1: 5 of 5 replies", "VM 1 pinged VM 0: 5 of 5 replies"][k], all_of: line(&[&format!("NET_PING{k}: "), "5 packets transmitted, 5 packets received"]) },
        ]);
    }
    e.extend([
        expect("ns-hyp drives QEMU's virtio-net device as the switch's uplink", &["[ns-hyp] network uplink: virtio-net at slot "]),
        expect("VM 0's nc sent the file and exited 0", &["[vm0] NET_SEND_STATUS=0 "]),
        expect("the host read VM 0's server through the uplink", &["xtask: host read from 127.0.0.1:", &format!(": {UPLINK_TEXT}")]),
        expect("VM 1's SYSTEM_OFF stopped VM 1 alone", &["[ns-hyp] vm1: SYSTEM_OFF"]),
        expect("the last VM's SYSTEM_OFF powered the machine off", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]);
    e
}

/// The interrupt count over all CPUs on VM `vm`'s virtio-net row of
/// /proc/interrupts after the traffic (`NET_INTS<vm>=` line).
fn net_interrupts(output: &str, vm: usize) -> Option<u64> {
    let tag = format!("NET_INTS{vm}=");
    let line = output.lines().find_map(|l| l.split_once(tag.as_str()).map(|(_, r)| r))?;
    // "  16:        812        903        640        777  GICv3      49 Edge      virtio0"
    Some(line.split_whitespace().skip(1).map_while(|w| w.parse::<u64>().ok()).sum())
}

/// The file VM 1 received hashes as the one VM 0 sent (and is not empty);
/// each VM took its device's interrupt (ns-hyp injected INTID 49: the driver
/// did not merely poll); prints the transfer's time and VM 0's ping of
/// slirp's gateway.
fn net_extra(output: &str) -> Vec<String> {
    let mut f = Vec::new();
    for vm in 0..2 {
        match net_interrupts(output, vm) {
            Some(n) if n > 0 => println!("    two_vms_net: VM {vm} took its virtio-net interrupt {n} times"),
            other => f.push(format!("VM {vm}'s virtio-net interrupt was never taken (count {other:?})")),
        }
    }
    match (tag_hashes(output, "NET_SENT").as_slice(), tag_hashes(output, "NET_RECV").as_slice()) {
        ([s], [r]) if s == r && *s != EMPTY_SHA256 => {}
        ([_], [r]) if *r == EMPTY_SHA256 => f.push("VM 1 received an empty file".into()),
        (s, r) => f.push(format!("VM 0 sent a file hashing {s:?}, VM 1 received one hashing {r:?}")),
    }
    if let Some(secs) = output.lines().find_map(|l| l.split("NET_SEND_STATUS=0 in ").nth(1)?.split_whitespace().next()?.parse::<f64>().ok()) {
        println!("    two_vms_net: 16 MiB from VM 0 to VM 1 in {secs:.2} s ({:.1} MB/s)", NET_FILE_BYTES as f64 / secs.max(0.01) / 1e6);
    }
    let gw = output.lines().find(|l| l.contains("NET_GW0: ") && l.contains("packets transmitted"));
    println!("    two_vms_net: VM 0 pinging slirp's gateway 10.0.2.2: {}", gw.and_then(|l| l.split("NET_GW0: ").nth(1)).unwrap_or("no summary line"));
    f
}

/// The vm_to_vm_tcp bench's console script: VM 1 runs the sink, VM 0 the
/// timed transfers (`NET_BENCH <to> <s> s status <n>` lines).
pub fn net_bench_input() -> Vec<(String, String)> {
    let mut i = net_start("sh /net.sh sink 1", "sh /net.sh bench 0");
    i.extend(steps(&[("VM0_DONE", "\x1d1"), ("console: input to vm1", "poweroff -f\n")]));
    i.extend(net_end());
    i
}

/// The bench's transfer times (s) of the `NET_BENCH` lines that ended with
/// status 0: (to the other VM, over loopback).
pub fn net_bench_times(output: &str) -> (Vec<f64>, Vec<f64>) {
    let (mut vm, mut lo) = (Vec::new(), Vec::new());
    for l in output.lines() {
        let Some(rest) = l.split("NET_BENCH ").nth(1) else { continue };
        if let [to, secs, "s", "status", "0"] = rest.split_whitespace().collect::<Vec<_>>().as_slice()
            && let Ok(s) = secs.parse::<f64>()
        {
            if to.starts_with("127.0.0.1:") { lo.push(s) } else { vm.push(s) }
        }
    }
    (vm, lo)
}

/// What the bench sends each time: 32 MiB (`dd bs=1M count=32`).
pub const NET_BENCH_BYTES: u64 = 32 << 20;

/// android_bits (issue B2 item 4): what Android needs of the guest's
/// machine.  `binder_linux` built from the guest kernel's own Debian source
/// with binderfs (`kmod::binder_module`: Debian's module has none) loads;
/// binderfs is mounted and makes its `binder` device; ci/binder-ping makes one binder transaction round trip between
/// two processes; busybox `hwclock` reads the PL031 ns-hyp emulates (its
/// time from the host's PL031 at ns-hyp's boot), and Linux's rtc-pl031
/// driver registered it; an alarm set 2 s ahead through sysfs raises the
/// PL031's match interrupt.
const ANDROID_SCRIPT: &str = "\
insmod /lib/modules/binder_linux.ko && echo \"quadrant-init: loaded binder_linux (Debian's source, with binderfs)\"
grep binder /proc/filesystems | sed \"s/^/FILESYSTEMS=/\"
mkdir -p /dev/binderfs
if mount -t binder binder /dev/binderfs; then echo BINDERFS=mounted; ls /dev/binderfs | sed \"s/^/BINDERFS_ENTRY=/\"; else echo BINDERFS=unavailable; fi
[ -c /dev/binder ] && echo BINDER_MISC_DEV=present
chmod +x /binder-ping
timeout 30 /binder-ping; echo BINDER_PING_STATUS=$?
hwclock -r -u | sed \"s/^/HWCLOCK=/\"
date -u \"+DATE=%Y-%m-%dT%H:%M:%SZ\"
dmesg | grep rtc-pl031 | sed \"s/^/DMESG_RTC=/\"
echo +2 > /sys/class/rtc/rtc0/wakealarm && echo WAKEALARM=set
sleep 4
grep rtc-pl031 /proc/interrupts | sed \"s/^/RTC_IRQ=/\"
echo \"WAKEALARM_AFTER=$(cat /sys/class/rtc/rtc0/wakealarm)\"";

fn android_boot(o: &Outputs) -> XResult<Boot> {
    let ping = std::fs::read(crate::build::build_binder_ping()?).map_err(|e| format!("binder-ping: {e}"))?;
    let binder = std::fs::read(crate::kmod::binder_module(&o.paths)?).map_err(|e| format!("binder_linux.ko: {e}"))?;
    let files: [(&str, &[u8]); 2] = [("/binder-ping", &ping), ("/lib/modules/binder_linux.ko", &binder)];
    let initrd = guest::initramfs(&o.paths, &InitramfsSpec { name: "nshyp-android", modules: &[], script: Some(ANDROID_SCRIPT), files: &files })?;
    let g = GuestPayload { kernel: guest::kernel_image(&o.paths)?, initrd: Some(initrd), cmdline: None };
    hyp_guest_boot(o, None, "", &g, 2, Some(2), "")
}

fn android_expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp read the host's PL031 for its wall clock", &["[ns-hyp] wall clock: ", "s since the epoch (PL031 at 0x9010000)"]),
        expect("binder_linux (Debian 7.3's source, with binderfs) loaded", &["quadrant-init: loaded binder_linux (Debian's source, with binderfs)"]),
        expect("binderfs is a filesystem of the kernel", &["FILESYSTEMS=", "binder"]),
        expect("binderfs mounted", &["BINDERFS=mounted"]),
        expect("binderfs made its binder device", &["BINDERFS_ENTRY=binder"]),
        expect("the binder context manager got the child's transaction", &["binder_ping: manager got BR_TRANSACTION from the child"]),
        expect("the child got the transformed reply", &["binder_ping: child got BR_REPLY with the payload case-swapped"]),
        expect("the binder transaction made its round trip", &["binder_ping: round trip ok"]),
        expect("binder-ping exited 0", &["BINDER_PING_STATUS=0"]),
        expect("Linux's rtc-pl031 driver registered the PL031", &["DMESG_RTC=", "rtc-pl031 9010000.pl031: registered as rtc0"]),
        expect("hwclock read the RTC", &["HWCLOCK="]),
        expect("an RTC alarm 2 s ahead was set through sysfs", &["WAKEALARM=set"]),
        expect("the PL031's interrupt is SPI 2 (INTID 34), level", &["RTC_IRQ=", "GICv3", " 34 Level", "rtc-pl031"]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// The year in busybox `hwclock -r`'s line (its last 4-digit number).
fn hwclock_year(output: &str) -> Option<u32> {
    let line = output.lines().find_map(|l| l.split_once("HWCLOCK=").map(|(_, r)| r))?;
    line.split(|c: char| !c.is_ascii_digit()).filter(|w| w.len() == 4).filter_map(|w| w.parse().ok()).next_back()
}

/// The PL031's interrupt count over all CPUs (the `RTC_IRQ=` line of /proc/interrupts).
fn rtc_irq_count(output: &str) -> Option<u64> {
    let line = output.lines().find_map(|l| l.split_once("RTC_IRQ=").map(|(_, r)| r))?;
    // "  14:          1          0  GICv3      34 Level     rtc-pl031"
    Some(line.split_whitespace().skip(1).map_while(|w| w.parse::<u64>().ok()).sum())
}

/// hwclock's year is this one's or later (2025 at least); the match
/// interrupt of the alarm 2 s ahead was taken (the sysfs alarm is then
/// consumed: wakealarm reads empty).
fn android_extra(output: &str) -> Vec<String> {
    let mut f = Vec::new();
    match hwclock_year(output) {
        Some(y) if y >= 2025 => println!("    android_bits: hwclock year {y}"),
        other => f.push(format!("hwclock's year is {other:?}, not 2025 or later")),
    }
    match rtc_irq_count(output) {
        Some(n) if n >= 1 => println!("    android_bits: RTC alarm interrupts taken: {n}"),
        other => f.push(format!("the RTC alarm's interrupt was not taken (count {other:?})")),
    }
    if !output.lines().any(|l| l.trim_end() == "WAKEALARM_AFTER=") {
        f.push("the RTC alarm is still pending after it was due".into());
    }
    f
}

const PERSIST_IMAGE: &str = "nshyp-persist";

/// linux_disk_persistence: a first QEMU run writes a 16 MiB random file and
/// its sha256 to the virtio disk and syncs, resets the guest (PSCI
/// SYSTEM_RESET: QEMU reloads everything), and powers off at the next shell
/// (QEMU exits); a second QEMU run, a new process with the same image file,
/// reads both back and checks.
fn persist_write_input() -> Vec<(String, String)> {
    [
        ("quadrant-init: shell", ""),
        ("/ # ", "mount -t ext2 /dev/vda /mnt && head -c 16777216 /dev/urandom > /mnt/random.bin && sha256sum /mnt/random.bin > /mnt/random.sha256 && sync && umount /mnt && echo WROTE=ok\n"),
        ("WROTE=ok", ""),
        ("/ # ", "reboot -f\n"),
        ("quadrant-init: shell", ""),
        ("/ # ", "poweroff -f\n"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn persist_read_input() -> Vec<(String, String)> {
    [
        ("quadrant-init: shell", ""),
        ("/ # ", "mount -t ext2 -o ro /dev/vda /mnt && sed \"s/^/GUESTSHA=/\" /mnt/random.sha256 && sha256sum -c /mnt/random.sha256 | sed \"s/^/CHECK=/\"\n"),
        ("CHECK=", ""),
        ("/ # ", "poweroff -f\n"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn persist_boot(o: &Outputs) -> XResult<Boot> {
    let disk = guest::ext2_image(PERSIST_IMAGE, 40, &[("README", b"linux_disk_persistence\n")])?;
    let Boot::Custom { tfa, mut args } = no_tfa_guest_boot(o, "nshyp-shell-disk", DISK_MODULES, 4, 4, "")? else { unreachable!() };
    args.extend(disk_args(&disk));
    let run = |input| Boot::Scripted { boot: Box::new(Boot::Custom { tfa, args: args.clone() }), input };
    Ok(Boot::Sequence(vec![run(persist_write_input()), run(persist_read_input())]))
}

fn persist_expects() -> Vec<Expect> {
    vec![
        expect("run 1 wrote the file and synced", &["WROTE=ok"]),
        expect("the guest reset through PSCI", &["[ns-hyp] guest: SYSTEM_RESET"]),
        expect("a second QEMU process booted the guest", &["xtask: QEMU run 2 of 2"]),
        expect("run 2 read the file back and its sha256 matches", &["CHECK=/mnt/random.bin: OK"]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// The host reads the file from the image with debugfs (no mount) and
/// compares its sha256 with what the guest wrote.
fn persist_extra(output: &str) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let Some(guest_sha) = output.lines().find_map(|l| l.strip_prefix("GUESTSHA=")).and_then(|l| l.split_whitespace().next()) else {
        return vec!["no GUESTSHA= line".into()];
    };
    let img = crate::util::out_dir().join("disks").join(format!("{PERSIST_IMAGE}.img"));
    match std::process::Command::new("debugfs").args(["-R", "cat /random.bin"]).arg(&img).output() {
        Ok(out) if out.status.success() && out.stdout.len() == 16 << 20 => {
            let host = crate::measure::hex(&Sha256::digest(&out.stdout));
            if host == guest_sha { vec![] } else { vec![format!("debugfs reads sha256 {host}, the guest wrote {guest_sha}")] }
        }
        Ok(out) => vec![format!("debugfs cat /random.bin: status {}, {} bytes", out.status, out.stdout.len())],
        Err(e) => vec![format!("debugfs: {e}")],
    }
}

/// The same shell under TF-A (four worlds): ns-hyp is BL33 and gets the
/// guest from /chosen/bootargs in an fdtput-edited copy of QEMU's DTB.
fn tfa_shell_boot(o: &Outputs) -> XResult<Boot> {
    Ok(Boot::Scripted { boot: Box::new(tfa_guest_boot(o, "nshyp-shell-tfa", "")?), input: shell_input() })
}

/// Debian's kernel with the shell initramfs and a disk holding the known
/// file, under TF-A (ns-hyp as BL33); `hyp_args` go to ns-hyp.
fn tfa_guest_boot(o: &Outputs, disk_name: &str, hyp_args: &str) -> XResult<Boot> {
    let disk = guest::ext2_image(disk_name, 8, &[("known.bin", &known_file())])?;
    let g = GuestPayload { kernel: guest::kernel_image(&o.paths)?, initrd: Some(shell_initramfs(o)?), cmdline: None };
    let Boot::Custom { tfa, mut args } = hyp_guest_boot(o, Some(&o.bios), "nshyp-tfa-guest", &g, 4, None, hyp_args)? else { unreachable!() };
    args.extend(disk_args(&disk));
    Ok(Boot::Custom { tfa, args })
}

/// The BusyBox shell initramfs with the disk modules (what `cargo xtask run` gives the guest).
pub fn shell_initramfs(o: &Outputs) -> XResult<PathBuf> {
    guest::initramfs(&o.paths, &InitramfsSpec { name: "nshyp-shell-disk", modules: DISK_MODULES, script: None, files: &[] })
}

/// The disk `cargo xtask run` attaches (an ext2 image holding `known.bin`), as QEMU arguments.
pub fn run_disk_args() -> XResult<Vec<String>> {
    Ok(disk_args(&guest::ext2_image("nshyp-run", 8, &[("known.bin", &known_file())])?))
}

/// Words that name ns-hyp's test code (modules `probe`, `bench`,
/// `realm::{bad_input,isolation,bench}`, `guest::selftest`, the GPF-skip
/// hook `on_el2_sync`).  ns-hyp's RX/TX `mailbox` is product code since the
/// guests' FF-A proxy uses it (issue B3).
const TEST_CODE_WORDS: &[&str] = &["probe", "bench", "bad_input", "isolation", "selftest", "on_el2_sync"];

/// Issue R: the product image's symbols name none of the test code, while
/// the test flavour's do (so the words above still find it).
pub fn product_image_has_no_test_code(_: &Outputs) -> Vec<String> {
    let syms = |elf: &Path| -> Result<Vec<String>, String> {
        let out = crate::util::output(std::process::Command::new("aarch64-linux-gnu-nm").arg("-C").arg(elf))?;
        Ok(out.lines().filter(|l| TEST_CODE_WORDS.iter().any(|w| l.to_lowercase().contains(w))).map(str::to_owned).collect())
    };
    match (syms(&crate::build::ns_hyp_elf()), syms(&crate::build::ns_hyp_test_elf())) {
        (Ok(product), Ok(test)) => {
            let mut f: Vec<String> = product.iter().take(5).map(|s| format!("test code in the product image: {s}")).collect();
            if test.is_empty() {
                f.push("the test flavour has none of the test symbols either: the check looks for the wrong names".into());
            }
            f
        }
        (Err(e), _) | (_, Err(e)) => vec![e],
    }
}

/// Issue B1's tests that do not pass yet; run only when named exactly.
pub fn pending() -> Vec<IntegrationTest> {
    vec![]
}

#[cfg(test)]
mod tests {
    #[test]
    fn feature_check_lines() {
        let out = "guest_cpu_features a: pass\nguest_cpu_features info: x: pass\nguest_cpu_features b: fail\nxtask: QEMU run 2 of 2\n[ns-hyp] x\nguest_cpu_features a: fail\nguest_cpu_features done: 1 pass, 1 fail\n";
        assert_eq!(super::feature_checks(out), vec![("a".to_string(), true), ("b".to_string(), false), ("a".to_string(), false)]);
        assert_eq!(super::cpu_features_extra(out), vec!["a: passes on bare QEMU, not under ns-hyp".to_string()]);
        let ok = out.replace("guest_cpu_features a: fail", "guest_cpu_features a: pass");
        assert!(super::cpu_features_extra(&ok).is_empty());
    }

    #[test]
    fn guest_features_lines() {
        let run = "guest_features dmesg: [    1.8] hw perfevents: enabled with armv8_pmuv3 PMU driver, 7 (0,8000003f) counters available\n\
                   guest_features cpuinfo: Features\t: fp asimd sve sve2 mte mte3\n\
                   guest_features info: sve: vector length (bytes) 64\n\
                   guest_features sve_add: pass\n\
                   guest_features info: sve_regs_preempt_2cpu process 1 on cpu 1: registers as expected, involuntary switches 10, longest stall 9567 us\n\
                   guest_features info: sve_regs_preempt_2cpu process 0 on cpu 0: registers as expected, involuntary switches 0, longest stall 4460 us\n\
                   guest_features done: 1 pass, 0 fail\n";
        let out = format!("xtask: QEMU run 1 of 2\n{run}xtask: QEMU run 2 of 2\n{run}");
        assert!(super::guest_features_extra(&out).is_empty());
        let bad = out.replacen("sve_add: pass", "sve_add: fail", 2).replace(" mte mte3", " mte3");
        let f = super::guest_features_extra(&bad);
        assert_eq!(f.len(), 4, "{f:?}");
        assert!(f.contains(&"ns-hyp: /proc/cpuinfo's Features lack `mte`".to_string()));
        assert!(f.contains(&"ns-hyp: guest_features sve_add: fail".to_string()));
        assert_eq!(super::guest_features_extra(run).len(), 1, "one run only");
        let no_switch = out.replace("longest stall 4460 us", "longest stall 12 us");
        assert_eq!(super::guest_features_extra(&no_switch).len(), 1, "a vCPU never switched out under ns-hyp");
    }

    #[test]
    fn lifecycle_ticks_and_store() {
        assert_eq!(super::LIFECYCLE_STORE_PA, 0xb000_0000);
        let out = "[vm0] TICK 10.50\n[vm1] TICK 3.0\n[ns-hyp] x\n[vm0] TICK 10.61\r\n[vm0] TICK oops\n[vm0] powTICK 10.70\n";
        assert_eq!(super::ticks(out), vec![10.50, 10.61, 10.70]);
    }

    #[test]
    fn qemu_kernel_offsets() {
        let mut img = vec![0u8; 4096];
        assert_eq!(super::qemu_kernel_offset(&img), (0x8_0000, 4096), "no header: flat at 0x80000");
        img[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(super::qemu_kernel_offset(&img), (0x8_0000, 4096), "image_size 0: flat");
        img[16..24].copy_from_slice(&(40u64 << 20).to_le_bytes());
        assert_eq!(super::qemu_kernel_offset(&img), (2 << 20, 40 << 20), "text_offset 0: 2 MiB in, spanning image_size");
        img[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
        assert_eq!(super::qemu_kernel_offset(&img).0, 0x8_0000);
    }

    /// A Linux Image's sizes as xtask sees them (Debian's kernel: text_offset 0).
    fn linux_sizes(initrd: Option<u64>) -> super::PayloadSizes {
        super::PayloadSizes { kernel: 51_640_832, offset: 2 << 20, span: 53_000_000, initrd }
    }

    #[test]
    fn single_vm_bootargs_unchanged() {
        let s = linux_sizes(Some(1_849_344));
        let (args, kernel_pa, initrd_pa) = super::place_vm(s, super::GUEST_RAM_PA, None, 4, "quadrant.mem=512", Some("console=ttyAMA0"), "k").unwrap();
        assert_eq!(args, "quadrant.guest=0x80200000,51640832 quadrant.initrd=0x88000000,1849344 quadrant.vcpus=4 quadrant.mem=512 -- console=ttyAMA0");
        assert_eq!(args, super::guest_bootargs(super::GUEST_KERNEL_PA, 51_640_832, Some(1_849_344), 4, "quadrant.mem=512", Some("console=ttyAMA0")));
        assert_eq!((kernel_pa, initrd_pa), (super::GUEST_KERNEL_PA, super::GUEST_INITRD_PA));
        assert_eq!(super::join_vms(&[&args]).unwrap(), args, "one VM: no separator");
        let bare = super::place_vm(linux_sizes(None), super::GUEST_RAM_PA, None, 2, "", None, "k").unwrap().0;
        assert_eq!(bare, "quadrant.guest=0x80200000,51640832 quadrant.vcpus=2");
    }

    #[test]
    fn two_vm_bootargs() {
        let pas = super::vm_ram_pas(&[512, 512], None).unwrap();
        assert_eq!(pas, [0x8000_0000, 0xa000_0000]);
        let vms: Vec<String> = pas.iter().map(|&pa| super::place_vm(linux_sizes(Some(1_849_344)), pa, Some(512), 2, "quadrant.mem=512", None, "k").unwrap().0).collect();
        assert_eq!(
            super::join_vms(&vms).unwrap(),
            "quadrant.guest=0x80200000,51640832 quadrant.initrd=0x88000000,1849344 quadrant.vcpus=2 quadrant.mem=512 --- \
             quadrant.guest=0xa0200000,51640832 quadrant.initrd=0xa8000000,1849344 quadrant.vcpus=2 quadrant.mem=512"
        );
        let vm = super::VmSpec { payload: super::GuestPayload { kernel: "k".into(), initrd: None, cmdline: None }, vcpus: 2, mem_mib: 256, realm: false };
        assert_eq!(super::vm_words(&vm, ""), "quadrant.mem=256");
        assert_eq!(super::vm_words(&vm, "quadrant.virtio=pci"), "quadrant.mem=256 quadrant.virtio=pci");
    }

    #[test]
    fn vm_ram_layout_limits() {
        assert_eq!(super::vm_ram_pas(&[256; 4], None).unwrap(), [0x8000_0000, 0x9000_0000, 0xa000_0000, 0xb000_0000]);
        assert_eq!(super::vm_share_mib(1), 1024);
        assert_eq!(super::vm_share_mib(3), 340, "whole 2 MiB blocks");
        assert!(super::vm_ram_pas(&[340; 3], None).is_ok());
        assert!(super::vm_ram_pas(&[], None).is_err());
        assert!(super::vm_ram_pas(&[64; 5], None).is_err(), "more VMs than ns-hyp runs");
        assert!(super::vm_ram_pas(&[512, 514], None).is_err(), "more than 1 GiB");
        assert!(super::vm_ram_pas(&[32, 64], None).is_err(), "below 64 MiB");
        assert!(super::vm_ram_pas(&[511, 64], None).is_err(), "not whole 2 MiB");
        // The initramfs (128 MiB in) of a 64 MiB VM would sit in the next VM's RAM.
        assert!(super::place_vm(linux_sizes(Some(4096)), 0x8000_0000, Some(64), 1, "", None, "k").is_err());
        assert!(super::place_vm(linux_sizes(None), 0x8000_0000, Some(64), 1, "", None, "k").is_ok());
        // A kernel reaching past 128 MiB meets the initramfs.
        let big = super::PayloadSizes { span: 127 << 20, ..linux_sizes(Some(4096)) };
        assert!(super::place_vm(big, 0x8000_0000, Some(512), 1, "", None, "k").is_err());
        assert!(super::place_vm(linux_sizes(None), 0x8000_0000, None, 1, "", Some(&"x".repeat(256)), "k").is_err());
        assert!(super::join_vms(&["x".repeat(600), "y".repeat(600)]).is_err(), "longer than ns-hyp's bootargs");
    }

    #[test]
    fn vm_disks_in_slot_order() {
        let a = super::vm_disks_args(&["a.img".into(), "b.img".into()]);
        // VM 1's -device first: QEMU gives it the higher slot.
        assert_eq!(
            a,
            [
                "-drive", "file=b.img,if=none,format=raw,id=vm1disk", "-device", "virtio-blk-device,drive=vm1disk",
                "-drive", "file=a.img,if=none,format=raw,id=vm0disk", "-device", "virtio-blk-device,drive=vm0disk",
            ]
        );
        assert_eq!(super::disk_args(std::path::Path::new("x")), ["-drive", "file=x,if=none,format=raw,id=hd0", "-device", "virtio-blk-device,drive=hd0"]);
    }

    #[test]
    fn isolation_script_markers_are_not_typed() {
        let input = super::isolation_input();
        // What the script waits for never appears in what it types: the
        // shell's echo of a line cannot stand for the line's output.
        for (wait, _) in &input {
            assert!(input.iter().all(|(_, send)| !send.contains(wait.as_str())), "{wait:?} is typed");
        }
        let vm0 = &input.iter().find(|(_, send)| send.starts_with("devmem ")).unwrap().1;
        for ipa in ["0xa0000000 32;", "0xa0100000 32 0x5a5a5a5a;", "0x80000000 32;", "0xc000000 32;"] {
            assert!(vm0.contains(&format!("devmem {ipa}")), "{ipa} in {vm0}");
        }
        assert!(input.iter().all(|(_, send)| send.is_empty() || send.ends_with('\n') || send.starts_with('\x1d')));
    }

    #[test]
    fn realm_vm_footprint() {
        assert_eq!(super::vm_footprint_mib(256, true), 520);
        assert_eq!(super::vm_footprint_mib(256, false), 256);
        // Two 192 MiB VMs, then a 256 MiB Realm taking 520 MiB: 904 MiB in all.
        assert_eq!(super::vm_ram_pas(&[192, 192, 256], Some(2)).unwrap(), [0x8000_0000, 0x8c00_0000, 0x9800_0000]);
        // A Realm first: the next VM's RAM starts after its whole footprint.
        assert_eq!(super::vm_ram_pas(&[64, 192], Some(0)).unwrap(), [0x8000_0000, 0x8000_0000 + (136 << 20)]);
        assert_eq!(super::vm_ram_pas(&[256, 256], Some(0)).unwrap(), [0x8000_0000, 0xa080_0000]);
        assert!(super::vm_ram_pas(&[256, 256, 256], Some(2)).is_err(), "1032 MiB of footprints");
        assert!(super::vm_ram_pas(&[256, 248, 256], Some(2)).is_ok(), "exactly 1 GiB");
        assert!(super::vm_ram_pas(&[258], Some(0)).is_err(), "a Realm above 256 MiB");
        assert!(super::vm_ram_pas(&[512], None).is_ok());
        assert!(super::vm_ram_pas(&[62], Some(0)).is_err(), "a Realm below 64 MiB");
        assert!(super::vm_ram_pas(&[64], Some(1)).is_err(), "no VM 1");
        let vm = |realm| super::VmSpec { payload: super::GuestPayload { kernel: "k".into(), initrd: None, cmdline: None }, vcpus: 2, mem_mib: 256, realm };
        assert_eq!(super::vm_words(&vm(true), ""), "quadrant.realm-vm quadrant.mem=256");
        // Its payloads go where a normal VM's would, in the first `mem` MiB of its footprint.
        let pa = super::vm_ram_pas(&[192, 192, 256], Some(2)).unwrap()[2];
        let (args, kernel_pa, initrd_pa) = super::place_vm(linux_sizes(Some(4_229_632)), pa, Some(256), 2, &super::vm_words(&vm(true), ""), Some("console=ttyAMA0"), "k").unwrap();
        assert_eq!((kernel_pa, initrd_pa), (0x9820_0000, 0xa000_0000));
        assert_eq!(args, "quadrant.guest=0x98200000,51640832 quadrant.initrd=0xa0000000,4229632 quadrant.vcpus=2 quadrant.realm-vm quadrant.mem=256 -- console=ttyAMA0");
    }

    #[test]
    fn isolation_output() {
        let h = "ab".repeat(32);
        let good = format!(
            "[vm1] / # dd if=/dev/urandom of=/tmp/b bs=1M count=8 && sha256sum /tmp/b | sed 's/^/B_BEFORE=/'; echo B_WRI\"\"TTEN\n\
             [vm1] B_BEFORE={h}  /tmp/b\n\
             [vm0] / # devmem 0xa0000000 32; echo DEVMEM_B=$?; devmem 0xa0100000 32 0x5a5a5a5a; echo DEVMEM_BW\n\
             [vm0] =$?; devmem 0x80000000 32; echo DEVMEM_OWNPA=$?; devmem 0xc000000 32; echo DEVMEM_HOLE=$?\n\
             [ns-hyp] vm0 vCPU 1: data abort at IPA 0xa0000000 (pc 0x4c7ed8, no device): external abort to the guest\n\
             [vm0] DEVMEM_B=135\n[vm0] DEVMEM_BW=139\n[vm0] DEVMEM_OWNPA=135\n[vm0] DEVMEM_HOLE=135\n\
             B_AFTER={h}  /tmp/b\n"
        );
        assert_eq!(super::tag_values(&good, "DEVMEM_B"), ["$?;", "135"]);
        assert_eq!(super::tag_hashes(&good, "B_BEFORE"), [h.as_str()]);
        assert!(super::isolation_extra(&good).is_empty(), "{:?}", super::isolation_extra(&good));
        let changed = good.replace(&format!("B_AFTER={h}"), &format!("B_AFTER={}", "cd".repeat(32)));
        assert_eq!(super::isolation_extra(&changed).len(), 1);
        let survived = good.replace("DEVMEM_HOLE=135", "DEVMEM_HOLE=0");
        assert_eq!(super::isolation_extra(&survived).len(), 1);
        let empty = good.replace(&h, super::EMPTY_SHA256);
        assert_eq!(super::isolation_extra(&empty), ["VM 1's file is empty: dd wrote nothing"]);
        let vm1_abort = format!("{good}[ns-hyp] vm1 vCPU 0: data abort at IPA 0x9000000 (pc 1, x): external abort to the guest\n");
        assert_eq!(super::isolation_extra(&vm1_abort).len(), 1);
        assert_eq!(super::isolation_extra("").len(), 5, "four statuses and the hashes missing");
    }

    #[test]
    fn net_script_and_markers() {
        let input = super::net_input(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
        for (wait, _) in &input {
            assert!(input.iter().all(|(_, send)| !send.contains(wait.as_str())), "{wait:?} is typed");
        }
        // The host reads through the uplink once VM 0's server is up, then the script goes on.
        let host = input.iter().position(|(_, send)| send == &crate::qemu::host_tcp_read(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)))).unwrap();
        assert!(input[host - 1].1.contains("sh /net.sh serve 0") && input[host + 1].0 == "xtask: host read from");
        assert!(input.iter().all(|(_, send)| send.is_empty() || send.ends_with('\n') || send.starts_with('\x1d') || send.starts_with('\0')));
        assert_eq!(input.last().unwrap().1, "poweroff -f\n");
        let bench = super::net_bench_input();
        assert!(bench.iter().any(|(_, send)| send.contains("sh /net.sh bench 0")) && bench.iter().any(|(_, send)| send.contains("sh /net.sh sink 1")));
        let s = super::NET_SCRIPT;
        assert!(s.contains(&format!("echo {} | nc -l -p {}", super::UPLINK_TEXT, super::UPLINK_GUEST_PORT)));
        assert!(s.contains(&format!("head -c {} /dev/urandom", super::NET_FILE_BYTES)));
        assert!(s.contains(&format!("bs=1M count={}", super::NET_BENCH_BYTES >> 20)));
        for step in ["up", "ping", "irqs", "gateway", "recv", "received", "send", "serve", "sink", "bench"] {
            assert!(s.contains(&format!("\n{step})\n")), "no step {step}");
        }
        assert_eq!(
            super::uplink_args(5555, 22),
            ["-netdev", "user,id=up,hostfwd=tcp:127.0.0.1:5555-10.0.2.15:22", "-device", "virtio-net-device,netdev=up"]
        );
        assert_eq!(super::NET_MODULES.iter().rev().take(3).collect::<Vec<_>>(), [&"virtio_net", &"net_failover", &"failover"], "dependency order");
    }

    #[test]
    fn net_output() {
        let h = "cd".repeat(32);
        let good = format!(
            "[vm0] NET_SENT={h}  /tmp/f\n[vm1] NET_RECV={h}  /tmp/r\n[vm0] NET_SEND_STATUS=0 in 4.2 s\n\
             [vm0] NET_GW0: 1 packets transmitted, 1 packets received, 0% packet loss\n\
             [vm0] NET_INTS0=  16:        812        903        640        777  GICv3      49 Edge      virtio0\n\
             [vm1] NET_INTS1=  16:          0          1          0          0  GICv3      49 Edge      virtio0\n"
        );
        assert_eq!(super::net_interrupts(&good, 0), Some(3132));
        assert!(super::net_extra(&good).is_empty());
        let none = good.replace("0          1          0", "0          0          0");
        assert_eq!(super::net_extra(&none), ["VM 1's virtio-net interrupt was never taken (count Some(0))"]);
        let bad = good.replace(&format!("NET_RECV={h}"), &format!("NET_RECV={}", "ab".repeat(32)));
        assert_eq!(super::net_extra(&bad).len(), 1);
        let empty = good.replace(&format!("NET_RECV={h}"), &format!("NET_RECV={}", super::EMPTY_SHA256));
        assert_eq!(super::net_extra(&empty), ["VM 1 received an empty file"]);
        assert_eq!(super::net_extra("").len(), 3);
        let bench = "[vm0] NET_BENCH 10.0.2.16:5001 3.5 s status 0\n[vm0] NET_BENCH 127.0.0.1:5002 0.41 s status 0\n\
                     [vm0] NET_BENCH 10.0.2.16:5001 0.01 s status 1\n[vm0] NET_BENCH 10.0.2.16:5001 3.1 s status 0\n[vm0] x NET_BENCH\n";
        assert_eq!(super::net_bench_times(bench), (vec![3.5, 3.1], vec![0.41]));
    }

    #[test]
    fn hwclock_years() {
        assert_eq!(super::hwclock_year("HWCLOCK=Thu Dec  3 12:05:33 2026  0.000000 seconds\n"), Some(2026));
        assert_eq!(super::hwclock_year("x\nHWCLOCK=2027-01-02 03:04:05.000000+00:00\n"), Some(2027));
        assert_eq!(super::hwclock_year("HWCLOCK=\n"), None);
        assert_eq!(super::hwclock_year("nothing"), None);
        assert_eq!(super::rtc_irq_count("RTC_IRQ=  14:          1          2  GICv3      34 Level     rtc-pl031\n"), Some(3));
        assert_eq!(super::rtc_irq_count("RTC_IRQ=  14:   0   0  GICv3  34 Level  rtc-pl031"), Some(0));
        assert_eq!(super::rtc_irq_count("x"), None);
    }

    #[test]
    fn timer_rows() {
        let out = "TIMER1:  11:   803   2290  1464  1298  GICv3  27 Level  arch_timer\nTIMER2:  11:   903   2390  1564  1398  GICv3  27 Level  arch_timer\n";
        assert!(super::timer_counts_rise(out).is_empty());
        let out = "TIMER1:  11:   803   2290  1464  1298  GICv3\nTIMER2:  11:   903   2290  1564  1398  GICv3\n";
        assert_eq!(super::timer_counts_rise(out).len(), 1);
        assert_eq!(super::timer_counts_rise("").len(), 1);
    }
}
