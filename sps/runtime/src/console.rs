//! Console output of an SP through FFA_CONSOLE_LOG_64 (DEN0077 v1.2): up to
//! 128 characters per call, packed little-endian in x2..x17, count in w1.
//! The SPMC prints complete lines under the partition's name.

use core::fmt::{self, Write};
use shared::abi::ffa::fid;

const CHUNK: usize = 128;

/// Collects characters and sends them in 128-character calls.
pub struct Console {
    buf: [u8; CHUNK],
    len: usize,
}

impl Console {
    pub const fn new() -> Self {
        Self { buf: [0; CHUNK], len: 0 }
    }

    /// The registers of one FFA_CONSOLE_LOG_64 call carrying `chars` (1..=128).
    pub fn encode(chars: &[u8]) -> [u64; 18] {
        let mut r = [0u64; 18];
        r[0] = fid::FFA_CONSOLE_LOG_64 as u64;
        r[1] = chars.len() as u64;
        for (n, c) in chars.iter().enumerate() {
            r[2 + n / 8] |= (*c as u64) << (8 * (n % 8));
        }
        r
    }

    pub fn flush(&mut self) {
        if self.len > 0 {
            let _ = crate::ffa::call(&Self::encode(&self.buf[..self.len]));
            self.len = 0;
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == CHUNK {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

/// Writes formatted text (used by `println!`).
pub fn write_fmt(args: fmt::Arguments) {
    let mut c = Console::new();
    let _ = c.write_fmt(args);
    c.flush();
}

/// Prints one line; the SPMC prefixes it with `[<partition description>] `.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::Console;

    #[test]
    fn packs_little_endian() {
        let r = Console::encode(b"ready\n");
        assert_eq!(r[1], 6);
        assert_eq!(r[2].to_le_bytes()[..6], *b"ready\n");
    }
}
