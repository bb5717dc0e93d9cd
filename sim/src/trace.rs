//! The event trace: every event is hashed (FNV-1a, 64 bits) into the run's `trace=` value, and the
//! last few are kept as text for the failure report.

use std::collections::VecDeque;
use std::fmt::Write as _;

/// Events kept as text for a failure report.
const EVENTS_KEPT: usize = 60;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug)]
pub struct Trace {
    hash: u64,
    events: u64,
    recent: VecDeque<String>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            hash: FNV_OFFSET,
            events: 0,
            recent: VecDeque::with_capacity(EVENTS_KEPT),
        }
    }
}

impl Trace {
    /// Records one event that happened at `sim_ms`.
    pub fn record(&mut self, sim_ms: u64, text: &str) {
        let mut line = String::with_capacity(text.len() + 12);
        let _ = write!(line, "{sim_ms:>6}ms {text}");
        for byte in line.bytes().chain(std::iter::once(b'\n')) {
            self.hash ^= u64::from(byte);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
        self.events += 1;
        if self.recent.len() == EVENTS_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn recent(&self) -> impl Iterator<Item = &String> {
        self.recent.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_event() {
        let mut first = Trace::default();
        let mut second = Trace::default();
        first.record(1, "a");
        second.record(1, "a");
        assert_eq!(first.hash(), second.hash());
        second.record(2, "b");
        assert_ne!(first.hash(), second.hash());
        assert_eq!(second.recent().count(), 2);
    }
}
