//! FFA_CONSOLE_LOG (DEN0077 v1.2, FFA_CONSOLE_LOG): SPs print through the
//! SPMC, one line at a time under their own prefix.

use super::calls::Call;
use super::{Caller, Platform, Regs, Spmc, error, success};
use shared::abi::ffa::{FfaError, fid};

/// Console characters of one SP not yet ended by a newline.
#[derive(Clone, Copy)]
pub(super) struct LineBuf {
    bytes: [u8; 128],
    len: usize,
}

impl LineBuf {
    pub(super) const fn new() -> Self {
        Self { bytes: [0; 128], len: 0 }
    }
}

fn flush_line(prefix: &crate::name::Name, line: &mut LineBuf, platform: &mut dyn Platform) {
    if line.len == 0 {
        return;
    }
    let text = match core::str::from_utf8(&line.bytes[..line.len]) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&line.bytes[..e.valid_up_to()]).unwrap_or(""),
    };
    platform.sp_log(prefix.as_str(), text);
    line.len = 0;
}

impl Spmc {
    /// w1 = character count, characters packed little-endian from w2 (SMC32:
    /// w2..w7, at most 24) or x2 (SMC64: x2..x17, at most 128).
    fn console_log(&self, i: usize, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let is64 = r[0] as u32 == fid::FFA_CONSOLE_LOG_64;
        let (regs, per) = if is64 { (&r[2..18], 8) } else { (&r[2..8], 4) };
        let count = r[1] as usize;
        if count == 0 || count > regs.len() * per {
            return error(FfaError::InvalidParameters);
        }
        let p = self.part(i);
        let prefix = p.manifest.description;
        // A UP partition's context may print from any PE: one line buffer, locked.
        let mut line = p.line.lock();
        for n in 0..count {
            let c = regs[n / per].to_le_bytes()[n % per];
            // A carriage return (OP-TEE's console sends "\r\n") ends nothing:
            // our log lines get their own line ending.
            if c == b'\r' {
                continue;
            }
            if c == b'\n' || c == 0 || line.len == line.bytes.len() {
                flush_line(&prefix, &mut line, platform);
                if c == b'\n' || c == 0 {
                    continue;
                }
            }
            let at = line.len;
            line.bytes[at] = c;
            line.len += 1;
        }
        success(&[])
    }
}

pub(super) fn ffa_console_log(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let Caller::Sp(i) = c.caller else { return error(FfaError::NotSupported) };
    s.console_log(i, c.regs, platform)
}
