//! `cargo xtask fuzz [TARGET] [--time S] [--seed N]`: the host fuzz
//! campaigns of issue J, of two kinds.
//!
//! - Seeded campaigns (`spmc`, `rmm`, `ns-hyp`): each an ignored test of its
//!   crate that runs seeded random calls for the given time and prints one
//!   line: executions, seeds, distinct outcomes, crashes.  A crash fails the
//!   test with the seed and call that caused it (rerun with `--seed`).
//!   Short versions (`*_fuzz_short`) run in every `cargo xtask test`.
//! - Coverage-guided targets (`ci/fuzz`, libFuzzer from `libfuzzer-sys`, on
//!   the stable toolchain: the crate is built with LLVM's sanitizer coverage
//!   through `-Cpasses=sancov-module`, no nightly-only flag): each prints its
//!   executions, edges covered and features; the corpus is kept in
//!   `~/.cache/quadrant/fuzz/corpus/<target>`, a crash is written to
//!   `~/.cache/quadrant/fuzz/artifacts/<target>/` and fails the run (rerun
//!   the binary on that file; a minimized crash becomes a named regression
//!   test of the crate).  `cargo xtask test` runs each for a few seconds.

use crate::util::{self, Result};
use std::path::PathBuf;
use std::process::Command;

pub const USAGE: &str = "  fuzz [TARGET] [--time S] [--seed N]
                   host fuzzing, S seconds each (default 30): seeded campaigns (spmc, rmm, ns-hyp)
                   and coverage-guided libFuzzer targets (spmc_descriptors, spmc_manifests,
                   spmc_dispatcher); all by default; prints executions, outcomes, coverage";

/// The coverage-guided targets (binaries of ci/fuzz).
pub const LIBFUZZER_TARGETS: &[&str] = &["spmc_descriptors", "spmc_manifests", "spmc_dispatcher", "rmm_dispatcher", "nshyp_exits", "nshyp_virtio"];

/// LLVM sanitizer coverage as libFuzzer reads it (what cargo-fuzz passes,
/// less its nightly-only sanitizer flag), plus `cfg(fuzzing)`.
const SANCOV_RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing";

fn host_triple() -> Result<String> {
    let v = util::output(Command::new("rustc").arg("-vV"))?;
    v.lines().find_map(|l| l.strip_prefix("host: ")).map(str::to_string).ok_or_else(|| "rustc -vV: no host line".to_string())
}

/// Builds ci/fuzz (instrumented, for the host; build scripts stay plain
/// because `--target` keeps RUSTFLAGS off them); the binaries' directory.
pub fn build_libfuzzer() -> Result<PathBuf> {
    let root = util::repo_root();
    let triple = host_triple()?;
    let target_dir = root.join("target").join("fuzz");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root.join("ci/fuzz"))
        .args(["build", "--release", "--target", &triple, "--target-dir"])
        .arg(&target_dir)
        .env("RUSTFLAGS", SANCOV_RUSTFLAGS);
    util::step("fuzz targets (libFuzzer, sanitizer coverage)", || util::run(&mut cmd))?;
    Ok(target_dir.join(triple).join("release"))
}

/// The manifests we ship, compiled, as the manifest target's first corpus.
fn seed_manifests(corpus: &std::path::Path) -> Result {
    let root = util::repo_root().join("tfa-integration");
    let mut sources = vec![root.join("spmc_manifest.dts")];
    for e in std::fs::read_dir(root.join("sp")).map_err(|e| e.to_string())?.flatten() {
        if e.path().extension().is_some_and(|x| x == "dts") {
            sources.push(e.path());
        }
    }
    for src in sources {
        let name = src.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let out = corpus.join(format!("seed-{name}.dtb"));
        if !out.exists() {
            let _ = util::run(Command::new("dtc").args(["-q", "-I", "dts", "-O", "dtb", "-o"]).arg(&out).arg(&src));
        }
    }
    Ok(())
}

/// What one libFuzzer run said.
pub struct Coverage {
    pub executions: u64,
    pub edges: u64,
    pub features: u64,
    pub crashed: bool,
}

/// Runs coverage-guided target `name` for `secs` seconds.
pub fn run_libfuzzer(bin: &std::path::Path, name: &str, secs: u64) -> Result<Coverage> {
    let base = util::cache_dir().join("fuzz");
    let corpus = base.join("corpus").join(name);
    let artifacts = base.join("artifacts").join(name);
    util::mkdirs(&corpus)?;
    util::mkdirs(&artifacts)?;
    if name == "spmc_manifests" {
        seed_manifests(&corpus)?;
    }
    let out = Command::new(bin.join(name))
        .arg(&corpus)
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg("-rss_limit_mb=1024")
        .output()
        .map_err(|e| format!("{name}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    let num = |key: &str| -> u64 {
        text.lines().rev().find_map(|l| l.split(key).nth(1)).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let cov = Coverage { executions: num("stat::number_of_executed_units: "), edges: num(" cov: "), features: num(" ft: "), crashed: !out.status.success() };
    if cov.crashed {
        for l in text.lines().filter(|l| l.contains("panicked") || l.contains("SUMMARY") || l.contains("Test unit written")) {
            eprintln!("  {name}: {l}");
        }
    }
    Ok(cov)
}

/// (target, crate, test name)
const TARGETS: &[(&str, &str, &str)] = &[
    ("spmc", "spmc", "ffa::tests::fuzz::spmc_fuzz_long"),
    ("rmm", "rmm", "rmi::fuzz::rmi_fuzz_long"),
    ("ns-hyp", "ns-hyp", "vm::fuzz::vm_fuzz_long"),
];

pub fn fuzz(args: &[String]) -> Result<bool> {
    let mut time = 30u64;
    let mut seed = None;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--time" => time = it.next().and_then(|s| s.parse().ok()).ok_or("--time takes seconds")?,
            "--seed" => seed = Some(it.next().and_then(|s| s.parse::<u64>().ok()).ok_or("--seed takes a number")?),
            t if TARGETS.iter().any(|(n, _, _)| *n == t) || LIBFUZZER_TARGETS.contains(&t) => only = Some(t.to_string()),
            other => return Err(format!("fuzz: unknown argument {other:?}\n{USAGE}")),
        }
    }
    let mut ok = true;
    for (name, krate, test) in TARGETS {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(util::repo_root())
            .args(["test", "--release", "-p", krate, "--", "--ignored", "--exact", "--nocapture", test])
            .env("QUADRANT_FUZZ_SECS", time.to_string());
        if let Some(s) = seed {
            cmd.env("QUADRANT_FUZZ_SEED", s.to_string());
        }
        if util::step(&format!("fuzz {name} ({time} s)"), || util::run(&mut cmd)).is_err() {
            eprintln!("fuzz {name}: a crash (the test's output above names the seed and the call)");
            ok = false;
        }
    }
    if only.as_deref().is_none_or(|o| LIBFUZZER_TARGETS.contains(&o)) {
        let bin = build_libfuzzer()?;
        for name in LIBFUZZER_TARGETS.iter().filter(|n| only.as_deref().is_none_or(|o| o == **n)) {
            let c = run_libfuzzer(&bin, name, time)?;
            println!(
                "fuzz {name} (libFuzzer, {time} s): {} executions, {} edges, {} features, {}",
                c.executions,
                c.edges,
                c.features,
                if c.crashed { "a CRASH (input in ~/.cache/quadrant/fuzz/artifacts)" } else { "0 crashes" }
            );
            ok &= !c.crashed;
        }
    }
    Ok(ok)
}
