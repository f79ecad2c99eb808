//! What the cart tracking needs to know about a cart's member: where its
//! comuna's centre is (for the out-of-area check) and who to write to (the
//! vendor's name, email and plate), kept in memory and loaded on a miss.
//!
//! Guarantee: [`Profiles::for_vendors`] answers for every vendor asked about with
//! one query for all the misses; a vendor missing from the answer is not a
//! member. Members' comunas and contact details do not change after approval,
//! so a cached profile stays true for the process's life. A member whose
//! comuna is not in the shipped table has no centre: its cart is never out
//! of area, and that is logged once per process, not alarmed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use diesel::sql_types::{Array, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mamochi_rules::comuna::{self, Centre};
use uuid::Uuid;

use crate::derived::Recipient;

/// One cart's member, as the tracking sees it.
#[derive(Debug, Clone)]
pub struct Profile {
    pub recipient: Recipient,
    pub plate: String,
    /// The comuna as the member wrote it.
    pub comuna: String,
    /// Its centre, if the shipped table lists it.
    pub centre: Option<Centre>,
}

/// The profiles loaded so far. Cheap to clone; clones share the cache.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    cache: Arc<Mutex<HashMap<Uuid, Arc<Profile>>>>,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    member_id: Uuid,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    full_name: String,
    #[diesel(sql_type = Text)]
    cart_plate: String,
    #[diesel(sql_type = Text)]
    comuna: String,
}

impl Profiles {
    /// The profiles of `vendor_ids` that are members, loading the ones not
    /// cached yet in one query.
    pub async fn for_vendors(
        &self,
        conn: &mut AsyncPgConnection,
        vendor_ids: impl IntoIterator<Item = Uuid>,
    ) -> diesel::QueryResult<HashMap<Uuid, Arc<Profile>>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for vendor_id in vendor_ids {
                match cache.get(&vendor_id) {
                    Some(profile) => {
                        found.insert(vendor_id, profile.clone());
                    }
                    None if !missing.contains(&vendor_id) => missing.push(vendor_id),
                    None => {}
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let rows = diesel::sql_query(
            "SELECT member_id, email, full_name, cart_plate, comuna FROM members WHERE member_id = ANY($1)",
        )
        .bind::<Array<diesel::sql_types::Uuid>, _>(&missing)
        .load::<Row>(conn)
        .await?;
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for row in rows {
            let centre = comuna::centre(&row.comuna);
            if centre.is_none() {
                // Not an alarm: the member's comuna is simply not in the table.
                tracing::warn!(vendor_id = %row.member_id, comuna = %row.comuna, "comuna not in the centres table; no out-of-area check for this cart");
            }
            let profile = Arc::new(Profile {
                recipient: Recipient { email: row.email, full_name: row.full_name },
                plate: row.cart_plate,
                comuna: row.comuna,
                centre,
            });
            cache.insert(row.member_id, profile.clone());
            found.insert(row.member_id, profile);
        }
        Ok(found)
    }
}
