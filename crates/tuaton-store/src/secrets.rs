//! Secrets the service makes for itself and shares between its instances
//! (not keys that sign: those live in the key backend).
//!
//! Each is made once: the first instance to need one offers a fresh value,
//! and every instance then reads whichever value was stored first, so they
//! all agree. A reader of the database learns them, which is acceptable only
//! for secrets that protect against outsiders, never against the database
//! (the one today: the key deriving stand-in credential ids, which hides who
//! is enrolled from a stranger; the database itself lists who is enrolled).

use time::OffsetDateTime;

use crate::{Store, StoreError, to_ms};

/// The secret stored under `name`, storing `offered` first if there is none.
pub async fn get_or_create(
    store: &Store,
    name: &str,
    offered: &str,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let mut conn = store.conn().await?;
    sqlx::query(
        "INSERT INTO server_secrets (name, secret, created_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(offered)
    .bind(to_ms(now))
    .execute(conn.conn())
    .await?;
    let (secret,): (String,) = sqlx::query_as("SELECT secret FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(conn.conn())
        .await?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    crate::engine_tests! {
        async fn the_first_offer_wins_and_every_caller_reads_it(store: &Store) {
            let now = OffsetDateTime::now_utc();
            let first = get_or_create(store, "login-privacy", "aaaa", now).await.unwrap();
            let second = get_or_create(store, "login-privacy", "bbbb", now).await.unwrap();
            assert_eq!((first.as_str(), second.as_str()), ("aaaa", "aaaa"));
            let other = get_or_create(store, "another", "cccc", now).await.unwrap();
            assert_eq!(other, "cccc");
        }
    }
}
