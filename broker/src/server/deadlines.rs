//! Deadlines of every connection, watched by one task: Keep Alive, and when an idle
//! connection should go to sleep.
//!
//! A timer per connection (tokio's `Sleep`) was 112 bytes of every idle connection's task and
//! a timer-wheel entry besides. Here a connection files one deadline per wheel; a single task
//! raises the wheel's event on its signal once the deadline has passed, and the connection
//! decides. For Keep Alive ([`Events::KEEP_ALIVE`]) it closes if nothing came from the client
//! in time [MQTT-3.1.2-24], or files the deadline as of its last packet; packets never touch
//! the wheel, so a busy connection files one deadline per Keep Alive period. For sleep
//! ([`Events::IDLE`]) it goes to sleep if it has done nothing since (see
//! `connection::dormant`).
//!
//! Deadlines are kept to the [`TICK`] after them, so a connection is told at most one tick
//! late and never early.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Broker;
use crate::session::{ConnectionSignal, Events};

/// The wheel's resolution.
pub const TICK: Duration = Duration::from_millis(250);

/// Deadlines ordered by tick, each raising `event` when it passes.
pub struct DeadlineWheel {
    origin: Instant,
    event: Events,
    /// The last tick [`DeadlineWheel::fire_due`] reached: a clock connections read for the
    /// price of a load (a connection stamps its activity with it).
    reached: AtomicU64,
    /// The signals to raise, by tick. A vector per tick, not an entry per deadline: a B-tree
    /// entry per connection was 40-odd bytes of every idle connection (issue #4), a weak
    /// pointer in a vector is 8 and a bit. Cancelling searches its tick's vector, once per
    /// closed connection.
    due: Mutex<BTreeMap<u64, Vec<Weak<ConnectionSignal>>>>,
}

impl DeadlineWheel {
    /// A wheel whose deadlines raise `event`.
    pub fn new(event: Events) -> DeadlineWheel {
        DeadlineWheel {
            origin: Instant::now(),
            event,
            reached: AtomicU64::new(0),
            due: Mutex::new(BTreeMap::new()),
        }
    }

    /// The last tick fired, 0 before the first: the time, to a [`TICK`], as of the last fire.
    pub fn reached(&self) -> u64 {
        self.reached.load(Ordering::Relaxed)
    }

    /// Files `deadline` for `signal`; returns the tick it is kept under. The entry is removed
    /// when it fires or by [`cancel`].
    ///
    /// [`cancel`]: DeadlineWheel::cancel
    pub fn schedule(&self, deadline: Instant, signal: &Arc<ConnectionSignal>) -> u64 {
        let since = deadline.saturating_duration_since(self.origin).as_nanos();
        let tick = since.div_ceil(TICK.as_nanos()) as u64;
        self.file(tick, signal);
        tick
    }

    /// Removes the deadline filed under `tick` for `signal` that has not fired (a closing
    /// connection's).
    pub fn cancel(&self, tick: u64, signal: &Arc<ConnectionSignal>) {
        let mut due = self.due.lock();
        let Some(signals) = due.get_mut(&tick) else {
            return;
        };
        if let Some(i) = signals
            .iter()
            .position(|filed| std::ptr::eq(filed.as_ptr(), Arc::as_ptr(signal)))
        {
            signals.swap_remove(i);
        }
        if signals.is_empty() {
            due.remove(&tick);
        }
    }

    /// Files a deadline `ticks` ticks after the last one fired; returns its tick.
    pub fn schedule_ticks(&self, ticks: u64, signal: &Arc<ConnectionSignal>) -> u64 {
        let tick = self.reached() + ticks;
        self.file(tick, signal);
        tick
    }

    fn file(&self, tick: u64, signal: &Arc<ConnectionSignal>) {
        self.due
            .lock()
            .entry(tick)
            .or_default()
            .push(Arc::downgrade(signal));
    }

    /// Raises the wheel's event on every signal whose deadline is at or before `now`, removing
    /// their entries. Returns how many were raised.
    pub fn fire_due(&self, now: Instant) -> usize {
        let now_tick =
            (now.saturating_duration_since(self.origin).as_nanos() / TICK.as_nanos()) as u64;
        self.reached.fetch_max(now_tick, Ordering::Relaxed);
        let due = {
            let mut map = self.due.lock();
            let later = map.split_off(&(now_tick + 1));
            std::mem::replace(&mut *map, later)
        };
        let mut raised = 0;
        for signal in due
            .into_values()
            .flatten()
            .filter_map(|weak| weak.upgrade())
        {
            signal.raise(self.event);
            raised += 1;
        }
        raised
    }
}

/// Starts the task that fires Keep Alive and sleep deadlines until the broker shuts down.
pub fn spawn(broker: &Arc<Broker>) {
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let now = Instant::now();
                    broker.keep_alive.fire_due(now);
                    broker.sleep_deadlines.fire_due(now);
                }
                _ = broker.shutdown.cancelled() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::{Context, Poll, Waker};

    fn raised(signal: &ConnectionSignal) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        matches!(
            signal.poll_take(&mut cx, Events::KEEP_ALIVE),
            Poll::Ready(_)
        )
    }

    #[test]
    fn mqtt_3_1_2_24_a_deadline_fires_once_passed_and_never_early() {
        let wheel = DeadlineWheel::new(Events::KEEP_ALIVE);
        let signal = Arc::new(ConnectionSignal::new());
        let deadline = wheel.origin + Duration::from_millis(1_600);
        wheel.schedule(deadline, &signal);
        assert_eq!(wheel.fire_due(deadline - Duration::from_millis(1)), 0);
        assert!(!raised(&signal));
        assert_eq!(wheel.fire_due(deadline + TICK), 1);
        assert!(raised(&signal));
        assert!(
            wheel.due.lock().is_empty(),
            "a fired deadline leaves the wheel"
        );
    }

    #[test]
    fn a_cancelled_or_dropped_connection_is_not_raised_and_leaves_no_entry() {
        let wheel = DeadlineWheel::new(Events::KEEP_ALIVE);
        let kept = Arc::new(ConnectionSignal::new());
        let cancelled = Arc::new(ConnectionSignal::new());
        let dropped = Arc::new(ConnectionSignal::new());
        let deadline = wheel.origin + Duration::from_secs(1);
        wheel.schedule(deadline, &kept);
        let tick = wheel.schedule(deadline, &cancelled);
        wheel.schedule(deadline, &dropped);
        wheel.cancel(tick, &cancelled);
        drop(dropped);
        assert_eq!(wheel.due.lock().values().map(Vec::len).sum::<usize>(), 2);
        assert_eq!(wheel.fire_due(deadline + TICK), 1);
        assert!(raised(&kept));
        assert!(!raised(&cancelled));
        assert!(wheel.due.lock().is_empty());
    }
}
