//! The fixture rows of an approved member: its registration and its
//! `members` row (and, for the distributor's tests, its cart), inserted over
//! SQL where the approval service would write them. The one place that
//! knows which columns those rows need.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use mamochi_common::schema::{carts, members, registrations};
use uuid::Uuid;

/// An approved member as the fixtures write it. [`Member::new`] fills every
/// column with values unique to the member; tests override what they check.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: Uuid,
    pub registration_id: Uuid,
    pub full_name: String,
    pub email: String,
    pub rut: String,
    /// The key's public id and the SHA-256 of the whole key, as `members`
    /// stores them (a test that authenticates sets the real digest).
    pub api_key_id: String,
    pub api_key_sha256: String,
    /// When the registration was submitted and the member created.
    pub created_at: DateTime<Utc>,
}

impl Member {
    /// A member with a fresh id and a name, email, RUT and key derived from it.
    pub fn new() -> Self {
        Self::with_id(Uuid::new_v4())
    }

    /// [`Member::new`] with the given id.
    pub fn with_id(id: Uuid) -> Self {
        let tag = id.simple().to_string();
        Self {
            id,
            registration_id: Uuid::new_v4(),
            full_name: format!("Vendedora {}", &tag[..8]),
            email: format!("vendor-{tag}@test.mamochi.cl"),
            rut: format!("{}-{}", &tag[..12], &tag[12..13]),
            api_key_id: format!("test_{tag}"),
            api_key_sha256: tag,
            created_at: Utc::now(),
        }
    }

    /// Inserts the approved registration and the member row.
    pub async fn insert(&self, pool: &PgPool) {
        let mut conn = pool.get().await.expect("connection");
        let tag = self.id.simple().to_string();
        diesel::insert_into(registrations::table)
            .values((
                registrations::registration_id.eq(self.registration_id),
                registrations::full_name.eq(&self.full_name),
                registrations::rut.eq(&self.rut),
                registrations::email.eq(&self.email),
                registrations::phone.eq("+56911111111"),
                registrations::comuna.eq("Santiago"),
                registrations::cart_plate.eq("BCDF12"),
                registrations::paid.eq(false),
                registrations::tracking_token_sha256.eq(&tag),
                registrations::status.eq("approved"),
                registrations::member_id.eq(self.id),
                registrations::submitted_at.eq(self.created_at),
                registrations::decided_at.eq(self.created_at),
            ))
            .execute(&mut conn)
            .await
            .expect("registration fixture");
        diesel::insert_into(members::table)
            .values((
                members::member_id.eq(self.id),
                members::registration_id.eq(self.registration_id),
                members::full_name.eq(&self.full_name),
                members::rut.eq(&self.rut),
                members::email.eq(&self.email),
                members::phone.eq("+56911111111"),
                members::comuna.eq("Santiago"),
                members::cart_plate.eq("BCDF12"),
                members::paid.eq(false),
                members::api_key_id.eq(&self.api_key_id),
                members::api_key_sha256.eq(&self.api_key_sha256),
                members::created_at.eq(self.created_at),
            ))
            .execute(&mut conn)
            .await
            .expect("member fixture");
    }
}

impl Default for Member {
    fn default() -> Self {
        Self::new()
    }
}

/// Inserts the member's cart with `stock` servings.
pub async fn insert_cart(pool: &PgPool, vendor_id: Uuid, stock: i32) {
    let mut conn = pool.get().await.expect("connection");
    diesel::insert_into(carts::table)
        .values((carts::vendor_id.eq(vendor_id), carts::stock.eq(stock)))
        .execute(&mut conn)
        .await
        .expect("cart fixture");
}
