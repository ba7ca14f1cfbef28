//! Session state machine tests against the in-memory blade (no root).

use std::time::Duration;

use aoe_initiator::sim::{self, pattern, Impair, Sim, SimBlade};
use aoe_initiator::{BladeState, Event, IoError, IoRequest, Op, PoolConfig, SubmitError};
use aoe_wire::{parse, ErrorCode, Message, SECTOR_SIZE};

fn events(sim: &mut Sim) -> Vec<Event> {
    std::iter::from_fn(|| sim.pool.poll_event()).collect()
}

fn one_blade(mtu: u32, blade: SimBlade) -> (Sim, aoe_initiator::BladeId) {
    let mut sim = Sim::new(PoolConfig::default(), 1, mtu, 7);
    sim.attach(blade, &[0]);
    let ids = sim.discover_all();
    (sim, ids[0])
}

/// One blade of `sectors` on one path, discovered (its events drained), that
/// then stops answering; the pool gives it up after `dead_time`.
fn silent_blade(dead_time: Duration, sectors: u64) -> (Sim, aoe_initiator::BladeId) {
    let cfg = PoolConfig {
        dead_time,
        ..PoolConfig::default()
    };
    let mut sim = Sim::new(cfg, 1, 1500, 3);
    sim.attach(SimBlade::new(0, 0, sectors), &[0]);
    let id = sim.discover_all()[0];
    events(&mut sim);
    sim.blades[0].blade.dead = true;
    (sim, id)
}

#[test]
fn discovery_finds_blades_with_capacity_window_and_frame_size() {
    let mut sim = Sim::new(PoolConfig::default(), 1, 9000, 1);
    let mut a = SimBlade::new(0, 1, 4096);
    a.sector_count = 17;
    a.buffer_count = 32;
    sim.attach(a, &[0]);
    sim.attach(SimBlade::new(1, 3, 2048), &[0]);
    let ids = sim.discover_all();
    let a = sim.pool.blade_info(ids[0]).unwrap();
    assert_eq!((a.shelf, a.slot, a.sectors), (0, 1, 4096));
    assert_eq!(a.buffer_count, 32);
    assert_eq!(a.sectors_per_frame, 17);
    assert_eq!(a.stats.window, 16, "starts at Buffer Count / 2");
    assert_eq!(a.firmware, 0x4019);
    assert_eq!(a.config, b"sim blade");
    assert_eq!(a.paths.len(), 1);
    let b = sim.pool.blade_info(ids[1]).unwrap();
    assert_eq!(
        (b.shelf, b.slot, b.sectors, b.sectors_per_frame),
        (1, 3, 2048, 2)
    );
    let ev = events(&mut sim);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::BladeUp { .. }))
            .count(),
        2
    );
}

#[test]
fn unsolicited_announcement_creates_a_blade() {
    let mut sim = Sim::new(PoolConfig::default(), 1, 1500, 1);
    let blade = SimBlade::new(5, 2, 100);
    let ann = blade.announce();
    sim.attach(blade, &[0]);
    sim.pool.handle_frame(sim.now, 0, &ann);
    assert!(sim.run_until(Duration::from_secs(1), |s| s
        .pool
        .find(5, 2)
        .and_then(|b| s.pool.blade_state(b))
        == Some(BladeState::Up)));
}

#[test]
fn mtu_limits_sectors_per_frame() {
    // Blade advertises 17 but our MTU is 1500 → 2.
    let mut b = SimBlade::new(0, 0, 64);
    b.sector_count = 17;
    let (sim, id) = one_blade(1500, b);
    assert_eq!(sim.pool.sectors_per_frame(id), Some(2));
}

#[test]
fn sector_count_zero_means_two_with_a_notice() {
    let mut b = SimBlade::new(0, 0, 64);
    b.sector_count = 0;
    let (mut sim, id) = one_blade(9000, b);
    assert_eq!(sim.pool.sectors_per_frame(id), Some(2));
    let ev = events(&mut sim);
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::Notice { message, .. } if message.contains("Sector Count 0"))
        ),
        "{ev:?}"
    );
    // I/O still works (the blade accepts 2 sectors per request).
    let mut data = vec![0u8; 8 * SECTOR_SIZE];
    pattern(3, 8, &mut data);
    sim.submit(id, Op::Write, 8, 8, data.clone(), 1);
    assert!(sim.wait_for(1, Duration::from_secs(1)).result.is_ok());
    sim.submit(id, Op::Read, 8, 8, vec![0; 8 * SECTOR_SIZE], 2);
    let c = sim.wait_for(2, Duration::from_secs(1));
    assert_eq!(c.buf, data);
}

#[test]
fn buffer_count_zero_or_one_keeps_one_frame_outstanding() {
    for bc in [0u16, 1] {
        let mut b = SimBlade::new(0, 0, 256);
        b.buffer_count = bc;
        let (mut sim, id) = one_blade(1500, b);
        let ev = events(&mut sim);
        assert!(
            ev.iter().any(
                |e| matches!(e, Event::Notice { message, .. } if message.contains("Buffer Count"))
            ),
            "{ev:?}"
        );
        sim.submit(id, Op::Read, 0, 64, vec![0; 64 * SECTOR_SIZE], 1);
        let mut max_in_flight = 0;
        assert!(sim.run_until(Duration::from_secs(2), |s| {
            max_in_flight = max_in_flight.max(s.pool.frames_in_flight());
            s.completions.iter().any(|c| c.user == 1)
        }));
        assert_eq!(max_in_flight, 1);
        assert_eq!(sim.pool.blade_stats(id).unwrap().window, 1);
    }
}

#[test]
fn a_media_error_fails_the_read_with_unc_until_a_write_remaps_it() {
    let mut blade = SimBlade::new(0, 1, 64);
    blade.bad.push((10, 12));
    let (mut sim, id) = one_blade(9000, blade);
    sim.submit(id, Op::Read, 8, 4, vec![0; 4 * SECTOR_SIZE], 1);
    let c = sim.wait_for(1, Duration::from_secs(1));
    assert_eq!(
        c.result,
        Err(IoError::Ata {
            status: 0x41,
            error: 0x40
        })
    );
    sim.submit(id, Op::Read, 0, 8, vec![0; 8 * SECTOR_SIZE], 2);
    assert!(
        sim.wait_for(2, Duration::from_secs(1)).result.is_ok(),
        "no overlap"
    );
    sim.submit(id, Op::Write, 10, 2, vec![7; 2 * SECTOR_SIZE], 3);
    assert!(sim.wait_for(3, Duration::from_secs(1)).result.is_ok());
    sim.submit(id, Op::Read, 8, 4, vec![0; 4 * SECTOR_SIZE], 4);
    let c = sim.wait_for(4, Duration::from_secs(1));
    assert!(c.result.is_ok());
    assert_eq!(
        &c.buf[2 * SECTOR_SIZE..4 * SECTOR_SIZE],
        &[7; 2 * SECTOR_SIZE][..]
    );
    assert!(
        sim.blades[0].blade.bad.is_empty(),
        "the write remapped the range"
    );
}

#[test]
fn large_io_is_split_into_frames() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 0, 1024));
    sim.record_sent = true;
    let mut data = vec![0u8; 11 * SECTOR_SIZE];
    pattern(1, 100, &mut data);
    sim.submit(id, Op::Write, 100, 11, data.clone(), 1);
    assert!(sim.wait_for(1, Duration::from_secs(1)).result.is_ok());
    let frames: Vec<(u64, u8)> = sim
        .sent
        .iter()
        .filter_map(|(_, f)| match parse(f).ok()?.message {
            Message::Ata(a) => Some((a.arg.lba48(), a.arg.sector_count)),
            _ => None,
        })
        .collect();
    let mut frames = frames;
    frames.sort();
    assert_eq!(
        frames,
        vec![(100, 2), (102, 2), (104, 2), (106, 2), (108, 2), (110, 1)]
    );
    let disk = &sim.blades[0].blade.disk;
    assert_eq!(&disk[100 * SECTOR_SIZE..111 * SECTOR_SIZE], &data[..]);
}

#[test]
fn an_early_timer_finds_nothing_due_and_settles() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 0, 1024));
    sim.submit(id, Op::Read, 0, 2, vec![0; 2 * SECTOR_SIZE], 1);
    assert!(sim.wait_for(1, Duration::from_secs(1)).result.is_ok());
    // The reply came long before the frame's deadline; the timer still names it.
    let due = sim
        .pool
        .poll_timeout()
        .expect("the completed frame's deadline");
    assert!(due > sim.now);
    let before = sim.pool.blade_stats(id).unwrap();
    sim.now = due;
    sim.pool.handle_timeout(sim.now);
    let after = sim.pool.blade_stats(id).unwrap();
    assert_eq!(after.timeouts, before.timeouts, "nothing was due");
    assert!(sim.pool.poll_transmit(sim.now, &mut [0u8; 9216]).is_none());
    assert_eq!(
        sim.pool.poll_timeout(),
        None,
        "no frame on the wire, no probe"
    );
}

/// Sends one read and returns (the request frame, the reply the blade would send).
fn captured_read(sim: &mut Sim, id: aoe_initiator::BladeId) -> (Vec<u8>, Vec<u8>) {
    sim.submit(id, Op::Read, 4, 2, vec![0; 2 * SECTOR_SIZE], 42);
    let mut buf = vec![0u8; 9216];
    let t = sim.pool.poll_transmit(sim.now, &mut buf).expect("a frame");
    let req = buf[..t.len].to_vec();
    let reply = sim.blades[0].blade.respond(&req).expect("reply");
    (req, reply)
}

/// Lets the outstanding frame time out and returns its retransmission.
fn time_out_and_resend(sim: &mut Sim) -> Vec<u8> {
    let deadline = sim.pool.poll_timeout().expect("deadline");
    sim.now = deadline;
    sim.pool.handle_timeout(sim.now);
    let mut buf = vec![0u8; 9216];
    let t = sim
        .pool
        .poll_transmit(sim.now, &mut buf)
        .expect("retransmission");
    buf[..t.len].to_vec()
}

#[test]
fn forged_replies_with_a_live_tag_are_dropped() {
    let mut blade = SimBlade::new(0, 1, 64);
    blade.disk[4 * SECTOR_SIZE] = 0xAB;
    let mut sim = Sim::new(PoolConfig::default(), 2, 1500, 1);
    sim.attach(blade, &[0]);
    sim.attach(SimBlade::new(0, 2, 64), &[0]);
    let ids = sim.discover_all();
    let id = ids[0];
    let (_req, reply) = captured_read(&mut sim, id);

    let mut forged_mac = reply.clone();
    forged_mac[6..12].copy_from_slice(&[0x02, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE]);
    let mut other_blade_mac = reply.clone();
    other_blade_mac[6..12].copy_from_slice(&sim.blades[1].macs[0].0);
    let mut wrong_slot = reply.clone();
    wrong_slot[18] = 2; // e0.2 exists, but the tag belongs to e0.1
    let mut wrong_shelf = reply.clone();
    wrong_shelf[16..18].copy_from_slice(&9u16.to_be_bytes());
    let mut wrong_command = reply.clone();
    wrong_command[19] = 1; // Query Config carrying the live ATA tag
    let mut zeroed = reply.clone();
    zeroed[36..36 + 1024].fill(0);
    let now = sim.now;
    for f in [
        &forged_mac,
        &other_blade_mac,
        &wrong_slot,
        &wrong_shelf,
        &wrong_command,
    ] {
        sim.pool.handle_frame(now, 0, f);
    }
    // The right reply on the wrong interface is not accepted either.
    sim.pool.handle_frame(now, 1, &zeroed);
    assert!(
        sim.pool.poll_completion().is_none(),
        "no forged reply may complete the read"
    );
    let st = sim.pool.blade_stats(id).unwrap();
    assert_eq!(st.forged_drops, 6, "{st:?}");
    // The genuine reply still completes it with the blade's data.
    sim.pool.handle_frame(now, 0, &reply);
    let c = sim.pool.poll_completion().expect("completed");
    assert!(c.result.is_ok());
    assert_eq!(c.buf[0], 0xAB);
    // A duplicate of it is stale now.
    sim.pool.handle_frame(now, 0, &reply);
    assert_eq!(sim.pool.blade_stats(id).unwrap().stale_drops, 1);
    assert!(sim.pool.poll_completion().is_none());
}

#[test]
fn retransmit_uses_a_new_tag_and_the_late_reply_is_ignored() {
    let mut blade = SimBlade::new(0, 1, 64);
    blade.disk[4 * SECTOR_SIZE] = 0x11;
    let (mut sim, id) = one_blade(1500, blade);
    let (req1, late_reply) = captured_read(&mut sim, id);
    let tag1 = parse(&req1).unwrap().header.tag;
    // Nothing answers: the timeout fires and the frame goes out again.
    let req2 = time_out_and_resend(&mut sim);
    let tag2 = parse(&req2).unwrap().header.tag;
    assert_ne!(tag1, tag2);
    assert_eq!(&req1[24..36], &req2[24..36], "same ATA command");
    // The blade's data changes in between, so we can tell which reply was used.
    sim.blades[0].blade.disk[4 * SECTOR_SIZE] = 0x22;
    let fresh = sim.blades[0].blade.respond(&req2).unwrap();
    sim.pool.handle_frame(sim.now, 0, &late_reply);
    assert!(
        sim.pool.poll_completion().is_none(),
        "late reply to the old tag ignored"
    );
    sim.pool.handle_frame(sim.now, 0, &fresh);
    let c = sim.pool.poll_completion().unwrap();
    assert_eq!(c.buf[0], 0x22);
    let st = sim.pool.blade_stats(id).unwrap();
    assert_eq!((st.retransmits, st.timeouts, st.stale_drops), (1, 1, 1));
}

#[test]
fn late_reply_to_a_superseded_send_teaches_the_rtt_and_undoes_the_cut() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 1, 64));
    let (_req1, late_reply) = captured_read(&mut sim, id);
    let before = sim.pool.blade_stats(id).unwrap();
    let t_sent = sim.now;
    let req2 = time_out_and_resend(&mut sim);
    let cut = sim.pool.blade_stats(id).unwrap();
    assert!(
        cut.window < before.window,
        "timeout cuts the window: {cut:?}"
    );
    // The first send was only slow: its reply comes 5 ms after the retransmission.
    sim.now += Duration::from_millis(5);
    sim.pool.handle_frame(sim.now, 0, &late_reply);
    assert!(sim.pool.poll_completion().is_none(), "its data is not used");
    let st = sim.pool.blade_stats(id).unwrap();
    assert_eq!(st.spurious_timeouts, 1, "{st:?}");
    assert_eq!(st.window, before.window, "cut undone: {st:?}");
    let late_rtt = (sim.now - t_sent).as_micros() as u64;
    assert!(
        st.srtt_us > before.srtt_us && st.srtt_us <= late_rtt,
        "the late round trip ({late_rtt} µs) was sampled: {before:?} -> {st:?}"
    );
    // A duplicate of the late reply teaches nothing more.
    sim.pool.handle_frame(sim.now, 0, &late_reply);
    assert_eq!(sim.pool.blade_stats(id).unwrap().srtt_us, st.srtt_us);
    // The retransmission still completes the read.
    let fresh = sim.blades[0].blade.respond(&req2).unwrap();
    sim.pool.handle_frame(sim.now, 0, &fresh);
    assert!(sim.pool.poll_completion().unwrap().result.is_ok());
}

#[test]
fn dead_blade_fails_all_io_within_dead_time_and_comes_back() {
    let (mut sim, id) = silent_blade(Duration::from_secs(3), 4096);
    let t0 = sim.now;
    for u in 0..40 {
        let op = if u % 2 == 0 { Op::Read } else { Op::Write };
        sim.submit(id, op, u * 16, 16, vec![0; 16 * SECTOR_SIZE], u);
    }
    assert!(sim.run_until(Duration::from_secs(10), |s| s.completions.len() == 40));
    let took = sim.now - t0;
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert!(sim
        .completions
        .iter()
        .all(|c| c.result == Err(IoError::BladeDown)));
    assert_eq!(sim.pool.blade_state(id), Some(BladeState::Down));
    assert_eq!(sim.pool.ios_outstanding(), 0);
    let ev = events(&mut sim);
    assert!(
        ev.contains(&Event::BladeDown {
            blade: id,
            failed_ios: 40
        }),
        "{ev:?}"
    );
    let r = sim.pool.submit(
        sim.now,
        IoRequest {
            blade: id,
            op: Op::Read,
            lba: 0,
            sectors: 1,
            buf: vec![0; 512],
            user: 99,
        },
    );
    assert_eq!(r.unwrap_err().error, SubmitError::Down);
    // It comes back: the periodic probe notices, IDENTIFY, usable again.
    sim.blades[0].blade.dead = false;
    assert!(
        sim.run_until(Duration::from_secs(3), |s| s.pool.blade_state(id)
            == Some(BladeState::Up))
    );
    assert!(events(&mut sim).contains(&Event::BladeUp {
        blade: id,
        sectors: 4096
    }));
    sim.submit(id, Op::Write, 0, 4, vec![7; 4 * SECTOR_SIZE], 100);
    assert!(sim.wait_for(100, Duration::from_secs(1)).result.is_ok());
}

#[test]
fn overlapping_writes_are_serialized() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 0, 1024));
    sim.record_sent = true;
    sim.submit(id, Op::Write, 10, 8, vec![1; 8 * SECTOR_SIZE], 1);
    sim.submit(id, Op::Write, 14, 8, vec![2; 8 * SECTOR_SIZE], 2);
    sim.submit(id, Op::Write, 100, 2, vec![3; 2 * SECTOR_SIZE], 3);
    sim.flush();
    // The second write overlaps the first: none of its frames may be on the wire yet.
    let lbas: Vec<u64> = sim
        .sent
        .iter()
        .filter_map(|(_, f)| match parse(f).ok()?.message {
            Message::Ata(a) if a.arg.cmd_status == aoe_wire::ata::WRITE_EXT => Some(a.arg.lba48()),
            _ => None,
        })
        .collect();
    assert!(lbas.contains(&10) && lbas.contains(&100), "{lbas:?}");
    assert!(
        !lbas.iter().any(|&l| (14..22).contains(&l) && l >= 18),
        "{lbas:?}"
    );
    assert_eq!(
        lbas.iter().filter(|&&l| l == 14).count(),
        1,
        "only the first write's frame at 14"
    );
    for u in 1..=3 {
        assert!(sim.wait_for(u, Duration::from_secs(1)).result.is_ok());
    }
    let disk = &sim.blades[0].blade.disk;
    assert!(disk[10 * 512..14 * 512].iter().all(|&b| b == 1));
    assert!(
        disk[14 * 512..22 * 512].iter().all(|&b| b == 2),
        "later write wins"
    );
}

/// Submits a write of `sectors` sectors of `byte` at `lba` and returns its one frame
/// (sent, not delivered), or `None` if the pool holds it back.
fn write_frame(
    sim: &mut Sim,
    id: aoe_initiator::BladeId,
    lba: u64,
    byte: u8,
    user: u64,
) -> Option<Vec<u8>> {
    sim.submit(id, Op::Write, lba, 2, vec![byte; 2 * SECTOR_SIZE], user);
    let mut buf = vec![0u8; 9216];
    let t = sim.pool.poll_transmit(sim.now, &mut buf)?;
    Some(buf[..t.len].to_vec())
}

/// A write whose first send timed out, answered through its resend: returns the
/// first send (a copy that may still land). The write completes at once.
fn write_answered_through_a_resend(sim: &mut Sim, id: aoe_initiator::BladeId) -> Vec<u8> {
    let copy = write_frame(sim, id, 4, 1, 1).expect("first write goes out");
    let resend = time_out_and_resend(sim);
    let reply = sim.blades[0].blade.respond(&resend).unwrap();
    sim.pool.handle_frame(sim.now, 0, &reply);
    let c = sim
        .pool
        .poll_completion()
        .expect("completed on its first reply");
    assert!(c.result.is_ok());
    copy
}

#[test]
fn a_write_sent_once_lets_the_next_overlapping_write_go_at_once() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 1, 64));
    let w1 = write_frame(&mut sim, id, 4, 1, 1).unwrap();
    let reply = sim.blades[0].blade.respond(&w1).unwrap();
    sim.pool.handle_frame(sim.now, 0, &reply);
    assert!(sim.pool.poll_completion().unwrap().result.is_ok());
    assert!(write_frame(&mut sim, id, 5, 2, 2).is_some());
}

#[test]
fn a_resent_write_holds_overlapping_writes_until_its_copy_is_answered() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 1, 64));
    let copy = write_answered_through_a_resend(&mut sim, id);
    assert!(
        write_frame(&mut sim, id, 5, 2, 2).is_none(),
        "the first send of write 1 may still land: write 2 waits"
    );
    // A write elsewhere is not held.
    assert!(write_frame(&mut sim, id, 20, 3, 3).is_some());
    // The first send lands late; once answered, write 2 goes and is the last to land.
    let late = sim.blades[0].blade.respond(&copy).unwrap();
    sim.pool.handle_frame(sim.now, 0, &late);
    let mut buf = vec![0u8; 9216];
    let t = sim
        .pool
        .poll_transmit(sim.now, &mut buf)
        .expect("write 2 released");
    sim.blades[0].blade.respond(&buf[..t.len]).unwrap();
    let disk = &sim.blades[0].blade.disk;
    assert!(disk[4 * 512..5 * 512].iter().all(|&b| b == 1));
    assert!(
        disk[5 * 512..7 * 512].iter().all(|&b| b == 2),
        "write 2 is not overwritten"
    );
}

#[test]
fn a_lost_copy_holds_overlapping_writes_for_the_copy_lifetime_only() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 1, 64));
    write_answered_through_a_resend(&mut sim, id);
    let resent_at = sim.now;
    assert!(write_frame(&mut sim, id, 4, 2, 2).is_none());
    let until = resent_at + PoolConfig::default().rto_max;
    let due = sim
        .pool
        .poll_timeout()
        .expect("the timer wakes for the bound");
    assert!(due <= until, "timer {due:?} later than the bound {until:?}");
    let mut buf = vec![0u8; 9216];
    sim.now = until - Duration::from_micros(1);
    sim.pool.handle_timeout(sim.now);
    assert!(
        sim.pool.poll_transmit(sim.now, &mut buf).is_none(),
        "held until the bound"
    );
    assert_eq!(sim.pool.poll_timeout(), Some(until));
    sim.now = until;
    sim.pool.handle_timeout(sim.now);
    assert!(
        sim.pool.poll_transmit(sim.now, &mut buf).is_some(),
        "released at the bound"
    );
}

#[test]
fn aoe_and_ata_errors_surface() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 0, 64));
    // Beyond the end on the blade side: the blade answers IDNF. (The pool
    // refuses out-of-range I/O itself, so make the blade smaller than it said.)
    sim.blades[0].blade.disk.truncate(32 * SECTOR_SIZE);
    sim.submit(id, Op::Read, 40, 2, vec![0; 1024], 1);
    let c = sim.wait_for(1, Duration::from_secs(1));
    assert_eq!(
        c.result,
        Err(IoError::Ata {
            status: 0x41,
            error: 0x10
        })
    );
    assert!(c.result.unwrap_err().to_string().contains("IDNF"));
    sim.blades[0].blade.aoe_error = Some(ErrorCode::TargetReserved);
    sim.submit(id, Op::Write, 0, 2, vec![0; 1024], 2);
    let c = sim.wait_for(2, Duration::from_secs(1));
    assert_eq!(c.result, Err(IoError::Aoe(ErrorCode::TargetReserved)));
    let st = sim.pool.blade_stats(id).unwrap();
    assert_eq!((st.ata_errors, st.aoe_errors), (1, 1));
}

#[test]
fn submit_checks_range_and_buffer() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 0, 64));
    let bad = |sim: &mut Sim, lba, sectors, len| {
        sim.pool
            .submit(
                sim.now,
                IoRequest {
                    blade: id,
                    op: Op::Read,
                    lba,
                    sectors,
                    buf: vec![0; len],
                    user: 0,
                },
            )
            .unwrap_err()
            .error
    };
    assert!(matches!(
        bad(&mut sim, 63, 2, 1024),
        SubmitError::OutOfRange { .. }
    ));
    assert!(matches!(
        bad(&mut sim, u64::MAX, 2, 1024),
        SubmitError::OutOfRange { .. }
    ));
    assert!(matches!(
        bad(&mut sim, 0, 2, 1000),
        SubmitError::BufferTooSmall { .. }
    ));
    assert_eq!(bad(&mut sim, 0, 0, 0), SubmitError::Empty);
}

#[test]
fn capacity_change_is_reported() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 0, 64));
    events(&mut sim);
    sim.blades[0].blade.identify_sectors = Some(128);
    assert!(sim.pool.reidentify(sim.now, id));
    assert!(sim.run_until(Duration::from_secs(1), |s| s.pool.capacity(id) == Some(128)));
    let ev = events(&mut sim);
    assert!(
        ev.contains(&Event::CapacityChanged {
            blade: id,
            old: 64,
            new: 128
        }),
        "{ev:?}"
    );
    assert_eq!(sim.pool.blade_state(id), Some(BladeState::Up));
}

#[test]
fn flush_reaches_the_blade() {
    let (mut sim, id) = one_blade(1500, SimBlade::new(0, 0, 64));
    let before = sim.blades[0].blade.requests;
    sim.submit(id, Op::Flush, 0, 0, Vec::new(), 5);
    assert!(sim.wait_for(5, Duration::from_secs(1)).result.is_ok());
    assert_eq!(sim.blades[0].blade.requests, before + 1);
}

#[test]
fn dual_path_survives_one_link_down() {
    let mut sim = Sim::new(PoolConfig::default(), 2, 1500, 5);
    sim.attach(SimBlade::new(0, 0, 4096), &[0, 1]);
    let id = sim.discover_all()[0];
    assert_eq!(sim.pool.blade_info(id).unwrap().paths.len(), 2);
    let mut data = vec![0u8; 64 * SECTOR_SIZE];
    pattern(9, 0, &mut data);
    sim.submit(id, Op::Write, 0, 64, data.clone(), 1);
    assert!(sim.wait_for(1, Duration::from_secs(1)).result.is_ok());
    sim.link_down.push(0);
    for round in 0..20u64 {
        sim.submit(id, Op::Read, 0, 64, vec![0; 64 * SECTOR_SIZE], 10 + round);
        let c = sim.wait_for(10 + round, Duration::from_secs(2));
        assert!(c.result.is_ok());
        assert_eq!(c.buf, data);
    }
    assert_eq!(sim.pool.blade_state(id), Some(BladeState::Up));
    assert!(sim.pool.blade_stats(id).unwrap().retransmits > 0);
}

/// Random reads and writes through loss, reordering and duplication,
/// checked against a model disk.
fn chaos(seed: u64, impair: Impair, ops: usize, mtu: u32) -> u64 {
    let mut sim = Sim::new(PoolConfig::default(), 1, mtu, seed);
    let mut blade = SimBlade::new(0, 0, 2048);
    blade.sector_count = aoe_wire::sectors_per_frame(mtu);
    sim.attach(blade, &[0]);
    let id = sim.discover_all()[0];
    sim.impair = impair;
    let mut model = vec![0u8; 2048 * SECTOR_SIZE];
    let mut rng = sim::Rng::new(seed ^ 0xABCD);
    let mut pending = Vec::new();
    for u in 0..ops as u64 {
        let sectors = 1 + rng.below(40) as u32;
        let lba = rng.below(2048 - u64::from(sectors));
        let range = lba as usize * SECTOR_SIZE..(lba as usize + sectors as usize) * SECTOR_SIZE;
        if rng.chance(0.5) {
            let mut data = vec![0u8; sectors as usize * SECTOR_SIZE];
            pattern(u, lba, &mut data);
            model[range].copy_from_slice(&data);
            sim.submit(id, Op::Write, lba, sectors, data, u);
            // Reads are checked after every write before them completed.
            pending.push(u);
        } else {
            for p in pending.drain(..) {
                assert!(sim.wait_for(p, Duration::from_secs(5)).result.is_ok());
            }
            sim.submit(
                id,
                Op::Read,
                lba,
                sectors,
                vec![0; sectors as usize * SECTOR_SIZE],
                u,
            );
            let c = sim.wait_for(u, Duration::from_secs(5));
            assert!(c.result.is_ok(), "{:?}", c.result);
            assert!(c.buf == model[range], "read {u} at {lba}+{sectors} differs");
        }
    }
    for p in pending.drain(..) {
        assert!(sim.wait_for(p, Duration::from_secs(5)).result.is_ok());
    }
    assert_eq!(&sim.blades[0].blade.disk, &model);
    let st = sim.pool.blade_stats(id).unwrap();
    // A lost ATA frame forces a retransmit, unless duplication made it redundant (a
    // duplicated request's extra reply may be the one lost).
    if sim.lost_ata > 0 && impair.dup == 0.0 {
        assert!(
            st.retransmits > 0,
            "{} ATA frames lost, none retransmitted",
            sim.lost_ata
        );
    }
    st.retransmits
}

#[test]
fn data_survives_loss_reorder_and_duplication() {
    let impair = Impair {
        loss: 0.05,
        dup: 0.01,
        reorder: 0.25,
    };
    for (seed, ops, mtu) in [(11, 300, 1500), (12, 200, 9000)] {
        let retransmits = chaos(seed, impair, ops, mtu);
        assert!(
            retransmits > 0,
            "5% loss over {ops} ops must cost retransmits"
        );
    }
}

#[test]
fn data_survives_heavy_loss() {
    let impair = Impair {
        loss: 0.3,
        dup: 0.1,
        reorder: 0.3,
    };
    assert!(
        chaos(13, impair, 100, 1500) > 0,
        "30% loss must cost retransmits"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn random_impairments_never_corrupt(seed in any::<u64>(), loss in 0.0f64..0.2, dup in 0.0f64..0.1, reorder in 0.0f64..0.5) {
            chaos(seed, Impair { loss, dup, reorder }, 40, 1500);
        }

        #[test]
        fn arbitrary_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..200), iface in 0usize..3) {
            let (mut sim, _) = one_blade(1500, SimBlade::new(0, 0, 64));
            sim.pool.handle_frame(sim.now, iface, &frame);
            let mut f = frame.clone();
            if f.len() >= 24 {
                f[12] = 0x88; f[13] = 0xA2; f[14] |= 0x08;
                sim.pool.handle_frame(sim.now, iface, &f);
            }
        }
    }
}

mod reservations {
    use super::*;
    use aoe_initiator::{ReserveCmd, ReserveError};
    use aoe_wire::Mac;

    const OTHER: Mac = Mac([0x02, 0xBB, 0, 0, 0, 1]);
    const LIMIT: Duration = Duration::from_secs(1);

    fn ours(sim: &Sim) -> Vec<Mac> {
        sim.pool.interfaces().iter().map(|i| i.mac).collect()
    }

    fn write(sim: &mut Sim, id: aoe_initiator::BladeId, user: u64) -> Result<(), IoError> {
        sim.submit(id, Op::Write, 0, 2, vec![7; 1024], user);
        sim.wait_for(user, LIMIT).result
    }

    #[test]
    fn set_claims_a_free_blade_and_is_refused_once_another_holds_it() {
        let (mut sim, id) = one_blade(1500, SimBlade::new(0, 1, 64));
        let me = ours(&sim);
        let c = sim.reserve(id, ReserveCmd::Read, &[], LIMIT);
        assert_eq!(c.result, Ok(vec![]));
        let c = sim.reserve(id, ReserveCmd::Set, &me, LIMIT);
        assert_eq!(c.result, Ok(me.clone()));
        assert_eq!(sim.blades[0].blade.reserve, me);
        // Set again while we hold it: allowed (a resend after a lost reply is harmless).
        assert_eq!(
            sim.reserve(id, ReserveCmd::Set, &me, LIMIT).result,
            Ok(me.clone())
        );
        assert_eq!(write(&mut sim, id, 1), Ok(()));

        // Another station force-sets the list: our Set is refused and names it,
        // our writes are refused with AoE error 6, IDENTIFY still answers.
        sim.blades[0].blade.reserve = vec![OTHER];
        let c = sim.reserve(id, ReserveCmd::Set, &me, LIMIT);
        assert_eq!(c.result, Err(ReserveError::Held(vec![OTHER])));
        assert_eq!(
            c.result.unwrap_err().to_string(),
            format!("reserved by {OTHER}")
        );
        assert_eq!(
            write(&mut sim, id, 2),
            Err(IoError::Aoe(ErrorCode::TargetReserved))
        );
        assert_eq!(sim.blades[0].blade.reserved_refusals, 1);
        assert!(sim.pool.reidentify(sim.now, id));
        sim.advance(Duration::from_millis(10));
        assert_eq!(sim.pool.blade_state(id), Some(BladeState::Up));

        // Force Set takes it back.
        let c = sim.reserve(id, ReserveCmd::ForceSet, &me, LIMIT);
        assert_eq!(c.result, Ok(me.clone()));
        assert_eq!(write(&mut sim, id, 3), Ok(()));
        // Set with no MACs releases.
        assert_eq!(
            sim.reserve(id, ReserveCmd::Set, &[], LIMIT).result,
            Ok(vec![])
        );
    }

    #[test]
    fn a_restarted_blade_forgets_its_list() {
        let (mut sim, id) = one_blade(1500, SimBlade::new(0, 1, 64));
        let me = ours(&sim);
        sim.reserve(id, ReserveCmd::Set, &me, LIMIT).result.unwrap();
        sim.blades[0].blade.restart();
        assert_eq!(
            sim.reserve(id, ReserveCmd::Read, &[], LIMIT).result,
            Ok(vec![])
        );
        // Anyone may claim it now.
        sim.blades[0].blade.reserve = vec![OTHER];
        assert_eq!(
            sim.reserve(id, ReserveCmd::Set, &me, LIMIT).result,
            Err(ReserveError::Held(vec![OTHER]))
        );
    }

    #[test]
    fn a_request_goes_to_every_path_and_survives_loss() {
        let mut sim = Sim::new(PoolConfig::default(), 2, 1500, 11);
        sim.attach(SimBlade::new(0, 0, 64), &[0, 1]);
        let id = sim.discover_all()[0];
        let me = ours(&sim);
        sim.record_sent = true;
        sim.impair = Impair {
            loss: 0.3,
            dup: 0.1,
            reorder: 0.3,
        };
        let c = sim.reserve(id, ReserveCmd::Set, &me, Duration::from_secs(5));
        assert_eq!(c.result, Ok(me.clone()));
        let on = |iface: usize| {
            sim.sent.iter().any(|(i, f)| {
                *i == iface && matches!(parse(f).unwrap().message, Message::Reserve(_))
            })
        };
        assert!(on(0) && on(1), "one frame per path");
        assert_eq!(sim.pool.reserves_outstanding(), 0);
        assert_eq!(sim.pool.frames_in_flight(), 0);
    }

    #[test]
    fn a_dead_blade_fails_its_requests() {
        let (mut sim, id) = silent_blade(Duration::from_secs(1), 64);
        let c = sim.reserve(id, ReserveCmd::ForceSet, &[OTHER], Duration::from_secs(3));
        assert_eq!(c.result, Err(ReserveError::BladeDown));
        assert_eq!(
            sim.pool.reserve(
                sim.now,
                aoe_initiator::ReserveRequest {
                    blade: id,
                    cmd: ReserveCmd::Read,
                    macs: vec![],
                    user: 0
                }
            ),
            Err(SubmitError::Down)
        );
    }
}
