//! Array creation parameters and the reserved-area arithmetic shared by create and
//! assembly.

use crate::bitmap::Bitmap;
use crate::layout::{Geometry, GeometryError, Level};
use crate::placement::{check_placement, PlacementError};
use crate::superblock::BITMAP_OFFSET;

/// Default chunk: 128 KiB. `benches/engine.rs` (chunk sweep) shows engine CPU per byte
/// flattening out from 64 KiB on while 8-chunk-wide sequential requests still spread over
/// every member up to 128 KiB; see DESIGN.md for the figures.
pub const DEFAULT_CHUNK_SECTORS: u32 = 256;
/// Default bitmap region: 64 MiB of volume per bit, md's internal-bitmap default.
pub(crate) const DEFAULT_BITMAP_REGION_SECTORS: u64 = 131_072;
/// Data starts on a 1 MiB boundary.
pub(crate) const DATA_ALIGN_SECTORS: u64 = 2048;
/// Integrity: one CRC32C per 4 KiB member block.
pub(crate) const CSUM_BLOCK_SECTORS: u64 = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpec {
    /// Caller-chosen unique id, written into the superblock (the engine has no RNG).
    pub uuid: [u8; 16],
    pub size_sectors: u64,
    /// Shelf (AoE major) for the placement check; None for local members.
    pub shelf: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct ArrayConfig {
    pub name: String,
    pub array_uuid: [u8; 16],
    pub level: Level,
    pub chunk_sectors: u32,
    /// In slot order.
    pub members: Vec<MemberSpec>,
    pub spares: Vec<MemberSpec>,
    pub bitmap_region_sectors: u64,
    pub integrity: bool,
    /// Skip the initial resync (members known to be zeroed or identical).
    pub assume_clean: bool,
    /// Allow mirror halves on one shelf.
    pub force_placement: bool,
    /// RAID 5/6: keep a partial-parity log (`consistency_policy: ppl`), which closes the
    /// write hole; ignored by levels without parity.
    pub ppl: bool,
}

impl ArrayConfig {
    pub fn new(name: &str, array_uuid: [u8; 16], level: Level, members: Vec<MemberSpec>) -> Self {
        ArrayConfig {
            name: name.to_string(),
            array_uuid,
            level,
            chunk_sectors: DEFAULT_CHUNK_SECTORS,
            members,
            spares: Vec::new(),
            bitmap_region_sectors: DEFAULT_BITMAP_REGION_SECTORS,
            integrity: false,
            assume_clean: false,
            force_placement: false,
            ppl: level.parity() > 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateError {
    Geometry(GeometryError),
    Placement(PlacementError),
    NameTooLong,
    DuplicateUuid,
    /// A superblock's metadata area (`"bitmap"` or `"checksum"`) is smaller than
    /// the array it describes needs: writing it back would run into the next area.
    AreaTooSmall(&'static str),
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::Geometry(e) => write!(f, "{e}"),
            CreateError::Placement(e) => write!(f, "{e}"),
            CreateError::NameTooLong => f.write_str("array name longer than 32 bytes"),
            CreateError::DuplicateUuid => f.write_str("two members share a UUID"),
            CreateError::AreaTooSmall(area) => {
                write!(f, "the superblock's {area} area is too small for the array")
            }
        }
    }
}

impl std::error::Error for CreateError {}

/// Where the reserved areas sit on every member of an array (sectors): what a
/// superblock records and the engine writes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaLayout {
    pub bitmap_sectors: u32,
    pub csum_offset: u64,
    pub csum_sectors: u64,
    pub ppl_offset: u64,
    /// Log slots per member (0: no partial-parity log).
    pub ppl_slots: u32,
    pub ppl_slot_sectors: u32,
    pub data_offset: u64,
}

impl MetaLayout {
    /// Sized for the smallest member; bounds are generous so every member shares it.
    pub(crate) fn compute(
        level: Level,
        members: usize,
        chunk: u32,
        member_size: u64,
        region_sectors: u64,
        integrity: bool,
        ppl: bool,
    ) -> MetaLayout {
        let unit = match level.parity() {
            0 => chunk as u64,
            p => chunk as u64 * (members - p) as u64,
        };
        let max_units = member_size * members as u64 / unit.max(1) + 1;
        let region_units = (region_sectors / unit).max(1);
        let bitmap_sectors = Bitmap::sectors_for(max_units, region_units);
        let csum_offset = BITMAP_OFFSET + bitmap_sectors as u64;
        let csum_sectors = if integrity {
            (member_size / CSUM_BLOCK_SECTORS * 4).div_ceil(512)
        } else {
            0
        };
        // The log sits after the checksum area, 4 KiB aligned; a slot holds one entry
        // header and the partial parity of at most a chunk.
        let ppl_offset = (csum_offset + csum_sectors).div_ceil(8) * 8;
        let (ppl_slots, ppl_slot_sectors) = if ppl && level.parity() > 0 {
            (crate::ppl::SLOTS, crate::ppl::HEADER_SECTORS as u32 + chunk)
        } else {
            (0, 0)
        };
        let ppl_end = ppl_offset + ppl_slots as u64 * ppl_slot_sectors as u64;
        let data_offset = ppl_end.div_ceil(DATA_ALIGN_SECTORS) * DATA_ALIGN_SECTORS;
        MetaLayout {
            bitmap_sectors,
            csum_offset,
            csum_sectors,
            ppl_offset,
            ppl_slots,
            ppl_slot_sectors,
            data_offset,
        }
    }
}

/// How an array lies on its members: what `validate` derives from a config and
/// assembly reads back from a superblock.
pub(crate) struct Format {
    pub(crate) geo: Geometry,
    pub(crate) ml: MetaLayout,
    /// Stripe units per write-intent bitmap region.
    pub(crate) region_units: u64,
}

pub(crate) fn validate(cfg: &ArrayConfig) -> Result<Format, CreateError> {
    if cfg.name.len() > 32 {
        return Err(CreateError::NameTooLong);
    }
    let mut uuids: Vec<_> = cfg
        .members
        .iter()
        .chain(&cfg.spares)
        .map(|m| m.uuid)
        .collect();
    uuids.sort();
    if uuids.windows(2).any(|w| w[0] == w[1]) {
        return Err(CreateError::DuplicateUuid);
    }
    let n = cfg.members.len();
    if n < cfg.level.min_members() {
        return Err(CreateError::Geometry(GeometryError::TooFewMembers {
            level: cfg.level,
            members: n,
        }));
    }
    let min = cfg
        .members
        .iter()
        .map(|m| m.size_sectors)
        .min()
        .unwrap_or(0);
    let meta = MetaLayout::compute(
        cfg.level,
        n,
        cfg.chunk_sectors,
        min,
        cfg.bitmap_region_sectors,
        cfg.integrity,
        cfg.ppl,
    );
    let data = min.saturating_sub(meta.data_offset);
    let geo =
        Geometry::new(cfg.level, n, cfg.chunk_sectors, data).map_err(CreateError::Geometry)?;
    let shelves: Vec<u32> = cfg
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| m.shelf.unwrap_or(u32::MAX - i as u32))
        .collect();
    check_placement(&geo, &shelves, cfg.force_placement).map_err(CreateError::Placement)?;
    let region_units = (cfg.bitmap_region_sectors / geo.unit_sectors()).max(1);
    Ok(Format {
        geo,
        ml: meta,
        region_units,
    })
}
