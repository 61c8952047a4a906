//! The fixed per-direction latency of [`FaultProxy::set_latency`](crate::FaultProxy::set_latency):
//! a delay line between a pump's reads and its writes.
//!
//! A long link does not slow a sender down, it only makes every byte arrive later: ten chunks
//! sent back to back arrive back to back, one latency later, not ten latencies later as the
//! random [`Faults`](crate::Faults) delays (which sleep before each write) would make them.
//! So each pump keeps reading while earlier chunks are in flight: a chunk is stamped with the
//! time it is due (read time + the latency at that moment) and queued here, and the pump
//! writes it once that time has come. Keeping the queue inside the existing pump (rather than
//! a reader and a writer thread per direction) keeps one thread per direction and leaves the
//! link, fault and shutdown rules exactly where they were.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bytes in flight per direction and connection before the pump stops reading: the link's
/// window. Above it the sender is pushed back (its kernel buffers fill up), so a bulk transfer
/// over a long link runs at about this much per latency, as over a real one.
pub(crate) const MAX_IN_FLIGHT: usize = 1024 * 1024;

/// Latencies are capped so `Instant + latency` cannot overflow; an hour is as good as never for
/// a test.
pub(crate) const MAX_LATENCY: Duration = Duration::from_secs(3600);

/// What travels down the line: data, or the end of the stream (a FIN also takes the latency to
/// arrive, after the data before it).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Data(Vec<u8>),
    Eof,
}

#[derive(Debug, Default)]
pub(crate) struct DelayLine {
    queue: VecDeque<(Instant, Item)>,
    bytes: usize,
}

impl DelayLine {
    /// Queues `item`, read at `read_at`, to be delivered `latency` later, but never before the
    /// item queued before it: lowering the latency lets new chunks catch up, not overtake.
    pub(crate) fn push(&mut self, read_at: Instant, latency: Duration, item: Item) {
        let due = read_at + latency.min(MAX_LATENCY);
        let due = self.queue.back().map_or(due, |&(last, _)| due.max(last));
        if let Item::Data(chunk) = &item {
            self.bytes += chunk.len();
        }
        self.queue.push_back((due, item));
    }

    /// When the next item is due, if any is in flight.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|&(due, _)| due)
    }

    /// The next item, if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Item> {
        if self.next_due()? > now {
            return None;
        }
        let (_, item) = self.queue.pop_front()?;
        if let Item::Data(chunk) = &item {
            self.bytes -= chunk.len();
        }
        Some(item)
    }

    /// True when the pump must stop reading until something has been delivered.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= MAX_IN_FLIGHT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> Item {
        Item::Data(s.as_bytes().to_vec())
    }

    #[test]
    fn items_come_out_when_due_and_in_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut line = DelayLine::default();
        assert_eq!(line.next_due(), None);
        line.push(t0, ms(100), data("a"));
        line.push(t0 + ms(10), ms(100), data("b"));
        // Lowered latency: due at t0 + 25, but not before "b".
        line.push(t0 + ms(20), ms(5), data("c"));
        line.push(t0 + ms(30), ms(5), Item::Eof);

        assert_eq!(line.next_due(), Some(t0 + ms(100)));
        assert_eq!(line.pop_due(t0 + ms(99)), None);
        assert_eq!(line.pop_due(t0 + ms(100)), Some(data("a")));
        assert_eq!(line.pop_due(t0 + ms(100)), None);
        assert_eq!(line.next_due(), Some(t0 + ms(110)));
        assert_eq!(line.pop_due(t0 + ms(200)), Some(data("b")));
        assert_eq!(line.pop_due(t0 + ms(200)), Some(data("c")));
        assert_eq!(line.pop_due(t0 + ms(200)), Some(Item::Eof));
        assert_eq!(line.pop_due(t0 + ms(200)), None);
    }

    #[test]
    fn the_window_counts_bytes_in_flight() {
        let now = Instant::now();
        let mut line = DelayLine::default();
        line.push(now, Duration::ZERO, Item::Data(vec![0; MAX_IN_FLIGHT - 1]));
        assert!(!line.is_full());
        line.push(now, Duration::ZERO, Item::Data(vec![0; 1]));
        assert!(line.is_full());
        assert!(line.pop_due(now).is_some());
        assert!(!line.is_full());
    }

    #[test]
    fn a_huge_latency_does_not_overflow() {
        let mut line = DelayLine::default();
        let now = Instant::now();
        line.push(now, Duration::MAX, Item::Eof);
        assert_eq!(line.next_due(), Some(now + MAX_LATENCY));
    }
}
