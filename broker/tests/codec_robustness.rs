//! A bounded, deterministic fuzz run in the normal test suite: 50,000 inputs (random bytes, and
//! valid packets of every type with random mutations, truncations, insertions and splices) are
//! fed to a fresh server-side decoder and to decoders of 3.1.1 and 5.0. For every input:
//!
//! - the decoder does not panic;
//! - each decoded packet consumed at least two bytes (so the loop ends), left the bytes after it
//!   untouched, and encodes to bytes that decode to the same packet;
//! - `Ok(None)` consumed nothing;
//! - an error carries one of the reason codes the codec documents for decode errors.
//!
//! The corpus comes from the proptest strategies of `codec_support` run with a fixed seed, and
//! the mutations from a fixed-seed SplitMix64, so a failure reproduces exactly.

mod codec_support;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::BytesMut;
use codec_support::*;
use ferrumq_broker::codec::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

const RANDOM_INPUTS: usize = 15_000;
const MUTATED_INPUTS: usize = 35_000;
/// Packets generated per packet type and version for the mutation corpus.
const CORPUS_PER_TYPE: usize = 12;

/// The reason codes a [`DecodeError`] may carry (see `DecodeError::reason_code`).
const DECODE_REASON_CODES: [ReasonCode; 6] = [
    ReasonCode::MalformedPacket,
    ReasonCode::ProtocolError,
    ReasonCode::PacketTooLarge,
    ReasonCode::UnsupportedProtocolVersion,
    ReasonCode::TopicNameInvalid,
    ReasonCode::TopicFilterInvalid,
];

/// SplitMix64: tiny, fast and good enough to drive mutations reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// Valid encoded packets: every type of 3.1.1 and 5.0, CONNECT of all three levels, and whole
/// streams (CONNECT followed by packets of its version) for the server-side decoder.
fn corpus() -> Vec<Vec<u8>> {
    let mut runner = TestRunner::deterministic();
    let mut generate = |strategy: &BoxedPacketStrategy| {
        strategy
            .new_tree(&mut runner)
            .expect("strategy generates")
            .current()
    };
    let mut corpus = Vec::new();
    for version in VERSIONS {
        for (_, strategy) in packets_by_type(version) {
            for _ in 0..CORPUS_PER_TYPE {
                let packet = generate(&strategy);
                corpus.push(encode_checked(&packet, version));
            }
        }
    }
    let connect_v3_1 = connect(ProtocolVersion::V3_1).boxed();
    for _ in 0..CORPUS_PER_TYPE {
        corpus.push(encode_checked(
            &generate(&connect_v3_1),
            ProtocolVersion::V3_1,
        ));
    }
    for version in VERSIONS {
        let first = connect(version).boxed();
        let rest = any_packet(version);
        for _ in 0..CORPUS_PER_TYPE * 4 {
            let mut stream = encode_checked(&generate(&first), version);
            for _ in 0..3 {
                stream.extend(encode_checked(&generate(&rest), version));
            }
            corpus.push(stream);
        }
    }
    corpus
}

type BoxedPacketStrategy = proptest::strategy::BoxedStrategy<Packet>;

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(9) {
            // Flip one bit.
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            // Overwrite a byte, often with a boundary value.
            1 if len > 0 => {
                let i = rng.below(len);
                const EDGES: [u8; 8] = [0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFE, 0xFF];
                input[i] = if rng.below(2) == 0 {
                    EDGES[rng.below(EDGES.len())]
                } else {
                    rng.byte()
                };
            }
            // Truncate.
            2 if len > 0 => input.truncate(rng.below(len)),
            // Insert random bytes.
            3 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(4);
                let bytes = rng.bytes(n);
                input.splice(at..at, bytes);
            }
            // Delete a range.
            4 if len > 1 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(4));
                input.drain(at..at + n);
            }
            // Duplicate a range.
            5 if len > 1 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(8));
                let copy = input[at..at + n].to_vec();
                input.splice(at..at, copy);
            }
            // Splice in part of another corpus entry.
            6 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len());
                let at = rng.below(len + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            // Rewrite the Remaining Length byte.
            7 if len > 1 => input[1] = rng.byte(),
            // Rewrite the first byte (type and flags).
            _ if len > 0 => input[0] = rng.byte(),
            _ => input.push(rng.byte()),
        }
    }
}

#[derive(Default)]
struct Stats {
    inputs: usize,
    packets: usize,
    waiting: usize,
    errors: BTreeMap<u8, usize>,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} inputs: {} packets, {} waits, errors by reason code:",
            self.inputs, self.packets, self.waiting
        )?;
        for (code, count) in &self.errors {
            write!(f, " {code:#04x}={count}")?;
        }
        Ok(())
    }
}

/// Feeds `input` to `decoder` until it errors or waits, checking every outcome.
fn feed(mut decoder: Decoder, input: &[u8], stats: &mut Stats) {
    let mut buf = BytesMut::from(input);
    // Each decoded packet takes at least two bytes, so this many steps is always enough.
    for _ in 0..=input.len() / 2 + 1 {
        let before = buf.clone();
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => {
                stats.packets += 1;
                let consumed = before.len() - buf.len();
                assert!(consumed >= 2, "{packet:?} consumed {consumed} bytes");
                assert_eq!(&buf[..], &before[consumed..], "bytes after the packet");
                check_re_encoding(&packet, &decoder);
            }
            Ok(None) => {
                stats.waiting += 1;
                assert_eq!(&buf[..], &before[..], "Ok(None) consumed bytes");
                return;
            }
            Err(error) => {
                let code = error.reason_code();
                assert!(
                    DECODE_REASON_CODES.contains(&code),
                    "{error:?} has undocumented reason code {code:?}"
                );
                assert!(code.as_u8() >= 0x80);
                assert!(!error.to_string().is_empty());
                *stats.errors.entry(code.as_u8()).or_default() += 1;
                return;
            }
        }
    }
    panic!("decoder did not stop within {} steps", input.len() / 2 + 1);
}

/// A decoded packet encodes (in the stream's version) to bytes that decode to the same packet.
fn check_re_encoding(packet: &Packet, decoder: &Decoder) {
    let version = match packet {
        Packet::Connect(c) => c.protocol,
        _ => decoder.version().expect("a version after CONNECT"),
    };
    let bytes = encode_checked(packet, version);
    assert_eq!(
        decode_one(packet, version, &bytes),
        Ok(Some(packet.clone())),
        "re-encoded as {}",
        hex(&bytes)
    );
}

fn check_input(input: &[u8], max: u32, stats: &mut Stats) {
    stats.inputs += 1;
    let decoders = [
        Decoder::new(max),
        Decoder::with_version(ProtocolVersion::V3_1_1, max),
        Decoder::with_version(ProtocolVersion::V5, max),
    ];
    for decoder in decoders {
        let described = format!("{decoder:?}");
        let outcome = catch_unwind(AssertUnwindSafe(|| feed(decoder, input, stats)));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{described} failed on input [{}]: {message}", hex(input));
        }
    }
}

fn max_packet_size(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => 16 + rng.below(64) as u32,
        _ => MAX_PACKET_SIZE_LIMIT,
    }
}

#[test]
fn random_bytes_never_panic_and_fail_with_a_documented_reason_code() {
    let mut rng = Rng(0x00C0_DEC0_FFEE);
    let mut stats = Stats::default();
    for _ in 0..RANDOM_INPUTS {
        let len = rng.below(48);
        let mut input = rng.bytes(len);
        // Half the inputs start with a plausible first byte so the bodies get exercised too.
        if !input.is_empty() && rng.below(2) == 0 {
            let packet_type = 1 + rng.below(15) as u8;
            let flags = PacketType::from_u8(packet_type)
                .map(|t| t.required_flags())
                .unwrap_or(0);
            input[0] = packet_type << 4
                | if packet_type == 3 {
                    input[0] & 0x0F
                } else {
                    flags
                };
            if input.len() > 1 {
                input[1] = (input.len() - 2).min(127) as u8;
            }
        }
        let max = max_packet_size(&mut rng);
        check_input(&input, max, &mut stats);
    }
    println!("{stats}");
    assert!(stats.packets > 0, "no random input decoded at all");
    assert!(
        stats.errors.len() >= 3,
        "too few kinds of error: {:?}",
        stats.errors
    );
}

#[test]
fn mutated_packets_never_panic_and_fail_with_a_documented_reason_code() {
    let corpus = corpus();
    // The corpus itself decodes cleanly.
    let mut clean = Stats::default();
    for input in &corpus {
        check_input(input, MAX_PACKET_SIZE_LIMIT, &mut clean);
    }
    assert!(clean.packets >= corpus.len());

    let mut rng = Rng(0x05EE_D0FF_1E1D);
    let mut stats = Stats::default();
    for _ in 0..MUTATED_INPUTS {
        let mut input = corpus[rng.below(corpus.len())].clone();
        mutate(&mut rng, &mut input, &corpus);
        let max = max_packet_size(&mut rng);
        check_input(&input, max, &mut stats);
    }
    println!("{} corpus entries; mutated: {stats}", corpus.len());
    assert!(
        stats.packets > MUTATED_INPUTS / 4,
        "mutations too destructive"
    );
    for code in DECODE_REASON_CODES {
        assert!(
            stats.errors.contains_key(&code.as_u8()),
            "no mutated input produced {code:?}: {:?}",
            stats.errors
        );
    }
}
