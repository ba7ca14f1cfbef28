//! Metrics: a scrape over loopback returns every family with the values of
//! a status snapshot and hot-path handles; series of vanished objects go
//! away; the shipped alerts and dashboard only use metrics that exist, and
//! the alert rules pass promtool (when installed).

mod ctl_fixture;

use aoeraid_appliance::metrics::http::MetricsServer;
use aoeraid_appliance::metrics::Metrics;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn get(server: &MetricsServer, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// Metrics with every family populated, as a busy appliance would have.
fn populated() -> Arc<Metrics> {
    let m = Arc::new(Metrics::new());
    m.apply_status(&ctl_fixture::rebuilding());
    let vol = m.volume_io("gfs");
    vol.read.record(1 << 20, 0.0004, true);
    vol.write.record(4096, 0.002, true);
    vol.write.record(4096, 0.5, false);
    let mem = m.member_io("e0.0");
    mem.read.record(8192, 0.0002, true);
    m.count_event("Fail");
    m.events_dropped.inc();
    m.event_program_failures
        .with_label_values(&["timeout"])
        .inc();
    m
}

fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn scrape_over_loopback() {
    let m = populated();
    let render = {
        let m = m.clone();
        Arc::new(move || m.render())
    };
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), render).unwrap();
    let (head, body) = get(&server, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    for want in [
        "aoeraid_appliance_info{appliance=\"rb1\",version=\"0.1.0\"} 1",
        "aoeraid_array_state{array=\"data\",state=\"rebuilding\"} 1",
        "aoeraid_array_state{array=\"data\",state=\"clean\"} 0",
        "aoeraid_array_degraded{array=\"data\"} 1",
        "aoeraid_array_members{array=\"data\",state=\"active\"} 7",
        "aoeraid_array_members{array=\"data\",state=\"faulty\"} 1",
        "aoeraid_array_members_required{array=\"data\"} 8",
        "aoeraid_member_state{array=\"data\",member=\"e0.4\",state=\"rebuilding\"} 1",
        "aoeraid_array_sync_done_ratio{action=\"rebuild\",array=\"data\"} 0.25",
        "aoeraid_array_sync_done_bytes{action=\"rebuild\",array=\"data\"} 268435456",
        "aoeraid_array_sync_bytes_total{action=\"rebuild\",array=\"data\"} 268435456",
        "aoeraid_array_sync_bytes_total{action=\"check\",array=\"data\"} 1048576",
        "aoeraid_array_sync_bytes_total{action=\"repair\",array=\"data\"} 2097152",
        "aoeraid_array_mismatch_bytes_total{array=\"data\"} 1024",
        "aoeraid_array_corrected_errors_total{array=\"data\"} 1",
        "aoeraid_array_checksum_repairs_total{array=\"data\"} 3",
        "aoeraid_spare_group_spares{group=\"shelfspares\",state=\"available\"} 1",
        "aoeraid_volume_size_bytes{volume=\"gfs\"} 4294967296",
        "aoeraid_export_reserved_macs{export=\"e7.0\"} 2",
        "aoeraid_export_fenced_commands_total{export=\"e7.0\"} 6",
        "aoeraid_export_reserve_refused_total{export=\"e7.0\"} 1",
        "aoeraid_volume_io_bytes_total{op=\"read\",volume=\"gfs\"} 1048576",
        "aoeraid_volume_io_ops_total{op=\"write\",volume=\"gfs\"} 2",
        "aoeraid_volume_io_errors_total{op=\"write\",volume=\"gfs\"} 1",
        "aoeraid_volume_io_latency_seconds_bucket{op=\"read\",volume=\"gfs\",le=\"0.0005\"} 1",
        "aoeraid_member_io_bytes_total{member=\"e0.0\",op=\"read\"} 8192",
        "aoeraid_blade_up{blade=\"e1.1\"} 0",
        "aoeraid_blade_rtt_seconds{blade=\"e0.0\"} 0.00021",
        "aoeraid_blade_retransmits_total{blade=\"e0.0\"} 4",
        "aoeraid_blade_timeouts_total{blade=\"e1.1\"} 3",
        "aoeraid_frames_dropped_total{interface=\"eth1\",reason=\"kernel\",side=\"backend\"} 5",
        "aoeraid_frames_dropped_total{interface=\"eth2\",reason=\"malformed\",side=\"frontend\"} 2",
        "aoeraid_events_total{event=\"Fail\"} 1",
        "aoeraid_frontend_frames_total 900",
        "aoeraid_frontend_requests_total{outcome=\"client_queue_full\"} 7",
    ] {
        assert!(body.lines().any(|l| l == want), "missing `{want}`");
    }
    // Sync bytes use the progress series' action names, never a second vocabulary.
    assert!(
        !body.contains("action=\"scrub\""),
        "sync bytes labelled scrub"
    );
    // The outcome breakdown is a part of the frames, never the whole: a sum() over
    // it must not count a frame twice.
    assert!(
        !body.contains("aoeraid_frontend_requests_total{outcome=\"frames\"}")
            && !body.contains("aoeraid_frontend_requests_total{outcome=\"flush\"}"),
        "the outcome breakdown holds a total"
    );
    // The daemon's own resources, as node_exporter users expect of any target.
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(&format!("{family} "))),
            "no {family}"
        );
    }
    // Conventions: one prefix (besides the standard process_*), counters end in
    // _total, no sample without HELP.
    let text = m.render();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (name, kind) = (parts[2], parts[3]);
        assert!(
            name.starts_with("aoeraid_") || name.starts_with("process_"),
            "{name}"
        );
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} is a {kind}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no help"
        );
    }

    let (head, _) = get(&server, "GET /nothing HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    // HEAD is GET without the body: same status and length.
    let (head, body) = get(&server, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Length: "), "{head}");
    assert!(body.is_empty(), "HEAD sent a body");
    let (head, _) = get(&server, "HEAD /nothing HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, _) = get(
        &server,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    // A client that sends a huge header is cut off, and the server goes on.
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    let junk = vec![b'a'; 64 * 1024];
    let _ = s.write_all(&junk);
    drop(s);
    let (head, _) = get(&server, "GET /metrics HTTP/1.0\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    server.shutdown();
}

#[test]
fn partial_parity_log_counters_are_exported() {
    let m = Metrics::new();
    m.apply_status(&ctl_fixture::logged());
    let text = m.render();
    for want in [
        "aoeraid_array_ppl_bytes_total{array=\"data\"} 8388608",
        "aoeraid_array_ppl_replayed_stripes_total{array=\"data\"} 2",
        "aoeraid_array_ppl_refused_entries_total{array=\"data\"} 1",
        "aoeraid_array_ppl_stale_entries_total{array=\"data\"} 5",
        "# TYPE aoeraid_array_ppl_refused_entries_total counter",
        "# TYPE aoeraid_array_ppl_stale_entries_total counter",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing `{want}` in:\n{text}"
        );
    }
    for help in [
        "# HELP aoeraid_array_ppl_refused_entries_total Partial-parity log entries refused",
        "# HELP aoeraid_array_ppl_stale_entries_total Partial-parity log entries skipped as stale",
    ] {
        assert!(text.lines().any(|l| l.starts_with(help)), "no `{help}`");
    }
}

#[test]
fn vanished_members_and_finished_rebuilds_leave_no_series() {
    let m = Metrics::new();
    let mut s = ctl_fixture::rebuilding();
    m.apply_status(&s);
    assert!(m.render().contains("member=\"e1.1\""));
    s.arrays[0].members.retain(|x| x.blade != "e1.1");
    s.arrays[0].rebuild = Default::default();
    s.blades.retain(|b| b.blade != "e1.1");
    m.apply_status(&s);
    let text = m.render();
    assert!(
        !text.contains("aoeraid_member_state{array=\"data\",member=\"e1.1\""),
        "{text}"
    );
    assert!(!text.contains("aoeraid_blade_up{blade=\"e1.1\"}"));
    assert!(!text.contains("aoeraid_array_sync_done_ratio"));
    // Counters keep their totals.
    assert!(text
        .contains("aoeraid_array_sync_bytes_total{action=\"rebuild\",array=\"data\"} 268435456"));
}

#[test]
fn counters_follow_snapshots_and_survive_source_restarts() {
    let m = Metrics::new();
    let mut s = ctl_fixture::rebuilding();
    m.apply_status(&s);
    s.arrays[0].counters.mismatch_bytes = 10;
    m.apply_status(&s);
    assert_eq!(
        m.mismatch_bytes_total.with_label_values(&["data"]).get(),
        10
    );
    s.arrays[0].counters.mismatch_bytes = 1;
    m.apply_status(&s);
    assert_eq!(m.mismatch_bytes_total.with_label_values(&["data"]).get(), 1);
}

fn deploy(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(file),
    )
    .unwrap()
}

/// Every `aoeraid_*` name used in `text` is a family we export.
fn referenced_metrics_exist(what: &str, text: &str) {
    let exported = families(&populated().render());
    let mut used = BTreeSet::new();
    for (i, _) in text.match_indices("aoeraid_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        used.insert(name);
    }
    assert!(used.len() > 5, "{what} uses too few metrics: {used:?}");
    for name in used {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| exported.contains(*b))
            .unwrap_or(&name);
        assert!(
            exported.contains(base),
            "{what} uses `{name}`, which aoeraid does not export"
        );
    }
}

#[test]
fn alerts_and_dashboard_use_real_metrics() {
    referenced_metrics_exist("alerts.yaml", &deploy("prometheus/alerts.yaml"));
    referenced_metrics_exist("aoeraid.json", &deploy("grafana/aoeraid.json"));
    let dash: serde_json::Value = serde_json::from_str(&deploy("grafana/aoeraid.json")).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 20);
    for p in panels.iter().filter(|p| p["type"] != "row") {
        assert!(
            !p["targets"].as_array().unwrap().is_empty(),
            "panel {} has no query",
            p["title"]
        );
    }
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
}

#[test]
fn alert_rules_are_valid() {
    let rules = deploy("prometheus/alerts.yaml");
    for alert in [
        "AoeraidArrayDegraded",
        "AoeraidMemberFailed",
        "AoeraidRebuildStalled",
        "AoeraidBladeDown",
        "AoeraidSparesExhausted",
    ] {
        assert!(
            rules.contains(&format!("- alert: {alert}\n")),
            "{alert} missing"
        );
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    if aoeraid_lab::require_tools("alert_rules_are_valid", &["promtool"]) {
        for args in [
            &["check", "rules", "alerts.yaml"],
            &["test", "rules", "alerts.test.yaml"],
        ] {
            aoeraid_lab::run_command(Command::new("promtool").args(args).current_dir(&dir))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    } else {
        // Without promtool (Debian package `prometheus`), check the
        // shape: each rule has an expression, a severity and a summary.
        eprintln!("promtool not installed: checking rule structure only");
        let blocks: Vec<&str> = rules.split("- alert: ").skip(1).collect();
        assert!(blocks.len() >= 5);
        for b in blocks {
            let name = b.lines().next().unwrap();
            for key in ["expr:", "severity:", "summary:"] {
                assert!(b.contains(key), "alert {name} lacks {key}");
            }
            assert!(
                !b.contains('\t'),
                "alert {name} has a tab (invalid YAML indentation)"
            );
        }
    }
}

#[test]
fn each_scrape_refreshes_from_a_snapshot() {
    let m = Arc::new(Metrics::new());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    let server = MetricsServer::start_with_status("127.0.0.1:0".parse().unwrap(), m, move || {
        let n = c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut s = ctl_fixture::rebuilding();
        s.arrays[0].rebuild.done_ratio = 0.5 + n as f64 * 0.25;
        Some(s)
    })
    .unwrap();
    let ratio = |body: &str| {
        body.lines()
            .find_map(|l| {
                l.strip_prefix("aoeraid_array_sync_done_ratio{action=\"rebuild\",array=\"data\"} ")
            })
            .map(str::to_string)
    };
    let (_, first) = get(&server, "GET /metrics HTTP/1.1\r\n\r\n");
    let (_, second) = get(&server, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(ratio(&first).as_deref(), Some("0.5"));
    assert_eq!(ratio(&second).as_deref(), Some("0.75"));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
