//! MAC Mask List and Reserve/Release fixtures.

mod common;

use aoe_wire::{
    parse, Command, DCmd, Directive, Directives, ErrorCode, Header, MCmd, MError, Mac, MacList,
    MacMask, Message, RCmd, Reserve, WireError,
};
use common::{assert_emits, frame, message, padded, INITIATOR, TAG, TARGET};

const X: Mac = Mac([0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE]);

#[test]
fn mask_edit_request() {
    let arg = [
        0x00, 0x01, 0x00, 0x02, // reserved, edit, merror, 2 directives
        0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // add INITIATOR
        0x00, 0x02, 0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, // delete X
    ];
    let f = padded(frame(0x10, 0, 2, &arg));
    let p = parse(&f).unwrap();
    let m = message!(p, MacMask);
    assert_eq!(m.mcmd, MCmd::Edit);
    assert_eq!(m.merror, MError::Ok);
    let list: Vec<Directive> = m.directives.iter().collect();
    assert_eq!(
        list,
        vec![
            Directive {
                dcmd: DCmd::Add,
                mac: INITIATOR
            },
            Directive {
                dcmd: DCmd::Delete,
                mac: X
            }
        ]
    );

    let dirs = [
        Directive {
            dcmd: DCmd::Add,
            mac: INITIATOR,
        },
        Directive {
            dcmd: DCmd::Delete,
            mac: X,
        },
    ];
    let req = MacMask::request(MCmd::Edit, Directives::from_slice(&dirs));
    assert_eq!(req, m);
    let header = Header::request(TARGET, INITIATOR, 7, 3, Command::MacMask, TAG);
    assert_emits(&f, |buf| req.emit(&header, buf));
}

#[test]
fn mask_read_reply_lists_entries() {
    let arg = [
        0x00, 0x00, 0x00, 0x03, //
        0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x00, 0x00, 0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, //
        0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, //
    ];
    let f = frame(0x18, 0, 2, &arg);
    assert_eq!(f.len(), 52);
    let f = padded(f);
    let p = parse(&f).unwrap();
    let m = message!(p, MacMask);
    assert_eq!(m.directives.len(), 3);
    assert!(m.directives.iter().all(|d| d.dcmd == DCmd::None));
    assert_eq!(m.directives.get(2).unwrap().mac, TARGET);
    assert_emits(&f, |buf| p.emit(buf));

    // The same reply built from the target's list of MACs.
    let list = [INITIATOR, X, TARGET];
    let reply = MacMask::request(MCmd::Read, Directives::listing(&list));
    assert_eq!(reply, m);
    let header =
        Header::request(TARGET, INITIATOR, 7, 3, Command::MacMask, TAG).response_to(TARGET, 7, 3);
    assert_emits(&f, |buf| reply.emit(&header, buf));
}

#[test]
fn mask_error_reply_carries_failed_index() {
    // Bad DCmd at directive 1: MError 2, Dir Count = 1, no list (vblade style).
    let arg = [0x00, 0x01, 0x02, 0x01];
    let f = padded(frame(0x18, 0, 2, &arg));
    let p = parse(&f).unwrap();
    let m = message!(p, MacMask);
    assert_eq!(m.merror, MError::BadDCmd);
    assert_eq!(m.failed_index, 1);
    assert!(m.directives.is_empty());
    assert_emits(&f, |buf| p.emit(buf));

    for (v, e) in [
        (0, MError::Ok),
        (1, MError::Unspecified),
        (2, MError::BadDCmd),
        (3, MError::ListFull),
        (9, MError::Unknown(9)),
    ] {
        assert_eq!(MError::from(v), e);
        assert_eq!(u8::from(e), v);
    }
}

#[test]
fn mask_request_ignores_merror_byte() {
    let arg = [0x00, 0x00, 0x07, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 9];
    let f = padded(frame(0x10, 0, 2, &arg));
    let m = message!(parse(&f).unwrap(), MacMask);
    assert_eq!(m.merror, MError::Ok);
    assert_eq!(m.directives.len(), 1);
}

#[test]
fn mask_emit_refuses_inconsistent_reprs() {
    let header = Header::request(TARGET, INITIATOR, 7, 3, Command::MacMask, 1);
    let mut buf = [0u8; 60];
    let bad_request = MacMask {
        merror: MError::ListFull,
        ..MacMask::request(MCmd::Edit, Directives::empty())
    };
    assert!(matches!(
        bad_request.emit(&header, &mut buf),
        Err(WireError::Inconsistent { .. })
    ));
    let index_without_error = MacMask {
        failed_index: 2,
        ..MacMask::request(MCmd::Edit, Directives::empty())
    };
    assert!(matches!(
        index_without_error.emit(&header.response_to(TARGET, 7, 3), &mut buf),
        Err(WireError::Inconsistent { .. })
    ));
    let many = vec![
        Directive {
            dcmd: DCmd::Add,
            mac: X
        };
        256
    ];
    let too_many = MacMask::request(MCmd::Edit, Directives::from_slice(&many));
    let mut big = vec![0u8; 4096];
    assert_eq!(
        too_many.emit(&header, &mut big),
        Err(WireError::ValueOutOfRange {
            field: "MAC Mask Dir Count",
            value: 256,
            max: 255
        })
    );
}

#[test]
fn mask_dir_count_beyond_frame() {
    // Dir Count 5 = 40 bytes, but a padded 60-byte frame holds 32 after offset 28.
    let arg = [0x00, 0x00, 0x00, 0x05];
    let f = padded(frame(0x18, 0, 2, &arg));
    assert_eq!(
        parse(&f),
        Err(WireError::CountExceedsFrame {
            field: "MAC Mask Dir Count",
            count: 5,
            need: 40,
            available: 32
        })
    );
    // Dir Count 4 fits exactly (all-zero directives from padding).
    let arg = [0x00, 0x00, 0x00, 0x04];
    let f = padded(frame(0x18, 0, 2, &arg));
    assert_eq!(message!(parse(&f).unwrap(), MacMask).directives.len(), 4);
}

#[test]
fn reserve_set_request_and_reply() {
    let arg = [
        0x01, 0x02, // set, 2 MACs
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE,
    ];
    let f = padded(frame(0x10, 0, 3, &arg));
    let p = parse(&f).unwrap();
    let r = message!(p, Reserve);
    assert_eq!(r.rcmd, RCmd::Set);
    assert_eq!(r.macs.iter().collect::<Vec<_>>(), vec![INITIATOR, X]);
    assert!(r.macs.contains(&X));
    assert!(!r.macs.contains(&TARGET));

    let macs = [INITIATOR, X];
    let req = Reserve {
        rcmd: RCmd::Set,
        macs: MacList::from_slice(&macs),
    };
    assert_eq!(req, r);
    let header = Header::request(TARGET, INITIATOR, 7, 3, Command::ReserveRelease, TAG);
    assert_emits(&f, |buf| req.emit(&header, buf));

    // Conflict reply: E + error 6 with the unchanged list {X}.
    let arg = [0x01, 0x01, 0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE];
    let f = padded(frame(0x1C, 0x06, 3, &arg));
    let p = parse(&f).unwrap();
    assert_eq!(p.header.error, Some(ErrorCode::TargetReserved));
    assert_eq!(
        message!(p, Reserve).macs.iter().collect::<Vec<_>>(),
        vec![X]
    );
    assert_emits(&f, |buf| p.emit(buf));
}

#[test]
fn reserve_padded_release_accepted() {
    // NMacs 0 in a padded frame: trailing zeros are not MACs (mdlayher's pitfall).
    let f = padded(frame(0x10, 0, 3, &[0x02, 0x00]));
    let r = message!(parse(&f).unwrap(), Reserve);
    assert_eq!(r.rcmd, RCmd::ForceSet);
    assert!(r.macs.is_empty());
    assert_eq!(RCmd::from(7), RCmd::Unknown(7));
}

#[test]
fn reserve_nmacs_beyond_frame() {
    // 6 MACs = 36 bytes; a 60-byte frame holds 34 after offset 26.
    let f = padded(frame(0x10, 0, 3, &[0x01, 0x06]));
    assert_eq!(
        parse(&f),
        Err(WireError::CountExceedsFrame {
            field: "Reserve/Release NMacs",
            count: 6,
            need: 36,
            available: 34
        })
    );
    let f = frame(0x10, 0, 3, &[0x01]);
    assert_eq!(
        parse(&f),
        Err(WireError::Truncated {
            part: "Reserve/Release argument",
            need: 26,
            have: 25
        })
    );
}

#[test]
fn reserve_emit_limits() {
    let many = vec![X; 256];
    let r = Reserve {
        rcmd: RCmd::Set,
        macs: MacList::from_slice(&many),
    };
    let header = Header::request(TARGET, INITIATOR, 7, 3, Command::ReserveRelease, 1);
    let mut buf = vec![0u8; 4096];
    assert!(matches!(
        r.emit(&header, &mut buf),
        Err(WireError::ValueOutOfRange { max: 255, .. })
    ));
    let r = Reserve {
        rcmd: RCmd::Set,
        macs: MacList::from_slice(&many[..10]),
    };
    assert_eq!(r.buffer_len(), 24 + 2 + 60);
    let mut small = [0u8; 85];
    assert_eq!(
        r.emit(&header, &mut small),
        Err(WireError::BufferTooSmall { need: 86, have: 85 })
    );
}

#[test]
fn mask_truncated_argument() {
    let f = frame(0x10, 0, 2, &[0x00, 0x01, 0x00]);
    assert_eq!(
        parse(&f),
        Err(WireError::Truncated {
            part: "MAC Mask argument",
            need: 28,
            have: 27
        })
    );
    // The same cut-short argument on an error reply is kept as Bare.
    let f = frame(0x1C, 2, 2, &[0x00, 0x01, 0x00]);
    assert_eq!(
        parse(&f).unwrap().message,
        Message::Bare(&[0x00, 0x01, 0x00])
    );
}
