//! `aoeraid examine MEMBER`: reads a member's superblock and write-intent bitmap
//! straight off the blade (over AoE) or the file, without the daemon, and prints
//! what it says — the `mdadm --examine` of aoeraid. Only reads: it never writes a
//! member, whatever it finds.

use crate::config::MemberAddr;
use crate::daemon::members::Devices;
use crate::frontend::{ExportRecord, RECORD_AREA_SECTORS, RECORD_OFFSET};
use anyhow::{bail, Context};
use raid_engine::superblock::{
    SlotState, Superblock, BITMAP_OFFSET, ROLE_SPARE, SB_OFFSET, SB_SECTORS,
};
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The member: an AoE blade eSHELF.SLOT, or file:/path.
    pub member: MemberAddr,
    /// Back-end interface to find the blade on (repeat for several); not needed for file: members.
    #[arg(long = "iface")]
    pub ifaces: Vec<String>,
    /// How long to wait for the blade to answer, in seconds.
    #[arg(long, default_value_t = 3.0)]
    pub timeout: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What the member's metadata area says.
struct Examined {
    sb: Superblock,
    /// Write-intent bits set, and their region indices (the first few).
    dirty_regions: u64,
    first_dirty: Vec<u64>,
    /// The newest export state record of this member's array, if any.
    record: Option<ExportRecord>,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_secs_f64(args.timeout.max(0.1));
    let mut dev = Devices::new()?;
    if let MemberAddr::Blade { shelf, slot } = args.member {
        if args.ifaces.is_empty() {
            bail!(
                "{}: a blade needs --iface (the back-end interface it is on)",
                args.member
            );
        }
        dev.discover(
            &args.ifaces,
            timeout.max(Duration::from_secs(5)),
            &[(shelf, slot)],
            timeout,
        )?;
    }
    let Some(loc) = dev.open(&args.member) else {
        let why = dev
            .problems
            .pop()
            .map_or_else(|| "cannot open".to_string(), |p| p.1);
        bail!("{}: {why}", args.member);
    };
    let read = |dev: &mut Devices, offset: u64, sectors: u32| -> anyhow::Result<Vec<u8>> {
        dev.read_blocking(loc, offset, sectors, timeout)?
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: read of sectors {offset}+{sectors} failed: {e:?}",
                    args.member
                )
            })
    };
    let head = read(&mut dev, SB_OFFSET, SB_SECTORS)?;
    let sb = match Superblock::decode(&head) {
        Ok(sb) => sb,
        Err(e) => {
            // Not ours, or damaged: say what the head looks like instead.
            let probe = read(&mut dev, 0, crate::daemon::inuse::PROBE_SECTORS)
                .with_context(|| format!("{}: reading its head", args.member))?;
            let what = crate::daemon::inuse::in_use_reason(&probe)
                .unwrap_or_else(|| "blank (all zero where the metadata would be)".into());
            bail!("{}: {e}; the device {what}", args.member);
        }
    };
    let bitmap = if sb.areas.bitmap_sectors > 0 {
        read(&mut dev, BITMAP_OFFSET, sb.areas.bitmap_sectors)?
    } else {
        Vec::new()
    };
    let area = read(&mut dev, RECORD_OFFSET, RECORD_AREA_SECTORS)?;
    let record = ExportRecord::newest_in(&area, &sb.array_uuid, None);
    let ex = Examined {
        record,
        ..examine(sb, &bitmap)
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&args.member, &ex))?
        );
    } else {
        print!("{}", render(&args.member, &ex));
    }
    Ok(ExitCode::SUCCESS)
}

fn examine(sb: Superblock, bitmap: &[u8]) -> Examined {
    // LSB first, one bit per region (raid-engine's bitmap.rs); bits past the last
    // region are always zero.
    let mut first_dirty = Vec::new();
    let mut dirty_regions = 0;
    for (i, byte) in bitmap.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                dirty_regions += 1;
                if first_dirty.len() < 16 {
                    first_dirty.push(i as u64 * 8 + bit);
                }
            }
        }
    }
    Examined {
        sb,
        dirty_regions,
        first_dirty,
        record: None,
    }
}

fn uuid(u: &[u8; 16]) -> String {
    crate::control::engine::uuid_string(u)
}

fn role(sb: &Superblock) -> String {
    if sb.role == ROLE_SPARE {
        "spare".into()
    } else {
        format!("member {}", sb.role)
    }
}

fn slot_state(s: SlotState) -> &'static str {
    match s {
        SlotState::Active => "active",
        SlotState::Rebuilding => "rebuilding",
        SlotState::Faulty => "faulty",
        SlotState::Missing => "missing",
    }
}

fn recovery(sb: &Superblock) -> String {
    if !sb.recovering {
        return "none".into();
    }
    format!(
        "rebuilding onto this member, in sync below unit {}{}",
        sb.recovery_unit,
        if sb.recovery_bitmap_only {
            " (dirty bitmap regions only)"
        } else {
            ""
        }
    )
}

fn render(member: &MemberAddr, ex: &Examined) -> String {
    let sb = &ex.sb;
    let mut s = format!("{member}:\n");
    let mut row = |k: &str, v: String| s.push_str(&format!("{k:>16} : {v}\n"));
    row("Magic", "aoeraid superblock v1".into());
    row("Array UUID", uuid(&sb.array_uuid));
    row("Name", sb.name.clone());
    row(
        "Level",
        format!("{:?} (layout {:#x})", sb.level, sb.layout).to_lowercase(),
    );
    row("Chunk", format!("{} KiB", sb.chunk as u64 * 512 / 1024));
    row("Raid Devices", sb.raid_disks.to_string());
    row("Member UUID", uuid(&sb.member_uuid));
    row("Role", role(sb));
    row("Events", sb.events.to_string());
    row(
        "State",
        if sb.clean {
            "clean"
        } else {
            "active (not marked clean)"
        }
        .into(),
    );
    row("Data Offset", format!("{} sectors", sb.areas.data_offset));
    row(
        "Data Size",
        format!(
            "{} sectors ({} MiB)",
            sb.data_size,
            (sb.data_size * 512) >> 20
        ),
    );
    row(
        "Integrity",
        if sb.integrity {
            format!(
                "crc32c, {} sectors at sector {}",
                sb.areas.csum_sectors, sb.areas.csum_offset
            )
        } else {
            "off".into()
        },
    );
    row("Recovery", recovery(sb));
    row(
        "Bitmap",
        format!(
            "{} sectors at sector {BITMAP_OFFSET}, {} units per bit, {} dirty, cleared at event {}",
            sb.areas.bitmap_sectors,
            sb.bitmap_region_units,
            ex.dirty_regions,
            sb.bitmap_events_cleared
        ),
    );
    if !ex.first_dirty.is_empty() {
        let more = if ex.dirty_regions > ex.first_dirty.len() as u64 {
            " …"
        } else {
            ""
        };
        let list: Vec<String> = ex.first_dirty.iter().map(u64::to_string).collect();
        row("Dirty Regions", format!("{}{more}", list.join(" ")));
    }
    row(
        "Export State",
        ex.record.as_ref().map_or_else(
            || "none saved".into(),
            |r| {
                format!(
                    "e{}.{} record {}, serial {}, reserve list [{}], config string {:?}",
                    r.shelf,
                    r.slot,
                    r.seq,
                    r.serial,
                    macs(&r.reserve).join(","),
                    String::from_utf8_lossy(&r.config)
                )
            },
        ),
    );
    s.push_str("      Slot Table :\n");
    for (i, e) in sb.slots.iter().enumerate() {
        let this = if e.member_uuid == sb.member_uuid {
            "  (this member)"
        } else {
            ""
        };
        s.push_str(&format!(
            "{:>16}   {:<10} {}{this}\n",
            i,
            slot_state(e.state),
            uuid(&e.member_uuid)
        ));
    }
    s
}

fn macs(list: &[aoe_wire::Mac]) -> Vec<String> {
    list.iter().map(|m| m.to_string()).collect()
}

fn to_json(member: &MemberAddr, ex: &Examined) -> serde_json::Value {
    let sb = &ex.sb;
    json!({
        "member": member.to_string(),
        "array_uuid": uuid(&sb.array_uuid),
        "name": sb.name,
        "level": format!("{:?}", sb.level).to_lowercase(),
        "layout": sb.layout,
        "chunk_bytes": sb.chunk as u64 * 512,
        "raid_disks": sb.raid_disks,
        "member_uuid": uuid(&sb.member_uuid),
        "role": role(sb),
        "events": sb.events,
        "clean": sb.clean,
        "data_offset_sectors": sb.areas.data_offset,
        "data_size_sectors": sb.data_size,
        "integrity": sb.integrity,
        "recovering": sb.recovering,
        "recovery_unit": sb.recovery_unit,
        "recovery_bitmap_only": sb.recovery_bitmap_only,
        "bitmap": {
            "sectors": sb.areas.bitmap_sectors,
            "region_units": sb.bitmap_region_units,
            "events_cleared": sb.bitmap_events_cleared,
            "dirty_regions": ex.dirty_regions,
            "first_dirty": ex.first_dirty,
        },
        "export_state": ex.record.as_ref().map(|r| json!({
            "export": format!("e{}.{}", r.shelf, r.slot),
            "record": r.seq,
            "serial": r.serial,
            "reserve": macs(&r.reserve),
            "config": String::from_utf8_lossy(&r.config),
        })),
        "slots": sb.slots.iter().map(|e| json!({
            "state": slot_state(e.state),
            "member_uuid": uuid(&e.member_uuid),
        })).collect::<Vec<_>>(),
    })
}
