//! `loadgen`: end-to-end MQTT load generator (issue #4).
//!
//! Drives a broker over loopback TCP with its own minimal MQTT 3.1.1 client built on
//! `ferrumq_broker::codec` and reports one line (or one JSON object with `--json`) per run:
//! messages per second, latency p50/p99/p999, broker CPU seconds and peak RSS (read from
//! `/proc/<broker-pid>`), and for the connection storm the connection rate and broker memory
//! per idle connection.
//!
//! # Scenarios
//!
//! - `fanout`: 1 publisher, 1000 subscribers on one topic (QoS 0); rate = deliveries/s.
//! - `fanin`: 100 publishers on `bench/fanin/<i>`, 1 subscriber on `bench/fanin/+` (QoS 0).
//! - `p2p`: 100 pairs, publisher `i` to `bench/p2p/<i>`, subscriber `i` on it (QoS 0).
//! - `qos1`: 10 pairs, QoS 1 publishes with at most 16 unacknowledged per publisher
//!   (window 16); subscribers subscribe with QoS 1 and acknowledge. Rate = PUBACKs/s received
//!   by the publishers; latency is publish-to-subscriber delivery.
//! - `storm`: open 10,000 connections (CONNECT → CONNACK) as fast as possible with 256 in
//!   flight; rate = CONNACKs/s; latency = CONNECT-to-CONNACK; then memory per idle connection
//!   = (broker VmRSS with the connections idle for 2 s − VmRSS before) / connections.
//!
//! Without `--rate` (QoS 0) publishers send batches of 32 messages per `write_all` as fast as
//! they can while staying at most 256 messages (fan-out: 64 messages, i.e. 64,000 deliveries)
//! ahead of what their receivers got, judged by a sequence number in payload bytes 8..16; they
//! wait at most 100 ms for that (QoS 0 messages may be dropped). This closed loop makes the
//! offered load follow the broker's delivery rate: an open-loop flood only fills socket
//! buffers (seconds of queueing latency) and starves the subscribers of the shared CPUs.
//! With `--rate R` the total publish rate over all publishers is R messages/s (each publisher
//! sends R/publishers per second on a fixed schedule). QoS 1 is bounded by its window.
//!
//! # Measurement
//!
//! Publishers start after every subscription is acknowledged; the measurement window starts
//! `--warmup-secs` later and lasts `--duration-secs`. Messages are counted when received inside
//! the window. Latency = receive time − the send timestamp carried in the first 8 bytes of
//! the payload (nanoseconds, big-endian, since a process-wide `Instant` origin, so publisher
//! and subscriber share one monotonic clock). Broker CPU = utime+stime delta from
//! `/proc/PID/stat` over the window (USER_HZ = 100 on Linux); peak RSS = `VmHWM` of
//! `/proc/PID/status` at the end (the process lifetime peak: start a fresh broker per run).
//!
//! # Client overhead (what the load generator itself costs per message)
//!
//! - Publish: one PUBLISH packet is encoded once with the broker's codec as a template; each
//!   message is a copy of that template (~80 bytes for a 64-byte payload) into the batch
//!   buffer with the 8-byte timestamp (and for QoS 1 the packet id) patched in place: no
//!   allocation, one clock read, and one `write` syscall per 32 messages (flood) or per message
//!   (fixed rate, QoS 1).
//! - Receive: one `read` syscall per up to 64 KiB of input, then `Decoder::decode` per packet
//!   (zero-copy `Bytes` split of the payload, UTF-8 check of the topic, no payload copy), one
//!   clock read, one histogram increment and one relaxed `fetch_max` of the sequence number; QoS 1 subscribers encode one PUBACK per message
//!   and write them once per read.
//! - Histogram: log-linear, 32 sub-buckets per power of two (≤ 3.2 % relative error).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use clap::{Parser, ValueEnum};
use ferrumq_benches::publish_scan::{self, Scan};
use ferrumq_broker::codec::{
    encode, ByteString, Connect, ConnectProperties, Decoder, Packet, ProtocolVersion, PubResponse,
    Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{sleep, sleep_until, timeout_at};

const V: ProtocolVersion = ProtocolVersion::V3_1_1;
const MAX_PACKET: u32 = 1024 * 1024;
/// Keep-alive sent in CONNECT: longer than any run, so no PINGREQ is ever needed.
const KEEP_ALIVE: u16 = 300;
/// Messages per `write_all` when publishing without a fixed rate.
const FLOOD_BATCH: u64 = 32;
/// Source addresses used round-robin (127.0.0.1 ..= 127.0.0.16) so that 10k+ connections per
/// run, over many runs, never exhaust one address's ephemeral ports.
const SOURCE_ADDRS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Fanout,
    Fanin,
    P2p,
    Qos1,
    Storm,
}

#[derive(Debug, Parser)]
#[command(name = "loadgen", about = "FerrumQ end-to-end MQTT load generator")]
struct Cli {
    #[arg(long, default_value = "127.0.0.1")]
    host: Ipv4Addr,
    #[arg(long, default_value_t = 1883)]
    port: u16,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Length of the measurement window (for `storm`: the time bound of the connecting phase).
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Publishing time before the measurement window starts.
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// Fixed total publish rate in messages/s over all publishers (default: as fast as possible).
    #[arg(long)]
    rate: Option<u64>,
    /// Payload size in bytes (at least 8: the timestamp).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Broker process id, for CPU seconds and RSS from /proc.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Subscribers (fanout), publishers (fanin), pairs (p2p, qos1) or connections (storm);
    /// default: the counts (1000, 100, 100, 10, 10000).
    #[arg(long)]
    clients: Option<usize>,
    /// Unacknowledged QoS 1 publishes per publisher.
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Connections in flight during the storm.
    #[arg(long, default_value_t = 256)]
    storm_concurrency: usize,
    /// Upper bound on messages any one publisher sends (every loop is bounded in count and time).
    #[arg(long, default_value_t = 100_000_000)]
    max_messages: u64,
    /// Print one JSON object instead of a text line.
    #[arg(long)]
    json: bool,
}

// ---------------------------------------------------------------------------------------------
// Clock

static ORIGIN: OnceLock<Instant> = OnceLock::new();

fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    origin().elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// Histogram

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
const LINEAR: u64 = (SUB as u64) * 2;
const BUCKETS: usize = LINEAR as usize + (64 - 6) * SUB;

/// Log-linear latency histogram in nanoseconds.
#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    total: u64,
}

impl Hist {
    fn new() -> Self {
        Hist {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < LINEAR {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS;
        LINEAR as usize + (msb as usize - 6) * SUB + ((v >> shift) as usize & (SUB - 1))
    }

    /// Upper bound of a bucket's values.
    fn value(i: usize) -> u64 {
        if i < LINEAR as usize {
            return i as u64;
        }
        let j = i - LINEAR as usize;
        let msb = (j / SUB) as u32 + 6;
        let sub = (j % SUB) as u64;
        let shift = msb - SUB_BITS;
        ((SUB as u64 + sub) << shift) + (1u64 << shift) - 1
    }

    fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
    }

    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
    }

    fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::value(i));
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

/// utime + stime of `pid` in seconds.
fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// A `kB` field of /proc/PID/status, in bytes.
fn status_bytes(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ---------------------------------------------------------------------------------------------
// Minimal MQTT 3.1.1 client

struct Client {
    stream: TcpStream,
    inbuf: BytesMut,
    dec: Decoder,
}

fn source_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        1 + (i % SOURCE_ADDRS as usize) as u8,
    ))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn enc(p: &Packet, out: &mut BytesMut) -> io::Result<()> {
    encode(p, V, out).map_err(|e| invalid(format!("encode: {e}")))
}

impl Client {
    /// Connects from source address `source_addr(n)`, sends CONNECT (clean session) and waits
    /// for CONNACK until `deadline`.
    async fn connect(
        addr: SocketAddr,
        n: usize,
        client_id: String,
        deadline: tokio::time::Instant,
    ) -> io::Result<Client> {
        let sock = TcpSocket::new_v4()?;
        if addr.ip().is_loopback() {
            sock.bind(SocketAddr::new(source_addr(n), 0))?;
        }
        let stream = timeout_at(deadline, sock.connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP connect"))??;
        stream.set_nodelay(true)?;
        let mut c = Client {
            stream,
            inbuf: BytesMut::with_capacity(4096),
            dec: Decoder::with_version(V, MAX_PACKET),
        };
        let connect = Packet::Connect(Box::new(Connect {
            protocol: V,
            clean_start: true,
            keep_alive: KEEP_ALIVE,
            client_id: ByteString::from(client_id),
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        }));
        c.send(&connect).await?;
        match c.next(deadline).await? {
            Packet::ConnAck(ack) if ack.reason_code == ReasonCode::Success => Ok(c),
            Packet::ConnAck(ack) => Err(invalid(format!("CONNACK {:?}", ack.reason_code))),
            p => Err(invalid(format!(
                "expected CONNACK, got {:?}",
                p.packet_type()
            ))),
        }
    }

    async fn send(&mut self, p: &Packet) -> io::Result<()> {
        let mut out = BytesMut::with_capacity(128);
        enc(p, &mut out)?;
        self.stream.write_all(&out).await
    }

    /// The next packet, reading until `deadline`.
    async fn next(&mut self, deadline: tokio::time::Instant) -> io::Result<Packet> {
        // Bounded: each iteration either returns or reads at least one byte before `deadline`.
        loop {
            if let Some(p) = self
                .dec
                .decode(&mut self.inbuf)
                .map_err(|e| invalid(format!("decode: {e}")))?
            {
                return Ok(p);
            }
            let n = timeout_at(deadline, self.stream.read_buf(&mut self.inbuf))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "waiting for a packet"))??;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "broker closed",
                ));
            }
        }
    }

    async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        deadline: tokio::time::Instant,
    ) -> io::Result<()> {
        let sub = Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![(
                ByteString::from(filter.to_string()),
                SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            )],
            ..Default::default()
        });
        self.send(&sub).await?;
        match self.next(deadline).await? {
            Packet::SubAck(ack) if ack.reason_codes.iter().all(|r| r.as_u8() < 0x80) => Ok(()),
            Packet::SubAck(ack) => Err(invalid(format!("SUBACK {:?}", ack.reason_codes))),
            p => Err(invalid(format!(
                "expected SUBACK, got {:?}",
                p.packet_type()
            ))),
        }
    }
}

/// A PUBLISH encoded once by the codec; messages are copies with the timestamp (and packet id)
/// patched in place.
struct Template {
    bytes: Vec<u8>,
    ts_at: usize,
    pid_at: Option<usize>,
}

impl Template {
    fn new(topic: &str, qos: QoS, payload: usize) -> io::Result<Template> {
        let payload_len = payload.max(16);
        let p = Packet::Publish(Publish {
            qos,
            topic: ByteString::from(topic.to_string()),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { 1 },
            payload: vec![0u8; payload_len].into(),
            ..Default::default()
        });
        let mut out = BytesMut::new();
        enc(&p, &mut out)?;
        let ts_at = out.len() - payload_len;
        let pid_at = (qos != QoS::AtMostOnce).then(|| ts_at - 2);
        Ok(Template {
            bytes: out.to_vec(),
            ts_at,
            pid_at,
        })
    }

    fn put(&self, out: &mut BytesMut, packet_id: u16, seq: u64) {
        let start = out.len();
        out.put_slice(&self.bytes);
        let at = start + self.ts_at;
        out[at..at + 8].copy_from_slice(&now_ns().to_be_bytes());
        out[at + 8..at + 16].copy_from_slice(&seq.to_be_bytes());
        if let Some(at) = self.pid_at {
            out[start + at..start + at + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Run plumbing

/// Times shared by every task of a run (nanoseconds since the origin).
#[derive(Clone, Copy)]
struct Window {
    /// Publishers stop and subscribers stop counting here.
    end_ns: u64,
    start_ns: u64,
    end: tokio::time::Instant,
}

impl Window {
    fn contains(&self, t: u64) -> bool {
        t >= self.start_ns && t < self.end_ns
    }
}

/// Without `--rate`, a publisher may run at most this many messages ahead of its receivers.
const BACKLOG_P2P: u64 = 256;
const BACKLOG_FANOUT: u64 = 64;
/// ... but never waits longer than this for them (QoS 0 messages may be dropped).
const MAX_STALL: Duration = Duration::from_millis(100);

/// Highest sequence number + 1 received, per publisher (p2p, fanin) or per subscriber (fanout).
struct Progress {
    slots: Vec<AtomicU64>,
    backlog: u64,
}

/// Which progress slot a subscriber updates.
#[derive(Clone, Copy)]
enum Slot {
    Fixed(usize),
    /// The publisher index at the end of the topic (fan-in).
    TopicSuffix,
}

/// Which progress slots a publisher waits on.
#[derive(Clone, Copy)]
enum Watch {
    One(usize),
    /// The slowest subscriber (fan-out).
    Min,
}

impl Progress {
    fn delivered(&self, w: Watch) -> u64 {
        match w {
            Watch::One(i) => self.slots[i].load(Ordering::Relaxed),
            Watch::Min => self
                .slots
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .min()
                .unwrap_or(0),
        }
    }
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    acked: AtomicU64,
    sent: AtomicU64,
    errors: AtomicU64,
}

#[derive(Default)]
struct Report {
    scenario: String,
    clients: usize,
    window_secs: f64,
    messages: u64,
    msgs_per_sec: f64,
    acks_per_sec: Option<f64>,
    sent: u64,
    lat: Option<Hist>,
    cpu_secs: Option<f64>,
    peak_rss: Option<u64>,
    conns_ok: Option<u64>,
    conn_rate: Option<f64>,
    mem_per_conn: Option<f64>,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Receives PUBLISHes until the window ends; counts and times those received inside it.
/// QoS 1 deliveries are acknowledged.
async fn subscriber(
    mut c: Client,
    w: Window,
    ctr: Arc<Counters>,
    progress: Arc<Progress>,
    slot: Slot,
) -> io::Result<Hist> {
    let mut hist = Hist::new();
    let mut acks = BytesMut::with_capacity(4096);
    let mut reads: u64 = 0;
    // Bounded in time (the window end) and count (one iteration per read, at most 10^9).
    while reads < 1_000_000_000 {
        let mut n_in = 0u64;
        // One clock read per read: every message in it reached us at the same moment.
        let now = now_ns();
        let in_window = w.contains(now);
        // PUBLISH packets are found by their framing (publish_scan); anything else goes to
        // the full decoder and is ignored.
        let mut at = 0;
        loop {
            let p = match publish_scan::scan(&c.inbuf[at..])? {
                Scan::Incomplete => break,
                Scan::Other => {
                    c.inbuf.advance(at);
                    at = 0;
                    match c.dec.decode(&mut c.inbuf) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(e) => return Err(invalid(format!("decode: {e}"))),
                    }
                }
                Scan::Publish(p) => p,
            };
            let payload = &c.inbuf[at + p.payload.start..at + p.payload.end];
            if payload.len() >= 16 {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&payload[8..16]);
                let i = match slot {
                    Slot::Fixed(i) => i,
                    Slot::TopicSuffix => {
                        let topic = &c.inbuf[at + p.topic.start..at + p.topic.end];
                        std::str::from_utf8(topic)
                            .ok()
                            .and_then(|t| t.rsplit('/').next())
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(0)
                    }
                };
                if let Some(a) = progress.slots.get(i) {
                    a.fetch_max(u64::from_be_bytes(seq) + 1, Ordering::Relaxed);
                }
            }
            if in_window {
                n_in += 1;
                if payload.len() >= 8 {
                    let mut ts = [0u8; 8];
                    ts.copy_from_slice(&payload[..8]);
                    hist.record(now.saturating_sub(u64::from_be_bytes(ts)));
                }
            }
            if p.qos == 1 {
                enc(
                    &Packet::PubAck(PubResponse {
                        packet_id: p.packet_id,
                        ..Default::default()
                    }),
                    &mut acks,
                )?;
            }
            at += p.len;
        }
        c.inbuf.advance(at);
        if n_in > 0 {
            ctr.received.fetch_add(n_in, Ordering::Relaxed);
        }
        if !acks.is_empty() {
            c.stream.write_all(&acks).await?;
            acks.clear();
        }
        if c.inbuf.capacity() - c.inbuf.len() < 16 * 1024 {
            c.inbuf.reserve(64 * 1024);
        }
        reads += 1;
        match timeout_at(w.end, c.stream.read_buf(&mut c.inbuf)).await {
            Err(_) => break,
            Ok(Ok(0)) => return Err(invalid("broker closed the subscriber".into())),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(hist)
}

/// QoS 0 publisher: as fast as possible in batches, or `per_sec` messages/s on a fixed schedule.
#[allow(clippy::too_many_arguments)]
async fn publisher_qos0(
    mut c: Client,
    t: Template,
    per_sec: Option<f64>,
    w: Window,
    max: u64,
    ctr: Arc<Counters>,
    progress: Arc<Progress>,
    watch: Watch,
) -> io::Result<()> {
    let mut out = BytesMut::with_capacity(t.bytes.len() * FLOOD_BATCH as usize);
    let start = tokio::time::Instant::now();
    let mut sent = 0u64;
    // Bounded by `max` messages and the window end.
    while sent < max && tokio::time::Instant::now() < w.end {
        out.clear();
        match per_sec {
            None => {
                // Closed loop: wait (1 ms steps, at most MAX_STALL) while the receivers are
                // more than `backlog` messages behind, so the offered load tracks what the
                // broker delivers instead of filling socket buffers.
                let stall_until = tokio::time::Instant::now() + MAX_STALL;
                while sent >= progress.delivered(watch) + progress.backlog
                    && tokio::time::Instant::now() < stall_until.min(w.end)
                {
                    sleep(Duration::from_millis(1)).await;
                }
                for _ in 0..FLOOD_BATCH {
                    t.put(&mut out, 0, sent);
                    sent += 1;
                }
            }
            Some(r) => {
                let due = start + Duration::from_secs_f64(sent as f64 / r);
                if due >= w.end {
                    break;
                }
                sleep_until(due).await;
                t.put(&mut out, 0, sent);
                sent += 1;
            }
        }
        match timeout_at(w.end, c.stream.write_all(&out)).await {
            Err(_) => break,
            Ok(r) => r?,
        }
    }
    ctr.sent.fetch_add(sent, Ordering::Relaxed);
    // Keep the connection open until the subscribers stop, so nothing is cut short.
    sleep_until(w.end).await;
    drop(c);
    Ok(())
}

/// QoS 1 publisher with at most `window` unacknowledged PUBLISHes.
async fn publisher_qos1(
    c: Client,
    t: Template,
    window: usize,
    w: Window,
    max: u64,
    ctr: Arc<Counters>,
) -> io::Result<()> {
    let Client {
        stream,
        mut inbuf,
        mut dec,
    } = c;
    let (mut rd, mut wr) = stream.into_split();
    let sem = Arc::new(Semaphore::new(window));
    let sem2 = sem.clone();
    let ctr2 = ctr.clone();
    let reader = tokio::spawn(async move {
        let mut reads = 0u64;
        // Bounded: window end and 10^9 reads.
        while reads < 1_000_000_000 {
            while let Ok(Some(p)) = dec.decode(&mut inbuf) {
                if let Packet::PubAck(_) = p {
                    sem2.add_permits(1);
                    if w.contains(now_ns()) {
                        ctr2.acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            reads += 1;
            match timeout_at(w.end, rd.read_buf(&mut inbuf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => break,
            }
        }
        sem2.close();
    });
    let mut out = BytesMut::with_capacity(t.bytes.len() * window);
    let mut sent = 0u64;
    let mut pid: u16 = 0;
    // Bounded by `max` messages and the window end.
    'outer: while sent < max {
        // Take every free slot of the window, then write the batch.
        let first = match timeout_at(w.end, sem.acquire()).await {
            Ok(Ok(p)) => p,
            _ => break 'outer,
        };
        first.forget();
        let mut n = 1;
        while let Ok(p) = sem.try_acquire() {
            p.forget();
            n += 1;
        }
        out.clear();
        for _ in 0..n {
            pid = if pid == u16::MAX { 1 } else { pid + 1 };
            t.put(&mut out, pid, sent);
        }
        sent += n as u64;
        match timeout_at(w.end, wr.write_all(&out)).await {
            Err(_) => break,
            Ok(r) => r?,
        }
    }
    ctr.sent.fetch_add(sent, Ordering::Relaxed);
    let _ = reader.await;
    Ok(())
}

async fn connect_many(
    addr: SocketAddr,
    prefix: &str,
    n: usize,
    offset: usize,
    deadline: tokio::time::Instant,
) -> io::Result<Vec<Client>> {
    let mut set = tokio::task::JoinSet::new();
    let sem = Arc::new(Semaphore::new(128));
    for i in 0..n {
        let sem = sem.clone();
        let id = format!("{prefix}-{i}");
        set.spawn(async move {
            let _p = sem.acquire_owned().await;
            (i, Client::connect(addr, offset + i, id, deadline).await)
        });
    }
    let mut out: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, c) = r.map_err(io::Error::other)?;
        out[i] = Some(c?);
    }
    Ok(out.into_iter().flatten().collect())
}

fn record_err(ctr: &Counters, first: &std::sync::Mutex<Option<String>>, e: &dyn std::fmt::Display) {
    ctr.errors.fetch_add(1, Ordering::Relaxed);
    let mut f = first.lock().unwrap();
    if f.is_none() {
        *f = Some(e.to_string());
    }
}

/// fanout / fanin / p2p / qos1.
async fn run_pubsub(cli: &Cli) -> io::Result<Report> {
    let addr = SocketAddr::new(IpAddr::V4(cli.host), cli.port);
    let setup_deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let (n_pub, n_sub, qos) = match cli.scenario {
        Scenario::Fanout => (1, cli.clients.unwrap_or(1000), QoS::AtMostOnce),
        Scenario::Fanin => (cli.clients.unwrap_or(100), 1, QoS::AtMostOnce),
        Scenario::P2p => {
            let n = cli.clients.unwrap_or(100);
            (n, n, QoS::AtMostOnce)
        }
        Scenario::Qos1 => {
            let n = cli.clients.unwrap_or(10);
            (n, n, QoS::AtLeastOnce)
        }
        Scenario::Storm => unreachable!(),
    };
    let run = std::process::id();
    let sub_filter = |i: usize| match cli.scenario {
        Scenario::Fanout => "bench/fanout".to_string(),
        Scenario::Fanin => "bench/fanin/+".to_string(),
        Scenario::P2p => format!("bench/p2p/{i}"),
        _ => format!("bench/qos1/{i}"),
    };
    let pub_topic = |i: usize| match cli.scenario {
        Scenario::Fanout => "bench/fanout".to_string(),
        Scenario::Fanin => format!("bench/fanin/{i}"),
        Scenario::P2p => format!("bench/p2p/{i}"),
        _ => format!("bench/qos1/{i}"),
    };

    let mut subs = connect_many(addr, &format!("lg{run}-s"), n_sub, 0, setup_deadline).await?;
    for (i, s) in subs.iter_mut().enumerate() {
        s.subscribe(&sub_filter(i), qos, setup_deadline).await?;
    }
    let pubs = connect_many(addr, &format!("lg{run}-p"), n_pub, n_sub, setup_deadline).await?;
    // Let the brokers settle the subscriptions (some apply them asynchronously to SUBACK).
    sleep(Duration::from_millis(500)).await;

    let now = tokio::time::Instant::now();
    let start = now + Duration::from_secs(cli.warmup_secs);
    let end = start + Duration::from_secs(cli.duration_secs);
    let base = now_ns();
    let w = Window {
        start_ns: base + cli.warmup_secs * 1_000_000_000,
        end_ns: base + (cli.warmup_secs + cli.duration_secs) * 1_000_000_000,
        end,
    };
    let ctr = Arc::new(Counters::default());
    let first_err = Arc::new(std::sync::Mutex::new(None));

    let fanout = cli.scenario == Scenario::Fanout;
    let progress = Arc::new(Progress {
        slots: (0..n_pub.max(n_sub)).map(|_| AtomicU64::new(0)).collect(),
        backlog: if fanout { BACKLOG_FANOUT } else { BACKLOG_P2P },
    });
    let mut sub_tasks = Vec::new();
    for (i, s) in subs.into_iter().enumerate() {
        let slot = if cli.scenario == Scenario::Fanin {
            Slot::TopicSuffix
        } else {
            Slot::Fixed(i)
        };
        sub_tasks.push(tokio::spawn(subscriber(
            s,
            w,
            ctr.clone(),
            progress.clone(),
            slot,
        )));
    }
    let per_pub = cli.rate.map(|r| r as f64 / n_pub as f64);
    let mut pub_tasks = Vec::new();
    for (i, c) in pubs.into_iter().enumerate() {
        let t = Template::new(&pub_topic(i), qos, cli.payload)?;
        let ctr = ctr.clone();
        let max = cli.max_messages;
        pub_tasks.push(if qos == QoS::AtLeastOnce {
            tokio::spawn(publisher_qos1(c, t, cli.window, w, max, ctr))
        } else {
            let watch = if fanout { Watch::Min } else { Watch::One(i) };
            tokio::spawn(publisher_qos0(
                c,
                t,
                per_pub,
                w,
                max,
                ctr,
                progress.clone(),
                watch,
            ))
        });
    }
    sleep_until(start).await;
    let cpu0 = cli.broker_pid.and_then(cpu_secs);
    let recv0 = ctr.received.load(Ordering::Relaxed);
    sleep_until(end).await;
    let cpu1 = cli.broker_pid.and_then(cpu_secs);

    let mut hist = Hist::new();
    for t in sub_tasks {
        match t.await {
            Ok(Ok(h)) => hist.merge(&h),
            Ok(Err(e)) => record_err(&ctr, &first_err, &e),
            Err(e) => record_err(&ctr, &first_err, &e),
        }
    }
    for t in pub_tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => record_err(&ctr, &first_err, &e),
            Err(e) => record_err(&ctr, &first_err, &e),
        }
    }
    let secs = cli.duration_secs as f64;
    let messages = ctr.received.load(Ordering::Relaxed);
    debug_assert!(messages >= recv0);
    let first_error = first_err.lock().unwrap().clone();
    Ok(Report {
        scenario: format!("{:?}", cli.scenario).to_lowercase(),
        clients: n_pub.max(n_sub),
        window_secs: secs,
        messages,
        msgs_per_sec: messages as f64 / secs,
        acks_per_sec: (qos == QoS::AtLeastOnce)
            .then(|| ctr.acked.load(Ordering::Relaxed) as f64 / secs),
        sent: ctr.sent.load(Ordering::Relaxed),
        lat: Some(hist),
        cpu_secs: cpu0.zip(cpu1).map(|(a, b)| b - a),
        peak_rss: cli.broker_pid.and_then(|p| status_bytes(p, "VmHWM:")),
        errors: ctr.errors.load(Ordering::Relaxed),
        first_error,
        ..Default::default()
    })
}

/// Connection storm, then memory per idle connection.
async fn run_storm(cli: &Cli) -> io::Result<Report> {
    let addr = SocketAddr::new(IpAddr::V4(cli.host), cli.port);
    let n = cli.clients.unwrap_or(10_000);
    let pid = cli.broker_pid;
    let rss_before = pid.and_then(|p| status_bytes(p, "VmRSS:"));
    let cpu0 = pid.and_then(cpu_secs);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(cli.duration_secs);
    let run = std::process::id();
    let sem = Arc::new(Semaphore::new(cli.storm_concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let t0 = Instant::now();
    for i in 0..n {
        let sem = sem.clone();
        let id = format!("lg{run}-c{i}");
        set.spawn(async move {
            let _p = sem.acquire_owned().await;
            let s = now_ns();
            let r = Client::connect(addr, i, id, deadline).await;
            (now_ns() - s, Instant::now(), r)
        });
    }
    let mut hist = Hist::new();
    let mut conns = Vec::with_capacity(n);
    let mut last = t0;
    let mut errors = 0u64;
    let mut first_error = None;
    // Bounded: n tasks, each bounded by `deadline`.
    while let Some(r) = set.join_next().await {
        match r {
            Ok((lat, at, Ok(c))) => {
                hist.record(lat);
                last = last.max(at);
                conns.push(c);
            }
            Ok((_, _, Err(e))) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let elapsed = last.duration_since(t0).as_secs_f64().max(1e-9);
    let ok = conns.len() as u64;
    // Idle: nothing is sent; let the broker finish per-connection work before reading RSS.
    sleep(Duration::from_secs(2)).await;
    let rss_after = pid.and_then(|p| status_bytes(p, "VmRSS:"));
    let cpu1 = pid.and_then(cpu_secs);
    let peak = pid.and_then(|p| status_bytes(p, "VmHWM:"));
    drop(conns);
    Ok(Report {
        scenario: "storm".into(),
        clients: n,
        window_secs: elapsed,
        messages: ok,
        msgs_per_sec: ok as f64 / elapsed,
        lat: Some(hist),
        cpu_secs: cpu0.zip(cpu1).map(|(a, b)| b - a),
        peak_rss: peak,
        conns_ok: Some(ok),
        conn_rate: Some(ok as f64 / elapsed),
        mem_per_conn: rss_before
            .zip(rss_after)
            .filter(|_| ok > 0)
            .map(|(b, a)| (a as f64 - b as f64) / ok as f64),
        rss_before,
        rss_after,
        errors,
        first_error,
        ..Default::default()
    })
}

fn us(v: Option<u64>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |ns| {
        serde_json::json!((ns as f64 / 1000.0 * 10.0).round() / 10.0)
    })
}

fn print(r: &Report, json: bool) {
    let q = |x: f64| r.lat.as_ref().and_then(|h| h.quantile(x));
    let v = serde_json::json!({
        "scenario": r.scenario,
        "clients": r.clients,
        "window_secs": r.window_secs,
        "messages": r.messages,
        "msgs_per_sec": r.msgs_per_sec.round(),
        "acks_per_sec": r.acks_per_sec.map(f64::round),
        "sent": r.sent,
        "p50_us": us(q(0.50)),
        "p99_us": us(q(0.99)),
        "p999_us": us(q(0.999)),
        "latency_samples": r.lat.as_ref().map_or(0, |h| h.total),
        "broker_cpu_secs": r.cpu_secs,
        "broker_peak_rss_bytes": r.peak_rss,
        "conns_ok": r.conns_ok,
        "conn_rate": r.conn_rate.map(f64::round),
        "mem_per_idle_conn_bytes": r.mem_per_conn.map(f64::round),
        "rss_before_bytes": r.rss_before,
        "rss_after_bytes": r.rss_after,
        "errors": r.errors,
        "first_error": r.first_error,
    });
    if json {
        println!("{v}");
    } else {
        println!("{v:#}");
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    origin();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async {
        match cli.scenario {
            Scenario::Storm => run_storm(&cli).await,
            _ => run_pubsub(&cli).await,
        }
    });
    // Do not wait for tasks still blocked on a misbehaving broker.
    rt.shutdown_timeout(Duration::from_secs(1));
    match res {
        Ok(r) => {
            print(&r, cli.json);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {:?}: {e}", cli.scenario);
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"scenario": format!("{:?}", cli.scenario).to_lowercase(),
                        "error": e.to_string()})
                );
            }
            std::process::ExitCode::FAILURE
        }
    }
}
