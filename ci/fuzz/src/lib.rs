//! Coverage-guided fuzz targets (issue J), run by `cargo xtask fuzz` with
//! libFuzzer: each binary in `src/bin` is one target.  A fake platform for
//! the SPMC dispatcher lives here: memory is a byte map, SPs answer from
//! the fuzzer's input.

use spmc::ffa::{Platform, Regs, RunFlags, SpExit, memory::BorrowedAccess};
use std::collections::HashMap;

/// Reads the input as a stream of words.
pub struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }
    pub fn done(&self) -> bool {
        self.at >= self.data.len()
    }
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    pub fn word(&mut self) -> u64 {
        let mut w = [0u8; 8];
        for b in &mut w {
            *b = self.byte();
        }
        u64::from_le_bytes(w)
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.at.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.at = start + n;
        &self.data[start..end]
    }
}

/// The SPMC's platform for the dispatcher target.  SP runs answer with the
/// next scripted exit: a call made of input words, or (when the script is
/// empty) FFA_MSG_WAIT / a direct response, so every run ends.
#[derive(Default)]
pub struct FakePlatform {
    pub mem: HashMap<u64, u8>,
    pub script: Vec<SpExit>,
    pub runs: usize,
}

impl Platform for FakePlatform {
    fn map_ns(&mut self, _pa: u64, _size: u64) -> Result<(), ()> {
        Ok(())
    }
    fn unmap_ns(&mut self, _pa: u64, _size: u64) {}
    fn write(&mut self, pa: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            self.mem.insert(pa.wrapping_add(i as u64), *b);
        }
    }
    fn run_sp(&mut self, _index: usize, _ctx: usize, answer: Option<&Regs>, _flags: RunFlags) -> SpExit {
        self.runs += 1;
        if self.runs > 64 {
            // Bounded: a run that never ends is the SPMC's fault only if it
            // loops itself.  The SP dies here rather than waiting: during a
            // direct request FFA_MSG_WAIT is DENIED (DEN0077, as Hafnium) and
            // the SP is resumed, so an SP that kept calling it would spin
            // forever, its own doing (a fuzz timeout found on 2026-12-03).
            return SpExit::Fault { esr: 0, far: 0, elr: 0, ipa: None };
        }
        if let Some(e) = self.script.pop() {
            return e;
        }
        // Answer a direct request (echo), else wait.
        let mut r = [0u64; 18];
        match answer {
            Some(a) if matches!(a[0] as u32, shared::abi::ffa::fid::FFA_MSG_SEND_DIRECT_REQ_64 | shared::abi::ffa::fid::FFA_MSG_SEND_DIRECT_REQ_32) => {
                r.copy_from_slice(a);
                r[0] = if a[0] as u32 == shared::abi::ffa::fid::FFA_MSG_SEND_DIRECT_REQ_64 {
                    shared::abi::ffa::fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64
                } else {
                    shared::abi::ffa::fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64
                };
                let (src, dst) = shared::abi::ffa::unpack_endpoints(a[1]);
                r[1] = shared::abi::ffa::pack_endpoints(dst, src);
            }
            _ => r[0] = shared::abi::ffa::fid::FFA_MSG_WAIT as u64,
        }
        SpExit::Call(r)
    }
    fn acknowledge_interrupt(&mut self) -> u32 {
        1023
    }
    fn deactivate_interrupt(&mut self, _intid: u32) {}
    fn timer_expired(&mut self, _out: &mut [(usize, usize)]) -> usize {
        0
    }
    fn reset_ctx(&mut self, _index: usize, _ctx: usize, _entry: Option<u64>) {}
    fn sp_log(&mut self, _prefix: &str, _line: &str) {}
    fn read(&mut self, pa: u64, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = *self.mem.get(&pa.wrapping_add(i as u64)).unwrap_or(&0);
        }
    }
    fn map_borrowed(&mut self, _index: usize, _pa: u64, _size: u64, _access: BorrowedAccess, _non_secure: bool) -> Result<(), ()> {
        Ok(())
    }
    fn unmap_borrowed(&mut self, _index: usize, _pa: u64, _size: u64, _non_secure: bool) {}
    fn send_sri(&mut self) {}
    fn zero(&mut self, pa: u64, size: u64, _non_secure: bool) -> Result<(), ()> {
        self.mem.retain(|a, _| !(pa..pa.saturating_add(size)).contains(a));
        Ok(())
    }
}
