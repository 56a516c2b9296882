//! One client connection: the CONNECT handshake, then a loop that reads and handles packets,
//! writes what the session has queued, enforces Keep Alive, and closes with the right reason.
//!
//! One task owns the socket. Publishers never write to it: they queue on the session and wake
//! this task, which drains the queue into one vectored write. A slow client therefore only
//! slows itself, and its queue is bounded. A connection idle for a second goes to sleep
//! without a task (see `dormant`) and continues in a new one when anything would have woken
//! it.

mod close;
mod dormant;
mod handshake;
mod inbound;
mod outbound;
mod peer;
mod run;
mod transport;

use close::reason_for;
pub use close::Close;
pub use transport::{Layered, OverSocket, Transport};

use peer::Peer;
use run::PublishRun;

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use prometheus::IntCounter;
use tokio::io::AsyncWriteExt;

use crate::codec::{ByteString, Decoded, Decoder, Packet, ProtocolVersion, Publish, Will};
use crate::delivery::Outbox;
use crate::pool;
use crate::server::{Attached, Broker, Stats};
use crate::session::Events;

/// Bytes the read buffer grows by when it runs low.
const READ_CHUNK: usize = 8 * 1024;
/// Free space below which the read buffer grows before a read.
const MIN_READ_ROOM: usize = 512;
/// How long a client has to send CONNECT after the TCP connection opens.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may take to write its DISCONNECT.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How the connection loop stopped.
enum Stopped {
    Closed(Close),
    /// Idle long enough to go to sleep (see [`dormant`]).
    Idle,
}

/// A connected, accepted client.
struct Connection<S> {
    broker: Arc<Broker>,
    stream: S,
    peer: Peer,
    rbuf: BytesMut,
    /// Everything to be written: control packets, PUBLISH heads and shared payloads.
    outbox: Outbox,
    decoder: Decoder,
    version: ProtocolVersion,
    attached: Attached,
    /// Boxed: most clients set none, and inline it would be a third of every connection.
    will: Option<Box<Will>>,
    /// Keep Alive in seconds, 0 for none (the server's, if it set one).
    keep_alive_secs: u16,
    last_received: Instant,
    /// The tick of the Keep Alive deadline filed with the broker's wheel, until it fires.
    keep_alive_entry: Option<NonZeroU64>,
    /// The tick of the sleep deadline filed with the broker's wheel, until it fires.
    sleep_entry: Option<NonZeroU64>,
    /// The deadline wheels' tick when the client last sent something or a message came for
    /// it; 0 until then. Idle for [`dormant::SLEEP_AFTER_TICKS`] since, it goes to sleep.
    active_tick: u64,
    /// A write is under way: the outbox holds bytes not yet on the wire.
    writing: bool,
    /// The last collect left messages that could be sent at once.
    collect_more: bool,
    /// Client asked for Reason Strings and User Properties on errors (Request Problem Information).
    problem_information: bool,
    /// Session Expiry Interval the client connected with (DISCONNECT may not raise it from 0).
    connect_expiry: u32,
    /// Topic Aliases the client set (5.0). Boxed for size: most clients set none, and an
    /// empty map inline is 48 bytes of every connection, the box 8.
    #[allow(clippy::box_collection)]
    inbound_aliases: Option<Box<HashMap<u16, ByteString>>>,
    /// This listener's PUBLISH counter, resolved once per listener.
    listener_publishes: IntCounter,
}

/// Serves one client connection to completion.
///
/// The handshake and the close run once per connection: boxed, their state is freed when
/// they finish instead of widening the task that lives as long as the connection (about a
/// kilobyte and a half of every idle connection's memory when they were inline). The
/// handshake is boxed before the task's future is made, so the arguments live only in it:
/// an `async fn` keeps room for its arguments for its whole life.
pub fn serve<S>(
    broker: Arc<Broker>,
    stream: S,
    peer: SocketAddr,
    listener_publishes: IntCounter,
) -> impl Future<Output = ()> + Send
where
    S: Transport + 'static,
{
    let guard = ConnectionCount::new(&broker);
    let handshake = Box::pin(handshake(broker, stream, peer, listener_publishes));
    async move {
        let Some(mut conn) = handshake.await else {
            return;
        };
        let stopped = conn.run().await;
        if let Some(closing) = conn.end(stopped, guard) {
            closing.await;
        }
    }
}

/// Reads the CONNECT and accepts or refuses it.
async fn handshake<S: Transport>(
    broker: Arc<Broker>,
    mut stream: S,
    peer: SocketAddr,
    listener_publishes: IntCounter,
) -> Option<Connection<S>> {
    let mut rbuf = BytesMut::new();
    let mut decoder = Decoder::new(broker.settings().limits.max_packet_size);
    let connect = match read_connect(&mut stream, &mut rbuf, &mut decoder, &broker).await {
        Ok(Some(connect)) => connect,
        Ok(None) => return None,
        Err(reason) => {
            tracing::info!(%peer, %reason, "connection refused before CONNECT was accepted");
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
            return None;
        }
    };
    handshake::accept(
        broker,
        stream,
        peer,
        rbuf,
        decoder,
        *connect,
        listener_publishes,
    )
    .await
}

/// Reads until a whole CONNECT is decoded. Answers a bad CONNECT with the CONNACK the
/// specification allows, then gives the reason as an error. Like every read, it takes a read
/// buffer from the pool only once the socket is readable, and gives it back if nothing follows
/// the CONNECT, so a connection storm needs few buffers at once.
async fn read_connect<S: Transport>(
    stream: &mut S,
    rbuf: &mut BytesMut,
    decoder: &mut Decoder,
    broker: &Broker,
) -> Result<Option<Box<crate::codec::Connect>>, String> {
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    loop {
        tokio::select! {
            ready = poll_fn(|cx| stream.poll_read_ready(cx)) => if ready.is_err() {
                return Ok(None);
            },
            _ = tokio::time::sleep_until(deadline) => return Err("no CONNECT within the connect timeout".into()),
            _ = broker.shutdown.cancelled() => return Ok(None),
        }
        match read_pooled(stream, rbuf, &broker.stats) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            // A spurious readiness (a new socket often reports one): the buffer goes back
            // before the next wait, or every handshake of a storm would hold one while it
            // waits for its CONNECT.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                release_if_empty(rbuf);
                continue;
            }
            Err(_) => return Ok(None),
        }
        let level = handshake::sniff_level(rbuf);
        let decoded = decoder.decode(rbuf);
        release_if_empty(rbuf);
        match decoded {
            Ok(Some(Packet::Connect(connect))) => return Ok(Some(connect)),
            Ok(Some(_)) => return Err("first packet was not CONNECT".into()),
            Ok(None) => {}
            Err(error) => {
                handshake::refuse_malformed(stream, level, &error, &broker.stats).await;
                broker.stats.refused(error.reason_code());
                return Err(error.to_string());
            }
        }
    }
}

/// Reads what `stream` has without waiting, into `rbuf`, which is taken from the pool if the
/// connection holds none and grown if nearly full; counts the bytes read.
fn read_pooled<S: Transport>(
    stream: &mut S,
    rbuf: &mut BytesMut,
    stats: &Stats,
) -> io::Result<usize> {
    read_into_pooled(rbuf, stats, |rbuf| stream.try_read_buf(rbuf))
}

/// The buffer handling of every read: takes a read buffer from the pool if the connection
/// holds none, grows it if nearly full, lets `read` append to it, and counts the bytes read.
fn read_into_pooled(
    rbuf: &mut BytesMut,
    stats: &Stats,
    read: impl FnOnce(&mut BytesMut) -> io::Result<usize>,
) -> io::Result<usize> {
    if rbuf.capacity() == 0 {
        *rbuf = pool::read_buffers().take();
    }
    if rbuf.capacity() - rbuf.len() < MIN_READ_ROOM {
        rbuf.reserve(READ_CHUNK);
    }
    let n = read(rbuf)?;
    Stats::add(&stats.bytes_received, n as u64);
    Ok(n)
}

/// Returns a read buffer to the pool when no partial packet is waiting in it, so an idle
/// connection holds none.
fn release_if_empty(rbuf: &mut BytesMut) {
    if rbuf.is_empty() && rbuf.capacity() > 0 {
        pool::read_buffers().put(std::mem::take(rbuf));
    }
}

impl<S> Connection<S>
where
    S: Transport,
{
    /// The client identifier, the session's.
    fn client_id(&self) -> &ByteString {
        &self.attached.session.client_id
    }

    /// Queues a control packet for the next write.
    fn send(&mut self, packet: &Packet) {
        self.outbox.send(packet);
    }

    /// Serves the connection from its CONNACK until it closes or goes to sleep.
    async fn run(&mut self) -> Stopped {
        // Clients need not wait for CONNACK (section 3.1.4): packets that arrived in the same
        // reads as CONNECT are already buffered, and no further read may ever come for them.
        if let Err(close) = self.handle_buffered() {
            return Stopped::Closed(close);
        }
        release_if_empty(&mut self.rbuf);
        // Shutdown raises SHUTDOWN on attached connections; one that attached after that
        // sweep sees the cancel here (see `Broker::begin_shutdown`).
        if self.broker.shutdown.is_cancelled() {
            return Stopped::Closed(Close::ServerShutdown);
        }
        self.schedule_keep_alive();
        self.serve_loop().await
    }

    /// Continues a connection that slept, handling first what [`Connection::read_asleep`]
    /// read: what the client sent while the connection slept comes before whatever woke it
    /// (a takeover or shutdown must not discard a PUBLISH that arrived before it).
    async fn resume(&mut self, input: io::Result<usize>) -> Stopped {
        match input {
            Ok(0) => return Stopped::Closed(Close::Lost("connection closed by client".into())),
            Ok(_) => {
                self.last_received = Instant::now();
                if let Err(close) = self.handle_buffered() {
                    return Stopped::Closed(close);
                }
                release_if_empty(&mut self.rbuf);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Stopped::Closed(Close::Lost(error.to_string())),
        }
        self.serve_loop().await
    }

    /// Writes what the session has for the client, reads what the client sends, and waits
    /// when there is neither, until the connection closes or has been idle long enough to go
    /// to sleep. A connection that wakes up continues here.
    async fn serve_loop(&mut self) -> Stopped {
        let signal = Arc::clone(&self.attached.signal);
        loop {
            // A client that stops reading blocks the write: shutdown must not wait for it
            // (the outbox's write is cancel-safe, so finish() can still try to flush), and
            // neither must Keep Alive, or a client that neither reads nor sends would hold its
            // connection for ever.
            let flushed = poll_fn(|cx| {
                if let Poll::Ready(flushed) = self.poll_flush(cx) {
                    return Poll::Ready(flushed.map(|()| None));
                }
                signal
                    .poll_take(cx, Events::SHUTDOWN.union(Events::KEEP_ALIVE))
                    .map(|events| Ok(Some(events)))
            })
            .await;
            match flushed {
                Err(close) => return Stopped::Closed(close),
                Ok(Some(events)) => {
                    if let Err(close) = self.on_events(events) {
                        return Stopped::Closed(close);
                    }
                    // Back to writing.
                    continue;
                }
                Ok(None) => {}
            }
            if self.should_sleep() {
                return Stopped::Idle;
            }
            // Idle: wait for the signal or the socket. Nothing is held across this wait but
            // the wakers the signal and the socket keep in place.
            let woken = poll_fn(|cx| {
                if let Poll::Ready(events) = signal.poll_take(cx, Events::ALL) {
                    return Poll::Ready(Ok(Some(events)));
                }
                self.stream.poll_read_ready(cx).map_ok(|()| None)
            })
            .await;
            let handled = match woken {
                Err(error) => Err(Close::Lost(error.to_string())),
                Ok(Some(events)) => {
                    if events.contains(Events::SESSION) {
                        self.stamp_activity();
                    }
                    self.on_events(events)
                }
                Ok(None) => {
                    self.stamp_activity();
                    self.read_ready()
                }
            };
            if let Err(close) = handled {
                return Stopped::Closed(close);
            }
        }
    }

    /// Whether the idle connection should go to sleep now: it can, and has been idle for
    /// [`dormant::SLEEP_AFTER_TICKS`] or has done nothing since its handshake (a connection
    /// storm's clients mostly stay idle). Otherwise files a sleep deadline, so that it is
    /// woken to look again once it could have been idle that long.
    fn should_sleep(&mut self) -> bool {
        // A partial packet waits in the read buffer only while its rest is on the way.
        if !self.stream.can_sleep() || !self.rbuf.is_empty() || !dormant::available() {
            return false;
        }
        let wheel = &self.broker.sleep_deadlines;
        let due = self.active_tick + dormant::SLEEP_AFTER_TICKS;
        let now = wheel.reached();
        if self.active_tick == 0 || now >= due {
            return true;
        }
        if self.sleep_entry.is_none() {
            self.sleep_entry =
                NonZeroU64::new(wheel.schedule_ticks(due - now, &self.attached.signal));
        }
        false
    }

    /// Ends the connection once its loop stops: puts it to sleep, or returns its close to
    /// run. Boxed, the close is not part of the task that lives as long as the connection.
    fn end(
        self,
        stopped: Stopped,
        guard: ConnectionCount,
    ) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>>
    where
        S: 'static,
    {
        match stopped {
            Stopped::Closed(close) => Some(Box::pin(async move {
                self.finish(close).await;
                drop(guard);
            })),
            Stopped::Idle => {
                let (mut conn, stream) = self.replace_stream(());
                if let Some(tick) = conn.sleep_entry.take() {
                    conn.broker
                        .sleep_deadlines
                        .cancel(tick.get(), &conn.attached.signal);
                }
                match stream.into_std() {
                    Ok(stream) => dormant::sleep(conn, stream, guard),
                    Err(error) => conn.leave(Close::Lost(error.to_string())),
                }
                None
            }
        }
    }

    /// Acts on raised events: shutdown closes, Keep Alive is checked. SESSION needs nothing
    /// here: the next flush looks at the session; nor does IDLE: the next idle turn of the
    /// loop decides whether to sleep.
    fn on_events(&mut self, events: Events) -> Result<(), Close> {
        if events.contains(Events::SHUTDOWN) {
            return Err(Close::ServerShutdown);
        }
        if events.contains(Events::IDLE) {
            self.sleep_entry = None;
        }
        if events.contains(Events::KEEP_ALIVE) {
            self.keep_alive_entry = None;
            self.keep_alive_fired()?;
        }
        Ok(())
    }

    /// Files the Keep Alive deadline as of the last packet with the broker's wheel.
    fn schedule_keep_alive(&mut self) {
        if let Some(limit) = self.keep_alive_limit() {
            let entry = self
                .broker
                .keep_alive
                .schedule(self.last_received + limit, &self.attached.signal);
            self.keep_alive_entry = NonZeroU64::new(entry);
        }
    }

    /// How long the client may stay silent: one and a half times its Keep Alive
    /// [MQTT-3.1.2-24]; `None` when Keep Alive is off.
    fn keep_alive_limit(&self) -> Option<Duration> {
        let keep_alive = Duration::from_secs(u64::from(self.keep_alive_secs));
        (self.keep_alive_secs > 0).then(|| keep_alive + keep_alive / 2)
    }

    /// The Keep Alive deadline passed. Closes the connection if nothing has come from the
    /// client in time [MQTT-3.1.2-24]; else files the deadline as of the last packet. Packets
    /// that wait unread because a write to a slow reader was blocked are read first, so a
    /// client that is alive but reads slowly is not mistaken for a dead one.
    fn keep_alive_fired(&mut self) -> Result<(), Close> {
        let Some(limit) = self.keep_alive_limit() else {
            return Ok(());
        };
        if Instant::now() >= self.last_received + limit {
            self.read_ready()?;
        }
        if Instant::now() >= self.last_received + limit {
            return Err(Close::KeepAliveTimeout);
        }
        self.schedule_keep_alive();
        Ok(())
    }

    /// Reads what the socket has, into a read buffer taken from the pool only now that there
    /// is something to read, handles every whole packet, and gives the buffer back once it
    /// holds no partial packet: an idle connection holds no read buffer.
    fn read_ready(&mut self) -> Result<(), Close> {
        match read_pooled(&mut self.stream, &mut self.rbuf, &self.broker.stats) {
            Ok(0) => return Err(Close::Lost("connection closed by client".into())),
            Ok(_) => {
                self.last_received = Instant::now();
                self.handle_buffered()?;
            }
            // A spurious readiness: the next `readable()` waits again.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(Close::Lost(error.to_string())),
        }
        release_if_empty(&mut self.rbuf);
        Ok(())
    }

    /// Decodes and handles every whole packet in the read buffer. Every PUBLISH of the read
    /// is decoded into one `Publish` on this stack frame (not in the connection, which would
    /// carry its 250 bytes while idle), whose contents each message takes.
    fn handle_buffered(&mut self) -> Result<(), Close> {
        let mut run = PublishRun::default();
        let mut publish = Publish::default();
        let result = loop {
            let handled = match self.decoder.decode_reusing(&mut self.rbuf, &mut publish) {
                Ok(Some(Decoded::Publish)) => self.on_publish(&mut publish, &mut run),
                Ok(Some(Decoded::Other(packet))) => self.handle(packet, &mut run),
                Ok(None) => break Ok(()),
                Err(error) => break Err(Close::violation(reason_for(&error), error.to_string())),
            };
            if let Err(close) = handled {
                break Err(close);
            }
        };
        // What was received before a packet that closes the connection is still delivered.
        run.flush(&self.broker);
        result
    }
}

impl<S> Connection<S> {
    /// The same connection on another stream, and the stream it had.
    fn replace_stream<T>(self, stream: T) -> (Connection<T>, S) {
        let Connection {
            broker,
            stream: old,
            peer,
            rbuf,
            outbox,
            decoder,
            version,
            attached,
            will,
            keep_alive_secs,
            last_received,
            keep_alive_entry,
            sleep_entry,
            active_tick,
            writing,
            collect_more,
            problem_information,
            connect_expiry,
            inbound_aliases,
            listener_publishes,
        } = self;
        let conn = Connection {
            broker,
            stream,
            peer,
            rbuf,
            outbox,
            decoder,
            version,
            attached,
            will,
            keep_alive_secs,
            last_received,
            keep_alive_entry,
            sleep_entry,
            active_tick,
            writing,
            collect_more,
            problem_information,
            connect_expiry,
            inbound_aliases,
            listener_publishes,
        };
        (conn, old)
    }

    /// Reads what the socket of a waking connection has, straight from the socket (the
    /// runtime, which it has just rejoined, has not yet polled it); `WouldBlock` when nothing
    /// came, `Ok(0)` at the end of the stream. A read buffer is taken only when there is
    /// something to read.
    fn read_asleep(&mut self, stream: &std::net::TcpStream) -> io::Result<usize> {
        use std::io::Read;
        if stream.peek(&mut [0; 1])? == 0 {
            return Ok(0);
        }
        read_into_pooled(&mut self.rbuf, &self.broker.stats, |rbuf| {
            let start = rbuf.len();
            rbuf.resize(rbuf.capacity(), 0);
            let read = (&*stream).read(&mut rbuf[start..]);
            rbuf.truncate(start + read.as_ref().map_or(0, |&n| n));
            read
        })
    }

    /// Notes that the client sent something or something came for it, as of the deadline
    /// wheels' last tick (never 0, which means never).
    fn stamp_activity(&mut self) {
        self.active_tick = self.broker.sleep_deadlines.reached().max(1);
    }
}

/// Keeps the broker's count of open connections right on every exit path.
struct ConnectionCount(Arc<Broker>);

impl ConnectionCount {
    fn new(broker: &Arc<Broker>) -> Self {
        broker
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ConnectionCount(Arc::clone(broker))
    }

    fn broker(&self) -> &Arc<Broker> {
        &self.0
    }
}

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0
            .connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task of a connection is what an idle connection costs the broker beyond its
    /// session, so its size is a budget (issue #4: bytes per idle connection). Tokio adds
    /// about 104 bytes of header and trailer and rounds the task up to 128 bytes, so 400
    /// keeps it in 512. The handshake, the close, the write in progress and the waits are
    /// kept out of it; this fails if one of them, or another large value, ends up held across
    /// the loop's awaits again.
    #[tokio::test]
    async fn an_idle_connection_task_stays_within_its_budget() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let broker = Broker::new(Default::default()).unwrap();
        let counter = IntCounter::new("probe", "probe").unwrap();
        let task = serve(broker, stream, addr, counter);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 400, "connection task is {size} bytes (budget 400)");
    }
}
