//! The quick starts in docs/ quote commands that xtask really runs.  The
//! blocks after a `<!-- generated: NAME -->` marker are rendered here from
//! the same functions the build and the runs use, and a host test keeps the
//! docs equal to them (so a changed flag fails `cargo test` until the docs
//! say it too).  Every `cargo xtask run …` line in README.md and docs/ must
//! parse with `run`'s own option parser.

#[cfg(test)]
mod tests {
    use crate::build::{Bl33, TFA_TARGETS, tfa_make_vars};
    use crate::qemu::{self, Boot};
    use crate::util;
    use std::path::PathBuf;

    /// `$Q` is the user's checkout of this repository after `cargo xtask build`.
    fn tfa_make(bl33: Bl33) -> String {
        let img = |n: &str| format!("$Q/target/quadrant/images/{n}");
        let cfg = |n: &str| match n {
            // `cargo xtask build` stages the layout with its manifests and images beside it.
            "sp_layout.json" => "$Q/target/quadrant/sp/sp_layout.json".to_owned(),
            _ => format!("$Q/tfa-integration/{n}"),
        };
        let mut s = String::from("make -C $TFA \\\n");
        for v in tfa_make_vars(bl33, &img, &cfg, "$TFA/build/qemu/release") {
            s.push_str(&format!("    {v} \\\n"));
        }
        s.push_str(&format!("    {}\n", TFA_TARGETS.join(" ")));
        s
    }

    fn qemu_line(boot: &Boot) -> String {
        format!("qemu-system-aarch64 {}\n", qemu::interactive_args(boot).join(" "))
    }

    /// Every generated block by name.
    fn generated(name: &str) -> Option<String> {
        let bios = PathBuf::from("build/qemu/release/qemu_fw.bios");
        Some(match name {
            "tfa-make-ns-hyp" => tfa_make(Bl33::NsHyp),
            "tfa-make-preloaded-linux" => tfa_make(Bl33::PreloadedLinux),
            "qemu-four-worlds" => qemu_line(&Boot::Tfa { bios, dtb: None }),
            // `cargo xtask run --pkvm` (and --bl33): Linux preloaded as BL33.
            "qemu-linux-bl33" => {
                let p = |s: &str| PathBuf::from(s);
                qemu_line(&Boot::Custom { tfa: true, args: crate::tests::spmc::bl33_qemu_args(&bios, &p("pkvm.dtb"), &p("Image"), Some(&p("initramfs.cpio"))) })
            }
            _ => return None,
        })
    }

    fn doc_files() -> Vec<PathBuf> {
        let root = util::repo_root();
        let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("docs")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "md")).collect();
        v.push(root.join("README.md"));
        v.sort();
        v
    }

    #[test]
    fn generated_blocks_match_the_code() {
        let mut seen = 0;
        for f in doc_files() {
            let text = std::fs::read_to_string(&f).unwrap();
            for part in text.split("<!-- generated: ").skip(1) {
                let name = part.split(" -->").next().unwrap();
                let want = generated(name).unwrap_or_else(|| panic!("{}: unknown generated block {name}", f.display()));
                let block = part.split("```").nth(1).and_then(|b| b.split_once('\n')).map(|(_, body)| body).unwrap_or("");
                assert_eq!(block, want, "{}: block {name} differs from what xtask runs; replace it with:\n{want}", f.display());
                seen += 1;
            }
        }
        assert!(seen >= 3, "the quick starts carry their generated blocks ({seen} found)");
    }

    /// `cargo xtask run …` lines in the docs use options `run` accepts.
    #[test]
    fn run_lines_parse() {
        let mut seen = 0;
        for f in doc_files() {
            let text = std::fs::read_to_string(&f).unwrap();
            for line in text.lines().map(str::trim).filter(|l| l.starts_with("cargo xtask run")) {
                let cmd = line.split(" #").next().unwrap();
                let words = shell_words(cmd.trim_start_matches("cargo xtask run"));
                crate::run::parse_words(&words).unwrap_or_else(|e| panic!("{}: `{line}`: {e}", f.display()));
                seen += 1;
            }
        }
        assert!(seen >= 4, "{seen} `cargo xtask run` lines found");
    }

    /// Splits on spaces, keeping "double-quoted" words whole (enough for the docs).
    fn shell_words(s: &str) -> Vec<String> {
        let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
        for c in s.chars() {
            match c {
                '"' => quoted = !quoted,
                ' ' if !quoted => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    /// A QEMU command line written out by hand in the docs names its devices
    /// (an implicit default NIC once needed a ROM a fresh machine lacks).
    #[test]
    fn hand_written_qemu_lines_are_nodefaults() {
        let root = util::repo_root();
        for f in doc_files().into_iter().chain([root.join("tfa-integration/README.md")]) {
            let text = std::fs::read_to_string(&f).unwrap();
            for l in text.lines().filter(|l| l.trim_start().starts_with("qemu-system-aarch64 ")) {
                assert!(l.contains("-nodefaults"), "{}: {l}", f.display());
            }
        }
    }

    #[test]
    fn words() {
        assert_eq!(shell_words(" --kernel a  --append \"x y\""), ["--kernel", "a", "--append", "x y"]);
    }
}
