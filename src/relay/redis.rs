//! Redis-backed store, so several relay instances (or a restarted one) share the same codes,
//! mailboxes and rate-limit counters. Expiry is Redis key TTLs; every check-and-change is one
//! command (SET NX, GETDEL) or one Lua script, so concurrent instances cannot race.
//!
//! Keys (under a prefix, default `botsync:relay:`): `pair:<code>` JSON record; `mb:<id>` a hash
//! with fields `_` (exists marker), `h` (host token hash), `g` (guest token hash, once bound) and
//! one field per written slot; `rl:<class>:<ip>` a fixed-window counter. For the global caps,
//! shared by every instance: `live` a sorted set of mailbox ids scored by expiry, `bytes` a sorted
//! set of `<id>/<slot>/<length>` scored by expiry, and `bytes-total` their sum. Expired members
//! are dropped (and subtracted) whenever usage is read, so the counts stay exact.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script, Value};

use super::codes::{MailboxId, PairCode, Slot};
use super::store::{MailboxKeys, PairingRecord, RateClass, SlotRead, SlotWrite, Store, StoreError, Usage};
use crate::pairing::wire::TokenHash;

pub const DEFAULT_KEY_PREFIX: &str = "botsync:relay:";

// The usage keys expire with the last mailbox they count, so no key lives forever and, once
// every counted mailbox has expired, the counts are gone with them (zero).
const OUTLIVE: &str = r"
local function outlive(key, expires)
  local current = redis.call('PEXPIRETIME', key)
  if current < expires then redis.call('PEXPIREAT', key, expires) end
end
";

// KEYS: mailbox, live. ARGV: ttl ms, host hash, id.
const CREATE_MAILBOX: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], '_', '1', 'h', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local expires = redis.call('PEXPIRETIME', KEYS[1])
redis.call('ZADD', KEYS[2], expires, ARGV[3])
outlive(KEYS[2], expires)
return 1
";

// KEYS: mailbox, bytes, bytes-total. ARGV: slot, data, guest hash or '', id.
// HSETNX keeps the key's TTL, so a slot write never extends a mailbox's life.
const WRITE_SLOT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'g', ARGV[3]) end
local n = string.len(ARGV[2])
local expires = redis.call('PEXPIRETIME', KEYS[1])
redis.call('ZADD', KEYS[2], expires, ARGV[4] .. '/' .. ARGV[1] .. '/' .. n)
redis.call('INCRBY', KEYS[3], n)
outlive(KEYS[2], expires)
outlive(KEYS[3], expires)
return 1
";

// Deletes mailbox KEYS[1] (id ARGV[1]) and its share of the usage counters.
const FORGET: &str = r"
local function forget(key, id, bytes, total, live)
  for _, slot in ipairs({'host-pake', 'guest-pake', 'guest-data', 'host-data'}) do
    local n = redis.call('HSTRLEN', key, slot)
    if n > 0 and redis.call('ZREM', bytes, id .. '/' .. slot .. '/' .. n) == 1 then
      redis.call('DECRBY', total, n)
    end
  end
  redis.call('ZREM', live, id)
  redis.call('DEL', key)
end
";

// KEYS: mailbox, bytes, bytes-total, live. ARGV: slot, '1' if the read consumes, id.
const READ_SLOT: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  if ARGV[2] == '1' then forget(KEYS[1], ARGV[3], KEYS[2], KEYS[3], KEYS[4]) end
  return {1, v}
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
return {-1}
";

// KEYS: mailbox, bytes, bytes-total, live. ARGV: id.
const DELETE_MAILBOX: &str = r"
forget(KEYS[1], ARGV[1], KEYS[2], KEYS[3], KEYS[4])
return 1
";

// KEYS: live, bytes, bytes-total. ARGV: now ms.
const USAGE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])) do
  redis.call('DECRBY', KEYS[3], tonumber(string.match(member, '(%d+)$')))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
return {redis.call('ZCARD', KEYS[1]), tonumber(redis.call('GET', KEYS[3]) or '0')}
";

struct Scripts {
    create_mailbox: Script,
    write_slot: Script,
    read_slot: Script,
    delete_mailbox: Script,
    usage: Script,
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
                create_mailbox: Script::new(&format!("{OUTLIVE}{CREATE_MAILBOX}")),
                write_slot: Script::new(&format!("{OUTLIVE}{WRITE_SLOT}")),
                read_slot: Script::new(&format!("{FORGET}{READ_SLOT}")),
                delete_mailbox: Script::new(&format!("{FORGET}{DELETE_MAILBOX}")),
                usage: Script::new(USAGE),
            }),
        })
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    fn global(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
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

    async fn create_mailbox(&self, id: &MailboxId, ttl: Duration, host: &TokenHash) -> Result<bool, StoreError> {
        let created: i64 = self
            .scripts
            .create_mailbox
            .key(self.key("mb", &id.to_string()))
            .key(self.global("live"))
            .arg(millis(ttl))
            .arg(host.to_hex())
            .arg(id.to_string())
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(created == 1)
    }

    async fn mailbox_keys(&self, id: &MailboxId) -> Result<Option<MailboxKeys>, StoreError> {
        let (host, guest): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.key("mb", &id.to_string()))
            .arg("h")
            .arg("g")
            .query_async(&mut self.connection.clone())
            .await?;
        let parse = |hex: String| TokenHash::from_hex(&hex).ok_or_else(|| StoreError::Corrupt("token hash".into()));
        match host {
            None => Ok(None),
            Some(host) => Ok(Some(MailboxKeys { host: parse(host)?, guest: guest.map(parse).transpose()? })),
        }
    }

    async fn write_slot(&self, id: &MailboxId, slot: Slot, bytes: Bytes, bind_guest: Option<&TokenHash>) -> Result<SlotWrite, StoreError> {
        let outcome: i64 = self
            .scripts
            .write_slot
            .key(self.key("mb", &id.to_string()))
            .key(self.global("bytes"))
            .key(self.global("bytes-total"))
            .arg(slot.as_str())
            .arg(&bytes[..])
            .arg(bind_guest.map(TokenHash::to_hex).unwrap_or_default())
            .arg(id.to_string())
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
            .key(self.key("mb", &id.to_string()))
            .key(self.global("bytes"))
            .key(self.global("bytes-total"))
            .key(self.global("live"))
            .arg(slot.as_str())
            .arg(if slot.consumes_mailbox() { "1" } else { "0" })
            .arg(id.to_string())
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
        let _: i64 = self
            .scripts
            .delete_mailbox
            .key(self.key("mb", &id.to_string()))
            .key(self.global("bytes"))
            .key(self.global("bytes-total"))
            .key(self.global("live"))
            .arg(id.to_string())
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(())
    }

    async fn usage(&self) -> Result<Usage, StoreError> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let (mailboxes, stored_bytes): (u64, i64) = self
            .scripts
            .usage
            .key(self.global("live"))
            .key(self.global("bytes"))
            .key(self.global("bytes-total"))
            .arg(now)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(Usage { mailboxes, stored_bytes: stored_bytes.max(0) as u64 })
    }

    async fn hits(&self, class: RateClass, client: IpAddr) -> Result<u64, StoreError> {
        let count: Option<u64> = self.connection.clone().get(self.key("rl", &format!("{}:{client}", class.as_str()))).await?;
        Ok(count.unwrap_or(0))
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
