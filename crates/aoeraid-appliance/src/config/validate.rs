//! Whole-file checks: the rules a single field cannot enforce. Every rule
//! adds a [`Diagnostic`] and carries on, so one run lists every problem.

use super::diag::Diagnostic;
use super::locate::FieldPath;
use super::member::MemberAddr;
use super::{ArraySpec, Config, Level, RaidLevel, RebuildRates};
use aoe_wire::AoeAddr;
use std::collections::HashMap;

/// AoE config strings are at most this long.
const MAX_CONFIG_STRING: usize = 1024;
/// The MAC mask list count is one byte on the wire.
const MAX_MASK_ENTRIES: usize = 255;
/// Linux interface names are at most IFNAMSIZ-1 bytes.
const MAX_IFNAME: usize = 15;
/// sockaddr_un.sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Array names go into the member superblocks, which give them 32 bytes.
const MAX_NAME: usize = 32;
const MIN_CHUNK: u64 = 4 << 10;
const MAX_CHUNK: u64 = 64 << 20;
const MIN_BITMAP_REGION: u64 = 4 << 10;

pub fn validate(c: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    appliance(c, &mut out);
    interfaces(c, &mut out);
    membership(c, &mut out);
    arrays(c, &mut out);
    volumes(c, &mut out);
    out
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn name_rule(path: FieldPath, what: &str, name: &str, out: &mut Vec<Diagnostic>) {
    if !valid_name(name) {
        out.push(Diagnostic::error(
            path,
            format!(
                "{what} name `{name}` must be 1..{MAX_NAME} characters of letters, digits, `_`, `-` or `.`"
            ),
        ));
    }
}

/// The name of entry `index` of the list `list` (each a `what`) follows the name rule,
/// and no earlier entry (in `seen`) has it.
fn unique_name<'a>(
    list: &str,
    what: &str,
    index: usize,
    name: &'a str,
    seen: &mut HashMap<&'a str, usize>,
    out: &mut Vec<Diagnostic>,
) {
    let entry = |i: usize| FieldPath::of(&[list]).index(i).key("name");
    name_rule(entry(index), what, name, out);
    if let Some(first) = seen.insert(name, index) {
        out.push(
            Diagnostic::error(entry(index), format!("{what} name `{name}` is used twice"))
                .related_to(entry(first)),
        );
    }
}

fn appliance(c: &Config, out: &mut Vec<Diagnostic>) {
    let a = &c.appliance;
    let p = FieldPath::of(&["appliance"]);
    name_rule(p.key("name"), "appliance", &a.name, out);
    if !a.state_dir.is_absolute() {
        out.push(Diagnostic::error(
            p.key("state_dir"),
            "must be an absolute path",
        ));
    }
    let sock = a.control_socket.as_os_str().len();
    if !a.control_socket.is_absolute() {
        out.push(Diagnostic::error(
            p.key("control_socket"),
            "must be an absolute path",
        ));
    } else if sock > MAX_SOCKET_PATH {
        out.push(Diagnostic::error(
            p.key("control_socket"),
            format!("path is {sock} bytes; a unix socket path may have at most {MAX_SOCKET_PATH}"),
        ));
    }
    if let Some(prog) = &a.event_program {
        if !prog.is_absolute() {
            out.push(Diagnostic::error(
                p.key("event_program"),
                "must be an absolute path (the daemon does not search PATH)",
            ));
        }
    }
    if a.event_timeout.get().is_zero() {
        out.push(Diagnostic::error(
            p.key("event_timeout"),
            "must be more than 0",
        ));
    }
}

fn interface_list(path: FieldPath, list: &[String], out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in list.iter().enumerate() {
        let bad = name.is_empty()
            || name.len() > MAX_IFNAME
            || name == "."
            || name == ".."
            || name
                .chars()
                .any(|ch| ch == '/' || ch == ':' || ch.is_whitespace());
        if bad {
            out.push(Diagnostic::error(
                path.index(i),
                format!("`{name}` is not a valid interface name (1..{MAX_IFNAME} bytes, no `/`, `:` or spaces)"),
            ));
        }
        if let Some(first) = seen.insert(name, i) {
            out.push(
                Diagnostic::error(path.index(i), format!("interface `{name}` is listed twice"))
                    .related_to(path.index(first)),
            );
        }
    }
}

fn interfaces(c: &Config, out: &mut Vec<Diagnostic>) {
    let back = FieldPath::of(&["backend", "interfaces"]);
    let front = FieldPath::of(&["frontend", "interfaces"]);
    interface_list(back.clone(), &c.backend.interfaces, out);
    interface_list(front.clone(), &c.frontend.interfaces, out);
    let uses_blades = c
        .arrays
        .iter()
        .flat_map(|a| a.members.iter().chain(a.spares.iter()))
        .chain(c.spare_groups.0.iter().flat_map(|g| g.members.iter()))
        .any(MemberAddr::is_blade);
    if uses_blades && c.backend.interfaces.is_empty() {
        out.push(Diagnostic::error(
            back,
            "blade members are declared but no back-end interface is listed",
        ));
    }
    if !c.volumes.is_empty() && c.frontend.interfaces.is_empty() {
        out.push(Diagnostic::error(
            front,
            "volumes are exported but no front-end interface is listed",
        ));
    }
    if c.backend.dead_after.get().is_zero() {
        out.push(Diagnostic::error(
            FieldPath::of(&["backend", "dead_after"]),
            "must be more than 0",
        ));
    }
}

/// Where a member is declared: array members, array spares and spare groups
/// all draw from one pool of devices, and a device may appear only once.
fn membership(c: &Config, out: &mut Vec<Diagnostic>) {
    // First place each address was seen: its path and a description.
    let mut seen: HashMap<MemberAddr, (FieldPath, String)> = HashMap::new();
    let mut visit = |addr: &MemberAddr,
                     path: FieldPath,
                     what: String,
                     out: &mut Vec<Diagnostic>| match seen.get(addr) {
        None => {
            seen.insert(addr.clone(), (path, what));
        }
        Some((first_path, first_what)) => {
            let msg = if *first_what == what {
                format!("{addr} is listed twice as {what}")
            } else {
                format!("{addr} is already {first_what} and cannot also be {what}")
            };
            out.push(Diagnostic::error(path, msg).related_to(first_path.clone()));
        }
    };
    for (ai, a) in c.arrays.iter().enumerate() {
        let ap = FieldPath::of(&["arrays"]).index(ai);
        for (mi, m) in a.members.iter().enumerate() {
            let what = format!("a member of array {}", a.name);
            visit(m, ap.key("members").index(mi), what, out);
        }
    }
    for g in &c.spare_groups.0 {
        let gp = FieldPath::of(&["spare_groups", &g.name]);
        for (mi, m) in g.members.iter().enumerate() {
            visit(m, gp.index(mi), format!("a spare in group {}", g.name), out);
        }
    }
    for (ai, a) in c.arrays.iter().enumerate() {
        let ap = FieldPath::of(&["arrays"]).index(ai);
        for (mi, m) in a.spares.iter().enumerate() {
            let what = format!("a spare of array {}", a.name);
            visit(m, ap.key("spares").index(mi), what, out);
        }
    }
}

fn arrays(c: &Config, out: &mut Vec<Diagnostic>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (ai, a) in c.arrays.iter().enumerate() {
        let ap = FieldPath::of(&["arrays"]).index(ai);
        unique_name("arrays", "array", ai, &a.name, &mut names, out);
        member_count(a, &ap, out);
        geometry(a, &ap, out);
        mirror_shelves(a, &ap, out);
        parity_shelves(a, &ap, out);
        if let Some(g) = &a.spare_group {
            if c.spare_groups.get(g).is_none() {
                let known: Vec<&str> = c.spare_groups.0.iter().map(|g| g.name.as_str()).collect();
                out.push(Diagnostic::error(
                    ap.key("spare_group"),
                    format!(
                        "unknown spare group `{g}` (defined: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            } else if a.level.redundancy() == 0 {
                out.push(Diagnostic::error(
                    ap.key("spare_group"),
                    format!(
                        "a {} array has no redundancy to rebuild onto a spare",
                        a.level
                    ),
                ));
            }
        }
        if !a.spares.is_empty() && a.level.redundancy() == 0 {
            out.push(Diagnostic::error(
                ap.key("spares"),
                format!(
                    "a {} array has no redundancy to rebuild onto a spare",
                    a.level
                ),
            ));
        }
    }
}

fn member_count(a: &ArraySpec, ap: &FieldPath, out: &mut Vec<Diagnostic>) {
    let n = a.members.len();
    let problem = match a.level {
        Level::Raid(RaidLevel::Raid0) | Level::Linear if n == 0 => Some("needs at least 1 member".to_string()),
        Level::Raid(RaidLevel::Raid10) if n < 4 || n % 2 == 1 => Some(format!(
            "raid10 needs an even number of members, at least 4 (adjacent pairs mirror each other), has {n}{}",
            if n == 2 { "; use raid1 for two members" } else { "" }
        )),
        Level::Raid(l) if n < l.min_members() => Some(format!(
            "{l} needs at least {} members, has {n}",
            l.min_members()
        )),
        _ => None,
    };
    if let Some(msg) = problem {
        out.push(Diagnostic::error(ap.key("members"), msg));
    }
}

fn geometry(a: &ArraySpec, ap: &FieldPath, out: &mut Vec<Diagnostic>) {
    let chunk = a.chunk().bytes();
    let striped = a.level != Level::Linear && a.level != Level::Raid(RaidLevel::Raid1);
    if striped && (!chunk.is_power_of_two() || !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk)) {
        out.push(Diagnostic::error(
            ap.key("chunk"),
            format!(
                "chunk {} must be a power of two from 4KiB to 64MiB",
                a.chunk()
            ),
        ));
    }
    let region = a.bitmap.region.bytes();
    if !region.is_power_of_two() || region < MIN_BITMAP_REGION {
        out.push(Diagnostic::error(
            ap.key("bitmap").key("region"),
            format!(
                "bitmap region {} must be a power of two of at least 4KiB",
                a.bitmap.region
            ),
        ));
    }
    if let Err(why) = RebuildRates::check(Some(a.rebuild.min), Some(a.rebuild.max)) {
        out.push(Diagnostic::error(ap.key("rebuild").key("min"), why));
    }
}

fn mirror_shelves(a: &ArraySpec, ap: &FieldPath, out: &mut Vec<Diagnostic>) {
    if a.allow_same_shelf_mirrors {
        return;
    }
    for set in a.mirror_sets() {
        let shelves: Vec<Option<u16>> = set.iter().map(|&i| a.members[i].shelf()).collect();
        // Only blades have shelves; a mirror with a local file in it already
        // spans two failure domains.
        if set.len() < 2 || shelves.iter().any(Option::is_none) {
            continue;
        }
        if shelves.windows(2).all(|w| w[0] == w[1]) {
            let names: Vec<String> = set.iter().map(|&i| a.members[i].to_string()).collect();
            let shelf = shelves[0].unwrap_or_default();
            out.push(Diagnostic::warning(
                ap.key("members").index(set[0]),
                format!(
                    "mirror halves {} are all on shelf {shelf}: losing that shelf loses the data",
                    names.join(" and ")
                ),
            ));
        }
    }
}

/// Parity levels: every member holds part of every stripe, so a shelf may hold at
/// most as many members as the level survives losing (RAID 5 one, RAID 6 two).
fn parity_shelves(a: &ArraySpec, ap: &FieldPath, out: &mut Vec<Diagnostic>) {
    let survives = a.level.redundancy();
    if a.allow_same_shelf_mirrors || !matches!(a.level, Level::Raid(l) if l.parity() > 0) {
        return;
    }
    let shelves: Vec<Option<u16>> = a.members.iter().map(MemberAddr::shelf).collect();
    for (i, s) in shelves.iter().enumerate() {
        let Some(s) = s else { continue };
        let on: Vec<usize> = (0..shelves.len())
            .filter(|&j| shelves[j] == Some(*s))
            .collect();
        if on[0] != i || on.len() <= survives {
            continue;
        }
        let names: Vec<String> = on.iter().map(|&j| a.members[j].to_string()).collect();
        out.push(Diagnostic::warning(
            ap.key("members").index(on[survives]),
            format!(
                "members {} are all on shelf {s}: losing that shelf takes {} members at once, \
                 and {} survives the loss of only {survives}",
                names.join(", "),
                on.len(),
                a.level
            ),
        ));
    }
}

fn volumes(c: &Config, out: &mut Vec<Diagnostic>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut exports: HashMap<(u16, u8), usize> = HashMap::new();
    let mut array_owner: HashMap<&str, FieldPath> = HashMap::new();
    for (vi, v) in c.volumes.iter().enumerate() {
        let vp = FieldPath::of(&["volumes"]).index(vi);
        unique_name("volumes", "volume", vi, &v.name, &mut names, out);
        if v.arrays.is_empty() {
            out.push(Diagnostic::error(
                vp.key("arrays"),
                "a volume needs at least one array",
            ));
        }
        for (i, an) in v.arrays.iter().enumerate() {
            let p = vp.key("arrays").index(i);
            if c.array(an).is_none() {
                out.push(Diagnostic::error(
                    p.clone(),
                    format!("unknown array `{an}`"),
                ));
            } else if let Some(first) = array_owner.get(an.as_str()) {
                out.push(
                    Diagnostic::error(
                        p.clone(),
                        format!("array `{an}` is already part of a volume"),
                    )
                    .related_to(first.clone()),
                );
            } else {
                array_owner.insert(an, p);
            }
        }
        let e = v.export;
        let ep = vp.key("export");
        // Shelf and slot are checked apart so that each wrong field is named.
        if let Err(why) = AoeAddr::new(e.shelf, 0) {
            out.push(Diagnostic::error(ep.key("shelf"), why.to_string()));
        }
        if let Err(why) = AoeAddr::new(0, e.slot) {
            out.push(Diagnostic::error(ep.key("slot"), why.to_string()));
        }
        if let Some(first) = exports.insert((e.shelf, e.slot), vi) {
            out.push(
                Diagnostic::error(
                    ep.clone(),
                    format!("export {e} is already used by another volume"),
                )
                .related_to(FieldPath::of(&["volumes"]).index(first).key("export")),
            );
        }
        let shared_segment = c
            .frontend
            .interfaces
            .iter()
            .any(|i| c.backend.interfaces.contains(i));
        let blade = MemberAddr::Blade {
            shelf: e.shelf,
            slot: e.slot,
        };
        if shared_segment && c.arrays.iter().any(|a| a.members.contains(&blade)) {
            out.push(Diagnostic::error(
                ep.clone(),
                format!("export {e} is also a member blade on a shared front/back interface"),
            ));
        }
        let mut macs: HashMap<_, usize> = HashMap::new();
        for (i, m) in v.allow.iter().enumerate() {
            let p = vp.key("allow").index(i);
            if m.is_multicast() {
                out.push(Diagnostic::error(
                    p.clone(),
                    format!("{m} is a multicast/broadcast address, not an initiator"),
                ));
            }
            if let Some(first) = macs.insert(*m, i) {
                out.push(
                    Diagnostic::error(p, format!("{m} is listed twice"))
                        .related_to(vp.key("allow").index(first)),
                );
            }
        }
        if v.allow.len() > MAX_MASK_ENTRIES {
            out.push(Diagnostic::error(
                vp.key("allow"),
                format!(
                    "{} MACs; the AoE mask list holds at most {MAX_MASK_ENTRIES}",
                    v.allow.len()
                ),
            ));
        }
        if let Some(cs) = &v.config_string {
            if cs.len() > MAX_CONFIG_STRING {
                out.push(Diagnostic::error(
                    vp.key("config_string"),
                    format!(
                        "{} bytes; an AoE config string holds at most {MAX_CONFIG_STRING}",
                        cs.len()
                    ),
                ));
            }
        }
    }
}
