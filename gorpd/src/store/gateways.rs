//! Gateways that subscribed, and the cursor (highest acknowledged `seq`) of each.
//!
//! Cursors are written lazily: an ack lands in the writer's cursor buffer and
//! reaches the table with the next group commit (at most half a second
//! later). Reads merge the buffer over the table, so gorpd always sees the
//! newest cursor; a crash can only lose a few acks, which replays answers the
//! gateway already had and handles idempotently.

use super::sql::params;
use super::{Store, StoreResult, now_text, parse_time};
use chrono::{DateTime, Utc};

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
        let own = self
            .reads
            .optional("SELECT acked_seq FROM gateways WHERE gateway_id = ?", params![gateway_id], |row| {
                row.integer("acked_seq")
            })
            .await?;
        if let Some(own) = own {
            return Ok(self.with_pending_cursor(gateway_id, own as u64));
        }
        let furthest = self
            .gateways()
            .await?
            .into_iter()
            .filter(|gateway| gateway.platform == platform)
            .map(|gateway| gateway.acked_seq)
            .max();
        Ok(furthest.unwrap_or(0))
    }

    /// The platform a known gateway id belongs to.
    pub async fn gateway_platform(&self, gateway_id: &str) -> StoreResult<Option<String>> {
        self.reads
            .optional("SELECT platform_id FROM gateways WHERE gateway_id = ?", params![gateway_id], |row| {
                row.text("platform_id")
            })
            .await
    }

    /// The highest `seq` ever given in the response log (0 when none was;
    /// compaction removes old entries, never the sequence).
    pub async fn last_seq(&self) -> StoreResult<u64> {
        let last = self.reads.integer(self.engine().last_response_seq(), &[], "seq").await?;
        Ok(last as u64)
    }

    /// The newest `seq` of the responses made before `before` (0 when none).
    pub async fn last_seq_before(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let last = self
            .reads
            .integer(
                "SELECT COALESCE(MAX(seq), 0) AS seq FROM responses WHERE created_at < ?",
                params![super::time_text(before)],
                "seq",
            )
            .await?;
        Ok(last as u64)
    }

    /// Records that a gateway connected, creating it at `cursor` if new (a
    /// gateway id keeps the platform it was first seen with).
    pub async fn touch_gateway(&self, gateway_id: &str, platform: &str, cursor: u64) -> StoreResult<()> {
        let (gateway_id, platform) = (gateway_id.to_owned(), platform.to_owned());
        self.write(move |connection| {
            connection.execute(
                "INSERT INTO gateways (gateway_id, platform_id, acked_seq, last_seen) VALUES (?, ?, ?, ?)
                 ON CONFLICT (gateway_id) DO UPDATE SET last_seen = excluded.last_seen",
                params![gateway_id, platform, cursor, now_text()],
            )?;
            Ok(())
        })
        .await
    }

    /// Moves a gateway's cursor forward to `seq` (never backwards). Buffered:
    /// written with the next group commit.
    pub fn ack_gateway(&self, gateway_id: &str, seq: u64) {
        self.writer.cursors().record(gateway_id, seq);
    }

    /// Every gateway, by id, with its newest cursor.
    pub async fn gateways(&self) -> StoreResult<Vec<GatewayRow>> {
        self.reads
            .rows("SELECT * FROM gateways ORDER BY gateway_id", &[], |row| {
                let gateway_id = row.text("gateway_id");
                GatewayRow {
                    acked_seq: self.with_pending_cursor(&gateway_id, row.integer("acked_seq") as u64),
                    gateway_id,
                    platform: row.text("platform_id"),
                    last_seen: parse_time(&row.text("last_seen")),
                }
            })
            .await
    }

    fn with_pending_cursor(&self, gateway_id: &str, stored: u64) -> u64 {
        self.writer.cursors().pending(gateway_id).map_or(stored, |pending| pending.max(stored))
    }
}
