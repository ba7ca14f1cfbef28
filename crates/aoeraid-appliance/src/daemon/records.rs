//! At start, before exporting: the newest export state record on a volume's
//! members ([`ExportRecord`]) — what the appliance that ran the volume last
//! (this box or the other of an HA pair) saved there.

use super::members::Devices;
use crate::core::Volume;
use crate::frontend::{ExportRecord, RECORD_AREA_SECTORS, RECORD_OFFSET};
use raid_engine::{MemberIo, MemberOp};
use std::time::Duration;

const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The newest whole record for export `eSHELF.SLOT` among the members of
/// `vol`'s arrays; members that cannot be read are skipped.
pub(crate) fn newest_record(
    dev: &mut Devices,
    vol: &Volume,
    shelf: u16,
    slot: u8,
) -> anyhow::Result<Option<ExportRecord>> {
    let mut ios = Vec::new();
    let mut uuids = Vec::new();
    for (a, array) in vol.arrays.iter().enumerate() {
        let uuid = vol.concat.arrays()[a].status().array_uuid;
        for (_, _, loc) in array.known() {
            ios.push((
                loc,
                MemberIo {
                    id: 0,
                    member: 0,
                    op: MemberOp::Read,
                    offset: RECORD_OFFSET,
                    sectors: RECORD_AREA_SECTORS,
                    data: Vec::new(),
                },
            ));
            uuids.push(uuid);
        }
    }
    let results = dev.run_blocking(ios, READ_TIMEOUT)?;
    Ok(results
        .iter()
        .zip(&uuids)
        .filter_map(|(r, uuid)| {
            ExportRecord::newest_in(r.as_deref().ok()?, uuid, Some((shelf, slot)))
        })
        .max_by_key(|r| r.seq))
}
