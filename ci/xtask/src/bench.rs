//! `cargo xtask bench`: one four-world boot with ns-hyp in bench mode.  ns-hyp
//! times 10,000 round trips of each call with CNTVCT; we print each as a ratio
//! to the floor (a null SMC answered by EL3) measured in the same run, write
//! `target/bench.json`, and list the images' sizes.

use crate::build::{self, Outputs};
use crate::qemu::{self, Boot};
use crate::util::{self, Result};
use std::fmt::Write as _;
use std::time::Duration;

/// (row name in ns-hyp's output, what it measures).
const ROWS: &[(&str, &str)] = &[
    ("smc_floor", "null SMC answered by EL3 (SMCCC_VERSION) — the floor"),
    ("ffa_version", "FFA_VERSION answered by spmc"),
    ("ffa_direct_req_echo", "direct request round trip to the echo SP"),
    ("rmi_version", "RMI_VERSION answered by rmm"),
];

struct Row {
    name: String,
    iterations: u64,
    ticks: u64,
}

fn parse(output: &str) -> (Vec<Row>, Option<u64>, bool) {
    let mut rows = Vec::new();
    let mut freq = None;
    let mut done = false;
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("[ns-hyp] bench ") else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        match f.as_slice() {
            ["done"] => done = true,
            ["cntfrq", hz] => freq = hz.parse().ok(),
            [name, iters, ticks] => {
                if let (Ok(iterations), Ok(ticks)) = (iters.parse(), ticks.parse()) {
                    rows.push(Row { name: name.to_string(), iterations, ticks });
                }
            }
            _ => {}
        }
    }
    (rows, freq, done)
}

pub fn bench(outputs: &Outputs) -> Result<bool> {
    let out = util::out_dir();
    let dtb = out.join("bench.dtb");
    qemu::dtb_with_bootargs(&outputs.bios, "quadrant.bench", &dtb)?;
    let boot = Boot::Tfa { bios: outputs.bios.clone(), dtb: Some(dtb) };
    let log = out.join("bench.log");
    let cap = qemu::capture(&boot, Duration::from_secs(600), &log, &["PANIC:"])?;
    let (rows, freq, done) = parse(&cap.output);
    if !done || cap.exit != Some(0) {
        return Err(format!("bench run did not complete (exit {:?}); serial log: {}", cap.exit, log.display()));
    }
    let per_call = |r: &Row| r.ticks as f64 / r.iterations.max(1) as f64;
    let floor = rows.iter().find(|r| r.name == "smc_floor").map(per_call).ok_or("no smc_floor row in the bench output")?;
    let mut json = String::from("{\n");
    println!("{:<22} {:>10} {:>14} {:>10}  {}", "row", "calls", "ticks/call", "÷ floor", "what");
    let mut ok = true;
    for (name, what) in ROWS {
        let row = rows.iter().find(|r| r.name == *name);
        let (calls, tpc, ratio) = match row {
            Some(r) => (r.iterations, per_call(r), per_call(r) / floor),
            None => {
                ok = false;
                (0, f64::NAN, f64::NAN)
            }
        };
        if !ratio.is_finite() {
            ok = false;
        }
        println!("{:<22} {:>10} {:>14.1} {:>10.2}  {}", name, calls, tpc, ratio, what);
        let _ = writeln!(
            json,
            "  \"{name}\": {{\"calls\": {calls}, \"ticks_per_call\": {}, \"ratio_to_floor\": {}}},",
            num(tpc),
            num(ratio)
        );
    }
    let _ = writeln!(json, "  \"cntfrq_hz\": {},", freq.map(|f| f.to_string()).unwrap_or("null".into()));
    println!();
    println!("{:<22} {:>10}", "image", "bytes");
    let mut sizes = Vec::new();
    for (_, bin) in build::images() {
        let p = outputs.images.join(format!("{bin}.bin"));
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        println!("{:<22} {:>10}", format!("{bin}.bin"), size);
        sizes.push(format!("\"{bin}\": {size}"));
    }
    let _ = writeln!(json, "  \"image_bytes\": {{{}}}\n}}", sizes.join(", "));
    let path = util::repo_root().join("target").join("bench.json");
    util::write_atomic(&path, json.as_bytes())?;
    println!("\nwrote {}", path.display());
    Ok(ok)
}

fn num(x: f64) -> String {
    if x.is_finite() { format!("{x:.3}") } else { "null".into() }
}
