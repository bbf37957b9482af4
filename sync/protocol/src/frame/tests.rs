//! Frame and message codec: round trips, streaming, limits, and arbitrary bytes
//! (the decoder must never panic, whatever it is fed).

use proptest::prelude::*;

use super::*;
use crate::message::*;

fn arb_change() -> impl Strategy<Value = Change> {
    (
        any::<u64>(),
        any::<[u8; 16]>(),
        "[a-z]{0,12}",
        any::<[u8; 32]>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(seq, doc_id, kind, hash, bytes)| Change {
            seq,
            doc_id,
            kind,
            hash,
            bytes,
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<[u8; 16]>(),
            "[A-Z0-9]{2,12}",
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(
                |(node_id, site, upload_acked, download_cursor)| Message::Hello {
                    node_id,
                    site,
                    upload_acked,
                    download_cursor
                }
            ),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(upload_acked, seq, audit_acked)| {
            Message::Welcome {
                upload_acked,
                rejected: vec![Rejection {
                    seq,
                    doc_id: [4; 16],
                    reason: "another site's document".into(),
                }],
                audit_acked,
            }
        }),
        proptest::collection::vec(
            (
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..200),
                any::<[u8; 32]>()
            ),
            0..20
        )
        .prop_map(|events| Message::AuditUpload {
            events: events
                .into_iter()
                .map(|(seq, event, hash)| AuditRecord { seq, event, hash })
                .collect(),
        }),
        any::<u64>().prop_map(|through| Message::AuditAck { through }),
        ".{0,80}".prop_map(|message| Message::Refused(Refusal {
            code: RefusalCode::Revoked,
            message
        })),
        proptest::collection::vec(arb_change(), 0..20)
            .prop_map(|changes| Message::Upload { changes }),
        (
            any::<u64>(),
            proptest::collection::vec((any::<u64>(), any::<[u8; 16]>(), ".{0,40}"), 0..5)
        )
            .prop_map(|(through_seq, r)| Message::UploadAck {
                through_seq,
                rejected: r
                    .into_iter()
                    .map(|(seq, doc_id, reason)| Rejection {
                        seq,
                        doc_id,
                        reason
                    })
                    .collect(),
            }),
        (any::<u64>(), any::<u32>())
            .prop_map(|(after, max_bytes)| Message::Pull { after, max_bytes }),
        (
            proptest::collection::vec(arb_change(), 0..20),
            any::<u64>(),
            any::<bool>()
        )
            .prop_map(|(c, through, more)| {
                Message::Changes {
                    changes: c
                        .into_iter()
                        .map(|c| RemoteChange {
                            cursor: c.seq,
                            doc_id: c.doc_id,
                            kind: c.kind,
                            hash: c.hash,
                            bytes: c.bytes,
                        })
                        .collect(),
                    through,
                    more,
                }
            }),
        Just(Message::Done),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn every_message_round_trips(msg in arb_message()) {
        let mut d = Decoder::new();
        d.push(&encode(&msg));
        prop_assert_eq!(d.next_message(), Ok(Some(msg)));
        prop_assert_eq!(d.next_message(), Ok(None));
    }

    #[test]
    fn messages_split_at_any_byte_still_decode(msgs in proptest::collection::vec(arb_message(), 1..5), cut in 1usize..64) {
        let wire: Vec<u8> = msgs.iter().flat_map(encode).collect();
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(cut) {
            d.push(chunk);
            while let Some(m) = d.next_message().expect("valid stream") {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut d = Decoder::new();
        d.push(&bytes);
        for _ in 0..4 {
            let _ = d.next_message();
        }
    }

    #[test]
    fn a_valid_header_with_arbitrary_payload_never_panics(
        tag in 0u8..10,
        flags in 0u8..2,
        payload in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut frame = Vec::new();
        frame.extend_from_slice(MAGIC);
        frame.extend_from_slice(&[PROTOCOL_VERSION, tag, flags, 0]);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        let mut d = Decoder::new();
        d.push(&frame);
        let _ = d.next_message();
    }
}

#[test]
fn another_version_is_named_in_the_error() {
    let mut frame = encode(&Message::Done);
    frame[4] = PROTOCOL_VERSION + 1;
    let mut d = Decoder::new();
    d.push(&frame);
    let err = d.next_message().expect_err("refused");
    assert_eq!(
        err,
        FrameError::UnsupportedVersion {
            ours: PROTOCOL_VERSION,
            theirs: PROTOCOL_VERSION + 1
        }
    );
    assert!(
        err.to_string()
            .contains(&format!("version {}", PROTOCOL_VERSION + 1))
    );
    // A failed decoder stays failed.
    d.push(&encode(&Message::Done));
    assert!(d.next_message().is_err());
}

#[test]
fn garbage_fails_fast_and_limits_hold() {
    let mut d = Decoder::new();
    d.push(b"GET / HTTP/1.1\r\n");
    assert_eq!(d.next_message(), Err(FrameError::BadMagic));

    let mut huge = Vec::new();
    huge.extend_from_slice(MAGIC);
    huge.extend_from_slice(&[PROTOCOL_VERSION, 8, 0, 0]);
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut d = Decoder::new();
    d.push(&huge);
    assert!(matches!(d.next_message(), Err(FrameError::TooLarge { .. })));

    // A forged list count cannot force an allocation larger than the message.
    let mut d = Decoder::new();
    let mut frame = Vec::new();
    frame.extend_from_slice(MAGIC);
    frame.extend_from_slice(&[PROTOCOL_VERSION, 4, 0, 0]);
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    d.push(&frame);
    assert!(matches!(d.next_message(), Err(FrameError::Malformed(_))));
}

#[test]
fn large_batches_are_compressed() {
    let changes = (0..200)
        .map(|i| Change {
            seq: i,
            doc_id: [7; 16],
            kind: "patient".into(),
            hash: [i as u8; 32],
            bytes: vec![b'x'; 100],
        })
        .collect();
    let msg = Message::Upload { changes };
    let wire = encode(&msg);
    assert_eq!(wire[6] & 1, 1, "compressed");
    let mut plain = Vec::new();
    msg.encode_body(&mut plain);
    assert!(
        wire.len() < plain.len() / 2,
        "{} vs {}",
        wire.len(),
        plain.len()
    );
    let mut d = Decoder::new();
    d.push(&wire);
    assert_eq!(d.next_message(), Ok(Some(msg)));
}

#[test]
fn the_largest_pull_the_hub_sends_fits_a_frame() {
    // The hub's cap of change data per pull, in the smallest realistic changes (the
    // most per-change framing) and incompressible bytes (deflate cannot help).
    let per_change = 100;
    let count = crate::session::MAX_PULL_BYTES as usize / per_change;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    };
    let changes: Vec<RemoteChange> = (0..count)
        .map(|i| RemoteChange {
            cursor: u64::MAX - count as u64 + i as u64,
            doc_id: [9; 16],
            kind: "appointment".into(),
            hash: [0; 32].map(|_| noise()),
            bytes: (0..per_change).map(|_| noise()).collect(),
        })
        .collect();
    let msg = Message::Changes {
        changes,
        through: u64::MAX,
        more: true,
    };
    let wire = encode(&msg);
    let mut body = Vec::new();
    msg.encode_body(&mut body);
    assert!(wire.len() <= MAX_FRAME, "{} bytes on the wire", wire.len());
    assert!(body.len() <= MAX_DECODED, "{} bytes decoded", body.len());
    let mut d = Decoder::new();
    d.push(&wire);
    assert_eq!(d.next_message(), Ok(Some(msg)));
}
