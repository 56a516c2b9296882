//! Idle connections asleep: no task, no runtime registration, just the connection's state and
//! its socket watched by one broker-wide thread.
//!
//! An idle connection's tokio task (512 bytes) and the runtime's readiness slot for its socket
//! (256 bytes) were half of what an idle connection cost (issue #4: at most 700 bytes per idle
//! connection). A connection that has stayed idle for [`SLEEP_AFTER_TICKS`] (or has done
//! nothing since its handshake) therefore goes to sleep: its socket leaves the runtime and is
//! watched by this module's `epoll` (through `mio`), the task ends, and what it needs to go on
//! is kept here. Whatever would have woken the task wakes the connection instead, through the
//! same two paths: the socket becoming readable (data, end of stream, an error) and a raise of
//! its [`ConnectionSignal`](crate::session::ConnectionSignal) (a message queued, Keep Alive,
//! takeover, shutdown). Waking takes the connection out, gives the socket back to the runtime
//! and spawns a task that continues the same loop, so a sleeping connection behaves exactly as
//! an awake one, one task spawn later.

mod sleepers;
mod waker;

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use parking_lot::Mutex;

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::time::Instant;

use bytes::BytesMut;
use prometheus::IntCounter;

use super::{Close, Connection, ConnectionCount, Peer};
use crate::codec::{ByteString, Decoder, ProtocolVersion, Will};
use crate::delivery::Outbox;
use crate::server::Attached;
use crate::session::{ConnectionSignal, Session};
use sleepers::Sleepers;

/// Ticks of the broker's deadline wheels (250 ms each) a connection stays idle before it goes
/// to sleep, so a busy connection is not put to sleep between two messages.
pub(super) const SLEEP_AFTER_TICKS: u64 = 4;

/// A sleeping connection: what of its state outlives an idle wait (no read buffer, no write
/// in progress, no sleep deadline), its socket out of the runtime, and its share of the
/// broker's connection count, which also holds the broker.
pub(super) struct Asleep {
    stream: std::net::TcpStream,
    version: ProtocolVersion,
    problem_information: bool,
    keep_alive_secs: u16,
    connect_expiry: u32,
    generation: u64,
    session: Arc<Session>,
    signal: Arc<ConnectionSignal>,
    outbox: Outbox,
    decoder: Decoder,
    will: Option<Box<Will>>,
    last_received: Instant,
    keep_alive_entry: Option<NonZeroU64>,
    #[allow(clippy::box_collection)]
    inbound_aliases: Option<Box<HashMap<u16, ByteString>>>,
    listener_publishes: IntCounter,
    peer: Peer,
    guard: ConnectionCount,
}

impl Asleep {
    /// Keeps what `conn` needs to go on, idle: its read buffer is empty and given back, its
    /// outbox holds nothing to write, and it has no sleep deadline filed.
    fn new(conn: Connection<()>, stream: std::net::TcpStream, guard: ConnectionCount) -> Asleep {
        let Connection {
            broker: _,
            stream: (),
            peer,
            mut rbuf,
            mut outbox,
            decoder,
            version,
            attached,
            will,
            keep_alive_secs,
            last_received,
            keep_alive_entry,
            sleep_entry,
            active_tick: _,
            writing,
            collect_more: _,
            problem_information,
            connect_expiry,
            inbound_aliases,
            listener_publishes,
        } = conn;
        debug_assert!(rbuf.is_empty() && sleep_entry.is_none() && !writing);
        super::release_if_empty(&mut rbuf);
        outbox.release_buffer();
        let Attached {
            session,
            generation,
            signal,
            session_present: _,
        } = attached;
        Asleep {
            stream,
            version,
            problem_information,
            keep_alive_secs,
            connect_expiry,
            generation,
            session,
            signal,
            outbox,
            decoder,
            will,
            last_received,
            keep_alive_entry,
            inbound_aliases,
            listener_publishes,
            peer,
            guard,
        }
    }

    /// The connection again, its socket, and its share of the connection count. It counts as
    /// active as of now (see [`wake`]).
    fn wake_up(self) -> (Connection<()>, std::net::TcpStream, ConnectionCount) {
        let Asleep {
            stream,
            version,
            problem_information,
            keep_alive_secs,
            connect_expiry,
            generation,
            session,
            signal,
            outbox,
            decoder,
            will,
            last_received,
            keep_alive_entry,
            inbound_aliases,
            listener_publishes,
            peer,
            guard,
        } = self;
        let mut conn = Connection {
            broker: Arc::clone(guard.broker()),
            stream: (),
            peer,
            rbuf: BytesMut::new(),
            outbox,
            decoder,
            version,
            attached: Attached {
                session,
                generation,
                session_present: false,
                signal,
            },
            will,
            keep_alive_secs,
            last_received,
            keep_alive_entry,
            sleep_entry: None,
            active_tick: 0,
            writing: false,
            collect_more: false,
            problem_information,
            connect_expiry,
            inbound_aliases,
            listener_publishes,
        };
        conn.stamp_activity();
        (conn, stream, guard)
    }
}

/// The process-wide watch over sleeping connections' sockets.
struct Dormancy {
    registry: Registry,
    sleepers: Mutex<Sleepers<Asleep>>,
}

/// The process's dormancy, its thread started on first use; `None` if `epoll` or the thread
/// could not be had (then connections stay awake).
fn dormancy() -> Option<&'static Dormancy> {
    static DORMANCY: OnceLock<Option<Arc<Dormancy>>> = OnceLock::new();
    DORMANCY
        .get_or_init(|| match start() {
            Ok(dormancy) => Some(dormancy),
            Err(error) => {
                tracing::warn!(%error, "idle connections cannot sleep; they stay awake");
                None
            }
        })
        .as_deref()
}

fn start() -> io::Result<Arc<Dormancy>> {
    let poll = Poll::new()?;
    let dormancy = Arc::new(Dormancy {
        registry: poll.registry().try_clone()?,
        sleepers: Mutex::new(Sleepers::default()),
    });
    let watched = Arc::clone(&dormancy);
    std::thread::Builder::new()
        .name("ferrumq-dormant".into())
        .spawn(move || watch(poll, &watched))?;
    Ok(dormancy)
}

/// Wakes every sleeping connection whose socket becomes readable. Runs for the life of the
/// process.
fn watch(mut poll: Poll, dormancy: &Dormancy) {
    let mut events = Events::with_capacity(256);
    loop {
        if let Err(error) = poll.poll(&mut events, None) {
            if error.kind() != io::ErrorKind::Interrupted {
                tracing::error!(%error, "watching sleeping connections failed");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            continue;
        }
        for event in events.iter() {
            wake_in(dormancy, event.token().0);
        }
    }
}

/// Wakes the connection asleep under `token`, if it still is (the first wake takes it; a
/// later one, or one for a connection that has woken already, finds nothing). What a
/// sleeping connection's waker calls.
fn wake_token(token: usize) {
    if let Some(dormancy) = dormancy() {
        wake_in(dormancy, token);
    }
}

fn wake_in(dormancy: &Dormancy, token: usize) {
    let Some(asleep) = dormancy.sleepers.lock().remove(token) else {
        return;
    };
    // Not registered if it was woken while going to sleep: nothing to undo then.
    let fd = asleep.stream.as_raw_fd();
    let _ = dormancy.registry.deregister(&mut SourceFd(&fd));
    asleep.guard.broker().asleep.fetch_sub(1, Ordering::Relaxed);
    wake(asleep);
}

/// Puts an idle connection to sleep; it wakes up as soon as anything would have woken its task.
pub(super) fn sleep(conn: Connection<()>, stream: std::net::TcpStream, guard: ConnectionCount) {
    conn.broker
        .runtime
        .get_or_init(tokio::runtime::Handle::current);
    let asleep = Asleep::new(conn, stream, guard);
    let Some(dormancy) = dormancy() else {
        return wake(asleep);
    };
    let signal = Arc::clone(&asleep.signal);
    let fd = asleep.stream.as_raw_fd();
    asleep.guard.broker().asleep.fetch_add(1, Ordering::Relaxed);
    let token = dormancy.sleepers.lock().insert(asleep);
    // The signal's waker first, with no lock held: registering may wake it at once (a raise
    // racing the registration), and waking takes the lock. Then the socket, under the lock
    // and only if nothing woke the connection meanwhile: a wake waits for the lock, so it
    // never finds a socket half registered, and a socket is never registered for a
    // connection that has woken (the runtime owns it again by then). In the other order, a
    // connection woken through its socket could find this registration overwriting the
    // waker its new task had just registered on the signal, and miss every later raise.
    let raised = signal.register(&waker::token_waker(token));
    let registered = {
        let sleepers = dormancy.sleepers.lock();
        if sleepers.contains(token) {
            dormancy
                .registry
                .register(&mut SourceFd(&fd), Token(token), Interest::READABLE)
        } else {
            Ok(())
        }
    };
    if let Err(error) = &registered {
        tracing::warn!(%error, "an idle connection could not go to sleep");
    }
    // `mio` registers edge-triggered, and `epoll` reports a socket that is readable already
    // when it is added, so input that came before the registration is not missed either.
    if raised || registered.is_err() {
        wake_in(dormancy, token);
    }
}

/// Whether connections can sleep in this process.
pub(super) fn available() -> bool {
    dormancy().is_some()
}

/// Gives a sleeping connection's socket back to the runtime and continues its loop in a new
/// task.
///
/// A woken connection counts as active: it stays awake for [`SLEEP_AFTER_TICKS`], so it first
/// waits for (and handles) what woke it, and a connection that could not go to sleep does not
/// try again on every turn of its loop.
fn wake(asleep: Asleep) {
    let broker = Arc::clone(asleep.guard.broker());
    let Some(runtime) = broker.runtime.get() else {
        // Only a connection that went to sleep can wake, and going to sleep sets the runtime.
        let (conn, _, _) = asleep.wake_up();
        return conn.leave(Close::Lost("no runtime to wake up on".into()));
    };
    // Spawned even after the runtime has shut down: the task is then dropped at once, which
    // closes the socket.
    broker.tasks.spawn_on(
        async move {
            let (mut conn, stream, guard) = asleep.wake_up();
            let input = conn.read_asleep(&stream);
            match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => {
                    let (mut conn, ()) = conn.replace_stream(stream);
                    let stopped = conn.resume(input).await;
                    if let Some(closing) = conn.end(stopped, guard) {
                        closing.await;
                    }
                }
                Err(error) => conn.leave(Close::Lost(error.to_string())),
            }
        },
        runtime,
    );
}
