//! The set of secure partitions a TF-A build carries: `sp_layout.json` (TF-A's
//! format, read by its sptool) and the partition manifests it names, and the
//! SPMC manifest's `hypervisor` node that must list the same packages.

use crate::util::{self, Result};
use std::path::{Path, PathBuf};

/// Which SPs a build carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpSet {
    /// `tfa-integration/sp_layout.json`: the SPs in `sps/`.
    Ours,
    /// A user's `sp_layout.json` (`cargo xtask run --sp-layout FILE`); its
    /// `image`/`pm` paths are relative to the file, as sptool reads them.
    User(PathBuf),
}

/// One entry of sp_layout.json.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpEntry {
    pub name: String,
    /// The partition manifest (.dts) path as written in the layout.
    pub pm: String,
    /// `"size"`: the partition's memory from its load address (sptool's
    /// package size key, default 1 MiB; TF-A 2.12.1's sptool ignores it).
    /// It becomes the SPMC manifest's `mem_size` for that partition, which
    /// is how Hafnium (and spmc) size a partition.
    pub size: Option<u64>,
}

/// Minimal reader for sp_layout.json: `{"name": {"image": .., "pm": "x.dts" |
/// {"file": "x.dts", ..}, ..}, ..}` (no JSON crate in xtask).
pub fn entries(json: &str) -> Vec<SpEntry> {
    let mut out = Vec::new();
    let mut rest = json.trim().trim_start_matches('{');
    while let Some(q) = rest.find('"') {
        let after = &rest[q + 1..];
        let Some(end) = after.find('"') else { break };
        let name = after[..end].to_owned();
        let Some(open) = after.find('{') else { break };
        // The matching close brace (values may hold nested objects).
        let mut depth = 0usize;
        let mut close = None;
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { break };
        let body = &after[open..open + close];
        // "pm": "x.dts"  or  "pm": {"file": "x.dts", "offset": ..}
        let pm = body.split("\"pm\"").nth(1).and_then(|t| t.split('"').find(|s| s.ends_with(".dts"))).unwrap_or_default().to_owned();
        // "size": "0x200000"  or  "size": 2097152
        let size = body.split("\"size\"").nth(1).and_then(|t| {
            let v = t.trim_start().trim_start_matches(':').trim_start().trim_start_matches('"');
            let v: String = v.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => v.parse().ok(),
            }
        });
        out.push(SpEntry { name, pm, size });
        rest = &after[open + close + 1..];
    }
    out
}

/// The cells of a one-line DTS property `name = <..>;` (sptool reads
/// `uuid` and `load-address` the same way: one line each).
pub fn dts_cells(dts: &str, name: &str) -> Option<Vec<u32>> {
    let line = dts.lines().map(str::trim_start).find(|l| l.strip_prefix(name).is_some_and(|r| r.trim_start().starts_with('=')))?;
    let inner = line.split(['<', '>']).nth(1)?;
    // Cells as dtc reads them: 0x hex, else decimal.
    inner.split_whitespace().map(|c| c.strip_prefix("0x").map_or_else(|| c.parse().ok(), |h| u32::from_str_radix(h, 16).ok())).collect()
}

/// A package's load address from its partition manifest (one or two cells).
pub fn load_address(dts: &str) -> Option<u64> {
    match dts_cells(dts, "load-address")?.as_slice() {
        [lo] => Some(*lo as u64),
        [hi, lo] => Some(((*hi as u64) << 32) | *lo as u64),
        _ => None,
    }
}

impl SpSet {
    pub fn layout_file(&self) -> PathBuf {
        match self {
            SpSet::Ours => util::repo_root().join("tfa-integration/sp_layout.json"),
            SpSet::User(p) => p.clone(),
        }
    }

    /// Where the layout's relative `pm` paths start (ours: the manifests in
    /// tfa-integration/sp/, staged beside the json for the build).
    fn pm_dir(&self) -> PathBuf {
        match self {
            SpSet::Ours => util::repo_root().join("tfa-integration/sp"),
            SpSet::User(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
        }
    }

    /// (name, load address, size, execution contexts) of each SP, in layout order.
    pub fn packages(&self) -> Result<Vec<(String, u64, Option<u64>, u32)>> {
        let file = self.layout_file();
        let json = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let list = entries(&json);
        if list.is_empty() {
            return Err(format!("{}: no secure partition in it", file.display()));
        }
        list.iter()
            .map(|e| {
                let pm = self.pm_dir().join(&e.pm);
                let dts = std::fs::read_to_string(&pm).map_err(|err| format!("{} (the pm of {} in {}): {err}", pm.display(), e.name, file.display()))?;
                let at = load_address(&dts).ok_or_else(|| format!("{}: no one-line `load-address = <..>;` (sptool needs it too)", pm.display()))?;
                let contexts = dts_cells(&dts, "execution-ctx-count").and_then(|c| c.first().copied()).unwrap_or(1);
                Ok((e.name.clone(), at, e.size, contexts))
            })
            .collect()
    }
}

/// sptool's default package region when the layout gives no `size`.
pub const DEFAULT_MEM_SIZE: u64 = 0x10_0000;

/// The SPMC manifest for a set of SPs: ours (`tfa-integration/spmc_manifest.dts`)
/// with its `hypervisor` node listing exactly the layout's packages, in
/// Hafnium's form (`vmN { is_ffa_partition; debug_name; load_address;
/// vcpu_count; mem_size; }`: Hafnium v2.12 refuses a node without the last
/// two; `vcpu_count` is the partition's execution-ctx-count, `mem_size` the
/// layout's `size` or sptool's default 1 MiB).
pub fn spmc_manifest(template: &str, packages: &[(String, u64, Option<u64>, u32)]) -> Result<String> {
    let start = template.find("\thypervisor {").ok_or("spmc_manifest.dts: no `hypervisor {` node")?;
    // The node ends at the first line `\t};` after it (its children are one level deeper).
    let end = template[start..].find("\n\t};").map(|i| start + i + "\n\t};".len()).ok_or("spmc_manifest.dts: unterminated hypervisor node")?;
    let mut node = String::from("\thypervisor {\n\t\tcompatible = \"hafnium,hafnium\";\n");
    for (i, (name, at, size, contexts)) in packages.iter().enumerate() {
        let cells = if *at > u32::MAX as u64 { format!("{:#x} {:#010x}", at >> 32, at & 0xffff_ffff) } else { format!("{at:#010x}") };
        let n = size.unwrap_or(DEFAULT_MEM_SIZE);
        let mem_size = format!("\t\t\tmem_size = <{:#x} {:#010x}>;\n", n >> 32, n & 0xffff_ffff);
        node.push_str(&format!(
            "\t\tvm{} {{\n\t\t\tis_ffa_partition;\n\t\t\tdebug_name = \"{name}\";\n\t\t\tload_address = <{cells}>;\n\t\t\tvcpu_count = <{contexts}>;\n{mem_size}\t\t}};\n",
            i + 1
        ));
    }
    node.push_str("\t};");
    Ok(format!("{}{}{}", &template[..start], node, &template[end..]))
}

/// The SPMC manifest a build of `set` uses: the checked-in one for our SPs,
/// a generated one (written under `target/quadrant/`) for a user's layout.
pub fn spmc_manifest_file(set: &SpSet) -> Result<PathBuf> {
    let ours = util::repo_root().join("tfa-integration/spmc_manifest.dts");
    match set {
        SpSet::Ours => Ok(ours),
        SpSet::User(_) => {
            let template = std::fs::read_to_string(&ours).map_err(|e| format!("{}: {e}", ours.display()))?;
            let text = spmc_manifest(&template, &set.packages()?)?;
            let out = util::out_dir().join("sp-user").join("spmc_manifest.dts");
            util::mkdirs(out.parent().unwrap())?;
            if std::fs::read_to_string(&out).ok().as_deref() != Some(text.as_str()) {
                util::write_atomic(&out, text.as_bytes())?;
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_entries() {
        let j = r#"{ "echo": {"image": "echo.bin", "pm": "echo.dts", "owner": "SiP"},
                     "x": {"image": {"file": "x.bin", "offset": "0x4000"}, "pm": {"file": "sub/x.dts", "offset": "0x1000"}} }"#;
        let e = entries(j);
        assert_eq!(e, vec![SpEntry { name: "echo".into(), pm: "echo.dts".into(), size: None }, SpEntry { name: "x".into(), pm: "sub/x.dts".into(), size: None }]);
        let j = r#"{ "a": {"image": "a.bin", "pm": "a.dts", "size": "0x200000"}, "b": {"pm": "b.dts", "size": 4096} }"#;
        assert_eq!(entries(j).iter().map(|e| e.size).collect::<Vec<_>>(), [Some(0x20_0000), Some(4096)]);
    }

    #[test]
    fn one_line_properties() {
        let dts = "\tuuid = <0x5519ffd4 0x224786d0 0xbdd82389 0xb338eb89>;\n\tload-address = <0x0e300000>;\n";
        assert_eq!(load_address(dts), Some(0x0e30_0000));
        assert_eq!(load_address("load-address = <0x1 0x0>;"), Some(1 << 32));
        assert_eq!(dts_cells(dts, "uuid").map(|c| c.len()), Some(4));
        assert_eq!(load_address("load-address-relative-offset = <0x1000>;"), None);
    }

    /// The checked-in SPMC manifest lists exactly the packages of the
    /// checked-in layout: generating it from the layout changes nothing.
    #[test]
    fn our_manifest_matches_our_layout() {
        let ours = util::repo_root().join("tfa-integration/spmc_manifest.dts");
        let template = std::fs::read_to_string(ours).unwrap();
        let packages = SpSet::Ours.packages().unwrap();
        assert!(packages.len() >= 2);
        let generated = spmc_manifest(&template, &packages).unwrap();
        let strip = |s: &str| -> Vec<String> {
            let h = s.find("\thypervisor {").unwrap();
            let node = &s[h..h + s[h..].find("\n\t};").unwrap()];
            node.lines().map(|l| l.split("/*").next().unwrap().trim().to_owned()).filter(|l| !l.is_empty()).collect()
        };
        assert_eq!(strip(&generated), strip(&template));
    }

    #[test]
    fn manifest_for_one_sp() {
        let t = "/ {\n\tattribute { };\n\thypervisor {\n\t\tvm1 {\n\t\t\tx;\n\t\t};\n\t};\n\tcpus { };\n};\n";
        let m = spmc_manifest(t, &[("echo".into(), 0x0e30_0000, None, 1), ("big".into(), 0x0e40_0000, Some(0x20_0000), 4)]).unwrap();
        assert!(m.contains("vm1 {\n\t\t\tis_ffa_partition;\n\t\t\tdebug_name = \"echo\";\n\t\t\tload_address = <0x0e300000>;\n\t\t\tvcpu_count = <1>;\n\t\t\tmem_size = <0x0 0x00100000>;\n\t\t};"));
        assert!(m.contains("vm2 {\n\t\t\tis_ffa_partition;\n\t\t\tdebug_name = \"big\";\n\t\t\tload_address = <0x0e400000>;\n\t\t\tvcpu_count = <4>;\n\t\t\tmem_size = <0x0 0x00200000>;\n\t\t};"));
        assert!(m.contains("\tcpus { };") && !m.contains("\t\t\tx;"));
    }
}
