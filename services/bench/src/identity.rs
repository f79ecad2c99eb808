//! Membership forms for the bench: valid, and distinct in every field the
//! approval rules compare (RUT, email, phone, plate), within a run and, by a
//! random offset per run checked against the members already in the
//! database ([`Identities::unused`]), across runs. A repeated RUT or email
//! would be rejected and a repeated phone or plate sent to manual review,
//! which would measure the rules instead of the pipeline (and a vendor sent
//! to review never gets the credentials the bench waits for).

use std::ops::Range;

use anyhow::Context;
use diesel::sql_types::{Array, Bool, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_common::db::PgPool;
use serde_json::{json, Value};

/// The comuna every bench vendor registers in (the tracking stage pings
/// from its centre, so no out-of-area alarm fires).
pub const COMUNA: &str = "Santiago";

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = Bool)]
    taken: bool,
}

/// Distinct current-format plates: four letters, two digits.
const PLATE_SPACE: u64 = mamochi_rules::plate::CURRENT_PLATES;
/// Eight-digit RUT bodies.
const RUT_SPACE: u64 = 90_000_000;
/// Eight digits after "+569".
const PHONE_SPACE: u64 = 100_000_000;

/// Makes forms for one run.
#[derive(Debug, Clone)]
pub struct Identities {
    tag: String,
    offset: u64,
}

impl Identities {
    /// A generator whose forms differ from other runs' (random offset).
    pub fn random() -> Self {
        let seed = uuid::Uuid::new_v4().as_u128();
        Self::with_seed(seed as u64, &format!("{:08x}", (seed >> 64) as u32))
    }

    /// A random generator none of whose forms in `ranges` repeats the RUT,
    /// phone or plate of a member already in the database (a development
    /// stack keeps the members of every earlier run); a few draws at most.
    pub async fn unused(pool: &PgPool, ranges: &[Range<u64>]) -> anyhow::Result<Self> {
        const DRAWS: usize = 20;
        for _ in 0..DRAWS {
            let identities = Self::random();
            if !identities.taken(pool, ranges).await? {
                return Ok(identities);
            }
        }
        anyhow::bail!("{DRAWS} random identity ranges all collide with existing members; wipe the stack's data")
    }

    /// Whether any form in `ranges` repeats a member's RUT, phone or plate.
    pub async fn taken(&self, pool: &PgPool, ranges: &[Range<u64>]) -> anyhow::Result<bool> {
        let indices = || ranges.iter().flat_map(Clone::clone);
        let ruts: Vec<String> = indices().map(|index| self.rut(index)).collect();
        let phones: Vec<String> = indices().map(|index| self.phone(index)).collect();
        let plates: Vec<String> = indices().map(|index| self.plate(index)).collect();
        let mut conn = pool.get().await.context("while getting a database connection")?;
        let row: Taken = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM members WHERE rut = ANY($1) OR phone = ANY($2) OR cart_plate = ANY($3)) \
             AS taken",
        )
        .bind::<Array<Text>, _>(&ruts)
        .bind::<Array<Text>, _>(&phones)
        .bind::<Array<Text>, _>(&plates)
        .get_result(&mut conn)
        .await
        .context("while checking the forms against existing members")?;
        Ok(row.taken)
    }

    pub fn with_seed(offset: u64, tag: &str) -> Self {
        Self { tag: tag.to_string(), offset }
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The email of form `index`, where its credentials arrive.
    pub fn email(&self, index: u64) -> String {
        format!("bench.{}.{index}@example.cl", self.tag)
    }

    pub fn rut(&self, index: u64) -> String {
        let body = 10_000_000 + (self.offset % RUT_SPACE + index) % RUT_SPACE;
        // RUT_SPACE keeps the body at 8 digits, well inside a u32.
        mamochi_rules::rut::for_number(u32::try_from(body).unwrap_or(u32::MAX))
    }

    pub fn phone(&self, index: u64) -> String {
        mamochi_rules::phone::mobile(((self.offset / 7) % PHONE_SPACE + index) % PHONE_SPACE)
    }

    pub fn plate(&self, index: u64) -> String {
        // Reduced first, so the sequence never wraps inside a run.
        mamochi_rules::plate::current(((self.offset / 13) % PLATE_SPACE + index) % PLATE_SPACE)
    }

    /// The payment reference of form `index`, in the gateway's format
    /// (`BENCH-` and 20 digits): each is accepted once only, so it is drawn
    /// from the run's random offset like the RUT.
    pub fn payment_reference(&self, index: u64) -> String {
        format!("BENCH-{:010}{:010}", self.offset % 10_000_000_000, index % 10_000_000_000)
    }

    /// The JSON body of `POST /v1/registrations` for form `index`.
    pub fn form(&self, index: u64, paid: bool) -> Value {
        json!({
            "full_name": format!("Vendedor Bench {index}"),
            "rut": self.rut(index),
            "email": self.email(index),
            "phone": self.phone(index),
            "comuna": COMUNA,
            "cart_plate": self.plate(index),
            "paid": paid,
            "payment_reference": if paid { json!(self.payment_reference(index)) } else { Value::Null },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ten_thousand_forms_are_distinct_in_every_compared_field() {
        let ids = Identities::with_seed(u64::MAX - 5_000, "t");
        let n = 10_003;
        for field in [Identities::rut, Identities::phone, Identities::plate, Identities::email] {
            let values: HashSet<String> = (0..n).map(|index| field(&ids, index)).collect();
            assert_eq!(values.len(), n as usize);
        }
    }

    #[test]
    fn fields_have_the_shapes_the_gateway_accepts() {
        let ids = Identities::with_seed(123_456_789, "abc");
        for index in [0, 1, 9_999] {
            let rut = ids.rut(index);
            let (body, _) = rut.split_once('-').expect("dash");
            assert_eq!(body.len(), 8, "{rut}");
            let phone = ids.phone(index);
            assert_eq!(mamochi_rules::phone::normalise(&phone).as_ref(), Ok(&phone));
            let plate = ids.plate(index);
            assert_eq!(mamochi_rules::plate::normalise(&plate).as_ref(), Ok(&plate));
        }
        let paid = ids.form(3, true);
        assert_eq!(paid["paid"], true);
        let reference = paid["payment_reference"].as_str().expect("a reference");
        let (channel, number) = reference.split_once('-').expect("channel-number");
        assert!(channel == "BENCH" && number.len() == 20 && number.bytes().all(|b| b.is_ascii_digit()), "{reference}");
        assert_ne!(ids.payment_reference(3), ids.payment_reference(4));
        assert!(ids.form(3, false)["payment_reference"].is_null());
    }
}
