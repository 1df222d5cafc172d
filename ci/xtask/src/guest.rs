//! Guest payloads built from the Debian packages that `setup` unpacked: the
//! arm64 kernel Image and BusyBox initramfs images with chosen modules and an
//! `/init` script.

use crate::setup::Paths;
use crate::util::{self, Result, run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The unpacked kernel's module directory (`usr/lib/modules/<abi>`).
fn modules_dir(p: &Paths) -> Result<PathBuf> {
    let base = p.guest.join("root/usr/lib/modules");
    std::fs::read_dir(&base)
        .map_err(|e| format!("{}: {e} (run `cargo xtask setup`)", base.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|d| d.join("vmlinuz.unsigned").exists())
        .ok_or_else(|| format!("no kernel under {}", base.display()))
}

/// The guest kernel: a raw arm64 Image (Debian's `vmlinuz.unsigned` is not compressed on arm64).
pub fn kernel_image(p: &Paths) -> Result<PathBuf> {
    Ok(modules_dir(p)?.join("vmlinuz.unsigned"))
}

/// Finds `<name>.ko.xz` (or `.ko`) anywhere under the kernel's modules.
fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_module(&path, name) {
                return Some(found);
            }
        } else {
            let file = path.file_name()?.to_string_lossy();
            if file == format!("{name}.ko.xz") || file == format!("{name}.ko") {
                return Some(path);
            }
        }
    }
    None
}

/// What goes into an initramfs.
pub struct InitramfsSpec<'a> {
    /// Output name: `target/quadrant/initramfs/<name>.cpio`.
    pub name: &'a str,
    /// Modules (by file name without `.ko`), loaded in this order by `/init`.
    pub modules: &'a [&'a str],
    /// Shell commands `/init` runs after mounting /proc, /sys, /dev and loading
    /// the modules.  When they end, `/init` powers the machine off.  `None`
    /// gives an interactive shell on the console instead.
    pub script: Option<&'a str>,
    /// Extra files: (path inside the initramfs, contents).
    pub files: &'a [(&'a str, &'a [u8])],
}

/// Builds a BusyBox initramfs (newc cpio, uncompressed) and returns its path.
pub fn initramfs(p: &Paths, spec: &InitramfsSpec) -> Result<PathBuf> {
    initramfs_with_trees(p, spec, &[])
}

/// The same, with each directory of `trees` (e.g. unpacked Debian arm64
/// packages) copied over the BusyBox tree first (`cp -a`, symlinks kept).
pub fn initramfs_with_trees(p: &Paths, spec: &InitramfsSpec, trees: &[&Path]) -> Result<PathBuf> {
    let out_dir = util::out_dir().join("initramfs");
    let stage = out_dir.join(format!("{}.d", spec.name));
    let _ = std::fs::remove_dir_all(&stage);
    // usr/bin and usr/sbin: `busybox --install -s` puts half its links there
    // (without them the console opened with ~140 "No such file" lines).
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "lib/modules", "mnt", "root"] {
        util::mkdirs(&stage.join(d))?;
    }
    for tree in trees {
        run(Command::new("cp").arg("-a").arg(tree.join(".")).arg(&stage))?;
    }
    let busybox = p.guest.join("root/bin/busybox");
    std::fs::copy(&busybox, stage.join("bin/busybox")).map_err(|e| format!("{}: {e}", busybox.display()))?;
    let mods = modules_dir(p)?;
    let mut loads = String::new();
    for m in spec.modules {
        let src = find_module(&mods.join("kernel"), m).ok_or_else(|| format!("module {m} not found under {}", mods.display()))?;
        let dst = stage.join("lib/modules").join(format!("{m}.ko"));
        if src.extension().is_some_and(|x| x == "xz") {
            let data = util::output_bytes(Command::new("xz").args(["-dc"]).arg(&src))?;
            std::fs::write(&dst, data).map_err(|e| format!("{}: {e}", dst.display()))?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
        loads.push_str(&format!("insmod /lib/modules/{m}.ko && echo \"quadrant-init: loaded {m}\" || echo \"quadrant-init: FAILED to load {m}\"\n"));
    }
    for (path, data) in spec.files {
        let dst = stage.join(path.trim_start_matches('/'));
        util::mkdirs(dst.parent().unwrap())?;
        std::fs::write(&dst, data).map_err(|e| format!("{}: {e}", dst.display()))?;
    }
    let tail = match spec.script {
        Some(script) => format!("{script}\necho \"quadrant-init: script done\"\nsync\npoweroff -f\n"),
        None => "echo \"quadrant-init: shell\"\nexec setsid cttyhack /bin/sh\n".to_owned(),
    };
    // The modules are Debian's kernel's: a user's own kernel (`cargo xtask
    // run --kernel/--bl33` without --initrd) gets the shell without them.
    let release = mods.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let loads = if loads.is_empty() {
        loads
    } else {
        format!("if [ \"$(uname -r)\" = \"{release}\" ]; then\n{loads}else\n  echo \"quadrant-init: kernel $(uname -r) is not {release}: modules not loaded\"\nfi\n")
    };
    let init = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev 2>/dev/null\n\
         echo \"quadrant-init: up, $(nproc) cpu(s), kernel $(uname -r)\"\n\
         {loads}{tail}"
    );
    let init_path = stage.join("init");
    std::fs::write(&init_path, init).map_err(|e| format!("{}: {e}", init_path.display()))?;
    run(Command::new("chmod").args(["0755"]).arg(&init_path).arg(stage.join("bin/busybox")))?;
    // Reproducible: every time 0, inode numbers renumbered, so the same
    // contents give the same archive (a kept OP-TEE reference run is keyed
    // by it, tests::optee).
    let out = out_dir.join(format!("{}.cpio", spec.name));
    run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . -exec touch -h -d @0 {{}} + && find . | LC_ALL=C sort | cpio --quiet --reproducible -o -H newc -R 0:0 > '{}'",
        stage.display(),
        out.display()
    )))?;
    Ok(out)
}

/// An ext2 file system image of `size_mib` MiB holding `files` (path
/// relative to its root, contents), built with `mke2fs -d` (e2fsprogs) as
/// `target/quadrant/disks/<name>.img`; rebuilt on every call, so a test
/// always starts from the same contents.
pub fn ext2_image(name: &str, size_mib: u32, files: &[(&str, &[u8])]) -> Result<PathBuf> {
    let dir = util::out_dir().join("disks");
    let stage = dir.join(format!("{name}.d"));
    let _ = std::fs::remove_dir_all(&stage);
    util::mkdirs(&stage)?;
    for (path, data) in files {
        let dst = stage.join(path.trim_start_matches('/'));
        util::mkdirs(dst.parent().unwrap())?;
        std::fs::write(&dst, data).map_err(|e| format!("{}: {e}", dst.display()))?;
    }
    let img = dir.join(format!("{name}.img"));
    let _ = std::fs::remove_file(&img);
    run(Command::new("mke2fs").args(["-q", "-F", "-t", "ext2", "-L", name, "-d"]).arg(&stage).arg(&img).arg(format!("{size_mib}M")))?;
    Ok(img)
}
