//! Quadrant's build driver: `cargo xtask <setup|build|run|test|bench>`.
//! Every subcommand provisions what it needs first (see `setup`).

mod bench;
mod build;
mod guest;
mod measure;
mod qemu;
mod setup;
mod tests;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>
  setup            install/download what the rest needs (cached in ~/.cache/quadrant)
  build            build ns-hyp, spmc, rmm, the echo SP, then TF-A, the FIP and the QEMU bios
  run [--no-tfa] [--gdb] [--mem MiB]
                   build, then boot all four worlds in QEMU (serial on this terminal);
                   --no-tfa boots ns-hyp alone with -kernel; --gdb waits for gdb on :1234;
                   --mem: the Linux guest's RAM in MiB (64..1024, default 1024)
  test [FILTER]    host unit tests, then QEMU integration tests whose name contains FILTER
  bench            time FF-A/RMI round trips against a null SMC; writes target/bench.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::setup().map(|_| true),
        Some("build") => setup::setup().and_then(|p| build::build(&p)).map(|_| true),
        Some("run") => {
            let no_tfa = args.iter().any(|a| a == "--no-tfa");
            let gdb = args.iter().any(|a| a == "--gdb");
            // --mem <MiB>: the guest's RAM (ns-hyp takes 64..=1024; default 1024).
            let mem = match args.iter().position(|a| a == "--mem").map(|i| args.get(i + 1).and_then(|m| m.parse::<u32>().ok())) {
                None => None,
                Some(Some(m)) if (64..=1024).contains(&m) => Some(m),
                Some(_) => {
                    eprintln!("xtask: --mem wants a size in MiB from 64 to 1024\n{USAGE}");
                    return ExitCode::from(2);
                }
            };
            setup::setup().and_then(|p| {
                // Issue B1: ns-hyp runs the Debian guest (4 vCPUs, virtio disk) to its shell.
                let o = build::build(&p)?;
                let boot = tests::nshyp::interactive_guest_boot(&o, !no_tfa, mem)?;
                qemu::run_interactive(&boot, gdb).map(|_| true)
            })
        }
        Some("test") => setup::setup().and_then(|p| build::build(&p)).and_then(|o| tests::test(&o, args.get(1).map(String::as_str))),
        Some("bench") => setup::setup().and_then(|p| build::build(&p)).and_then(|o| bench::bench(&o)),
        _ => {
            eprintln!("{USAGE}");
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
