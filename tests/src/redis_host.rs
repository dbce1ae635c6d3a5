//! The host side of `fermyon:spin/redis@2.0.0`, over [`crate::resp`], against a real server.
//!
//! As in Spin: `open` refuses an address that `allowed_outbound_hosts` does not list
//! (`invalid-address`), replies are converted the way Spin converts `redis` crate values
//! (`OK` -> `status("OK")`, arrays flattened, null -> `nil`), and server errors become
//! `other(message)`. A dependency that does not inherit configuration gets Spin's deny-all
//! answer from `open`.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasData, Resource, ResourceTable};

use crate::allowed_hosts::AllowedHosts;
use crate::resp::{RedisAddress, RespConnection, RespValue};
use crate::spin_bindings::fermyon::spin::redis::{self, Error, RedisParameter, RedisResult};

/// No Spin timeout applies to Redis calls; this one only keeps a wedged test server from
/// hanging a test run forever.
const REDIS_TIMEOUT: Duration = Duration::from_secs(30);

/// What one component may reach.
#[derive(Clone)]
pub struct RedisAccess {
    pub allowed: Arc<AllowedHosts>,
    /// A dependency without `dependencies_inherit_configuration`.
    pub denied: bool,
}

/// The guest's `connection` resource.
pub struct RedisConnection {
    conn: RespConnection,
}

/// The host view for `fermyon:spin/redis`, borrowed from the store data.
pub struct RedisView<'a> {
    pub access: &'a RedisAccess,
    pub table: &'a mut ResourceTable,
}

/// `HasData` marker binding `fermyon:spin/redis` to [`RedisView`].
pub struct RedisHost;

impl HasData for RedisHost {
    type Data<'a> = RedisView<'a>;
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

impl RedisView<'_> {
    async fn call(
        &mut self,
        conn: &Resource<RedisConnection>,
        args: Vec<Vec<u8>>,
    ) -> Result<RespValue, Error> {
        let c = self.table.get_mut(conn).map_err(other)?;
        match c.conn.command(&args).await.map_err(other)? {
            RespValue::Error(e) if e.starts_with("WRONGTYPE") => Err(Error::TypeError),
            RespValue::Error(e) => Err(Error::Other(e)),
            v => Ok(v),
        }
    }
}

fn int(v: RespValue) -> Result<i64, Error> {
    match v {
        RespValue::Int(i) => Ok(i),
        other => Err(Error::Other(format!(
            "expected an integer reply, got {other:?}"
        ))),
    }
}

fn count(v: RespValue) -> Result<u32, Error> {
    u32::try_from(int(v)?).map_err(other)
}

fn cmd(name: &str, args: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
    std::iter::once(name.as_bytes().to_vec())
        .chain(args)
        .collect()
}

/// A set command (`SADD`/`SREM`): the key, then every member.
fn set_command(name: &str, key: String, members: Vec<String>) -> Vec<Vec<u8>> {
    cmd(
        name,
        std::iter::once(key.into_bytes()).chain(members.into_iter().map(String::into_bytes)),
    )
}

/// Spin's conversion of a reply into `execute` results.
fn flatten(v: RespValue, out: &mut Vec<RedisResult>) {
    match v {
        RespValue::Simple(s) => out.push(RedisResult::Status(s)),
        RespValue::Int(i) => out.push(RedisResult::Int64(i)),
        RespValue::Bulk(Some(b)) => out.push(RedisResult::Binary(b)),
        RespValue::Bulk(None) | RespValue::Array(None) => out.push(RedisResult::Nil),
        RespValue::Array(Some(items)) => items.into_iter().for_each(|i| flatten(i, out)),
        // Errors are turned into `Err` before flattening.
        RespValue::Error(e) => out.push(RedisResult::Status(e)),
    }
}

impl redis::Host for RedisView<'_> {}

impl redis::HostConnection for RedisView<'_> {
    async fn open(&mut self, address: String) -> Result<Resource<RedisConnection>, Error> {
        if self.access.denied {
            return Err(Error::Other(
                "\"fermyon:spin/redis\" is not permitted".to_string(),
            ));
        }
        if !self.access.allowed.allows_url(&address) {
            return Err(Error::InvalidAddress);
        }
        let parsed = RedisAddress::parse(&address).ok_or(Error::InvalidAddress)?;
        let conn = RespConnection::connect(&parsed, REDIS_TIMEOUT)
            .await
            .map_err(other)?;
        self.table
            .push(RedisConnection { conn })
            .map_err(|_| Error::TooManyConnections)
    }

    async fn publish(
        &mut self,
        conn: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        self.call(&conn, cmd("PUBLISH", [channel.into_bytes(), payload]))
            .await
            .map(drop)
    }

    async fn get(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        match self.call(&conn, cmd("GET", [key.into_bytes()])).await? {
            RespValue::Bulk(v) => Ok(v),
            other => Err(Error::Other(format!("unexpected GET reply {other:?}"))),
        }
    }

    async fn set(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        self.call(&conn, cmd("SET", [key.into_bytes(), value]))
            .await
            .map(drop)
    }

    async fn incr(&mut self, conn: Resource<RedisConnection>, key: String) -> Result<i64, Error> {
        int(self.call(&conn, cmd("INCR", [key.into_bytes()])).await?)
    }

    async fn del(
        &mut self,
        conn: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> Result<u32, Error> {
        count(
            self.call(&conn, cmd("DEL", keys.into_iter().map(String::into_bytes)))
                .await?,
        )
    }

    async fn sadd(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        count(self.call(&conn, set_command("SADD", key, values)).await?)
    }

    async fn smembers(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
    ) -> Result<Vec<String>, Error> {
        match self
            .call(&conn, cmd("SMEMBERS", [key.into_bytes()]))
            .await?
        {
            RespValue::Array(Some(items)) => items
                .into_iter()
                .map(|i| match i {
                    RespValue::Bulk(Some(b)) => String::from_utf8(b).map_err(other),
                    other => Err(Error::Other(format!("unexpected set member {other:?}"))),
                })
                .collect(),
            RespValue::Array(None) => Ok(Vec::new()),
            other => Err(Error::Other(format!("unexpected SMEMBERS reply {other:?}"))),
        }
    }

    async fn srem(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        count(self.call(&conn, set_command("SREM", key, values)).await?)
    }

    async fn execute(
        &mut self,
        conn: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, Error> {
        let args = arguments.into_iter().map(|a| match a {
            RedisParameter::Int64(i) => i.to_string().into_bytes(),
            RedisParameter::Binary(b) => b,
        });
        let reply = self.call(&conn, cmd(&command, args)).await?;
        let mut out = Vec::new();
        flatten(reply, &mut out);
        Ok(out)
    }

    async fn drop(&mut self, conn: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}
