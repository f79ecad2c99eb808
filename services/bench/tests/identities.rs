//! The bench's forms never repeat a member already in the database: a
//! development stack keeps every earlier run's members, and a repeated plate
//! would send a bench vendor to manual review, where it never gets the
//! credentials the bench waits for. Runs against the stack's PostgreSQL.

use diesel_async::RunQueryDsl;
use mamochi_bench::identity::Identities;
use mamochi_common::{db, Settings};
use uuid::Uuid;

/// A member holding `plate`, written as approval writes members.
async fn member_with_plate(pool: &db::PgPool, plate: &str) {
    let registration_id = Uuid::new_v4();
    let tag = Uuid::new_v4().simple().to_string();
    let mut conn = pool.get().await.expect("connection");
    diesel::sql_query(
        "INSERT INTO registrations (registration_id, full_name, rut, email, phone, comuna, cart_plate, paid, \
         tracking_token_sha256, status, submitted_at, decided_at) \
         VALUES ($1, 'Marta Rojas', $2, $3, '+56900000000', 'Ñuñoa', $4, false, $5, 'approved', now(), now())",
    )
    .bind::<diesel::sql_types::Uuid, _>(registration_id)
    .bind::<diesel::sql_types::Text, _>(format!("rut-{tag}"))
    .bind::<diesel::sql_types::Text, _>(format!("marta.{tag}@example.cl"))
    .bind::<diesel::sql_types::Text, _>(plate)
    .bind::<diesel::sql_types::Text, _>("00".repeat(32))
    .execute(&mut conn)
    .await
    .expect("registration row");
    diesel::sql_query(
        "INSERT INTO members (member_id, registration_id, full_name, rut, email, phone, comuna, cart_plate, paid, \
         api_key_id, api_key_sha256) \
         VALUES ($1, $2, 'Marta Rojas', $3, $4, '+56900000000', 'Ñuñoa', $5, false, $6, $6)",
    )
    .bind::<diesel::sql_types::Uuid, _>(Uuid::new_v4())
    .bind::<diesel::sql_types::Uuid, _>(registration_id)
    .bind::<diesel::sql_types::Text, _>(format!("rut-{tag}"))
    .bind::<diesel::sql_types::Text, _>(format!("marta.{tag}@example.cl"))
    .bind::<diesel::sql_types::Text, _>(plate)
    .bind::<diesel::sql_types::Text, _>(format!("key-{tag}"))
    .execute(&mut conn)
    .await
    .expect("member row");
}

#[tokio::test]
#[allow(
    clippy::single_range_in_vec_init,
    reason = "`taken` and `unused` check a list of index ranges; a list of one range is meant, not the range's indices"
)]
async fn a_range_repeating_a_members_plate_is_taken_and_unused_draws_another() {
    // Arrange: a member already holds the plate of form 3 of this generator.
    let settings = Settings::load(None).expect("settings");
    db::run_migrations(&settings.database).await.expect("migrations");
    let pool = db::pool(&settings.database).expect("pool");
    let seed = Uuid::new_v4().as_u128() as u64;
    let identities = Identities::with_seed(seed, "taken");
    member_with_plate(&pool, &identities.plate(3)).await;

    // Act
    let clashing = identities.taken(&pool, &[0..5]).await.expect("checked");
    let clear = identities.taken(&pool, &[4..9]).await.expect("checked");
    let drawn = Identities::unused(&pool, &[0..5]).await.expect("a free range");

    // Assert
    assert!(clashing, "form 3 repeats a member's plate");
    assert!(!clear, "forms 4 to 8 repeat nobody");
    assert!(!drawn.taken(&pool, &[0..5]).await.expect("checked"), "unused returns a free range");
}
