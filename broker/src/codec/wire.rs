//! The data representations of section 1.5: integers, variable byte integers, UTF-8 strings,
//! binary data and string pairs, read from a shared `Bytes` and written to a [`Sink`].
//!
//! Reading slices the packet's `Bytes` (a reference-count bump, never a copy). Writing goes
//! through [`Sink`] so that one function per packet both measures and writes it: the
//! [`Counter`] sink sizes a packet before the real write, which is how the Remaining Length and
//! Property Length prefixes are known without a second buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use super::error::{DecodeError, EncodeError};
use super::packet::PacketType;

/// The largest value a Variable Byte Integer can hold (section 1.5.5).
pub const VARINT_MAX: u32 = 268_435_455;

/// A cursor over one packet's body. Every read checks the length first, so a short packet is a
/// [`DecodeError::Truncated`], never a panic.
pub(crate) struct Reader {
    buf: Bytes,
    packet: PacketType,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, packet: PacketType) -> Self {
        Reader { buf, packet }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn packet(&self) -> PacketType {
        self.packet
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::Truncated(self.packet))
        } else {
            Ok(())
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    /// A Variable Byte Integer of at most four bytes (section 1.5.5).
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..4 {
            let byte = self.u8()?;
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedVariableInteger)
    }

    /// The unread bytes as a shared view, without consuming them.
    pub(crate) fn peek(&self) -> Bytes {
        self.buf.clone()
    }

    /// `n` bytes as a shared view of the packet.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// A sub-reader over the next `n` bytes (a property block, say).
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        let packet = self.packet;
        Ok(Reader::new(self.take(n)?, packet))
    }

    /// Binary Data: a two-byte length and that many bytes (section 1.5.6).
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u16()? as usize;
        self.take(len)
    }

    /// A UTF-8 Encoded String (section 1.5.4): well-formed UTF-8 with no U+0000
    /// [MQTT-1.5.4-1], [MQTT-1.5.4-2].
    pub(crate) fn string(&mut self) -> Result<ByteString, DecodeError> {
        utf8(self.binary()?)
    }

    /// Everything left, as one shared view (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        self.buf.split_off(0)
    }

    /// Fails with [`DecodeError::TrailingBytes`] if anything is left.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.packet))
        }
    }
}

/// Validates bytes as an MQTT UTF-8 string without copying them.
pub(crate) fn utf8(bytes: Bytes) -> Result<ByteString, DecodeError> {
    // Rust's UTF-8 check (made once, by the conversion) already rejects surrogates
    // (U+D800..U+DFFF) and overlong forms, which section 1.5.4 also forbids.
    let string = ByteString::try_from(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
    if string.as_bytes().contains(&0) {
        return Err(DecodeError::NullCharacter);
    }
    Ok(string)
}

/// Number of bytes a Variable Byte Integer takes.
pub const fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// A destination for encoded bytes. Implemented by `BytesMut` (writes) and [`Counter`]
/// (measures), so sizing and writing a packet share one code path.
pub trait Sink {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_slice(&mut self, s: &[u8]);

    /// A Variable Byte Integer. Callers check `value <= VARINT_MAX` where it can be exceeded.
    fn put_varint(&mut self, mut value: u32) {
        loop {
            let mut byte = (value & 0x7F) as u8;
            value >>= 7;
            if value > 0 {
                byte |= 0x80;
            }
            self.put_u8(byte);
            if value == 0 {
                break;
            }
        }
    }

    /// Binary Data or a UTF-8 string: two-byte length, then the bytes.
    fn put_binary(&mut self, s: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(s.len()).map_err(|_| EncodeError::FieldTooLong(s.len()))?;
        self.put_u16(len);
        self.put_slice(s);
        Ok(())
    }
}

impl Sink for BytesMut {
    fn put_u8(&mut self, v: u8) {
        BufMut::put_u8(self, v)
    }
    fn put_u16(&mut self, v: u16) {
        BufMut::put_u16(self, v)
    }
    fn put_u32(&mut self, v: u32) {
        BufMut::put_u32(self, v)
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.extend_from_slice(s)
    }
}

/// A sink that only counts bytes: used to size a packet or a property block before writing it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counter(pub usize);

impl Sink for Counter {
    fn put_u8(&mut self, _: u8) {
        self.0 += 1
    }
    fn put_u16(&mut self, _: u16) {
        self.0 += 2
    }
    fn put_u32(&mut self, _: u32) {
        self.0 += 4
    }
    fn put_slice(&mut self, s: &[u8]) {
        self.0 += s.len()
    }
    fn put_varint(&mut self, value: u32) {
        self.0 += varint_len(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes), PacketType::Publish)
    }

    #[test]
    fn varint_boundaries_of_section_1_5_5_round_trip() {
        for (value, wire) in [
            (0u32, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (VARINT_MAX, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut buf = BytesMut::new();
            buf.put_varint(value);
            assert_eq!(&buf[..], wire, "encoding {value}");
            assert_eq!(varint_len(value), wire.len());
            let mut r = Reader::new(buf.freeze(), PacketType::Publish);
            assert_eq!(r.varint().unwrap(), value);
        }
    }

    #[test]
    fn mqtt_1_5_5_varint_of_five_bytes_is_malformed() {
        let mut r = reader(&[0x80, 0x80, 0x80, 0x80, 0x01]);
        assert_eq!(r.varint(), Err(DecodeError::MalformedVariableInteger));
    }

    #[test]
    fn mqtt_1_5_4_1_ill_formed_utf8_is_rejected() {
        // 0xED 0xA0 0x80 encodes the surrogate U+D800.
        let mut r = reader(&[0x00, 0x03, 0xED, 0xA0, 0x80]);
        assert_eq!(r.string(), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn mqtt_1_5_4_2_null_character_is_rejected() {
        let mut r = reader(&[0x00, 0x03, b'a', 0x00, b'b']);
        assert_eq!(r.string(), Err(DecodeError::NullCharacter));
    }

    #[test]
    fn mqtt_1_5_4_3_bom_is_kept_not_stripped() {
        let mut r = reader(&[0x00, 0x04, 0xEF, 0xBB, 0xBF, b'a']);
        assert_eq!(&*r.string().unwrap(), "\u{FEFF}a");
    }

    #[test]
    fn short_reads_are_truncation_errors() {
        let mut r = reader(&[0x00, 0x05, b'a']);
        assert_eq!(r.string(), Err(DecodeError::Truncated(PacketType::Publish)));
        let mut r = reader(&[0x01]);
        assert_eq!(r.u16(), Err(DecodeError::Truncated(PacketType::Publish)));
    }

    #[test]
    fn strings_longer_than_65535_bytes_cannot_be_encoded() {
        let long = vec![b'a'; 65_536];
        assert_eq!(
            BytesMut::new().put_binary(&long),
            Err(EncodeError::FieldTooLong(65_536))
        );
    }
}
