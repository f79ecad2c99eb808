//! Named staff tokens: a token works until it is revoked, then it is refused
//! within the cache bound and stays refused; names are unique and never
//! reused; only a token's digest is stored.

use std::time::Duration;

use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mamochi_gateway::store::staff::{self, AddError};

use mamochi_rules::digest::sha256_hex;

use crate::helpers::{add_staff, spawn_app};

#[tokio::test]
async fn a_revoked_staff_token_is_refused_within_the_bound_and_stays_refused() {
    // Arrange
    let app = spawn_app().await;
    let member = add_staff(&app.pool).await;
    let listing = "/v1/admin/registrations?status=pending";
    assert_eq!(app.get(listing, Some(&member.token)).await.status, 200, "a new token works");
    let bound = Duration::from_millis(app.settings.gateway.key_cache_ttl_ms);

    // Act
    let revoked = staff::revoke(&app.pool, &member.name).await.expect("revokes");
    let deadline = tokio::time::Instant::now() + bound + Duration::from_millis(1_500);

    // Assert
    assert!(revoked);
    loop {
        let answer = app.get(listing, Some(&member.token)).await;
        if answer.status == 401 {
            break;
        }
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert!(tokio::time::Instant::now() < deadline, "the revoked token was still accepted after the bound");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let until = tokio::time::Instant::now() + bound;
    while tokio::time::Instant::now() < until {
        assert_eq!(app.get(listing, Some(&member.token)).await.error(), (401, "unauthorized", None));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.get(listing, Some(&app.staff.token)).await.status, 200, "other staff keep their tokens");
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    token_sha256: String,
}

#[tokio::test]
async fn names_are_unique_never_reused_and_only_digests_are_stored() {
    // Arrange
    let app = spawn_app().await;
    let member = add_staff(&app.pool).await;

    // Act
    let duplicate = staff::add(&app.pool, &member.name, &sha256_hex("another token")).await;
    staff::revoke(&app.pool, &member.name).await.expect("revokes");
    let reused = staff::add(&app.pool, &member.name, &sha256_hex("yet another token")).await;
    let bad_name = staff::add(&app.pool, "Not A Name", &sha256_hex("token")).await;
    let unknown = staff::revoke(&app.pool, "nobody-by-this-name").await.expect("answers");
    let listed = staff::list(&app.pool).await.expect("lists");
    let mut conn = app.pool.get().await.expect("connection");
    let stored: Vec<Stored> = diesel::sql_query("SELECT token_sha256 FROM staff_tokens WHERE name = $1")
        .bind::<Text, _>(&member.name)
        .load(&mut conn)
        .await
        .expect("reads");

    // Assert
    assert!(matches!(duplicate, Err(AddError::Taken(_))), "{duplicate:?}");
    assert!(matches!(reused, Err(AddError::Taken(_))), "a revoked name stays taken: {reused:?}");
    assert!(matches!(bad_name, Err(AddError::BadName)), "{bad_name:?}");
    assert!(!unknown);
    let row = listed.iter().find(|row| row.name == member.name).expect("listed");
    assert!(row.revoked_at.is_some());
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].token_sha256, sha256_hex(&member.token), "the digest, never the token");
}
