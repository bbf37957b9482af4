//! The protocol's messages and their binary encoding (length-prefixed, little-endian,
//! varint integers). Decoding checks every length against what is left, so a
//! malformed payload is an error, never a panic or an unbounded allocation.

use crate::frame::FrameError;

/// One automerge change from a node's change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The node's local sequence number (strictly increasing in its change log).
    pub seq: u64,
    pub doc_id: [u8; 16],
    pub kind: String,
    /// The automerge change hash: the hub stores a change once per hash.
    pub hash: [u8; 32],
    pub bytes: Vec<u8>,
}

/// One change from the hub's log, as sent down to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteChange {
    /// The hub's log position (strictly increasing).
    pub cursor: u64,
    pub doc_id: [u8; 16],
    pub kind: String,
    pub hash: [u8; 32],
    pub bytes: Vec<u8>,
}

/// One event of a node's audit trail, as the node chained it: the hub stores it with
/// the time it arrived and can walk the node's chain again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The event's number in the node's chain (1, 2, 3, ... without gaps).
    pub seq: u64,
    /// The event's canonical bytes (what its hash covers).
    pub event: Vec<u8>,
    /// The chain's hash through this event.
    pub hash: [u8; 32],
}

/// An uploaded change the hub refused (for example a document of another site).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub seq: u64,
    pub doc_id: [u8; 16],
    pub reason: String,
}

/// Why the hub refuses a whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    UnsupportedVersion,
    UnknownNode,
    Revoked,
    WrongSite,
    Busy,
    Malformed,
}

impl RefusalCode {
    fn to_u8(self) -> u8 {
        match self {
            RefusalCode::UnsupportedVersion => 1,
            RefusalCode::UnknownNode => 2,
            RefusalCode::Revoked => 3,
            RefusalCode::WrongSite => 4,
            RefusalCode::Busy => 5,
            RefusalCode::Malformed => 6,
        }
    }

    fn from_u8(b: u8) -> Result<Self, FrameError> {
        Ok(match b {
            1 => RefusalCode::UnsupportedVersion,
            2 => RefusalCode::UnknownNode,
            3 => RefusalCode::Revoked,
            4 => RefusalCode::WrongSite,
            5 => RefusalCode::Busy,
            6 => RefusalCode::Malformed,
            _ => return Err(FrameError::Malformed("unknown refusal code")),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    /// A sentence for the technician.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Node → hub, first: who I am, the upload position I have recorded as acknowledged,
    /// and where my download stands.
    Hello {
        node_id: [u8; 16],
        site: String,
        upload_acked: u64,
        download_cursor: u64,
    },
    /// Hub → node: accepted; the highest change-log sequence of this node it has
    /// committed, and the changes it refused in the range the node has not yet recorded
    /// as acknowledged (a cut between commit and `UploadAck` must not lose a refusal).
    Welcome {
        upload_acked: u64,
        rejected: Vec<Rejection>,
        /// The highest audit event of this node the hub has stored.
        audit_acked: u64,
    },
    /// Hub → node: the session is refused.
    Refused(Refusal),
    /// Node → hub: the next changes of the node's log, ascending by `seq`.
    Upload { changes: Vec<Change> },
    /// Hub → node, after commit: everything through `through_seq` is durable at the hub;
    /// `rejected` lists the changes in that range it refused to store.
    UploadAck {
        through_seq: u64,
        rejected: Vec<Rejection>,
    },
    /// Node → hub: the next events of the node's audit trail, ascending by `seq`,
    /// following the last the hub acknowledged.
    AuditUpload { events: Vec<AuditRecord> },
    /// Hub → node, after commit: the node's audit events through `through` are stored.
    AuditAck { through: u64 },
    /// Node → hub: send changes of my scope after `after`, at most about `max_bytes`.
    Pull { after: u64, max_bytes: u32 },
    /// Hub → node: changes after the pulled cursor, through `through`; `more` if the hub
    /// has further changes.
    Changes {
        changes: Vec<RemoteChange>,
        through: u64,
        more: bool,
    },
    /// Node → hub: the round is complete.
    Done,
}

impl Message {
    pub(crate) fn tag(&self) -> u8 {
        match self {
            Message::Hello { .. } => 1,
            Message::Welcome { .. } => 2,
            Message::Refused(_) => 3,
            Message::Upload { .. } => 4,
            Message::UploadAck { .. } => 5,
            Message::Pull { .. } => 6,
            Message::Changes { .. } => 7,
            Message::Done => 8,
            Message::AuditUpload { .. } => 9,
            Message::AuditAck { .. } => 10,
        }
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        let mut e = Enc(out);
        match self {
            Message::Hello {
                node_id,
                site,
                upload_acked,
                download_cursor,
            } => {
                e.raw(node_id);
                e.str(site);
                e.uint(*upload_acked);
                e.uint(*download_cursor);
            }
            Message::Welcome {
                upload_acked,
                rejected,
                audit_acked,
            } => {
                e.uint(*upload_acked);
                e.rejections(rejected);
                e.uint(*audit_acked);
            }
            Message::Refused(r) => {
                e.byte(r.code.to_u8());
                e.str(&r.message);
            }
            Message::Upload { changes } => {
                e.uint(changes.len() as u64);
                for c in changes {
                    e.uint(c.seq);
                    e.raw(&c.doc_id);
                    e.str(&c.kind);
                    e.raw(&c.hash);
                    e.bytes(&c.bytes);
                }
            }
            Message::UploadAck {
                through_seq,
                rejected,
            } => {
                e.uint(*through_seq);
                e.rejections(rejected);
            }
            Message::Pull { after, max_bytes } => {
                e.uint(*after);
                e.uint(u64::from(*max_bytes));
            }
            Message::Changes {
                changes,
                through,
                more,
            } => {
                e.uint(changes.len() as u64);
                for c in changes {
                    e.uint(c.cursor);
                    e.raw(&c.doc_id);
                    e.str(&c.kind);
                    e.raw(&c.hash);
                    e.bytes(&c.bytes);
                }
                e.uint(*through);
                e.byte(u8::from(*more));
            }
            Message::Done => {}
            Message::AuditUpload { events } => {
                e.uint(events.len() as u64);
                for a in events {
                    e.uint(a.seq);
                    e.bytes(&a.event);
                    e.raw(&a.hash);
                }
            }
            Message::AuditAck { through } => e.uint(*through),
        }
    }

    pub(crate) fn decode_body(tag: u8, body: &[u8]) -> Result<Message, FrameError> {
        let mut d = Dec(body);
        let msg = match tag {
            1 => Message::Hello {
                node_id: d.array()?,
                site: d.str()?,
                upload_acked: d.uint()?,
                download_cursor: d.uint()?,
            },
            2 => Message::Welcome {
                upload_acked: d.uint()?,
                rejected: d.rejections()?,
                audit_acked: d.uint()?,
            },
            3 => Message::Refused(Refusal {
                code: RefusalCode::from_u8(d.byte()?)?,
                message: d.str()?,
            }),
            4 => {
                let n = d.count(16 + 32 + 3)?;
                let mut changes = Vec::with_capacity(n);
                for _ in 0..n {
                    changes.push(Change {
                        seq: d.uint()?,
                        doc_id: d.array()?,
                        kind: d.str()?,
                        hash: d.array()?,
                        bytes: d.bytes()?.to_vec(),
                    });
                }
                Message::Upload { changes }
            }
            5 => Message::UploadAck {
                through_seq: d.uint()?,
                rejected: d.rejections()?,
            },
            6 => Message::Pull {
                after: d.uint()?,
                max_bytes: u32::try_from(d.uint()?)
                    .map_err(|_| FrameError::Malformed("max_bytes too large"))?,
            },
            7 => {
                let n = d.count(16 + 32 + 3)?;
                let mut changes = Vec::with_capacity(n);
                for _ in 0..n {
                    changes.push(RemoteChange {
                        cursor: d.uint()?,
                        doc_id: d.array()?,
                        kind: d.str()?,
                        hash: d.array()?,
                        bytes: d.bytes()?.to_vec(),
                    });
                }
                let through = d.uint()?;
                let more = match d.byte()? {
                    0 => false,
                    1 => true,
                    _ => return Err(FrameError::Malformed("bad boolean")),
                };
                Message::Changes {
                    changes,
                    through,
                    more,
                }
            }
            8 => Message::Done,
            9 => {
                let n = d.count(1 + 1 + 32)?;
                let mut events = Vec::with_capacity(n);
                for _ in 0..n {
                    events.push(AuditRecord {
                        seq: d.uint()?,
                        event: d.bytes()?.to_vec(),
                        hash: d.array()?,
                    });
                }
                Message::AuditUpload { events }
            }
            10 => Message::AuditAck { through: d.uint()? },
            _ => return Err(FrameError::Malformed("unknown message type")),
        };
        if !d.0.is_empty() {
            return Err(FrameError::Malformed("trailing bytes after the message"));
        }
        Ok(msg)
    }
}

struct Enc<'a>(&'a mut Vec<u8>);

impl Enc<'_> {
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }
    fn uint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.uint(b.len() as u64);
        self.raw(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn rejections(&mut self, rejected: &[Rejection]) {
        self.uint(rejected.len() as u64);
        for r in rejected {
            self.uint(r.seq);
            self.raw(&r.doc_id);
            self.str(&r.reason);
        }
    }
}

struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    fn byte(&mut self) -> Result<u8, FrameError> {
        let (&b, rest) = self
            .0
            .split_first()
            .ok_or(FrameError::Malformed("truncated"))?;
        self.0 = rest;
        Ok(b)
    }
    fn uint(&mut self) -> Result<u64, FrameError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(FrameError::Malformed("integer overflow"));
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(FrameError::Malformed("integer too long"))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if n > self.0.len() {
            return Err(FrameError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let n =
            usize::try_from(self.uint()?).map_err(|_| FrameError::Malformed("length too large"))?;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, FrameError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| FrameError::Malformed("text is not UTF-8"))
    }
    fn rejections(&mut self) -> Result<Vec<Rejection>, FrameError> {
        let n = self.count(16 + 2)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(Rejection {
                seq: self.uint()?,
                doc_id: self.array()?,
                reason: self.str()?,
            });
        }
        Ok(out)
    }
    /// A list length, refused if the remaining bytes cannot hold that many items of at
    /// least `min_item` bytes (so a forged count cannot force a huge allocation).
    fn count(&mut self, min_item: usize) -> Result<usize, FrameError> {
        let n =
            usize::try_from(self.uint()?).map_err(|_| FrameError::Malformed("count too large"))?;
        if n.saturating_mul(min_item) > self.0.len() {
            return Err(FrameError::Malformed("count larger than the message"));
        }
        Ok(n)
    }
}
