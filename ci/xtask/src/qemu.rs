//! QEMU command lines (design notes §2) and a runner that captures the serial
//! console with a timeout.

use crate::util::{self, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the machine boots.
#[derive(Clone, Debug)]
pub enum Boot {
    /// All four worlds: TF-A's bl1+fip as the bios; `dtb` replaces QEMU's own DTB.
    Tfa { bios: PathBuf, dtb: Option<PathBuf> },
    /// ns-hyp alone, loaded like a Linux Image with `-kernel`; `append` goes to /chosen/bootargs.
    NoTfa { kernel: PathBuf, append: Option<String> },
    /// The four-world machine (`tfa = true`, with `-bios`) or the plain EL2 one,
    /// plus any further QEMU arguments (loaders, devices, `-dtb`).
    Custom { tfa: bool, args: Vec<String> },
    /// `boot`, with input typed on the console: for each (wait_for, send) in
    /// order, once the output (after the previous match) contains `wait_for`,
    /// `send` is written to QEMU's serial input (or, for a `send` made by
    /// [`host_tcp_read`], the host connects to the guest).  Only `capture` types.
    Scripted { boot: Box<Boot>, input: Vec<(String, String)> },
    /// `boot` with further QEMU arguments after its own (e.g. `-icount`).
    Extra { boot: Box<Boot>, args: Vec<String> },
    /// Separate QEMU processes one after the other (e.g. a disk written by
    /// the first and read by the second).  Only `capture` runs a sequence: it
    /// stops at the first run that does not exit with status 0.
    Sequence(Vec<Boot>),
    /// No QEMU: the serial log of an earlier run with the same inputs,
    /// replayed (`tests::optee`'s reference, which runs none of our code).
    Replay { log: PathBuf },
}

pub const SMP: u32 = 4;
pub const MEM: &str = "2G";

fn machine(boot: &Boot) -> Vec<String> {
    match boot {
        Boot::Scripted { boot, .. } | Boot::Extra { boot, .. } => return machine(boot),
        Boot::Sequence(runs) if !runs.is_empty() => return machine(&runs[0]),
        _ => {}
    }
    let tfa = matches!(boot, Boot::Tfa { .. } | Boot::Custom { tfa: true, .. });
    let m = if tfa { "virt,secure=on,virtualization=on,gic-version=3" } else { "virt,virtualization=on,gic-version=3" };
    // x-rme=on: FEAT_RME, which TF-A's ENABLE_RME build requires.
    let cpu = if tfa { "max,x-rme=on" } else { "max" };
    // -nodefaults: QEMU adds no device we did not name.  Its implicit NIC
    // needs a ROM (efi-virtio.rom from ipxe-qemu, a Recommends that setup's
    // --no-install-recommends skips), so a default device made every boot
    // fail at once on a fresh machine.  The serial port is named by the
    // caller (`serial_args`), the rest by each boot.
    let mut a: Vec<String> = vec!["-nodefaults".into()];
    // A boot that names its own machine (`-machine virt,...`, e.g. Linux at
    // EL1 on bare QEMU, without virtualization=on) or memory says so once.
    // A `-machine` of extra options alone (`mte=on`) adds to ours.
    let own_machine = matches!(boot, Boot::Custom { args, .. } if args.windows(2).any(|w| w[0] == "-machine" && w[1].starts_with("virt")));
    if !own_machine {
        a.extend(["-machine".into(), m.into()]);
    }
    // A boot that picks its own CPU model (the OP-TEE reference's TF-A has
    // no RME: on an RME CPU its EL3 code faults, fetched from outside the
    // Root PA space) says so once.
    if !custom_has(boot, "-cpu") {
        a.extend(["-cpu".into(), cpu.into()]);
    }
    if !custom_has(boot, "-m") {
        a.extend(["-m".into(), MEM.into()]);
    }
    // A boot that picks its own CPU count (e.g. `-smp 1`) says so once.
    if !custom_has(boot, "-smp") {
        a.extend(["-smp".into(), SMP.to_string()]);
    }
    a
}

/// A [`Boot::Custom`] whose own arguments include `opt`.
fn custom_has(boot: &Boot, opt: &str) -> bool {
    matches!(boot, Boot::Custom { args, .. } if args.iter().any(|x| x == opt))
}

/// The full argument list (without the console options).
pub fn args(boot: &Boot) -> Vec<String> {
    let mut a = machine(boot);
    match boot {
        Boot::Tfa { bios, dtb } => {
            a.extend(["-bios".into(), bios.display().to_string()]);
            if let Some(d) = dtb {
                a.extend(["-dtb".into(), d.display().to_string()]);
            }
            // SYSTEM_OFF: TF-A's qemu platform pulls the secure PL061 GPIO line that
            // QEMU's virt machine wires to power-off, so QEMU exits with status 0.
        }
        Boot::NoTfa { kernel, append } => {
            a.extend(["-kernel".into(), kernel.display().to_string()]);
            if let Some(s) = append {
                a.extend(["-append".into(), s.clone()]);
            }
        }
        Boot::Custom { args, .. } => a.extend(args.iter().cloned()),
        Boot::Scripted { boot, .. } => return args(boot),
        Boot::Extra { boot, args: more } => {
            let mut a = args(boot);
            a.extend(more.iter().cloned());
            return a;
        }
        Boot::Sequence(runs) => return runs.first().map(args).unwrap_or_default(),
        Boot::Replay { .. } => return Vec::new(),
    }
    a
}

/// The arguments of an interactive run: -nographic adds no serial port under
/// -nodefaults, so it is named (with QEMU's monitor multiplexed on it,
/// Ctrl-A c), as `-nographic` alone would.
pub fn interactive_args(boot: &Boot) -> Vec<String> {
    let mut a = args(boot);
    a.extend(["-nographic", "-serial", "mon:stdio"].map(String::from));
    a
}

/// Interactive run: serial (and QEMU's monitor, Ctrl-A c) on this terminal.
pub fn run_interactive(boot: &Boot, gdb: bool) -> Result {
    let mut cmd = Command::new("qemu-system-aarch64");
    cmd.args(interactive_args(boot));
    if gdb {
        eprintln!("xtask: QEMU waits for gdb on tcp::1234 (gdb-multiarch -ex 'target remote :1234')");
        cmd.args(["-s", "-S"]);
    }
    eprintln!("xtask: $ {}", util::show(&cmd));
    let status = cmd.status().map_err(|e| format!("cannot start QEMU: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("QEMU exited with {status}")) }
}

/// What starts a `send` of [`Boot::Scripted`] that types nothing: see [`host_tcp_read`].
const HOST_TCP_READ: &str = "\0xtask-host-tcp-read ";
/// How often the host tries [`host_tcp_read`]'s connection, a second apart.
const HOST_TCP_TRIES: u32 = 5;
/// How long each try may wait to connect, and then for the text.
const HOST_TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// A step of [`Boot::Scripted`] that types nothing: the host connects to
/// `addr` over TCP (e.g. a `hostfwd` port of QEMU's user network) and reads
/// until the guest closes, trying up to [`HOST_TCP_TRIES`] times until it
/// reads something.  Its outcome joins the output as a line of its own,
/// `xtask: host read from <addr>: <text, trimmed>` (or `: nothing (<why>)`),
/// for a later step to wait for and a test to check.
pub fn host_tcp_read(addr: std::net::SocketAddr) -> String {
    format!("{HOST_TCP_READ}{addr}")
}

/// The line [`host_tcp_read`] adds to the output, once it has its answer.
fn tcp_read_line(addr: &str, tries: u32) -> String {
    let mut why = String::new();
    for k in 0..tries {
        if k > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        let got = addr.parse().map_err(|e| format!("{e}")).and_then(|a| {
            let mut s = std::net::TcpStream::connect_timeout(&a, HOST_TCP_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(HOST_TCP_TIMEOUT)).map_err(|e| e.to_string())?;
            let mut text = Vec::new();
            // A timeout after some text still counts: the text is what the guest sent.
            let end = s.read_to_end(&mut text);
            match (text.is_empty(), end) {
                (false, _) => Ok(String::from_utf8_lossy(&text).trim().to_owned()),
                (true, Ok(_)) => Err("closed without a byte".to_owned()),
                (true, Err(e)) => Err(format!("read: {e}")),
            }
        });
        match got {
            Ok(text) => return format!("\nxtask: host read from {addr}: {text}\n"),
            Err(e) => why = e,
        }
    }
    format!("\nxtask: host read from {addr}: nothing ({tries} tries, the last: {why})\n")
}

/// What a captured run printed and how it ended.
pub struct Capture {
    pub output: String,
    /// QEMU's exit code; `None` if it was killed at the timeout.
    pub exit: Option<i32>,
    pub elapsed: Duration,
    /// When a `stop_on` text first appeared, if one did.
    pub stopped_at: Option<Duration>,
}

/// Boots, captures serial output until QEMU exits, `timeout` passes, or a line
/// containing one of `stop_on` appears (a panic: waiting longer shows nothing new).
pub fn capture(boot: &Boot, timeout: Duration, log: &Path, stop_on: &[&str]) -> Result<Capture> {
    if let Boot::Sequence(runs) = boot {
        return capture_sequence(runs, timeout, log, stop_on);
    }
    if let Boot::Replay { log: kept } = boot {
        let output = std::fs::read_to_string(kept).map_err(|e| format!("{}: {e}", kept.display()))?;
        std::fs::write(log, &output).map_err(|e| format!("{}: {e}", log.display()))?;
        return Ok(Capture { output, exit: Some(0), elapsed: Duration::ZERO, stopped_at: None });
    }
    let mut cmd = Command::new("qemu-system-aarch64");
    cmd.args(args(boot)).args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
    let input: Vec<(String, String)> = match boot {
        Boot::Scripted { input, .. } => input.clone(),
        _ => vec![],
    };
    cmd.stdin(if input.is_empty() { Stdio::null() } else { Stdio::piped() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    // The exact command, so a failing run can be repeated by hand.
    eprintln!("xtask: $ {}", util::show(&cmd));
    let start = Instant::now();
    let mut stopped_at: Option<Duration> = None;
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let mut stdin = child.stdin.take();
    let (mut next_input, mut seen) = (0usize, 0usize);
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut readers = Vec::new();
    for stream in [child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>), child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>)]
        .into_iter()
        .flatten()
    {
        let buf = buf.clone();
        readers.push(std::thread::spawn(move || {
            let mut stream = stream;
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        }));
    }
    let exit = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status.code();
        }
        if next_input < input.len() {
            let b = buf.lock().unwrap();
            let text = String::from_utf8_lossy(&b[seen.min(b.len())..]).into_owned();
            let (wait_for, send) = &input[next_input];
            if let Some(at) = text.find(wait_for.as_str()) {
                seen += text[..at + wait_for.len()].len();
                drop(b);
                if let Some(addr) = send.strip_prefix(HOST_TCP_READ) {
                    // On a thread of its own: the run goes on (and may end) meanwhile.
                    let (buf, addr) = (buf.clone(), addr.to_owned());
                    std::thread::spawn(move || {
                        let line = tcp_read_line(&addr, HOST_TCP_TRIES);
                        buf.lock().unwrap().extend_from_slice(line.as_bytes());
                    });
                } else if let Some(s) = stdin.as_mut() {
                    use std::io::Write;
                    let _ = s.write_all(send.as_bytes());
                    let _ = s.flush();
                }
                next_input += 1;
            }
        }
        let stop = !stop_on.is_empty() && {
            let b = buf.lock().unwrap();
            let text = String::from_utf8_lossy(&b);
            stop_on.iter().any(|s| text.contains(s))
        };
        if stop {
            stopped_at.get_or_insert(start.elapsed());
            // Let the rest of the message reach the log, then end the run.
            std::thread::sleep(Duration::from_millis(500));
        }
        if stop || start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for r in readers {
        let _ = r.join();
    }
    let raw = buf.lock().unwrap().clone();
    let _ = std::fs::write(log, &raw);
    let output = String::from_utf8_lossy(&raw).replace('\r', "");
    Ok(Capture { output, exit, elapsed: start.elapsed(), stopped_at })
}

/// Each run of a sequence in turn, sharing `timeout`; the outputs are joined
/// with a line `xtask: QEMU run k of n` before each.
fn capture_sequence(runs: &[Boot], timeout: Duration, log: &Path, stop_on: &[&str]) -> Result<Capture> {
    let start = Instant::now();
    let mut all = Capture { output: String::new(), exit: Some(0), elapsed: Duration::ZERO, stopped_at: None };
    for (k, run) in runs.iter().enumerate() {
        let left = timeout.saturating_sub(start.elapsed());
        let part = log.with_extension(format!("run{}.log", k + 1));
        let cap = capture(run, left, &part, stop_on)?;
        all.output.push_str(&format!("xtask: QEMU run {} of {}\n", k + 1, runs.len()));
        all.output.push_str(&cap.output);
        all.exit = cap.exit;
        if let Some(t) = cap.stopped_at {
            all.stopped_at = Some(start.elapsed() - cap.elapsed + t);
        }
        if cap.exit != Some(0) {
            break;
        }
    }
    all.elapsed = start.elapsed();
    let _ = std::fs::write(log, &all.output);
    Ok(all)
}

/// QEMU's own DTB for the four-world machine with `/chosen/bootargs` set, for
/// passing options to ns-hyp under TF-A (QEMU ignores `-append` with `-bios`).
pub fn dtb_with_bootargs(bios: &Path, bootargs: &str, out: &Path) -> Result {
    dtb_with_bootargs_smp(bios, bootargs, None, out)
}

/// [`dtb_with_bootargs`] for a machine of `smp` CPUs (default [`SMP`]): the
/// DTB's /cpus must say how many CPUs QEMU has, since ns-hyp counts them there.
pub fn dtb_with_bootargs_smp(bios: &Path, bootargs: &str, smp: Option<u32>, out: &Path) -> Result {
    dump_dtb_smp(Some(bios), smp, out)?;
    util::run(Command::new("fdtput").args(["-t", "s"]).arg(out).args(["/chosen", "bootargs", bootargs]))
}

/// Writes the DTB QEMU generates for the four-world machine booting `bios`
/// (or the plain EL2 machine when `None`) to `out`.  The bios matters: with
/// firmware loaded, `virt` swaps the NS PL061 GPIO for an ACPI GED, so a DTB
/// dumped without it describes a device that is not there (and Linux takes an
/// external abort probing it).
pub fn dump_dtb(bios: Option<&Path>, out: &Path) -> Result {
    dump_dtb_smp(bios, None, out)
}

/// [`dump_dtb`] for a machine of `smp` CPUs (default [`SMP`]).
pub fn dump_dtb_smp(bios: Option<&Path>, smp: Option<u32>, out: &Path) -> Result {
    let args = smp.map(|n| vec!["-smp".to_string(), n.to_string()]).unwrap_or_default();
    let boot = Boot::Custom { tfa: bios.is_some(), args: args.clone() };
    let mut a = machine(&boot);
    a.extend(args);
    let m = a.iter().position(|x| x == "-machine").map(|i| i + 1).ok_or("no -machine in the QEMU arguments")?;
    a[m] = format!("{},dumpdtb={}", a[m], out.display());
    if let Some(b) = bios {
        a.extend(["-bios".into(), b.display().to_string()]);
    }
    util::run(Command::new("qemu-system-aarch64").args(&a).args(["-display", "none"]))
}

/// Adds `/chosen` bootargs and an initrd range to a DTB (what a bootloader
/// would do; QEMU does not when it boots firmware with `-bios`).
pub fn set_chosen(dtb: &Path, bootargs: &str, initrd: Option<(u64, u64)>) -> Result {
    util::run(Command::new("fdtput").args(["-t", "s"]).arg(dtb).args(["/chosen", "bootargs", bootargs]))?;
    if let Some((start, end)) = initrd {
        for (name, v) in [("linux,initrd-start", start), ("linux,initrd-end", end)] {
            let (hi, lo) = (format!("{:x}", v >> 32), format!("{:x}", v & 0xffff_ffff));
            util::run(Command::new("fdtput").args(["-t", "x"]).arg(dtb).args(["/chosen", name, &hi, &lo]))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_tcp_read_lines() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            use std::io::Write;
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"quadrant-uplink-ok\n").unwrap();
        });
        let send = super::host_tcp_read(addr);
        let addr_text = send.strip_prefix(super::HOST_TCP_READ).unwrap();
        assert_eq!(addr_text, addr.to_string());
        assert_eq!(super::tcp_read_line(addr_text, 1), format!("\nxtask: host read from {addr}: quadrant-uplink-ok\n"));
        server.join().unwrap();
        // Nobody listens there any more: refused, said on the line.
        let none = super::tcp_read_line(addr_text, 1);
        assert!(none.starts_with(&format!("\nxtask: host read from {addr}: nothing (1 tries, the last: connect: ")), "{none}");
    }
}
