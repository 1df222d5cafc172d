//! Modules for Debian's guest kernel:
//! - our test module (issue G), `ci/linux-ffa-probe/quadrant_ffa_probe.c`, a
//!   client of Linux's FF-A bus that makes direct requests and memory shares
//!   to our SPs from Linux (at NS-EL2, or at NS-EL1 under pKVM);
//! - `binder_linux` with binderfs (issue B2 item 4), built from the same
//!   kernel's Debian source package (`linux-source-X.Y`): Debian builds it
//!   without CONFIG_ANDROID_BINDERFS, which Android's userspace mounts.
//!
//! Built without kbuild: Debian ships the kernel's build tools (fixdep,
//! modpost) only as arm64 binaries, and the headers' flags assume the gcc 14
//! that built the kernel where this host has gcc 12.  The module is one
//! translation unit compiled against the unpacked headers with the flags that
//! matter for the kernel's ABI (general registers only, x18 left alone,
//! BTI/PAC landing pads), and it carries the module record and version magic
//! that modpost would have generated (the kernel has no MODVERSIONS, so no
//! symbol CRCs are needed); `ld -r` with the arch's module.lds makes the .ko.

use crate::setup::Paths;
use crate::util::{self, Result, run};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const NAME: &str = "quadrant_ffa_probe";

/// Config options the gcc-14 build of the kernel enabled whose code gcc 12
/// does not compile (`__attribute__((assume))`, `typeof_unqual`): unset
/// after kconfig.h, before the rest of the headers.
const GCC12_COMPAT: &str = "/* xtask kmod.rs: the kernel was built by gcc 14, this module by gcc 12. */\n\
#undef CONFIG_CC_HAS_ASSUME\n\
#undef CONFIG_CC_HAS_TYPEOF_UNQUAL\n";

/// The unpacked headers: (the flavour's tree, the common tree).
fn header_dirs(p: &Paths) -> Result<(PathBuf, PathBuf)> {
    let src = p.guest.join("headers/usr/src");
    let mut flavour = None;
    let mut common = None;
    for e in std::fs::read_dir(&src).map_err(|e| format!("{}: {e} (run `cargo xtask setup`)", src.display()))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with("-common") {
            common = Some(e.path());
        } else if name.starts_with("linux-headers-") {
            flavour = Some(e.path());
        }
    }
    match (flavour, common) {
        (Some(f), Some(c)) => Ok((f, c)),
        _ => Err(format!("no linux-headers-<abi> and -common under {}", src.display())),
    }
}

/// `UUID_INIT(...)` of a UUID string (RFC 4122 text, as sysfs prints it).
fn uuid_init(uuid: &str) -> Result<String> {
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("not a UUID: {uuid}"));
    }
    let bytes: Vec<String> = (16..32).step_by(2).map(|i| format!("0x{}", &hex[i..i + 2])).collect();
    Ok(format!("UUID_INIT(0x{}, 0x{}, 0x{}, {})", &hex[0..8], &hex[8..12], &hex[12..16], bytes.join(", ")))
}

/// The id table entries for `uuids`: `{ UUID_INIT(..) }, ...`.
fn id_table(uuids: &[String]) -> Result<String> {
    Ok(uuids.iter().map(|u| uuid_init(u).map(|i| format!("{{ {i} }},"))).collect::<Result<Vec<_>>>()?.join(" "))
}

/// Builds `target/quadrant/kmod/quadrant_ffa_probe.ko`, bound to our SPs' UUIDs.
pub fn ffa_probe_module(p: &Paths) -> Result<PathBuf> {
    let (hdr, common) = header_dirs(p)?;
    let uuids: Vec<String> = crate::tests::spmc::sp_uuids().into_iter().map(|(_, u)| u).collect();
    let dir = util::out_dir().join("kmod");
    util::mkdirs(&dir)?;
    let compat = dir.join("gcc12-compat.h");
    util::write_atomic(&compat, GCC12_COMPAT.as_bytes())?;
    let src = util::repo_root().join("ci/linux-ffa-probe").join(format!("{NAME}.c"));
    let obj = dir.join(format!("{NAME}.o"));
    let ko = dir.join(format!("{NAME}.ko"));
    let defines = [format!("-DQUADRANT_SP_UUIDS={}", id_table(&uuids)?)];
    compile(&hdr, &common, &compat, NAME, NAME, &[], &defines, &["-Wall", "-Werror"], &src, &obj, &dir.join(format!("{NAME}.log")))?;
    run(Command::new("aarch64-linux-gnu-ld").args(["-r", "--build-id=none", "-T"]).arg(hdr.join("arch/arm64/module.lds")).arg("-o").arg(&ko).arg(&obj))?;
    Ok(ko)
}

/// One translation unit of module `modname` against the unpacked headers,
/// with the kernel's ABI flags (see the top of this file).
#[allow(clippy::too_many_arguments)]
fn compile(hdr: &Path, common: &Path, compat: &Path, modname: &str, basename: &str, includes: &[&Path], defines: &[String], warnings: &[&str], src: &Path, obj: &Path, log: &Path) -> Result {
    let cc = "aarch64-linux-gnu-gcc";
    let gcc_include = util::output(Command::new(cc).arg("-print-file-name=include"))?.trim().to_owned();
    let i = |base: &Path, rel: &str| format!("-I{}", base.join(rel).display());
    let inc = |base: &Path, rel: &str| ["-include".to_owned(), base.join(rel).display().to_string()];
    let mut cmd = Command::new(cc);
    cmd.args(["-nostdinc", "-isystem", &gcc_include])
        .args([
            i(&common, "arch/arm64/include"),
            i(&hdr, "arch/arm64/include/generated"),
            i(&common, "include"),
            i(&hdr, "include"),
            i(&common, "arch/arm64/include/uapi"),
            i(&hdr, "arch/arm64/include/generated/uapi"),
            i(&common, "include/uapi"),
            i(&hdr, "include/generated/uapi"),
        ])
        .args(includes.iter().map(|d| format!("-I{}", d.display())))
        .args(inc(common, "include/linux/compiler-version.h"))
        .args(inc(common, "include/linux/kconfig.h"))
        .args(["-include".to_owned(), compat.display().to_string()])
        .args(inc(common, "include/linux/compiler_types.h"))
        .args(["-D__KERNEL__", "-DMODULE"])
        .arg(format!("-DKBUILD_MODNAME=\"{modname}\""))
        .arg(format!("-DKBUILD_BASENAME=\"{basename}\""))
        .arg(format!("-D__KBUILD_MODNAME=kmod_{modname}"))
        .args(defines)
        // The kernel's C dialect (anonymous struct members need -fms-extensions).
        .args(["-std=gnu11", "-fms-extensions", "-O2", "-fno-strict-aliasing", "-fno-common", "-fshort-wchar", "-fno-PIE"])
        .args(["-fno-delete-null-pointer-checks", "-fno-strict-overflow", "-fno-stack-check", "-fconserve-stack", "-ftrivial-auto-var-init=zero"])
        // arm64 kernel ABI: no FP/SIMD registers, x18 reserved (shadow call
        // stack), BTI landing pads (the kernel maps module text guarded),
        // no unwind tables; no stack protector (the kernel's per-task canary
        // offset is not in the headers' flags).
        .args(["-mgeneral-regs-only", "-ffixed-x18", "-mbranch-protection=pac-ret+bti", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-fno-stack-protector"])
        .args(warnings)
        .args(["-Wno-unused-parameter", "-Wno-microsoft-anon-tag", "-Wno-missing-declarations"])
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(obj);
    util::run_logged(&mut cmd, log)
}

/// The binder driver's files in Debian's kernel source (drivers/android's
/// Makefile: `binder_linux-y` plus `binderfs.o` with CONFIG_ANDROID_BINDERFS).
const BINDER_UNITS: [&str; 4] = ["binder", "binder_alloc", "binder_netlink", "binderfs"];

/// What kbuild's modpost would generate for binder_linux (its .mod.c): the
/// version magic and the module record.  binder has no exit function: it
/// cannot be unloaded, as in-tree.
const BINDER_MOD_C: &str = "/* xtask kmod.rs: binder_linux's module record (modpost's .mod.c). */\n\
#include <linux/module.h>\n\
#define INCLUDE_VERMAGIC\n\
#include <linux/vermagic.h>\n\
MODULE_INFO(vermagic, VERMAGIC_STRING);\n\
MODULE_INFO(name, KBUILD_MODNAME);\n\
extern int init_module(void);\n\
__visible struct module __this_module __section(\".gnu.linkonce.this_module\") = {\n\
\t.name = KBUILD_MODNAME,\n\
\t.init = init_module,\n\
\t.arch = MODULE_ARCH_INIT,\n\
};\n";

/// Builds `target/quadrant/kmod/binder_linux.ko`: the guest kernel's own
/// binder driver with binderfs, from its Debian source package.
pub fn binder_module(p: &Paths) -> Result<PathBuf> {
    let (hdr, common) = header_dirs(p)?;
    let android = crate::setup::binder_source(p)?;
    let dir = util::out_dir().join("kmod/binder_linux");
    util::mkdirs(&dir)?;
    let compat = dir.join("compat.h");
    // Kconfig as Debian's, plus the one option it leaves off.
    util::write_atomic(&compat, format!("{GCC12_COMPAT}#define CONFIG_ANDROID_BINDERFS 1\n").as_bytes())?;
    let modc = dir.join("binder_linux.mod.c");
    util::write_atomic(&modc, BINDER_MOD_C.as_bytes())?;
    let mut objs = Vec::new();
    for unit in BINDER_UNITS.iter().map(|u| (android.join(format!("{u}.c")), *u)).chain([(modc.clone(), "binder_linux.mod")]) {
        let (src, name) = unit;
        let obj = dir.join(format!("{name}.o"));
        // -I drivers/android: its trace events include themselves by path.
        compile(&hdr, &common, &compat, "binder_linux", name, &[&android], &[], &[], &src, &obj, &dir.join(format!("{name}.log")))?;
        objs.push(obj);
    }
    let ko = dir.join("binder_linux.ko");
    run(Command::new("aarch64-linux-gnu-ld").args(["-r", "--build-id=none", "-T"]).arg(hdr.join("arch/arm64/module.lds")).arg("-o").arg(&ko).args(&objs))?;
    Ok(ko)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_init_is_the_rfc4122_byte_order() {
        assert_eq!(
            uuid_init("d4ff1955-d086-4722-8923-d8bd89eb38b3").unwrap(),
            "UUID_INIT(0xd4ff1955, 0xd086, 0x4722, 0x89, 0x23, 0xd8, 0xbd, 0x89, 0xeb, 0x38, 0xb3)"
        );
        assert!(uuid_init("d4ff1955-d086").is_err());
        assert!(uuid_init("x4ff1955-d086-4722-8923-d8bd89eb38b3").is_err());
        assert_eq!(id_table(&[]).unwrap(), "");
    }
}
