//! Which partition of a laned topic a record goes to: the priority lane
//! (partition 0) for records that must be handled first, the other
//! partitions 1..n otherwise, chosen by a stable hash of an id so the choice
//! never depends on the process or the build. Two topics use it:
//! `mamochi.registrations` (paid forms take the lane; standard forms spread
//! by registration id) and `mamochi.cart-tracking` (missing/found reports
//! take the lane; location pings spread by cart, so one cart's pings stay in
//! order).

use mamochi_events::topics;
use uuid::Uuid;

/// The partition for a record; `partitions` is the topic's partition count.
pub fn partition(priority: bool, id: Uuid, partitions: i32) -> i32 {
    if priority || partitions < 2 {
        return topics::PRIORITY_LANE_PARTITION;
    }
    let standard = u64::try_from(partitions - 1).unwrap_or(1);
    let lane = fnv1a(id.as_bytes()) % standard;
    // `lane < partitions - 1`, so it fits in an i32.
    1 + i32::try_from(lane).unwrap_or(0)
}

/// 64-bit FNV-1a: tiny, stable across platforms and releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paid_forms_take_the_paid_lane() {
        assert_eq!(partition(true, Uuid::new_v4(), 4), 0);
    }

    #[test]
    fn standard_forms_spread_over_the_other_partitions_stably() {
        let mut seen = [0u32; 4];
        for n in 0..300u128 {
            let id = Uuid::from_u128(n * 7_919 + 1);
            let p = partition(false, id, 4);
            assert!((1..=3).contains(&p), "{p}");
            assert_eq!(p, partition(false, id, 4), "stable");
            seen[p as usize] += 1;
        }
        assert!(seen[1] > 50 && seen[2] > 50 && seen[3] > 50, "{seen:?}");
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c, "the reference FNV-1a value");
    }
}
