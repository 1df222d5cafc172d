//! `cargo xtask fuzz [TARGET] [--time S] [--seed N]`: the host fuzz
//! campaigns of issue J.  Each target is an ignored test of its crate that
//! runs seeded random calls for the given time and prints one line:
//! executions, seeds, distinct outcomes, crashes.  A crash fails the test
//! with the seed and call that caused it (rerun with `--seed`); each one
//! found becomes a named regression test.  Short versions of the same
//! campaigns (`*_fuzz_short`) run in every `cargo xtask test`.

use crate::util::{self, Result};
use std::process::Command;

pub const USAGE: &str = "  fuzz [TARGET] [--time S] [--seed N]
                   seeded random calls on the host (TARGET: spmc, rmm, ns-hyp; all by default),
                   S seconds each (default 30); prints executions and outcomes";

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
            t if TARGETS.iter().any(|(n, _, _)| *n == t) => only = Some(t.to_string()),
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
    Ok(ok)
}
