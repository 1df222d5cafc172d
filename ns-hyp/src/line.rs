//! A fixed-capacity text buffer: probe details are built with `write!` on
//! the target, where there is no allocator.

use core::fmt;

/// Text of at most `N` bytes; longer writes are cut at a character boundary
/// (a truncated detail is better than a failed probe line).
#[derive(Clone)]
pub struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Line<N> {
    pub const fn new() -> Self {
        Self { buf: [0; N], len: 0 }
    }

    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 characters are ever copied in (see `write_str`).
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    pub fn from_fmt(args: fmt::Arguments) -> Self {
        let mut l = Self::new();
        let _ = fmt::Write::write_fmt(&mut l, args);
        l
    }
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Line<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut tmp = [0u8; 4];
            let bytes = c.encode_utf8(&mut tmp).as_bytes();
            if self.len + bytes.len() > N {
                return Ok(());
            }
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Display for Line<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for Line<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn truncates_instead_of_overflowing() {
        let mut l = Line::<8>::new();
        write!(l, "0123456789").unwrap();
        assert_eq!(l.as_str(), "01234567");
        let mut l = Line::<3>::new();
        write!(l, "aé€").unwrap(); // 'é' is 2 bytes: fits; '€' (3 bytes) does not
        assert_eq!(l.as_str(), "aé");
    }
}
