//! `cargo xtask run`: its options, and the boot it makes from them.  The
//! integration tests of the options call [`boot`] too, so what they check is
//! what a user gets.

use crate::build::{self, Bl33, Outputs};
use crate::guest::{self, InitramfsSpec};
use crate::layout::SpSet;
use crate::qemu::Boot;
use crate::tests::nshyp::{self, GuestPayload, VmSpec};
use crate::tests::spmc;
use crate::util::{self, Result};
use std::path::{Path, PathBuf};

pub const USAGE: &str = "  run [--no-tfa] [--gdb] [--mem MiB] [--vms N] [--kernel IMAGE [--initrd FILE] [--append ARGS]]
      [--bl33 IMAGE [--initrd FILE] [--append ARGS]] [--pkvm] [--sp-layout FILE]
                   build, then boot all four worlds in QEMU (serial on this terminal)
                   with Debian's Linux as ns-hyp's guest, to a BusyBox shell;
                   --no-tfa: ns-hyp alone with -kernel; --gdb: wait for gdb on :1234;
                   --mem: the guest's RAM in MiB (64..1024, default 1024);
                   --vms: N guests of ns-hyp (1..4; 2 vCPUs and 1024/N MiB each, --mem: each
                     one's), no disk; one console: lines start [vmN], Ctrl-] N types to VM N;
                     each VM's virtio-net is on ns-hyp's switch, QEMU's user network its
                     uplink (`sh /net.sh up K` in VM K: eth0 10.0.2.(15+K)/24, gateway
                     10.0.2.2); 127.0.0.1:5555 on this host reaches VM 0's port 22;
                   --kernel: your arm64 Image (gzip is unpacked) as ns-hyp's guest,
                     --initrd its initramfs (default: ours), --append its command line;
                   --bl33: your NS-EL2 payload (e.g. a Linux Image with KVM) in place
                     of ns-hyp, over our spmc and rmm (Linux: --initrd, --append);
                   --pkvm: Linux as BL33 with kvm-arm.mode=protected (pKVM at NS-EL2,
                     its FF-A proxy between Linux and spmc); Debian's kernel unless
                     --bl33 names yours; our initramfs has /lib/modules/quadrant_ffa_probe.ko
                     (insmod it: a direct request to each SP; docs/quickstart-pkvm.md);
                   --sp-layout: your sp_layout.json (TF-A's format) instead of ours";

/// What `cargo xtask run` was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    pub no_tfa: bool,
    pub gdb: bool,
    pub mem: Option<u32>,
    pub kernel: Option<PathBuf>,
    pub bl33: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    pub sp_layout: Option<PathBuf>,
    /// Linux as BL33 under pKVM (`kvm-arm.mode=protected`).
    pub pkvm: bool,
    /// How many VMs ns-hyp runs (`None`: one, as `Some(1)`).
    pub vms: Option<usize>,
}

/// vCPUs of each VM when `--vms` asks for several.
pub const RUN_VM_VCPUS: usize = 2;
/// With several VMs, the host port forwarded through ns-hyp's uplink
/// (QEMU's user network) to VM 0's (10.0.2.15) [`RUN_UPLINK_GUEST_PORT`].
pub const RUN_UPLINK_PORT: u16 = 5555;
pub const RUN_UPLINK_GUEST_PORT: u16 = 22;

/// [`RUN_UPLINK_PORT`], or a free port (said on the terminal) if it is taken.
fn run_uplink_port() -> Result<u16> {
    if std::net::TcpListener::bind(("127.0.0.1", RUN_UPLINK_PORT)).is_ok() {
        return Ok(RUN_UPLINK_PORT);
    }
    let port = nshyp::free_local_port()?;
    eprintln!("xtask: 127.0.0.1:{RUN_UPLINK_PORT} is taken: the uplink forwards 127.0.0.1:{port} to VM 0's port {RUN_UPLINK_GUEST_PORT} instead");
    Ok(port)
}

/// Parses the words after `run` and checks that the files named exist.
pub fn parse(args: &[String]) -> Result<RunOptions> {
    let o = parse_words(args)?;
    for p in [&o.kernel, &o.bl33, &o.initrd, &o.sp_layout].into_iter().flatten() {
        if !p.is_file() {
            return Err(format!("{}: no such file", p.display()));
        }
    }
    Ok(o)
}

/// Parses the words after `run` (the options and how they combine).
pub fn parse_words(args: &[String]) -> Result<RunOptions> {
    let mut o = RunOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} wants a value"));
        match a.as_str() {
            "--no-tfa" => o.no_tfa = true,
            "--gdb" => o.gdb = true,
            "--mem" => {
                let v = value("--mem")?;
                o.mem = Some(v.parse().ok().filter(|m| (64..=1024).contains(m)).ok_or("--mem wants a size in MiB from 64 to 1024")?);
            }
            "--kernel" => o.kernel = Some(PathBuf::from(value("--kernel")?)),
            "--bl33" => o.bl33 = Some(PathBuf::from(value("--bl33")?)),
            "--initrd" => o.initrd = Some(PathBuf::from(value("--initrd")?)),
            "--append" => o.append = Some(value("--append")?),
            "--sp-layout" => o.sp_layout = Some(PathBuf::from(value("--sp-layout")?)),
            "--pkvm" => o.pkvm = true,
            "--vms" => {
                let v = value("--vms")?;
                o.vms = Some(v.parse().ok().filter(|n| (1..=nshyp::MAX_VMS).contains(n)).ok_or(format!("--vms wants a number of VMs from 1 to {}", nshyp::MAX_VMS))?);
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.bl33.is_some() && (o.kernel.is_some() || o.no_tfa || o.mem.is_some()) {
        return Err("--bl33 replaces ns-hyp: it goes with neither --kernel, --no-tfa nor --mem".into());
    }
    if o.no_tfa && o.sp_layout.is_some() {
        return Err("--sp-layout needs TF-A (no --no-tfa)".into());
    }
    if o.pkvm && (o.kernel.is_some() || o.no_tfa || o.mem.is_some()) {
        return Err("--pkvm boots Linux as BL33 in place of ns-hyp: it goes with neither --kernel, --no-tfa nor --mem".into());
    }
    if let Some(n) = o.vms.filter(|&n| n > 1) {
        if o.bl33.is_some() || o.pkvm {
            return Err("--vms runs several guests of ns-hyp: it goes with neither --bl33 nor --pkvm".into());
        }
        // ns-hyp's own limits on the VMs' RAM, said before anything is built.
        let mem = o.mem.unwrap_or(nshyp::vm_share_mib(n));
        nshyp::vm_ram_pas(&vec![mem; n], None).map_err(|e| format!("--vms {n}: {e}"))?;
    }
    if (o.initrd.is_some() || o.append.is_some()) && o.kernel.is_none() && o.bl33.is_none() && !o.pkvm {
        return Err("--initrd and --append go with --kernel, --bl33 or --pkvm".into());
    }
    Ok(o)
}

/// The Linux command line a --bl33 Linux gets without --append.
pub const BL33_DEFAULT_CMDLINE: &str = "console=ttyAMA0 earlycon rdinit=/init";

/// What pKVM needs on the kernel command line.
pub const PKVM_ARG: &str = "kvm-arm.mode=protected";

/// `cmdline` with [`PKVM_ARG`] (unless it names a kvm-arm.mode already).
pub fn pkvm_cmdline(cmdline: &str) -> String {
    if cmdline.split_whitespace().any(|w| w.starts_with("kvm-arm.mode=")) { cmdline.to_owned() } else { format!("{cmdline} {PKVM_ARG}") }
}

/// The boot `cargo xtask run` makes of `opts` (building the TF-A variant a
/// user's SP layout needs first).
pub fn boot(o: &Outputs, opts: &RunOptions) -> Result<Boot> {
    let sps = opts.sp_layout.clone().map(SpSet::User).unwrap_or(SpSet::Ours);
    let hyp_args = opts.mem.map(|m| format!("quadrant.mem={m}")).unwrap_or_default();
    if opts.pkvm {
        // Issue G: Linux as BL33 at NS-EL2 in protected mode: pKVM keeps
        // EL2 and puts Linux at EL1; its FF-A proxy sits between Linux's
        // FF-A driver and spmc.
        let bios = if sps == SpSet::Ours { o.linux_bios.clone() } else { build::build_tfa(&o.paths, Bl33::PreloadedLinux, &sps)? };
        let image = match &opts.bl33 {
            Some(i) => unpacked(i, "bl33")?,
            None => guest::kernel_image(&o.paths)?,
        };
        let initrd = match &opts.initrd {
            Some(i) => i.clone(),
            None => pkvm_initramfs(o, "run-pkvm", None)?,
        };
        return spmc::bl33_boot(&bios, &image, Some(&initrd), "run-pkvm", &pkvm_cmdline(opts.append.as_deref().unwrap_or(BL33_DEFAULT_CMDLINE)));
    }
    if let Some(image) = &opts.bl33 {
        let bios = if sps == SpSet::Ours { o.linux_bios.clone() } else { build::build_tfa(&o.paths, Bl33::PreloadedLinux, &sps)? };
        let image = unpacked(image, "bl33")?;
        let initrd = match &opts.initrd {
            Some(i) => i.clone(),
            // The FF-A driver is what a Linux over our spmc wants first.
            None => guest::initramfs(&o.paths, &InitramfsSpec { name: "run-bl33", modules: &["ffa-core", "ffa-module"], script: None, files: &[] })?,
        };
        return spmc::bl33_boot(&bios, &image, Some(&initrd), "run-bl33", opts.append.as_deref().unwrap_or(BL33_DEFAULT_CMDLINE));
    }
    let kernel = match &opts.kernel {
        Some(k) => unpacked(k, "guest")?,
        None => guest::kernel_image(&o.paths)?,
    };
    let several = opts.vms.is_some_and(|n| n > 1);
    let initrd = match &opts.initrd {
        Some(i) => i.clone(),
        // Several VMs have no disk, but a network: its modules and /net.sh.
        None if several => nshyp::net_initramfs(o)?,
        None => nshyp::shell_initramfs(o)?,
    };
    let bios = match (opts.no_tfa, &sps) {
        (true, _) => None,
        (false, SpSet::Ours) => Some(o.bios.clone()),
        (false, user) => Some(build::build_tfa(&o.paths, Bl33::NsHyp, user)?),
    };
    if let Some(n) = opts.vms.filter(|&n| n > 1) {
        let mem = opts.mem.unwrap_or(nshyp::vm_share_mib(n));
        let vm = || VmSpec { payload: GuestPayload { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: opts.append.clone() }, vcpus: RUN_VM_VCPUS, mem_mib: mem, realm: false };
        // No disk: the shell needs none, and which virtio slot serves which VM is ns-hyp's newest part.
        let Boot::Custom { tfa, mut args } = nshyp::hyp_vms_boot(o, bios.as_deref(), "run-guest", &(0..n).map(|_| vm()).collect::<Vec<_>>(), None, "")? else { unreachable!() };
        // ns-hyp's switch joins the VMs; QEMU's user network is its uplink.
        args.extend(nshyp::uplink_args(run_uplink_port()?, RUN_UPLINK_GUEST_PORT));
        return Ok(Boot::Custom { tfa, args });
    }
    let g = GuestPayload { kernel, initrd: Some(initrd), cmdline: opts.append.clone() };
    let Boot::Custom { tfa, mut args } = nshyp::hyp_guest_boot(o, bios.as_deref(), "run-guest", &g, 4, None, &hyp_args)? else { unreachable!() };
    args.extend(nshyp::run_disk_args()?);
    Ok(Boot::Custom { tfa, args })
}

/// What `cargo xtask run` says before QEMU starts when several VMs share
/// the one console (ns-hyp multiplexes it): the keys, before the boot scrolls by.
pub fn console_hint(opts: &RunOptions) -> Option<String> {
    let n = opts.vms.filter(|&n| n > 1)?;
    Some(format!(
        "xtask: {n} VMs share this console: each line starts [vmN]; typing goes to vm0 first,\n\
         xtask: Ctrl-] then a digit N types to VM N (Ctrl-] Ctrl-] sends one Ctrl-]);\n\
         xtask: `poweroff -f` stops one VM, the last one ends QEMU (Ctrl-A x kills it);\n\
         xtask: `sh /net.sh up K` in VM K brings its eth0 up as 10.0.2.(15+K) (our initramfs);\n\
         xtask: 127.0.0.1:{RUN_UPLINK_PORT} here (or the port said above) reaches VM 0's port {RUN_UPLINK_GUEST_PORT} through ns-hyp's uplink"
    ))
}

/// The initramfs of a pKVM boot: Linux's FF-A driver loaded, and our test
/// module (`kmod`) at /lib/modules/quadrant_ffa_probe.ko for `insmod`;
/// `script` (run after the modules load), or a shell.
pub fn pkvm_initramfs(o: &Outputs, name: &str, script: Option<&str>) -> Result<PathBuf> {
    let ko = crate::kmod::ffa_probe_module(&o.paths)?;
    let data = std::fs::read(&ko).map_err(|e| format!("{}: {e}", ko.display()))?;
    let path = format!("lib/modules/{}.ko", crate::kmod::NAME);
    guest::initramfs(&o.paths, &InitramfsSpec { name, modules: &["ffa-core", "ffa-module"], script, files: &[(&path, &data)] })
}

/// `image` as a raw arm64 Image: a gzip-compressed one (Debian's
/// /boot/vmlinuz on some releases, what QEMU's -kernel accepts) is unpacked
/// into target/quadrant/run/ first, since ns-hyp and BL2 jump straight to it.
fn unpacked(image: &Path, name: &str) -> Result<PathBuf> {
    let mut magic = [0u8; 2];
    use std::io::Read;
    std::fs::File::open(image).and_then(|mut f| f.read_exact(&mut magic)).map_err(|e| format!("{}: {e}", image.display()))?;
    if magic != [0x1f, 0x8b] {
        return Ok(image.to_path_buf());
    }
    let dir = util::out_dir().join("run");
    util::mkdirs(&dir)?;
    let out = dir.join(format!("{name}.Image"));
    let data = util::output_bytes(std::process::Command::new("gzip").arg("-dc").arg(image))?;
    std::fs::write(&out, data).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options() {
        let file = util::repo_root().join("Cargo.toml");
        let f = file.display();
        let o = parse(&words(&format!("--kernel {f} --initrd {f} --append x --mem 256"))).unwrap();
        assert_eq!((o.kernel.as_deref(), o.mem, o.append.as_deref()), (Some(file.as_path()), Some(256), Some("x")));
        assert!(parse(&words(&format!("--bl33 {f} --kernel {f}"))).is_err());
        assert!(parse(&words(&format!("--bl33 {f} --no-tfa"))).is_err());
        assert!(parse(&words(&format!("--initrd {f}"))).is_err());
        assert!(parse(&words("--kernel /nonexistent")).is_err());
        assert!(parse(&words("--mem 4096")).is_err());
        assert!(parse(&words("--mem")).is_err());
        assert!(parse(&words("--frobnicate")).is_err());
        let o = parse(&words(&format!("--pkvm --initrd {f} --append x"))).unwrap();
        assert!(o.pkvm && o.bl33.is_none());
        assert!(parse(&words(&format!("--pkvm --bl33 {f}"))).unwrap().pkvm);
        assert!(parse(&words("--pkvm --no-tfa")).is_err());
        assert!(parse(&words(&format!("--pkvm --kernel {f}"))).is_err());
        assert!(parse(&words("--pkvm --mem 256")).is_err());
        assert_eq!(parse(&[]).unwrap(), RunOptions::default());
    }

    #[test]
    fn vms_option() {
        let file = util::repo_root().join("Cargo.toml");
        let f = file.display();
        assert_eq!(parse(&words("--vms 2")).unwrap().vms, Some(2));
        assert_eq!(parse(&words(&format!("--vms 3 --no-tfa --kernel {f} --append x"))).unwrap().vms, Some(3));
        assert_eq!(parse(&words("--vms 2 --mem 256")).unwrap().mem, Some(256));
        assert!(parse(&words("--vms 2 --mem 600")).is_err(), "2 x 600 MiB is more than ns-hyp's 1 GiB");
        assert!(parse(&words("--vms 4 --mem 255")).is_err(), "not whole 2 MiB");
        assert!(parse(&words("--vms 0")).is_err());
        assert!(parse(&words("--vms 5")).is_err());
        assert!(parse(&words("--vms two")).is_err());
        assert!(parse(&words("--vms")).is_err());
        assert!(parse(&words("--vms 2 --pkvm")).is_err());
        assert!(parse(&words(&format!("--vms 2 --bl33 {f}"))).is_err());
        // One VM is today's run, whatever goes with it.
        assert!(parse(&words(&format!("--vms 1 --bl33 {f}"))).is_ok());
        assert!(console_hint(&parse(&words("--vms 1")).unwrap()).is_none());
        assert!(console_hint(&parse(&words("--vms 2")).unwrap()).unwrap().contains("Ctrl-] then a digit N"));
    }

    #[test]
    fn pkvm_cmdline_adds_protected_mode_once() {
        assert_eq!(pkvm_cmdline("console=ttyAMA0"), "console=ttyAMA0 kvm-arm.mode=protected");
        assert_eq!(pkvm_cmdline("a kvm-arm.mode=protected b"), "a kvm-arm.mode=protected b");
        // The user's own choice of mode stands.
        assert_eq!(pkvm_cmdline("kvm-arm.mode=nvhe"), "kvm-arm.mode=nvhe");
    }
}
