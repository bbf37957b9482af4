//! The two sides of a sync round as state machines. Each takes what happened (a message
//! arrived, the driver finished loading or committing) and returns what to do next.
//!
//! ```text
//! node                                  hub
//!  Hello{node, site, upload_acked,    ->   authenticate (enrolled? revoked? site?)
//!        download_cursor}
//!                                     <-  Welcome{upload_acked, rejected,
//!                                                 audit_acked} | Refused{..}
//!  repeat while the change log has entries past upload_acked:
//!  Upload{changes}                    ->   commit (idempotent by hash) + node cursor
//!                                     <-  UploadAck{through_seq, rejected}   (after commit)
//!  repeat while the audit trail has events past audit_acked (from Welcome):
//!  AuditUpload{events}                ->   commit (idempotent by node and seq)
//!                                     <-  AuditAck{through}                  (after commit)
//!  repeat while the hub has more:
//!  Pull{after, max_bytes}             ->   load the node's scope past `after`
//!                                     <-  Changes{changes, through, more}
//!  (apply + persist cursor atomically)
//!  Done                               ->
//! ```
//! One upload batch or one pull is in flight at a time. Durable state (the node's
//! acknowledged upload position and download cursor, the hub's stored changes) lives
//! with the driver; a new session after any cut starts from it and resends at most one
//! batch, which the hub ignores by hash.

use crate::message::{AuditRecord, Change, Message, Refusal, Rejection, RemoteChange};

/// A violation of the protocol by the peer, or a refusal. The session is over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("the hub refused the sync: {}", .0.message)]
    Refused(Refusal),
    #[error("protocol violation: {0}")]
    Protocol(String),
}

/// The most change data the hub loads for one pull, whatever the node asks: with the
/// per-change framing this keeps a `Changes` message well inside the frame limits
/// ([`crate::frame::MAX_FRAME`], [`crate::frame::MAX_DECODED`]), so a node asking for
/// more cannot make the hub build a message the node would refuse to read.
pub const MAX_PULL_BYTES: u32 = 8 * 1024 * 1024;

fn violation(what: impl Into<String>) -> SessionError {
    SessionError::Protocol(what.into())
}

/// What a finished round did, for the technician's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub uploaded: u64,
    /// Audit events shipped to the hub.
    pub audit_uploaded: u64,
    pub rejected: u64,
    pub downloaded: u64,
    pub upload_acked: u64,
    pub download_cursor: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAction {
    Send(Message),
    /// Load change-log entries with `seq > after`, about `max_bytes` at most, ascending;
    /// answer with [`NodeSession::upload_loaded`] (an empty list when none are left).
    LoadUpload {
        after: u64,
        max_bytes: usize,
    },
    /// The hub has committed everything through `through`: persist it as the
    /// acknowledged upload position (and report the rejected changes).
    UploadAcked {
        through: u64,
        rejected: Vec<Rejection>,
    },
    /// Load the audit trail's events with `seq > after`, ascending, about `max_bytes`
    /// at most; answer with [`NodeSession::audit_loaded`] (empty when none are left).
    LoadAudit {
        after: u64,
        max_bytes: usize,
    },
    /// Merge these changes and persist `through` as the download cursor in the same
    /// transaction; answer with [`NodeSession::applied`].
    Apply {
        changes: Vec<RemoteChange>,
        through: u64,
    },
    Finished(Summary),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    AwaitWelcome,
    Loading,
    AwaitAck { last_seq: u64 },
    LoadingAudit,
    AwaitAuditAck { last_seq: u64 },
    AwaitChanges,
    Applying { through: u64, more: bool },
    Done,
}

/// The node's side of one round.
#[derive(Debug, Clone)]
pub struct NodeSession {
    state: NodeState,
    upload_acked: u64,
    download_cursor: u64,
    /// The hub's last stored audit event of this node (from `Welcome`).
    audit_acked: u64,
    batch_bytes: usize,
    pull_bytes: u32,
    summary: Summary,
}

impl NodeSession {
    /// Starts a round from the node's durable state: the upload position it recorded as
    /// acknowledged and its download cursor. Returns the session and its first actions
    /// (the `Hello`).
    pub fn start(
        node_id: [u8; 16],
        site: &str,
        upload_acked: u64,
        download_cursor: u64,
        batch_bytes: usize,
        pull_bytes: u32,
    ) -> (NodeSession, Vec<NodeAction>) {
        let s = NodeSession {
            state: NodeState::AwaitWelcome,
            upload_acked,
            download_cursor,
            audit_acked: 0,
            batch_bytes,
            pull_bytes,
            summary: Summary::default(),
        };
        let hello = Message::Hello {
            node_id,
            site: site.to_string(),
            upload_acked,
            download_cursor,
        };
        (s, vec![NodeAction::Send(hello)])
    }

    pub fn is_done(&self) -> bool {
        self.state == NodeState::Done
    }

    pub fn on_message(&mut self, msg: Message) -> Result<Vec<NodeAction>, SessionError> {
        match (self.state, msg) {
            (_, Message::Refused(r)) => {
                self.state = NodeState::Done;
                Err(SessionError::Refused(r))
            }
            (
                NodeState::AwaitWelcome,
                Message::Welcome {
                    upload_acked,
                    rejected,
                    audit_acked,
                },
            ) => {
                self.audit_acked = audit_acked;
                let mut actions = Vec::new();
                // The hub committed more than the node recorded (a cut came between the
                // commit and its acknowledgement): record it now, with its refusals. If
                // the hub knows less (restored from a backup), upload again from there.
                if upload_acked > self.upload_acked {
                    self.summary.rejected += rejected.len() as u64;
                    actions.push(NodeAction::UploadAcked {
                        through: upload_acked,
                        rejected,
                    });
                }
                self.upload_acked = upload_acked;
                self.state = NodeState::Loading;
                actions.push(NodeAction::LoadUpload {
                    after: upload_acked,
                    max_bytes: self.batch_bytes,
                });
                Ok(actions)
            }
            (
                NodeState::AwaitAck { last_seq },
                Message::UploadAck {
                    through_seq,
                    rejected,
                },
            ) => {
                if through_seq != last_seq {
                    return Err(violation(format!(
                        "the hub acknowledged through {through_seq}, the batch ended at {last_seq}"
                    )));
                }
                self.upload_acked = through_seq;
                self.summary.rejected += rejected.len() as u64;
                self.state = NodeState::Loading;
                Ok(vec![
                    NodeAction::UploadAcked {
                        through: through_seq,
                        rejected,
                    },
                    NodeAction::LoadUpload {
                        after: through_seq,
                        max_bytes: self.batch_bytes,
                    },
                ])
            }
            (NodeState::AwaitAuditAck { last_seq }, Message::AuditAck { through }) => {
                if through != last_seq {
                    return Err(violation(format!(
                        "the hub acknowledged audit events through {through}, the batch ended at {last_seq}"
                    )));
                }
                self.audit_acked = through;
                self.state = NodeState::LoadingAudit;
                Ok(vec![NodeAction::LoadAudit {
                    after: through,
                    max_bytes: self.batch_bytes,
                }])
            }
            (
                NodeState::AwaitChanges,
                Message::Changes {
                    changes,
                    through,
                    more,
                },
            ) => {
                let mut last = self.download_cursor;
                for c in &changes {
                    if c.cursor <= last || c.cursor > through {
                        return Err(violation("the hub sent changes out of order"));
                    }
                    last = c.cursor;
                }
                if through < self.download_cursor {
                    return Err(violation("the hub moved the download cursor backwards"));
                }
                self.summary.downloaded += changes.len() as u64;
                self.state = NodeState::Applying { through, more };
                Ok(vec![NodeAction::Apply { changes, through }])
            }
            (state, msg) => Err(violation(format!(
                "unexpected message {} while {state:?}",
                name(&msg)
            ))),
        }
    }

    /// The driver loaded the next upload batch (empty: nothing left to upload).
    pub fn upload_loaded(&mut self, changes: Vec<Change>) -> Result<Vec<NodeAction>, SessionError> {
        if self.state != NodeState::Loading {
            return Err(violation("upload loaded while not loading"));
        }
        let Some(last) = changes.last().map(|c| c.seq) else {
            // The changes are all up: the audit trail's turn.
            self.state = NodeState::LoadingAudit;
            return Ok(vec![NodeAction::LoadAudit {
                after: self.audit_acked,
                max_bytes: self.batch_bytes,
            }]);
        };
        let mut prev = self.upload_acked;
        for c in &changes {
            if c.seq <= prev {
                return Err(violation(
                    "the change log is not ascending past the acknowledged position",
                ));
            }
            prev = c.seq;
        }
        self.summary.uploaded += changes.len() as u64;
        self.state = NodeState::AwaitAck { last_seq: last };
        Ok(vec![NodeAction::Send(Message::Upload { changes })])
    }

    /// The driver loaded the next audit events (empty: the hub has them all). They
    /// must follow the hub's last one without a gap: a chain with a hole cannot be
    /// walked at the hub.
    pub fn audit_loaded(
        &mut self,
        events: Vec<AuditRecord>,
    ) -> Result<Vec<NodeAction>, SessionError> {
        if self.state != NodeState::LoadingAudit {
            return Err(violation("audit loaded while not loading it"));
        }
        let Some(last) = events.last().map(|e| e.seq) else {
            self.state = NodeState::AwaitChanges;
            return Ok(vec![NodeAction::Send(self.pull())]);
        };
        if events
            .iter()
            .zip(self.audit_acked + 1..)
            .any(|(e, expected)| e.seq != expected)
        {
            return Err(violation(
                "the audit trail does not follow on from what the hub has",
            ));
        }
        self.summary.audit_uploaded += events.len() as u64;
        self.state = NodeState::AwaitAuditAck { last_seq: last };
        Ok(vec![NodeAction::Send(Message::AuditUpload { events })])
    }

    /// The driver applied the last `Changes` and persisted the cursor.
    pub fn applied(&mut self) -> Result<Vec<NodeAction>, SessionError> {
        let NodeState::Applying { through, more } = self.state else {
            return Err(violation("applied while not applying"));
        };
        self.download_cursor = through;
        if more {
            self.state = NodeState::AwaitChanges;
            return Ok(vec![NodeAction::Send(self.pull())]);
        }
        self.state = NodeState::Done;
        self.summary.upload_acked = self.upload_acked;
        self.summary.download_cursor = self.download_cursor;
        Ok(vec![
            NodeAction::Send(Message::Done),
            NodeAction::Finished(self.summary.clone()),
        ])
    }

    fn pull(&self) -> Message {
        Message::Pull {
            after: self.download_cursor,
            max_bytes: self.pull_bytes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubAction {
    /// Check that the node is enrolled, not revoked and of that site; answer with
    /// [`HubSession::authenticated`], giving the hub's committed upload position for the
    /// node and the refusals recorded after `node_upload_acked`.
    Authenticate {
        node_id: [u8; 16],
        site: String,
        node_upload_acked: u64,
        download_cursor: u64,
    },
    Send(Message),
    /// Store the changes (once per hash; refusing those the node may not write, and
    /// recording each refusal), and the node's upload position `through`, in one
    /// transaction; answer with
    /// [`HubSession::committed`]. Only then is the batch acknowledged.
    Commit {
        changes: Vec<Change>,
        through: u64,
    },
    /// Store the node's audit events (once per node and number), each with the time it
    /// arrived; answer with [`HubSession::audit_committed`]. Only then are they
    /// acknowledged.
    CommitAudit {
        events: Vec<AuditRecord>,
        through: u64,
    },
    /// Load changes of the node's scope after `after`, about `max_bytes` at most (never
    /// more than [`MAX_PULL_BYTES`]); answer with [`HubSession::loaded`].
    Load {
        after: u64,
        max_bytes: u32,
    },
    Finished,
}

/// What the hub tells an admitted node in `Welcome`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admitted {
    /// The highest change-log sequence of the node the hub has committed.
    pub upload_acked: u64,
    /// The refusals recorded after the position the node said it had recorded.
    pub rejected: Vec<Rejection>,
    /// The highest audit event of the node the hub has stored.
    pub audit_acked: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HubState {
    AwaitHello,
    Authenticating,
    Ready,
    Committing { through: u64 },
    CommittingAudit { through: u64 },
    Loading,
    Done,
}

/// The hub's side of one round.
#[derive(Debug, Clone)]
pub struct HubSession {
    state: HubState,
}

impl Default for HubSession {
    fn default() -> Self {
        Self::new()
    }
}

impl HubSession {
    pub fn new() -> HubSession {
        HubSession {
            state: HubState::AwaitHello,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == HubState::Done
    }

    pub fn on_message(&mut self, msg: Message) -> Result<Vec<HubAction>, SessionError> {
        match (self.state, msg) {
            (
                HubState::AwaitHello,
                Message::Hello {
                    node_id,
                    site,
                    upload_acked,
                    download_cursor,
                },
            ) => {
                self.state = HubState::Authenticating;
                Ok(vec![HubAction::Authenticate {
                    node_id,
                    site,
                    node_upload_acked: upload_acked,
                    download_cursor,
                }])
            }
            (HubState::Ready, Message::Upload { changes }) => {
                let Some(through) = changes.last().map(|c| c.seq) else {
                    return Err(violation("an empty upload"));
                };
                if changes.windows(2).any(|w| w[0].seq >= w[1].seq) {
                    return Err(violation("an upload out of order"));
                }
                self.state = HubState::Committing { through };
                Ok(vec![HubAction::Commit { changes, through }])
            }
            (HubState::Ready, Message::AuditUpload { events }) => {
                let Some(through) = events.last().map(|e| e.seq) else {
                    return Err(violation("an empty audit upload"));
                };
                if events.windows(2).any(|w| w[0].seq + 1 != w[1].seq) {
                    return Err(violation("an audit upload with a gap or out of order"));
                }
                self.state = HubState::CommittingAudit { through };
                Ok(vec![HubAction::CommitAudit { events, through }])
            }
            (HubState::Ready, Message::Pull { after, max_bytes }) => {
                self.state = HubState::Loading;
                Ok(vec![HubAction::Load {
                    after,
                    max_bytes: max_bytes.min(MAX_PULL_BYTES),
                }])
            }
            (HubState::Ready, Message::Done) => {
                self.state = HubState::Done;
                Ok(vec![HubAction::Finished])
            }
            (state, msg) => Err(violation(format!(
                "unexpected message {} while {state:?}",
                name(&msg)
            ))),
        }
    }

    /// The node may sync (with the hub's committed upload position for it, the
    /// refusals the node has not recorded, and its last stored audit event), or not.
    pub fn authenticated(
        &mut self,
        result: Result<Admitted, Refusal>,
    ) -> Result<Vec<HubAction>, SessionError> {
        if self.state != HubState::Authenticating {
            return Err(violation("authenticated while not authenticating"));
        }
        match result {
            Ok(Admitted {
                upload_acked,
                rejected,
                audit_acked,
            }) => {
                self.state = HubState::Ready;
                Ok(vec![HubAction::Send(Message::Welcome {
                    upload_acked,
                    rejected,
                    audit_acked,
                })])
            }
            Err(refusal) => {
                self.state = HubState::Done;
                Ok(vec![
                    HubAction::Send(Message::Refused(refusal)),
                    HubAction::Finished,
                ])
            }
        }
    }

    /// The batch is committed.
    pub fn committed(&mut self, rejected: Vec<Rejection>) -> Result<Vec<HubAction>, SessionError> {
        let HubState::Committing { through } = self.state else {
            return Err(violation("committed while not committing"));
        };
        self.state = HubState::Ready;
        Ok(vec![HubAction::Send(Message::UploadAck {
            through_seq: through,
            rejected,
        })])
    }

    /// The audit events are stored.
    pub fn audit_committed(&mut self) -> Result<Vec<HubAction>, SessionError> {
        let HubState::CommittingAudit { through } = self.state else {
            return Err(violation("audit committed while not committing it"));
        };
        self.state = HubState::Ready;
        Ok(vec![HubAction::Send(Message::AuditAck { through })])
    }

    /// The changes for the last pull are loaded.
    pub fn loaded(
        &mut self,
        changes: Vec<RemoteChange>,
        through: u64,
        more: bool,
    ) -> Result<Vec<HubAction>, SessionError> {
        if self.state != HubState::Loading {
            return Err(violation("loaded while not loading"));
        }
        self.state = HubState::Ready;
        Ok(vec![HubAction::Send(Message::Changes {
            changes,
            through,
            more,
        })])
    }
}

fn name(m: &Message) -> &'static str {
    match m {
        Message::Hello { .. } => "Hello",
        Message::Welcome { .. } => "Welcome",
        Message::Refused(_) => "Refused",
        Message::Upload { .. } => "Upload",
        Message::UploadAck { .. } => "UploadAck",
        Message::Pull { .. } => "Pull",
        Message::Changes { .. } => "Changes",
        Message::Done => "Done",
        Message::AuditUpload { .. } => "AuditUpload",
        Message::AuditAck { .. } => "AuditAck",
    }
}

#[cfg(test)]
mod tests;
