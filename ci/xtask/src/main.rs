//! Quadrant's build driver: `cargo xtask <setup|build|run|test|bench>`.
//! Every subcommand provisions what it needs first (see `setup`).

mod bench;
mod build;
mod docs;
mod guest;
mod kmod;
mod layout;
mod measure;
mod qemu;
mod run;
mod fresh;
mod fuzz;
mod setup;
mod sign;
mod tests;
mod util;
mod verify_token;

use std::process::ExitCode;

fn usage() -> String {
    format!(
        "usage: cargo xtask <command>
  setup            install/download what the rest needs (cached in ~/.cache/quadrant)
  build            build ns-hyp, spmc, rmm, the SPs, then TF-A, the FIP and the QEMU bios
{}
  test [FILTER]    host unit tests, then QEMU integration tests whose name contains FILTER
  test --long [FILTER]  the long QEMU runs (not CI) whose name contains FILTER: the full
                   xtest suite under spmc and under the SPD=opteed reference (~10 min each)
  bench [FILTER]   FF-A/RMI/guest/OP-TEE round trips as ratios to their floors;
                   writes target/bench.json and target/bench.svg (FILTER: only the
                   groups of rows whose key contains it, printed, nothing written)
{}
{}
{}
  fresh-check      the README's `cargo xtask test` in a clean Debian 12 root (mmdebstrap),
                   with this machine's Rust toolchain: proves the fresh-machine path",
        run::USAGE,
        verify_token::USAGE,
        fuzz::USAGE,
        sign::USAGE
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::setup().map(|_| true),
        Some("build") => setup::setup().and_then(|p| build::build(&p)).map(|_| true),
        Some("run") => match run::parse(&args[1..]) {
            Ok(opts) => setup::setup().and_then(|p| {
                let o = build::build(&p)?;
                let boot = run::boot(&o, &opts)?;
                if let Some(hint) = run::console_hint(&opts) {
                    eprintln!("{hint}");
                }
                qemu::run_interactive(&boot, opts.gdb).map(|_| true)
            }),
            Err(e) => {
                eprintln!("xtask: run: {e}\n{}", usage());
                return ExitCode::from(2);
            }
        },
        Some("test") => {
            // `test --long [FILTER]`: the long runs (not CI) instead of the integration tests.
            let long = args.get(1).is_some_and(|a| a == "--long");
            let filter = args.get(if long { 2 } else { 1 }).map(String::as_str);
            setup::setup().and_then(|p| build::build(&p)).and_then(|o| if long { tests::test_long(&o, filter) } else { tests::test(&o, filter) })
        }
        Some("verify-token") => setup::setup().and_then(|_| verify_token::main(&args[1..])),
        Some("sign-sp") => sign::main(&args[1..]),
        Some("fresh-check") => fresh::fresh_check(),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("bench") => setup::setup().and_then(|p| build::build(&p)).and_then(|o| bench::bench(&o, args.get(1).map(String::as_str))),
        _ => {
            eprintln!("{}", usage());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
