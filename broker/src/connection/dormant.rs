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

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Wake, Waker};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use parking_lot::Mutex;

use super::{Close, Connection, ConnectionCount};

/// Ticks of the broker's deadline wheels (250 ms each) a connection stays idle before it goes
/// to sleep, so a busy connection is not put to sleep between two messages.
pub(super) const SLEEP_AFTER_TICKS: u64 = 4;

/// A sleeping connection: its state, its socket out of the runtime, and its share of the
/// broker's connection count.
pub(super) struct Asleep {
    conn: Connection<std::net::TcpStream>,
    guard: ConnectionCount,
}

/// One sleeping connection, and the waker that wakes it (a raise of its signal, or this
/// module's thread when its socket becomes readable). Emptied by the first wake.
struct Sleeper {
    token: usize,
    asleep: Mutex<Option<Asleep>>,
}

/// The broker-wide watch over sleeping connections' sockets.
struct Dormancy {
    registry: Registry,
    sleepers: Mutex<Sleepers>,
}

/// Sleeping connections by `mio` token.
#[derive(Default)]
struct Sleepers {
    slots: Vec<Option<Arc<Sleeper>>>,
    vacant: Vec<usize>,
}

impl Sleepers {
    fn insert(&mut self, make: impl FnOnce(usize) -> Arc<Sleeper>) -> Arc<Sleeper> {
        let token = self.vacant.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let sleeper = make(token);
        self.slots[token] = Some(Arc::clone(&sleeper));
        sleeper
    }

    fn remove(&mut self, token: usize) {
        if let Some(slot @ Some(_)) = self.slots.get_mut(token) {
            *slot = None;
            self.vacant.push(token);
        }
    }
}

/// The process's dormancy, its thread started on first use; `None` if `epoll` or the thread
/// could not be had (then connections stay awake).
fn dormancy() -> Option<&'static Arc<Dormancy>> {
    static DORMANCY: OnceLock<Option<Arc<Dormancy>>> = OnceLock::new();
    DORMANCY
        .get_or_init(|| match start() {
            Ok(dormancy) => Some(dormancy),
            Err(error) => {
                tracing::warn!(%error, "idle connections cannot sleep; they stay awake");
                None
            }
        })
        .as_ref()
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
            let sleeper = dormancy
                .sleepers
                .lock()
                .slots
                .get(event.token().0)
                .cloned()
                .flatten();
            // A token reused since the event was queued wakes another sleeper, which finds
            // nothing to read and goes back to sleep: harmless.
            if let Some(sleeper) = sleeper {
                sleeper.wake_up();
            }
        }
    }
}

impl Sleeper {
    /// Takes the connection out (the first wake does; later ones find nothing) and wakes it.
    fn wake_up(&self) {
        let Some(asleep) = self.asleep.lock().take() else {
            return;
        };
        asleep.conn.broker.asleep.fetch_sub(1, Ordering::Relaxed);
        if let Some(dormancy) = dormancy() {
            // Not registered if going to sleep failed half-way: nothing to undo then.
            let fd = asleep.conn.stream.as_raw_fd();
            let _ = dormancy.registry.deregister(&mut SourceFd(&fd));
            dormancy.sleepers.lock().remove(self.token);
        }
        wake(asleep);
    }
}

impl Wake for Sleeper {
    fn wake(self: Arc<Self>) {
        self.wake_up();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_up();
    }
}

/// Puts an idle connection to sleep; it wakes up as soon as anything would have woken its task.
pub(super) fn sleep(conn: Connection<std::net::TcpStream>, guard: ConnectionCount) {
    conn.broker
        .runtime
        .get_or_init(tokio::runtime::Handle::current);
    let asleep = Asleep { conn, guard };
    let Some(dormancy) = dormancy() else {
        return wake(asleep);
    };
    let sleeper = dormancy.sleepers.lock().insert(|token| {
        Arc::new(Sleeper {
            token,
            asleep: Mutex::new(None),
        })
    });
    // Both wake paths are set up under the sleeper's lock, with the connection not yet in it:
    // a wake that comes meanwhile waits for the lock and then finds the connection, so it is
    // neither lost nor able to wake a connection whose socket is still being registered.
    let mut slot = sleeper.asleep.lock();
    let signal = Arc::clone(&asleep.conn.attached.signal);
    let raised = signal.register(&Waker::from(Arc::clone(&sleeper)));
    let fd = asleep.conn.stream.as_raw_fd();
    let registered =
        dormancy
            .registry
            .register(&mut SourceFd(&fd), Token(sleeper.token), Interest::READABLE);
    if let Err(error) = &registered {
        tracing::warn!(%error, "an idle connection could not go to sleep");
    }
    asleep.conn.broker.asleep.fetch_add(1, Ordering::Relaxed);
    *slot = Some(asleep);
    drop(slot);
    // `mio` registers edge-triggered, and `epoll` reports a socket that is readable already
    // when it is added, so input that came before the registration is not missed either.
    if raised || registered.is_err() {
        sleeper.wake_up();
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
    let Asleep { mut conn, guard } = asleep;
    conn.stamp_activity();
    let broker = Arc::clone(&conn.broker);
    let Some(runtime) = broker.runtime.get() else {
        // Only a connection that went to sleep can wake, and going to sleep sets the runtime.
        return conn.leave(Close::Lost("no runtime to wake up on".into()));
    };
    // Spawned even after the runtime has shut down: the task is then dropped at once, which
    // closes the socket.
    broker.tasks.spawn_on(
        async move {
            let (mut conn, std_stream) = conn.replace_stream(());
            let input = conn.read_asleep(&std_stream);
            match tokio::net::TcpStream::from_std(std_stream) {
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
