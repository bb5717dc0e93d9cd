//! `ClientError`: everything a call can fail with, each message saying what to do next.

use std::time::Duration;

/// An error from the Tally client. Ledger-level rejections of single events (e.g. a transfer that
/// exceeds credits) are *not* errors: they come back as result codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The address list was empty.
    #[error("no cluster addresses given: pass at least one HOST:PORT (e.g. 127.0.0.1:7100)")]
    NoNodes,

    /// An address could not be parsed.
    #[error("invalid node address `{addr}`: {reason}; expected HOST:PORT such as 127.0.0.1:7100")]
    InvalidAddress {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No node answered successfully before the call's deadline.
    #[error(
        "no answer from the cluster within {deadline:?} after {attempts} attempt(s); last error: \
         {last_error}. Is the cluster running? Start one with `tally-node dev`, or check the \
         addresses (--cluster / TALLY_CLUSTER)"
    )]
    Timeout {
        /// The deadline that passed.
        deadline: Duration,
        /// How many requests were sent.
        attempts: u32,
        /// The last error seen, for diagnosis.
        last_error: String,
    },

    /// Every node refused the connection: nothing listens at any of the addresses.
    #[error(
        "every node refused the connection ({addrs}): nothing listens there. Is the cluster \
         running? Start one with `tally-node dev`, or check the addresses (--cluster / \
         TALLY_CLUSTER)"
    )]
    Refused {
        /// The addresses that refused, comma-separated.
        addrs: String,
    },

    /// A specific node (admin calls target one node) could not be reached.
    #[error(
        "node {addr} is unreachable: {message}. Is it running? Check the address, or start a \
         cluster with `tally-node dev`"
    )]
    Unreachable {
        /// The node's address.
        addr: String,
        /// The transport error.
        message: String,
    },

    /// The cluster refused the request; retrying the same request will not help.
    #[error("the cluster rejected the request ({code:?}): {message}")]
    Rejected {
        /// The gRPC status code (`InvalidArgument`, `FailedPrecondition`, ...).
        code: tonic::Code,
        /// The server's explanation, naming the offending field where it can.
        message: String,
    },

    /// The TLS files or token could not be used (the message names the file and the fix).
    #[error("client credentials: {0}")]
    Credentials(String),

    /// The server answered with something this client cannot interpret.
    #[error("the server sent an invalid reply: {0}; are client and server versions compatible?")]
    InvalidReply(String),
}

impl ClientError {
    /// True when the cluster (or node) could not be reached at all, as opposed to answering "no".
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout { .. }
                | ClientError::Refused { .. }
                | ClientError::Unreachable { .. }
                | ClientError::NoNodes
        )
    }
}
