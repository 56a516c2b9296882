//! How the rest of the broker gets a connection's attention: a few event bits and one waker.
//!
//! A connection task waits on its signal, its socket's readiness and nothing else. Waiting
//! registers a waker in place (no waiter node, no future kept across the wait), so an idle
//! connection's task carries no `Notify`, `Sleep` or cancellation future (those were about a
//! third of every idle connection's memory). Raising a bit that is already raised does not
//! wake again: the task looks at its session after it takes the bits, so one wake covers
//! every message queued before it runs. A fan-out of a burst therefore wakes each subscriber
//! once, not once per message.

use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};

use atomic_waker::AtomicWaker;

/// The events a connection can be told of. Bits of one byte, so several can be raised and
/// taken together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Events(u8);

impl Events {
    /// Messages were queued, an in-flight slot freed, the session taken over or kicked.
    pub const SESSION: Events = Events(1);
    /// The connection's Keep Alive deadline may have passed.
    pub const KEEP_ALIVE: Events = Events(2);
    /// The broker is shutting down or draining.
    pub const SHUTDOWN: Events = Events(4);
    /// The connection's sleep deadline passed: it may go to sleep if it has stayed idle.
    pub const IDLE: Events = Events(8);
    pub const ALL: Events = Events(15);

    pub fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub const fn union(self, other: Events) -> Events {
        Events(self.0 | other.0)
    }
}

/// The event bits raised for one connection and the waker of the task that serves it.
#[derive(Debug, Default)]
pub struct ConnectionSignal {
    raised: AtomicU8,
    waker: AtomicWaker,
}

impl ConnectionSignal {
    pub fn new() -> ConnectionSignal {
        ConnectionSignal::default()
    }

    /// Raises `events` and wakes the task unless they were all raised already (then a wake
    /// is on its way, or the task has yet to take them).
    pub fn raise(&self, events: Events) {
        // A plain load first: while the task has not yet taken a raise, a fan-out burst
        // raises the same bit for every message, and a read-modify-write each time would
        // pull the line away from the connection's core for nothing.
        if self.raised.load(Ordering::Acquire) & events.0 == events.0 {
            return;
        }
        let before = self.raised.fetch_or(events.0, Ordering::AcqRel);
        if before & events.0 != events.0 {
            self.waker.wake();
        }
    }

    /// Takes the raised events among `wanted`, leaving the others raised; when none is
    /// raised, registers the task's waker and returns `Pending`.
    pub fn poll_take(&self, cx: &mut Context<'_>, wanted: Events) -> Poll<Events> {
        if let Some(events) = self.take(wanted) {
            return Poll::Ready(events);
        }
        self.waker.register(cx.waker());
        // Checked again after registering: a raise in between found no waker to wake.
        match self.take(wanted) {
            Some(events) => Poll::Ready(events),
            None => Poll::Pending,
        }
    }

    /// Registers `waker` to be woken by the next raise, as a wait does without taking
    /// anything; true if an event is raised already (then no raise may come to wake it).
    /// A connection going to sleep registers the waker that wakes it up.
    pub fn register(&self, waker: &Waker) -> bool {
        self.waker.register(waker);
        self.raised.load(Ordering::Acquire) != 0
    }

    fn take(&self, wanted: Events) -> Option<Events> {
        if self.raised.load(Ordering::Acquire) & wanted.0 == 0 {
            return None;
        }
        let before = self.raised.fetch_and(!wanted.0, Ordering::AcqRel);
        let taken = before & wanted.0;
        (taken != 0).then_some(Events(taken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::time::Duration;

    impl ConnectionSignal {
        /// Waits for any of `wanted` and takes them.
        async fn wait(&self, wanted: Events) -> Events {
            poll_fn(|cx| self.poll_take(cx, wanted)).await
        }
    }

    #[tokio::test]
    async fn a_raise_before_the_wait_is_not_lost() {
        let signal = ConnectionSignal::new();
        signal.raise(Events::SESSION);
        assert_eq!(signal.wait(Events::ALL).await, Events::SESSION);
    }

    #[tokio::test]
    async fn a_raise_wakes_a_waiting_task_and_takes_only_what_it_asked_for() {
        let signal = Arc::new(ConnectionSignal::new());
        let waiter = tokio::spawn({
            let signal = Arc::clone(&signal);
            async move {
                signal
                    .wait(Events::SHUTDOWN.union(Events::KEEP_ALIVE))
                    .await
            }
        });
        tokio::task::yield_now().await;
        signal.raise(Events::SESSION);
        signal.raise(Events::KEEP_ALIVE);
        let taken = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the raise woke the task")
            .unwrap();
        assert_eq!(taken, Events::KEEP_ALIVE);
        // SESSION was not asked for, so it is still raised for the next wait.
        assert_eq!(signal.wait(Events::ALL).await, Events::SESSION);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raises_from_another_thread_are_never_missed() {
        // Ping-pong between a task and a thread: each side raises only after the other has
        // taken its raise, so one raise lost between `take` and `register` hangs the rounds.
        let ping = Arc::new(ConnectionSignal::new());
        let pong = Arc::new(ConnectionSignal::new());
        let rounds = 2_000;
        let waiter = tokio::spawn({
            let (ping, pong) = (Arc::clone(&ping), Arc::clone(&pong));
            async move {
                for _ in 0..rounds {
                    ping.wait(Events::SESSION).await;
                    pong.raise(Events::SESSION);
                }
            }
        });
        let raiser = std::thread::spawn({
            let (ping, pong) = (Arc::clone(&ping), Arc::clone(&pong));
            let handle = tokio::runtime::Handle::current();
            move || {
                for _ in 0..rounds {
                    ping.raise(Events::SESSION);
                    handle.block_on(pong.wait(Events::SESSION));
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("no raise was lost")
            .unwrap();
        raiser.join().unwrap();
    }
}
