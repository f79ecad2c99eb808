//! Each cart's newest position (`cart_positions`), written from location
//! pings (and from sales that carry a location), and the out-of-area rule.
//!
//! Guarantee: a stored position is never replaced by an older one, whatever
//! order pings arrive in or however often they are redelivered; [`upsert`]
//! writes a batch's positions in one statement and says which carts it
//! actually moved, so only a position newer than the stored one can open or
//! clear an incident.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Double, Nullable, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mamochi_rules::geo::{distance_m, Point};
use uuid::Uuid;

use super::profiles::Profile;

/// A cart's position at a moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub vendor_id: Uuid,
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: Option<f64>,
    pub occurred_at: DateTime<Utc>,
    /// The tracking event it came from (none for a sale's location).
    pub event_id: Option<Uuid>,
}

/// Where a position stands against the cart's area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Area {
    /// Within the radius of the comuna's centre, `metres` from it.
    Inside { metres: f64 },
    /// Beyond it.
    Outside { metres: f64 },
    /// The member's comuna has no centre in the table: never out of area.
    Unchecked,
}

/// Where `position` stands against the area of radius `radius_m` around the
/// centre of `profile`'s comuna. The radius itself is inside.
pub fn area(position: &Position, profile: &Profile, radius_m: f64) -> Area {
    let Some(centre) = profile.centre else { return Area::Unchecked };
    let metres = distance_m(centre.point, Point { latitude: position.latitude, longitude: position.longitude });
    if metres > radius_m {
        Area::Outside { metres }
    } else {
        Area::Inside { metres }
    }
}

/// The newest position of each cart among `positions` (a later one in the
/// slice wins a tie), in the order the carts first appear.
pub fn newest_per_cart(positions: impl IntoIterator<Item = Position>) -> Vec<Position> {
    let mut order = Vec::new();
    let mut newest: HashMap<Uuid, Position> = HashMap::new();
    for position in positions {
        match newest.get(&position.vendor_id) {
            Some(kept) if kept.occurred_at > position.occurred_at => {}
            Some(_) => {
                newest.insert(position.vendor_id, position);
            }
            None => {
                order.push(position.vendor_id);
                newest.insert(position.vendor_id, position);
            }
        }
    }
    order.into_iter().filter_map(|vendor| newest.remove(&vendor)).collect()
}

#[derive(QueryableByName)]
struct Moved {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    vendor_id: Uuid,
}

/// Stores `positions` (at most one per cart) where they are newer than the
/// stored one, in one statement; returns the positions that were stored, in
/// the input's order. Runs on the caller's transaction.
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    positions: &[Position],
    now: DateTime<Utc>,
) -> diesel::QueryResult<Vec<Position>> {
    if positions.is_empty() {
        return Ok(Vec::new());
    }
    // In vendor_id order, as every writer locks carts: the sales batch and
    // the tracking batch upsert positions of the same carts concurrently.
    let mut sorted = positions.to_vec();
    sorted.sort_by_key(|p| p.vendor_id);
    let moved = diesel::sql_query(
        "INSERT INTO cart_positions AS p (vendor_id, latitude, longitude, accuracy_m, occurred_at, updated_at) \
         SELECT vendor_id, latitude, longitude, accuracy_m, occurred_at, $6 \
         FROM unnest($1::uuid[], $2::float8[], $3::float8[], $4::float8[], $5::timestamptz[]) \
              AS v(vendor_id, latitude, longitude, accuracy_m, occurred_at) \
         ON CONFLICT (vendor_id) DO UPDATE \
         SET latitude = excluded.latitude, longitude = excluded.longitude, accuracy_m = excluded.accuracy_m, \
             occurred_at = excluded.occurred_at, updated_at = excluded.updated_at \
         WHERE p.occurred_at < excluded.occurred_at \
         RETURNING vendor_id",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(sorted.iter().map(|p| p.vendor_id).collect::<Vec<_>>())
    .bind::<Array<Double>, _>(sorted.iter().map(|p| p.latitude).collect::<Vec<_>>())
    .bind::<Array<Double>, _>(sorted.iter().map(|p| p.longitude).collect::<Vec<_>>())
    .bind::<Array<Nullable<Double>>, _>(sorted.iter().map(|p| p.accuracy_m).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(sorted.iter().map(|p| p.occurred_at).collect::<Vec<_>>())
    .bind::<Timestamptz, _>(now)
    .load::<Moved>(conn)
    .await?;
    let moved: std::collections::HashSet<Uuid> = moved.into_iter().map(|row| row.vendor_id).collect();
    Ok(positions.iter().filter(|p| moved.contains(&p.vendor_id)).copied().collect())
}

/// The stored positions of `vendor_ids`, as (latitude, longitude).
pub async fn last_known(
    conn: &mut AsyncPgConnection,
    vendor_ids: &[Uuid],
) -> diesel::QueryResult<HashMap<Uuid, (f64, f64)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        vendor_id: Uuid,
        #[diesel(sql_type = Double)]
        latitude: f64,
        #[diesel(sql_type = Double)]
        longitude: f64,
    }
    if vendor_ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(diesel::sql_query("SELECT vendor_id, latitude, longitude FROM cart_positions WHERE vendor_id = ANY($1)")
        .bind::<Array<diesel::sql_types::Uuid>, _>(vendor_ids)
        .load::<Row>(conn)
        .await?
        .into_iter()
        .map(|row| (row.vendor_id, (row.latitude, row.longitude)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derived::Recipient;

    fn profile(comuna: &str) -> Profile {
        Profile {
            recipient: Recipient { email: "rosa@example.cl".into(), full_name: "Rosa".into() },
            plate: "BCDF12".into(),
            comuna: comuna.into(),
            centre: mamochi_rules::comuna::centre(comuna),
        }
    }

    fn at(vendor_id: Uuid, latitude: f64, seconds: i64) -> Position {
        Position {
            vendor_id,
            latitude,
            longitude: -70.6505,
            accuracy_m: None,
            occurred_at: DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("instant"),
            event_id: None,
        }
    }

    #[test]
    fn a_position_thirty_km_south_of_santiago_is_outside_and_the_plaza_inside() {
        let vendor = Uuid::new_v4();
        let santiago = profile("Santiago");

        let far = area(&at(vendor, -33.4378 - 0.27, 0), &santiago, 8_000.0);
        let near = area(&at(vendor, -33.4378, 0), &santiago, 8_000.0);

        assert!(matches!(far, Area::Outside { metres } if (29_000.0..31_000.0).contains(&metres)), "{far:?}");
        assert!(matches!(near, Area::Inside { metres } if metres < 1.0), "{near:?}");
    }

    #[test]
    fn a_comuna_without_a_centre_is_never_out_of_area() {
        assert_eq!(area(&at(Uuid::new_v4(), 0.0, 0), &profile("Atlántida"), 8_000.0), Area::Unchecked);
    }

    #[test]
    fn the_newest_position_of_each_cart_is_kept_in_first_seen_order() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());

        let kept = newest_per_cart([at(a, -33.1, 5), at(b, -33.2, 1), at(a, -33.3, 3), at(a, -33.4, 5)]);

        assert_eq!(kept, vec![at(a, -33.4, 5), at(b, -33.2, 1)]);
    }
}
