//! The one error type of the SDK.

/// What can go wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address is not a valid URI.
    #[error("invalid broker address {0:?}: expected a URI such as http://127.0.0.1:50051")]
    Address(String),
    /// No connection could be made.
    #[error("cannot connect to the broker at {address}: {source}")]
    Connect {
        /// The address as the caller gave it, so the message shows which
        /// broker was unreachable.
        address: String,
        /// Why the transport gave up.
        #[source]
        source: tonic::transport::Error,
    },
    /// The token cannot be sent as an `authorization` header.
    #[error("the token must be printable ASCII to travel as `authorization: Bearer <token>`")]
    Token,
    /// The TLS settings were refused.
    #[error("invalid TLS settings: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// The broker answered with an error status.
    #[error("broker refused the call: {0}")]
    Status(#[from] tonic::Status),
    /// The stream ended or sent something else before `Subscribed`.
    #[error("the broker did not confirm the subscription")]
    NotSubscribed,
}
