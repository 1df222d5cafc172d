//! A short, fixed-capacity name (partition descriptions, debug names): the
//! SPMC has no heap, and names only label log lines.

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    bytes: [u8; Name::CAPACITY],
    len: u8,
}

impl Name {
    pub const CAPACITY: usize = 32;

    /// Keeps the first `CAPACITY` bytes of `s`, cut at a character boundary.
    pub fn new(s: &str) -> Self {
        let mut end = s.len().min(Self::CAPACITY);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; Self::CAPACITY];
        bytes[..end].copy_from_slice(&s.as_bytes()[..end]);
        Self { bytes, len: end as u8 }
    }

    pub fn as_str(&self) -> &str {
        // `new` only stores a prefix of a `str` cut at a char boundary.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("?")
    }
}

impl Default for Name {
    fn default() -> Self {
        Self::new("")
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl core::fmt::Display for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Name;

    #[test]
    fn truncates_at_char_boundary() {
        assert_eq!(Name::new("echo").as_str(), "echo");
        let long = "é".repeat(20); // 40 bytes
        assert_eq!(Name::new(&long).as_str().len(), 32);
    }
}
