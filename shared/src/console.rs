//! Serial console: a PL011 driver (transmit side) and the `log` backend every
//! image uses.  Lines look like `[spmc] message` so that tests can tell the
//! worlds apart on the one shared UART.

use core::fmt::{self, Write};
use spin::Mutex;

/// Anything that can take bytes of console output.
pub trait ConsoleOut: Send {
    fn put_byte(&mut self, byte: u8);
}

/// An Arm PL011 UART (DDI0183): transmit for the console, and the receive
/// side and interrupt control for a driver that takes input (ns-hyp's guest
/// console).
pub struct Pl011 {
    base: usize,
}

/// Data register (DDI0183 §3.3.1) and flag register with TXFF (§3.3.3).
const UARTDR: usize = 0x000;
const UARTFR: usize = 0x018;
const UARTFR_TXFF: u32 = 1 << 5;
/// UARTFR.RXFE: the receive FIFO is empty.
const UARTFR_RXFE: u32 = 1 << 4;
/// Control, interrupt mask set/clear and interrupt clear registers (DDI0183,
/// UARTCR, UARTIMSC, UARTICR).
const UARTCR: usize = 0x030;
const UARTIMSC: usize = 0x038;
const UARTICR: usize = 0x044;
/// UARTCR: UARTEN, TXE, RXE.
const UARTCR_UARTEN_TXE_RXE: u32 = 1 | 1 << 8 | 1 << 9;
/// The receive interrupt (RXIM/RXIC) and receive timeout interrupt (RTIM/RTIC)
/// bits of UARTIMSC and UARTICR.
pub const PL011_INT_RX: u32 = 1 << 4 | 1 << 6;
/// Every interrupt bit of UARTICR.
pub const PL011_INT_ALL: u32 = 0x7ff;

impl Pl011 {
    /// # Safety
    /// `base` must be the address of a PL011's registers, mapped as device memory (or
    /// accessed with the MMU off) for as long as this value is used.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base }
    }

    pub fn base(&self) -> usize {
        self.base
    }

    fn read(&self, off: usize) -> u32 {
        // SAFETY: `new`'s contract says `base` points at PL011 registers.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u32) }
    }

    fn write(&self, off: usize, v: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u32, v) }
    }

    /// Sets UARTCR's UARTEN, TXE and RXE, keeping its other bits.
    pub fn enable_tx_rx(&self) {
        let cr = self.read(UARTCR);
        self.write(UARTCR, cr | UARTCR_UARTEN_TXE_RXE);
    }

    /// UARTIMSC: which interrupts are unmasked.
    pub fn set_interrupt_mask(&self, mask: u32) {
        self.write(UARTIMSC, mask);
    }

    /// UARTICR: clears these interrupts.
    pub fn clear_interrupts(&self, bits: u32) {
        self.write(UARTICR, bits);
    }

    /// One received byte, if the receive FIFO holds one (UARTFR.RXFE clear).
    pub fn read_byte(&self) -> Option<u8> {
        (self.read(UARTFR) & UARTFR_RXFE == 0).then(|| self.read(UARTDR) as u8)
    }
}

impl ConsoleOut for Pl011 {
    fn put_byte(&mut self, byte: u8) {
        // SAFETY: `new`'s contract says `base` points at PL011 registers.
        unsafe {
            let fr = (self.base + UARTFR) as *const u32;
            while core::ptr::read_volatile(fr) & UARTFR_TXFF != 0 {
                core::hint::spin_loop();
            }
            core::ptr::write_volatile((self.base + UARTDR) as *mut u32, byte as u32);
        }
    }
}

/// Adapter so `core::fmt` can drive any `ConsoleOut`, turning `\n` into `\r\n`.
pub struct Writer<'a, C: ConsoleOut + ?Sized>(pub &'a mut C);

impl<C: ConsoleOut + ?Sized> Write for Writer<'_, C> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.put_byte(b'\r');
            }
            self.0.put_byte(b);
        }
        Ok(())
    }
}

struct Console {
    out: Option<Pl011>,
    prefix: &'static str,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console { out: None, prefix: "" });

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let mut console = CONSOLE.lock();
        let prefix = console.prefix;
        if let Some(out) = console.out.as_mut() {
            let mut w = Writer(out);
            let _ = match record.level() {
                log::Level::Info => writeln!(w, "[{}] {}", prefix, record.args()),
                level => writeln!(w, "[{}] {}: {}", prefix, level, record.args()),
            };
        }
    }

    fn flush(&self) {}
}

/// Installs `out` as the console and the `log` backend.  `prefix` names the
/// image on every line.  Calling it again only replaces the output.
pub fn init(out: Pl011, prefix: &'static str, level: log::LevelFilter) {
    {
        let mut console = CONSOLE.lock();
        console.out = Some(out);
        console.prefix = prefix;
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Writes pre-formatted text straight to the console (used for lines that a
/// test parses verbatim, and for messages relayed from other endpoints).
pub fn write_fmt(args: fmt::Arguments) {
    let mut console = CONSOLE.lock();
    if let Some(out) = console.out.as_mut() {
        let _ = Writer(out).write_fmt(args);
    }
}

/// Runs `f` with the console to itself: the bytes `f` sends go out as they
/// are, and no log line of this image lands among them (ns-hyp's guest
/// console multiplexer sends each VM's line this way).  With no console
/// yet, the bytes are dropped.  `f` must not log: the lock is held.
pub fn exclusive<R>(f: impl FnOnce(&mut dyn FnMut(u8)) -> R) -> R {
    let mut console = CONSOLE.lock();
    match console.out.as_mut() {
        Some(out) => f(&mut |b| out.put_byte(b)),
        None => f(&mut |_| {}),
    }
}

/// Last words: prints a panic message even if the console lock is held by the
/// code that panicked (we never return from a panic, so breaking the lock is safe).
pub fn panic_print(info: &core::panic::PanicInfo) {
    // SAFETY: called only on the panic path, after which this CPU never runs
    // normal code again; another CPU holding the lock may interleave output, which
    // is acceptable for a fatal message.
    unsafe { CONSOLE.force_unlock() };
    let mut console = CONSOLE.lock();
    let prefix = console.prefix;
    if let Some(out) = console.out.as_mut() {
        // One line, so it carries the prefix (PanicInfo's Display puts the
        // message on a second, unprefixed line).
        let _ = match info.location() {
            Some(l) => writeln!(Writer(out), "[{}] PANIC: {} (at {}:{})", prefix, info.message(), l.file(), l.line()),
            None => writeln!(Writer(out), "[{}] PANIC: {}", prefix, info.message()),
        };
    }
}

/// How many per-request log lines an image prints before it serves requests
/// quietly: enough to show every hand-shake of a boot, few enough that a
/// benchmark of 10,000 calls measures the calls and not the UART.
pub const REQUEST_LOG_BUDGET: u32 = 64;

static REQUEST_LOG_LEFT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(REQUEST_LOG_BUDGET);

/// Whether one more per-request line may be logged; announces the last one.
pub fn request_log_allowed() -> bool {
    use core::sync::atomic::Ordering;
    let prev = REQUEST_LOG_LEFT
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .unwrap_or(0);
    if prev == 1 {
        log::info!("request log limit ({REQUEST_LOG_BUDGET}) reached: later requests are served without a log line");
    }
    prev > 0
}

/// `log::info!` for one line per handled request, within [`REQUEST_LOG_BUDGET`].
#[macro_export]
macro_rules! request_log {
    ($($arg:tt)*) => {
        if $crate::console::request_log_allowed() {
            $crate::log::info!($($arg)*);
        }
    };
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Buf(Vec<u8>);
    impl ConsoleOut for Buf {
        fn put_byte(&mut self, b: u8) {
            self.0.push(b);
        }
    }

    #[test]
    fn writer_expands_newlines() {
        let mut b = Buf(Vec::new());
        write!(Writer(&mut b), "a\nb").unwrap();
        assert_eq!(b.0, b"a\r\nb");
    }
}
