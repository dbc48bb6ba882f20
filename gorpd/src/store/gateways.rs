//! Gateways that subscribed, and the cursor (highest acknowledged `seq`) of each.

use super::{Store, StoreResult, now_text, parse_time};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A gateway as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRow {
    /// The gateway's id.
    pub gateway_id: String,
    /// Its platform.
    pub platform: String,
    /// Highest acknowledged seq.
    pub acked_seq: u64,
    /// Last connect or acknowledgement.
    pub last_seen: DateTime<Utc>,
}

impl Store {
    /// The cursor to resume `gateway_id` from: its own, else the furthest of
    /// its platform's other gateways (a renamed gateway does not replay all
    /// history), else 0.
    pub async fn resume_cursor(&self, gateway_id: &str, platform: &str) -> StoreResult<u64> {
        let own: Option<i64> = sqlx::query_scalar("SELECT acked_seq FROM gateways WHERE gateway_id = ?")
            .bind(gateway_id)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(own) = own {
            return Ok(own as u64);
        }
        let platform_max: Option<i64> = sqlx::query_scalar("SELECT MAX(acked_seq) FROM gateways WHERE platform_id = ?")
            .bind(platform)
            .fetch_one(&self.pool)
            .await?;
        Ok(platform_max.unwrap_or(0) as u64)
    }

    /// Records that a gateway connected, creating it at `cursor` if new.
    pub async fn touch_gateway(&self, gateway_id: &str, platform: &str, cursor: u64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO gateways (gateway_id, platform_id, acked_seq, last_seen) VALUES (?, ?, ?, ?)
             ON CONFLICT (gateway_id) DO UPDATE SET platform_id = excluded.platform_id, last_seen = excluded.last_seen",
        )
        .bind(gateway_id)
        .bind(platform)
        .bind(cursor as i64)
        .bind(now_text())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves a gateway's cursor forward to `seq` (never backwards).
    pub async fn ack_gateway(&self, gateway_id: &str, seq: u64) -> StoreResult<()> {
        sqlx::query("UPDATE gateways SET acked_seq = MAX(acked_seq, ?), last_seen = ? WHERE gateway_id = ?")
            .bind(seq as i64)
            .bind(now_text())
            .bind(gateway_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every gateway, by id.
    pub async fn gateways(&self) -> StoreResult<Vec<GatewayRow>> {
        let rows = sqlx::query("SELECT * FROM gateways ORDER BY gateway_id").fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(|r| GatewayRow {
                gateway_id: r.get("gateway_id"),
                platform: r.get("platform_id"),
                acked_seq: r.get::<i64, _>("acked_seq") as u64,
                last_seen: parse_time(r.get::<&str, _>("last_seen")),
            })
            .collect())
    }
}
