//! Frames: how messages travel on a byte stream.
//!
//! ```text
//! 0      4        5      6       7         8          12
//! | HSYN | version | type | flags | reserved | length BE | payload (length bytes)
//! ```
//! The layout of the header never changes between versions, so a peer of any version
//! can read the version of the other and answer with a clear refusal. `flags` bit 0
//! means the payload is deflate-compressed. Frames are bounded ([`MAX_FRAME`] on the
//! wire, [`MAX_DECODED`] after decompression), so a peer cannot make the other allocate
//! without limit.

use std::io::{Read, Write};

use crate::message::Message;

pub const MAGIC: &[u8; 4] = b"HSYN";
/// The protocol version this build speaks (2: the audit trail travels too, and
/// `Welcome` says how much of it the hub has).
pub const PROTOCOL_VERSION: u8 = 2;
pub const HEADER_LEN: usize = 12;
/// The largest payload accepted on the wire.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// The largest payload accepted after decompression.
pub const MAX_DECODED: usize = 64 * 1024 * 1024;
/// Payloads at least this large are compressed.
pub const COMPRESS_FROM: usize = 1024;
const FLAG_DEFLATE: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("the peer does not speak the HealSync sync protocol")]
    BadMagic,
    #[error("the peer speaks sync protocol version {theirs}; this program speaks version {ours}")]
    UnsupportedVersion { ours: u8, theirs: u8 },
    #[error("a frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("a compressed frame could not be decompressed")]
    Decompress,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// Encodes one message as one frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut body = Vec::new();
    msg.encode_body(&mut body);
    let (flags, payload) = if body.len() >= COMPRESS_FROM {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        // Writing into a Vec cannot fail.
        let compressed = z.write_all(&body).and_then(|()| z.finish()).ok();
        match compressed {
            Some(c) if c.len() < body.len() => (FLAG_DEFLATE, c),
            _ => (0, body),
        }
    } else {
        (0, body)
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.push(PROTOCOL_VERSION);
    out.push(msg.tag());
    out.push(flags);
    out.push(0);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// A streaming decoder: feed it bytes as they arrive, take messages out. After an error
/// it stays failed: the connection must be closed.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    failed: Option<FrameError>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes received but not yet decoded (a frame in progress).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.try_next() {
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf.clear();
                Err(e)
            }
            ok => ok,
        }
    }

    fn try_next(&mut self) -> Result<Option<Message>, FrameError> {
        if self.buf.len() < HEADER_LEN {
            // Check what is there already, so garbage fails fast.
            let n = self.buf.len().min(4);
            if self.buf[..n] != MAGIC[..n] {
                return Err(FrameError::BadMagic);
            }
            return Ok(None);
        }
        let header = &self.buf[..HEADER_LEN];
        if &header[..4] != MAGIC {
            return Err(FrameError::BadMagic);
        }
        let version = header[4];
        if version != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion {
                ours: PROTOCOL_VERSION,
                theirs: version,
            });
        }
        let (tag, flags) = (header[5], header[6]);
        let len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge {
                len,
                max: MAX_FRAME,
            });
        }
        if flags & !FLAG_DEFLATE != 0 || header[7] != 0 {
            return Err(FrameError::Malformed("unknown header flags"));
        }
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload = &self.buf[HEADER_LEN..HEADER_LEN + len];
        let msg = if flags & FLAG_DEFLATE != 0 {
            let mut out = Vec::new();
            let mut z = flate2::read::DeflateDecoder::new(payload).take(MAX_DECODED as u64 + 1);
            z.read_to_end(&mut out)
                .map_err(|_| FrameError::Decompress)?;
            if out.len() > MAX_DECODED {
                return Err(FrameError::TooLarge {
                    len: out.len(),
                    max: MAX_DECODED,
                });
            }
            Message::decode_body(tag, &out)?
        } else {
            Message::decode_body(tag, payload)?
        };
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests;
