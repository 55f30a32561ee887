//! Redis-backed store, so several relay instances (or a restarted one) share the same codes,
//! mailboxes and rate-limit counters. Expiry is Redis key TTLs; every check-and-change is one
//! command (SET NX, GETDEL) or one Lua script, so concurrent instances cannot race.
//!
//! Keys (under a prefix, default `botsync:relay:`): `pair:<code>` JSON record; `net:<id>` hex
//! SHA-256 of a network secret; `mb:<id>` a hash with field `_` (exists marker) and one field
//! per written slot; `rl:<class>:<ip>` a fixed-window counter.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script, Value};

use super::codes::{MailboxId, PairCode, Slot};
use super::store::{PairingRecord, RateClass, SecretHash, SlotRead, SlotWrite, Store, StoreError};

pub const DEFAULT_KEY_PREFIX: &str = "botsync:relay:";

const CREATE_MAILBOX: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], '_', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

// HSETNX keeps the key's TTL, so a slot write never extends a mailbox's life.
const WRITE_SLOT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
";

// ARGV[2] == '1': the read consumes the mailbox, in the same atomic step as the read.
const READ_SLOT: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
  return {1, v}
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
return {-1}
";

struct Scripts {
    create_mailbox: Script,
    write_slot: Script,
    read_slot: Script,
}

/// A handle on a Redis-backed relay state; clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> u64 {
    // Redis rejects a zero TTL; a sub-millisecond TTL means "expire as soon as possible".
    (duration.as_millis() as u64).max(1)
}

impl RedisStore {
    /// Connects and checks the server answers (fails fast on a wrong URL or a down server).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let mut connection = client.get_connection_manager_with_config(config).await?;
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(RedisStore {
            connection,
            prefix: prefix.into(),
            scripts: Arc::new(Scripts {
                create_mailbox: Script::new(CREATE_MAILBOX),
                write_slot: Script::new(WRITE_SLOT),
                read_slot: Script::new(READ_SLOT),
            }),
        })
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    /// Every key under this store's prefix with its value as text (hashes as `field=value`
    /// pairs): lets tests and operators see exactly what the relay retains.
    pub async fn dump(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut connection = self.connection.clone();
        let keys: Vec<String> = {
            let mut iter = connection.scan_match::<_, String>(format!("{}*", self.prefix)).await?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key?);
            }
            keys
        };
        let mut out = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut connection).await?;
            let value = match kind.as_str() {
                "string" => {
                    let v: Option<Vec<u8>> = connection.get(&key).await?;
                    String::from_utf8_lossy(&v.unwrap_or_default()).into_owned()
                }
                "hash" => {
                    let fields: Vec<(String, Vec<u8>)> = connection.hgetall(&key).await?;
                    fields
                        .into_iter()
                        .map(|(f, v)| format!("{f}={}", String::from_utf8_lossy(&v)))
                        .collect::<Vec<_>>()
                        .join(",")
                }
                other => format!("<{other}>"),
            };
            out.push((key, value));
        }
        Ok(out)
    }
}

impl Store for RedisStore {
    async fn insert_pairing(&self, code: &PairCode, record: &PairingRecord, ttl: Duration) -> Result<bool, StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key("pair", code.as_str()))
            .arg(json)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(set.is_some())
    }

    async fn take_pairing(&self, code: &PairCode) -> Result<Option<PairingRecord>, StoreError> {
        let raw: Option<String> = redis::cmd("GETDEL")
            .arg(self.key("pair", code.as_str()))
            .query_async(&mut self.connection.clone())
            .await?;
        raw.map(|json| serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    async fn remember_network(&self, network_id: &str, hash: &SecretHash, retention: Duration) -> Result<(), StoreError> {
        let _: Option<String> = redis::cmd("SET")
            .arg(self.key("net", network_id))
            .arg(hash.as_hex())
            .arg("NX")
            .arg("PX")
            .arg(millis(retention))
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(())
    }

    async fn network_hash(&self, network_id: &str) -> Result<Option<SecretHash>, StoreError> {
        let hex: Option<String> = self.connection.clone().get(self.key("net", network_id)).await?;
        Ok(hex.map(SecretHash::from_hex))
    }

    async fn create_mailbox(&self, id: &MailboxId, ttl: Duration) -> Result<bool, StoreError> {
        let created: i64 = self
            .scripts
            .create_mailbox
            .key(self.key("mb", id.as_str()))
            .arg(millis(ttl))
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(created == 1)
    }

    async fn write_slot(&self, id: &MailboxId, slot: Slot, bytes: Bytes) -> Result<SlotWrite, StoreError> {
        let outcome: i64 = self
            .scripts
            .write_slot
            .key(self.key("mb", id.as_str()))
            .arg(slot.as_str())
            .arg(&bytes[..])
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(match outcome {
            1 => SlotWrite::Stored,
            0 => SlotWrite::AlreadyWritten,
            _ => SlotWrite::UnknownMailbox,
        })
    }

    async fn read_slot(&self, id: &MailboxId, slot: Slot) -> Result<SlotRead, StoreError> {
        let reply: Vec<Value> = self
            .scripts
            .read_slot
            .key(self.key("mb", id.as_str()))
            .arg(slot.as_str())
            .arg(if slot.consumes_mailbox() { "1" } else { "0" })
            .invoke_async(&mut self.connection.clone())
            .await?;
        match reply.as_slice() {
            [Value::Int(1), Value::BulkString(bytes)] => Ok(SlotRead::Ready(Bytes::copy_from_slice(bytes))),
            [Value::Int(0)] => Ok(SlotRead::Empty),
            [Value::Int(-1)] => Ok(SlotRead::UnknownMailbox),
            other => Err(StoreError::Corrupt(format!("unexpected slot reply {other:?}"))),
        }
    }

    async fn delete_mailbox(&self, id: &MailboxId) -> Result<(), StoreError> {
        let _: i64 = self.connection.clone().del(self.key("mb", id.as_str())).await?;
        Ok(())
    }

    async fn count_hit(&self, class: RateClass, client: IpAddr, window: Duration) -> Result<u64, StoreError> {
        let key = self.key("rl", &format!("{}:{client}", class.as_str()));
        // MULTI/EXEC: the counter can never be left without a TTL (which would ban a client
        // forever), and EXPIRE NX keeps the window fixed from its first hit.
        let (count, _): (u64, i64) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(window))
            .arg("NX")
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(count)
    }

    fn shared_with_other_instances(&self) -> bool {
        true
    }
}
