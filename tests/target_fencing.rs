//! The target side of fencing (docs/fencing.md), against `aoeraid serve` and a
//! RAID 1 export of `aoeraid run`, with two raw-socket stations: A (a
//! survivor) reserves the export for itself with Set; B (the victim) then
//! gets an ATA error status for READ and WRITE at once, its write changes
//! nothing, IDENTIFY and the control commands still answer; the reservation
//! survives a restart of the target and shows in its status, metrics and
//! logs; with an allow list, B may not change the reservation. And the stock
//! Linux driver (Debian's kernel in qemu) fails a fenced READ and WRITE with
//! EIO at once. Root only.

use aoeraid_lab as lab;

use lab::frames::*;
use lab::{metric, Appliance, Array, BladeSpec, Config, Lab, LabConfig, RawClient, Volume};
use std::time::{Duration, Instant};

const AOERAID: &str = env!("CARGO_BIN_EXE_aoeraid");
const MIB: u64 = 1 << 20;
/// Where B writes before and after it is fenced.
const LBA: u64 = 64;

/// One export and the two stations that talk to it.
struct Stations {
    a: RawClient,
    b: RawClient,
    shelf: u16,
    slot: u8,
}

/// What B wrote before it was fenced.
fn before() -> Vec<u8> {
    (0..1024u32).map(|i| (i * 7 + 1) as u8).collect()
}

/// `(E flag, AoE error, ATA error register, ATA status)` of a reply.
fn outcome(r: &[u8]) -> (bool, u8, u8, u8) {
    (r[14] & 0x04 != 0, r[15], r[25], r[27])
}

/// The MACs of a Reserve reply's list.
fn reserve_list(r: &[u8]) -> Vec<[u8; 6]> {
    (0..usize::from(r[25]))
        .map(|i| r[26 + 6 * i..32 + 6 * i].try_into().unwrap())
        .collect()
}

impl Stations {
    fn wait_up(&self) {
        for c in [&self.a, &self.b] {
            let up = c
                .wait_up(self.shelf, self.slot, Duration::from_secs(30))
                .expect("io");
            assert!(up, "target never answered");
        }
    }

    fn call(&self, c: &RawClient, f: Vec<u8>, tag: u32) -> Vec<u8> {
        c.call(&f, tag)
            .expect("io")
            .unwrap_or_else(|| panic!("no reply to tag {tag:#x}"))
    }

    fn read(&self, c: &RawClient, tag: u32) -> Vec<u8> {
        let f = ata_rw(c.mac, self.shelf, self.slot, tag, false, LBA, 2, &[]);
        self.call(c, f, tag)
    }

    fn write(&self, c: &RawClient, tag: u32, data: &[u8]) -> Vec<u8> {
        let f = ata_rw(c.mac, self.shelf, self.slot, tag, true, LBA, 2, data);
        self.call(c, f, tag)
    }

    fn reserve(&self, c: &RawClient, tag: u32, rcmd: u8, macs: &[[u8; 6]]) -> Vec<u8> {
        self.call(
            c,
            reserve(c.mac, self.shelf, self.slot, tag, rcmd, macs),
            tag,
        )
    }

    /// B's commands are refused the way a drive refuses: status ERR|DRDY,
    /// error ABRT, no AoE error (the Linux driver fails those at once), no data.
    fn assert_refused(&self, r: &[u8], what: &str) {
        assert_eq!(outcome(r), (false, 0, 0x04, 0x41), "{what}: {r:02x?}");
        assert_ne!(r[27] & 0xa9, 0, "{what}: Linux's error mask");
        assert!(r.len() < 36 + 512, "{what}: no data for a fenced MAC");
    }

    /// B writes, A fences B out; B's I/O is refused, its identity is not.
    fn fence_b(&self) {
        let r = self.write(&self.b, 0x10, &before());
        assert_eq!(outcome(&r).3, 0x40, "B's write before the fence");
        let r = self.reserve(&self.a, 0x11, 1, &[self.a.mac]);
        assert!(!outcome(&r).0, "A's Set must succeed");
        assert_eq!(reserve_list(&r), vec![self.a.mac]);
        let t = Instant::now();
        let r = self.read(&self.b, 0x12);
        assert!(t.elapsed() < Duration::from_millis(700), "refused at once");
        self.assert_refused(&r, "B's READ");
        let r = self.write(&self.b, 0x13, &[0xee; 1024]);
        self.assert_refused(&r, "B's WRITE");
        // Still discoverable and told why: IDENTIFY, Query Config, Reserve Read.
        let r = self.call(
            &self.b,
            identify(self.b.mac, self.shelf, self.slot, 0x14),
            0x14,
        );
        assert_eq!(outcome(&r).3, 0x40, "B's IDENTIFY");
        assert!(identify_sectors(&r) > 0);
        self.call(
            &self.b,
            config_read(self.b.mac, self.shelf, self.slot, 0x15),
            0x15,
        );
        let r = self.reserve(&self.b, 0x16, 0, &[]);
        assert_eq!(reserve_list(&r), vec![self.a.mac]);
        // B may not Set (vblade's rule): E/6 and the unchanged list.
        let r = self.reserve(&self.b, 0x17, 1, &[self.b.mac]);
        assert_eq!((outcome(&r).0, r[15]), (true, 6), "B's Set: E/6");
        assert_eq!(reserve_list(&r), vec![self.a.mac]);
        self.assert_unchanged();
    }

    /// A reads what B wrote before the fence: B's refused write changed nothing.
    fn assert_unchanged(&self) {
        let r = self.read(&self.a, 0x20);
        assert_eq!(outcome(&r).3, 0x40);
        assert_eq!(&r[36..36 + 1024], &before()[..], "data on disk changed");
    }

    /// After a restart of the target: B is still fenced, the list is A.
    fn assert_still_fenced(&self) {
        self.wait_up();
        let r = self.reserve(&self.a, 0x30, 0, &[]);
        assert_eq!(reserve_list(&r), vec![self.a.mac], "reservation lost");
        let r = self.read(&self.b, 0x31);
        self.assert_refused(&r, "B's READ after the restart");
        self.assert_unchanged();
    }

    /// With the allow list {A}: B's Set and Force Set are refused (E/6, no
    /// list) and change nothing; A releases; B, outside the allow list, gets
    /// no answer at all.
    fn allow_list_enforced(&self) {
        for (tag, rcmd) in [(0x40, 1), (0x41, 2)] {
            let r = self.reserve(&self.b, tag, rcmd, &[self.b.mac]);
            assert_eq!((outcome(&r).0, r[15], r[25]), (true, 6, 0), "{r:02x?}");
        }
        let r = self.reserve(&self.a, 0x42, 0, &[]);
        assert_eq!(reserve_list(&r), vec![self.a.mac]);
        let r = self.reserve(&self.a, 0x43, 2, &[]);
        assert_eq!((outcome(&r).0, r[25]), (false, 0), "A's release");
        let f = ata_rw(self.b.mac, self.shelf, self.slot, 0x44, false, LBA, 2, &[]);
        assert!(self.b.call(&f, 0x44).expect("io").is_none(), "B is masked");
    }

    /// Waits until B is outside the allow list (its queries go unanswered).
    fn wait_masked(&self) {
        let t = Instant::now();
        while self
            .b
            .call(&config_read(self.b.mac, self.shelf, self.slot, 0x50), 0x50)
            .expect("io")
            .is_some()
        {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "allow list never applied"
            );
        }
    }
}

/// The value of `key=` in the last line of `log` that has it.
fn log_value<'a>(log: &'a str, key: &str) -> Option<&'a str> {
    log.lines()
        .rev()
        .find_map(|l| l.split_whitespace().find_map(|kv| kv.strip_prefix(key)))
}

#[test]
fn serve_fences_an_excluded_mac() {
    if !lab::require_root("serve_fences_an_excluded_mac") {
        return;
    }
    let lab = Lab::new("fence-serve", LabConfig::default()).expect("lab");
    let tgt = lab.add_front_port().expect("target port");
    let (pa, pb) = (lab.add_front_port().unwrap(), lab.add_front_port().unwrap());
    let file = lab.sparse_file("store.img", 4 * MIB).expect("store");
    let s = Stations {
        a: lab.raw_client(&pa).unwrap(),
        b: lab.raw_client(&pb).unwrap(),
        shelf: 9,
        slot: 4,
    };
    let a_mac = lab.mac(&pa).unwrap();
    let args = ["--threads", "2"];
    let mut srv = lab.serve_aoeraid(AOERAID, &tgt, &file, s.shelf, s.slot, &args);
    s.wait_up();
    s.fence_b();
    let on_disk = std::fs::read(&file).unwrap();
    let at = (LBA * 512) as usize;
    assert_eq!(&on_disk[at..at + 1024], &before()[..]);
    srv.terminate(Duration::from_secs(5)).expect("stop");
    let log = srv.log();
    assert!(log.contains(&format!("reserve list [{a_mac}]")), "{log}");
    assert_eq!(log_value(&log, "reserved="), Some(&*format!("[{a_mac}]")));
    let fenced: u64 = log_value(&log, "fenced_commands=")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(fenced, 2, "B's READ and WRITE: {log}");
    assert_eq!(log_value(&log, "reserve_refused="), Some("1"));

    let _srv = lab.serve_aoeraid(AOERAID, &tgt, &file, s.shelf, s.slot, &args);
    s.assert_still_fenced();
    let r = s.call(
        &s.a,
        mask_edit(s.a.mac, s.shelf, s.slot, 0x60, &[(1, s.a.mac)]),
        0x60,
    );
    assert_eq!((r[26], r[27]), (0, 1), "mask {{A}}");
    s.wait_masked();
    s.allow_list_enforced();
}

#[test]
fn raid1_export_fences_an_excluded_mac() {
    if !lab::require_root("raid1_export_fences_an_excluded_mac")
        || !lab::require_tools("raid1_export_fences_an_excluded_mac", &["vblade"])
    {
        return;
    }
    let blades = vec![
        BladeSpec::new(0, 0, 64 * MIB),
        BladeSpec::new(1, 0, 64 * MIB),
    ];
    let config = Config::default()
        .array(Array::raid1("data", &["e0.0", "e1.0"]))
        .volume(Volume::new("gfs", &["data"], 7, 0));
    let mut app = Appliance::new(AOERAID, "fence-raid1", 1500, &blades, config);
    app.create_and_start();
    let pb = app.lab.add_port(&lab::Segment::FRONT, "vic").unwrap();
    let s = Stations {
        a: app.raw_client(),
        b: app.lab.raw_client(&pb).unwrap(),
        shelf: 7,
        slot: 0,
    };
    let a_mac = app.lab.mac(&app.client).unwrap();
    s.wait_up();
    s.fence_b();
    // The status is published at a reservation change and every second.
    std::thread::sleep(Duration::from_millis(1500));
    let st = app.status_json().unwrap();
    let v = &st["volumes"][0];
    assert_eq!(v["reserved"], serde_json::json!([a_mac]));
    assert_eq!(
        (v["fenced_commands"].as_u64(), v["reserve_refused"].as_u64()),
        (Some(2), Some(1))
    );
    let (ok, text) = app.aoeraid(&["status", "--config", app.cfg()]);
    assert!(ok && text.contains(&format!("reserved {a_mac}")), "{text}");
    let m = app.metrics();
    assert_eq!(
        metric(&m, "aoeraid_export_reserved_macs{export=\"e7.0\"}"),
        Some(1)
    );
    assert_eq!(
        metric(&m, "aoeraid_export_fenced_commands_total{export=\"e7.0\"}"),
        Some(2)
    );
    assert_eq!(
        metric(&m, "aoeraid_export_reserve_refused_total{export=\"e7.0\"}"),
        Some(1)
    );

    let log = app.stop();
    let saved = format!("e7.0: export state saved; reserve list [{a_mac}]");
    assert!(log.contains(&saved), "{log}");
    // The state file is only this box's cache: the list comes back from the
    // members (what the other appliance of an HA pair would read).
    std::fs::remove_dir_all(app.lab.dir().join("state")).expect("wipe state_dir");
    app.start();
    let log = app.daemon().log();
    assert!(
        log.lines()
            .any(|l| l.contains("e7.0: export state from record")
                && l.ends_with(&format!("on the members; reserve list [{a_mac}]"))),
        "{log}"
    );
    s.assert_still_fenced();
    app.reload(|c| c.volume_mut("gfs").allow = vec![a_mac.clone()]);
    s.wait_masked();
    s.allow_list_enforced();
    std::thread::sleep(Duration::from_millis(1500));
    let m = app.metrics();
    assert_eq!(
        metric(&m, "aoeraid_export_reserved_macs{export=\"e7.0\"}"),
        Some(0)
    );
    app.stop();
}

/// The guest's side of `linux_client_fails_fenced_io_at_once`: a sector
/// written, then (after the host fences this guest's MAC out) a READ and a
/// WRITE that must fail with EIO within seconds, not after `aoe_deadsecs`.
const FENCED_GUEST: &str = r#"
. /lib/realclient/common.sh
set -u
printf 'BEFORE-FENCE' > /tmp/b
dd if=/tmp/b of=/tmp/b.sect bs=512 count=1 conv=sync 2>/dev/null
sector_write "$AOE_DEV" 100 /tmp/b.sect || fail "write before the fence failed"
event "fence-ready"
# The host fences this guest while handling the event: poll until a read fails.
i=0
while :; do
    t0=$(now)
    if ! dd if="$AOE_DEV" of=/dev/null bs=4096 count=1 iflag=direct 2>/tmp/err; then
        t1=$(now)
        break
    fi
    i=$((i + 1))
    [ "$i" -lt 120 ] || fail "reads still succeed 60 s after the fence"
    sleep 0.5
done
metric read_fail_s "$(elapsed "$t0" "$t1")"
info "fenced read: $(cat /tmp/err)"
printf 'AFTER-FENCE' > /tmp/a
dd if=/tmp/a of=/tmp/a.sect bs=512 count=1 conv=sync 2>/dev/null
t0=$(now)
if dd if=/tmp/a.sect of="$AOE_DEV" bs=512 count=1 seek=100 oflag=direct conv=notrunc 2>/tmp/err; then
    fail "a fenced write succeeded"
fi
t1=$(now)
metric write_fail_s "$(elapsed "$t0" "$t1")"
info "fenced write: $(cat /tmp/err)"
exit 0
"#;

/// The stock Linux aoe driver (qemu guest) against `aoeraid serve`: once the
/// export is reserved for another MAC, the guest's O_DIRECT READ and WRITE
/// fail with EIO within seconds (the ATA error status), and the write leaves
/// the disk unchanged.
#[test]
fn linux_client_fails_fenced_io_at_once() {
    if !lab::require_root("linux_client_fails_fenced_io_at_once")
        || !lab::require_tools(
            "linux_client_fails_fenced_io_at_once",
            &["qemu-system-x86_64"],
        )
    {
        return;
    }
    let lab = Lab::new("fence-linux", LabConfig::default()).expect("lab");
    let tgt = lab.add_front_port().expect("target port");
    let pa = lab.add_front_port().expect("fencer port");
    let a = lab.raw_client(&pa).unwrap();
    let file = lab.sparse_file("export.img", 64 * MIB).expect("store");
    let mut srv = lab.serve_aoeraid(AOERAID, &tgt, &file, 3, 5, &[]);
    let script = lab::Workload::Script {
        name: "fenced".into(),
        body: FENCED_GUEST.into(),
    };
    let spec = lab::ClientSpec::new("e3.5", &[script]).timeout(Duration::from_secs(300));
    let (r, fenced) = lab
        .boot_client_at(spec, "fence-ready", || {
            // Everyone but A is fenced out: the guest among them.
            let f = reserve(a.mac, 3, 5, 0x70, 2, &[a.mac]);
            let r = a.call(&f, 0x70).expect("io").expect("Force Set reply");
            assert_eq!((r[14] & 0x04, r[25]), (0, 1), "Force Set {r:02x?}");
        })
        .expect("boot");
    eprintln!(
        "{}{}",
        r.summary(),
        r.lines_with("REALCLIENT-INFO").join("\n")
    );
    if !r.passed {
        let tail: Vec<&str> = r.console.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        eprintln!("console tail:\n{}", tail.join("\n"));
    }
    assert!(fenced, "the fence hook never ran");
    r.assert_passed();
    for key in ["read_fail_s", "write_fail_s"] {
        let s = r.metric_f64("fenced", key).expect(key);
        assert!(
            s < 5.0,
            "{key} = {s} s: the driver retried instead of failing"
        );
    }
    let on_disk = std::fs::read(&file).unwrap();
    assert!(
        on_disk[100 * 512..].starts_with(b"BEFORE-FENCE"),
        "fenced write landed"
    );
    srv.terminate(Duration::from_secs(5)).expect("stop");
    let log = srv.log();
    let fenced: u64 = log_value(&log, "fenced_commands=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(fenced >= 2, "{log}");
}
