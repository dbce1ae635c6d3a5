//! The vocabulary shared by the transports, the scripts and the reply parsers: a command with
//! its arguments, a reply, and why a command failed.
//!
//! Replies are flat, the way Spin's outbound Redis hands them out: an array reply (a script's
//! table, `SCAN`'s cursor and keys) becomes its elements in order, nested arrays included, and
//! a nil inside an array stays a `Nil`. The REST transport flattens its JSON the same way, so one
//! parser serves both.

/// One command argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Bytes(Vec<u8>),
    Int(i64),
}

impl From<&str> for Arg {
    fn from(text: &str) -> Self {
        Arg::Bytes(text.as_bytes().to_vec())
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Arg::Bytes(text.into_bytes())
    }
}

impl From<Vec<u8>> for Arg {
    fn from(bytes: Vec<u8>) -> Self {
        Arg::Bytes(bytes)
    }
}

/// A command to run: its name, its arguments, and what to call it in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: &'static str,
    pub args: Vec<Arg>,
    pub label: &'static str,
}

impl Command {
    pub fn new(name: &'static str, args: Vec<Arg>) -> Self {
        Command {
            name,
            args,
            label: name,
        }
    }
}

/// One element of a flattened reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Status(String),
    Int(i64),
    Bulk(Vec<u8>),
}

impl Reply {
    /// The bytes of a bulk or status reply.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(bytes) => Some(bytes),
            Reply::Status(text) => Some(text.as_bytes()),
            Reply::Nil | Reply::Int(_) => None,
        }
    }
}

/// Why a command has no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The arguments cannot be sent this way (non-UTF-8 bytes over REST).
    Invalid(String),
    /// Unreachable, refused, or Redis answered with an error.
    Failed(String),
}

impl CommandError {
    /// Redis Cluster refused a command whose keys hash to different slots. It refuses before
    /// running anything, so nothing was applied.
    pub fn is_cross_slot(&self) -> bool {
        matches!(self, CommandError::Failed(text) if text.contains("CROSSSLOT"))
    }
}
