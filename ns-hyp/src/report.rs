//! Where ns-hyp's test-visible lines go.  On the target every line becomes
//! `[ns-hyp] <text>` on the console; host tests collect them instead.

use core::fmt;

pub trait Sink {
    /// Emits one line (without the `[ns-hyp] ` prefix, which the console adds).
    fn line(&mut self, args: fmt::Arguments);
}

/// The console (`log` backend installed by `shared::console::init`).
pub struct Console;

impl Sink for Console {
    fn line(&mut self, args: fmt::Arguments) {
        log::info!("{}", args);
    }
}

/// Collects lines (host tests).
#[cfg(test)]
#[derive(Default)]
pub struct Lines(pub Vec<String>);

#[cfg(test)]
impl Sink for Lines {
    fn line(&mut self, args: fmt::Arguments) {
        self.0.push(args.to_string());
    }
}
