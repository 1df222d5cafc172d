//! Issue D2: spmc hosts OP-TEE (Debian's optee-os, built by setup in the
//! S-EL2 SPMC configuration) as an S-EL1 SP beside our SPs, and Debian's
//! Linux 7.3 as BL33 finds it over FF-A with its `optee` driver.

use super::{Expect, IntegrationTest, XResult, expect};
use crate::build::{self, Bl33, Outputs};
use crate::guest::{self, InitramfsSpec};
use crate::qemu::Boot;
use crate::{layout, setup, util};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn tests() -> Vec<IntegrationTest> {
    vec![IntegrationTest {
        name: "optee_boots",
        boot: optee_boot,
        // ~20 s on a loaded 2-core host (the xtest cases take a few seconds).
        timeout: Duration::from_secs(180),
        expects: optee_expects,
        extra: Some(no_optee_errors),
        forbid: FORBID_OPTEE,
    }]
}

/// Our SPs (tfa-integration/sp_layout.json) plus OP-TEE
/// (tfa-integration/sp/optee.dts with setup's build), as a layout of its
/// own under `target/quadrant/optee-layout/`: the default layout, which
/// every other test boots, stays without OP-TEE.  The `size` key becomes
/// OP-TEE's `mem_size` in the generated SPMC manifest (layout.rs).
pub fn optee_layout(p: &setup::Paths) -> XResult<PathBuf> {
    let dir = util::out_dir().join("optee-layout");
    util::mkdirs(&dir)?;
    let integ = util::repo_root().join("tfa-integration");
    let copy = |from: &Path, to: &str| -> XResult<()> {
        let data = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
        if std::fs::read(dir.join(to)).ok().as_deref() != Some(data.as_slice()) {
            std::fs::write(dir.join(to), data).map_err(|e| format!("{to}: {e}"))?;
        }
        Ok(())
    };
    let ours = std::fs::read_to_string(integ.join("sp_layout.json")).map_err(|e| format!("sp_layout.json: {e}"))?;
    for e in layout::entries(&ours) {
        copy(&integ.join("sp").join(&e.pm), &e.pm)?;
        copy(&build::images_dir().join(format!("{}.bin", e.name)), &format!("{}.bin", e.name))?;
    }
    copy(&integ.join("sp/optee.dts"), "optee.dts")?;
    copy(&setup::optee_image(&p.optee), "optee.bin")?;
    let end = ours.trim_end().strip_suffix('}').ok_or("sp_layout.json: no closing brace")?.trim_end();
    let json = format!(
        "{end},\n\t\"op-tee\": {{\n\t\t\"image\": \"optee.bin\",\n\t\t\"pm\": \"optee.dts\",\n\t\t\"owner\": \"SiP\",\n\t\t\"size\": \"{:#x}\"\n\t}}\n}}\n",
        setup::OPTEE_MEM_SIZE
    );
    let file = dir.join("sp_layout.json");
    if std::fs::read_to_string(&file).ok().as_deref() != Some(json.as_str()) {
        std::fs::write(&file, json).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(file)
}

const OPTEE_SCRIPT: &str = "\
dmesg | grep -i -E 'optee|tee:|ff-?a' | sed 's/^/quadrant-dmesg: /'
for d in /sys/bus/arm_ffa/devices/*; do
  [ -e \"$d\" ] || continue
  echo \"quadrant-ffa-device: $(basename $d) uuid=$(cat $d/uuid 2>/dev/null) id=$(cat $d/partition_id 2>/dev/null)\"
done
ls -l /dev/tee* 2>&1 | sed 's/^/quadrant-dev: /'
[ -c /dev/tee0 ] && echo \"quadrant-tee0: present\" || echo \"quadrant-tee0: missing\"
mkdir -p /var/lib/optee-client/data/tee
tee-supplicant &
supplicant=$!
sleep 1
echo \"quadrant-xtest: start\"
# Printed once it is done: OP-TEE's and spmc's lines share the console.
xtest -t regression 1001 4001 > /tmp/xtest.log 2>&1
sed 's/^/quadrant-xtest: /' /tmp/xtest.log
# The driver's removal at power-off waits for /dev/teepriv0 to be closed.
kill $supplicant; wait $supplicant
";

fn optee_boot(o: &Outputs) -> XResult<Boot> {
    let sps = layout::SpSet::User(optee_layout(&o.paths)?);
    let bios = build::build_tfa(&o.paths, Bl33::PreloadedLinux, &sps)?;
    let userland = setup::optee_userland_root(&o.paths.optee);
    let initrd = guest::initramfs_with_trees(
        &o.paths,
        &InitramfsSpec { name: "optee", modules: &["ffa-core", "ffa-module", "tee", "optee"], script: Some(OPTEE_SCRIPT), files: &[] },
        &[&userland],
    )?;
    super::spmc::bl33_boot(&bios, &guest::kernel_image(&o.paths)?, Some(&initrd), "optee", "console=ttyAMA0 earlycon rdinit=/init")
}

fn optee_expects() -> Vec<Expect> {
    vec![
        expect("spmc passed OP-TEE its boot information", &["[spmc] SP op-tee: boot information blob", "in x0"]),
        expect("OP-TEE booted (its banner, through FFA_CONSOLE_LOG)", &["[op-tee] ", "OP-TEE version: "]),
        expect("OP-TEE's primary CPU finished its init", &["[op-tee] ", "Primary CPU switching to normal world boot"]),
        expect("our SPs booted beside it", &["[echo] ready"]),
        expect("OP-TEE's context on core 3 started", &["[spmc] SP op-tee (0x8005): context 3 ready on cpu 3"]),
        expect("Linux reached its init", &["quadrant-init: up"]),
        expect("the FF-A driver loaded", &["quadrant-init: loaded ffa-module"]),
        expect("the optee module loaded", &["quadrant-init: loaded optee"]),
        expect("Linux's FF-A bus lists OP-TEE", &["quadrant-ffa-device: ", "uuid=486178e0-e7f8-11e3-bc5e-0002a5d5c51b", "id=0x8005"]),
        expect("Linux's optee driver found OP-TEE over FF-A", &["quadrant-dmesg: ", "optee: revision "]),
        expect("Linux's optee driver initialised", &["quadrant-dmesg: ", "optee: initialized driver"]),
        expect("/dev/tee0 exists", &["quadrant-tee0: present"]),
        expect("tee-supplicant and xtest ran", &["quadrant-xtest: ", "TEE test application done!"]),
        // Core self tests (a pseudo TA; shared memory retrieved by OP-TEE
        // from spmc) and hash operations (the crypt TA loaded from the
        // initramfs by tee-supplicant over OP-TEE's RPCs).
        expect("xtest regression 1001", &["quadrant-xtest: regression_1001 OK"]),
        expect("xtest regression 4001", &["quadrant-xtest: regression_4001 OK"]),
        expect("the script finished", &["quadrant-init: script done"]),
    ]
}

/// Besides the usual: OP-TEE's panics and error lines, and Linux's optee
/// driver giving up.
const FORBID_OPTEE: &[&str] = &[
    "PANIC",
    "panicked",
    "Unhandled Exception",
    "BL31: Error",
    "Panic at",
    "optee: probe of",
    "FAILED to load",
];

/// `ERROR:` lines are forbidden except TF-A's power-off line; OP-TEE's
/// own errors (`E/TC:`, `E/LD:`) too.  Linux's FF-A bus lists exactly our
/// SPs and OP-TEE (besides its own host device).
fn no_optee_errors(output: &str) -> Vec<String> {
    let mut fails: Vec<String> = output
        .lines()
        .filter(|l| (l.contains("ERROR:") && !l.contains("QEMU System Power off")) || l.contains("E/TC:") || l.contains("E/LD:"))
        .map(|l| format!("error line: {l}"))
        .collect();
    let mut sps = super::spmc::sp_uuids();
    sps.push(("op-tee".into(), OPTEE_UUID.into()));
    fails.extend(super::spmc::ffa_devices_are(output, &sps));
    fails
}

/// OP-TEE's UUID (tfa-integration/sp/optee.dts), which Linux's optee driver probes for.
const OPTEE_UUID: &str = "486178e0-e7f8-11e3-bc5e-0002a5d5c51b";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optee_uuid_is_the_manifests() {
        let dts = std::fs::read_to_string(util::repo_root().join("tfa-integration/sp/optee.dts")).unwrap();
        let cells = layout::dts_cells(&dts, "uuid").unwrap();
        let b: Vec<u8> = cells.iter().flat_map(|c| c.to_le_bytes()).collect();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]), OPTEE_UUID);
    }

    /// A failing run's output: the checks find what is missing.
    #[test]
    fn errors_and_missing_devices_are_failures() {
        let out = "[op-tee] E/TC:? 0 ldelf failed\nERROR:   QEMU System Power off: with GPIO.\n";
        let fails = no_optee_errors(out);
        assert!(fails.iter().any(|f| f.contains("E/TC:")), "{fails:?}");
        assert!(fails.iter().any(|f| f.contains("secure-partition FF-A device")), "{fails:?}");
        assert!(!fails.iter().any(|f| f.contains("Power off")), "{fails:?}");
    }
}
